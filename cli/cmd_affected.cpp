// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar affected: whose data is in a set of items (breach scoping, Art. 33/34; issue 16 item 5).
#include "cli/commands.hpp"
#include "core/exit_codes.hpp"
#include "core/time.hpp"
#include "query/affected.hpp"
#include "remote/host_client.hpp"

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
      ("csv", "CSV on stdout (kind,identifier,items,roles,categories,first,last)")
      ("host", po::value<std::string>(),
       "the items of a host of the estate (config \"hosts\"): its agent scans them there; --source names "
       "its sources");
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

json identifier_json(const query::AffectedIdentifier &a) {
  return json{{"kind", a.kind},
              {"identifier", a.identifier},
              {"items", a.items},
              {"roles", a.roles},
              {"categories", a.categories},
              {"first", a.first ? json(iso_date(*a.first)) : json(nullptr)},
              {"last", a.last ? json(iso_date(*a.last)) : json(nullptr)},
              {"person", a.person == 0 ? json(nullptr) : json(a.person)}};
}

json summary_json(const query::AffectedReport &report) {
  std::map<std::string, std::uint64_t> per_kind;
  for (const query::AffectedIdentifier &a : report.identifiers) {
    ++per_kind[a.kind];
  }
  return json{{"items", report.items},
              {"identifiers", report.identifiers.size()},
              {"people", report.people},
              {"identifiers_per_kind", per_kind},
              {"items_per_category", report.items_per_category},
              {"undated_excluded", report.undated_excluded},
              {"evidence_capped", report.evidence_capped},
              {"truncated", report.truncated}};
}

/** An ISO date of identifier_json back to seconds ("2023-11-14T22:13:20Z"). */
std::optional<std::int64_t> seconds_of(const json &v) {
  if (!v.is_string()) {
    return std::nullopt;
  }
  const std::string t = v.get<std::string>();
  if (t.size() < 19 || !core::is_calendar_date(t.substr(0, 10))) {
    return std::nullopt;
  }
  const auto num = [&](std::size_t at, std::size_t len) { return std::stoi(t.substr(at, len)); };
  return core::days_from_civil(num(0, 4), static_cast<unsigned>(num(5, 2)), static_cast<unsigned>(num(8, 2))) * 86400 +
         num(11, 2) * 3600 + num(14, 2) * 60 + num(17, 2);
}

void print_report(Output &out, const query::AffectedReport &report, bool csv, const std::string &host) {
  if (csv) {
    out.line(std::string("kind,identifier,items,roles,categories,first,last,person") + (host.empty() ? "" : ",host"));
    for (const query::AffectedIdentifier &a : report.identifiers) {
      out.line(fmt::format("{},{},{},{},{},{},{},{}{}", a.kind, csv_cell(a.identifier), a.items,
                           csv_cell(fmt::format("{}", fmt::join(a.roles, " "))),
                           csv_cell(fmt::format("{}", fmt::join(a.categories, " "))), date_or_empty(a.first),
                           date_or_empty(a.last), a.person == 0 ? std::string() : std::to_string(a.person),
                           host.empty() ? std::string() : "," + csv_cell(host)));
    }
  } else if (out.json()) {
    for (const query::AffectedIdentifier &a : report.identifiers) {
      json row = identifier_json(a);
      if (!host.empty()) {
        row["host"] = host;
      }
      out.json_line(row);
    }
    json summary = summary_json(report);
    if (!host.empty()) {
      summary["host"] = host;
    }
    out.json_line(json{{"summary", summary}});
  } else {
    for (const query::AffectedIdentifier &a : report.identifiers) {
      out.line(fmt::format("{:<6} {:<40} {:>6}  {}  {} .. {}  {}{}", a.kind, a.identifier, a.items,
                           fmt::join(a.categories, ","), a.first ? iso_date(*a.first).substr(0, 10) : "-",
                           a.last ? iso_date(*a.last).substr(0, 10) : "-", fmt::join(a.roles, ","),
                           a.person == 0 ? std::string() : fmt::format("  [person {}]", a.person)));
    }
    out.line(fmt::format("{} identifier(s) in {} item(s){}; {} person(s) with several identifiers linked by a display "
                         "name",
                         report.identifiers.size(), report.items, host.empty() ? "" : " on host " + host,
                         report.people));
  }
}

