// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar find: every item held for a data subject.
#include "cli/commands.hpp"
#include "cli/subject_args.hpp"
#include "core/audit.hpp"
#include "core/exit_codes.hpp"
#include "query/query.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace maildsar::cli {

void find_options(po::options_description &desc, po::positional_options_description &) {
  add_subject_options(desc);
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

} // namespace

core::Result<int> run_find(Context &ctx) {
  MAILDSAR_TRY_ASSIGN(query::SubjectProfile given, subject_from_args(ctx.vm));
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  MAILDSAR_TRY_ASSIGN(StepSubject step, resolve_request(config, std::move(given), ctx.operator_name));
  const query::SubjectProfile &subject = step.subject;
  MAILDSAR_TRY(require_indexed(config));
  MAILDSAR_TRY_ASSIGN(std::vector<query::Hit> hits, query::find(config, subject));
  if (step.registered) {
    // A search for a registered request is a step of its casework: on its timeline.
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    MAILDSAR_TRY(audit.append("find", ctx.operator_name, subject.request, nlohmann::json{{"items", hits.size()}}));
  }
  Output &out = *ctx.out;
  // Items indexed only in part anywhere in the index: what was not read may name the subject.
  // Never silent (docs/reliability.md "Bounded memory"); the answer itself stays exit 0.
  MAILDSAR_TRY(warn_partially_indexed(config, out));
  if (out.json()) {
    for (const auto &h : hits) {
      out.json_line(hit_json(h));
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
  out.line(fmt::format("{} item(s) held for {}", hits.size(),
                       subject.request.empty() ? std::string("the subject") : subject.request));
  return core::k_exit_ok;
}

} // namespace maildsar::cli
