// SPDX-License-Identifier: GPL-3.0-or-later
// IP addresses: IPv4 dotted quads and IPv6 literals in canonical form (RFC 5952).
#include "indexer/identity_internal.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace maildsar::index::identity_detail {

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

} // namespace maildsar::index::identity_detail
