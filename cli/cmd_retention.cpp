// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar retention [--apply]: enforce the retention periods of the config.
#include "casework/register.hpp"
#include "cli/commands.hpp"
#include "cli/hosts.hpp"
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
  add_host_options(desc);
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

/** A source's counts (and, applied, its results) as --json and the agent give them. */
json source_counts_json(const erasure::RetentionSourceCounts &c) {
  return json{{"rule", c.rule},
              {"scanned", c.scanned},
              {"kept", c.kept},
              {"undated", c.undated},
              {"already_anonymized", c.already_anonymized},
              {"actions", c.actions}};
}

std::uint64_t count_of(const json &actions, const char *action) {
  const auto it = actions.find(action);
  return it != actions.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

} // namespace

core::Result<nlohmann::json> retention_dry_run_json(const core::Config &config, std::int64_t now) {
  MAILDSAR_TRY_ASSIGN(erasure::RetentionPlan plan, erasure::plan_retention(config, now));
  json sources = json::object();
  for (const auto &[name, c] : plan.sources) {
    sources[name] = source_counts_json(c);
  }
  return json{{"now", iso_date(plan.now)},
              {"items", plan.items.size()},
              {"sources", sources},
              {"scan_errors", plan.scan_errors}};
}

core::Result<int> run_retention(Context &ctx) {
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  if (ctx.vm.count("now") != 0) {
    MAILDSAR_TRY_ASSIGN(now, erasure::parse_retention_now(ctx.vm["now"].as<std::string>()));
  }
  const bool apply = ctx.vm.count("apply") != 0;
  Output &out = *ctx.out;
  MAILDSAR_TRY_ASSIGN(std::vector<std::string> allowed_missing, allowed_missing_hosts(ctx.vm, config));
  // The other hosts of the estate (issue 15): their dry runs, each on its own stores and rules.
  // --apply changes only this host's stores: each host applies its own retention (its timer).
  std::vector<HostOutcome> hosts;
  if (!config.hosts.empty()) {
    if (apply) {
      out.diag("warning", "retention --apply changes only this host's stores; the hosts of the config apply "
                          "their own (run `maildsar retention --apply` on each, or its timer)");
    } else {
      hosts = retention_hosts(config, now, allowed_missing, ctx.operator_name);
      if (refuse_missing_hosts(out, hosts, "SEARCHED",
                               "retention gives no dry run while a host of the estate could not be asked")) {
        return core::k_exit_problem;
      }
    }
  }
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
  if (config.retention.empty() && purge_due.empty() && config.hosts.empty()) {
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
    json s = source_counts_json(c);
    if (report) {
      auto it = report->counts.find(name);
      s["results"] = it == report->counts.end() ? json::object() : json(it->second);
    }
    sources[name] = s;
  }
  std::uint64_t host_scan_errors = 0;
  json host_rows = json::array();
  for (const HostOutcome &h : hosts) {
    json row{{"name", h.name}, {"searched", h.searched}};
    if (h.searched) {
      row.update({{"items", h.retention.value("items", std::uint64_t{0})},
                  {"sources", h.retention.value("sources", json::object())},
                  {"scan_errors", h.problems.size()}});
      host_scan_errors += h.problems.size();
      for (const std::string &e : h.problems) {
        out.diag("error", fmt::format("host {}: {}", h.name, e));
      }
    } else {
      row.update({{"error", h.error}, {"allowed_missing", h.allowed_missing}});
    }
    host_rows.push_back(std::move(row));
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
    if (!hosts.empty()) {
      summary["hosts"] = host_rows;
      summary["complete"] = std::ranges::all_of(hosts, [](const HostOutcome &h) { return h.searched; });
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
    for (const json &row : host_rows) {
      if (!row["searched"].get<bool>()) {
        out.line(fmt::format("host {}: NOT SEARCHED", row["name"].get<std::string>()));
        continue;
      }
      for (const auto &[name, c] : row["sources"].items()) {
        out.line(fmt::format("{:<12} {:<16} {:>8} {:>8} {:>8} {:>8} {:>8}", row["name"].get<std::string>() + ":" + name,
                             c.value("rule", std::string()), c.value("scanned", std::uint64_t{0}),
                             c.value("kept", std::uint64_t{0}), count_of(c["actions"], "delete"),
                             count_of(c["actions"], "anonymize"), count_of(c["actions"], "retain")));
      }
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
  if (!plan.scan_errors.empty() || host_scan_errors > 0) {
    out.diag("warning", fmt::format("{} problem(s) while scanning; retention may be incomplete",
                                    plan.scan_errors.size() + host_scan_errors));
    return core::k_exit_problem;
  }
  return core::k_exit_ok;
}

} // namespace maildsar::cli
