// SPDX-License-Identifier: GPL-3.0-or-later
// UTF-8 and ASCII helpers of the identity normaliser (declared in identity_internal.hpp).
#include "indexer/identity_internal.hpp"

#include <glib.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace maildsar::index::identity_detail {

namespace {

// ---------------------------------------------------------------------------------------------
// Small C-resource helpers (STYLE §19).

struct GFreeDeleter {
  void operator()(char *pointer) const noexcept { g_free(pointer); }
};
using GCharPtr = std::unique_ptr<char, GFreeDeleter>;

// ---------------------------------------------------------------------------------------------
// Unicode classes.

[[nodiscard]] bool is_mark(char32_t cp) {
  const GUnicodeType type = g_unichar_type(static_cast<gunichar>(cp));
  return type == G_UNICODE_NON_SPACING_MARK || type == G_UNICODE_SPACING_MARK ||
         type == G_UNICODE_ENCLOSING_MARK;
}

} // namespace

[[nodiscard]] std::string take_gchar(char *owned) {
  const GCharPtr holder(owned);
  return holder ? std::string(holder.get()) : std::string();
}

// ---------------------------------------------------------------------------------------------
// UTF-8.

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

[[nodiscard]] bool is_word_code_point(char32_t cp) {
  if (cp < 0x80U) {
    return is_alnum(static_cast<char>(cp));
  }
  return g_unichar_isalnum(static_cast<gunichar>(cp)) != FALSE || is_mark(cp);
}

} // namespace maildsar::index::identity_detail
