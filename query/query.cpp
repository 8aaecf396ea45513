// SPDX-License-Identifier: GPL-3.0-or-later
#include "query/query.hpp"
#include "query/index_reader.hpp"
#include "query/log_blocks.hpp"

#include "indexer/catalog.hpp"
#include "indexer/document.hpp"
#include "indexer/identity.hpp"
#include "indexer/indexer.hpp"
#include "indexer/log_block.hpp"
#include "indexer/schema.hpp"

#include <fmt/format.h>
#include <xapian.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <limits>
#include <optional>
#include <system_error>
#include <thread>
#include <tuple>

namespace maildsar::query {

using connectors::Role;
using index::IdentityKind;
namespace schema = index::schema;

namespace {


struct Wanted {
  std::string identifier; // as given
  IdentityKind kind = IdentityKind::email;
  std::string value;                            // normalised (email, phone, ip)
  std::vector<std::vector<std::string>> tokens; // names: per token its spellings (Bächle:
                                                // bachle, baechle)
};

core::Result<std::vector<Wanted>> normalise(const SubjectProfile &subject,
                                            const index::Normalizer &norm) {
  std::vector<Wanted> out;
  auto bad = [](std::string_view what, const std::string &raw) {
    return core::fail(core::ErrorCode::usage, fmt::format("not a valid {}: '{}'", what, raw));
  };
  for (const std::string &e : subject.emails) {
    auto v = norm.email(e);
    if (!v) {
      return bad("e-mail address", e);
    }
    out.push_back(Wanted{e, IdentityKind::email, *v, {}});
  }
  for (const std::string &n : subject.names) {
    auto toks = norm.name_token_variants(n);
    if (toks.empty()) {
      return bad("name", n);
    }
    out.push_back(Wanted{n, IdentityKind::name, {}, std::move(toks)});
  }
  for (const std::string &p : subject.phones) {
    auto v = norm.phone(p);
    if (!v) {
      return bad("phone number", p);
    }
    out.push_back(Wanted{p, IdentityKind::phone, *v, {}});
  }
  for (const std::string &ip : subject.ips) {
    auto v = norm.ip(ip);
    if (!v) {
      return bad("IP address", ip);
    }
    out.push_back(Wanted{ip, IdentityKind::ip, *v, {}});
  }
  return out;
}

using Spellings = std::vector<std::string>;

/** The orders a name is searched in: as given, and reversed (2 tokens) or last-first-rest. */
std::vector<std::vector<Spellings>> name_orders(const std::vector<Spellings> &tokens) {
  std::vector<std::vector<Spellings>> orders{tokens};
  if (tokens.size() == 2) {
    orders.push_back({tokens[1], tokens[0]});
  } else if (tokens.size() >= 3) {
    std::vector<Spellings> lfr{tokens.back()};
    lfr.insert(lfr.end(), tokens.begin(), tokens.end() - 1);
    orders.push_back(std::move(lfr));
  }
  return orders;
}

/**
 * Roles whose values are names (display names of address fields, X-From/X-To): there a name
 * may carry middle names or initials the DPO did not give ("David S. Miller" for "David
 * Miller"). In free text (subject, bodies, attachments, logs) the phrase must be exact.
 */
bool is_name_role(Role role) {
  switch (role) {
  case Role::subject:
  case Role::body:
  case Role::attachment_name:
  case Role::attachment_body:
  case Role::log_from:
  case Role::log_to:
  case Role::log_client:
  case Role::log_user:
    return false;
  default:
    return true;
  }
}

/** Middle names or initials allowed between the given tokens of a name in a name role. */
constexpr Xapian::termcount k_name_middle_tokens = 2;

/**
 * The tokens of a name as `role` indexes them: in free text a token of digits only is not indexed
 * (schema::drops_number_tokens), so it is left out of the search there and its place becomes a
 * gap in the phrase (name_query()).
 */
std::vector<Spellings> indexed_tokens(const std::vector<Spellings> &tokens, Role role) {
  if (!schema::drops_number_tokens(role)) {
    return tokens;
  }
  std::vector<Spellings> kept;
  for (const Spellings &spellings : tokens) {
    if (!spellings.empty() && !schema::is_number(spellings.front())) {
      kept.push_back(spellings);
    }
  }
  return kept;
}

Xapian::Query name_query(const std::vector<Spellings> &given, Role role) {
  const std::string prefix = schema::prefix_for("name-role", role);
  const std::vector<Spellings> tokens = indexed_tokens(given, role);
  if (tokens.empty()) {
    return {}; // nothing of this name is indexed in this role: matches nothing
  }
  // Each token left out widens the phrase by one (a superset of the exact phrase).
  const auto left_out = static_cast<Xapian::termcount>(given.size() - tokens.size());
  std::vector<Xapian::Query> alternatives;
  for (const auto &order : name_orders(tokens)) {
    std::vector<Xapian::Query> terms;
    terms.reserve(order.size());
    for (const Spellings &spellings : order) {
      std::vector<Xapian::Query> each;
      for (const std::string &spelling : spellings) {
        each.emplace_back(prefix + spelling);
      }
      terms.push_back(each.size() == 1 ? each.front()
                                       : Xapian::Query(Xapian::Query::OP_OR, each.begin(), each.end()));
    }
    if (terms.size() == 1) {
      alternatives.push_back(terms.front());
    } else {
      const auto window = static_cast<Xapian::termcount>(terms.size()) + left_out +
                          (is_name_role(role) ? k_name_middle_tokens : 0);
      alternatives.emplace_back(Xapian::Query::OP_PHRASE, terms.begin(), terms.end(), window);
    }
  }
  return Xapian::Query(Xapian::Query::OP_OR, alternatives.begin(), alternatives.end());
}

Xapian::Query subject_query(const std::vector<Wanted> &wanted) {
  std::vector<Xapian::Query> parts;
  for (const Wanted &w : wanted) {
    switch (w.kind) {
    case IdentityKind::email:
      parts.emplace_back(schema::any_role_term("email", w.value));
      break;
    case IdentityKind::phone:
      parts.emplace_back(schema::any_role_term("phone", w.value));
      break;
    case IdentityKind::ip:
      parts.emplace_back(schema::any_role_term("ip", w.value));
      break;
    case IdentityKind::name:
      // names are indexed per role only (schema "name-role"): any role = OR over the roles
      for (std::size_t r = 0; r < connectors::k_role_count; ++r) {
        parts.push_back(name_query(w.tokens, static_cast<Role>(r)));
      }
      break;
    }
  }
  return Xapian::Query(Xapian::Query::OP_OR, parts.begin(), parts.end());
}

/**
 * The query for log blocks (indexer/log_block.hpp), whose terms carry no positions: a name is
 * every one of its tokens in one role. It finds each block that holds a transaction the subject
 * query matches (and maybe more); the transactions are then matched exactly.
 */
Xapian::Query block_query(const std::vector<Wanted> &wanted) {
  std::vector<Xapian::Query> parts;
  for (const Wanted &w : wanted) {
    switch (w.kind) {
    case IdentityKind::email:
      parts.emplace_back(schema::block_term(schema::any_role_term("email", w.value)));
      break;
    case IdentityKind::phone:
      parts.emplace_back(schema::block_term(schema::any_role_term("phone", w.value)));
      break;
    case IdentityKind::ip:
      parts.emplace_back(schema::block_term(schema::any_role_term("ip", w.value)));
      break;
    case IdentityKind::name:
      for (std::size_t r = 0; r < connectors::k_role_count; ++r) {
        const std::string prefix = schema::prefix_for("name-role", static_cast<Role>(r));
        const std::vector<Spellings> tokens = indexed_tokens(w.tokens, static_cast<Role>(r));
        if (tokens.empty()) {
          continue;
        }
        std::vector<Xapian::Query> all;
        for (const Spellings &spellings : tokens) {
          std::vector<Xapian::Query> each;
          for (const std::string &spelling : spellings) {
            each.emplace_back(schema::block_term(prefix + spelling));
          }
          all.emplace_back(Xapian::Query::OP_OR, each.begin(), each.end());
        }
        parts.emplace_back(Xapian::Query::OP_AND, all.begin(), all.end());
      }
      break;
    }
  }
  return Xapian::Query(Xapian::Query::OP_FILTER,
                       Xapian::Query(Xapian::Query::OP_OR, parts.begin(), parts.end()),
                       Xapian::Query(schema::log_block_term()));
}

bool doc_has_term(const Xapian::Document &doc, const std::string &term) {
  Xapian::TermIterator it = doc.termlist_begin();
  it.skip_to(term);
  return it != doc.termlist_end() && *it == term;
}

/** Roles in which the name matches this document (phrase per role, filtered to the doc). */
std::vector<std::string> name_roles(Xapian::Enquire &enquire, const Xapian::Document &doc,
                                    const std::string &qterm, const Wanted &w) {
  std::vector<std::string> roles;
  for (std::size_t r = 0; r < connectors::k_role_count; ++r) {
    auto role = static_cast<Role>(r);
    std::string prefix = schema::prefix_for("name-role", role);
    const auto present = [&](const Spellings &spellings) {
      return std::any_of(spellings.begin(), spellings.end(),
                         [&](const std::string &s) { return doc_has_term(doc, prefix + s); });
    };
    const std::vector<Spellings> tokens = indexed_tokens(w.tokens, role);
    if (tokens.empty() || !present(tokens.front()) || !present(tokens.back())) {
      continue; // cheap pre-check: a token never appears in this role
    }
    Xapian::Query q(Xapian::Query::OP_FILTER, name_query(w.tokens, role), Xapian::Query(qterm));
    enquire.set_query(q);
    if (!enquire.get_mset(0, 1).empty()) {
      roles.emplace_back(connectors::to_string(role));
    }
  }
  return roles;
}

std::string_view kind_name(IdentityKind k) { return index::to_string(k); }

void add_field(std::vector<std::string> &fields, const std::string &field) {
  if (!field.empty() && std::find(fields.begin(), fields.end(), field) == fields.end()) {
    fields.push_back(field);
  }
}

/** True when every token of the wanted name, in some spelling, is among the identity's. */
bool name_holds(const index::Identity &id, const Wanted &w) {
  const std::string words = " " + id.value + " " + id.alternate + " ";
  return std::all_of(w.tokens.begin(), w.tokens.end(), [&](const Spellings &spellings) {
    return std::any_of(spellings.begin(), spellings.end(), [&](const std::string &s) {
      return words.find(" " + s + " ") != std::string::npos;
    });
  });
}

/**
 * The attachments whose text holds the name: those whose token positions (index::PartSpan)
 * contain a position of the name's first token in the attachment-body role.
 */
void attachment_fields(const Xapian::Document &doc, const std::vector<index::PartSpan> &parts, const Wanted &w,
                       std::vector<std::string> &fields) {
  const std::string prefix = schema::prefix_for("name-role", Role::attachment_body);
  const std::vector<Spellings> tokens = indexed_tokens(w.tokens, Role::attachment_body);
  if (tokens.empty()) {
    return;
  }
  for (const std::string &spelling : tokens.front()) {
    const std::string term = prefix + spelling;
    Xapian::TermIterator it = doc.termlist_begin();
    it.skip_to(term);
    if (it == doc.termlist_end() || *it != term) {
      continue;
    }
    for (auto pos = it.positionlist_begin(); pos != it.positionlist_end(); ++pos) {
      for (const index::PartSpan &part : parts) {
        if (*pos >= part.from && *pos <= part.to) {
          add_field(fields, part.name);
        }
      }
    }
  }
}

/**
 * The local parts of the wanted addresses when every identifier is an address with an ASCII
 * local part (see LogExpander::set_needles); else none (every re-read transaction is indexed).
 * None either when a subaddress separator is an ASCII letter or digit: then `alice.smithxtag@`
 * would hold `alice.smith` other than as a whole word (connectors::holds_needle).
 */
std::vector<std::string> needles_of(const core::Config &config, const std::vector<Wanted> &wanted) {
  if (std::ranges::any_of(config.identity.subaddress_separators,
                          [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); })) {
    return {};
  }
  std::vector<std::string> out;
  for (const Wanted &w : wanted) {
    if (w.kind != IdentityKind::email) {
      return {};
    }
    std::string local = w.value.substr(0, w.value.rfind('@'));
    if (local.size() >= 2 && local.front() == '"' && local.back() == '"') {
      local = local.substr(1, local.size() - 2);
    }
    if (local.empty() || std::ranges::any_of(local, [](char c) { return static_cast<unsigned char>(c) >= 0x80U; })) {
      return {};
    }
    out.push_back(std::move(local));
  }
  return out;
}

/** Whether any document of `db` is flagged by suppression on restore (XSUPP:). */
bool has_suppressed(const Xapian::Database &db) {
  const std::string prefix = schema::prefix_for("suppressed");
  return db.allterms_begin(prefix) != db.allterms_end(prefix);
}

/** The requests of the XSUPP: terms of `doc` (indexer/suppression.hpp). */
std::vector<std::string> suppressed_requests(const Xapian::Document &doc) {
  const std::string prefix = schema::prefix_for("suppressed");
  std::vector<std::string> out;
  Xapian::TermIterator it = doc.termlist_begin();
  it.skip_to(prefix);
  for (; it != doc.termlist_end() && (*it).starts_with(prefix); ++it) {
    out.push_back((*it).substr(prefix.size()));
  }
  return out;
}

/** The prefix name of the role-scoped terms of an address, phone or IP (schema.hpp). */
const char *role_field_of(IdentityKind kind) {
  return kind == IdentityKind::email ? "email-role" : kind == IdentityKind::phone ? "phone-role" : "ip-role";
}

/**
 * The roles and fields of `w` (an address, phone or IP) in an item, from its stored evidence;
 * when that was capped (`capped`) and holds none, from `has_role` (the role-scoped terms).
 */
template <class HasRole>
void exact_match(const Wanted &w, const std::vector<index::Identity> &evidence, bool capped, HasRole &&has_role,
                 Match &m) {
  std::vector<bool> seen(connectors::k_role_count, false);
  for (const index::Identity &id : evidence) {
    if (id.kind == w.kind && id.value == w.value) {
      seen[static_cast<std::size_t>(id.role)] = true;
      add_field(m.fields, id.field);
    }
  }
  if (capped && std::find(seen.begin(), seen.end(), true) == seen.end()) {
    // The stored evidence was capped: the role terms say where the identity is.
    for (std::size_t r = 0; r < seen.size(); ++r) {
      seen[r] = has_role(static_cast<Role>(r));
    }
  }
  for (std::size_t r = 0; r < seen.size(); ++r) {
    if (seen[r]) {
      m.roles.emplace_back(connectors::to_string(static_cast<Role>(r)));
    }
  }
}

/**
 * The hit of a re-read log transaction (LogExpander::set_matcher) when it holds one of
 * `wanted` (addresses, phones and IPs only), as the search of its document in memory would
 * give it: its any-role terms are its identities, its role-scoped terms their roles, its XSUPP:
 * terms `built.suppressed`.
 */
std::optional<Hit> transaction_hit(index::BuiltDocument &built, const std::vector<Wanted> &wanted) {
  const auto holds = [&](const Wanted &w, std::optional<Role> role) {
    return std::ranges::any_of(built.identities, [&](const index::Identity &id) {
      return id.kind == w.kind && id.value == w.value && (!role || id.role == *role);
    });
  };
  if (std::ranges::none_of(wanted, [&](const Wanted &w) { return holds(w, std::nullopt); })) {
    return std::nullopt;
  }
  index::StoredDocument &stored = *built.stored;
  Hit hit = hit_of(built.doc.key(), stored);
  hit.suppressed = built.suppressed;
  std::ranges::sort(hit.suppressed); // as the document's XSUPP: terms list them
  hit.suppressed.erase(std::unique(hit.suppressed.begin(), hit.suppressed.end()), hit.suppressed.end());
  for (const Wanted &w : wanted) {
    Match m{w.identifier, std::string(kind_name(w.kind)), {}};
    exact_match(w, stored.identities, hit.evidence_capped > 0, [&](Role role) { return holds(w, role); }, m);
    if (!m.roles.empty()) {
      hit.matched.push_back(std::move(m));
    }
  }
  return hit;
}

/**
 * The data of the second half of a large match set, read on a thread of its own with a
 * database handle of its own (the same index, checked to be at the same revision): reading a
 * document's data (a B-tree look-up and an inflation) is most of walking the matches of a find
 * whose log blocks match by hundreds, and the other core is idle then.
 */
class DataAhead {
public:
  DataAhead(const core::Config &config, Xapian::Database &db, const Xapian::MSet &mset) {
    constexpr Xapian::doccount k_least = 128; // fewer: not worth a thread
    if (mset.size() < k_least || std::thread::hardware_concurrency() < 2) {
      return;
    }
    m_first = mset.size() / 2;
    std::vector<Xapian::docid> ids;
    for (Xapian::MSetIterator it = mset[static_cast<Xapian::doccount>(m_first)]; it != mset.end(); ++it) {
      ids.push_back(*it);
    }
    m_data.resize(ids.size());
    const Xapian::rev revision = db.get_revision();
    try {
      m_thread = std::thread([this, ids = std::move(ids), revision, path = index::index_path(config)] {
        try {
          Xapian::Database own(path);
          if (own.get_revision() != revision) {
            return; // a writer committed since: the caller reads them itself
          }
          for (std::size_t i = 0; i < ids.size(); ++i) {
            m_data[i] = own.get_document(ids[i]).get_data();
          }
          m_ok = true;
        } catch (...) {
          // the caller reads them itself (and meets the error, if it is one)
        }
      });
    } catch (const std::system_error &) {
      m_first = k_none; // no thread to be had
    }
  }
  DataAhead(const DataAhead &) = delete;
  DataAhead &operator=(const DataAhead &) = delete;
  ~DataAhead() {
    if (m_thread.joinable()) {
      m_thread.join();
    }
  }

