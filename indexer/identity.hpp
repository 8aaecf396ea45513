// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/item.hpp"
#include "core/result.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::index {

enum class IdentityKind { email, name, phone, ip };
[[nodiscard]] std::string_view to_string(IdentityKind kind); // "email", "name", "phone", "ip"

/** A normalised identity and where it was seen. */
struct Identity {
  IdentityKind kind = IdentityKind::email;
  connectors::Role role = connectors::Role::from;
  std::string value; // email: normalised addr-spec; phone: E.164; ip: canonical; name: folded tokens joined by ' '
  std::string alternate = {}; // names only, not stored: the tokens with German/Nordic letters
                              // transliterated (ä -> ae, ø -> oe, å -> aa), same count; or ""
  std::string field = {}; // header field name the identity was seen in (roles received,
                          // envelope-*, resent-*, notification, header); the attachment's
                          // file name (role attachment-body); else empty

  friend bool operator==(const Identity &, const Identity &) = default;
};

/** Where an identifier sits in a text: the bytes [begin, end). */
struct TextSpan {
  IdentityKind kind = IdentityKind::email;
  std::size_t begin = 0;
  std::size_t end = 0;
};

/**
 * The one tokeniser for e-mail and IP addresses in free text (log lines, bodies): what the
 * indexer finds (Normalizer::extract_from_text) and what erasure replaces (erasure::Redactor)
 * are exactly these spans, so nothing is found that redaction would not see.
 *  - email: the address-like token around each '@', its local part and domain labels made of
 *    word characters of any script; it ends at any other character (ASCII punctuation, or a
 *    non-word code point such as U+2019 in `alice@example.com’s`). Not yet validated:
 *    Normalizer::email decides whether it is an address.
 *  - ip: dotted-quad IPv4 literals, then IPv6 literals (also after "IPv6:"); each one that
 *    Normalizer::ip accepts. Letters, digits, '_' and '%' glued to either side make a word,
 *    not an IP; other bytes (punctuation, non-ASCII) end it.
 * Emails come first (in text order), then IPv4, then IPv6; an IPv4 span may lie inside an
 * IPv6 one ("::ffff:192.0.2.1").
 */
[[nodiscard]] std::vector<TextSpan> address_spans(std::string_view text);

/**
 * Addresses hidden from harvesters as mailing-list archives write them: "alice at example.com"
 * (Mailman's pipermail), "alice (at) example.com", "alice [at] example.com", "alice(at)example.com"
 * ("at" in either case). Normalizer::email reads such a token as the address. Only for the
 * texts of messages (a log line's " at " is not an address); the indexer indexes them and
 * erasure replaces them through redaction::find_identities.
 */
[[nodiscard]] std::vector<TextSpan> obfuscated_email_spans(std::string_view text);

/**
 * The word that ends at `end` and holds the address span [begin, end), extended to the left
 * over letters, digits and `= + - . / _`: in free text address_spans ends a local part at '=',
 * so `from=<SRS0=HHH=TT=orig.example=alice@fwd.example>` gives the span `alice@fwd.example`,
 * whose word `SRS0=HHH=TT=orig.example=alice@fwd.example` Normalizer::wrapped_email unwraps.
 */
[[nodiscard]] std::string_view batv_srs_word(std::string_view text, std::size_t begin,
                                             std::size_t end);

struct NormalizeOptions {
  std::string subaddress_separators = "+"; // each character is a separator
  std::string phone_region = "GB";         // default region for numbers without +CC
};

/**
 * Identity normalisation (DESIGN §3). Thread-safe, const after construction.
 *  - addresses: trimmed, lower-cased (Unicode case fold), IDN domain to its ASCII (A-label)
 *    form, subaddress folded (`alice+news@x` -> `alice@x`);
 *  - names: NFKD, accents removed, case folded, split into word tokens ("Smith, Alice" ->
 *    {"smith","alice"});
 *  - phones: E.164 with the default region;
 *  - IPs: canonical IPv4 dotted quad / RFC 5952 IPv6.
 */
class Normalizer {
public:
  explicit Normalizer(NormalizeOptions options);
  ~Normalizer();

  /**
   * Loads the phone-number module (libphonenumber), which the other members otherwise load on
   * the first phone number they meet and, if it cannot be loaded, throw std::runtime_error.
   * Call it before handing a Normalizer to worker threads.
   */
  [[nodiscard]] static core::Status load_phone_module();
  Normalizer(Normalizer &&) noexcept;
  Normalizer &operator=(Normalizer &&) noexcept;

  [[nodiscard]] std::optional<std::string> email(std::string_view raw) const;
  /**
   * For a BATV or SRS rewritten address, the normalised address it wraps; nullopt for any
   * other address. Exactly `prvs=TAG=local@domain` (TAG 6-16 hex digits) -> local@domain,
   * `SRS0=HHH=TT=orig.domain=local@fwd` -> local@orig.domain and
   * `SRS1=HHH=fwd1.domain==HHH=TT=orig.domain=local@fwd` -> local@orig.domain (HHH 1-32
   * base64 characters, TT 2 base32 characters, case-insensitive; '+' or '-' may stand for the
   * '=' after SRS0/SRS1). The indexer indexes both addresses in the same role (docs/cli.md).
   */
  [[nodiscard]] std::optional<std::string> wrapped_email(std::string_view raw) const;
  [[nodiscard]] std::vector<std::string> name_tokens(std::string_view raw) const;

  /**
   * The name tokens with their spellings: per token the folded form first (accents removed:
   * "Bächle" -> "bachle") and, when the token holds ä ö ü ß ø å (any case), its German/Nordic
   * transliteration second ("baechle"). Used for indexing (both at one position) and for
   * searching (either matches).
   */
  [[nodiscard]] std::vector<std::vector<std::string>> name_token_variants(std::string_view raw) const;
  [[nodiscard]] std::optional<std::string> phone(std::string_view raw) const;
  [[nodiscard]] std::optional<std::string> ip(std::string_view raw) const;

  /** Emails, phone numbers and IP addresses found in free text, normalised. */
  void extract_from_text(std::string_view text, connectors::Role role,
                         std::vector<Identity> &out) const;

  /** Only the e-mail addresses of free text (header field values), with their field name. */
  void extract_emails_from_text(std::string_view text, connectors::Role role,
                                const std::string &field, std::vector<Identity> &out) const;

  /**
   * Every identity of an item: addresses (email + display name as a name identity), ips, and
   * what extract_from_text finds in its texts. Duplicates (same kind, role, value) removed.
   */
  [[nodiscard]] std::vector<Identity> extract(const connectors::Item &item) const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace maildsar::index
