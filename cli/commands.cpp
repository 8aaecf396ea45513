// SPDX-License-Identifier: GPL-3.0-or-later
#include "cli/commands.hpp"

#include "connectors/archive.hpp"
#include "connectors/attachment_text.hpp"
#include "connectors/limits.hpp"
#include "connectors/pst.hpp"
#include "indexer/catalog.hpp"
#include "indexer/indexer.hpp"
#include "query/query.hpp"

#include <fmt/format.h>

#include <array>

namespace maildsar::cli {

core::Result<core::Config> Context::load_config() const {
  auto config = core::load_config(config_path);
  if (config) {
    // Every PST read from here on (index, export, plan, erase) runs in a worker with these limits.
    connectors::set_pst_limits({.cpu_seconds = config->limits.pst_cpu_seconds,
                                .memory_mib = config->limits.pst_memory_mib,
                                .wall_seconds = config->limits.pst_timeout_seconds});
    // Attachment text (PDF, Office, ...) is extracted in workers with these limits, cached in the
    // state directory.
    const core::LimitsConfig &l = config->limits;
    connectors::AttachmentTextSettings text;
    text.enabled = l.extract_attachments != 0;
    text.cache_path = connectors::attachment_cache_path(config->state_dir);
    text.worker = {.cpu_seconds = l.extract_cpu_seconds,
                   .memory_mib = l.extract_memory_mib,
                   .wall_seconds = l.extract_timeout_seconds};
    text.extract.max_text_bytes = l.extract_max_text_mib << 20;
    text.extract.max_inflated_bytes = l.extract_max_inflated_mib << 20;
    text.extract.max_depth = static_cast<std::uint32_t>(l.extract_max_depth);
    text.extract.max_pages = static_cast<std::uint32_t>(l.extract_max_pages);
    text.max_attachment_bytes = l.extract_max_attachment_mib << 20;
    connectors::set_attachment_text(text);
    // Every item read from here on (index, verify, export, trace) is bounded by these.
    connectors::set_item_limits({.max_item_bytes = l.max_item_mib << 20U,
                                 .max_header_bytes = l.max_header_kib << 10U,
                                 .max_mime_parts = l.max_mime_parts,
                                 .max_addresses_per_role = l.max_addresses_per_role,
                                 .max_transaction_lines = l.max_transaction_lines,
                                 .max_transaction_bytes = l.max_transaction_kib << 10U});
    connectors::set_archive_limits({.max_member_bytes = l.archive_max_member_mib << 20U,
                                    .max_total_bytes = l.archive_max_total_gib << 30U,
                                    .max_ratio = l.archive_max_ratio,
                                    .max_members = l.archive_max_members,
                                    .timeout_seconds = l.archive_timeout_seconds,
                                    .max_pst_bytes = l.archive_max_pst_mib << 20U});
    // A PST member of an archive is copied there (0600) while the PST worker reads it.
    connectors::set_archive_spool_dir(config->state_dir + "/archive-tmp");
  }
  return config;
}

core::Status require_indexed(const core::Config &config) {
  MAILDSAR_TRY_ASSIGN(std::vector<index::SourceStatus> recorded,
                      index::read_source_status(index::catalog_path(config), index::CountFiles::no));
  std::string never;
  std::string changed;
  for (const core::SourceConfig &src : config.sources) {
    const index::SourceStatus *found = nullptr;
    for (const index::SourceStatus &s : recorded) {
      if (s.name == src.name) {
        found = &s;
      }
    }
    if (found == nullptr || !found->last_success) {
      never += fmt::format("{}{}", never.empty() ? "" : ", ", src.name);
    } else if (found->type != src.type ||
               (!found->origin.empty() && found->origin != index::source_origin(src))) {
      changed += fmt::format("{}{}", changed.empty() ? "" : ", ", src.name);
    }
  }
  if (never.empty() && changed.empty()) {
    return {};
  }
  std::string what;
  if (!never.empty()) {
    what = fmt::format("never indexed: {}", never);
  }
  if (!changed.empty()) {
    what += fmt::format("{}not indexed since its configuration changed: {}",
                        what.empty() ? "" : "; ", changed);
  }
  return core::fail(core::ErrorCode::not_indexed,
                    fmt::format("the index does not cover every configured source ({}); no "
                                "answer is given for what was not searched",
                                what),
                    "run `maildsar index` first (`maildsar status` shows every source)");
}

core::Status warn_partially_indexed(const core::Config &config, Output &out) {
  MAILDSAR_TRY_ASSIGN(std::vector<query::Hit> partial, query::truncated_items(config));
  if (!partial.empty()) {
    out.diag("warning", fmt::format("the index holds {} item(s) indexed only in part (cut at a limit, or "
                                    "attachment text not extracted); the subject may be named in what "
                                    "was not read: raise limits.* and run `maildsar index --full` (`maildsar "
                                    "verify` gives no certificate while they remain)",
                                    partial.size()));
  }
  return {};
}

void add_global_options(po::options_description &desc) {
  desc.add_options()                                                                  //
      ("config,c", po::value<std::string>(), "config file (default $MAILDSAR_CONFIG or ./maildsar.json)")
      ("json", "machine-readable JSON output on stdout")                              //
      ("log-json", "diagnostics on stderr as JSON lines")                             //
      ("operator", po::value<std::string>(), "who runs this (audit log); default and only choice: your OS login, unless erasure.act_for_others names it")
      ("verbose,v", "more diagnostics")                                               //
      ("quiet,q", "fewer diagnostics, no progress line")                              //
      ("progress", po::value<std::string>(), "auto (a line on a terminal), json (JSON lines on stderr) or none")
      ("help,h", "show help");
}

void add_subject_options(po::options_description &desc) {
  desc.add_options()                                                                  //
      ("subject", po::value<std::string>(), "subject file (JSON: request, emails, names, phones, ips)")
      ("email", po::value<std::vector<std::string>>()->composing(), "an e-mail address of the subject (repeatable)")
      ("name", po::value<std::vector<std::string>>()->composing(), "a name of the subject (repeatable)")
      ("phone", po::value<std::vector<std::string>>()->composing(), "a phone number of the subject (repeatable)")
      ("ip", po::value<std::vector<std::string>>()->composing(), "an IP address of the subject (repeatable)")
      ("request", po::value<std::string>(),
       "request id (e.g. DSAR-2026-0042); a registered request gives the subject (`maildsar request`)");
}

std::span<const Command> commands() {
  static const std::array<Command, 18> k_commands{
      Command{"index", "scan the sources; index new and changed items, drop vanished ones",
              "index [--source NAME]... [--full]",
              "  maildsar -c /etc/maildsar.json index\n"
              "  maildsar index --source mailboxes --full --json",
              index_options, run_index},
      Command{"find", "list every item the estate holds for a data subject", "find SUBJECT",
              "  maildsar find --email alice.smith@example.com --name 'Alice Smith'\n"
              "  maildsar find --subject dsar-0042.json --json",
              find_options, run_find},
      Command{"export", "Art. 15 access package: copies of every item, report.html, manifest.json",
              "export SUBJECT --out DIR [--zip] [--redact-others [--keep-originals]] [--force] [--language en|de]",
              "  maildsar export --subject dsar-0042.json --out /srv/dsar/0042\n"
              "  maildsar export --subject dsar-0042.json --out /srv/dsar/0042 --zip --redact-others",
              export_options, run_export},
      Command{"plan", "erasure manifest: every item found gets an action and a reason (read-only)",
              "plan SUBJECT --out MANIFEST [--policy FILE] [--pst manual|convert]",
              "  maildsar plan --subject dsar-0042.json --out dsar-0042.manifest.json\n"
              "  maildsar plan --email alice.smith@example.com --out m.json --policy exemptions.json\n"
              "  maildsar plan --subject dsar-0042.json --out m.json --pst convert",
              plan_options, run_plan},
      Command{"approve", "record an approval of a manifest by this OS login (never the planner's login)",
              "approve MANIFEST",
              "  maildsar approve dsar-0042.manifest.json --operator bob\n"
              "  maildsar approve dsar-0042.manifest.json --json",
              approve_options, run_approve},
      Command{"erase", "carry out an approved manifest; crash-safe and resumable", "erase MANIFEST [--dry-run]",
              "  maildsar erase dsar-0042.manifest.json --dry-run\n"
              "  maildsar erase dsar-0042.manifest.json --json",
              erase_options, run_erase},
      Command{"verify", "prove nothing of the subject remains (stores and index); write a certificate",
              "verify SUBJECT [--out CERTIFICATE]",
              "  maildsar verify --subject dsar-0042.json\n"
              "  maildsar verify --email alice.smith@example.com --json",
              verify_options, run_verify},
      Command{"retention", "list (or with --apply delete/anonymise) data past its retention period",
              "retention [--apply]",
              "  maildsar retention\n"
              "  maildsar retention --apply --json",
              retention_options, run_retention},
      Command{"trace", "every stored copy and every log transaction of one message: its path",
              "trace MESSAGE-ID",
              "  maildsar trace 20231114100000.1234@mx1.example.com\n"
              "  maildsar trace '<20231114100000.1234@mx1.example.com>' --json",
              trace_options, run_trace},
      Command{"config", "check the config: sources and the files they match now, overlaps, missing settings",
              "config check",
              "  maildsar -c /etc/maildsar/maildsar.json config check\n"
              "  maildsar config check --json",
              config_options, run_config},
      Command{"status", "per source: last successful index, items, errors, staleness", "status",
              "  maildsar -c /etc/maildsar.json status\n"
              "  maildsar status --json",
              status_options, run_status},
      Command{"audit", "show or verify the tamper-evident audit log", "audit [verify]",
              "  maildsar audit\n"
              "  maildsar audit verify --json",
              audit_options, run_audit},
      Command{"certificate", "check an erasure certificate's signature by the installation's key",
              "certificate verify FILE [--public-key PEM] | certificate key",
              "  maildsar certificate key > maildsar-certificates.pub.pem\n"
              "  maildsar certificate verify state/certificates/DSAR-2026-0042-2026-12-03T10-00-00Z.json\n"
              "  maildsar certificate verify cert.json --public-key maildsar-certificates.pub.pem --json",
              certificate_options, run_certificate},
      Command{"request", "the request register: open, list, show, extend, update, close (deadlines, status, notes)",
              "request open|list|show|extend|update|close [ID] [options]",
              "  maildsar request open --type erasure --email alice.smith@example.com --name 'Alice Smith'\n"
              "  maildsar request list --due-within 7d --json",
              request_options, run_request},
      Command{"affected", "breach scoping: every data subject whose data is in a source, folder or date range",
              "affected --source NAME|--folder GLOB [--since DATE] [--until DATE] [--csv]",
              "  maildsar affected --source mailboxes --folder '*/alice/Maildir*' --csv > affected.csv\n"
              "  maildsar affected --source postfix --since 2026-11-01 --until 2026-11-30 --json",
              affected_options, run_affected},
      Command{"discover", "identity discovery: other addresses and phones probably the subject's, with evidence",
              "discover SUBJECT [--add IDENTIFIER...] [--min-score X]",
              "  maildsar discover --request DSAR-2026-0001\n"
              "  maildsar discover --request DSAR-2026-0001 --add jane.doe@b.example +442079460123",
              discover_options, run_discover},
      Command{"completion", "shell completion for bash or zsh, written from this binary's commands and options",
              "completion bash|zsh",
              "  source <(maildsar completion bash)\n"
              "  maildsar completion zsh > ~/.zfunc/_maildsar",
              completion_options, run_completion},
      Command{"agent", "serve this host's part of an estate over stdin/stdout (ssh forced command) or a socket",
              "agent [--listen SOCKET]",
              "  command=\"maildsar -c /etc/maildsar/maildsar.json agent\",restrict ssh-ed25519 AAAA... dpo\n"
              "  maildsar -c /etc/maildsar/maildsar.json agent --listen /run/maildsar/agent.sock",
              agent_options, run_agent},
  };
  return k_commands;
}

} // namespace maildsar::cli
