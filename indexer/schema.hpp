// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// The Xapian document schema (STYLE §23-25): one constexpr table that the indexer, the query
// side, --help and docs/term-prefixes.md all read. No Xapian types here.

#include "connectors/item.hpp"
#include "core/result.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace maildsar::index::schema {

/** Bumped whenever terms or document data change incompatibly (needs `index --full`). */
inline constexpr std::string_view k_schema_version = "6";
/** Feature list stored next to the version; a mismatch also needs `index --full`. */
inline constexpr std::string_view k_features =
    "q-sha256,xfile,role-terms,positional-role-names,header-roles,name-variants,log-blocks-hash24,mbox-seq,"
    "short-role-codes,no-number-text-tokens";
inline constexpr std::string_view k_meta_schema_version = "maildsar.schema_version";
inline constexpr std::string_view k_meta_features = "maildsar.features";

/** Bytes of a term's SHA-256 that a log block holds (block_term()). */
inline constexpr std::size_t k_block_hash_bytes = 3;
/** Identity terms longer than this are indexed as a SHA-256 (never truncated, STYLE §25). */
inline constexpr std::size_t k_max_identity_bytes = 200;
/** Positions skipped between two name/text values so that a phrase never spans two values. */
inline constexpr unsigned k_position_gap = 100;
/** Value slot holding the item date (Xapian::sortable_serialise of seconds since the epoch). */
inline constexpr unsigned k_slot_date = 0;

enum class FieldKind { boolean, free_text };
/** `per_role`: the real prefix is `prefix` + role code + ":" (e.g. "XE" -> "XEF:" for from). */
enum class Scope { global, per_role };

struct Field {
  std::string_view name;
  std::string_view prefix;
  FieldKind kind;
  Scope scope;
  int value_slot; // -1 = none
  std::string_view description;
};

inline constexpr std::array k_fields{
    Field{"key", "Q", FieldKind::boolean, Scope::global, -1,
          "unique item key: Q<source>:<sha256 hex of the locator key>"},
    Field{"file", "XFILE:", FieldKind::boolean, Scope::global, -1,
          "the file holding the item: sha256 hex of <source>:<path>"},
    Field{"email", "XID:", FieldKind::boolean, Scope::global, -1,
          "normalised e-mail address seen in any role"},
    Field{"email-hash", "XIDH:", FieldKind::boolean, Scope::global, -1,
          "sha256 hex of a normalised e-mail address longer than 200 bytes"},
    Field{"email-role", "XE", FieldKind::boolean, Scope::per_role, -1,
          "normalised e-mail address seen in one role (XEF: from, XET: to, ...)"},
    Field{"phone", "XPH:", FieldKind::boolean, Scope::global, -1,
          "E.164 phone number seen in any role"},
    Field{"phone-role", "XP", FieldKind::boolean, Scope::per_role, -1,
          "E.164 phone number seen in one role (XPF: from, XPB: body, ...)"},
    Field{"ip", "XIP:", FieldKind::boolean, Scope::global, -1,
          "canonical IP address seen in any role"},
    Field{"ip-role", "XI", FieldKind::boolean, Scope::per_role, -1,
          "canonical IP address seen in one role (XIRV: received, XILC: log client, ...)"},
    Field{"name-role", "XN", FieldKind::free_text, Scope::per_role, -1,
          "folded name and text tokens of one role, positional (XNF: from, XNB: body, ...)"},
    Field{"message-id", "XMID:", FieldKind::boolean, Scope::global, -1,
          "Message-ID, lower-cased, without angle brackets"},
    Field{"source", "XSRC:", FieldKind::boolean, Scope::global, -1, "source name from the config"},
    Field{"store", "XKIND:", FieldKind::boolean, Scope::global, -1,
          "store kind: maildir, mbox, pst, quarantine, maillog"},
    Field{"truncated", "XTRUNC:", FieldKind::boolean, Scope::global, -1,
          "XTRUNC:1 on an item indexed only in part (cut at a limit); find shows it as truncated"},
    Field{"suppressed", "XSUPP:", FieldKind::boolean, Scope::global, -1,
          "XSUPP:<request id> on an item indexed after that erasure completed that shows its erased "
          "subject (suppression on restore); find marks it suppressed"},
    Field{"log-block", "XBLOCK:", FieldKind::boolean, Scope::global, -1,
          "XBLOCK:1 on a block of delivery-log transactions (its terms are those of all its "
          "transactions, its data a log block: indexer/log_block.hpp)"},
    Field{"block-hash", "XH:", FieldKind::boolean, Scope::global, -1,
          "on a log block, each identity, Message-ID and name term of its transactions as the "
          "first 3 bytes of its SHA-256, as bytes (block_term())"},
    Field{"date", "", FieldKind::boolean, Scope::global, static_cast<int>(k_slot_date),
          "item date (value slot 0, sortable_serialise of seconds since the epoch)"},
};

