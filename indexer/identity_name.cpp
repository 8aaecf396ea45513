// SPDX-License-Identifier: GPL-3.0-or-later
// Names: display names folded into word tokens (NFKD, accents removed, case folded), and their
// German/Nordic transliteration (ä -> ae, ø -> oe, å -> aa).
#include "indexer/identity_internal.hpp"

#include <glib.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace maildsar::index::identity_detail {

namespace {

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

} // namespace

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

} // namespace maildsar::index::identity_detail

namespace maildsar::index {

using namespace identity_detail;

std::vector<std::string> Normalizer::name_tokens(std::string_view raw) const {
  return fold_name_tokens(raw);
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

} // namespace maildsar::index
