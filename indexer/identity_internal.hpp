// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// What the pieces of the identity normaliser share; included by indexer/identity*.cpp only.
//  - identity.cpp: the Normalizer's members and the extraction from items and free text;
//  - identity_text.cpp: UTF-8 decoding, ASCII classes, trimming, GLib strings;
//  - identity_ip.cpp: IP addresses;
//  - identity_name.cpp: name folding and transliteration;
//  - identity_email.cpp: e-mail address normalisation (IDN, subaddresses, BATV/SRS);
//  - identity_spans.cpp: the free-text tokeniser of e-mail and IP addresses (address_spans);
//  - identity_phone.cpp: phone numbers (libphonenumber through phone_module.hpp).

#include "indexer/identity.hpp"

#include <algorithm>
#include <cstddef>
#include <functional>
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace maildsar::index {

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

namespace identity_detail {

// ---------------------------------------------------------------------------------------------
// UTF-8 and ASCII (identity_text.cpp).

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
[[nodiscard]] Decoded decode_utf8(std::string_view text, std::size_t pos);

/** Start of the code point that ends just before `pos` (not below `floor`), if valid UTF-8. */
[[nodiscard]] std::optional<Decoded> decode_before(std::string_view text, std::size_t pos,
                                                   std::size_t floor, std::size_t *start);

void append_utf8(std::string &out, char32_t cp);

[[nodiscard]] bool is_valid_utf8(std::string_view text);

/** `text` with every byte that is not part of a valid UTF-8 sequence (and NULs) dropped. */
[[nodiscard]] std::string sanitize_utf8(std::string_view text);

[[nodiscard]] bool is_ascii(std::string_view text);

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

[[nodiscard]] std::string ascii_lower(std::string_view text);
[[nodiscard]] bool iequals_prefix(std::string_view text, std::string_view prefix);
[[nodiscard]] std::string_view trim(std::string_view text);

/** A letter, digit or combining mark of any script. */
[[nodiscard]] bool is_word_code_point(char32_t cp);

/** Printable ASCII allowed unquoted in a local part (RFC 5322 atext plus the dot). */
[[nodiscard]] constexpr bool is_local_ascii(char c) {
  if (is_alnum(c)) {
    return true;
  }
  constexpr std::string_view k_specials = "!#$%&'*+-/=?^_`{|}~.";
  return k_specials.find(c) != std::string_view::npos;
}

/** A string that GLib allocated, copied and freed (STYLE §19); "" for nullptr. */
[[nodiscard]] std::string take_gchar(char *owned);

// ---------------------------------------------------------------------------------------------
// IP addresses (identity_ip.cpp).

/** Decimal dotted quad, each part 1-3 digits and at most 255. */
[[nodiscard]] std::optional<std::string> parse_ipv4(std::string_view text);

[[nodiscard]] std::optional<std::string> parse_ipv6(std::string_view text);
[[nodiscard]] std::optional<std::string> normalize_ip(std::string_view raw);

// ---------------------------------------------------------------------------------------------
// Names (identity_name.cpp).

[[nodiscard]] std::vector<std::string> fold_name_tokens(std::string_view raw);

/** True when `raw` may hold a letter that German/Nordic spelling transliterates. */
[[nodiscard]] bool may_transliterate(std::string_view raw);

/** `raw` (NFC) with ä ö ü ß ø å spelt ae oe ue ss oe aa (German/Nordic transliteration). */
[[nodiscard]] std::string transliterate(std::string_view raw);

/**
 * A display name without the words that hold an address ("Alice Smith (alice@example.com)" ->
 * "Alice Smith "), so that the address does not become part of the name.
 */
[[nodiscard]] std::string without_addresses(std::string_view name);

// ---------------------------------------------------------------------------------------------
// E-mail address candidates in free text (identity_spans.cpp).

/** Extends an email candidate around the '@' at `at`; `floor` bounds the left scan. */
[[nodiscard]] std::optional<std::string_view>
email_candidate(std::string_view text, std::size_t at, std::size_t floor, std::size_t *end_out);

/**
 * True when an address-shaped candidate (a view into `text`) is a reference, not an address:
 * a URL path segment ("https://lore.kernel.org/r/<message-id>", "a@x.org/b@x.org") or a
 * cid:/mid: reference to a MIME part or message.
 */
[[nodiscard]] bool is_reference(std::string_view text, std::string_view candidate);

/**
 * An address written the way mailing-list archives hide it from harvesters: "alice at
 * example.com" (Mailman's pipermail), "alice (at) example.com", "alice[at]example.com".
 * `sep` is where a separator of k_obfuscated_at starts in `text`; the local part is the run of
 * ASCII address characters right before it, the domain the run of letters, digits, dots and
 * dashes right after it (at least two labels, an alphabetic top-level label). nullopt when
 * either is missing or the domain is not shaped like one.
 */
struct ObfuscatedAddress {
  std::size_t begin = 0; // of the local part
  std::size_t end = 0;   // after the domain
  std::string_view local;
  std::string_view domain;
};
inline constexpr std::array<std::string_view, 5> k_obfuscated_at{" at ", " (at) ", " [at] ", "(at)", "[at]"};
[[nodiscard]] std::optional<ObfuscatedAddress> obfuscated_at(std::string_view text, std::size_t sep,
                                                             std::size_t sep_size);

/** The whole of `text` (trimmed; an old-style trailing "(comment)" allowed) as an obfuscated
    address, rewritten with '@' ("alice at example.com (Alice)" -> "alice@example.com (Alice)"). */
[[nodiscard]] std::optional<std::string> deobfuscated(std::string_view text);

// ---------------------------------------------------------------------------------------------
// Phone numbers (identity_phone.cpp).

/**
 * Phone numbers. A cheap pre-filter picks the candidates: stretches of digits and phone
 * punctuation with at least k_phone_min_digits digits, split into tokens at white space. A token
 * is a barrier (no window holds it) when it is glued to a letter, '=', '@', brackets and the
 * like (`pid[12345]`, `size=1234`, `<123.456@host>`), is a time fragment next to ':' digits, an
 * IPv4 address, a date, holds a '+' that is not its first character, or is too long. The
 * libphonenumber matcher then runs on windows of whole non-barrier tokens with 7 to 17 digits,
 * longest first, so that a number followed by other digits ("+44 20 7946 0123 12") is still
 * found. Each distinct window is matched once; at most k_phone_max_matches windows per text.
 * Calls emit(IdentityKind::phone, number) for each number found (E.164).
 */
void scan_phones(std::string_view text, const std::string &region,
                 const std::function<void(IdentityKind, const std::string &)> &emit);

} // namespace identity_detail

} // namespace maildsar::index
