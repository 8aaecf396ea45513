// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/result.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::core {

/** File names inside the state directory. */
inline constexpr std::string_view k_audit_log_file = "audit.log";
inline constexpr std::string_view k_audit_head_file = "audit.head";
/** The `prev` of the first record. */
inline constexpr std::string_view k_audit_genesis =
    "0000000000000000000000000000000000000000000000000000000000000000";

/** One line of the audit log. */
struct AuditRecord {
  std::uint64_t seq = 0;
  std::string time; // UTC, "2026-11-28T20:00:00Z"
  std::string operator_name;
  /** The OS account that ran it, when that is not the operator's own name (a service account
      acting for a person, config erasure.act_for_others): "os_user" in the log, absent otherwise. */
  std::string os_user;
  std::string action;
  std::string request;
  nlohmann::json details = nlohmann::json::object();
  std::string prev; // hex hash of the previous record (k_audit_genesis for the first)
  std::string hash; // hex SHA-256 of canonical_json() (the record without "hash")

  /** The JSON object as stored, with "hash" (one line of the log, without the newline). */
  [[nodiscard]] nlohmann::json to_json() const;
  /** The bytes the hash covers: the object without "hash", dumped with sorted keys. */
  [[nodiscard]] std::string canonical_json() const;
};

/** The first bad record found by AuditLog::verify(). */
struct AuditProblem {
  std::uint64_t line = 0; // 1-based line of the log (the last line + 1 for a problem at the end)
  std::uint64_t seq = 0;  // seq of the bad record as far as known (0 = unknown)
  std::string cause;
};

/**
 * The append-only, hash-chained audit log (DESIGN §5): `<state_dir>/audit.log`, JSON Lines, one
 * record per line, each holding the hash of the previous one, and `<state_dir>/audit.head`
 * holding the seq and hash of the last record (so that removing the last records is detected
 * too). Appends hold an exclusive flock on the log; readers a shared one. Files are 0600.
 *
 * The chain is not keyed: it makes accidental or partial edits evident, and a deliberate forger
 * has to rewrite every later record and the head. Ship the head hash elsewhere for more.
 *
 * A crash between writing a record and updating the head leaves them disagreeing; appends then
 * refuse (ErrorCode::data) and `verify` reports the head mismatch, for a person to inspect.
 */
class AuditLog {
public:
  /** Creates the state directory (0700) if needed; the log itself appears with the first append. */
  [[nodiscard]] static Result<AuditLog> open(const std::string &state_dir);

  /**
   * Appends a record and returns it (with seq, time, prev and hash).
   * `details` must hold no identities in clear (callers use core::keyed_hash). The OS account
   * running the process is recorded as "os_user" when its name is not `operator_name`.
   * @errors ErrorCode::data when the log's last record does not parse or does not match
   *         audit.head (run `maildsar audit verify`); io/permission errors from the file system.
   */
  [[nodiscard]] Result<AuditRecord> append(std::string_view action, std::string_view operator_name,
                                           std::string_view request,
                                           const nlohmann::json &details);

  /** Every record in order (an absent log is empty). ErrorCode::data on an unparseable line. */
  [[nodiscard]] Result<std::vector<AuditRecord>> records() const;

  /**
   * Checks the whole chain. nullopt = intact. Detects edited bytes (hash mismatch, unparseable
   * line), removed records (seq gap, prev mismatch, head mismatch), reordering, truncation and
   * appended records whose chain does not link. An absent log without a head is intact.
   */
  [[nodiscard]] Result<std::optional<AuditProblem>> verify() const;

  [[nodiscard]] const std::string &log_path() const { return m_log_path; }
  [[nodiscard]] const std::string &head_path() const { return m_head_path; }

private:
  AuditLog(std::string log_path, std::string head_path)
      : m_log_path(std::move(log_path)), m_head_path(std::move(head_path)) {}
  std::string m_log_path;
  std::string m_head_path;
};

/** Parses one log line into a record (no hash check). ErrorCode::data with the cause. */
[[nodiscard]] Result<AuditRecord> parse_audit_record(std::string_view line);

} // namespace maildsar::core
