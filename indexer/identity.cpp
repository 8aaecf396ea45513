// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/identity.hpp"

#include "core/log.hpp"
#include "indexer/phone_module.hpp"

#include <arpa/inet.h>
#include <glib.h>
#include <idn2.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace maildsar::index {

std::string_view to_string(IdentityKind kind) {
  switch (kind) {
  case IdentityKind::email:
    return "email";
  case IdentityKind::name:
    return "name";
  case IdentityKind::phone:
    return "phone";
  case IdentityKind::ip:
    return "ip";
  }
  return "unknown";
}

namespace {

/** The phone-number module, loaded on first use; a module that cannot be loaded is fatal. */
const PhoneModule &phone_module() {
  auto module = PhoneModule::get();
  if (!module) {
    throw std::runtime_error(module.error().message);
  }
  return **module;
}


// ---------------------------------------------------------------------------------------------
// Small C-resource helpers (STYLE §19).

struct GFreeDeleter {
  void operator()(char *pointer) const noexcept { g_free(pointer); }
};
using GCharPtr = std::unique_ptr<char, GFreeDeleter>;

struct IdnFreeDeleter {
  void operator()(char *pointer) const noexcept { idn2_free(pointer); }
};
using IdnCharPtr = std::unique_ptr<char, IdnFreeDeleter>;

[[nodiscard]] std::string take_gchar(char *owned) {
  const GCharPtr holder(owned);
  return holder ? std::string(holder.get()) : std::string();
}

// ---------------------------------------------------------------------------------------------
// UTF-8.

constexpr char32_t k_bad_code_point = 0xFFFFFFFFU;

struct Decoded {
  char32_t code_point = k_bad_code_point; // k_bad_code_point when the bytes are not UTF-8
  std::size_t length = 1;                 // bytes consumed (1 for a bad byte)
};

[[nodiscard]] constexpr unsigned char byte_at(std::string_view text, std::size_t pos) {
  return static_cast<unsigned char>(text[pos]);
}

[[nodiscard]] constexpr bool is_continuation(unsigned char byte) { return (byte & 0xC0U) == 0x80U; }

/** Strict UTF-8 decoding (no overlongs, no surrogates, at most U+10FFFF). */
[[nodiscard]] Decoded decode_utf8(std::string_view text, std::size_t pos) {
  const unsigned char lead = byte_at(text, pos);
  if (lead < 0x80U) {
    return {lead, 1};
  }
  std::size_t length = 0;
  unsigned char low = 0x80U;
  unsigned char high = 0xBFU;
  char32_t value = 0;
  if (lead >= 0xC2U && lead <= 0xDFU) {
    length = 2;
    value = lead & 0x1FU;
  } else if (lead >= 0xE0U && lead <= 0xEFU) {
    length = 3;
    value = lead & 0x0FU;
    if (lead == 0xE0U) {
      low = 0xA0U;
    } else if (lead == 0xEDU) {
      high = 0x9FU;
    }
  } else if (lead >= 0xF0U && lead <= 0xF4U) {
    length = 4;
    value = lead & 0x07U;
    if (lead == 0xF0U) {
      low = 0x90U;
    } else if (lead == 0xF4U) {
      high = 0x8FU;
    }
  } else {
    return {};
  }
  if (pos + length > text.size()) {
    return {};
  }
  for (std::size_t i = 1; i < length; ++i) {
    const unsigned char byte = byte_at(text, pos + i);
    if (i == 1 ? (byte < low || byte > high) : !is_continuation(byte)) {
      return {};
    }
    value = (value << 6U) | (byte & 0x3FU);
  }
  return {value, length};
}

/** Start of the code point that ends just before `pos` (not below `floor`), if valid UTF-8. */
[[nodiscard]] std::optional<Decoded> decode_before(std::string_view text, std::size_t pos,
                                                   std::size_t floor, std::size_t *start) {
  if (pos <= floor) {
    return std::nullopt;
  }
  std::size_t lead = pos - 1;
  int steps = 0;
  while (lead > floor && is_continuation(byte_at(text, lead)) && steps < 3) {
    --lead;
    ++steps;
  }
  const Decoded decoded = decode_utf8(text, lead);
  if (decoded.code_point == k_bad_code_point || lead + decoded.length != pos) {
    return std::nullopt;
  }
  *start = lead;
  return decoded;
}

void append_utf8(std::string &out, char32_t cp) {
  if (cp < 0x80U) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800U) {
    out.push_back(static_cast<char>(0xC0U | (cp >> 6U)));
    out.push_back(static_cast<char>(0x80U | (cp & 0x3FU)));
  } else if (cp < 0x10000U) {
    out.push_back(static_cast<char>(0xE0U | (cp >> 12U)));
    out.push_back(static_cast<char>(0x80U | ((cp >> 6U) & 0x3FU)));
    out.push_back(static_cast<char>(0x80U | (cp & 0x3FU)));
  } else {
    out.push_back(static_cast<char>(0xF0U | (cp >> 18U)));
    out.push_back(static_cast<char>(0x80U | ((cp >> 12U) & 0x3FU)));
    out.push_back(static_cast<char>(0x80U | ((cp >> 6U) & 0x3FU)));
    out.push_back(static_cast<char>(0x80U | (cp & 0x3FU)));
  }
}

