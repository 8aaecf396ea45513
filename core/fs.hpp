// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/result.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace maildsar::core {

/** Move-only owner of a file descriptor. */
class Fd {
public:
  Fd() = default;
  explicit Fd(int fd) : m_fd(fd) {}
  ~Fd();
  Fd(Fd &&other) noexcept : m_fd(other.release()) {}
  Fd &operator=(Fd &&other) noexcept;
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;

  [[nodiscard]] int get() const { return m_fd; }
  [[nodiscard]] explicit operator bool() const { return m_fd >= 0; }
  /** Gives up ownership; the caller closes the descriptor. */
  int release() {
    int fd = m_fd;
    m_fd = -1;
    return fd;
  }
  void close();

private:
  int m_fd = -1;
};

/** What we remember of a file to notice that it changed. */
struct FileStat {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint32_t mode = 0;
  std::uint64_t nlink = 0;

  friend bool operator==(const FileStat &, const FileStat &) = default;
};

/** lstat() of `path` (does not follow a final symlink). */
[[nodiscard]] Result<FileStat> lstat_file(const std::string &path);
/** fstat() of an open descriptor. */
[[nodiscard]] Result<FileStat> fstat_fd(int fd, const std::string &path_for_errors);

/** Opens a regular file read-only without following a final symlink (O_NOFOLLOW|O_CLOEXEC). */
[[nodiscard]] Result<Fd> open_read(const std::string &path);

/** Reads `length` bytes at `offset` (pread, retrying short reads). Fewer bytes only at EOF. */
[[nodiscard]] Result<std::string> read_range(int fd, std::uint64_t offset, std::uint64_t length,
                                             const std::string &path_for_errors);

/** Reads a whole regular file (refuses more than `max_bytes`). */
[[nodiscard]] Result<std::string> read_file(const std::string &path,
                                            std::uint64_t max_bytes = 1ULL << 30);

/** Writes `data` to `path` atomically: temp file in the same folder, fsync, rename, fsync dir. */
[[nodiscard]] Status write_file_atomic(const std::string &path, std::string_view data,
                                       std::uint32_t mode = 0600);

/** Writes all of `data` to `fd` (retrying short writes and EINTR). */
[[nodiscard]] Status write_all(int fd, std::string_view data, const std::string &path_for_errors);

/** The folder of `path` ("." for a bare name). */
[[nodiscard]] std::string parent_dir(const std::string &path);

/**
 * A file created beside its final name and published only when complete: writes go to
 * `.<name>.maildsar-tmp` in the same folder (a leftover one of an interrupted run is removed
 * first), then the temp file is renamed to the final name. Destroyed before that, it is
 * removed — unless keep_temp() said to leave it as a crash would (the next create removes it).
 */
class NewFile {
public:
  enum class Replace { no, yes };

  /** `.<name>.maildsar-tmp` beside `path`. */
  [[nodiscard]] static std::string temp_path_of(const std::string &path);
  /** Removes the temp file an interrupted run left beside `path` (logged); none is fine. */
  [[nodiscard]] static Status remove_leftover(const std::string &path);
  [[nodiscard]] static Result<NewFile> create(const std::string &path, std::uint32_t mode = 0600);

  NewFile(NewFile &&other) noexcept;
  NewFile &operator=(NewFile &&) = delete;
  NewFile(const NewFile &) = delete;
  NewFile &operator=(const NewFile &) = delete;
  ~NewFile();

