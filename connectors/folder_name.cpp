// SPDX-License-Identifier: GPL-3.0-or-later
// Folder names on disk -> readable names (modified UTF-7 of IMAP servers' Maildir++ folders).
#include "connectors/folder_name.hpp"

#include "connectors/mime/mime_internal.hpp"

#include <cstdint>
#include <vector>

namespace maildsar::connectors {

namespace {

/** Value of a modified-BASE64 character (',' instead of '/'; no URL-safe digits), or -1. */
int base64_value(char c) {
  if (c == ',') {
    return 63;
  }
  if (c == '/' || c == '-' || c == '_') {
    return -1;
  }
  return mime::detail::base64_value(c);
}

/** The UTF-16BE units of one "&...-" run (without '&' and '-'), or false. */
bool decode_run(std::string_view b64, std::vector<std::uint16_t> &units) {
  std::uint32_t bits = 0;
  int nbits = 0;
  for (char c : b64) {
    const int v = base64_value(c);
    if (v < 0) {
      return false;
    }
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    nbits += 6;
    if (nbits >= 16) {
      nbits -= 16;
      units.push_back(static_cast<std::uint16_t>((bits >> nbits) & 0xFFFFU));
    }
  }
  // What is left must be fewer than 6 bits of padding, all zero.
  return nbits < 6 && (bits & ((1U << nbits) - 1U)) == 0;
}

} // namespace

std::optional<std::string> decode_imap_utf7(std::string_view name) {
  std::string out;
  std::size_t i = 0;
  while (i < name.size()) {
    const char c = name[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      return std::nullopt;
    }
    if (c != '&') {
      out.push_back(c);
      ++i;
      continue;
    }
    const std::size_t end = name.find('-', i + 1);
    if (end == std::string_view::npos) {
      return std::nullopt;
    }
    if (end == i + 1) {
      out.push_back('&'); // "&-"
      i = end + 1;
      continue;
    }
    std::vector<std::uint16_t> units;
    if (!decode_run(name.substr(i + 1, end - i - 1), units) || units.empty()) {
      return std::nullopt;
    }
    for (std::size_t k = 0; k < units.size(); ++k) {
      const std::uint32_t u = units[k];
      if (u >= 0xD800 && u <= 0xDBFF) {
        if (k + 1 >= units.size() || units[k + 1] < 0xDC00 || units[k + 1] > 0xDFFF) {
          return std::nullopt;
        }
        const std::uint32_t low = units[++k];
        mime::detail::append_code_point(out, 0x10000U + ((u - 0xD800U) << 10) + (low - 0xDC00U));
      } else if ((u >= 0xDC00 && u <= 0xDFFF) || u < 0x80) {
        // A lone low surrogate; or US-ASCII in base64, which RFC 3501 5.1.3 forbids for the
        // printable characters and which for control characters (NUL...) names no folder.
        return std::nullopt;
      } else {
        mime::detail::append_code_point(out, u);
      }
    }
    i = end + 1;
  }
  return out;
}

std::string maildir_folder_display_name(std::string_view folder) {
  while (!folder.empty() && folder.front() == '.') {
    folder.remove_prefix(1);
  }
  if (auto decoded = decode_imap_utf7(folder)) {
    return *decoded;
  }
  return std::string(folder);
}

} // namespace maildsar::connectors
