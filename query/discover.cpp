// SPDX-License-Identifier: GPL-3.0-or-later
#include "query/discover.hpp"

#include "indexer/document.hpp"
#include "indexer/identity.hpp"
#include "indexer/log_block.hpp"
#include "indexer/schema.hpp"
#include "query/index_reader.hpp"

#include <xapian.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace maildsar::query {

namespace {

using connectors::Role;
using index::Identity;
using index::IdentityKind;

/** The items of one address a subaddress rule reads at most (first/last seen, examples). */
constexpr std::size_t k_max_subaddress_items = 1000;

/** A name as a set of folded tokens: "Doe, Jane" and "Jane Doe" are one name. */
std::string name_key(std::vector<std::string> tokens) {
  std::ranges::sort(tokens);
  std::string key;
  for (const std::string &t : tokens) {
    key += (key.empty() ? "" : " ") + t;
  }
  return key;
}


bool is_address_role(Role r) {
  return r == Role::from || r == Role::to || r == Role::cc || r == Role::bcc || r == Role::reply_to ||
         r == Role::sender;
}

bool is_sent_folder(const connectors::Locator &loc) {
  std::string f = loc.folder;
  std::ranges::transform(f, f.begin(), [](char ch) { return static_cast<char>(std::tolower(static_cast<unsigned char>(ch))); });
  return f.find("sent") != std::string::npos || f.find("gesendet") != std::string::npos;
}

struct Seeds {
  std::set<std::string> emails;
  std::set<std::string> names; // name_key
  std::set<std::string> phones;
};

struct Tally {
  std::string kind;
  std::string identifier;
  std::map<std::string, std::set<Xapian::docid>> rules;
  std::set<Xapian::docid> items;
  std::optional<std::int64_t> first;
  std::optional<std::int64_t> last;
  std::vector<connectors::Locator> examples;
};

class Collector {
public:
  explicit Collector(const Seeds &seeds) : m_seeds(seeds) {}

  void note(const std::string &kind, const std::string &value, const std::string &rule, Xapian::docid id,
            const index::StoredDocument &doc) {
    if ((kind == "email" && m_seeds.emails.contains(value)) || (kind == "phone" && m_seeds.phones.contains(value))) {
      return; // the subject's already
    }
    auto [it, inserted] = m_at.try_emplace(kind + ":" + value, m_tallies.size());
    if (inserted) {
      m_tallies.push_back(Tally{kind, value, {}, {}, std::nullopt, std::nullopt, {}});
    }
    Tally &t = m_tallies[it->second];
    t.rules[rule].insert(id);
    if (t.items.insert(id).second) {
      if (doc.date) {
        t.first = t.first ? std::min(*t.first, *doc.date) : *doc.date;
        t.last = t.last ? std::max(*t.last, *doc.date) : *doc.date;
      }
      if (t.examples.size() < 2) {
        t.examples.push_back(doc.locator);
      }
    }
  }

  /** Applies the per-item rules to one document. */
  void consider(Xapian::docid id, const index::StoredDocument &doc) {
    const std::vector<Identity> &ids = doc.identities;
    bool from_subject_address = false;
    bool from_subject_name = false;
    bool owned_by_subject = false;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const Identity &x = ids[i];
      if (x.kind == IdentityKind::email && (x.role == Role::from || x.role == Role::sender) &&
          m_seeds.emails.contains(x.value)) {
        from_subject_address = true;
      }
      if (x.kind == IdentityKind::email && x.role == Role::owner && m_seeds.emails.contains(x.value)) {
        owned_by_subject = true;
      }
      if (x.kind == IdentityKind::name && is_address_role(x.role) && m_seeds.names.contains(name_key_of_value(x.value))) {
        if (x.role == Role::from || x.role == Role::sender) {
          from_subject_name = true;
        }
        for (std::size_t j : addresses_named(ids, i)) {
          note("email", ids[j].value, "display-name", id, doc);
        }
      }
    }
    const bool sent_by_subject = from_subject_address || from_subject_name;
    for (const Identity &x : ids) {
      if (from_subject_address && x.kind == IdentityKind::email && x.role == Role::reply_to) {
        note("email", x.value, "reply-to", id, doc);
      }
      if (sent_by_subject && (x.role == Role::body || x.role == Role::attachment_body) &&
          (x.kind == IdentityKind::email || x.kind == IdentityKind::phone)) {
        note(x.kind == IdentityKind::email ? "email" : "phone", x.value, "signature", id, doc);
      }
      if (owned_by_subject && x.kind == IdentityKind::email &&
          (x.role == Role::delivered_to || x.role == Role::envelope_to ||
           ((x.role == Role::from || x.role == Role::sender) && is_sent_folder(doc.locator)))) {
        note("email", x.value, "mailbox", id, doc);
      }
    }
  }

