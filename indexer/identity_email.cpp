// SPDX-License-Identifier: GPL-3.0-or-later
// E-mail addresses: the local part and the domain validated and normalised (case folding, IDN
// domains to A-labels, address literals), subaddresses folded, and the address that a BATV or
// SRS rewritten address wraps.
#include "indexer/identity_internal.hpp"

#include <glib.h>
#include <idn2.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace maildsar::index::identity_detail {

namespace {

struct IdnFreeDeleter {
  void operator()(char *pointer) const noexcept { idn2_free(pointer); }
};
using IdnCharPtr = std::unique_ptr<char, IdnFreeDeleter>;

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

} // namespace maildsar::index::identity_detail

namespace maildsar::index {

using namespace identity_detail;

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
  if (text.find('@') == std::string_view::npos) {
    // "alice at example.com", as list archives hide addresses (obfuscated_email_spans).
    if (std::optional<std::string> plain = deobfuscated(text)) {
      return email(*plain, fold);
    }
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

} // namespace maildsar::index
