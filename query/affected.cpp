// SPDX-License-Identifier: GPL-3.0-or-later
#include "query/affected.hpp"

#include "indexer/document.hpp"
#include "indexer/log_block.hpp"
#include "indexer/schema.hpp"
#include "query/discover.hpp"
#include "query/index_reader.hpp"
#include "query/log_blocks.hpp"

#include <xapian.h>

#include <fnmatch.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

namespace maildsar::query {

namespace {

// Blocks re-read per in-memory database: bounds the memory of a whole log source.
constexpr std::size_t k_blocks_per_pass = 512;

struct Key {
  std::string kind;
  std::string value;
  friend bool operator==(const Key &, const Key &) = default;
};
struct KeyHash {
  std::size_t operator()(const Key &k) const noexcept {
    return std::hash<std::string>()(k.kind) ^ (std::hash<std::string>()(k.value) * 31U);
  }
};

class Collector {
public:
  explicit Collector(const AffectedSelection &selection) : m_sel(selection) {}

  void consider(const index::StoredDocument &d) {
    consider(d.locator, d.date, d.identities, !d.truncated.empty(), d.evidence_capped > 0);
  }

  void consider(const connectors::Locator &loc, const std::optional<std::int64_t> &date,
                const std::vector<index::Identity> &identities, bool truncated, bool capped) {
    if (!m_sel.folder_glob.empty() && ::fnmatch(m_sel.folder_glob.c_str(), loc.folder.c_str(), 0) != 0 &&
        ::fnmatch(m_sel.folder_glob.c_str(), loc.path.c_str(), 0) != 0) {
      return;
    }
    if (m_sel.since || m_sel.until) {
      if (!date) {
        ++m_report.undated_excluded;
        return;
      }
      if ((m_sel.since && *date < *m_sel.since) || (m_sel.until && *date >= *m_sel.until)) {
        return;
      }
    }
    const std::string category = category_of_store(connectors::to_string(loc.store));
    ++m_report.items;
    ++m_report.items_per_category[category];
    m_report.evidence_capped += capped ? 1U : 0U;
    m_report.truncated += truncated ? 1U : 0U;
    ++m_item;
    std::vector<std::size_t> entry_of(identities.size());
    for (std::size_t i = 0; i < identities.size(); ++i) {
      const index::Identity &id = identities[i];
      Key key{std::string(index::to_string(id.kind)), id.value};
      auto [it, inserted] = m_index.try_emplace(key, m_entries.size());
      if (inserted) {
        Entry entry;
        entry.id.kind = key.kind;
        entry.id.identifier = key.value;
        m_entries.push_back(std::move(entry));
      }
      entry_of[i] = it->second;
      for (std::size_t j : addresses_named(identities, i)) {
        m_entries[entry_of[j]].names.insert(it->second); // this address was given with this name
      }
      Entry &e = m_entries[it->second];
      e.id.roles.emplace(connectors::to_string(id.role));
      if (e.last_item == m_item) {
        continue; // counted for this item already (another role)
      }
      e.last_item = m_item;
      ++e.id.items;
      e.id.categories.insert(category);
      if (date) {
        e.id.first = e.id.first ? std::min(*e.id.first, *date) : *date;
        e.id.last = e.id.last ? std::max(*e.id.last, *date) : *date;
      }
    }
  }

  AffectedReport finish() {
    group_people();
    for (Entry &e : m_entries) {
      m_report.identifiers.push_back(std::move(e.id));
    }
    std::ranges::sort(m_report.identifiers, [](const AffectedIdentifier &a, const AffectedIdentifier &b) {
      return std::tie(a.kind, a.identifier) < std::tie(b.kind, b.identifier);
    });
    return std::move(m_report);
  }

private:
  struct Entry {
    AffectedIdentifier id;
    std::uint64_t last_item = 0;
    std::set<std::size_t> names; // an address: the display names (entries) it was given with
  };

