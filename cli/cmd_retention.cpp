// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar retention [--apply]: enforce the retention periods of the config.
#include "casework/register.hpp"
#include "cli/commands.hpp"
#include "core/exit_codes.hpp"
#include "erasure/retention.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdlib>
#include <ctime>

namespace maildsar::cli {

using nlohmann::json;

void retention_options(po::options_description &desc, po::positional_options_description &) {
  desc.add_options()                                                                      //
      ("apply", "delete or anonymise what is past its period (default: a dry run that lists it)") //
      ("now", po::value<std::string>(), "judge ages as of YYYY-MM-DD[THH:MM:SSZ] (UTC; default: now)");
}

namespace {

json item_json(const erasure::RetentionItem &item) {
  const connectors::Locator &loc = item.locator;
  json j{{"source", loc.source}, {"store", connectors::to_string(loc.store)}, {"path", loc.path}};
  switch (loc.store) {
  case connectors::StoreKind::maillog:
    j["queue_id"] = loc.queue_id;
    j["lines"] = loc.lines;
    break;
  case connectors::StoreKind::mbox:
    j["offset"] = loc.offset;
    j["length"] = loc.length;
    break;
  case connectors::StoreKind::quarantine:
  case connectors::StoreKind::emlfolder:
    if (loc.length > 0) {
      j["offset"] = loc.offset;
      j["length"] = loc.length;
    }
    break;
  case connectors::StoreKind::maildir:
    j["folder"] = loc.folder;
    break;
  case connectors::StoreKind::postfix_queue:
  case connectors::StoreKind::exim_spool:
    j["folder"] = loc.folder;
    j["queue_id"] = loc.queue_id;
    break;
  case connectors::StoreKind::pst:
    j["folder"] = loc.folder;
    j["node_id"] = loc.node_id;
    break;
  case connectors::StoreKind::archive:
    j["member"] = loc.member;
    if (loc.node_id != 0) {
      j["node_id"] = loc.node_id;
    }
    if (loc.length > 0) {
      j["offset"] = loc.offset;
      j["length"] = loc.length;
    }
    break;
  }
  j["date"] = iso_date(item.date);
  j["sha256"] = item.sha256;
  j["action"] = erasure::to_string(item.decision.action);
  j["reason"] = item.decision.reason;
  return j;
}

std::string where(const erasure::RetentionItem &item) {
  const connectors::Locator &loc = item.locator;
  if (loc.store == connectors::StoreKind::maillog) {
    return fmt::format("{} {} lines {}", loc.path, loc.queue_id, fmt::join(loc.lines, ","));
  }
  if (loc.length > 0) {
    return fmt::format("{} @{}+{}", loc.path, loc.offset, loc.length);
  }
  return loc.path;
}

} // namespace

core::Result<int> run_retention(Context &ctx) {
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  if (ctx.vm.count("now") != 0) {
    MAILDSAR_TRY_ASSIGN(now, erasure::parse_retention_now(ctx.vm["now"].as<std::string>()));
  }
  const bool apply = ctx.vm.count("apply") != 0;
  Output &out = *ctx.out;
  // Closed requests past requests.retention: their identifiers become keyed hashes (issue 16).
  std::vector<std::string> purge_due;
  {
    MAILDSAR_TRY_ASSIGN(std::optional<casework::Register> reg, casework::Register::open_existing(config));
    if (reg) {
      MAILDSAR_TRY_ASSIGN(std::vector<casework::Request> due, reg->due_for_purge(now, config.request_retention_seconds));
      for (const casework::Request &r : due) {
        purge_due.push_back(r.id);
      }
    }
  }
  if (config.retention.empty() && purge_due.empty()) {
    out.diag("warning", fmt::format("{}: no \"retention\" rules; nothing to do", config.file));
  }
  Progress progress(ctx.progress, "retention", *ctx.out);
  auto planned = erasure::plan_retention(config, now, progress.callback("files"));
  progress.end();
  MAILDSAR_TRY_ASSIGN(erasure::RetentionPlan plan, std::move(planned));
  for (const std::string &e : plan.scan_errors) {
    out.diag("error", e);
  }

  std::uint64_t purged = 0;
  if (apply && !purge_due.empty()) {
    MAILDSAR_TRY_ASSIGN(casework::Register reg, casework::Register::open(config));
    for (const std::string &id : purge_due) {
      MAILDSAR_TRY(reg.purge(id, ctx.operator_name));
      ++purged;
    }
  }
  const json requests_json{{"retention_seconds", config.request_retention_seconds},
                           {"due_for_purge", purge_due},
                           {"purged", purged}};

  std::optional<erasure::RetentionReport> report;
  if (apply) {
    erasure::RetentionOptions options;
    options.operator_name = ctx.operator_name;
    if (const char *fault = std::getenv("MAILDSAR_FAULT_AT"); fault != nullptr && *fault != '\0') {
      std::string wanted = fault;
      options.fault_at = [wanted](std::string_view step) { return step == wanted; };
    }
    options.on_progress = progress.callback("files");
    auto applied = erasure::apply_retention(config, plan, options);
    progress.end();
    MAILDSAR_TRY_ASSIGN(report, std::move(applied));
  }

  // Counts per source and action (and, applied, per result).
  json sources = json::object();
  for (const auto &[name, c] : plan.sources) {
    json s{{"rule", c.rule},
           {"scanned", c.scanned},
           {"kept", c.kept},
           {"undated", c.undated},
           {"already_anonymized", c.already_anonymized},
           {"actions", c.actions}};
    if (report) {
      auto it = report->counts.find(name);
      s["results"] = it == report->counts.end() ? json::object() : json(it->second);
    }
    sources[name] = s;
  }
  const std::uint64_t failed = report ? report->count("failed") : 0;
  const std::uint64_t stale = report ? report->count("stale") : 0;

  if (out.json()) {
    for (std::size_t i = 0; i < plan.items.size(); ++i) {
      json j = item_json(plan.items[i]);
      if (report) {
        j["result"] = report->outcomes[i].result;
        if (!report->outcomes[i].detail.empty()) {
          j["detail"] = report->outcomes[i].detail;
        }
      }
      out.json_line(j);
    }
    json summary{{"now", iso_date(plan.now)},
                 {"dry_run", !apply},
                 {"items", plan.items.size()},
                 {"sources", sources},
                 {"scan_errors", plan.scan_errors.size()},
                 {"requests", requests_json}};
    if (report) {
      summary["run"] = report->run_id;
      summary["failed"] = failed;
      summary["stale"] = stale;
      summary["index_updated"] = report->index_updated;
    }
    out.json_line(json{{"summary", summary}});
  } else {
    for (std::size_t i = 0; i < plan.items.size(); ++i) {
      const erasure::RetentionItem &item = plan.items[i];
      const std::string result = report ? report->outcomes[i].result : std::string();
      const bool problem = result == "failed" || result == "stale";
      if (ctx.verbosity > 0 || problem) {
        std::string line = fmt::format("{:<9} {:<10} {}  {}  ({})", erasure::to_string(item.decision.action),
                                       item.locator.source, iso_date(item.date), where(item),
                                       item.decision.reason);
        if (!result.empty()) {
          line += fmt::format(" -> {}{}", result,
                              report->outcomes[i].detail.empty() ? "" : ": " + report->outcomes[i].detail);
        }
        out.line(line);
      }
    }
    out.line(fmt::format("{:<12} {:<16} {:>8} {:>8} {:>8} {:>8} {:>8}", "source", "rule", "scanned", "kept",
                         "delete", "anonym.", "retain"));
    for (const auto &[name, c] : plan.sources) {
      auto n = [&](const char *a) {
        auto it = c.actions.find(a);
        return it == c.actions.end() ? std::uint64_t{0} : it->second;
      };
      out.line(fmt::format("{:<12} {:<16} {:>8} {:>8} {:>8} {:>8} {:>8}", name, c.rule, c.scanned, c.kept,
                           n("delete"), n("anonymize"), n("retain")));
    }
    for (const std::string &id : purge_due) {
      out.line(fmt::format("request {}: closed longer than requests.retention; identifiers {}", id,
                           apply ? "purged to keyed hashes" : "due for purge (--apply)"));
    }
    if (report) {
      for (const auto &[name, by_action] : report->counts) {
        for (const auto &[action, by_result] : by_action) {
          std::string line;
          for (const auto &[result, k] : by_result) {
            line += fmt::format("{}{} {}", line.empty() ? "" : ", ", k, result);
          }
          out.line(fmt::format("{:<12} {:<10} {}", name, action, line));
        }
      }
      out.line(fmt::format("retention applied as of {}{}", iso_date(plan.now),
                           report->index_updated ? "; index updated" : ""));
    } else {
      out.line(fmt::format("dry run as of {}: nothing was changed; run with --apply to enforce (-v lists "
                           "every item)",
                           iso_date(plan.now)));
    }
  }
  if (failed > 0 || stale > 0) {
    out.diag("warning", fmt::format("{} item(s) failed and {} were stale (changed since the scan)", failed, stale));
    return core::k_exit_problem;
  }
  if (!plan.scan_errors.empty()) {
    out.diag("warning", fmt::format("{} problem(s) while scanning; retention may be incomplete",
                                    plan.scan_errors.size()));
    return core::k_exit_problem;
  }
  return core::k_exit_ok;
}

} // namespace maildsar::cli
