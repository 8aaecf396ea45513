// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

namespace maildsar::core {

namespace {

using nlohmann::json;

/** Thrown from the parser callback: a duplicate key. */
struct DuplicateKey {
  std::string key;
  std::size_t occurrence; // how many times the key text was seen before (to locate it)
};

/** Offset of the `n`th (0-based) occurrence of `"key"` followed by ':' in `text`, or npos. */
std::size_t key_offset(std::string_view text, std::string_view key, std::size_t n) {
  const std::string needle = json(std::string(key)).dump();
  std::size_t pos = 0;
  std::size_t seen = 0;
  while ((pos = text.find(needle, pos)) != std::string_view::npos) {
    std::size_t after = pos + needle.size();
    while (after < text.size() && (text[after] == ' ' || text[after] == '\t' ||
                                   text[after] == '\r' || text[after] == '\n')) {
      ++after;
    }
    if (after < text.size() && text[after] == ':') {
      if (seen++ == n) {
        return pos;
      }
    }
    pos = after;
  }
  return std::string_view::npos;
}

} // namespace

std::string json_position(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1;
  std::size_t col = 1;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return fmt::format("{}:{}", line, col);
}

Result<json> parse_json_strictly(std::string_view text, const std::string &path, ErrorCode code,
                                 JsonComments comments) {
  // One set of keys per open object; every key counted, to find the duplicate in the text.
  std::vector<std::set<std::string>> open;
  std::map<std::string, std::size_t> key_count;
  auto callback = [&](int, json::parse_event_t event, json &parsed) {
    switch (event) {
    case json::parse_event_t::object_start:
      open.emplace_back();
      break;
    case json::parse_event_t::object_end:
      if (!open.empty()) {
        open.pop_back();
      }
      break;
    case json::parse_event_t::key: {
      std::string key = parsed.get<std::string>();
      std::size_t before = key_count[key]++;
      if (!open.empty() && !open.back().insert(key).second) {
        throw DuplicateKey{std::move(key), before};
      }
      break;
    }
    default:
      break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback, true, comments == JsonComments::yes);
  } catch (const DuplicateKey &d) {
    std::size_t at = key_offset(text, d.key, d.occurrence);
    return fail(code, fmt::format("{}:{}: key \"{}\" is given twice in one object", path,
                                  at == std::string_view::npos ? std::string("?")
                                                               : json_position(text, at),
                                  d.key),
                "give each key once (a repeated key would silently replace the first)");
  } catch (const json::parse_error &e) {
    return fail(code, fmt::format("{}:{}: invalid JSON: {}", path,
                                  json_position(text, e.byte > 0 ? e.byte - 1 : 0), e.what()));
  } catch (const json::exception &e) {
    // out_of_range 406 (a number like 1e400) and the like: bad input, never an internal error.
    return fail(code, fmt::format("{}: invalid JSON: {}", path, e.what()));
  }
}

} // namespace maildsar::core