  /** The data of the `index`-th match, moved out, if it was read ahead. */
  std::optional<std::string> take(std::size_t index) {
    if (index < m_first || m_first == k_none) {
      return std::nullopt;
    }
    if (m_thread.joinable()) {
      m_thread.join();
    }
    if (!m_ok) {
      return std::nullopt;
    }
    return std::move(m_data[index - m_first]);
  }

private:
  static constexpr std::size_t k_none = std::numeric_limits<std::size_t>::max();
  std::size_t m_first = k_none;
  std::vector<std::string> m_data;
  bool m_ok = false; // set by the thread, read after joining it
  std::thread m_thread;
};

/**
 * The items of `db` that hold a wanted identity. `transactions`: `db` is the in-memory database
 * of re-read log transactions, whose documents' data it keeps.
 */
core::Result<std::vector<Hit>> search(const core::Config &config, Xapian::Database &db,
                                      const std::vector<Wanted> &wanted, LogExpander *transactions = nullptr) {
  std::vector<Hit> hits;
  if (db.get_doccount() == 0) {
    return hits;
  }
  Xapian::Enquire enquire(db);
  enquire.set_query(Xapian::Query(Xapian::Query::OP_OR, subject_query(wanted), block_query(wanted)));
  enquire.set_weighting_scheme(Xapian::BoolWeight());
  enquire.set_docid_order(Xapian::Enquire::ASCENDING);
  Xapian::MSet mset = enquire.get_mset(0, db.get_doccount());
  Xapian::Enquire role_enquire(db);
  role_enquire.set_weighting_scheme(Xapian::BoolWeight());
  LogExpander logs(config);
  std::vector<std::string> needles = needles_of(config, wanted);
  // With needles (addresses only), the wdf of an address's block term in a block says which
  // parts of the block hold it (indexer/log_block.hpp): the postings of those terms, walked
  // along the matches in docid order.
  std::vector<Xapian::PostingIterator> block_posts;
  if (!needles.empty()) {
    for (const Wanted &w : wanted) {
      block_posts.push_back(db.postlist_begin(schema::block_term(schema::any_role_term("email", w.value))));
    }
  }
  logs.set_needles(std::move(needles));
  // The re-read log transactions of a lookup of addresses, phones and IPs are matched as they
  // are read, on the reading threads; a name needs its positions: searched in memory.
  const bool match_transactions =
      transactions == nullptr &&
      std::ranges::none_of(wanted, [](const Wanted &w) { return w.kind == IdentityKind::name; });
  if (match_transactions) {
    logs.set_matcher([&wanted](index::BuiltDocument &built) { return transaction_hit(built, wanted); });
  }
  const bool flagged = has_suppressed(db);
  std::optional<DataAhead> ahead;
  if (transactions == nullptr) {
    ahead.emplace(config, db, mset);
  }
  std::size_t index = 0; // of `it` in the match set
  for (Xapian::MSetIterator it = mset.begin(); it != mset.end(); ++it, ++index) {
    Xapian::Document doc = it.get_document();
    index::StoredDocument stored;
    if (transactions != nullptr) {
      std::unique_ptr<index::StoredDocument> kept = transactions->take_stored(*it);
      if (!kept) {
        return core::fail(core::ErrorCode::internal, "query: a re-read log transaction without its data");
      }
      stored = std::move(*kept);
    } else if (const std::string data = [&] {
                 std::optional<std::string> read = ahead->take(index);
                 return read ? std::move(*read) : doc.get_data();
               }();
               !index::is_log_block_data(data)) {
      MAILDSAR_TRY_ASSIGN(stored, index::parse_document_data(data));
    } else {
      std::uint32_t mask = 0;
      for (Xapian::PostingIterator &p : block_posts) {
        if (p != Xapian::PostingIterator()) {
          p.skip_to(*it);
        }
        if (p != Xapian::PostingIterator() && *p == *it) {
          mask |= p.get_wdf();
        }
      }
      MAILDSAR_TRY(logs.add(data, mask, flagged && !suppressed_requests(doc).empty()));
      continue;
    }
    const std::string qterm = key_term_of(doc);
    Hit hit = hit_of(qterm, stored);
    if (flagged) {
      hit.suppressed = suppressed_requests(doc);
    }
    for (const Wanted &w : wanted) {
      Match m{w.identifier, std::string(kind_name(w.kind)), {}};
      if (w.kind == IdentityKind::name) {
        m.roles = name_roles(role_enquire, doc, qterm, w);
        if (!stored.parts.empty() &&
            std::find(m.roles.begin(), m.roles.end(), connectors::to_string(Role::attachment_body)) != m.roles.end()) {
          attachment_fields(doc, stored.parts, w, m.fields);
        }
        for (const index::Identity &id : stored.identities) {
          if (id.kind == IdentityKind::name && !id.field.empty() && name_holds(id, w) &&
              std::find(m.roles.begin(), m.roles.end(), connectors::to_string(id.role)) != m.roles.end()) {
            add_field(m.fields, id.field);
          }
        }
      } else {
        exact_match(w, stored.identities, hit.evidence_capped > 0, [&](Role role) {
          return doc_has_term(doc, schema::role_term(role_field_of(w.kind), role, w.value));
        }, m);
      }
      if (!m.roles.empty()) {
        hit.matched.push_back(std::move(m));
      }
    }
    hits.push_back(std::move(hit));
  }
  MAILDSAR_TRY(logs.finish());
  if (match_transactions) {
    std::vector<Hit> more = logs.take_hits();
    hits.insert(hits.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  } else if (!logs.empty()) {
    // The transactions of the matched log blocks, one document each: the same search again.
    MAILDSAR_TRY_ASSIGN(std::vector<Hit> more, search(config, logs.db(), wanted, &logs));
    hits.insert(hits.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  // (An mbox message's offset is set later, from the catalog: its number keeps file order.)
  auto order = [](const Hit &h) {
    return std::tuple<const std::string &, const std::string &, std::uint64_t, std::uint64_t, std::uint64_t,
                      std::uint64_t, const std::string &>(
        h.locator.source, h.locator.path, h.locator.offset, h.locator.seq,
        h.locator.lines.empty() ? std::uint64_t{0} : h.locator.lines.front(), h.locator.node_id,
        h.id);
  };
  std::sort(hits.begin(), hits.end(), [&](const Hit &a, const Hit &b) { return order(a) < order(b); });
  return hits;
}

} // namespace

core::Status place_mbox_locators(const core::Config &config, std::span<connectors::Locator *const> locators) {
  std::vector<std::string> qterms;
  for (const connectors::Locator *l : locators) {
    if (l->store == connectors::StoreKind::mbox) {
      qterms.push_back(schema::unique_term(l->source, l->key()));
    }
  }
  if (qterms.empty()) {
    return {};
  }
  MAILDSAR_TRY_ASSIGN(auto places, index::read_item_places(index::catalog_path(config), qterms));
  std::size_t next = 0;
  for (connectors::Locator *l : locators) {
    if (l->store != connectors::StoreKind::mbox) {
      continue;
    }
    auto it = places.find(qterms[next++]);
    if (it == places.end()) {
      return core::fail(core::ErrorCode::not_indexed,
                        fmt::format("the catalog does not say where message {} of mbox {} lies", l->seq, l->path),
                        "run maildsar index");
    }
    l->offset = it->second.offset;
    l->length = it->second.length;
  }
  return {};
}

core::Status place_mbox_hits(const core::Config &config, std::vector<Hit> &hits) {
  std::vector<connectors::Locator *> locators;
  for (Hit &hit : hits) {
    locators.push_back(&hit.locator);
  }
  return place_mbox_locators(config, locators);
}

core::Result<std::vector<Hit>> find(const core::Config &config, const SubjectProfile &subject) {
  index::Normalizer norm(
      index::NormalizeOptions{config.identity.subaddress_separators, config.identity.phone_region});
  if (!subject.phones.empty()) {
    MAILDSAR_TRY(index::Normalizer::load_phone_module());
  }
  MAILDSAR_TRY_ASSIGN(std::vector<Wanted> wanted, normalise(subject, norm));
  if (wanted.empty()) {
    return core::fail(core::ErrorCode::usage, "no identifier given",
                      "use --email, --name, --phone, --ip or --subject FILE");
  }
  return read_index<Hit>(config, [&](Xapian::Database &db) { return search(config, db, wanted); });
}

core::Result<std::vector<Hit>> items_by_id(const core::Config &config,
                                         const std::vector<std::pair<std::string, std::string>> &source_ids) {
  return read_index<Hit>(config, [&](Xapian::Database &db) -> core::Result<std::vector<Hit>> {
    std::vector<Hit> hits;
    for (const auto &[source, id] : source_ids) {
      const std::string qterm = schema::prefix_for("key") + source + ":" + id; // as schema::unique_term
      Xapian::PostingIterator p = db.postlist_begin(qterm);
      if (p == db.postlist_end(qterm)) {
        continue;
      }
      const std::string data = db.get_document(*p).get_data();
      if (index::is_log_block_data(data)) {
        continue;
      }
      MAILDSAR_TRY_ASSIGN(index::StoredDocument stored, index::parse_document_data(data));
      hits.push_back(hit_of(qterm, stored));
    }
    return hits;
  });
}

core::Result<std::vector<Hit>> suppressed_items(const core::Config &config, const std::string &request) {
  return read_index<Hit>(config, [&](Xapian::Database &db) -> core::Result<std::vector<Hit>> {
    const std::string prefix = schema::prefix_for("suppressed");
    std::vector<std::string> terms;
    if (!request.empty()) {
      terms.push_back(schema::suppressed_term(request));
    } else {
      for (Xapian::TermIterator t = db.allterms_begin(prefix); t != db.allterms_end(prefix); ++t) {
        terms.push_back(*t);
      }
    }
    std::vector<Hit> hits;
    std::map<std::string, std::size_t> at; // item id -> its hit
    for (const std::string &term : terms) {
      MAILDSAR_TRY_ASSIGN(std::vector<Hit> found, lookup_term(config, db, term));
      for (Hit &h : found) {
        auto [it, fresh] = at.emplace(h.id, hits.size());
        if (fresh) {
          hits.push_back(std::move(h));
        }
        hits[it->second].suppressed.push_back(term.substr(prefix.size()));
      }
    }
    return hits;
  });
}

core::Result<std::vector<Hit>> truncated_items(const core::Config &config) {
  return read_index<Hit>(config, [&](Xapian::Database &db) {
    return lookup_term(config, db, index::schema::truncated_term());
  });
}

} // namespace maildsar::query
