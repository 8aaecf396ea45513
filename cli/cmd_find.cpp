// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar find: every item held for a data subject.
#include "cli/commands.hpp"
#include "cli/hosts.hpp"
#include "cli/subject_args.hpp"
#include "core/audit.hpp"
#include "core/exit_codes.hpp"
#include "query/query.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace maildsar::cli {

void find_options(po::options_description &desc, po::positional_options_description &) {
  add_subject_options(desc);
  add_host_options(desc);
}

namespace {

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

/** A remote host's hit (JSON from its agent) for humans, as a local hit is shown. */
void print_remote_hit(Output &out, const nlohmann::json &h) {
  auto text = [&](const char *key) {
    auto it = h.find(key);
    return it != h.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string where = remote_hit_location(h);
  const std::string date = text("date");
  out.line(fmt::format("{}  {}:{:<10} {:<10} {}", date.empty() ? std::string(20, '-') : date, text("host"),
                       text("source"), text("store"), where));
  if (const std::string subject = text("subject"); !subject.empty()) {
    out.line(fmt::format("    subject: {}", subject));
  }
  std::string matched;
  if (auto m = h.find("matched"); m != h.end() && m->is_array()) {
    for (const auto &one : *m) {
      if (!one.is_object()) {
        continue;
      }
      std::string roles;
      if (auto r = one.find("roles"); r != one.end() && r->is_array()) {
        for (const auto &role : *r) {
          roles += (roles.empty() ? "" : ",") + (role.is_string() ? role.get<std::string>() : std::string("?"));
        }
      }
      matched += fmt::format("{}{} ({})", matched.empty() ? "" : "; ",
                             one.value("identifier", std::string("?")), roles);
    }
  }
  out.line(fmt::format("    matched: {}", matched));
}

} // namespace

core::Result<int> run_find(Context &ctx) {
  MAILDSAR_TRY_ASSIGN(query::SubjectProfile given, subject_from_args(ctx.vm));
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  MAILDSAR_TRY_ASSIGN(StepSubject step, resolve_request(config, std::move(given), ctx.operator_name));
  const query::SubjectProfile &subject = step.subject;
  MAILDSAR_TRY_ASSIGN(std::vector<std::string> allowed_missing, allowed_missing_hosts(ctx.vm, config));
  MAILDSAR_TRY(require_indexed(config));
  MAILDSAR_TRY_ASSIGN(std::vector<query::Hit> hits, query::find(config, subject));
  Output &out = *ctx.out;
  // The other hosts of the estate (issue 15): all searched, or the answer is not given, unless
  // the DPO named the missing one with --allow-missing-host (then said so in the output).
  const std::vector<HostOutcome> hosts = query_hosts(config, &subject, allowed_missing, ctx.operator_name);
  std::size_t remote_items = 0;
  nlohmann::json not_searched = nlohmann::json::array();
  for (const HostOutcome &h : hosts) {
    remote_items += h.hits.size();
    if (!h.searched) {
      not_searched.push_back(h.name);
    }
  }
  if (refuse_missing_hosts(out, hosts, "SEARCHED", "find gives no answer while a host of the estate could not be searched")) {
    return core::k_exit_problem;
  }
  if (step.registered || !not_searched.empty()) {
    // A search for a registered request is a step of its casework: on its timeline. So is a
    // search that knowingly left a host out.
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    nlohmann::json details{{"items", hits.size() + remote_items}};
    if (!config.hosts.empty()) {
      details["hosts_not_searched"] = not_searched;
    }
    MAILDSAR_TRY(audit.append("find", ctx.operator_name, subject.request, details));
  }
  // Items indexed only in part anywhere in the index: what was not read may name the subject.
  // Never silent (docs/reliability.md "Bounded memory"); the answer itself stays exit 0.
  MAILDSAR_TRY(warn_partially_indexed(config, out));
  for (const HostOutcome &h : hosts) {
    if (h.partially_indexed > 0) {
      out.diag("warning", fmt::format("host {}: its index holds {} item(s) indexed only in part; the subject may be "
                                      "named in what was not read (run `maildsar status` and `maildsar index --full` "
                                      "there)",
                                      h.name, h.partially_indexed));
    }
  }
  if (out.json()) {
    out.hit_lines(hits);
    for (const HostOutcome &h : hosts) {
      for (const nlohmann::json &hit : h.hits) {
        out.json_line(hit);
      }
    }
    if (!config.hosts.empty()) {
      out.json_line(hosts_summary_json(hosts, not_searched.empty()));
    }
    return core::k_exit_ok;
  }
  for (const auto &h : hits) {
    out.line(fmt::format("{}  {:<10} {:<10} {}", h.date ? iso_date(*h.date) : std::string(20, '-'),
                         h.locator.source, connectors::to_string(h.locator.store), hit_location(h)));
    if (!h.subject.empty()) {
      out.line(fmt::format("    subject: {}", h.subject));
    }
    out.line(fmt::format("    matched: {}", matched_text(h)));
    if (!h.suppressed.empty()) {
      out.line(fmt::format("    SUPPRESSED: shows the subject of erasure {} again (restored?): `maildsar plan "
                           "--request {} --resurrected`",
                           fmt::join(h.suppressed, ", "), h.suppressed.front()));
    }
    if (!h.truncated.empty()) {
      out.line(fmt::format("    INDEXED IN PART: {}{}", h.truncated.front(),
                           h.truncated.size() > 1 ? fmt::format(" (+{} more)", h.truncated.size() - 1) : ""));
    }
  }
  for (const HostOutcome &h : hosts) {
    for (const nlohmann::json &hit : h.hits) {
      print_remote_hit(out, hit);
    }
  }
  out.line(fmt::format("{} item(s) held for {}", hits.size() + remote_items,
                       subject.request.empty() ? std::string("the subject") : subject.request));
  if (!config.hosts.empty()) {
    std::string searched;
    for (const HostOutcome &h : hosts) {
      searched += fmt::format("{}{} ({})", searched.empty() ? "" : ", ", h.name,
                              h.searched ? fmt::format("{} item(s)", h.hits.size()) : std::string("NOT SEARCHED"));
    }
    out.line(fmt::format("hosts: {}{}", searched,
                         config.sources.empty() ? "" : fmt::format("; local sources: {} item(s)", hits.size())));
  }
  return core::k_exit_ok;
}

} // namespace maildsar::cli
