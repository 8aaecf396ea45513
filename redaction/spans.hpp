// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Where a text names people: the one tokeniser of identifiers in free text that every kind of
// redaction uses (issue 18: "one redaction engine"): erasure's same-length pseudonyms in log
// lines (erasure::Redactor), retention's anonymisation, and the replacement of identities inside
// messages (redaction/message.hpp) for the access package and for erasure by redaction.

#include "indexer/identity.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::redaction {

/** The normalised value of a name: its folded tokens sorted and joined by ' '. */
[[nodiscard]] std::string name_value(std::vector<std::string> tokens);

/** One identifier found in a text: bytes [begin, end), its kind and normalised value. */
struct Found {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string_view kind; // "email", "ip", "phone" or "name"
  std::string normalised;
};

/** What find_identities() looks for. */
struct Search {
  bool email = false;
  bool ip = false;
  bool phone = false;
  bool name = false; // names are only recognised when `wanted` can say whose they are
  /**
   * Anonymisation of everyone's e-mail and IP addresses and phone numbers (retention): every
   * candidate is taken without asking `wanted`; Message-IDs and what lies inside address-like
   * tokens are kept, and a phone number needs a leading '+', "(+", '0' or "(0" and 9 digits.
   */
  bool everyone = false;
  /** Whether an identifier (kind, normalised value) is to be taken. */
  std::function<bool(std::string_view kind, const std::string &normalised)> wanted;
};

/**
 * Every identifier `search` asks for in `text`, in no particular order, never overlapping:
 *  - e-mail and IP addresses: the spans of index::address_spans, the tokeniser the indexer
 *    finds them with, so whatever the index finds is found here. The whole token must match (a
 *    near miss such as `malice.smith@` or `alice.smith@example.co` is another address); a
 *    BATV/SRS address wrapping a wanted one is taken whole; IPv4 and IPv6;
 *  - phone numbers: runs of digits with phone punctuation, split at white space, tried as
 *    windows of 7-17 digits, longest first; tokens shaped like IPs, dates, versions or times and
 *    digits glued to words are never part of a number;
 *  - names: windows of 2-4 words separated by white space or ", " ("Alice Smith",
 *    "Smith, Alice"), never inside an address-like token.
 * The Normalizer must have its phone module loaded for phones (else none are recognised).
 */
[[nodiscard]] std::vector<Found> find_identities(std::string_view text, const index::Normalizer &normalizer,
                                                 const Search &search);

} // namespace maildsar::redaction