  DiscoveryReport finish(std::uint64_t items_read) {
    DiscoveryReport report;
    report.items_read = items_read;
    for (Tally &t : m_tallies) {
      Candidate c;
      c.kind = t.kind;
      c.identifier = t.identifier;
      std::vector<double> parts;
      for (const auto &[rule, items] : t.rules) {
        const double s = rule_score(rule, items.size());
        parts.push_back(s);
        c.evidence.push_back(DiscoveryEvidence{rule, items.size(), s});
      }
      std::ranges::sort(c.evidence, [](const DiscoveryEvidence &a, const DiscoveryEvidence &b) {
        return a.score != b.score ? a.score > b.score : a.rule < b.rule;
      });
      c.score = combined_score(parts);
      c.items = t.items.size();
      c.first = t.first;
      c.last = t.last;
      c.examples = std::move(t.examples);
      report.candidates.push_back(std::move(c));
    }
    std::ranges::sort(report.candidates, [](const Candidate &a, const Candidate &b) {
      if (a.score != b.score) {
        return a.score > b.score;
      }
      return std::tie(a.kind, a.identifier) < std::tie(b.kind, b.identifier);
    });
    return report;
  }

private:
  const Seeds &m_seeds;
  std::vector<Tally> m_tallies;
  std::unordered_map<std::string, std::size_t> m_at;
};

} // namespace

std::string name_key_of_value(std::string_view value) {
  std::vector<std::string> tokens;
  std::size_t start = 0;
  while (start <= value.size()) {
    const std::size_t space = value.find(' ', start);
    const std::size_t end = space == std::string_view::npos ? value.size() : space;
    if (end > start) {
      tokens.emplace_back(value.substr(start, end - start));
    }
    start = end + 1;
  }
  return name_key(std::move(tokens));
}

std::vector<std::size_t> addresses_named(const std::vector<Identity> &ids, std::size_t name) {
  std::vector<std::size_t> out;
  if (name >= ids.size() || ids[name].kind != IdentityKind::name || !is_address_role(ids[name].role)) {
    return out;
  }
  for (std::size_t j = name; j-- > 0;) {
    if (ids[j].kind != IdentityKind::email || ids[j].role != ids[name].role) {
      break;
    }
    out.push_back(j);
  }
  return out;
}

double rule_score(std::string_view rule, std::uint64_t items) {
  struct Rule {
    std::string_view name;
    double base;
    double step;
  };
  // base for one item, + step for each further item up to three more
  static constexpr std::array<Rule, 5> k_rules{{{"subaddress", 0.8, 0.05},
                                                {"display-name", 0.6, 0.1},
                                                {"reply-to", 0.5, 0.1},
                                                {"mailbox", 0.4, 0.1},
                                                {"signature", 0.3, 0.1}}};
  for (const Rule &r : k_rules) {
    if (r.name == rule) {
      const double more = static_cast<double>(std::min<std::uint64_t>(items > 0 ? items - 1 : 0, 3));
      return std::min(0.95, r.base + r.step * more);
    }
  }
  return 0;
}

double combined_score(const std::vector<double> &parts) {
  double none = 1;
  for (const double s : parts) {
    none *= 1 - s;
  }
  // Never 1: evidence from the index makes an identifier likely, a person confirms it.
  return std::min(0.99, std::round((1 - none) * 100) / 100);
}

