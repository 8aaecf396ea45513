// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/document.hpp"

#include "connectors/limits.hpp"
#include "core/hash.hpp"
#include "indexer/schema.hpp"
#include "indexer/suppression.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <stdexcept>

namespace maildsar::index {

using connectors::Role;
using nlohmann::json;

namespace {

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

/**
 * Positional tokens of one value under its role prefix. There is no unprefixed copy: a search
 * in any role is an OR over the roles (a third fewer postings for the single index writer).
 */
class Positions {
public:
  explicit Positions(PreparedDocument &doc) : m_doc(doc) {}

  template <class Range> void add_value(Role role, const Range &tokens) {
    const std::string &prefix = role_prefix(role);
    const bool drop_numbers = schema::drops_number_tokens(role);
    bool any = false;
    std::string term;
    for (const auto &tok : tokens) {
      if (tok.empty()) {
        continue;
      }
      ++m_pos;
      if (drop_numbers && schema::is_number(tok)) {
        continue; // a number, not a name: its position stays a gap (schema.hpp)
      }
      term.assign(prefix);
      term.append(tok);
      m_doc.add_posting(term, m_pos);
      any = true;
    }
    if (any) {
      m_pos += schema::k_position_gap; // a phrase never spans two values
    }
  }

  /** A value whose tokens have alternative spellings, all indexed at the token's position. */
  void add_variants(Role role, const std::vector<std::vector<std::string>> &tokens) {
    const std::string &prefix = role_prefix(role);
    const bool drop_numbers = schema::drops_number_tokens(role);
    bool any = false;
    std::string term;
    for (const auto &spellings : tokens) {
      if (spellings.empty() || spellings.front().empty()) {
        continue;
      }
      ++m_pos;
      if (drop_numbers && schema::is_number(spellings.front())) {
        continue; // a number has no other spelling
      }
      for (const std::string &spelling : spellings) {
        term.assign(prefix);
        term.append(spelling);
        m_doc.add_posting(term, m_pos);
      }
      any = true;
    }
    if (any) {
      m_pos += schema::k_position_gap;
    }
  }

  /** The last position used so far. */
  [[nodiscard]] std::uint32_t position() const { return m_pos; }

private:
  const std::string &role_prefix(Role role) {
    auto i = static_cast<std::size_t>(role);
    if (m_prefixes[i].empty()) {
      m_prefixes[i] = schema::prefix_for("name-role", role);
    }
    return m_prefixes[i];
  }
  PreparedDocument &m_doc;
  std::uint32_t m_pos = 0;
  std::array<std::string, connectors::k_role_count> m_prefixes{};
};

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') {
      ++i;
    }
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') {
      ++j;
    }
    if (j > i) {
      out.push_back(s.substr(i, j - i));
    }
    i = j;
  }
  return out;
}

json locator_json(const connectors::Locator &loc) {
  json j{{"source", loc.source},   {"store", std::string(to_string(loc.store))},
         {"path", loc.path},       {"folder", loc.folder},
         {"offset", loc.offset},   {"length", loc.length},
         {"node_id", loc.node_id}, {"queue_id", loc.queue_id},
         {"lines", loc.lines}};
  if (loc.store == connectors::StoreKind::mbox) {
    // Its number, not where it lies: an erasure of bytes before it moves it without changing
    // its document (the catalog's items row has its offset and length: indexer/shift.cpp).
    j.erase("offset");
    j.erase("length");
    j["seq"] = loc.seq;
  }
  if (!loc.mark.empty()) {
    j["mark"] = loc.mark; // maildir stray/tmp file; absent otherwise (older documents too)
  }
  if (!loc.member.empty()) {
    j["member"] = loc.member; // archive: the member's path inside the archive
  }
  return j;
}

/**
 * Calls `fn` for each stretch of free text between words that are addresses or URLs (any
 * whitespace-separated word with '@' or "://"). Their parts must not become name tokens:
 * `alice.smith@example.co` is not the name "Alice Smith", and the stretches are indexed as
 * separate values so no phrase spans the dropped word.
 */
template <class Fn> void for_each_name_stretch(std::string_view text, Fn &&fn) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; };
  std::size_t stretch = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) {
      ++i;
    }
    std::size_t j = i;
    while (j < text.size() && !is_space(text[j])) {
      ++j;
    }
    std::string_view word = text.substr(i, j - i);
    if (word.find('@') != std::string_view::npos || word.find("://") != std::string_view::npos) {
      if (i > stretch) {
        fn(text.substr(stretch, i - stretch));
      }
      stretch = j;
    }
    i = j;
  }
  if (stretch < text.size()) {
    fn(text.substr(stretch));
  }
}

} // namespace

