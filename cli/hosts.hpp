// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "cli/output.hpp"
#include "core/config.hpp"
#include "core/result.hpp"
#include "query/query.hpp"
#include "remote/host_client.hpp"

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace maildsar::cli {

/** What one configured host gave a command run on the DPO host (issue 15). */
struct HostOutcome {
  std::string name;
  bool searched = false;        // status and the request were answered
  bool reachable = false;       // the agent said hello and answered status
  bool stale = false;           // its status says its index is stale
  bool allowed_missing = false; // not searched, and --allow-missing-host named it
  std::string error;            // why not searched ("host mx1: ...")
  std::string agent_host;       // the agent's own name for its host (hello)
  std::optional<std::int64_t> index_age_seconds;
  std::int64_t max_index_age_seconds = 0;
  std::uint64_t partially_indexed = 0; // find: items of the host's index indexed only in part
  nlohmann::json hits = nlohmann::json::array(); // find: hit objects, each with "host"; trace: its copies
  nlohmann::json hops = nlohmann::json::array(); // trace: the path it read, each hop with "host"
  std::vector<std::string> problems;             // trace: copies it could not read; retention: scan errors
  nlohmann::json retention = nlohmann::json::object(); // retention: its dry run (agent's answer)
};

/** Adds --allow-missing-host NAME (repeatable). */
void add_host_options(boost::program_options::options_description &desc);

/**
 * The names given with --allow-missing-host, each checked against the config's hosts.
 * @errors usage: a name that is no configured host.
 */
[[nodiscard]] core::Result<std::vector<std::string>> allowed_missing_hosts(const boost::program_options::variables_map &vm,
                                                                          const core::Config &config);

/**
 * Asks every configured host, in config order: hello, `status` (a stale index — never indexed,
 * changed, or older than the host's max_index_age — is a failure), and, when `subject` is given,
 * `find`, whose hits each get "host": NAME. A host that fails is not searched; its error names it.
 */
[[nodiscard]] std::vector<HostOutcome> query_hosts(const core::Config &config, const query::SubjectProfile *subject,
                                                   const std::vector<std::string> &allowed_missing,
                                                   std::string_view operator_name);

/**
 * Every configured host's `trace` of `message_id`, in config order (hello, status — stale
 * fails —, trace): its copies in `hits` and its path in `hops`, each object with "host".
 */
[[nodiscard]] std::vector<HostOutcome> trace_hosts(const core::Config &config, const std::string &message_id,
                                                   const std::vector<std::string> &allowed_missing,
                                                   std::string_view operator_name);

/**
 * Every configured host's retention dry run as of `now` (seconds, UTC), in parallel: hello,
 * status (stale fails), `retention` — each host judges its own stores by its own rules.
 */
[[nodiscard]] std::vector<HostOutcome> retention_hosts(const core::Config &config, std::int64_t now,
                                                       const std::vector<std::string> &allowed_missing,
                                                       std::string_view operator_name);

/** What the DPO asks every host's part of an access package to be (export across hosts). */
struct HostExportOptions {
  bool redact_others = false;
  std::string language = "en";
  std::vector<std::string> mask;
  std::vector<std::string> unmask;
};

/** One host's part of an access package, as copied into DIR/hosts/NAME/. */
struct HostExport {
  std::string name;
  bool exported = false;        // every file arrived and matched its SHA-256
  bool allowed_missing = false; // not exported, and --allow-missing-host named it
  std::string error;            // why not ("host mx1: ...")
  std::string folder;           // DIR/hosts/NAME
  std::uint64_t items = 0;
  std::uint64_t copied = 0;
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
  std::string package_sha256; // the host's own package hash (its manifest.json)
  std::vector<std::string> problems; // the host's items that could not be copied
};

/**
 * Each host's part of the access package for `subject` (issue 15), in config order: hello,
 * status (stale fails), `export` (the agent builds its own package from its own index), then
 * every file of it read in chunks of remote::k_export_chunk_bytes into `hosts_dir`/NAME/, each
 * checked against the size and SHA-256 the agent listed, then `export_done`. A host that fails
 * is reported in its HostExport (its folder may hold part of its files).
 */
[[nodiscard]] std::vector<HostExport> export_from_hosts(const core::Config &config, const query::SubjectProfile &subject,
                                                        const HostExportOptions &options,
                                                        const std::vector<std::string> &allowed_missing,
                                                        const std::string &hosts_dir);

/** What one host's agent answered to `verify` (issue 15). */
struct HostVerify {
  std::string name;
  bool verified = false; // it answered status and verify
  std::string error;     // why not ("host mx1: ...")
  bool clean = false;
  std::uint64_t files_rescanned = 0;
  std::uint64_t retained = 0;
  nlohmann::json remaining = nlohmann::json::array();  // rows as verify --json prints them, with "host"
  nlohmann::json unsearched = nlohmann::json::array(); // likewise
  nlohmann::json manifests = nlohmann::json::array();
  std::string certificate;        // its path on that host ("" when none was written)
  std::string certificate_sha256; // of that file
};

/**
 * Every configured host's `verify` of `subject`, in config order: hello, status (stale fails),
 * then `verify` (the host rescans its own stores and index and writes its own certificate).
 */
[[nodiscard]] std::vector<HostVerify> verify_hosts(const core::Config &config, const query::SubjectProfile &subject);

/**
 * Runs `one(i)` for i in [0, n) on up to 8 threads (hosts are asked in parallel); each call
 * writes only its own result slot, so output keeps config order.
 */
void for_each_host(std::size_t n, const std::function<void(std::size_t)> &one);

/**
 * Opens a session with `host` for a longer conversation: hello and status (a stale index is a
 * failure, as for find); fills `out`'s reachable, stale, agent_host and ages. Errors name the host.
 */
[[nodiscard]] core::Result<remote::HostClient> open_host(const core::HostConfig &host, HostOutcome &out);

/** The subject object of the agent protocol (find, export, verify, plan). */
[[nodiscard]] nlohmann::json subject_json(const query::SubjectProfile &subject);

/** The "maildsar.hosts" summary object that ends find --json when hosts are configured. */
[[nodiscard]] nlohmann::json hosts_summary_json(const std::vector<HostOutcome> &outcomes, bool complete);

/**
 * Names each host of `outcomes` that could not be asked: a warning ("...; NOT `missed`
 * (--allow-missing-host NAME)") when --allow-missing-host named it, else an error. When one was
 * not named, also says that `refusal`, how to go on, ends --json with the hosts summary, and
 * returns true: the command gives no answer (exit k_exit_problem).
 */
[[nodiscard]] bool refuse_missing_hosts(Output &out, const std::vector<HostOutcome> &outcomes, std::string_view missed,
                                        std::string_view refusal);

} // namespace maildsar::cli