/**
 * Role codes used in per-role prefixes: one or two capitals (every positional term carries one,
 * and they are most of the index: docs/term-prefixes.md). None may make a per-role prefix equal
 * to a global one ("XI" + "D" + ":" would be "XID:"): prefixes_are_unambiguous() checks.
 */
inline constexpr std::array<std::string_view, connectors::k_role_count> k_role_codes{
    "F",  "T",  "C",  "BC", "R",  "S",  "DT", "RP", "RV", "SU", "B",  "AN", "AB", "EF",
    "ET", "LF", "LT", "LC", "LU", "RF", "RT", "RC", "RB", "RS", "N",  "HD", "O"};

[[nodiscard]] constexpr std::string_view role_code(connectors::Role role) {
  return k_role_codes[static_cast<std::size_t>(role)];
}

/**
 * Roles of free text (subject, bodies, attachment names and text) where a token of digits only
 * is not indexed as a name token: numbers (dates, sizes, line numbers, hunk offsets, prices,
 * ticket numbers) are 8 % of the positions of real mail and no part of a person's name.
 * Its position is still counted, so no phrase spans it. Tokens that mix letters and digits
 * (handles such as `pste998903`, `eth0`) are indexed: they can identify a person. Phone numbers
 * and IPs in that text are identities of their own and indexed as before. The query side
 * leaves such a token out of a name it searches in these roles (query.cpp).
 */
[[nodiscard]] constexpr bool drops_number_tokens(connectors::Role role) {
  using connectors::Role;
  return role == Role::subject || role == Role::body || role == Role::attachment_name ||
         role == Role::attachment_body;
}

/** A folded name token of ASCII digits only (see drops_number_tokens()). */
[[nodiscard]] constexpr bool is_number(std::string_view token) {
  return !token.empty() && std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; });
}

[[nodiscard]] constexpr const Field &field(std::string_view name) {
  for (const Field &f : k_fields) {
    if (f.name == name) {
      return f;
    }
  }
  return k_fields[0]; // unreachable for the names used in the code (checked below)
}

// ---- compile-time checks (STYLE §45) ----

namespace detail {

/** A prefix materialised at compile time (global or global+role+":"). */
struct FixedPrefix {
  std::array<char, 40> text{};
  std::size_t size = 0;
  [[nodiscard]] constexpr std::string_view view() const { return {text.data(), size}; }
};

constexpr FixedPrefix make_prefix(const Field &f, std::size_t role) {
  FixedPrefix p;
  for (char c : f.prefix) {
    p.text[p.size++] = c;
  }
  if (f.scope == Scope::per_role) {
    for (char c : k_role_codes[role]) {
      p.text[p.size++] = c;
    }
    p.text[p.size++] = ':';
  }
  return p;
}

constexpr std::size_t k_all_prefix_count = [] {
  std::size_t n = 0;
  for (const Field &f : k_fields) {
    if (f.prefix.empty()) {
      continue;
    }
    n += f.scope == Scope::per_role ? connectors::k_role_count : 1;
  }
  return n;
}();

constexpr std::array<FixedPrefix, k_all_prefix_count> all_prefixes() {
  std::array<FixedPrefix, k_all_prefix_count> out{};
  std::size_t n = 0;
  for (const Field &f : k_fields) {
    if (f.prefix.empty()) {
      continue;
    }
    std::size_t roles = f.scope == Scope::per_role ? connectors::k_role_count : 1;
    for (std::size_t r = 0; r < roles; ++r) {
      out[n++] = make_prefix(f, r);
    }
  }
  return out;
}

constexpr bool is_upper_x_prefix(std::string_view p) {
  if (p == "Q") {
    return true;
  }
  if (p.size() < 3 || p.front() != 'X' || p.back() != ':') {
    return false;
  }
  for (char c : p.substr(0, p.size() - 1)) {
    if (c < 'A' || c > 'Z') {
      return false;
    }
  }
  return true;
}

constexpr bool prefixes_are_well_formed() {
  for (const FixedPrefix &p : all_prefixes()) {
    if (!is_upper_x_prefix(p.view())) {
      return false;
    }
  }
  return true;
}

/**
 * No prefix is equal to, or a leading part of, another one (so terms cannot be confused). Sorted,
 * a prefix that starts another is directly followed by one it starts (everything between them
 * starts with it too), so neighbours suffice: comparing every pair took clang past its constexpr
 * step limit once the role codes were short.
 */
constexpr bool prefixes_are_unambiguous() {
  const auto all = all_prefixes();
  std::array<std::string_view, k_all_prefix_count> sorted{};
  for (std::size_t i = 0; i < all.size(); ++i) {
    sorted[i] = all[i].view();
  }
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i + 1 < sorted.size(); ++i) {
    if (sorted[i] != "Q" && sorted[i + 1].starts_with(sorted[i])) {
      return false;
    }
  }
  return true;
}

