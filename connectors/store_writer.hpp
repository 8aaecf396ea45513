// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/result.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::connectors {

/**
 * The write side of the connectors: the destructive primitives that erasure/ journals and calls.
 * Every function leaves the store either as it was or completely changed (temp file + fsync +
 * rename + fsync of the directory), except the documented in-place log edit.
 *
 * Error codes (core/result.hpp has no not_found/conflict/unsupported/temporary codes):
 *  - the file is gone                    -> ErrorCode::no_input
 *  - the bytes changed since planning    -> ErrorCode::data with hint k_stale_hint (is_stale())
 *  - a lock is held too long             -> ErrorCode::temp_fail (exit 75)
 *  - bad arguments (overlapping cuts...) -> ErrorCode::data
 */

/** The hint of every "the item's bytes changed since planning" error (see is_stale). */
inline constexpr std::string_view k_stale_hint =
    "the item changed since the plan was made; re-run `maildsar plan`";

/** True for the error a stale item (bytes differ from the planned SHA-256) gives. */
[[nodiscard]] bool is_stale(const core::Error &error);

/**
 * Called at each crash-relevant step ("mbox:locked", "mbox:temp-written", "mbox:temp-synced",
 * "mbox:ready", "mbox:renamed", "mbox:dir-synced", "log:locked", "log:line-written", "log:synced",
 * "log:temp-written", "log:temp-synced", "log:renamed", "log:dir-synced", "file:verified",
 * "file:unlinked", "file:dir-synced"). Returning an error aborts right there, leaving the files
 * as a crash at that point would (a temp file stays; the next call removes it). Locks are
 * released (a real crash would leave a dotlock behind, broken after 300 s). An empty hook is
 * allowed.
 */
using StepHook = std::function<core::Status(std::string_view step)>;

/** One message to remove from an mbox (or to replace): its locator's range and the planned
    SHA-256. */
struct MboxCut {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::string sha256;
  /** nullopt: the range is removed; else these bytes take its place (a redacted message in its
      stored form: "From " line, quoted message, separating blank line). */
  std::optional<std::string> replacement = std::nullopt;
};

struct MboxRewrite {
  /** Per cut (in the caller's order): true = removed (or replaced); false = stale (bytes differ
      or the range is beyond the end of the file): left untouched. */
  std::vector<bool> removed;
  std::uint64_t size_before = 0; // size of the mbox when locked
  std::uint64_t size_after = 0;  // size of the new mbox (appended bytes included)
  bool rewritten = false;        // false when no cut matched: the file was not touched
};

/** Locking parameters of rewrite_mbox (defaults are those of delivery agents). */
struct MboxLockOptions {
  std::chrono::milliseconds dotlock_wait{30000};   // then ErrorCode::temp_fail
  std::chrono::seconds dotlock_stale_after{300};   // Postfix: a lock older than this is broken
  std::chrono::milliseconds lock_wait{30000};      // fcntl and flock each; then temp_fail
};

/**
 * Removes the cuts (whole messages: "From " line to the next separator, as the mbox connector's
 * locators give them) from an mbox file, or writes a cut's `replacement` in its place.
 *
 * Locks as delivery agents do: first the dotlock `<path>.lock` (a unique temp file linked to the
 * lock name; a lock older than 300 s or left by a dead maildsar process is broken; bounded
 * wait, then ErrorCode::temp_fail; removed on SIGTERM/SIGINT/SIGHUP too), then an fcntl write
 * lock and a flock on the mbox (opened O_RDWR|O_NOFOLLOW), each polled for at most
 * `lock_wait` (then temp_fail, the dotlock released). Each cut's bytes are
 * verified against its sha256 under the lock. Everything except the removed cuts is copied to
 * `.<name>.maildsar-tmp` in the same folder (a leftover one is removed first), with the mode and
 * (when permitted) owner of the mbox; bytes appended meanwhile by writers that ignore locks are
 * copied too; the temp is fsynced, renamed over the mbox, and the folder fsynced. On any error
 * the original is untouched and the temp removed. An mbox that becomes empty stays as an empty
 * file. When no cut matches, nothing is written (`rewritten` false).
 *
 * Known limit: a writer that locks (fcntl or flock, no dotlock) while we hold the locks and then
 * appends without checking that the path still names the file it locked writes to the replaced
 * inode; a writer must re-open the path when its inode changed while it waited.
 *
 * @errors ErrorCode::data for overlapping or empty cuts or a non-regular file; temp_fail when
 *         the dotlock stays held; no_input when the mbox is gone; io/permission/cant_create
 *         from the file system (ENOSPC, EFBIG).
 */
[[nodiscard]] core::Result<MboxRewrite> rewrite_mbox(const std::string &path,
                                                     std::span<const MboxCut> cuts,
                                                     const StepHook &hook);
[[nodiscard]] core::Result<MboxRewrite> rewrite_mbox(const std::string &path,
                                                     std::span<const MboxCut> cuts,
                                                     const StepHook &hook,
                                                     const MboxLockOptions &options);

/** One line of a log to change. */
struct LineEdit {
  std::uint64_t line = 0;                 // 1-based
  std::optional<std::string> replacement; // nullopt = delete the line; no '\n' inside
  /** Optional SHA-256 of this line's planned contents. When set, the line must hold either
      those contents or already its replacement (a resumed partial in-place edit). */
  std::string expected_sha256 = {};
};

