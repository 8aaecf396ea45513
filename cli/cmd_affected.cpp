// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar affected: whose data is in a set of items (breach scoping, Art. 33/34; issue 16 item 5).
#include "cli/commands.hpp"
#include "core/exit_codes.hpp"
#include "core/time.hpp"
#include "query/affected.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace maildsar::cli {

using nlohmann::json;

void affected_options(po::options_description &desc, po::positional_options_description &) {
  desc.add_options()                                                                         //
      ("source", po::value<std::vector<std::string>>()->composing(), "items of this source (repeatable)")
      ("folder", po::value<std::string>(), "items whose folder or path matches this glob (fnmatch)")
      ("since", po::value<std::string>(), "items dated on or after YYYY-MM-DD (UTC)")
      ("until", po::value<std::string>(), "items dated on or before YYYY-MM-DD (UTC)")
      ("csv", "CSV on stdout (kind,identifier,items,roles,categories,first,last)");
}

namespace {

core::Result<std::int64_t> day_start(const po::variables_map &vm, const char *name) {
  const std::string text = vm[name].as<std::string>();
  if (!core::is_calendar_date(text)) {
    return core::fail(core::ErrorCode::usage, fmt::format("affected: --{} '{}' is not a calendar date YYYY-MM-DD",
                                                          name, text));
  }
  const auto num = [&](std::size_t at, std::size_t len) { return std::stoi(text.substr(at, len)); };
  return core::days_from_civil(num(0, 4), static_cast<unsigned>(num(5, 2)), static_cast<unsigned>(num(8, 2))) * 86400;
}

/** One CSV cell: quoted when needed; a leading = + - @ is defused for spreadsheets (an E.164
    number, + and digits only, is no formula and stays as it is). */
std::string csv_cell(std::string_view v) {
  std::string s(v);
  const bool e164 = s.size() > 1 && s.front() == '+' &&
                    std::all_of(s.begin() + 1, s.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!s.empty() && !e164 && (s.front() == '=' || s.front() == '+' || s.front() == '-' || s.front() == '@')) {
    s.insert(s.begin(), '\'');
  }
  if (s.find_first_of(",\"\r\n") == std::string::npos) {
    return s;
  }
  std::string q = "\"";
  for (char c : s) {
    q += c;
    if (c == '"') {
      q += '"';
    }
  }
  return q + "\"";
}

std::string date_or_empty(const std::optional<std::int64_t> &t) { return t ? iso_date(*t) : std::string(); }

} // namespace

core::Result<int> run_affected(Context &ctx) {
  query::AffectedSelection sel;
  if (ctx.vm.count("source") != 0) {
    sel.sources = ctx.vm["source"].as<std::vector<std::string>>();
  }
  if (ctx.vm.count("folder") != 0) {
    sel.folder_glob = ctx.vm["folder"].as<std::string>();
    if (sel.folder_glob.empty()) {
      return core::fail(core::ErrorCode::usage, "affected: --folder needs a glob");
    }
  }
  if (sel.sources.empty() && sel.folder_glob.empty()) {
    return core::fail(core::ErrorCode::usage, "affected: which items? give --source NAME and/or --folder GLOB",
                      "maildsar affected --source mailboxes --since 2026-11-01");
  }
  if (ctx.vm.count("since") != 0) {
    MAILDSAR_TRY_ASSIGN(sel.since, day_start(ctx.vm, "since"));
  }
  if (ctx.vm.count("until") != 0) {
    MAILDSAR_TRY_ASSIGN(std::int64_t until, day_start(ctx.vm, "until"));
    sel.until = until + 86400; // the whole day
  }
  if (sel.since && sel.until && *sel.since >= *sel.until) {
    return core::fail(core::ErrorCode::usage, "affected: --since is after --until");
  }
  const bool csv = ctx.vm.count("csv") != 0;
  if (csv && ctx.out->json()) {
    return core::fail(core::ErrorCode::usage, "affected: --csv and --json exclude each other");
  }
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  for (const std::string &name : sel.sources) {
    if (std::ranges::none_of(config.sources, [&](const core::SourceConfig &s) { return s.name == name; })) {
      return core::fail(core::ErrorCode::usage, fmt::format("affected: no source '{}' in {}", name, config.file));
    }
  }
  MAILDSAR_TRY(require_indexed(config));
  MAILDSAR_TRY_ASSIGN(query::AffectedReport report, query::affected(config, sel));
  Output &out = *ctx.out;
  if (csv) {
    out.line("kind,identifier,items,roles,categories,first,last,person");
    for (const query::AffectedIdentifier &a : report.identifiers) {
      out.line(fmt::format("{},{},{},{},{},{},{},{}", a.kind, csv_cell(a.identifier), a.items,
                           csv_cell(fmt::format("{}", fmt::join(a.roles, " "))),
                           csv_cell(fmt::format("{}", fmt::join(a.categories, " "))), date_or_empty(a.first),
                           date_or_empty(a.last), a.person == 0 ? std::string() : std::to_string(a.person)));
    }
  } else if (out.json()) {
    for (const query::AffectedIdentifier &a : report.identifiers) {
      out.json_line(json{{"kind", a.kind},
                         {"identifier", a.identifier},
                         {"items", a.items},
                         {"roles", a.roles},
                         {"categories", a.categories},
                         {"first", a.first ? json(iso_date(*a.first)) : json(nullptr)},
                         {"last", a.last ? json(iso_date(*a.last)) : json(nullptr)},
                         {"person", a.person == 0 ? json(nullptr) : json(a.person)}});
    }
    std::map<std::string, std::uint64_t> per_kind;
    for (const query::AffectedIdentifier &a : report.identifiers) {
      ++per_kind[a.kind];
    }
    out.json_line(json{{"summary",
                        {{"items", report.items},
                         {"identifiers", report.identifiers.size()},
                         {"people", report.people},
                         {"identifiers_per_kind", per_kind},
                         {"items_per_category", report.items_per_category},
                         {"undated_excluded", report.undated_excluded},
                         {"evidence_capped", report.evidence_capped},
                         {"truncated", report.truncated}}}});
  } else {
    for (const query::AffectedIdentifier &a : report.identifiers) {
      out.line(fmt::format("{:<6} {:<40} {:>6}  {}  {} .. {}  {}{}", a.kind, a.identifier, a.items,
                           fmt::join(a.categories, ","), a.first ? iso_date(*a.first).substr(0, 10) : "-",
                           a.last ? iso_date(*a.last).substr(0, 10) : "-", fmt::join(a.roles, ","),
                           a.person == 0 ? std::string() : fmt::format("  [person {}]", a.person)));
    }
    out.line(fmt::format("{} identifier(s) in {} item(s); {} person(s) with several identifiers linked by a display "
                         "name",
                         report.identifiers.size(), report.items, report.people));
  }
  if (report.undated_excluded > 0) {
    out.diag("warning", fmt::format("{} item(s) without a date were left out by --since/--until",
                                    report.undated_excluded));
  }
  if (report.truncated > 0 || report.evidence_capped > 0) {
    out.diag("warning",
             fmt::format("{} item(s) were indexed only in part and {} had more identities than the index keeps as "
                         "evidence (limits.*): people named only there are not listed",
                         report.truncated, report.evidence_capped));
  }
  return core::k_exit_ok;
}

} // namespace maildsar::cli
