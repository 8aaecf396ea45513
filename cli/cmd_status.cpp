// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar status: per source, when it was last indexed and whether that is too long ago.
#include "cli/commands.hpp"
#include "core/exit_codes.hpp"
#include "indexer/catalog.hpp"
#include "indexer/indexer.hpp"

#include <fmt/format.h>

#include <ctime>
#include <optional>

namespace maildsar::cli {

void status_options(po::options_description &, po::positional_options_description &) {}

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
  Output &out = *ctx.out;
  if (out.json()) {
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
    out.json_line({{"sources", sources},
                   {"stale", any_stale},
                   {"degraded", any_degraded},
                   {"max_index_age_seconds", max_age}});
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
    out.line(fmt::format("maximum index age {}: {}", age_text(max_age),
                         any_degraded ? "some sources are degraded"
                         : any_stale  ? "some sources are stale or never indexed"
                                      : "all sources fresh"));
  }
  // Monitoring alerts on a non-zero exit: stale, never indexed or degraded.
  return any_stale || any_degraded ? core::k_exit_problem : core::k_exit_ok;
}

} // namespace maildsar::cli