[[nodiscard]] bool is_valid_utf8(std::string_view text) {
  for (std::size_t pos = 0; pos < text.size();) {
    const Decoded decoded = decode_utf8(text, pos);
    if (decoded.code_point == k_bad_code_point) {
      return false;
    }
    pos += decoded.length;
  }
  return true;
}

/** `text` with every byte that is not part of a valid UTF-8 sequence (and NULs) dropped. */
[[nodiscard]] std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    const Decoded decoded = decode_utf8(text, pos);
    if (decoded.code_point != k_bad_code_point && decoded.code_point != 0) {
      out.append(text.substr(pos, decoded.length));
    }
    pos += decoded.length;
  }
  return out;
}

[[nodiscard]] bool is_ascii(std::string_view text) {
  return std::ranges::all_of(text, [](char c) { return static_cast<unsigned char>(c) < 0x80U; });
}

[[nodiscard]] constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
[[nodiscard]] constexpr bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
[[nodiscard]] constexpr bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }
[[nodiscard]] constexpr bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
[[nodiscard]] constexpr bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}
[[nodiscard]] constexpr char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

[[nodiscard]] std::string ascii_lower(std::string_view text) {
  std::string out(text);
  std::ranges::transform(out, out.begin(), [](char c) { return ascii_lower(c); });
  return out;
}

[[nodiscard]] bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (ascii_lower(text[i]) != ascii_lower(prefix[i])) {
      return false;
    }
  }
  return true;
}

[[nodiscard]] std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_space(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

[[nodiscard]] bool is_mark(char32_t cp) {
  const GUnicodeType type = g_unichar_type(static_cast<gunichar>(cp));
  return type == G_UNICODE_NON_SPACING_MARK || type == G_UNICODE_SPACING_MARK ||
         type == G_UNICODE_ENCLOSING_MARK;
}

/** A letter, digit or combining mark of any script. */
[[nodiscard]] bool is_word_code_point(char32_t cp) {
  if (cp < 0x80U) {
    return is_alnum(static_cast<char>(cp));
  }
  return g_unichar_isalnum(static_cast<gunichar>(cp)) != FALSE || is_mark(cp);
}

/** Printable ASCII allowed unquoted in a local part (RFC 5322 atext plus the dot). */
[[nodiscard]] constexpr bool is_local_ascii(char c) {
  if (is_alnum(c)) {
    return true;
  }
  constexpr std::string_view k_specials = "!#$%&'*+-/=?^_`{|}~.";
  return k_specials.find(c) != std::string_view::npos;
}

// ---------------------------------------------------------------------------------------------
// IP addresses.

/** Decimal dotted quad, each part 1-3 digits and at most 255. */
[[nodiscard]] std::optional<std::string> parse_ipv4(std::string_view text) {
  std::array<unsigned, 4> parts{};
  std::size_t part = 0;
  std::size_t digits = 0;
  unsigned value = 0;
  for (const char c : text) {
    if (is_digit(c)) {
      if (++digits > 3) {
        return std::nullopt;
      }
      value = value * 10 + static_cast<unsigned>(c - '0');
    } else if (c == '.') {
      if (digits == 0 || value > 255 || part >= 3) {
        return std::nullopt;
      }
      parts[part++] = value;
      digits = 0;
      value = 0;
    } else {
      return std::nullopt;
    }
  }
  if (part != 3 || digits == 0 || value > 255) {
    return std::nullopt;
  }
  parts[3] = value;
  std::string canonical; // at most 15 characters: no heap allocation
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) {
      canonical.push_back('.');
    }
    const unsigned value_part = parts[i];
    if (value_part >= 100) {
      canonical.push_back(static_cast<char>('0' + value_part / 100));
    }
    if (value_part >= 10) {
      canonical.push_back(static_cast<char>('0' + value_part / 10 % 10));
    }
    canonical.push_back(static_cast<char>('0' + value_part % 10));
  }
  return canonical;
}

[[nodiscard]] std::optional<std::string> parse_ipv6(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN ||
      text.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) {
    return std::nullopt; // also rejects zone ids ("%eth0")
  }
  const std::string copy(text);
  in6_addr address{};
  if (inet_pton(AF_INET6, copy.c_str(), &address) != 1) {
    return std::nullopt;
  }
  const auto *bytes = address.s6_addr;
  const bool mapped = std::all_of(bytes, bytes + 10, [](std::uint8_t b) { return b == 0; }) &&
                      bytes[10] == 0xFFU && bytes[11] == 0xFFU;
  if (mapped) {
    return std::to_string(bytes[12]) + '.' + std::to_string(bytes[13]) + '.' +
           std::to_string(bytes[14]) + '.' + std::to_string(bytes[15]);
  }
  std::array<char, INET6_ADDRSTRLEN> buffer{};
  if (inet_ntop(AF_INET6, &address, buffer.data(), static_cast<socklen_t>(buffer.size())) ==
      nullptr) {
    return std::nullopt;
  }
  return ascii_lower(buffer.data());
}

[[nodiscard]] std::optional<std::string> normalize_ip(std::string_view raw) {
  std::string_view text = trim(raw);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = trim(text.substr(1, text.size() - 2));
  }
  if (iequals_prefix(text, "ipv6:")) {
    text.remove_prefix(5);
  }
  if (text.empty() || text.size() > 64) {
    return std::nullopt;
  }
  if (text.find(':') != std::string_view::npos) {
    return parse_ipv6(text);
  }
  return parse_ipv4(text);
}

