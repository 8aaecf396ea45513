// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/result.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::core {

/** One configured source (DESIGN §2). Paths are absolute after loading. */
struct SourceConfig {
  std::string name;
  std::string type;   // maildir | mbox | pst | quarantine | maillog | emlfolder | postfix-queue | exim-spool | archive
  std::string format; // quarantine: amavis | mailscanner | plain; maillog: postfix | exim | ...
  std::string path;   // absolute glob pattern
  std::string owner;  // owner template, "{1}" = text matched by the first '*' in path
  std::string root;   // absolute directory that every file of the source must stay inside
  /** postfix-queue, exim-spool: `erase` may run the MTA's own removal command (postsuper -d,
      exim -Mrm) instead of leaving it to an administrator as a manual action. */
  bool allow_remove = false;
  /** postfix-queue, exim-spool: absolute path of postsuper / exim (default /usr/sbin/postsuper,
      /usr/sbin/exim); named in the manual instructions and run when allow_remove is set. */
  std::string command = {};
  /** archive: erase rewrites the archive without the subject's items (else they are manual). */
  bool rewrite = false;
  /** In plain words for the data subject ("Staff mailboxes"): the access report shows it where
      it would otherwise show the source's name; "" = the name. */
  std::string description = {};
};

struct IdentityConfig {
  std::string subaddress_separators = "+";
  std::string phone_region = "GB";
};

struct Hold {
  std::string source;
  std::string reason;
  std::string until; // YYYY-MM-DD, empty = indefinite
};

struct RetentionRule {
  std::string source;
  std::int64_t max_age_seconds = 0;
  std::string action = "delete"; // delete | anonymize
};

struct ErasureConfig {
  std::uint32_t approvals_required = 1; // distinct approvers, never the planner
  /** Operator -> absolute path of their Ed25519 public key (PEM). When any is configured, only
      approvals signed with the approver's configured key count. */
  std::map<std::string, std::string> approver_keys;
  /** "erasure.require_signatures": signed approvals are mandatory; the config is refused
      without approver_keys (so no change of keys can silently make them optional). */
  bool require_signatures = false;
  /** "erasure.act_for_others": OS accounts (exact passwd names, e.g. a service account) that may
      name another person with `--operator`; both names are then recorded. Anyone else's
      `--operator` may only restate their own OS login (core/identity.hpp). */
  std::vector<std::string> act_for_others;
  /** `plan --pst convert` (config "erasure.pst_convert"): converted PSTs become
      `<pst_mbox_dir>/<name>.mbox` (a folder an mbox source covers), and the original PST files
      are moved to `pst_originals_dir` (outside every store root). Both absolute; "" = not set. */
  std::string pst_mbox_dir;
  std::string pst_originals_dir;
  /** "erasure.message_policy": what `plan` does with a message the subject appears in, by the
      subject's roles in it ("owner|from" -> "delete", "to|cc|bcc|body" -> "redact",
      "default" -> ...; erasure/policy.hpp). Empty = {"default": "delete"}. A request's
      policy file ("messages") overrides it. */
  std::map<std::string, std::string> message_policy;
};

/**
 * The Art. 15(1) information an access package states (config "access"; all optional). Free
 * text for the data subject, in the controller's words.
 */
struct AccessInfo {
  std::string controller;                       // controller's name
  std::string contact;                          // how to reach the controller / the DPO
  std::vector<std::string> purposes;            // purposes of the processing
  std::vector<std::string> categories;          // categories of personal data
  std::vector<std::string> recipients;          // recipients / categories of recipients
  std::string source_of_data;                   // where the data came from
  std::map<std::string, std::string> retention; // source name -> retention period in words
  std::string supervisory_authority;            // where to complain
  std::vector<std::string> internal_domains;    // our own mail domains (not "external recipients")
  /** Art. 15(1)(h): whether automated decisions (profiling) are made from this data, in words;
      "" = not stated (the report says so; export warns). */
  std::string automated_decisions;
  /** Art. 15(2): transfers to third countries or international organisations and their
      safeguards, one per entry ("United States: Standard Contractual Clauses"); empty = not stated. */
  std::vector<std::string> transfers;
  /** Addresses never masked by redaction (the organisation's role addresses, the DPO). */
  std::vector<std::string> unmasked;
  /** `export` redacts other people as with --redact-others unless told --no-redact-others. */
  bool redact_others = false;
  /** The language of the report (report.html, report.pdf, the review page): one of
      k_report_languages; `export --language` overrides it. */
  std::string language = "en";
};

/** The languages the access report is written in (access/i18n/: a catalogue for each but "en"). */
inline constexpr std::array<std::string_view, 2> k_report_languages{"en", "de"};

/**
 * Limits of the worker processes that parse untrusted files (config "limits";
 * docs/reliability.md): per PST file, CPU seconds, address space in MiB and wall-clock seconds.
 */
