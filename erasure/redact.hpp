// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "indexer/identity.hpp"
#include "redaction/spans.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace maildsar::erasure {

/**
 * One identifier of the data subject, as the manifest stores it: never in clear.
 * `hash` = core::keyed_hash(key, kind, normalised value); kind is "email", "name", "phone" or
 * "ip". For names the value is name_value() of the name's folded tokens.
 */
struct Target {
  std::string kind;
  std::string hash;
};

/** The normalised value of a name (redaction/spans.hpp). */
using redaction::name_value;

/**
 * Keyed pseudonyms for log lines (DESIGN §5). Every occurrence of a target identifier in a line
 * is replaced by a pseudonym of exactly the same byte length (so that a log can be patched in
 * place); every other byte is kept.
 *
 * Candidates found in a line:
 *  - e-mail and IP addresses: the spans of index::address_spans, the tokeniser the indexer
 *    finds them with, so whatever the index finds in a line is replaced here. The whole token
 *    must match (a near miss such as `malice.smith@`, `bob+alice.smith@` or
 *    `alice.smith@example.co` is a different address and is left alone); IPv4 and IPv6 (also
 *    after "IPv6:");
 *  - phone numbers: runs of digits with phone punctuation, split at white space, tried as
 *    windows of 7-17 digits, longest first; tokens shaped like IPs, dates, versions or times and
 *    digits glued to words are never part of a number;
 *  - names: windows of 2-4 words separated by white space or ", " ("Alice Smith",
 *    "Smith, Alice"), never inside an address-like token.
 * Each candidate is normalised with the Normalizer, keyed-hashed and compared with the targets.
 *
 * The Normalizer is borrowed: it must outlive the Redactor. Call
 * index::Normalizer::load_phone_module() first when phones are to be matched; if the phone module
 * cannot be loaded, phone candidates are not recognised.
 * Thread-safe (const) after construction.
 */
class Redactor {
public:
  Redactor(std::string key, std::vector<Target> targets, const index::Normalizer &normalizer);

  struct Redacted {
    std::string line;          // same byte length as the input
    std::size_t replaced = 0;  // occurrences replaced
  };

  /** Pseudonymises every occurrence of a target identifier in `line`. */
  [[nodiscard]] Redacted redact(std::string_view line) const;

  /**
   * Retention "anonymize": pseudonymises every e-mail address, IP address and phone number in
   * the line, whoever's (names are not recognisable without a target). Phone numbers here need
   * a leading '+', "(+", '0' or "(0" and at least 9 digits, so that counters, sizes and ids
   * such as amavis's "(4051607-09)" are kept. Message-IDs ("message-id=<…>", "Message-ID: <…>")
   * are kept, so that `maildsar trace` still finds the message.
   */
  [[nodiscard]] Redacted anonymize_all(std::string_view line) const;

private:
  enum class Mode { targets, everyone };
  [[nodiscard]] Redacted run(std::string_view line, Mode mode) const;

  std::string m_key;
  std::unordered_set<std::string> m_targets; // kind + ':' + hash
  bool m_has_email = false;
  bool m_has_ip = false;
  bool m_has_phone = false;
  bool m_has_name = false;
  const index::Normalizer *m_normalizer;
};

/**
 * The pseudonym for one occurrence of an identifier: same byte length as `original`, drawn
 * from a keyed stream of hex digits (HMAC-SHA-256 under `key` of a label, `kind` and
 * `normalised`), so the same identifier under the same key always gives the same pseudonym (or a
 * prefix of it) and nothing of the identifier can be recovered without the key.
 * Structure is kept so the line still parses: '@' and the dots of the domain in e-mail
 * addresses, '.' and ':' in IP addresses, everything but digits in phone numbers, white space
 * and punctuation in names. Bytes of multi-byte characters are replaced one for one.
 * A pseudonym is never recognised as an identifier again (so redaction and anonymisation are
 * idempotent): the last domain label of an address becomes decimal digits (no real top-level
 * domain is numeric), and IPs and phone numbers use the letters g-v instead of hex digits.
 * Names use hex digits.
 */
[[nodiscard]] std::string pseudonym(std::string_view key, std::string_view kind,
                                    std::string_view normalised, std::string_view original);

} // namespace maildsar::erasure
