// SPDX-License-Identifier: GPL-3.0-or-later
// The one tokeniser of e-mail and IP addresses in free text (address_spans): what the indexer
// finds and what erasure redacts.
#include "indexer/identity_internal.hpp"

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

namespace maildsar::index::identity_detail {

namespace {

/** Characters of a local part that, in free text, end a key or URL rather than an address. */
constexpr std::string_view k_text_local_breaks = "=/?&|{}`~";

[[nodiscard]] bool ipv4_left_boundary(std::string_view text, std::size_t pos) {
  if (pos == 0) {
    return true;
  }
  const char c = text[pos - 1];
  return !is_alnum(c) && c != '.' && c != '_';
}

[[nodiscard]] bool ipv6_left_boundary(std::string_view text, std::size_t pos) {
  if (pos == 0) {
    return true;
  }
  const char c = text[pos - 1];
  return !is_alnum(c) && c != '.' && c != '_' && c != ':';
}

[[nodiscard]] bool right_boundary(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) {
    return true;
  }
  const char c = text[pos];
  return !is_alnum(c) && c != '_' && c != '%';
}

/** Dotted quads with every octet 0-255, not part of a longer dotted number: emit(begin, end). */
template <class Emit> void scan_ipv4(std::string_view text, Emit &&emit) {
  if (text.find('.') == std::string_view::npos) {
    return;
  }
  for (std::size_t pos = 0; pos < text.size();) {
    if (!is_digit(text[pos]) || !ipv4_left_boundary(text, pos)) {
      ++pos;
      continue;
    }
    std::size_t end = pos;
    std::size_t dots = 0;
    while (end < text.size() && (is_digit(text[end]) || text[end] == '.')) {
      dots += text[end] == '.' ? 1U : 0U;
      ++end;
    }
    std::size_t stop = end;
    while (stop > pos && text[stop - 1] == '.') {
      --stop;
    }
    if (dots >= 3 && right_boundary(text, end)) {
      if (parse_ipv4(text.substr(pos, stop - pos))) {
        emit(pos, stop);
      }
    }
    pos = end;
  }
}

[[nodiscard]] constexpr bool is_ipv6_char(char c) { return is_hex(c) || c == ':' || c == '.'; }

/**
 * Runs of hex digits, colons and dots with at least two colons that inet_pton accepts. Only the
 * stretches of such characters that hold a ':' are looked at (found with memchr); a run starts at
 * the first position of its stretch that begins a word (or follows "IPv6:"). emit(begin, end).
 */
template <class Emit> void scan_ipv6(std::string_view text, Emit &&emit) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t colon = text.find(':', pos);
    if (colon == std::string_view::npos) {
      return;
    }
    std::size_t begin = colon;
    while (begin > pos && is_ipv6_char(text[begin - 1])) {
      --begin;
    }
    std::size_t end = colon + 1;
    while (end < text.size() && is_ipv6_char(text[end])) {
      ++end;
    }
    pos = end;
    std::size_t start = begin;
    while (start < end) {
      const bool after_prefix = start >= 5 && iequals_prefix(text.substr(start - 5, 5), "ipv6:");
      if (text[start] != '.' && (after_prefix || ipv6_left_boundary(text, start))) {
        break;
      }
      ++start;
    }
    if (start == end) {
      continue;
    }
    std::size_t colons = 0;
    std::size_t hex_digits = 0;
    for (std::size_t i = start; i < end; ++i) {
      colons += text[i] == ':' ? 1U : 0U;
      hex_digits += is_hex(text[i]) ? 1U : 0U;
    }
    std::size_t stop = end;
    while (stop > start && text[stop - 1] == '.') {
      --stop;
    }
    if (stop > start + 1 && text[stop - 1] == ':' && text[stop - 2] != ':') {
      --stop; // "address 2001:db8::1: refused"
    }
    if (colons >= 2 && hex_digits >= 4 && right_boundary(text, end)) {
      if (parse_ipv6(text.substr(start, stop - start))) {
        emit(start, stop);
      }
    }
  }
}

} // namespace

