// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "cli/output.hpp"
#include "cli/progress.hpp"
#include "core/config.hpp"
#include "core/identity.hpp"
#include "core/result.hpp"
#include "erasure/erasure.hpp"
#include "query/affected.hpp"
#include "query/trace.hpp"
#include "remote/protocol.hpp"

#include <boost/program_options.hpp>

#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::cli {

namespace po = boost::program_options;

/** What every command gets: global settings, its parsed options, an output writer. */
struct Context {
  std::string config_path; // -c / --config / $MAILDSAR_CONFIG / ./maildsar.json
  std::string operator_name;  // who runs this, as recorded (core::resolve_operator)
  core::OsUser os_user;       // the OS account that really runs it
  bool acting_for_other = false; // operator_name is not os_user's own name
  OutputMode mode = OutputMode::human;
  int verbosity = 0; // -v: 1, -q: -1
  ProgressMode progress = ProgressMode::none; // --progress, -q, stderr a terminal (cli/progress.hpp)
  po::variables_map vm;
  Output *out = nullptr;

  /** Loads the config named by config_path. */
  [[nodiscard]] core::Result<core::Config> load_config() const;
};

/** A subcommand: name, one-line summary, its options, examples and handler (returns exit code). */
struct Command {
  std::string_view name;
  std::string_view summary;
  std::string_view usage;    // "find SUBJECT"
  std::string_view examples; // two example lines
  std::function<void(po::options_description &, po::positional_options_description &)> options;
  std::function<core::Result<int>(Context &)> run;
};

/**
 * A search answers only for what was searched: ErrorCode::not_indexed (exit 69) naming every
 * configured source that was never indexed, or not with its current configuration (type,
 * format, path), so that `find`, `plan`, `export`, `verify` and `trace` never say "nothing held"
 * of a source nobody looked at.
 */
[[nodiscard]] core::Status require_indexed(const core::Config &config);
/**
 * Warns (stderr) when the index holds items indexed only in part (XTRUNC:1): the subject may be
 * named in what was not read (docs/reliability.md "Bounded memory"). For find, plan, export.
 */
[[nodiscard]] core::Status warn_partially_indexed(const core::Config &config, Output &out);

/** The table of subcommands (DESIGN §4), in help order. */
[[nodiscard]] std::span<const Command> commands();

/** Options every command accepts, before or after the command name. */
void add_global_options(po::options_description &desc);

/** Adds --subject/--email/--name/--phone/--ip (the SUBJECT of DESIGN §4). */
void add_subject_options(po::options_description &desc);

// Handlers, one file each (cli/cmd_<name>.cpp).
void index_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_index(Context &ctx);
void find_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_find(Context &ctx);
void export_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_export(Context &ctx);
void retention_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_retention(Context &ctx);
void plan_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_plan(Context &ctx);
void completion_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_completion(Context &ctx);
void config_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_config(Context &ctx);
void approve_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_approve(Context &ctx);
void erase_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_erase(Context &ctx);
void verify_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_verify(Context &ctx);
void audit_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_audit(Context &ctx);
void certificate_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_certificate(Context &ctx);
void status_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_status(Context &ctx);
void trace_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_trace(Context &ctx);
/** A trace as the agent answers it: {"message_id", "hops": [hop objects], "copies": [copy
    objects as `trace --json` prints them], "problems": [...]} (cli/cmd_trace.cpp). */
[[nodiscard]] nlohmann::json trace_json(const query::Trace &t);
/** The dry run of `retention` as an agent answers it: {"now", "items" (count), "sources":
    {name: {rule, scanned, kept, undated, already_anonymized, actions}}, "scan_errors": [...]}
    (cli/cmd_retention.cpp). */
[[nodiscard]] core::Result<nlohmann::json> retention_dry_run_json(const core::Config &config, std::int64_t now);
void request_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_request(Context &ctx);
/** An `affected` report as the agent sends it ({"identifiers": [...], "summary": {...}}), and
    back (checked: a host's answer is untrusted; `host` names it in errors). */
[[nodiscard]] nlohmann::json affected_report_json(const query::AffectedReport &report);
[[nodiscard]] core::Result<query::AffectedReport> affected_report_from_json(const nlohmann::json &answer,
                                                                           const std::string &host);
void affected_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_affected(Context &ctx);
void discover_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_discover(Context &ctx);
void agent_options(po::options_description &desc, po::positional_options_description &pos);
core::Result<int> run_agent(Context &ctx);
/** The agent's `plan` and `erase` ops: this host's slice of an estate manifest (cli/agent_erasure.cpp). */
void add_agent_erasure_ops(std::map<std::string, remote::OpHandler> &ops, const core::Config &config,
                           const Context &ctx);
/** The test hooks of `erase` from the environment: MAILDSAR_FAULT_AT, MAILDSAR_TEST_PAUSE_AT,
    MAILDSAR_TEST_LOCK_WAIT_MS (docs/cli.md "Environment"). */
void apply_erase_test_hooks(erasure::EraseOptions &options);
/**
 * The agent's `plan` and `erase` ops on `config` (docs/schemata.md "maildsar agent protocol"):
 * also run in-process for the DPO host's own sources, which are a slice named "local" of an
 * estate manifest, planned and checked exactly as a host's (cli/hosts_erasure.cpp).
 */
[[nodiscard]] core::Result<nlohmann::json> agent_plan(const core::Config &config, const Context &ctx,
                                                      const nlohmann::json &request);
[[nodiscard]] core::Result<nlohmann::json> agent_erase(const core::Config &config, const Context &ctx,
                                                       const nlohmann::json &request);
/** The agent's `show`: the details (approval summary) of a slice it planned. */
[[nodiscard]] core::Result<nlohmann::json> agent_show(const core::Config &config, const nlohmann::json &request);
/** This host's name as its agent gives it: the config's host_name, else gethostname(). */
[[nodiscard]] std::string agent_host_name(const core::Config &config);
/** `erase --json`'s report ("maildsar.erase-report"), also the agent's answer to `erase`. */
[[nodiscard]] nlohmann::json erase_report_json(const erasure::EraseReport &report, erasure::DryRun dry_run);

/**
 * This host's index status as the agent's `status` op answers it (docs/schemata.md "maildsar
 * agent protocol"): per configured source its last index and age, "stale" when any source was
 * never indexed, changed, or is older than max_index_age.
 */
[[nodiscard]] core::Result<nlohmann::json> local_status_json(const core::Config &config);

} // namespace maildsar::cli