struct LimitsConfig {
  std::uint64_t pst_cpu_seconds = 600;
  std::uint64_t pst_memory_mib = 1024;
  std::uint64_t pst_timeout_seconds = 3600;
  // Attachment text (extract-text worker, one per message with attachments not in the cache).
  std::uint64_t extract_cpu_seconds = 60;
  std::uint64_t extract_memory_mib = 1024;
  std::uint64_t extract_timeout_seconds = 300;
  std::uint64_t extract_max_text_mib = 4;        // text kept per attachment
  std::uint64_t extract_max_inflated_mib = 256;  // decompressed from archives per attachment
  std::uint64_t extract_max_depth = 3;           // archives within archives
  std::uint64_t extract_max_pages = 5000;        // PDF pages read
  std::uint64_t extract_max_attachment_mib = 48; // larger attachments: not extracted (warning)
  std::uint64_t extract_attachments = 1;         // 0 = off (names and text parts only)
  // Per item (docs/reliability.md "Bounded memory"): beyond these an item is indexed in part,
  // with a warning and the term XTRUNC:1 (docs/reliability.md).
  std::uint64_t max_item_mib = 64;             // bytes of one item decoded
  std::uint64_t max_header_kib = 1024;         // one header field / one line of a message
  std::uint64_t max_mime_parts = 1000;         // MIME parts of one message
  std::uint64_t max_addresses_per_role = 1000; // addresses (and IPs) per role of one item
  std::uint64_t max_transaction_lines = 10000; // lines of one log transaction (then split)
  std::uint64_t max_transaction_kib = 4096;    // bytes of one log transaction (then split)
  // Backup archives (source type "archive", docs/reliability.md "Backup archives").
  std::uint64_t archive_max_member_mib = 512;    // decompressed bytes of one member
  std::uint64_t archive_max_total_gib = 1024;    // decompressed bytes of one archive
  std::uint64_t archive_max_ratio = 200;         // decompressed / stored bytes (zip bombs)
  std::uint64_t archive_max_members = 1000000;   // members of one archive
  std::uint64_t archive_timeout_seconds = 7200;  // wall-clock time to read one archive
  std::uint64_t archive_max_pst_mib = 4096;      // a PST member copied to a temporary file
};

/**
 * A remote mail host of the estate (config "hosts", issue 15): maildsar runs there against its
 * own sources as `maildsar agent`, reached through a transport (docs/cli.md "Hosts").
 */
struct HostConfig {
  std::string name;      // letters, digits, '-', '_', '.'; unique among hosts
  std::string transport; // "ssh" | "program"
  /** ssh: "user@host" (the destination given to ssh after "--"). */
  std::string ssh;
  /** ssh: the agent's config path on the remote host ("" = the agent's default). */
  std::string remote_config;
  /** program: the argv run locally (command[0] absolute; no shell). */
  std::vector<std::string> command;
  /** Seconds to wait for the agent's answer to one request (config "timeout", default 60s). */
  std::int64_t timeout_seconds = 60;
  /** The argv that starts the agent: ssh -o BatchMode=yes -- USER@HOST maildsar [-c CONFIG]
      agent, or `command`. Never a shell string. */
  [[nodiscard]] std::vector<std::string> argv() const;
};

struct Config {
  std::string file;      // absolute path of the config file
  std::string base_dir;  // its directory; relative paths resolve against it
  std::string state_dir; // absolute
  std::vector<SourceConfig> sources;
  /** Remote hosts searched with the local sources (config "hosts"); may be the only ones. */
  std::vector<HostConfig> hosts;
  /** This host's name as an agent reports it (config "host_name"; "" = gethostname()). */
  std::string host_name;
  IdentityConfig identity;
  std::vector<RetentionRule> retention;
  std::vector<Hold> holds;
  std::int64_t max_index_age_seconds = 86400;
  /** `index` keeps a source's items when more than this share of its files vanish in one run
      (config "max_removal_percent", 0..100; 100 = only when all vanish). See the removal guard. */
  std::uint32_t max_removal_percent = 50;
  ErasureConfig erasure;
  AccessInfo access;
  LimitsConfig limits;
  /** How long a closed request keeps its subject's identifiers in the register before
      `retention` replaces them by keyed hashes (config "requests.retention"; default 3y). */
  std::int64_t request_retention_seconds = 3 * 365 * 86400;
};

/**
 * Loads and validates a config file. JSON with // and block comments. Unknown keys are an
 * ErrorCode::config error naming the key, the file and the line:column.
 */
[[nodiscard]] Result<Config> load_config(const std::string &path);

/** Parses config text as if read from `path` (used by load_config and the tests). */
[[nodiscard]] Result<Config> parse_config(std::string_view text, const std::string &path);

/**
 * ErrorCode::cant_create when `path` (resolved as far as it exists, symlinks followed) is, lies
 * inside, or contains the root of a configured source: `what` ("export --out") names the path's
 * role in the message. Nothing of ours is ever written into a mail store.
 */
[[nodiscard]] Status check_outside_stores(const Config &config, const std::string &path,
                                          std::string_view what);

/** True for a real calendar date "YYYY-MM-DD" (2027-02-29 and 2027-13-45 are not). */
[[nodiscard]] bool is_calendar_date(std::string_view text);

/**
 * An operator's name as the four-eyes check and the audit log compare it: outer white space
 * trimmed, ASCII letters folded to lower case ("ANN", " ann " and "ann" are one person).
 */
[[nodiscard]] std::string normalise_operator(std::string_view name);

/** "90d", "12h", "30m", "45s", "2w" -> seconds. */
[[nodiscard]] Result<std::int64_t> parse_duration(std::string_view text);

/** Expands `{1}`, `{2}` … in `owner_template` from the texts matched by the pattern's `*`s. */
[[nodiscard]] std::string expand_owner(const std::string &owner_template,
                                       const std::vector<std::string> &captures);

/**
 * Expands a glob pattern with `*`, `?` and `[...]` (no `**`) into existing paths, sorted,
 * returning for each the texts that the `*` wildcards matched (for `{1}` owner templates).
 */
struct GlobMatch {
  std::string path;
  std::vector<std::string> captures;
};
[[nodiscard]] Result<std::vector<GlobMatch>> expand_glob(const std::string &pattern);

/** True when the absolute `path` is one that expand_glob(pattern) would list if it existed. */
[[nodiscard]] bool glob_matches(const std::string &pattern, const std::string &path);

} // namespace maildsar::core