/** `affected --host NAME`: the host's agent scans its own items (op "affected"). */
core::Result<query::AffectedReport> affected_on_host(const core::Config &config, const std::string &name,
                                                    const query::AffectedSelection &sel,
                                                    const std::string &operator_name) {
  const auto host = std::ranges::find_if(config.hosts, [&](const core::HostConfig &h) { return h.name == name; });
  if (host == config.hosts.end()) {
    return core::fail(core::ErrorCode::usage, fmt::format("affected: no host '{}' in {}", name, config.file));
  }
  // A stale index lists the people of what the host held then, not now: refused, as find does.
  const json status_request{{"op", "status"}};
  MAILDSAR_TRY_ASSIGN(remote::HostClient client, remote::HostClient::connect(*host, &status_request));
  MAILDSAR_TRY_ASSIGN(json status, client.answer());
  if (!status.contains("stale") || !status["stale"].is_boolean() || status["stale"].get<bool>()) {
    return core::fail(core::ErrorCode::temp_fail,
                      fmt::format("host {}: its index is stale (older than its max_index_age, or never indexed)", name),
                      fmt::format("run `maildsar index` on {}", name));
  }
  json request{{"op", "affected"}, {"sources", sel.sources}, {"folder", sel.folder_glob}, {"operator", operator_name}};
  if (sel.since) {
    request["since"] = *sel.since;
  }
  if (sel.until) {
    request["until"] = *sel.until;
  }
  MAILDSAR_TRY_ASSIGN(json answer, client.request(request));
  client.close();
  return affected_report_from_json(answer, name);
}

} // namespace

json affected_report_json(const query::AffectedReport &report) {
  json rows = json::array();
  for (const query::AffectedIdentifier &a : report.identifiers) {
    rows.push_back(identifier_json(a));
  }
  return json{{"identifiers", std::move(rows)}, {"summary", summary_json(report)}};
}

core::Result<query::AffectedReport> affected_report_from_json(const json &answer, const std::string &host) {
  const auto bad = [&](std::string_view what) {
    return core::fail(core::ErrorCode::data, fmt::format("host {}: the answer to affected {}", host, what));
  };
  const auto rows = answer.find("identifiers");
  const auto summary = answer.find("summary");
  if (rows == answer.end() || !rows->is_array() || summary == answer.end() || !summary->is_object()) {
    return bad("has no identifiers and summary");
  }
  query::AffectedReport report;
  for (const json &r : *rows) {
    if (!r.is_object() || !r.contains("kind") || !r["kind"].is_string() || !r.contains("identifier") ||
        !r["identifier"].is_string() || !r.contains("items") || !r["items"].is_number_unsigned()) {
      return bad("holds a row that is not an identifier");
    }
    query::AffectedIdentifier a;
    a.kind = r["kind"].get<std::string>().substr(0, 16);
    a.identifier = r["identifier"].get<std::string>().substr(0, 1024);
    a.items = r["items"].get<std::uint64_t>();
    for (const char *key : {"roles", "categories"}) {
      if (auto list = r.find(key); list != r.end() && list->is_array()) {
        for (const json &v : *list) {
          if (v.is_string()) {
            (std::string_view(key) == "roles" ? a.roles : a.categories).insert(v.get<std::string>().substr(0, 64));
          }
        }
      }
    }
    a.first = seconds_of(r.value("first", json()));
    a.last = seconds_of(r.value("last", json()));
    if (auto p = r.find("person"); p != r.end() && p->is_number_unsigned()) {
      a.person = p->get<std::uint64_t>();
    }
    report.identifiers.push_back(std::move(a));
  }
  const json &s = *summary;
  const auto count = [&](const char *key) {
    auto v = s.find(key);
    return v != s.end() && v->is_number_unsigned() ? v->get<std::uint64_t>() : std::uint64_t{0};
  };
  report.items = count("items");
  report.people = count("people");
  report.undated_excluded = count("undated_excluded");
  report.evidence_capped = count("evidence_capped");
  report.truncated = count("truncated");
  if (auto per = s.find("items_per_category"); per != s.end() && per->is_object()) {
    for (const auto &[category, n] : per->items()) {
      if (n.is_number_unsigned()) {
        report.items_per_category[category.substr(0, 64)] = n.get<std::uint64_t>();
      }
    }
  }
  return report;
}

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
  if (ctx.vm.count("host") != 0) {
    // Another host's items: its agent checks the source names against its own config.
    const std::string host = ctx.vm["host"].as<std::string>();
    MAILDSAR_TRY_ASSIGN(query::AffectedReport remote_report, affected_on_host(config, host, sel, ctx.operator_name));
    print_report(*ctx.out, remote_report, csv, host);
    return core::k_exit_ok;
  }
  for (const std::string &name : sel.sources) {
    if (std::ranges::none_of(config.sources, [&](const core::SourceConfig &s) { return s.name == name; })) {
      return core::fail(core::ErrorCode::usage, fmt::format("affected: no source '{}' in {}", name, config.file));
    }
  }
  MAILDSAR_TRY(require_indexed(config));
  MAILDSAR_TRY_ASSIGN(query::AffectedReport report, query::affected(config, sel));
  Output &out = *ctx.out;
  print_report(out, report, csv, "");
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