// ---------------------------------------------------------------------------------------------
// Names.

/** Letters that do not decompose under NFKD, as their usual ASCII spelling (after case fold). */
[[nodiscard]] std::string_view fold_special_letter(char32_t cp) {
  switch (cp) {
  case 0x00DF: // ß
    return "ss";
  case 0x00E6: // æ
    return "ae";
  case 0x00F8: // ø
    return "o";
  case 0x0142: // ł
    return "l";
  case 0x0111: // đ
    return "d";
  case 0x0153: // œ
    return "oe";
  case 0x00FE: // þ
    return "th";
  case 0x00F0: // ð
    return "d";
  case 0x0131: // ı
    return "i";
  case 0x0127: // ħ
    return "h";
  case 0x0167: // ŧ
    return "t";
  default:
    return {};
  }
}

[[nodiscard]] std::vector<std::string> fold_name_tokens(std::string_view raw) {
  // Fast path for pure ASCII (most mail text): NFKD, mark removal and case folding reduce to
  // ASCII lower-casing; the result is the same as the general path below.
  if (std::all_of(raw.begin(), raw.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80U; })) {
    std::vector<std::string> tokens;
    std::string current;
    for (char c : raw) {
      if (is_alnum(c)) {
        current.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c);
      } else if (!current.empty()) {
        tokens.push_back(std::move(current));
        current.clear();
      }
    }
    if (!current.empty()) {
      tokens.push_back(std::move(current));
    }
    return tokens;
  }
  const std::string clean = sanitize_utf8(raw);
  // NFKD, then drop the non-spacing marks (accents).
  const std::string decomposed =
      take_gchar(g_utf8_normalize(clean.c_str(), static_cast<gssize>(clean.size()),
                                  G_NORMALIZE_NFKD));
  std::string stripped;
  stripped.reserve(decomposed.size());
  for (std::size_t pos = 0; pos < decomposed.size();) {
    const Decoded decoded = decode_utf8(decomposed, pos);
    const GUnicodeType type = g_unichar_type(static_cast<gunichar>(decoded.code_point));
    if (decoded.code_point != k_bad_code_point && type != G_UNICODE_NON_SPACING_MARK &&
        type != G_UNICODE_ENCLOSING_MARK) {
      stripped.append(decomposed, pos, decoded.length);
    }
    pos += decoded.length;
  }
  const std::string folded =
      take_gchar(g_utf8_casefold(stripped.c_str(), static_cast<gssize>(stripped.size())));

  std::vector<std::string> tokens;
  std::string current;
  const auto flush = [&] {
    if (!current.empty()) {
      tokens.push_back(std::move(current));
      current.clear();
    }
  };
  for (std::size_t pos = 0; pos < folded.size();) {
    const Decoded decoded = decode_utf8(folded, pos);
    pos += decoded.length;
    const char32_t cp = decoded.code_point;
    if (cp == k_bad_code_point) {
      flush();
      continue;
    }
    if (const std::string_view special = fold_special_letter(cp); !special.empty()) {
      current.append(special);
    } else if (g_unichar_type(static_cast<gunichar>(cp)) == G_UNICODE_NON_SPACING_MARK) {
      continue; // a mark that case folding produced (İ -> i + U+0307)
    } else if (is_word_code_point(cp)) {
      append_utf8(current, cp);
    } else {
      flush();
    }
  }
  flush();
  return tokens;
}

/** True when `raw` may hold a letter that German/Nordic spelling transliterates. */
[[nodiscard]] bool may_transliterate(std::string_view raw) {
  for (std::size_t i = 0; i + 1 < raw.size(); ++i) {
    const unsigned char lead = byte_at(raw, i);
    const unsigned char next = byte_at(raw, i + 1);
    if (lead == 0xC3U && (next == 0x84U || next == 0x96U || next == 0x9CU || next == 0x9FU ||
                          next == 0xA4U || next == 0xB6U || next == 0xBCU || next == 0x98U ||
                          next == 0xB8U || next == 0x85U || next == 0xA5U)) {
      return true; // Ä Ö Ü ß ä ö ü Ø ø Å å
    }
    if (lead == 0xCCU && (next == 0x88U || next == 0x8AU)) {
      return true; // combining diaeresis, ring above
    }
  }
  return false;
}

