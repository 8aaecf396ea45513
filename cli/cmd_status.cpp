// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar status: per source, when it was last indexed and whether that is too long ago.
#include "cli/commands.hpp"
#include "cli/hosts.hpp"
#include "cli/request_output.hpp"
#include "core/exit_codes.hpp"
#include "indexer/catalog.hpp"
#include "erasure/policy.hpp"
#include "indexer/indexer.hpp"
#include "indexer/suppression.hpp"
#include "query/query.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>

namespace maildsar::cli {

void status_options(po::options_description &desc, po::positional_options_description &) {
  desc.add_options()                                                                              //
      ("due-within", po::value<std::string>()->default_value("7d"), "requests due within this period are reported as soon due")
      ("today", po::value<std::string>(), "judge request deadlines as of YYYY-MM-DD (default: today, UTC)");
}

namespace {

struct Row {
  std::string name;
  std::string type;
  std::optional<std::int64_t> last_success;
  std::uint64_t items = 0;
  std::uint64_t files = 0;
  std::uint64_t errors = 0;
  bool stale = true;
  std::string held_removal; // the last run kept vanished files' items (removal guard)
  bool config_changed = false; // the configured type/format/path is not what was indexed
};

std::string age_text(std::int64_t seconds) {
  if (seconds < 120) {
    return fmt::format("{}s", seconds);
  }
  if (seconds < 2 * 3600) {
    return fmt::format("{}m", seconds / 60);
  }
  if (seconds < 2 * 86400) {
    return fmt::format("{}h", seconds / 3600);
  }
  return fmt::format("{}d", seconds / 86400);
}

} // namespace

core::Result<int> run_status(Context &ctx) {
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  // Read-only and without the index lock: answers while `index` runs (last committed state).
  MAILDSAR_TRY_ASSIGN(std::vector<index::SourceStatus> recorded,
                      index::read_source_status(index::catalog_path(config)));
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  const std::int64_t max_age = config.max_index_age_seconds;
  std::vector<Row> rows;
  bool any_stale = false;
  bool any_degraded = false;
  for (const core::SourceConfig &src : config.sources) { // configured sources only, config order
    Row row{src.name, src.type, std::nullopt, 0, 0, 0, true, {}, false};
    for (const index::SourceStatus &s : recorded) {
      if (s.name == src.name) {
        row.last_success = s.last_success;
        row.items = s.items;
        row.files = s.files;
        row.errors = s.errors;
        row.held_removal = s.held_removal;
        row.config_changed = s.type != src.type ||
                             (!s.origin.empty() && s.origin != index::source_origin(src));
      }
    }
    row.stale = !row.last_success || now - *row.last_success > max_age || row.config_changed;
    any_stale = any_stale || row.stale;
    any_degraded = any_degraded || !row.held_removal.empty();
    rows.push_back(std::move(row));
  }
  // The register: requests whose deadline has passed (overdue) or comes within --due-within.
  MAILDSAR_TRY_ASSIGN(casework::Date today, today_option(ctx.vm));
  MAILDSAR_TRY_ASSIGN(std::int64_t soon_days, due_within_days(ctx.vm, 7));
  MAILDSAR_TRY_ASSIGN(std::optional<casework::Register> reg, casework::Register::open_existing(config));
  std::vector<casework::Request> overdue;
  std::vector<casework::Request> due_soon;
  std::uint64_t running = 0;
  if (reg) {
    MAILDSAR_TRY_ASSIGN(std::vector<casework::Request> requests, reg->list());
    for (casework::Request &r : requests) {
      if (!r.deadline_running()) {
        continue;
      }
      ++running;
      if (r.overdue(today)) {
        overdue.push_back(std::move(r));
      } else if (r.days_left(today) <= soon_days) {
        due_soon.push_back(std::move(r));
      }
    }
  }
  // Suppression on restore: items of erased subjects that came back, per request. Handled once
  // erased again (plan --resurrected) or held (a hold on their source wins).
  struct Resurfaced {
    std::string request;
    std::string erased;
    std::uint64_t items = 0;
    std::uint64_t held = 0;
    std::map<std::string, std::uint64_t> sources;
  };
  std::vector<Resurfaced> resurfaced;
  std::uint64_t unhandled = 0;
  MAILDSAR_TRY_ASSIGN(std::vector<index::Suppression> suppressions, index::read_suppressions(config));
  if (!suppressions.empty() && std::filesystem::exists(index::index_path(config))) {
    MAILDSAR_TRY_ASSIGN(std::vector<query::Hit> flagged, query::suppressed_items(config));
    const std::string day = erasure::today_utc();
    for (const index::Suppression &s : suppressions) {
      if (std::ranges::none_of(resurfaced, [&](const Resurfaced &r) { return r.request == s.request; })) {
        resurfaced.push_back(Resurfaced{s.request, s.erased, 0, 0, {}});
      }
    }
    for (const query::Hit &h : flagged) {
      const bool held = erasure::hold_for(config, h.locator.source, day).has_value();
      for (const std::string &request : h.suppressed) {
        auto it = std::ranges::find_if(resurfaced, [&](const Resurfaced &r) { return r.request == request; });
        if (it == resurfaced.end()) {
          it = resurfaced.insert(resurfaced.end(), Resurfaced{request, "", 0, 0, {}});
        }
        ++it->items;
        it->held += held ? 1U : 0U;
        ++it->sources[h.locator.source];
      }
      unhandled += held ? 0U : 1U;
    }
    std::erase_if(resurfaced, [](const Resurfaced &r) { return r.items == 0; });
  }
  // The other hosts of the estate (issue 15): each reachable, with a fresh index.
  const std::vector<HostOutcome> hosts = query_hosts(config, nullptr, {}, ctx.operator_name);
  const bool any_host_failed = std::ranges::any_of(hosts, [](const HostOutcome &h) { return !h.searched; });
  Output &out = *ctx.out;
  if (out.json()) {
    nlohmann::json resurfaced_json = nlohmann::json::array();
    for (const Resurfaced &r : resurfaced) {
      resurfaced_json.push_back({{"request", r.request},
                                 {"erased", r.erased},
                                 {"items", r.items},
                                 {"held", r.held},
                                 {"sources", r.sources}});
    }
    nlohmann::json overdue_json = nlohmann::json::array();
    for (const casework::Request &r : overdue) {
      overdue_json.push_back(request_json(r, today, false));
    }
    nlohmann::json soon_json = nlohmann::json::array();
    for (const casework::Request &r : due_soon) {
      soon_json.push_back(request_json(r, today, false));
    }
    nlohmann::json sources = nlohmann::json::array();
    for (const Row &r : rows) {
      sources.push_back({{"name", r.name},
                         {"type", r.type},
                         {"last_success", r.last_success ? nlohmann::json(iso_date(*r.last_success))
                                                         : nlohmann::json(nullptr)},
                         {"items", r.items},
                         {"files", r.files},
                         {"errors", r.errors},
                         {"stale", r.stale},
                         {"degraded", !r.held_removal.empty()},
                         {"held_removal", r.held_removal},
                         {"config_changed", r.config_changed}});
    }
    nlohmann::json hosts_json = nlohmann::json::array();
    for (const HostOutcome &h : hosts) {
      hosts_json.push_back({{"name", h.name},
                            {"reachable", h.reachable},
                            {"stale", h.stale},
                            {"ok", h.searched},
                            {"agent_host", h.agent_host},
                            {"index_age_seconds", h.index_age_seconds ? nlohmann::json(*h.index_age_seconds) : nlohmann::json(nullptr)},
                            {"max_index_age_seconds", h.max_index_age_seconds},
                            {"error", h.error}});
    }
    out.json_line({{"sources", sources},
                   {"hosts", hosts_json},
                   {"stale", any_stale},
                   {"degraded", any_degraded},
                   {"max_index_age_seconds", max_age},
                   {"suppressed", {{"erasures", suppressions.size()},
                                   {"unhandled", unhandled},
                                   {"requests", resurfaced_json}}},
                   {"requests", {{"today", casework::to_string(today)},
                                 {"running", running},
                                 {"due_within_days", soon_days},
                                 {"overdue", overdue_json},
                                 {"due_soon", soon_json}}}});
  } else {
    out.line(fmt::format("{:<16} {:<10} {:<20} {:>6} {:>9} {:>8} {:>7}  {}", "SOURCE", "TYPE",
                         "LAST SUCCESS", "AGE", "ITEMS", "FILES", "ERRORS", "STATE"));
    for (const Row &r : rows) {
      out.line(fmt::format("{:<16} {:<10} {:<20} {:>6} {:>9} {:>8} {:>7}  {}", r.name, r.type,
                           r.last_success ? iso_date(*r.last_success) : std::string("never"),
                           r.last_success ? age_text(std::max<std::int64_t>(0, now - *r.last_success))
                                          : std::string("-"),
                           r.items, r.files, r.errors,
                           !r.held_removal.empty() ? "DEGRADED"
                           : r.config_changed      ? "STALE (config changed)"
                           : r.stale               ? "STALE"
                                                   : "ok"));
    }
    for (const Row &r : rows) {
      if (!r.held_removal.empty()) {
        out.line(fmt::format("{}: {}; its items are kept until `maildsar index --accept-removal {}`",
                             r.name, r.held_removal, r.name));
      }
    }
    for (const HostOutcome &h : hosts) {
      out.line(h.searched ? fmt::format("host {:<12} ok, index age {}", h.name,
                                        h.index_age_seconds ? age_text(*h.index_age_seconds) : std::string("-"))
               : h.reachable ? fmt::format("host {:<12} STALE: {}", h.name, h.error)
                             : fmt::format("host {:<12} UNREACHABLE: {}", h.name, h.error));
    }
    out.line(fmt::format("maximum index age {}: {}", age_text(max_age),
                         any_degraded ? "some sources are degraded"
                         : any_stale  ? "some sources are stale or never indexed"
                                      : "all sources fresh"));
    for (const casework::Request &r : overdue) {
      out.line(fmt::format("request {} ({}) is OVERDUE: due {}, {} day(s) ago", r.id, casework::to_string(r.type),
                           casework::to_string(r.due()), -r.days_left(today)));
    }
    for (const casework::Request &r : due_soon) {
      out.line(fmt::format("request {} ({}) is due {}: {} day(s) left", r.id, casework::to_string(r.type),
                           casework::to_string(r.due()), r.days_left(today)));
    }
    out.line(fmt::format("requests: {} running, {} overdue, {} due within {} day(s)", running, overdue.size(),
                         due_soon.size(), soon_days));
    for (const Resurfaced &r : resurfaced) {
      std::string where;
      for (const auto &[source, n] : r.sources) {
        where += fmt::format("{}{} in {}", where.empty() ? "" : ", ", n, source);
      }
      out.line(fmt::format("SUPPRESSED: {} item(s) of erased request {} are back ({}){}: run `maildsar plan "
                           "--request {} --resurrected -o FILE`",
                           r.items, r.request, where, r.held > 0 ? fmt::format(", {} under a hold", r.held) : "",
                           r.request));
    }
  }
  // Monitoring alerts on a non-zero exit: stale, never indexed or degraded; an overdue request;
  // an erased subject's items back in a store (suppression on restore) that no hold keeps.
  return any_stale || any_degraded || !overdue.empty() || unhandled > 0 || any_host_failed ? core::k_exit_problem
                                                                                          : core::k_exit_ok;
}

} // namespace maildsar::cli
