// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar agent: this host's part of an estate spread over hosts (issue 15). Speaks the agent
// protocol (remote/protocol.hpp, docs/schemata.md) on stdin/stdout, meant as the forced command
// of an authorized_keys line; answers only from this host's own config, sources and index.
#include "cli/commands.hpp"
#include "core/audit.hpp"
#include "core/exit_codes.hpp"
#include "indexer/catalog.hpp"
#include "indexer/indexer.hpp"
#include "query/affected.hpp"
#include "query/query.hpp"
#include "remote/protocol.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <unistd.h>

namespace maildsar::cli {

void agent_options(po::options_description &, po::positional_options_description &) {}

namespace {

std::string this_host_name(const core::Config &config) {
  if (!config.host_name.empty()) {
    return config.host_name;
  }
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) {
    return "unknown";
  }
  return name;
}

} // namespace

core::Result<nlohmann::json> local_status_json(const core::Config &config) {
  MAILDSAR_TRY_ASSIGN(std::vector<index::SourceStatus> recorded,
                      index::read_source_status(index::catalog_path(config)));
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  nlohmann::json sources = nlohmann::json::array();
  bool any_stale = false;
  std::optional<std::int64_t> oldest; // the age of the least recently indexed source
  for (const core::SourceConfig &src : config.sources) {
    const index::SourceStatus *found = nullptr;
    for (const index::SourceStatus &s : recorded) {
      if (s.name == src.name) {
        found = &s;
      }
    }
    const bool indexed = found != nullptr && found->last_success.has_value();
    const bool changed = found != nullptr && (found->type != src.type ||
                                              (!found->origin.empty() && found->origin != index::source_origin(src)));
    const std::int64_t age = indexed ? std::max<std::int64_t>(0, now - *found->last_success) : 0;
    const bool stale = !indexed || changed || age > config.max_index_age_seconds;
    any_stale = any_stale || stale;
    if (indexed) {
      oldest = std::max(oldest.value_or(0), age);
    }
    sources.push_back({{"name", src.name},
                       {"type", src.type},
                       {"last_success", indexed ? nlohmann::json(iso_date(*found->last_success)) : nlohmann::json(nullptr)},
                       {"age_seconds", indexed ? nlohmann::json(age) : nlohmann::json(nullptr)},
                       {"items", found != nullptr ? found->items : 0},
                       {"stale", stale},
                       {"config_changed", changed}});
  }
  return nlohmann::json{{"sources", sources},
                        {"stale", any_stale},
                        {"max_index_age_seconds", config.max_index_age_seconds},
                        {"index_age_seconds", oldest ? nlohmann::json(*oldest) : nlohmann::json(nullptr)}};
}

core::Result<int> run_agent(Context &ctx) {
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  // A client that goes away is EOF or EPIPE for us, never a signal.
  std::signal(SIGPIPE, SIG_IGN);
  const std::string operator_name = ctx.operator_name;
  std::map<std::string, remote::OpHandler> ops;
  ops["status"] = [&](const nlohmann::json &) { return local_status_json(config); };
  ops["find"] = [&](const nlohmann::json &request) -> core::Result<nlohmann::json> {
    const auto subject_it = request.find("subject");
    if (subject_it == request.end() || !subject_it->is_object()) {
      return core::fail(core::ErrorCode::usage, R"(find: "subject" must be a subject object)",
                        R"(e.g. {"op":"find","subject":{"emails":["a@example.com"]}})");
    }
    // The subject file's own parser: the same keys, types and checks as `find --subject FILE`.
    MAILDSAR_TRY_ASSIGN(query::SubjectProfile subject, query::parse_subject(subject_it->dump(), "find: subject"));
    if (subject.empty()) {
      return core::fail(core::ErrorCode::usage, "find: the subject has no identifier");
    }
    MAILDSAR_TRY(require_indexed(config));
    MAILDSAR_TRY_ASSIGN(std::vector<query::Hit> hits, query::find(config, subject));
    // Every search over the wire is on this host's timeline (who asked is the client's claim).
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    nlohmann::json details{{"items", hits.size()}, {"via", "agent"}};
    if (auto who = request.find("operator"); who != request.end() && who->is_string()) {
      details["client_operator"] = who->get<std::string>().substr(0, 64);
    }
    MAILDSAR_TRY(audit.append("find", operator_name, subject.request, details));
    nlohmann::json list = nlohmann::json::array();
    for (const query::Hit &h : hits) {
      list.push_back(hit_json(h));
    }
    MAILDSAR_TRY_ASSIGN(std::vector<query::Hit> partial, query::truncated_items(config));
    return nlohmann::json{{"hits", std::move(list)}, {"partially_indexed", partial.size()}};
  };
  ops["affected"] = [&](const nlohmann::json &request) -> core::Result<nlohmann::json> {
    // Breach scoping of this host's items (issue 16 item 5 with --host): the same selection as
    // `affected` here, checked against this host's own sources.
    query::AffectedSelection sel;
    if (auto sources = request.find("sources"); sources != request.end()) {
      if (!sources->is_array() || sources->size() > 1000) {
        return core::fail(core::ErrorCode::usage, R"(affected: "sources" must be a list of source names)");
      }
      for (const nlohmann::json &name : *sources) {
        if (!name.is_string() || std::ranges::none_of(config.sources, [&](const core::SourceConfig &src) {
              return src.name == name.get<std::string>();
            })) {
          return core::fail(core::ErrorCode::usage,
                            fmt::format("affected: no source {} on this host", name.dump().substr(0, 80)));
        }
        sel.sources.push_back(name.get<std::string>());
      }
    }
    if (auto folder = request.find("folder"); folder != request.end()) {
      if (!folder->is_string() || folder->get<std::string>().size() > 4096) {
        return core::fail(core::ErrorCode::usage, R"(affected: "folder" must be a glob)");
      }
      sel.folder_glob = folder->get<std::string>();
    }
    for (const char *key : {"since", "until"}) {
      if (auto t = request.find(key); t != request.end()) {
        if (!t->is_number_integer()) {
          return core::fail(core::ErrorCode::usage, fmt::format("affected: \"{}\" must be seconds (UTC)", key));
        }
        (std::string_view(key) == "since" ? sel.since : sel.until) = t->get<std::int64_t>();
      }
    }
    if (sel.sources.empty() && sel.folder_glob.empty()) {
      return core::fail(core::ErrorCode::usage, "affected: which items? give sources and/or a folder glob");
    }
    MAILDSAR_TRY(require_indexed(config));
    MAILDSAR_TRY_ASSIGN(query::AffectedReport report, query::affected(config, sel));
    // Who asked for the people of which items is on this host's timeline too.
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    nlohmann::json details{{"items", report.items}, {"identifiers", report.identifiers.size()}, {"via", "agent"}};
    if (auto who = request.find("operator"); who != request.end() && who->is_string()) {
      details["client_operator"] = who->get<std::string>().substr(0, 64);
    }
    MAILDSAR_TRY(audit.append("affected", operator_name, "", details));
    return affected_report_json(report);
  };
  const remote::AgentIdentity self{this_host_name(config), fmt::format("maildsar {}", MAILDSAR_VERSION)};
  return remote::serve(STDIN_FILENO, STDOUT_FILENO, self, ops);
}

} // namespace maildsar::cli