constexpr bool field_names_unique() {
  for (std::size_t i = 0; i < k_fields.size(); ++i) {
    for (std::size_t j = i + 1; j < k_fields.size(); ++j) {
      if (k_fields[i].name == k_fields[j].name) {
        return false;
      }
    }
  }
  return true;
}

constexpr bool role_codes_are_upper() {
  for (std::string_view code : k_role_codes) {
    if (code.empty()) {
      return false;
    }
    for (char c : code) {
      if (c < 'A' || c > 'Z') {
        return false;
      }
    }
  }
  return true;
}

} // namespace detail

static_assert(detail::prefixes_are_well_formed(),
              "custom prefixes are X + capitals + ':' (Omega convention)");
static_assert(detail::prefixes_are_unambiguous(), "one prefix must not start another");
static_assert(detail::field_names_unique());
static_assert(detail::role_codes_are_upper());
static_assert(k_role_codes.size() == connectors::k_role_count);

// ---- term construction, shared by the indexer and the query side ----

/** The prefix of a field for a role ("XE" + "FROM" + ":"), or the global prefix. */
[[nodiscard]] std::string prefix_for(std::string_view field_name, connectors::Role role);
[[nodiscard]] std::string prefix_for(std::string_view field_name);

/** "Q<source>:<sha256 hex of locator_key>". */
[[nodiscard]] std::string unique_term(std::string_view source, std::string_view locator_key);
/** "XFILE:<sha256 hex of source:path>". */
[[nodiscard]] std::string file_term(std::string_view source, std::string_view path);
/** "XTRUNC:1": the item was indexed only in part (connectors::Item::truncated). */
[[nodiscard]] std::string truncated_term();
/** "XSUPP:<request>": the item shows the subject of that completed erasure (indexer/suppression.hpp). */
[[nodiscard]] std::string suppressed_term(std::string_view request);
/** "XBLOCK:1": the document is a block of log transactions (indexer/log_block.hpp). */
[[nodiscard]] std::string log_block_term();
/**
 * A term as a log block holds it: XFILE:, XSRC:, XKIND:, XBLOCK:, XTRUNC: and XSUPP: terms as they are,
 * every other (identity, Message-ID, name) as "XH:" + the first 3 bytes (24 bits) of its
 * SHA-256, as bytes — a fraction of the bytes, and a block is only a candidate: its transactions
 * are matched exactly when they are read again.
 */
[[nodiscard]] std::string block_term(std::string_view term);
/** The term of a Message-ID (already lower-cased, no angle brackets); hashed when too long. */
[[nodiscard]] std::string message_id_term(std::string_view lowered_message_id);

/**
 * The any-role term of an identity: XID:/XPH:/XIP:. An e-mail longer than 200 bytes becomes
 * "XIDH:<sha256>"; a long phone/ip becomes prefix + "#" + sha256 (never truncated).
 */
[[nodiscard]] std::string any_role_term(std::string_view kind_field, std::string_view value);
/** The per-role term: "XE"/"XP"/"XI" + role code + ":" + value (hashed as above when long). */
[[nodiscard]] std::string role_term(std::string_view kind_role_field, connectors::Role role,
                                    std::string_view value);

/** Checks stored metadata against this build; ErrorCode::data with the hint: an index of an
    older schema is rebuilt by `index` (is_older_schema), any other mismatch by `index --full`. */
[[nodiscard]] core::Status check_metadata(std::string_view path, std::string_view version,
                                          std::string_view features);

/** True when `version` (an index's maildsar.schema_version) is a number below k_schema_version:
    an index an earlier maildsar built, which `index` rebuilds from the stores by itself. */
[[nodiscard]] bool is_older_schema(std::string_view version);

} // namespace maildsar::index::schema
