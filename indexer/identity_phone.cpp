// SPDX-License-Identifier: GPL-3.0-or-later
// Phone numbers, in free text (scan_phones) and alone (Normalizer::phone), matched and parsed by
// the libphonenumber module (phone_module.hpp) behind a cheap pre-filter.
#include "indexer/identity_internal.hpp"

#include "core/log.hpp"
#include "indexer/phone_module.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace maildsar::index::identity_detail {

namespace {

/** The phone-number module, loaded on first use; a module that cannot be loaded is fatal. */
const PhoneModule &phone_module() {
  auto module = PhoneModule::get();
  if (!module) {
    throw std::runtime_error(module.error().message);
  }
  return **module;
}

/** Phone punctuation other than white space; '+' only counts at the start of a token. */
[[nodiscard]] constexpr bool is_phone_punct(char c) {
  return c == '+' || c == '(' || c == ')' || c == '-' || c == '.' || c == '/';
}

[[nodiscard]] constexpr bool is_phone_start(char c) { return is_digit(c) || c == '+' || c == '('; }

/** Bytes of the white space at `pos` that may separate the groups of a phone number (space,
 *  tab, U+00A0 NO-BREAK SPACE, U+202F NARROW NO-BREAK SPACE); 0 if there is none. */
[[nodiscard]] std::size_t phone_space_at(std::string_view text, std::size_t pos) {
  const unsigned char c = byte_at(text, pos);
  if (c == ' ' || c == '\t') {
    return 1;
  }
  if (c == 0xC2U && pos + 1 < text.size() && byte_at(text, pos + 1) == 0xA0U) {
    return 2;
  }
  if (c == 0xE2U && pos + 2 < text.size() && byte_at(text, pos + 1) == 0x80U &&
      byte_at(text, pos + 2) == 0xAFU) {
    return 3;
  }
  return 0;
}

/**
 * ASCII that, right next to a run of digits, makes the run part of a word, key, identifier or
 * bracketed log field rather than a phone number: `pid[12345]`, `size=1234`, `4B2F1C0A7D`,
 * `<1234567.89@host>`, `#1234567`, `50%`.
 */
[[nodiscard]] constexpr bool is_phone_glue(char c) {
  return is_alpha(c) || c == '_' || c == '=' || c == '@' || c == '#' || c == '%' || c == '&' ||
         c == '\\';
}

/** What a run of phone characters touches on one side. */
enum class PhoneEdge { free, glued, bracket, time };

/** `12:` or `:34` next to the run: part of a time ("10:00:00.123456+01:00") or a port. */
[[nodiscard]] PhoneEdge phone_edge_before(std::string_view text, std::size_t begin) {
  if (begin == 0) {
    return PhoneEdge::free;
  }
  const char c = text[begin - 1];
  if (static_cast<unsigned char>(c) >= 0x80U) {
    std::size_t start = 0;
    const std::optional<Decoded> prev = decode_before(text, begin, 0, &start);
    return prev && is_word_code_point(prev->code_point) ? PhoneEdge::glued : PhoneEdge::free;
  }
  if (c == ':') {
    return begin >= 2 && is_digit(text[begin - 2]) ? PhoneEdge::time : PhoneEdge::free;
  }
  if (c == '[' || c == ']') {
    return PhoneEdge::bracket;
  }
  return is_phone_glue(c) ? PhoneEdge::glued : PhoneEdge::free;
}

[[nodiscard]] PhoneEdge phone_edge_after(std::string_view text, std::size_t end) {
  if (end >= text.size()) {
    return PhoneEdge::free;
  }
  const char c = text[end];
  if (static_cast<unsigned char>(c) >= 0x80U) {
    const Decoded next = decode_utf8(text, end);
    return next.code_point != k_bad_code_point && is_word_code_point(next.code_point)
               ? PhoneEdge::glued
               : PhoneEdge::free;
  }
  if (c == ':') {
    return end + 1 < text.size() && is_digit(text[end + 1]) ? PhoneEdge::time : PhoneEdge::free;
  }
  if (c == '[' || c == ']') {
    return PhoneEdge::bracket;
  }
  return is_phone_glue(c) ? PhoneEdge::glued : PhoneEdge::free;
}

/** Widest window (bytes) of phone characters passed to the matcher in one piece. */
constexpr std::size_t k_phone_window = 64;
/** Most digits one number can be written with (15 for E.164, plus "00" or a trunk prefix). */
constexpr std::size_t k_phone_max_digits = 17;
/** A space-free token longer than this is never (part of) a phone number. */
constexpr std::size_t k_phone_max_token = 40;
/** Upper bound of matcher runs for one text (each costs tens of microseconds). */
constexpr std::size_t k_phone_max_matches = 100'000;
constexpr std::size_t k_phone_min_digits = 7;

/** A token made of digit groups joined by one repeated separator ("2023-11-14", "10.0.0.1"). */
struct DigitGroups {
  std::array<unsigned, 4> value{};
  std::array<std::size_t, 4> length{};
  std::size_t count = 0;
  char separator = 0;
};

[[nodiscard]] std::optional<DigitGroups> uniform_digit_groups(std::string_view token) {
  DigitGroups groups;
  std::size_t length = 0;
  unsigned value = 0;
  for (const char c : token) {
    if (is_digit(c)) {
      if (++length > 4) {
        return std::nullopt;
      }
      value = value * 10 + static_cast<unsigned>(c - '0');
      continue;
    }
    if (length == 0 || groups.count >= 3 || (groups.separator != 0 && c != groups.separator)) {
      return std::nullopt;
    }
    groups.separator = c;
    groups.value[groups.count] = value;
    groups.length[groups.count++] = length;
    length = 0;
    value = 0;
  }
  if (length == 0) {
    return std::nullopt;
  }
  groups.value[groups.count] = value;
  groups.length[groups.count++] = length;
  return groups;
}

/** IPv4 addresses, version strings of four parts and calendar dates are never phone numbers. */
[[nodiscard]] bool is_ip_or_date_shaped(std::string_view token) {
  const std::optional<DigitGroups> groups = uniform_digit_groups(token);
  if (!groups || groups->count < 3) {
    return false;
  }
  const auto &len = groups->length;
  const auto &val = groups->value;
  if (groups->count == 4) {
    return groups->separator == '.' && len[0] <= 3 && len[1] <= 3 && len[2] <= 3 && len[3] <= 3;
  }
  const auto year = [](unsigned v) { return v >= 1900 && v <= 2099; };
  const auto month = [](unsigned v) { return v >= 1 && v <= 12; };
  const auto day = [](unsigned v) { return v >= 1 && v <= 31; };
  if (len[0] == 4 && len[1] <= 2 && len[2] <= 2) { // 2023-11-14, 2023/11/14, 2023.11.14
    return year(val[0]) && month(val[1]) && day(val[2]);
  }
  if (len[0] <= 2 && len[1] <= 2 && len[2] == 4) { // 14.11.2023, 11/14/2023, 14-11-2023
    return year(val[2]) && day(val[0]) && day(val[1]) && (month(val[0]) || month(val[1]));
  }
  return false;
}

/** One white-space separated piece of a stretch of phone characters. */
struct PhoneToken {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::size_t digits = 0;
  bool barrier = false; // never part of a number: no window may hold it
};

/** Buffers reused across the calls on one thread. */
struct PhoneScratch {
  std::vector<PhoneToken> tokens;
  std::string window;
  /** What the matcher found in a window (key: region, NUL, window) in earlier texts on this
      thread: log transactions repeat windows ("queued as 1234567890" in the next hop's). The
      matcher is a pure function of both; cleared when full, so memory stays bounded. */
  std::unordered_map<std::string, std::vector<std::string>> memo;
  std::string memo_key;
};
constexpr std::size_t k_phone_memo_entries = 4096;

} // namespace