/** `raw` (NFC) with ä ö ü ß ø å spelt ae oe ue ss oe aa (German/Nordic transliteration). */
[[nodiscard]] std::string transliterate(std::string_view raw) {
  const std::string clean = sanitize_utf8(raw);
  const std::string composed =
      take_gchar(g_utf8_normalize(clean.c_str(), static_cast<gssize>(clean.size()), G_NORMALIZE_NFC));
  std::string out;
  out.reserve(composed.size() + 8);
  for (std::size_t pos = 0; pos < composed.size();) {
    const Decoded decoded = decode_utf8(composed, pos);
    std::string_view spelt;
    switch (decoded.code_point) {
    case 0x00E4: spelt = "ae"; break; // ä
    case 0x00C4: spelt = "Ae"; break;
    case 0x00F6: spelt = "oe"; break; // ö
    case 0x00D6: spelt = "Oe"; break;
    case 0x00FC: spelt = "ue"; break; // ü
    case 0x00DC: spelt = "Ue"; break;
    case 0x00DF: spelt = "ss"; break; // ß
    case 0x00F8: spelt = "oe"; break; // ø
    case 0x00D8: spelt = "Oe"; break;
    case 0x00E5: spelt = "aa"; break; // å
    case 0x00C5: spelt = "Aa"; break;
    default: break;
    }
    if (!spelt.empty()) {
      out.append(spelt);
    } else {
      out.append(composed, pos, decoded.length);
    }
    pos += decoded.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Email addresses.

constexpr std::size_t k_max_local_bytes = 256;
constexpr std::size_t k_max_domain_bytes = 253;
constexpr std::size_t k_max_label_bytes = 63;

/**
 * A local part as real mail writes it: RFC 5322 atext and dots, including the obsolete forms
 * that mail readers show and archives hold (consecutive, leading or trailing dots:
 * `d..steffes@`, `john.@`), and non-ASCII letters (RFC 6531).
 */
[[nodiscard]] bool valid_local_part(std::string_view local) {
  if (local.empty() || local.size() > k_max_local_bytes ||
      local.find_first_not_of('.') == std::string_view::npos) {
    return false;
  }
  for (std::size_t pos = 0; pos < local.size();) {
    const Decoded decoded = decode_utf8(local, pos);
    const char32_t cp = decoded.code_point;
    if (cp == k_bad_code_point) {
      return false;
    }
    if (cp < 0x80U) {
      if (!is_local_ascii(static_cast<char>(cp))) {
        return false;
      }
    } else if (g_unichar_isgraph(static_cast<gunichar>(cp)) == FALSE) {
      return false;
    }
    pos += decoded.length;
  }
  return true;
}

/** The content of a quoted local part: printable characters and blanks, no quote or control. */
[[nodiscard]] bool valid_quoted_local(std::string_view local) {
  if (local.empty() || local.size() > k_max_local_bytes || trim(local).empty()) {
    return false;
  }
  for (std::size_t pos = 0; pos < local.size();) {
    const Decoded decoded = decode_utf8(local, pos);
    const char32_t cp = decoded.code_point;
    if (cp == k_bad_code_point || cp == '"' || cp == '\\' || cp < 0x20U || cp == 0x7FU) {
      return false;
    }
    pos += decoded.length;
  }
  return true;
}

/** Splits on '.'; every label non-empty, ASCII labels of letters, digits and inner hyphens. */
[[nodiscard]] bool valid_domain_labels(std::string_view domain) {
  if (domain.empty()) {
    return false;
  }
  std::size_t start = 0;
  while (start <= domain.size()) {
    std::size_t end = domain.find('.', start);
    if (end == std::string_view::npos) {
      end = domain.size();
    }
    const std::string_view label = domain.substr(start, end - start);
    if (label.empty() || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (std::size_t pos = 0; pos < label.size();) {
      const Decoded decoded = decode_utf8(label, pos);
      const char32_t cp = decoded.code_point;
      if (cp == k_bad_code_point) {
        return false;
      }
      if (cp < 0x80U) {
        if (!is_alnum(static_cast<char>(cp)) && cp != '-') {
          return false;
        }
      } else if (g_unichar_isgraph(static_cast<gunichar>(cp)) == FALSE) {
        return false;
      }
      pos += decoded.length;
    }
    start = end + 1;
  }
  return true;
}

[[nodiscard]] std::optional<std::string> normalize_domain(std::string_view domain) {
  while (!domain.empty() && domain.back() == '.') {
    domain.remove_suffix(1); // fully qualified form
  }
  if (domain.size() >= 2 && domain.front() == '[' && domain.back() == ']') {
    const std::optional<std::string> literal = normalize_ip(domain);
    if (!literal) {
      return std::nullopt;
    }
    const bool v6 = literal->find(':') != std::string::npos;
    return std::string(v6 ? "[ipv6:" : "[") + *literal + "]";
  }
  if (!valid_domain_labels(domain)) {
    return std::nullopt;
  }
  std::string result;
  if (is_ascii(domain)) {
    result = ascii_lower(domain);
  } else {
    const std::string lowered =
        take_gchar(g_utf8_strdown(domain.data(), static_cast<gssize>(domain.size())));
    const std::string composed = take_gchar(
        g_utf8_normalize(lowered.c_str(), static_cast<gssize>(lowered.size()), G_NORMALIZE_NFC));
    char *raw_output = nullptr;
    int rc = idn2_to_ascii_8z(composed.c_str(), &raw_output,
                              IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
      raw_output = nullptr;
      rc = idn2_to_ascii_8z(composed.c_str(), &raw_output, IDN2_NFC_INPUT | IDN2_TRANSITIONAL);
    }
    const IdnCharPtr output(rc == IDN2_OK ? raw_output : nullptr);
    result = output ? ascii_lower(output.get()) : composed;
  }
  if (result.empty() || result.size() > k_max_domain_bytes) {
    return std::nullopt;
  }
  if (is_ascii(result)) {
    std::size_t start = 0;
    while (start <= result.size()) {
      std::size_t end = result.find('.', start);
      if (end == std::string::npos) {
        end = result.size();
      }
      if (end - start > k_max_label_bytes) {
        return std::nullopt;
      }
      start = end + 1;
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Free-text scanners.

/** Characters of a local part that, in free text, end a key or URL rather than an address. */
constexpr std::string_view k_text_local_breaks = "=/?&|{}`~";

/** Extends an email candidate around the '@' at `at`; `floor` bounds the left scan. */
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

/**
 * True when an address-shaped candidate (a view into `text`) is a reference, not an address:
 * a URL path segment ("https://lore.kernel.org/r/<message-id>", "a@x.org/b@x.org") or a
 * cid:/mid: reference to a MIME part or message.
 */
[[nodiscard]] bool is_reference(std::string_view text, std::string_view candidate) {
  const auto begin = static_cast<std::size_t>(candidate.data() - text.data());
  if (begin > 0 && text[begin - 1] == '/') {
    return true;
  }
  return begin >= 4 && (iequals_prefix(text.substr(begin - 4, 4), "cid:") ||
                        iequals_prefix(text.substr(begin - 4, 4), "mid:"));
}

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
/** extract_from_text compares a new value with the ones it found so far up to this many. */
constexpr std::size_t k_linear_dedupe_limit = 32;

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

/**
 * A display name without the words that hold an address ("Alice Smith (alice@example.com)" ->
 * "Alice Smith "), so that the address does not become part of the name.
 */
[[nodiscard]] std::string without_addresses(std::string_view name) {
  if (name.find('@') == std::string_view::npos) {
    return std::string(name);
  }
  std::string kept;
  std::size_t pos = 0;
  while (pos < name.size()) {
    std::size_t end = pos;
    while (end < name.size() && !is_space(name[end])) {
      ++end;
    }
    const std::string_view word = name.substr(pos, end - pos);
    if (word.find('@') == std::string_view::npos) {
      kept.append(word);
    }
    kept.push_back(' ');
    pos = end + 1;
  }
  return kept;
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

/**
 * Phone numbers. A cheap pre-filter picks the candidates: stretches of digits and phone
 * punctuation with at least k_phone_min_digits digits, split into tokens at white space. A token
 * is a barrier (no window holds it) when it is glued to a letter, '=', '@', brackets and the
 * like (`pid[12345]`, `size=1234`, `<123.456@host>`), is a time fragment next to ':' digits, an
 * IPv4 address, a date, holds a '+' that is not its first character, or is too long. The
 * libphonenumber matcher then runs on windows of whole non-barrier tokens with 7 to 17 digits,
 * longest first, so that a number followed by other digits ("+44 20 7946 0123 12") is still
 * found. Each distinct window is matched once; at most k_phone_max_matches windows per text.
 */
template <class Emit>
void scan_phones(std::string_view text, const std::string &region,
                 Emit &&emit) {
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

} // namespace

// ---------------------------------------------------------------------------------------------

core::Status Normalizer::load_phone_module() {
  MAILDSAR_TRY(PhoneModule::get());
  return {};
}

struct Normalizer::Impl {
  NormalizeOptions options;
  std::string region;
  explicit Impl(NormalizeOptions opts) : options(std::move(opts)), region(options.phone_region) {
    std::ranges::transform(region, region.begin(), [](char c) {
      return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    });
  }

  enum class Fold { subaddress, none };
  [[nodiscard]] std::optional<std::string> email(std::string_view raw,
                                                 Fold fold = Fold::subaddress) const;
  [[nodiscard]] std::optional<std::string> wrapped_email(std::string_view raw) const;
  [[nodiscard]] std::optional<std::string> phone(std::string_view raw) const;
};

namespace {

/** `text` is one or more characters of `allowed`, at most `max`. */
bool all_of_set(std::string_view text, std::string_view allowed, std::size_t min, std::size_t max) {
  return text.size() >= min && text.size() <= max &&
         text.find_first_not_of(allowed) == std::string_view::npos;
}

/** A host name as SRS writes the original domain: two or more labels of [a-z0-9-]. */
bool srs_domain(std::string_view d) {
  if (d.empty() || d.size() > 253 || d.find('.') == std::string_view::npos) {
    return false;
  }
  std::size_t start = 0;
  while (start <= d.size()) {
    std::size_t dot = d.find('.', start);
    std::string_view label = d.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!all_of_set(label, "abcdefghijklmnopqrstuvwxyz0123456789-", 1, 63) || label.front() == '-' ||
        label.back() == '-') {
      return false;
    }
    if (dot == std::string_view::npos) {
      break;
    }
    start = dot + 1;
  }
  return true;
}

constexpr std::string_view k_srs_hash_chars = "abcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view k_srs_time_chars = "abcdefghijklmnopqrstuvwxyz234567";

/** Cuts `text` at the next '=': the part before it, and `text` left after it. */
std::optional<std::string_view> next_field(std::string_view &text) {
  const std::size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view field = text.substr(0, eq);
  text.remove_prefix(eq + 1);
  return field;
}

/** "HHH=TT=domain=local" of SRS0 (and of the SRS0 part inside SRS1): "local@domain". */
std::optional<std::string> srs0_payload(std::string_view rest) {
  auto hash = next_field(rest);
  auto stamp = hash ? next_field(rest) : std::nullopt;
  auto domain = stamp ? next_field(rest) : std::nullopt;
  if (!domain || !all_of_set(*hash, k_srs_hash_chars, 1, 32) ||
      !all_of_set(*stamp, k_srs_time_chars, 2, 2) || !srs_domain(*domain) || rest.empty()) {
    return std::nullopt;
  }
  return std::string(rest) + "@" + std::string(*domain);
}

/**
 * The address a BATV or SRS rewritten address wraps, from an address with its local part
 * lower-cased and NOT subaddress-folded (SRS hashes may hold '+'); nullopt for anything else.
 * Exactly these forms (separators after SRS0/SRS1 may be '=', '+' or '-', as libsrs2 allows):
 *  - BATV: `prvs=TAG=local@domain` with TAG 6-16 hex digits -> local@domain;
 *  - SRS0: `SRS0=HHH=TT=orig.domain=local@forwarder` with HHH 1-32 base64 characters, TT two
 *    base32 characters and orig.domain a host name of two or more labels -> local@orig.domain;
 *  - SRS1: `SRS1=HHH=first.forwarder==HHH=TT=orig.domain=local@forwarder` -> local@orig.domain.
 */
std::optional<std::string> unwrap_batv_srs(std::string_view address) {
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  constexpr std::string_view separators = "=+-";
  if (local.starts_with("prvs=")) {
    std::string_view rest = local.substr(5);
    auto tag = next_field(rest);
    if (!tag || !all_of_set(*tag, "0123456789abcdef", 6, 16) || rest.empty()) {
      return std::nullopt;
    }
    return std::string(rest) + "@" + std::string(domain);
  }
  if (local.size() < 5 || separators.find(local[4]) == std::string_view::npos) {
    return std::nullopt;
  }
  if (local.starts_with("srs0")) {
    return srs0_payload(local.substr(5));
  }
  if (local.starts_with("srs1")) {
    std::string_view rest = local.substr(5);
    auto hash = next_field(rest);
    auto forwarder = hash ? next_field(rest) : std::nullopt;
    if (!forwarder || !all_of_set(*hash, k_srs_hash_chars, 1, 32) || !srs_domain(*forwarder) ||
        rest.empty() || separators.find(rest.front()) == std::string_view::npos) {
      return std::nullopt;
    }
    return srs0_payload(rest.substr(1));
  }
  return std::nullopt;
}

} // namespace

std::optional<std::string> Normalizer::Impl::wrapped_email(std::string_view raw) const {
  // Cheap filter first: most addresses are none of these.
  const std::string_view text = trim(raw);
  const std::size_t start = text.find_first_not_of("<\"' ");
  if (start == std::string_view::npos || text.size() - start < 5) {
    return std::nullopt;
  }
  const std::string_view head = text.substr(start, 5);
  if (!iequals_prefix(head, "prvs=") && !iequals_prefix(head, "srs0") && !iequals_prefix(head, "srs1")) {
    return std::nullopt;
  }
  const std::optional<std::string> unfolded = email(raw, Fold::none);
  if (!unfolded || unfolded->front() == '"') {
    return std::nullopt;
  }
  const std::optional<std::string> inner = unwrap_batv_srs(*unfolded);
  if (!inner) {
    return std::nullopt;
  }
  std::optional<std::string> out = email(*inner);
  if (out && out == email(raw)) {
    return std::nullopt;
  }
  return out;
}

std::optional<std::string> Normalizer::Impl::email(std::string_view raw, Fold fold) const {
  std::string_view text = trim(raw);
  if (text.empty() || text.size() > 1024 || !is_valid_utf8(text)) {
    return std::nullopt;
  }
  if (iequals_prefix(text, "mailto:")) {
    text.remove_prefix(7);
    text = text.substr(0, text.find('?'));
  }
  if (const std::size_t open = text.rfind('<'); open != std::string_view::npos) {
    const std::size_t close = text.find('>', open);
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    text = text.substr(open + 1, close - open - 1);
  } else if (text.find('>') != std::string_view::npos) {
    return std::nullopt;
  } else if (const std::size_t comment = text.find('(');
             comment != std::string_view::npos && text.back() == ')') {
    text = text.substr(0, comment); // old style "alice@example.com (Alice Smith)"
  }
  // Strip surrounding white space, quotes and trailing dots until nothing changes.
  for (std::size_t before = 0; before != text.size();) {
    before = text.size();
    text = trim(text);
    if (text.size() >= 2 && (text.front() == '"' || text.front() == '\'') &&
        text.back() == text.front()) {
      text = text.substr(1, text.size() - 2);
    }
    while (!text.empty() && text.back() == '.') {
      text.remove_suffix(1);
    }
  }
  const std::size_t at = text.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= text.size()) {
    return std::nullopt;
  }
  std::string_view local = text.substr(0, at);
  const std::string_view domain_raw = text.substr(at + 1);
  bool keep_quotes = false;
  if (local.size() >= 2 && local.front() == '"' && local.back() == '"') {
    local = local.substr(1, local.size() - 2); // "john.doe"@x is john.doe@x
    if (!valid_local_part(local)) {
      // A quoted local part that needs its quotes ("john doe"@x): printable characters and
      // blanks, kept quoted so it never equals an unquoted address.
      if (!valid_quoted_local(local)) {
        return std::nullopt;
      }
      keep_quotes = true;
    }
  } else if (!valid_local_part(local)) {
    return std::nullopt;
  }
  std::optional<std::string> domain = normalize_domain(domain_raw);
  if (!domain) {
    return std::nullopt;
  }
  std::string folded_local;
  if (is_ascii(local)) {
    folded_local = ascii_lower(local);
  } else {
    const std::string folded =
        take_gchar(g_utf8_casefold(local.data(), static_cast<gssize>(local.size())));
    folded_local = take_gchar(
        g_utf8_normalize(folded.c_str(), static_cast<gssize>(folded.size()), G_NORMALIZE_NFC));
  }
  // Subaddress: drop everything from the first separator (never the whole local part).
  std::size_t separator = std::string::npos;
  for (const char c : options.subaddress_separators) {
    if (static_cast<unsigned char>(c) < 0x80U && c != '.' && c != '@') {
      separator = std::min(separator, folded_local.find(c));
    }
  }
  if (separator != std::string::npos && separator > 0 && !keep_quotes && fold == Fold::subaddress) {
    folded_local.resize(separator);
  }
  if (folded_local.empty()) {
    return std::nullopt;
  }
  if (keep_quotes) {
    folded_local = '"' + folded_local + '"';
  }
  folded_local.push_back('@');
  folded_local.append(*domain);
  return folded_local;
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

// ---------------------------------------------------------------------------------------------

Normalizer::Normalizer(NormalizeOptions options)
    : m_impl(std::make_unique<Impl>(std::move(options))) {}
Normalizer::~Normalizer() = default;
Normalizer::Normalizer(Normalizer &&) noexcept = default;
Normalizer &Normalizer::operator=(Normalizer &&) noexcept = default;

std::optional<std::string> Normalizer::email(std::string_view raw) const {
  return m_impl->email(raw);
}

std::optional<std::string> Normalizer::wrapped_email(std::string_view raw) const {
  return m_impl->wrapped_email(raw);
}

std::string_view batv_srs_word(std::string_view text, std::size_t begin, std::size_t end) {
  constexpr std::string_view k_word = "=+-./_";
  while (begin > 0 && (is_alnum(text[begin - 1]) || k_word.find(text[begin - 1]) != std::string_view::npos)) {
    --begin;
  }
  return text.substr(begin, end - begin);
}

std::vector<std::string> Normalizer::name_tokens(std::string_view raw) const {
  return fold_name_tokens(raw);
}

std::optional<std::string> Normalizer::phone(std::string_view raw) const {
  return m_impl->phone(raw);
}

std::vector<std::vector<std::string>> Normalizer::name_token_variants(std::string_view raw) const {
  std::vector<std::string> tokens = fold_name_tokens(raw);
  std::vector<std::vector<std::string>> out;
  out.reserve(tokens.size());
  std::vector<std::string> alternate;
  if (may_transliterate(raw)) {
    alternate = fold_name_tokens(transliterate(raw));
    if (alternate.size() != tokens.size()) {
      alternate.clear(); // cannot pair them up: keep the folded spelling only
    }
  }
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::vector<std::string> spellings{std::move(tokens[i])};
    if (!alternate.empty() && alternate[i] != spellings.front()) {
      spellings.push_back(std::move(alternate[i]));
    }
    out.push_back(std::move(spellings));
  }
  return out;
}

std::optional<std::string> Normalizer::ip(std::string_view raw) const { return normalize_ip(raw); }

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

void Normalizer::extract_from_text(std::string_view text, connectors::Role role,
                                   std::vector<Identity> &out) const {
  // Values found by this call: a linear look-up while they are few (no allocation), a hash set
  // once there are many.
  const std::size_t first = out.size();
  std::unordered_set<std::string> seen;
  const auto seen_key = [](IdentityKind kind, std::string_view value) {
    std::string key(1, static_cast<char>('0' + static_cast<int>(kind)));
    key += value;
    return key;
  };
  const auto emit = [&](IdentityKind kind, std::string value) {
    const std::size_t found = out.size() - first;
    if (found < k_linear_dedupe_limit) {
      for (std::size_t i = first; i < out.size(); ++i) {
        if (out[i].kind == kind && out[i].value == value) {
          return;
        }
      }
    } else {
      if (seen.empty()) {
        for (std::size_t i = first; i < out.size(); ++i) {
          seen.insert(seen_key(out[i].kind, out[i].value));
        }
      }
      if (!seen.insert(seen_key(kind, value)).second) {
        return;
      }
    }
    out.push_back(Identity{kind, role, std::move(value)});
  };

  // Emails and IPs: the spans the redactor replaces too (one tokeniser for both). An address
  // that is a message reference is not indexed (the redactor may still replace it: never less).
  for (const TextSpan &span : address_spans(text)) {
    const std::string_view token = text.substr(span.begin, span.end - span.begin);
    if (span.kind == IdentityKind::email && is_reference(text, token)) {
      continue;
    }
    std::optional<std::string> normalised =
        span.kind == IdentityKind::email ? m_impl->email(token) : normalize_ip(token);
    if (normalised) {
      emit(span.kind, std::move(*normalised));
      if (span.kind == IdentityKind::email) {
        // BATV/SRS: the tokeniser ends a local part at '=', so look at the whole word too.
        if (std::optional<std::string> wrapped =
                m_impl->wrapped_email(batv_srs_word(text, span.begin, span.end))) {
          emit(IdentityKind::email, std::move(*wrapped)); // the sender it wraps
        }
      }
    }
  }
  scan_phones(text, m_impl->region, emit);
}

void Normalizer::extract_emails_from_text(std::string_view text, connectors::Role role,
                                          const std::string &field,
                                          std::vector<Identity> &out) const {
  std::size_t floor = 0;
  std::size_t pos = 0;
  while ((pos = text.find('@', pos)) != std::string_view::npos) {
    std::size_t end = pos + 1;
    if (const std::optional<std::string_view> candidate = email_candidate(text, pos, floor, &end);
        candidate && !is_reference(text, *candidate)) {
      if (std::optional<std::string> normalised = m_impl->email(*candidate)) {
        out.push_back(Identity{IdentityKind::email, role, std::move(*normalised), {}, field});
        if (std::optional<std::string> wrapped = m_impl->wrapped_email(*candidate)) {
          out.push_back(Identity{IdentityKind::email, role, std::move(*wrapped), {}, field});
        }
      }
      // In header values '=' is part of real local parts (SRS, VERP, BATV:
      // "bounces+1-list=lists.example.net@em.example.com", "prvs=0a1b=j.doe@example.com"):
      // the address with it is evidence too (besides the key=value reading above).
      auto begin = static_cast<std::size_t>(candidate->data() - text.data());
      if (begin > floor && text[begin - 1] == '=') {
        while (begin > floor && is_local_ascii(text[begin - 1])) {
          --begin;
        }
        while (text[begin] == '=' || text[begin] == '.') {
          ++begin;
        }
        const std::string_view full =
            text.substr(begin, candidate->size() + static_cast<std::size_t>(candidate->data() - text.data()) - begin);
        if (full.size() > candidate->size() && !is_reference(text, full)) {
          if (std::optional<std::string> normalised = m_impl->email(full)) {
            out.push_back(Identity{IdentityKind::email, role, std::move(*normalised), {}, field});
            if (std::optional<std::string> wrapped = m_impl->wrapped_email(full)) {
              out.push_back(Identity{IdentityKind::email, role, std::move(*wrapped), {}, field});
            }
          }
        }
      }
    }
    floor = end;
    pos = end;
  }
}

std::vector<Identity> Normalizer::extract(const connectors::Item &item) const {
  std::vector<Identity> found;
  for (const connectors::RawAddress &address : item.addresses) {
    std::optional<std::string> normalised;
    if (!address.addr.empty()) {
      normalised = m_impl->email(address.addr);
      if (normalised) {
        found.push_back(Identity{IdentityKind::email, address.role, *normalised, {}, address.field});
        if (std::optional<std::string> wrapped = m_impl->wrapped_email(address.addr)) {
          // A BATV- or SRS-rewritten sender also names the address it wraps (same role).
          found.push_back(Identity{IdentityKind::email, address.role, std::move(*wrapped), {},
                                   address.field});
        }
      }
    }
    if (!address.name.empty() && !m_impl->email(address.name)) {
      const std::string bare = without_addresses(address.name);
      const std::vector<std::string> tokens = fold_name_tokens(bare);
      if (!tokens.empty()) {
        const auto join = [](const std::vector<std::string> &parts) {
          std::string joined;
          for (const std::string &token : parts) {
            if (!joined.empty()) {
              joined.push_back(' ');
            }
            joined += token;
          }
          return joined;
        };
        std::string joined = join(tokens);
        std::string alternate;
        if (may_transliterate(bare)) {
          const std::vector<std::string> spelt = fold_name_tokens(transliterate(bare));
          if (spelt.size() == tokens.size() && spelt != tokens) {
            alternate = join(spelt);
          }
        }
        found.push_back(Identity{IdentityKind::name, address.role, std::move(joined),
                                 std::move(alternate), address.field});
      }
    }
  }
  for (const connectors::RawValue &value : item.ips) {
    if (std::optional<std::string> address = normalize_ip(value.value)) {
      found.push_back(Identity{IdentityKind::ip, value.role, std::move(*address)});
    }
  }
  for (const connectors::RawText &text : item.texts) {
    if (text.scan == connectors::TextScan::addresses) {
      extract_emails_from_text(text.text, text.role, text.field, found);
    } else {
      const std::size_t before = found.size();
      extract_from_text(text.text, text.role, found);
      for (std::size_t i = before; i < found.size() && !text.field.empty(); ++i) {
        found[i].field = text.field; // the attachment an address or phone was seen in
      }
    }
  }
  // Remove duplicates, keeping the first occurrence.
  std::unordered_set<std::string> seen;
  std::vector<Identity> unique;
  unique.reserve(found.size());
  for (Identity &identity : found) {
    std::string key;
    key.push_back(static_cast<char>('0' + static_cast<int>(identity.kind)));
    key.push_back(static_cast<char>('A' + static_cast<int>(identity.role)));
    key += identity.value;
    key.push_back('\0');
    key += identity.field;
    if (seen.insert(std::move(key)).second) {
      unique.push_back(std::move(identity));
    }
  }
  return unique;
}

} // namespace maildsar::index