[[nodiscard]] std::optional<std::string_view>
email_candidate(std::string_view text, std::size_t at, std::size_t floor, std::size_t *end_out) {
  // Left: local part.
  std::size_t begin = at;
  while (begin > floor) {
    const char c = text[begin - 1];
    if (static_cast<unsigned char>(c) < 0x80U) {
      if (!is_local_ascii(c)) {
        break;
      }
      --begin;
      continue;
    }
    std::size_t start = 0;
    const std::optional<Decoded> decoded = decode_before(text, begin, floor, &start);
    if (!decoded || !is_word_code_point(decoded->code_point)) {
      break;
    }
    begin = start;
  }
  // Right: domain labels.
  std::size_t end = at + 1;
  while (end < text.size()) {
    const char c = text[end];
    if (static_cast<unsigned char>(c) < 0x80U) {
      if (!is_alnum(c) && c != '-' && c != '.') {
        break;
      }
      if (c == '.' && text[end - 1] == '.') {
        --end; // ".." ends the domain
        break;
      }
      ++end;
      continue;
    }
    const Decoded decoded = decode_utf8(text, end);
    if (decoded.code_point == k_bad_code_point || !is_word_code_point(decoded.code_point)) {
      break;
    }
    end += decoded.length;
  }
  *end_out = std::max(end, at + 1);

  std::string_view local = text.substr(begin, at - begin);
  if (const std::size_t cut = local.find_last_of(k_text_local_breaks);
      cut != std::string_view::npos) {
    local.remove_prefix(cut + 1);
  }
  if (const std::size_t leader = local.rfind("..."); leader != std::string_view::npos) {
    local.remove_prefix(local.find_first_not_of('.', leader) == std::string_view::npos
                            ? local.size()
                            : local.find_first_not_of('.', leader)); // "Smith......smith@x"
  }
  while (!local.empty() && (local.front() == '.' || local.front() == '\'')) {
    local.remove_prefix(1);
  }
  std::string_view domain = text.substr(at + 1, end - at - 1);
  while (!domain.empty() && (domain.back() == '.' || domain.back() == '-')) {
    domain.remove_suffix(1);
  }
  if (local.empty() || domain.empty()) {
    return std::nullopt;
  }
  // The domain needs a dot and a top-level label of at least two letters.
  const std::size_t dot = domain.rfind('.');
  if (dot == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view tld = domain.substr(dot + 1);
  if (tld.size() < 2) {
    return std::nullopt;
  }
  if (is_ascii(tld) && !iequals_prefix(tld, "xn--") &&
      !std::ranges::all_of(tld, [](char c) { return is_alpha(c); })) {
    return std::nullopt;
  }
  // local and domain are the two sides of the same '@': one view of the text holds both.
  return text.substr(static_cast<std::size_t>(local.data() - text.data()),
                     local.size() + 1 + domain.size());
}

[[nodiscard]] bool is_reference(std::string_view text, std::string_view candidate) {
  const auto begin = static_cast<std::size_t>(candidate.data() - text.data());
  if (begin > 0 && text[begin - 1] == '/') {
    return true;
  }
  return begin >= 4 && (iequals_prefix(text.substr(begin - 4, 4), "cid:") ||
                        iequals_prefix(text.substr(begin - 4, 4), "mid:"));
}

std::optional<ObfuscatedAddress> obfuscated_at(std::string_view text, std::size_t sep, std::size_t sep_size) {
  const auto local_char = [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'; };
  const auto domain_char = [](char c) { return is_alnum(c) || c == '.' || c == '-'; };
  std::size_t begin = sep;
  while (begin > 0 && local_char(text[begin - 1])) {
    --begin;
  }
  while (begin < sep && (text[begin] == '.' || text[begin] == '-')) {
    ++begin;
  }
  std::size_t end = sep + sep_size;
  while (end < text.size() && domain_char(text[end])) {
    ++end;
  }
  while (end > sep + sep_size && (text[end - 1] == '.' || text[end - 1] == '-')) {
    --end;
  }
  if (begin == sep || text[sep - 1] == '.' || end == sep + sep_size) {
    return std::nullopt;
  }
  // Glued to a word or an address on either side: part of something else.
  if ((begin > 0 && (static_cast<unsigned char>(text[begin - 1]) >= 0x80 || text[begin - 1] == '@')) ||
      (end < text.size() && (static_cast<unsigned char>(text[end]) >= 0x80 || text[end] == '@'))) {
    return std::nullopt;
  }
  const std::string_view domain = text.substr(sep + sep_size, end - sep - sep_size);
  const std::size_t dot = domain.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || domain.find("..") != std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view tld = domain.substr(dot + 1);
  if (tld.size() < 2 || !std::ranges::all_of(tld, [](char c) { return is_alpha(c); })) {
    return std::nullopt;
  }
  return ObfuscatedAddress{begin, end, text.substr(begin, sep - begin), domain};
}

std::optional<std::string> deobfuscated(std::string_view text) {
  text = trim(text);
  for (std::string_view at : k_obfuscated_at) {
    for (std::size_t sep = 0; sep + at.size() <= text.size(); ++sep) {
      if (!iequals_prefix(text.substr(sep), at)) {
        continue;
      }
      std::optional<ObfuscatedAddress> a = obfuscated_at(text, sep, at.size());
      if (!a || a->begin != 0) {
        return std::nullopt;
      }
      const std::string_view rest = trim(text.substr(a->end));
      if (!rest.empty() && !(rest.front() == '(' && rest.back() == ')')) {
        return std::nullopt;
      }
      std::string out(a->local);
      out += '@';
      out += a->domain;
      if (!rest.empty()) {
        out += ' ';
        out += rest;
      }
      return out;
    }
  }
  return std::nullopt;
}

} // namespace maildsar::index::identity_detail

namespace maildsar::index {

std::vector<TextSpan> obfuscated_email_spans(std::string_view text) {
  std::vector<TextSpan> spans;
  for (std::string_view at : identity_detail::k_obfuscated_at) {
    // The separators hold "at" in one case or the other: look for 'a'/'A' after a space or bracket.
    for (std::size_t pos = 0; pos + at.size() <= text.size(); ++pos) {
      if (text[pos] != at.front() || !identity_detail::iequals_prefix(text.substr(pos), at)) {
        continue;
      }
      if (std::optional<identity_detail::ObfuscatedAddress> a = identity_detail::obfuscated_at(text, pos, at.size())) {
        const bool inside = std::ranges::any_of(spans, [&](const TextSpan &s) { return a->begin < s.end && s.begin < a->end; });
        if (!inside) {
          spans.push_back(TextSpan{IdentityKind::email, a->begin, a->end});
        }
        pos = a->end;
      }
    }
  }
  std::ranges::sort(spans, {}, &TextSpan::begin);
  return spans;
}

using namespace identity_detail;

std::vector<TextSpan> address_spans(std::string_view text) {
  std::vector<TextSpan> spans;
  // Emails: around every '@' (found with memchr); a candidate's extent is not scanned again.
  std::size_t floor = 0;
  std::size_t pos = 0;
  while ((pos = text.find('@', pos)) != std::string_view::npos) {
    std::size_t end = pos + 1;
    if (const std::optional<std::string_view> candidate = email_candidate(text, pos, floor, &end)) {
      const auto begin = static_cast<std::size_t>(candidate->data() - text.data());
      spans.push_back(TextSpan{IdentityKind::email, begin, begin + candidate->size()});
    }
    floor = end;
    pos = end;
  }
  scan_ipv4(text, [&](std::size_t b, std::size_t e) {
    spans.push_back(TextSpan{IdentityKind::ip, b, e});
  });
  scan_ipv6(text, [&](std::size_t b, std::size_t e) {
    spans.push_back(TextSpan{IdentityKind::ip, b, e});
  });
  return spans;
}

} // namespace maildsar::index