struct LogRewrite {
  std::uint64_t lines_changed = 0;
  bool rewritten_in_place = false;
  /** In place: the byte offset of each line of the edit, written now or by an interrupted run
      (for the index, which then builds again only the log blocks that hold them:
      IndexOptions::edited_in_place). */
  std::vector<std::uint64_t> edited_offsets = {};
};

/**
 * Edits lines of a delivery log (lines split on '\n' exactly as the maillog connector does; a
 * line's '\r' is part of its contents).
 *
 * Plain file and every edit a same-length replacement: each line is pwritten in place under an
 * fcntl write lock, then fsync — the inode stays, so syslog's open descriptor keeps appending
 * safely; a line already equal to its replacement is skipped (a repeated run changes nothing).
 * Otherwise (gzip, deletions, length changes): the file is streamed into a temp file in the same
 * folder with the edits applied (gzip recompressed), fsynced, renamed over the log, folder
 * fsynced; the original is untouched on any error. Bytes appended while copying are copied too,
 * but a syslog daemon keeps writing to the replaced inode until it reopens its files: prefer
 * rewriting rotated logs.
 *
 * @param expected_lines_sha256 if non-empty: SHA-256 of the edited lines' current contents
 *        joined with '\n' in ascending line order; a mismatch gives a stale error (is_stale) and
 *        nothing changes — unless every line already holds its replacement (returns 0 changed).
 * @errors ErrorCode::data for a line beyond the end of the file, line 0, a duplicate line or a
 *         replacement with '\n'; stale (data + k_stale_hint) on a hash mismatch.
 */
[[nodiscard]] core::Result<LogRewrite> rewrite_log_lines(const std::string &path,
                                                         std::span<const LineEdit> edits,
                                                         const std::string &expected_lines_sha256,
                                                         const StepHook &hook);

/**
 * Deletes one message file (maildir message or quarantine file): opened O_NOFOLLOW, it must be a
 * regular file whose bytes hash to `sha256` (else a stale error, file untouched); then unlink and
 * fsync of the folder.
 * @errors no_input when the file is gone; data for a symlink or non-regular file; stale.
 */
[[nodiscard]] core::Status remove_message_file(const std::string &path, const std::string &sha256,
                                               const StepHook &hook);

/**
 * Replaces a Maildir message by new contents under a new name, the way a delivery agent writes
 * one: the bytes go to `<maildir>/tmp/<new_unique>` (mode of the old file, fsync), are linked
 * (never over an existing file) into the old file's folder (cur/ or new/) as `<new_unique>` plus
 * the old name's info part (":2,FLAGS": the flags stay), the folder is fsynced, then the old
 * file is unlinked (its contents checked against `sha256` first, wherever a flag change moved
 * it) and the folder fsynced again. A new name, because IMAP servers map names to UIDs and a
 * UID's contents never change: clients see the old message go and the new one come. A file
 * outside cur/ and new/ (stray, tmp/) is replaced under its own name (temp + fsync + rename).
 *
 * Idempotent, so an interrupted run resumes: when a file named `<new_unique>` is already in the
 * folder (linked before a crash), only the old file is removed; when the old file is gone and
 * the new one is there, nothing is done. Steps for the hook: "maildir:temp-synced",
 * "maildir:linked", "maildir:old-unlinked".
 *
 * @return the new file's path
 * @errors no_input when neither the old nor the new file exists; stale when the old file's
 *         contents changed; data for a symlink or non-regular file.
 */
[[nodiscard]] core::Result<std::string> replace_maildir_message(const std::string &path, const std::string &sha256,
                                                                std::string_view bytes,
                                                                const std::string &new_unique,
                                                                const StepHook &hook);

/**
 * Replaces a message file (quarantine, folder of loose messages) by new contents under the same
 * name: its contents checked against `sha256`, then temp file + fsync + rename + fsync of the
 * folder (mode and, when permitted, owner kept). Steps: "file:verified", "file:temp-synced",
 * "file:renamed".
 * @errors no_input when the file is gone; stale when its contents changed.
 */
[[nodiscard]] core::Status replace_message_file(const std::string &path, const std::string &sha256,
                                                std::string_view bytes, const StepHook &hook);

/**
 * Maildir: `path` itself when it exists; else, for a file of cur/, new/ or tmp/, the file of the
 * same folder (its cur/ and new/) with the same unique part (the basename before ':', or before
 * "!2," / ",2," as mu and Mailpile write it) — a flag change, a new/ -> cur/ move or a late
 * tmp/ -> new/ delivery renames the file. A stray file (outside cur/new/tmp) is only `path`.
 * @errors ErrorCode::no_input when no such file exists.
 */
[[nodiscard]] core::Result<std::string> maildir_current_path(const std::string &path);

/**
 * Every regular file under a Maildir root (all folders' cur/ and new/, never tmp/, no symlinks
 * followed) with the given size and SHA-256: the copies of one message. The file the caller
 * started from is included when it is still there; sorted.
 */
[[nodiscard]] core::Result<std::vector<std::string>>
maildir_copies(const std::string &maildir_root, const std::string &sha256, std::uint64_t size);

} // namespace maildsar::connectors