void scan_phones(std::string_view text, const std::string &region,
                 const std::function<void(IdentityKind, const std::string &)> &emit) {
  thread_local PhoneScratch scratch;
  std::vector<PhoneToken> &tokens = scratch.tokens;
  std::string &window = scratch.window;
  std::unordered_map<std::string, std::vector<std::string>> cache; // allocates only when used
  std::size_t matcher_runs = 0;
  bool budget_exhausted = false;

  const auto match_window = [&](std::size_t begin, std::size_t end) -> bool {
    // One code point of context either side, so the matcher sees letters next to the digits.
    window.clear();
    std::size_t before = 0;
    if (const std::optional<Decoded> prev = decode_before(text, begin, 0, &before)) {
      append_utf8(window, prev->code_point == 0 ? U' ' : prev->code_point);
    }
    for (std::size_t i = begin; i < end;) {
      if (const std::size_t space = phone_space_at(text, i); space > 0) {
        window.push_back(' ');
        i += space;
      } else {
        window.push_back(text[i++]);
      }
    }
    if (end < text.size()) {
      const Decoded next = decode_utf8(text, end);
      append_utf8(window, next.code_point == k_bad_code_point || next.code_point == 0
                              ? U' '
                              : next.code_point);
    }
    auto found = cache.find(window);
    if (found == cache.end()) {
      if (matcher_runs >= k_phone_max_matches) {
        budget_exhausted = true;
        return false;
      }
      ++matcher_runs;
      std::string &key = scratch.memo_key;
      key.assign(region);
      key.push_back('\0');
      key.append(window);
      auto known = scratch.memo.find(key);
      if (known == scratch.memo.end()) {
        if (scratch.memo.size() >= k_phone_memo_entries) {
          scratch.memo.clear();
        }
        known = scratch.memo.emplace(key, phone_module().match(window, region)).first;
      }
      found = cache.emplace(window, known->second).first;
    }
    for (const std::string &number : found->second) {
      emit(IdentityKind::phone, number);
    }
    return !found->second.empty();
  };

  const auto classify = [&](PhoneToken &token) {
    const std::string_view piece = text.substr(token.begin, token.end - token.begin);
    const std::size_t plus = piece.find('+');
    const bool plus_misplaced =
        plus != std::string_view::npos && ((plus != 0 && (plus != 1 || piece.front() != '(')) ||
                                           piece.find('+', plus + 1) != std::string_view::npos);
    if (piece.size() > k_phone_max_token || token.digits > k_phone_max_digits || plus_misplaced) {
      token.barrier = true;
      return;
    }
    std::string_view shape = piece;
    while (!shape.empty() && !is_digit(shape.back())) {
      shape.remove_suffix(1); // "1.2.3.4." at the end of a sentence
    }
    token.barrier = is_ip_or_date_shaped(shape);
  };

  const auto match_stretch = [&](std::size_t begin, std::size_t end) {
    tokens.clear();
    for (std::size_t i = begin; i < end;) {
      if (const std::size_t space = phone_space_at(text, i); space > 0) {
        i += space;
        continue;
      }
      PhoneToken token{i, i, 0, false};
      while (token.end < end && phone_space_at(text, token.end) == 0) {
        token.digits += is_digit(text[token.end]) ? 1U : 0U;
        ++token.end;
      }
      i = token.end;
      classify(token);
      tokens.push_back(token);
    }
    if (tokens.empty()) {
      return;
    }
    // A single token glued to a word or key, or a bare digit run in brackets, is a log field
    // ("size=1234", "<1234567.89@host>", "[12345]"). Numbers written in groups keep their
    // neighbours ("[020 7946 0123]", "phone=+44 20 7946 0123"), and so do international ones
    // ("[+447911123456]"): the matcher judges them. Digits touching "hh:mm" are a time.
    const PhoneEdge before = phone_edge_before(text, begin);
    const PhoneEdge after =
        tokens.back().end == end ? phone_edge_after(text, end) : PhoneEdge::free;
    if (tokens.size() == 1) {
      const PhoneToken &only = tokens.front();
      const std::string_view piece = text.substr(only.begin, only.end - only.begin);
      const bool international = piece.starts_with('+') || piece.starts_with("(+");
      const bool bare_digits = only.digits == piece.size();
      const auto field_edge = [&](PhoneEdge edge) {
        return edge == PhoneEdge::glued || (edge == PhoneEdge::bracket && bare_digits);
      };
      if (!international && (field_edge(before) || field_edge(after))) {
        tokens.front().barrier = true;
      }
    }
    if (before == PhoneEdge::time) {
      tokens.front().barrier = true;
    }
    if (after == PhoneEdge::time) {
      tokens.back().barrier = true;
    }
    for (std::size_t i = 0; i < tokens.size() && !budget_exhausted;) {
      const PhoneToken &first = tokens[i];
      if (first.barrier || !is_phone_start(text[first.begin])) {
        ++i;
        continue;
      }
      // The widest window of whole tokens that may still hold one number.
      std::size_t last = i;
      std::size_t digits = first.digits;
      while (last + 1 < tokens.size() && !tokens[last + 1].barrier &&
             digits + tokens[last + 1].digits <= k_phone_max_digits &&
             tokens[last + 1].end - first.begin <= k_phone_window) {
        ++last;
        digits += tokens[last].digits;
      }
      bool matched = false;
      for (std::size_t j = last + 1; j-- > i;) {
        if (digits < k_phone_min_digits) {
          break;
        }
        std::size_t stop = tokens[j].end;
        while (stop > first.begin && !is_digit(text[stop - 1]) && text[stop - 1] != ')') {
          --stop; // trailing "-", "." or "/" are not part of the number
        }
        if (match_window(first.begin, stop)) {
          matched = true;
          i = j + 1;
          break;
        }
        digits -= tokens[j].digits;
      }
      if (!matched) {
        ++i;
      }
    }
  };

  for (std::size_t pos = 0; pos < text.size() && !budget_exhausted;) {
    if (!is_phone_start(text[pos])) {
      ++pos;
      continue;
    }
    std::size_t end = pos;
    std::size_t digits = 0;
    while (end < text.size()) {
      const char c = text[end];
      if (is_digit(c)) {
        ++digits;
        ++end;
      } else if (is_phone_punct(c)) {
        ++end;
      } else if (const std::size_t space = phone_space_at(text, end); space > 0) {
        end += space;
      } else {
        break;
      }
    }
    if (digits >= k_phone_min_digits) {
      match_stretch(pos, end);
    }
    pos = std::max(end, pos + 1);
  }
  if (budget_exhausted) {
    MAILDSAR_LOG_WARN("identity: phone-number scan stopped after {} candidates in a {} byte text",
                      k_phone_max_matches, text.size());
  }
}

} // namespace maildsar::index::identity_detail

namespace maildsar::index {

using namespace identity_detail;

core::Status Normalizer::load_phone_module() {
  MAILDSAR_TRY(PhoneModule::get());
  return {};
}

std::optional<std::string> Normalizer::Impl::phone(std::string_view raw) const {
  const std::string_view text = trim(raw);
  if (text.empty() || text.size() > 128 || !is_valid_utf8(text)) {
    return std::nullopt;
  }
  if (static_cast<std::size_t>(std::ranges::count_if(text, is_digit)) < k_phone_min_digits) {
    return std::nullopt;
  }
  return phone_module().parse(text, region);
}

} // namespace maildsar::index