std::string document_data_json(const connectors::Item &item,
                               const std::vector<Identity> &identities,
                               const std::vector<PartSpan> &parts, std::uint64_t evidence_capped) {
  json ids = json::array();
  for (const Identity &id : identities) {
    json one{{"kind", std::string(to_string(id.kind))},
             {"role", std::string(connectors::to_string(id.role))},
             {"value", id.value}};
    if (!id.field.empty()) {
      one["field"] = id.field;
    }
    if (!id.alternate.empty()) {
      one["alternate"] = id.alternate;
    }
    ids.push_back(std::move(one));
  }
  json j{{"locator", locator_json(item.locator)},
         {"message_id", item.message_id},
         {"subject", item.subject},
         {"sha256", item.sha256},
         {"identities", std::move(ids)}};
  if (item.date) {
    j["date"] = *item.date;
  } else {
    j["date"] = nullptr;
  }
  if (!parts.empty()) {
    json spans = json::array();
    for (const PartSpan &p : parts) {
      spans.push_back(json{{"name", p.name}, {"from", p.from}, {"to", p.to}});
    }
    j["parts"] = std::move(spans);
  }
  if (!item.attachment_hashes.empty()) {
    j["attachments"] = item.attachment_hashes;
  }
  if (!item.truncated.empty()) {
    j["truncated"] = item.truncated; // what was cut at a limit (docs/reliability.md)
  }
  if (evidence_capped > 0) {
    j["evidence_capped"] = evidence_capped; // identities left out of "identities"
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

/**
 * `text` as it reads back from the document data's JSON: invalid UTF-8 replaced as
 * document_data_json's dump replaces it (U+FFFD). ASCII, the common case, is left as it is.
 */
void as_json_reads_it(std::string &text) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80U; })) {
    return;
  }
  text = json::parse(json(text).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}

} // namespace

StoredDocument stored_document(const connectors::Item &item, std::vector<Identity> identities,
                               std::vector<PartSpan> parts, std::uint64_t evidence_capped) {
  StoredDocument d;
  d.locator = item.locator;
  d.message_id = item.message_id;
  d.date = item.date;
  d.subject = item.subject;
  d.sha256 = item.sha256;
  d.identities = std::move(identities);
  d.parts = std::move(parts);
  d.attachment_hashes = item.attachment_hashes;
  d.truncated = item.truncated;
  d.evidence_capped = evidence_capped;
  // The same strings as parse_document_data(document_data_json(...)) gives, byte for byte.
  for (std::string *text : {&d.locator.source, &d.locator.path, &d.locator.folder, &d.locator.mark,
                            &d.locator.member, &d.locator.queue_id, &d.message_id, &d.subject, &d.sha256}) {
    as_json_reads_it(*text);
  }
  for (Identity &id : d.identities) {
    as_json_reads_it(id.value);
    as_json_reads_it(id.field);
    as_json_reads_it(id.alternate);
  }
  for (PartSpan &part : d.parts) {
    as_json_reads_it(part.name);
  }
  for (std::vector<std::string> *list : {&d.attachment_hashes, &d.truncated}) {
    for (std::string &text : *list) {
      as_json_reads_it(text);
    }
  }
  return d;
}