  /**
   * One person per set of identifiers a display name ties together: an address and the one
   * name it is given with, and so every address given with that name. An address seen with
   * several names (a shared or role mailbox: info@, a secretary writing for her boss) links
   * nobody, so that two people are never merged through it. Persons are numbered in the order
   * of their first identifier (kind, then value).
   */
  void group_people() {
    std::vector<std::size_t> parent(m_entries.size());
    for (std::size_t i = 0; i < parent.size(); ++i) {
      parent[i] = i;
    }
    const auto root = [&](std::size_t i) {
      while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
      }
      return i;
    };
    // One name whatever its order ("Smith, Alice" is Alice Smith): its spellings are one.
    std::map<std::string, std::size_t> by_name;
    for (std::size_t i = 0; i < m_entries.size(); ++i) {
      if (m_entries[i].id.kind == "name") {
        auto [it, inserted] = by_name.try_emplace(name_key_of_value(m_entries[i].id.identifier), i);
        parent[root(i)] = root(it->second);
      }
    }
    for (std::size_t i = 0; i < m_entries.size(); ++i) {
      // An address given with one name only (in any spelling) is that person's.
      std::set<std::size_t> people;
      for (std::size_t n : m_entries[i].names) {
        people.insert(root(n));
      }
      if (people.size() == 1) {
        parent[root(i)] = *people.begin();
      }
    }
    std::vector<std::size_t> order(m_entries.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
      order[i] = i;
    }
    std::ranges::sort(order, [&](std::size_t a, std::size_t b) {
      return std::tie(m_entries[a].id.kind, m_entries[a].id.identifier) <
             std::tie(m_entries[b].id.kind, m_entries[b].id.identifier);
    });
    std::map<std::size_t, std::size_t> members;
    for (std::size_t i = 0; i < m_entries.size(); ++i) {
      ++members[root(i)];
    }
    std::map<std::size_t, std::uint64_t> number;
    for (std::size_t i : order) {
      const std::size_t r = root(i);
      if (members[r] < 2) {
        continue;
      }
      auto [it, inserted] = number.try_emplace(r, number.size() + 1);
      m_entries[i].id.person = it->second;
    }
    m_report.people = number.size();
  }
  const AffectedSelection &m_sel;
  AffectedReport m_report;
  std::uint64_t m_item = 0;
  std::vector<Entry> m_entries;
  std::unordered_map<Key, std::size_t, KeyHash> m_index;
};

core::Status consider_data(Collector &c, const std::string &data) {
  MAILDSAR_TRY_ASSIGN(index::StoredDocument stored, index::parse_document_data(data));
  c.consider(stored);
  return {};
}

/** Reads the transactions of `blocks` again and considers each. */
core::Status expand(const core::Config &config, Collector &c, std::vector<std::string> &blocks) {
  if (blocks.empty()) {
    return {};
  }
  LogExpander logs(config);
  // Each transaction's identities as the indexer extracts them; no in-memory index is needed.
  logs.set_item_visitor([&c](const connectors::Item &item, const index::Normalizer &normalizer) {
    c.consider(item.locator, item.date, normalizer.extract(item), !item.truncated.empty(), false);
  });
  for (const std::string &data : blocks) {
    MAILDSAR_TRY(logs.add(data));
  }
  blocks.clear();
  return logs.finish();
}

core::Status scan_term(const core::Config &config, Xapian::Database &db, const std::string &term, Collector &c) {
  std::vector<std::string> blocks;
  for (Xapian::PostingIterator p = db.postlist_begin(term); p != db.postlist_end(term); ++p) {
    std::string data = db.get_document(*p).get_data();
    if (index::is_log_block_data(data)) {
      blocks.push_back(std::move(data));
      if (blocks.size() >= k_blocks_per_pass) {
        MAILDSAR_TRY(expand(config, c, blocks));
      }
      continue;
    }
    MAILDSAR_TRY(consider_data(c, data));
  }
  return expand(config, c, blocks);
}

} // namespace

std::string category_of_store(std::string_view store) {
  if (store == "maillog") {
    return "delivery-record";
  }
  if (store == "quarantine") {
    return "quarantine";
  }
  return "mail-content";
}

core::Result<AffectedReport> affected(const core::Config &config, const AffectedSelection &selection) {
  std::vector<std::string> sources = selection.sources;
  if (sources.empty()) {
    for (const core::SourceConfig &s : config.sources) {
      sources.push_back(s.name);
    }
  }
  MAILDSAR_TRY_ASSIGN(std::vector<AffectedReport> one, read_index<AffectedReport>(config, [&](Xapian::Database &db)
                                                                                       -> core::Result<std::vector<AffectedReport>> {
    Collector c(selection);
    for (const std::string &source : sources) {
      MAILDSAR_TRY(scan_term(config, db, index::schema::prefix_for("source") + source, c));
    }
    std::vector<AffectedReport> out;
    out.push_back(c.finish());
    return out;
  }));
  if (one.empty()) {
    return AffectedReport{}; // no index yet (require_indexed refuses that before)
  }
  return std::move(one.front());
}

} // namespace maildsar::query
