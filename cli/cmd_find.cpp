// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar find: every item held for a data subject.
#include "cli/commands.hpp"
#include "cli/subject_args.hpp"
#include "core/exit_codes.hpp"
#include "query/query.hpp"

#include <fmt/format.h>

#include <ctime>

namespace maildsar::cli {

void find_options(po::options_description &desc, po::positional_options_description &) {
  add_subject_options(desc);
}

namespace {

std::string iso_date(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/** The hit object of DESIGN §4 (docs/schemata.md "maildsar.hit"). */
nlohmann::json hit_json(const query::Hit &h) {
  const auto &l = h.locator;
  nlohmann::json j{{"id", h.id},
                   {"source", l.source},
                   {"store", connectors::to_string(l.store)},
                   {"path", l.path}};
  if (!h.message_id.empty()) {
    j["message_id"] = h.message_id;
  }
  if (l.store == connectors::StoreKind::mbox || l.length > 0) {
    j["offset"] = l.offset;
    j["length"] = l.length;
  }
  if (!l.folder.empty() || l.store == connectors::StoreKind::pst) {
    j["folder"] = l.folder;
  }
  if (l.store == connectors::StoreKind::pst) {
    j["node_id"] = l.node_id;
  }
  if (!l.queue_id.empty()) {
    j["queue_id"] = l.queue_id;
  }
  if (l.store == connectors::StoreKind::maillog) {
    j["lines"] = l.lines;
  }
  j["date"] = h.date ? nlohmann::json(iso_date(*h.date)) : nlohmann::json(nullptr);
  j["subject"] = h.subject;
  j["sha256"] = h.sha256;
  nlohmann::json matched = nlohmann::json::array();
  for (const auto &m : h.matched) {
    matched.push_back({{"identifier", m.identifier}, {"kind", m.kind}, {"roles", m.roles}});
  }
  j["matched"] = matched;
  return j;
}

std::string location(const query::Hit &h) {
  const auto &l = h.locator;
  switch (l.store) {
  case connectors::StoreKind::mbox:
    return fmt::format("{} @{}+{}", l.path, l.offset, l.length);
  case connectors::StoreKind::pst:
    return fmt::format("{} [{}] #{}", l.path, l.folder, l.node_id);
  case connectors::StoreKind::maillog:
    return fmt::format("{} {} lines {}", l.path, l.queue_id,
                       l.lines.empty() ? std::string("?")
                                       : fmt::format("{}-{}", l.lines.front(), l.lines.back()));
  default:
    return l.path;
  }
}

std::string matched_text(const query::Hit &h) {
  std::string s;
  for (const auto &m : h.matched) {
    if (!s.empty()) {
      s += "; ";
    }
    s += m.identifier + " (";
    for (std::size_t i = 0; i < m.roles.size(); ++i) {
      s += (i > 0 ? "," : "") + m.roles[i];
    }
    s += ")";
  }
  return s;
}

} // namespace

core::Result<int> run_find(Context &ctx) {
  MAILDSAR_TRY_ASSIGN(query::SubjectProfile subject, subject_from_args(ctx.vm));
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  MAILDSAR_TRY_ASSIGN(std::vector<query::Hit> hits, query::find(config, subject));
  Output &out = *ctx.out;
  if (out.json()) {
    for (const auto &h : hits) {
      out.json_line(hit_json(h));
    }
    return core::k_exit_ok;
  }
  for (const auto &h : hits) {
    out.line(fmt::format("{}  {:<10} {:<10} {}", h.date ? iso_date(*h.date) : std::string(20, '-'),
                         h.locator.source, connectors::to_string(h.locator.store), location(h)));
    if (!h.subject.empty()) {
      out.line(fmt::format("    subject: {}", h.subject));
    }
    out.line(fmt::format("    matched: {}", matched_text(h)));
  }
  out.line(fmt::format("{} item(s) held for {}", hits.size(),
                       subject.request.empty() ? std::string("the subject") : subject.request));
  return core::k_exit_ok;
}

} // namespace maildsar::cli