core::Result<StoredDocument> parse_document_data(std::string_view text) {
  try {
    json j = json::parse(text);
    StoredDocument d;
    const json &loc = j.at("locator");
    d.locator.source = loc.at("source").get<std::string>();
    auto store = connectors::store_kind_from_string(loc.at("store").get<std::string>());
    if (!store) {
      return core::fail(core::ErrorCode::data, "index document data: unknown store kind");
    }
    d.locator.store = *store;
    d.locator.path = loc.at("path").get<std::string>();
    d.locator.folder = loc.value("folder", std::string());
    d.locator.mark = loc.value("mark", std::string());
    d.locator.offset = loc.value("offset", std::uint64_t{0});
    d.locator.length = loc.value("length", std::uint64_t{0});
    d.locator.seq = loc.value("seq", std::uint64_t{0});
    d.locator.node_id = loc.value("node_id", std::uint64_t{0});
    d.locator.queue_id = loc.value("queue_id", std::string());
    d.locator.member = loc.value("member", std::string());
    d.locator.lines = loc.value("lines", std::vector<std::uint64_t>{});
    d.message_id = j.value("message_id", std::string());
    d.subject = j.value("subject", std::string());
    d.sha256 = j.value("sha256", std::string());
    d.truncated = j.value("truncated", std::vector<std::string>{});
    d.evidence_capped = j.value("evidence_capped", std::uint64_t{0});
    if (j.contains("date") && j["date"].is_number_integer()) {
      d.date = j["date"].get<std::int64_t>();
    }
    for (const json &id : j.value("identities", json::array())) {
      Identity ident;
      std::string kind = id.at("kind").get<std::string>();
      if (kind == "email") {
        ident.kind = IdentityKind::email;
      } else if (kind == "name") {
        ident.kind = IdentityKind::name;
      } else if (kind == "phone") {
        ident.kind = IdentityKind::phone;
      } else if (kind == "ip") {
        ident.kind = IdentityKind::ip;
      } else {
        continue;
      }
      auto role = connectors::role_from_string(id.at("role").get<std::string>());
      if (!role) {
        continue;
      }
      ident.role = *role;
      ident.value = id.at("value").get<std::string>();
      ident.field = id.value("field", std::string());
      ident.alternate = id.value("alternate", std::string());
      d.identities.push_back(std::move(ident));
    }
    for (const json &p : j.value("parts", json::array())) {
      d.parts.push_back(PartSpan{p.at("name").get<std::string>(), p.at("from").get<std::uint32_t>(),
                                 p.at("to").get<std::uint32_t>()});
    }
    d.attachment_hashes = j.value("attachments", std::vector<std::string>{});
    return d;
  } catch (...) {
    return std::unexpected(core::error_from_current_exception("index document data: "));
  }
}

