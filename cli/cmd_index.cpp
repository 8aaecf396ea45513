// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar index: scan the sources into the index.
#include "cli/commands.hpp"
#include "core/exit_codes.hpp"
#include "indexer/indexer.hpp"

#include <fmt/format.h>

#include <charconv>
#include <csignal>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace maildsar::cli {

void index_options(po::options_description &desc, po::positional_options_description &) {
  desc.add_options()                                                                      //
      ("source", po::value<std::vector<std::string>>()->composing(), "index only this source (repeatable)")
      ("full", "re-read every file, ignoring what the catalog remembers")                 //
      ("accept-removal", po::value<std::vector<std::string>>()->composing(),
       "let this source drop the items of its vanished files although its root is missing, all "
       "its files or more than max_removal_percent of them vanished (repeatable)")             //
      ("threads", po::value<std::string>()->default_value("0"),
       "parser threads, 0 to 256 (0 = one per core, less the writer's)");
}

namespace {

nlohmann::json summary_json(const index::IndexSummary &s, const nlohmann::json &problems,
                            const nlohmann::json &warnings) {
  nlohmann::json sources = nlohmann::json::array();
  for (const auto &src : s.sources) {
    sources.push_back({{"name", src.name},
                       {"type", src.type},
                       {"files", src.files},
                       {"items", src.items},
                       {"new", src.new_items},
                       {"changed", src.changed},
                       {"removed", src.removed},
                       {"moved", src.moved},
                       {"errors", src.errors},
                       {"warnings", src.warnings},
                       {"truncated", src.truncated},
                       {"suppressed", src.suppressed}});
    if (!src.held_removal.empty()) {
      sources.back()["held_removal"] = src.held_removal;
    }
    std::uint64_t skipped = 0;
    for (const auto &[reason, n] : src.skipped) {
      skipped += n;
    }
    sources.back()["skipped"] = skipped;
    if (skipped > 0) {
      sources.back()["skipped_reasons"] = src.skipped;
    }
  }
  return {{"schema", "maildsar.index-summary"},
          {"version", 1},
          {"sources", sources},
          {"errors", s.errors},
          {"problems", problems},
          {"warnings", s.warnings},
          {"truncated", s.truncated},
          {"suppressed", s.suppressed},
          {"notices", warnings},
          {"seconds", s.seconds}};
}

void print_summary_table(Output &out, const index::IndexSummary &s) {
  out.line(fmt::format("{:<16} {:<10} {:>8} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7}", "SOURCE",
                       "TYPE", "FILES", "ITEMS", "NEW", "CHANGED", "REMOVED", "MOVED", "ERRORS",
                       "SKIPPED"));
  std::vector<std::string> why;
  for (const auto &src : s.sources) {
    std::uint64_t skipped = 0;
    std::string reasons;
    for (const auto &[reason, n] : src.skipped) {
      skipped += n;
      reasons += fmt::format("{}{} {}", reasons.empty() ? "" : ", ", n, reason);
    }
    out.line(fmt::format("{:<16} {:<10} {:>8} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7}", src.name,
                         src.type, src.files, src.items, src.new_items, src.changed, src.removed,
                         src.moved, src.errors, skipped));
    if (skipped > 0) {
      why.push_back(fmt::format("{}: skipped {}", src.name, reasons));
    }
  }
  for (const std::string &line : why) {
    out.line(line); // the files that are no items, by kind (docs/cli.md, index)
  }
  out.line(s.warnings > 0
               ? fmt::format("{} problem(s); {} warning(s) (items indexed in part or split at a limit, "
                             "see docs/reliability.md); {:.1f} s",
                             s.errors, s.warnings, s.seconds)
               : fmt::format("{} problem(s); {:.1f} s", s.errors, s.seconds));
  if (s.truncated > 0) {
    out.line(fmt::format("{} item(s) indexed only in part: what was not read is not searched, and "
                         "`verify` gives no certificate while they remain (raise limits.* and run "
                         "`index --full`)",
                         s.truncated));
  }
  if (s.suppressed > 0) {
    out.line(fmt::format("{} item(s) show the subject of a completed erasure (restored from a backup?): "
                         "flagged suppressed; see `maildsar status` and `maildsar plan --request ID "
                         "--resurrected`",
                         s.suppressed));
  }
}

/** "STEP[:N]" -> (STEP, N); N defaults to 1. */
std::pair<std::string, unsigned long long> step_spec(const char *text) {
  std::string spec(text);
  unsigned long long nth = 1;
  if (auto colon = spec.find(':'); colon != std::string::npos) {
    nth = std::strtoull(spec.c_str() + colon + 1, nullptr, 10);
    spec.resize(colon);
  }
  return {spec, nth};
}

/**
 * Crash-test hooks for the end-to-end suite (tests/e2e/test_ops_e2e.cpp), off unless set:
 * MAILDSAR_TEST_KILL_AT=STEP[:N] sends this process SIGKILL (MAILDSAR_TEST_STOP_AT: SIGSTOP)
 * the Nth time (default 1st) the indexer reaches STEP (IndexOptions::fault_at);
 * MAILDSAR_TEST_BATCH_SIZE=N commits every N documents, so that a small estate has several
 * commits to be killed between.
 */
void apply_test_hooks(index::IndexOptions &opts) {
  if (const char *batch = std::getenv("MAILDSAR_TEST_BATCH_SIZE"); batch != nullptr) {
    opts.batch_size = std::strtoull(batch, nullptr, 10);
  }
  int sig = SIGKILL;
  const char *at = std::getenv("MAILDSAR_TEST_KILL_AT");
  if (at == nullptr || *at == '\0') {
    sig = SIGSTOP;
    at = std::getenv("MAILDSAR_TEST_STOP_AT");
  }
  if (at == nullptr || *at == '\0') {
    return;
  }
  auto [step, nth] = step_spec(at);
  opts.fault_at = [step = step, nth = nth, sig, seen = 0ULL](std::string_view where) mutable {
    if (where == step && ++seen == nth) {
      std::raise(sig);
    }
    return false;
  };
}

/** --threads: a whole number 0..256 ("-1" is not wrapped to four billion). */
core::Result<unsigned> thread_count(const std::string &text) {
  unsigned n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || n > 256) {
    return core::fail(core::ErrorCode::usage,
                      fmt::format("index: --threads '{}' must be a whole number from 0 to 256", text),
                      "0 = one parser per core, less the writer's");
  }
  return n;
}

} // namespace