core::Result<DiscoveryReport> discover(const core::Config &config, const SubjectProfile &subject) {
  index::Normalizer norm(index::NormalizeOptions{config.identity.subaddress_separators, config.identity.phone_region});
  if (!subject.phones.empty()) {
    MAILDSAR_TRY(index::Normalizer::load_phone_module());
  }
  Seeds seeds;
  std::vector<std::vector<std::string>> name_tokens;
  for (const std::string &e : subject.emails) {
    auto v = norm.email(e);
    if (!v) {
      return core::fail(core::ErrorCode::usage, fmt::format("not a valid e-mail address: '{}'", e));
    }
    seeds.emails.insert(*v);
  }
  for (const std::string &n : subject.names) {
    std::vector<std::string> tokens = norm.name_tokens(n);
    if (tokens.empty()) {
      return core::fail(core::ErrorCode::usage, fmt::format("not a valid name: '{}'", n));
    }
    name_tokens.push_back(tokens);
    seeds.names.insert(name_key(std::move(tokens)));
  }
  for (const std::string &p : subject.phones) {
    auto v = norm.phone(p);
    if (!v) {
      return core::fail(core::ErrorCode::usage, fmt::format("not a valid phone number: '{}'", p));
    }
    seeds.phones.insert(*v);
  }
  if (seeds.emails.empty() && seeds.names.empty()) {
    return core::fail(core::ErrorCode::usage, "discover needs an e-mail address or a name of the subject",
                      "give --email and/or --name (or --request ID of a registered request)");
  }
  const std::string separators = config.identity.subaddress_separators;
  MAILDSAR_TRY_ASSIGN(std::vector<DiscoveryReport> one,
                      read_index<DiscoveryReport>(config, [&](Xapian::Database &db) -> core::Result<std::vector<DiscoveryReport>> {
    Collector c(seeds);
    std::unordered_set<Xapian::docid> seen;
    std::uint64_t read = 0;
    const auto consider = [&](Xapian::docid id) -> core::Status {
      if (!seen.insert(id).second) {
        return {};
      }
      const std::string data = db.get_document(id).get_data();
      if (index::is_log_block_data(data)) {
        return {}; // delivery logs: no names, no Reply-To
      }
      MAILDSAR_TRY_ASSIGN(index::StoredDocument doc, index::parse_document_data(data));
      ++read;
      c.consider(id, doc);
      return {};
    };
    // Items that hold one of the subject's addresses (any role) ...
    for (const std::string &e : seeds.emails) {
      const std::string term = index::schema::any_role_term("email", e);
      for (Xapian::PostingIterator p = db.postlist_begin(term); p != db.postlist_end(term); ++p) {
        MAILDSAR_TRY(consider(*p));
      }
    }
    // ... and items whose address fields carry the subject's name (every token in one role).
    for (const std::vector<std::string> &tokens : name_tokens) {
      for (const Role role : {Role::from, Role::sender, Role::to, Role::cc, Role::bcc, Role::reply_to}) {
        const std::string prefix = index::schema::prefix_for("name-role", role);
        std::vector<Xapian::Query> all;
        for (const std::string &t : tokens) {
          all.emplace_back(prefix + t);
        }
        Xapian::Enquire enquire(db);
        enquire.set_query(Xapian::Query(Xapian::Query::OP_AND, all.begin(), all.end()));
        enquire.set_weighting_scheme(Xapian::BoolWeight());
        const Xapian::MSet matches = enquire.get_mset(0, db.get_doccount());
        for (Xapian::MSetIterator m = matches.begin(); m != matches.end(); ++m) {
          MAILDSAR_TRY(consider(*m));
        }
      }
    }
    // Subaddress variants the config does not fold: local part + another separator + tag.
    for (const std::string &e : seeds.emails) {
      const std::size_t at = e.rfind('@');
      if (at == std::string::npos || at == 0) {
        continue;
      }
      const std::string local = e.substr(0, at);
      const std::string domain = e.substr(at);
      const std::string base = index::schema::any_role_term("email", local);
      for (const char sep : std::string_view("+-_=")) {
        if (separators.find(sep) != std::string::npos) {
          continue; // folded by the index already: the subject's own address
        }
        const std::string prefix = base + sep;
        for (Xapian::TermIterator t = db.allterms_begin(prefix); t != db.allterms_end(prefix); ++t) {
          const std::string term = *t;
          if (!term.ends_with(domain) || term.size() <= prefix.size() + domain.size()) {
            continue;
          }
          const std::string address = term.substr(base.size() - local.size());
          std::size_t n = 0;
          for (Xapian::PostingIterator p = db.postlist_begin(term); p != db.postlist_end(term) && n < k_max_subaddress_items;
               ++p, ++n) {
            const std::string data = db.get_document(*p).get_data();
            if (index::is_log_block_data(data)) {
              continue;
            }
            MAILDSAR_TRY_ASSIGN(index::StoredDocument doc, index::parse_document_data(data));
            c.note("email", address, "subaddress", *p, doc);
          }
        }
      }
    }
    std::vector<DiscoveryReport> out;
    out.push_back(c.finish(read));
    return out;
  }));
  if (one.empty()) {
    return DiscoveryReport{};
  }
  std::vector<connectors::Locator *> examples;
  for (Candidate &c : one.front().candidates) {
    for (connectors::Locator &l : c.examples) {
      examples.push_back(&l);
    }
  }
  MAILDSAR_TRY(place_mbox_locators(config, examples));
  return std::move(one.front());
}

} // namespace maildsar::query