namespace {

/** The document data with `change` applied to its locator, and the changed locator's key. */
template <class Change>
core::Result<RelocatedData> change_locator(std::string_view text, const Change &change) {
  RelocatedData out;
  try {
    json j = json::parse(text);
    change(j.at("locator"));
    out.data = j.dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (...) {
    return std::unexpected(core::error_from_current_exception("index document data: "));
  }
  MAILDSAR_TRY_ASSIGN(StoredDocument doc, parse_document_data(out.data));
  out.locator_key = doc.locator.key();
  return out;
}

} // namespace

core::Result<RelocatedData> relocate_document_data(std::string_view text, const std::string &new_path) {
  return change_locator(text, [&](json &locator) { locator.at("path") = new_path; });
}

namespace {

/**
 * The evidence kept in the document data (what `find` shows per hit) is capped per kind and
 * role at limits.max_addresses_per_role; the terms are all there, so the item is still found
 * for every identity, and `find` then derives the roles from the terms. Returns how many were
 * left out of `identities`.
 */
std::uint64_t cap_evidence(std::vector<Identity> &identities) {
  const std::uint64_t cap = connectors::item_limits().max_addresses_per_role;
  std::map<std::pair<int, int>, std::uint64_t> per_role;
  std::uint64_t capped = 0;
  std::erase_if(identities, [&](const Identity &id) {
    if (++per_role[{static_cast<int>(id.kind), static_cast<int>(id.role)}] > cap) {
      ++capped;
      return true;
    }
    return false;
  });
  return capped;
}

/** build_document with DocumentContext::identities_only, from the point where the key and the
    suppression are known: the stored data and every identity, no document. */
BuiltDocument identities_only(const connectors::Item &item, std::vector<Identity> identities, BuiltDocument out) {
  out.identities = identities;
  const std::uint64_t capped = cap_evidence(identities);
  out.stored = std::make_unique<StoredDocument>(stored_document(item, std::move(identities), {}, capped));
  out.record.locator_key = item.locator.key();
  out.record.sha256 = item.sha256;
  out.record.offset = item.locator.offset;
  out.record.length = item.locator.length;
  return out;
}

} // namespace

BuiltDocument build_document(const connectors::Item &item, const DocumentContext &ctx) {
  const Normalizer &norm = *ctx.normalizer;
  std::vector<Identity> identities = norm.extract(item);

  BuiltDocument out;
  PreparedDocument &doc = out.doc;
  if (ctx.terms_only || ctx.identities_only) {
    doc.collect_terms_only(); // identities_only: the key only
  }
  std::string key = item.locator.key();
  doc.set_key(schema::unique_term(ctx.source, key));
  doc.add_boolean_term(schema::file_term(ctx.source, item.locator.path));
  doc.add_boolean_term(schema::prefix_for("source") + ctx.source);
  doc.add_boolean_term(schema::prefix_for("store") + std::string(to_string(item.locator.store)));
  if (!item.truncated.empty()) {
    doc.add_boolean_term(schema::truncated_term());
  }
  if (ctx.suppression != nullptr) {
    out.suppressed = ctx.suppression->match(identities, ctx.source, item.sha256);
    for (const std::string &request : out.suppressed) {
      doc.add_boolean_term(schema::suppressed_term(request));
    }
  }
  if (ctx.identities_only) {
    if (!ctx.stored_only) {
      throw std::logic_error("build_document: identities_only without stored_only");
    }
    return identities_only(item, std::move(identities), std::move(out));
  }
  if (!item.message_id.empty()) {
    std::string mid = lower_ascii(item.message_id);
    doc.add_boolean_term(schema::message_id_term(mid));
  }

  Positions positions(doc);
  for (const Identity &id : identities) {
    switch (id.kind) {
    case IdentityKind::email:
      doc.add_boolean_term(schema::any_role_term("email", id.value));
      if (!ctx.terms_only) { // a log block does without role-scoped terms
        doc.add_boolean_term(schema::role_term("email-role", id.role, id.value));
      }
      break;
    case IdentityKind::phone:
      doc.add_boolean_term(schema::any_role_term("phone", id.value));
      if (!ctx.terms_only) { // a log block does without role-scoped terms
        doc.add_boolean_term(schema::role_term("phone-role", id.role, id.value));
      }
      break;
    case IdentityKind::ip:
      doc.add_boolean_term(schema::any_role_term("ip", id.value));
      if (!ctx.terms_only) { // a log block does without role-scoped terms
        doc.add_boolean_term(schema::role_term("ip-role", id.role, id.value));
      }
      break;
    case IdentityKind::name:
      if (id.alternate.empty()) {
        positions.add_value(id.role, split_spaces(id.value));
      } else {
        const std::vector<std::string_view> folded = split_spaces(id.value);
        const std::vector<std::string_view> spelt = split_spaces(id.alternate);
        std::vector<std::vector<std::string>> tokens;
        for (std::size_t i = 0; i < folded.size(); ++i) {
          tokens.push_back({std::string(folded[i])});
          if (i < spelt.size() && spelt[i] != folded[i]) {
            tokens.back().emplace_back(spelt[i]);
          }
        }
        positions.add_variants(id.role, tokens);
      }
      break;
    }
  }
  bool subject_in_texts = false;
  // The raw lines of a delivery-log transaction are searched for addresses, phones and IPs
  // (above) but not indexed as name tokens: MTA and IMAP logs carry no display names, and
  // positional tokens of every log word made the index many times the size of the logs.
  const bool log_item = item.locator.store == connectors::StoreKind::maillog;
  std::vector<PartSpan> parts;
  for (const connectors::RawText &t : item.texts) {
    subject_in_texts = subject_in_texts || t.role == Role::subject;
    if ((log_item && t.role == Role::body) || t.scan == connectors::TextScan::addresses) {
      continue; // header values are searched for addresses only (no name tokens)
    }
    const std::uint32_t start = positions.position();
    for_each_name_stretch(t.text, [&](std::string_view stretch) {
      const bool ascii = std::all_of(stretch.begin(), stretch.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x80U;
      });
      if (ascii) { // no letter to transliterate: one spelling per token (the common case)
        positions.add_value(t.role, norm.name_tokens(stretch));
      } else {
        positions.add_variants(t.role, norm.name_token_variants(stretch));
      }
    });
    if (t.role == Role::attachment_body && !t.field.empty() && positions.position() > start) {
      parts.push_back(PartSpan{t.field, start + 1, positions.position()});
    }
  }
  if (!subject_in_texts && !item.subject.empty()) {
    positions.add_variants(Role::subject, norm.name_token_variants(item.subject));
  }

  if (ctx.terms_only) {
    return out;
  }
  const std::uint64_t capped = cap_evidence(identities);
  if (ctx.stored_only) {
    out.stored = std::make_unique<StoredDocument>(stored_document(item, std::move(identities), std::move(parts), capped));
  } else {
    doc.set_data(document_data_json(item, identities, parts, capped));
  }
  if (item.date) {
    doc.set_date(*item.date);
  }
  out.record.locator_key = std::move(key);
  out.record.sha256 = item.sha256;
  out.record.offset = item.locator.offset;
  out.record.length = item.locator.length;
  return out;
}

} // namespace maildsar::index