core::Result<int> run_index(Context &ctx) {
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  index::IndexOptions opts;
  if (ctx.vm.count("source") != 0) {
    opts.only_sources = ctx.vm["source"].as<std::vector<std::string>>();
  }
  if (ctx.vm.count("accept-removal") != 0) {
    opts.accept_removal = ctx.vm["accept-removal"].as<std::vector<std::string>>();
  }
  opts.full = ctx.vm.count("full") != 0 ? index::FullScan::yes : index::FullScan::no;
  MAILDSAR_TRY_ASSIGN(opts.threads, thread_count(ctx.vm["threads"].as<std::string>()));
  apply_test_hooks(opts);
  Output &out = *ctx.out;
  nlohmann::json problems = nlohmann::json::array(); // each problem once, for --json
  opts.on_problem = [&out, &problems](const index::IndexProblem &p) {
    const auto &e = p.error;
    problems.push_back({{"source", p.source}, {"path", e.path}, {"position", e.position}, {"cause", e.cause}});
    out.diag("error", e.position.empty() ? fmt::format("{}: {}: {}", p.source, e.path, e.cause)
                                         : fmt::format("{}: {}: {}: {}", p.source, e.path,
                                                       e.position, e.cause));
  };
  nlohmann::json warnings = nlohmann::json::array();
  opts.on_warning = [&out, &warnings](const index::IndexProblem &p) {
    const auto &e = p.error;
    warnings.push_back({{"source", p.source}, {"path", e.path}, {"position", e.position}, {"cause", e.cause}});
    out.diag("warning", e.position.empty() ? fmt::format("{}: {}: {}", p.source, e.path, e.cause)
                                           : fmt::format("{}: {}: {}: {}", p.source, e.path, e.position, e.cause));
  };
  Progress progress(ctx.progress, "index", out);
  opts.on_progress = progress.callback("files"); // per source: files, rate, ETA
  MAILDSAR_TRY_ASSIGN(index::IndexSummary summary, index::run_index(config, opts));
  progress.end();
  if (out.json()) {
    out.json_line(summary_json(summary, problems, warnings));
  } else {
    print_summary_table(out, summary);
  }
  // A partial failure is never a green summary.
  return summary.errors > 0 ? core::k_exit_problem : core::k_exit_ok;
}

} // namespace maildsar::cli
