// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar config check: the config read and checked before anything runs with it — each
// source with its type, resolved path and the files it matches now, and what would bite later
// (issue 19): the Art. 15 information missing, logs and quarantine without retention, unreadable
// files, sources that match nothing, holds that expired. Sources that overlap and a state
// directory inside a store, like every other error of the config, are refused when it is read
// (exit 78), before this check.
#include "access/export.hpp"
#include "cli/commands.hpp"
#include "connectors/connector.hpp"
#include "core/time.hpp"
#include "erasure/policy.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ctime>
#include <set>
#include <string>
#include <vector>

namespace maildsar::cli {

void config_options(po::options_description &desc, po::positional_options_description &pos) {
  desc.add_options() //
      ("config-words", po::value<std::vector<std::string>>()->composing(), "'check'");
  pos.add("config-words", -1);
}

namespace {

using nlohmann::json;

struct Warning {
  std::string code;
  std::string message;
};

/** What one source matches now. */
struct SourceCheck {
  const core::SourceConfig *source = nullptr;
  std::vector<std::string> files;
  std::vector<std::string> problems; // unreadable files and folders, files left out
};

SourceCheck check_source(const core::SourceConfig &source) {
  SourceCheck out;
  out.source = &source;
  auto connector = connectors::make_connector(source);
  if (!connector) {
    out.problems.push_back(connector.error().message);
    return out;
  }
  connectors::ItemCollector sink;
  auto files = (*connector)->list_files(sink);
  if (!files) {
    out.problems.push_back(files.error().message);
  } else {
    for (const connectors::FileEntry &f : *files) {
      out.files.push_back(f.path);
    }
  }
  for (const connectors::ScanError &e : sink.errors) {
    out.problems.push_back(e.position.empty() ? fmt::format("{}: {}", e.path, e.cause)
                                                : fmt::format("{} {}: {}", e.path, e.position, e.cause));
  }
  return out;
}

std::vector<Warning> warnings_of(const core::Config &config, const std::vector<SourceCheck> &checks) {
  std::vector<Warning> w;
  if (config.sources.empty() && config.hosts.empty()) {
    w.push_back({"no-sources", "no source and no host is configured: nothing would be searched"});
  }
  for (const SourceCheck &c : checks) {
    if (c.files.empty() && c.problems.empty()) {
      w.push_back({"no-files", fmt::format("source '{}' matches no file now ({})", c.source->name, c.source->path)});
    }
    for (const std::string &p : c.problems) {
      w.push_back({"unreadable", fmt::format("source '{}': {}", c.source->name, p)});
    }
  }
  // Logs and quarantine grow without end unless a retention rule ages them out.
  std::set<std::string> retained;
  for (const core::RetentionRule &r : config.retention) {
    retained.insert(r.source);
  }
  for (const core::SourceConfig &s : config.sources) {
    if ((s.type == "maillog" || s.type == "quarantine") && !retained.contains(s.name)) {
      w.push_back({"no-retention", fmt::format("source '{}' ({}) has no retention rule: its data is kept for ever "
                                               "(config \"retention\")",
                                               s.name, s.type)});
    }
  }
  if (const std::vector<std::string> missing = access::missing_access_information(config.access); !missing.empty()) {
    w.push_back({"access-incomplete",
                 fmt::format("the Art. 15 information of access packages is incomplete (config \"access\": {}); "
                             "export would state generic text instead",
                             fmt::join(missing, ", "))});
  }
  const std::string today = erasure::today_utc();
  for (const core::Hold &h : config.holds) {
    if (!h.until.empty() && h.until < today) {
      w.push_back({"hold-expired", fmt::format("the hold on source '{}' ({}) expired on {}: it protects nothing now",
                                               h.source, h.reason, h.until)});
    }
  }
  return w;
}

} // namespace

core::Result<int> run_config(Context &ctx) {
  std::vector<std::string> words;
  if (ctx.vm.count("config-words") != 0) {
    words = ctx.vm["config-words"].as<std::vector<std::string>>();
  }
  if (words != std::vector<std::string>{"check"}) {
    return core::fail(core::ErrorCode::usage, "config: say what to do", "maildsar config check [--json]");
  }
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config()); // a bad config: exit 78 here
  std::vector<SourceCheck> checks;
  for (const core::SourceConfig &s : config.sources) {
    checks.push_back(check_source(s));
  }
  // A message policy the config cannot have is an error of the config, as plan would say.
  MAILDSAR_TRY(erasure::effective_message_policy(config, json::object()));
  std::vector<Warning> warnings = warnings_of(config, checks);
  if (ctx.out->json()) {
    json sources = json::array();
    for (const SourceCheck &c : checks) {
      sources.push_back({{"name", c.source->name},
                         {"type", c.source->type},
                         {"format", c.source->format},
                         {"path", c.source->path},
                         {"root", c.source->root},
                         {"files", c.files.size()},
                         {"problems", c.problems}});
    }
    json ws = json::array();
    for (const Warning &w : warnings) {
      ws.push_back({{"code", w.code}, {"message", w.message}});
    }
    ctx.out->json_line(json{{"schema", "maildsar.config-check"},
                            {"version", 1},
                            {"config", config.file},
                            {"state_dir", config.state_dir},
                            {"sources", sources},
                            {"warnings", ws},
                            {"ok", warnings.empty()}});
  } else {
    ctx.out->line(fmt::format("config {}: valid; state in {}", config.file, config.state_dir));
    for (const SourceCheck &c : checks) {
      ctx.out->line(fmt::format("  {:<16} {:<20} {:>6} file(s)  {}{}", c.source->name,
                                c.source->format.empty() ? c.source->type : c.source->type + "/" + c.source->format,
                                c.files.size(), c.source->path,
                                c.problems.empty() ? "" : fmt::format("  ({} problem(s))", c.problems.size())));
    }
    for (const Warning &w : warnings) {
      ctx.out->diag("warning", w.message);
    }
    ctx.out->line(warnings.empty() ? "no problem found" : fmt::format("{} warning(s)", warnings.size()));
  }
  return warnings.empty() ? 0 : 1;
}

} // namespace maildsar::cli