  [[nodiscard]] Status write(std::string_view data);
  /** fsync of the temp file; afterwards its contents may be read back. */
  [[nodiscard]] Status sync();
  /**
   * Renames the temp file to the final name — over an existing file, or (Replace::no) never
   * replacing one (RENAME_NOREPLACE; ErrorCode::cant_create when it exists). The caller has
   * synced the file and fsyncs the folder afterwards.
   */
  [[nodiscard]] Status rename_into_place(Replace replace);
  /** sync + rename_into_place(Replace::no) + fsync of the folder. */
  [[nodiscard]] Status commit();
  /** Leaves the temp file where it is, as a crash at this point would. */
  void keep_temp() { m_armed = false; }
  [[nodiscard]] const std::string &temp_path() const { return m_temp; }
  [[nodiscard]] int fd() const { return m_fd.get(); }

private:
  NewFile(std::string path, std::string temp, Fd fd)
      : m_path(std::move(path)), m_temp(std::move(temp)), m_fd(std::move(fd)) {}
  std::string m_path;
  std::string m_temp;
  Fd m_fd;
  bool m_armed = true;
};

/**
 * Moves the regular file `from` to `to` (never replacing `to`, never following a symlink), so
 * that a crash at any point leaves it at one of the two names, complete: rename when both are
 * on one file system; else copy to a temp file beside `to` + fsync + rename + fsync, then unlink
 * `from` + fsync. When `to` already holds a complete copy (an interrupted earlier move: same
 * size and SHA-256), only `from` is removed.
 * @errors no_input when `from` is gone; cant_create when `to` exists with other contents.
 */
[[nodiscard]] Status move_file_durably(const std::string &from, const std::string &to);

/** SHA-256 of a whole file, streamed (opened without following a final symlink). */
[[nodiscard]] Result<std::string> sha256_file(const std::string &path);

/** fsync() of a directory, so that a rename inside it is durable. */
[[nodiscard]] Status fsync_dir(const std::string &dir);

/** Creates `dir` (and parents) and makes it mode 0700. */
[[nodiscard]] Status ensure_private_dir(const std::string &dir);

/** Maps an errno value to an ErrorCode (ENOENT -> no_input, EACCES -> permission, ...). */
[[nodiscard]] ErrorCode code_from_errno(int err);

/** "path: strerror(err)" as an Error with the matching code. */
[[nodiscard]] Error errno_error(const std::string &what, int err);

/**
 * An exclusive advisory lock (flock) on a lock file, held while the object lives.
 * `try_acquire` fails with ErrorCode::index_locked when another process holds it.
 */
class FileLock {
public:
  [[nodiscard]] static Result<FileLock> try_acquire(const std::string &path, std::string hint);
  FileLock(FileLock &&) noexcept = default;
  FileLock &operator=(FileLock &&) noexcept = default;
  ~FileLock() = default;

private:
  explicit FileLock(Fd fd) : m_fd(std::move(fd)) {}
  Fd m_fd;
};

/**
 * Files to remove if the process is stopped by SIGTERM, SIGINT or SIGHUP (lock files that would
 * otherwise block delivery agents until they are judged stale). The first registration installs
 * handlers that unlink every registered path (async-signal-safe) and then re-raise the signal
 * with its default action. At most 16 paths at a time, each shorter than PATH_MAX; beyond that
 * `register_path` returns -1 (the file is then only removed by the normal path). SIGKILL cannot
 * be caught: the dotlock writers also recognise a lock left by a dead maildsar process.
 */
namespace signal_cleanup {
/** @return a slot for unregister_path, or -1 when the table is full or the path too long. */
int register_path(const std::string &path);
void unregister_path(int slot);
} // namespace signal_cleanup

/** A temporary directory removed (recursively) when the object dies. */
class TempDir {
public:
  [[nodiscard]] static Result<TempDir> create(std::string_view prefix = "maildsar");
  TempDir(TempDir &&other) noexcept : m_path(std::move(other.m_path)) { other.m_path.clear(); }
  TempDir &operator=(TempDir &&) = delete;
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  ~TempDir();

  [[nodiscard]] const std::filesystem::path &path() const { return m_path; }

private:
  explicit TempDir(std::filesystem::path p) : m_path(std::move(p)) {}
  std::filesystem::path m_path;
};

} // namespace maildsar::core
