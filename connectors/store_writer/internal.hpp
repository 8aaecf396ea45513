// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// What the pieces of the store writer share; private to connectors/store_writer*.
//   ../store_writer.cpp  the public functions (connectors/store_writer.hpp), exceptions caught
//   locks.cpp            step hooks, errors, fcntl/flock locks, the dotlock, hashing, fsync
//   mbox_rewrite.cpp     the mbox rewrite; the range copier the log rewrite uses too
//   log_rewrite.cpp      line edits of plain and gzip logs
//   files.cpp            Maildir message lookup and copies, message-file removal and replacement

#include "connectors/store_writer.hpp"
#include "core/fs.hpp"
#include "core/result.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::connectors::store_writer_detail {

inline constexpr std::size_t k_copy_chunk = std::size_t{1} << 20; // 1 MiB buffers

// ---------------------------------------------------------------------------------------------
// Shared helpers (locks.cpp)

core::Status run_hook(const StepHook &hook, std::string_view step);

std::unexpected<core::Error> stale(std::string message);

std::unexpected<core::Error> sys_error(const std::string &what);

/** Opens an existing regular file for writing without following a symlink. */
core::Result<core::Fd> open_rw(const std::string &path);

/**
 * fcntl write lock on the whole file, polling (F_SETLK) until `wait` has passed: never an
 * unbounded F_SETLKW while we hold the dotlock that delivery agents wait for. Released when
 * the fd closes.
 */
core::Status fcntl_write_lock(int fd, const std::string &path, std::chrono::milliseconds wait);

/**
 * flock write lock (mail clients and MDAs configured for flock, e.g. Dovecot's
 * mbox_write_locks = flock), polling until `wait` has passed. Released when the fd closes.
 */
core::Status flock_write_lock(int fd, const std::string &path, std::chrono::milliseconds wait);

core::Status fsync_fd(int fd, const std::string &path);

/** SHA-256 of [offset, offset+length) of `fd`, streamed. */
core::Result<std::string> hash_range(int fd, std::uint64_t offset, std::uint64_t length,
                                     const std::string &path);

/** Gives the temp file the owner of the file it replaces (when permitted). */
core::Status copy_owner(int temp_fd, int like_fd, const std::string &temp_path);

/** Runs the hook; an abort leaves the temp file where it is, as a crash would. */
core::Status crash_point(const StepHook &hook, std::string_view step, core::NewFile *temp);

/** The dotlock `<mbox>.lock` (Postfix dot_lockfile order); members in locks.cpp. */
class Dotlock {
public:
  static core::Result<Dotlock> acquire(const std::string &mbox, const MboxLockOptions &options);

  Dotlock(Dotlock &&other) noexcept;
  Dotlock &operator=(Dotlock &&) = delete;
  Dotlock(const Dotlock &) = delete;
  Dotlock &operator=(const Dotlock &) = delete;
  ~Dotlock();

  /** Keeps the lock from looking stale during a long copy. */
  void refresh() const;

  /** Removes the lock file if it is still ours (not broken and replaced by someone else). */
  void release();

private:
  Dotlock(std::string lock, std::uint64_t dev, std::uint64_t ino, int slot);
  std::string m_lock;
  std::uint64_t m_dev = 0;
  std::uint64_t m_ino = 0;
  bool m_held = true;
  int m_slot = -1; // core::signal_cleanup slot: SIGTERM/SIGINT remove the lock too
};

// ---------------------------------------------------------------------------------------------
// Copying (mbox_rewrite.cpp; the log rewrite copies appended lines with it too)

/** Copies [offset, offset+length) of `in` to the current position of `out`. */
class RangeCopier {
public:
  RangeCopier(int in, int out, const std::string &in_path, const std::string &out_path,
              const Dotlock *lock)
      : m_in(in), m_out(out), m_in_path(in_path), m_out_path(out_path), m_lock(lock) {}

  core::Status copy(std::uint64_t offset, std::uint64_t length);

private:
  int m_in;
  int m_out;
  const std::string &m_in_path;
  const std::string &m_out_path;
  const Dotlock *m_lock;
  bool m_use_cfr = true;
  std::uint64_t m_since_refresh = 0;
};

/** Copies whatever was appended to `in` beyond `copied_end`; returns the new end. */
core::Result<std::uint64_t> copy_appended(RangeCopier &copier, int in, std::uint64_t copied_end,
                                          const std::string &path);

// ---------------------------------------------------------------------------------------------
// The bodies of the public functions (store_writer.hpp documents them)

core::Result<MboxRewrite> rewrite_mbox_impl(const std::string &path, std::span<const MboxCut> cuts,
                                            const StepHook &hook, const MboxLockOptions &options);

core::Result<LogRewrite> rewrite_log_impl(const std::string &path, std::span<const LineEdit> edits,
                                          const std::string &expected, const StepHook &hook);

core::Result<std::string> maildir_current_path_impl(const std::string &path);

core::Result<std::vector<std::string>> maildir_copies_impl(const std::string &root,
                                                           const std::string &sha256,
                                                           std::uint64_t size);

core::Status remove_message_file_impl(const std::string &path, const std::string &sha256,
                                      const StepHook &hook);

core::Result<std::string> replace_maildir_message_impl(const std::string &path, const std::string &sha256,
                                                       std::string_view bytes, const std::string &new_unique,
                                                       const StepHook &hook);

core::Status replace_message_file_impl(const std::string &path, const std::string &sha256, std::string_view bytes,
                                       const StepHook &hook);

} // namespace maildsar::connectors::store_writer_detail
