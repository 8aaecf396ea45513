// SPDX-License-Identifier: GPL-3.0-or-later
#include "query/query.hpp"

#include "core/fs.hpp"
#include "core/json.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace maildsar::query {

using nlohmann::json;

namespace {

core::Result<std::vector<std::string>> string_list(const json &value, std::string_view key,
                                                   const std::string &path) {
  std::vector<std::string> out;
  if (!value.is_array()) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("{}: \"{}\" must be a list of strings", path, key));
  }
  for (const json &v : value) {
    if (!v.is_string()) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("{}: \"{}\" must be a list of strings", path, key));
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

} // namespace

core::Result<SubjectProfile> parse_subject(std::string_view json_text,
                                           const std::string &path_for_errors) {
  // Strict: a repeated key ("emails" twice) must not silently replace the first list.
  MAILDSAR_TRY_ASSIGN(json j, core::parse_json_strictly(json_text, path_for_errors,
                                                        core::ErrorCode::data,
                                                        core::JsonComments::yes));
  if (!j.is_object()) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("{}: a subject file is a JSON object", path_for_errors),
                      R"(e.g. {"request": "DSAR-1", "emails": ["a@example.com"]})");
  }
  SubjectProfile p;
  for (const auto &[key, value] : j.items()) {
    if (key == "request") {
      if (!value.is_string()) {
        return core::fail(core::ErrorCode::data,
                          fmt::format("{}: \"request\" must be a string", path_for_errors));
      }
      p.request = value.get<std::string>();
    } else if (key == "emails") {
      MAILDSAR_TRY_ASSIGN(p.emails, string_list(value, key, path_for_errors));
    } else if (key == "names") {
      MAILDSAR_TRY_ASSIGN(p.names, string_list(value, key, path_for_errors));
    } else if (key == "phones") {
      MAILDSAR_TRY_ASSIGN(p.phones, string_list(value, key, path_for_errors));
    } else if (key == "ips") {
      MAILDSAR_TRY_ASSIGN(p.ips, string_list(value, key, path_for_errors));
    } else {
      return core::fail(core::ErrorCode::data,
                        fmt::format("{}: unknown key \"{}\"", path_for_errors, key),
                        "known keys: request, emails, names, phones, ips");
    }
  }
  return p;
}

core::Result<SubjectProfile> load_subject(const std::string &path) {
  MAILDSAR_TRY_ASSIGN(std::string text, core::read_file(path, 16U << 20));
  return parse_subject(text, path);
}

} // namespace maildsar::query
