// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/store_writer.hpp"

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"

#include <csignal>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <thread>

namespace maildsar::connectors {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::size_t k_copy_chunk = std::size_t{1} << 20;       // 1 MiB buffers
constexpr std::uint64_t k_refresh_every = 16ULL << 20;           // touch the dotlock every 16 MiB
constexpr std::chrono::milliseconds k_dotlock_poll{50};

core::Status run_hook(const StepHook &hook, std::string_view step) {
  if (!hook) {
    return {};
  }
  return hook(step);
}

std::unexpected<core::Error> stale(std::string message) {
  return std::unexpected(core::Error{core::ErrorCode::data, std::move(message),
                                     std::string(k_stale_hint), std::nullopt});
}

std::unexpected<core::Error> sys_error(const std::string &what) {
  return std::unexpected(core::errno_error(what, errno));
}

/** Opens an existing regular file for writing without following a symlink. */
core::Result<core::Fd> open_rw(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ELOOP) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("{}: is a symbolic link, not followed", path));
    }
    return std::unexpected(core::errno_error(path, err));
  }
  core::Fd out(fd);
  MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(out.get(), path));
  if (!S_ISREG(st.mode)) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: not a regular file", path));
  }
  return out;
}

constexpr std::chrono::milliseconds k_lock_poll{50};

/** The error of a lock that another program holds for longer than we wait (exit 75). */
std::unexpected<core::Error> lock_timeout(const std::string &path, std::string_view kind,
                                          std::chrono::milliseconds waited) {
  return std::unexpected(core::Error{
      core::ErrorCode::temp_fail,
      fmt::format("{}: locked by another program ({} lock held for more than {} ms); nothing "
                  "was changed",
                  path, kind, waited.count()),
      "a delivery agent or mail client holds the mailbox; run erase again later", std::nullopt});
}

/**
 * fcntl write lock on the whole file, polling (F_SETLK) until `wait` has passed: never an
 * unbounded F_SETLKW while we hold the dotlock that delivery agents wait for. Released when
 * the fd closes.
 */
core::Status fcntl_write_lock(int fd, const std::string &path, std::chrono::milliseconds wait) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;
  const auto deadline = Clock::now() + wait;
  while (::fcntl(fd, F_SETLK, &fl) != 0) {
    const int err = errno;
    if (err == EINTR) {
      continue;
    }
    if (err != EACCES && err != EAGAIN) {
      return std::unexpected(core::errno_error(path + ": fcntl lock", err));
    }
    if (Clock::now() >= deadline) {
      return lock_timeout(path, "fcntl", wait);
    }
    std::this_thread::sleep_for(k_lock_poll);
  }
  return {};
}

/**
 * flock write lock (mail clients and MDAs configured for flock, e.g. Dovecot's
 * mbox_write_locks = flock), polling until `wait` has passed. Released when the fd closes.
 */
core::Status flock_write_lock(int fd, const std::string &path, std::chrono::milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EINTR) {
      continue;
    }
    if (err != EWOULDBLOCK) {
      return std::unexpected(core::errno_error(path + ": flock", err));
    }
    if (Clock::now() >= deadline) {
      return lock_timeout(path, "flock", wait);
    }
    std::this_thread::sleep_for(k_lock_poll);
  }
  return {};
}

core::Status fsync_fd(int fd, const std::string &path) {
  if (::fsync(fd) != 0) {
    return sys_error(path + ": fsync");
  }
  return {};
}

/** SHA-256 of [offset, offset+length) of `fd`, streamed. */
core::Result<std::string> hash_range(int fd, std::uint64_t offset, std::uint64_t length,
                                     const std::string &path) {
  core::Sha256 h;
  std::uint64_t done = 0;
  while (done < length) {
    std::uint64_t n = std::min<std::uint64_t>(k_copy_chunk, length - done);
    MAILDSAR_TRY_ASSIGN(std::string part, core::read_range(fd, offset + done, n, path));
    if (part.empty()) {
      break;
    }
    h.update(part);
    done += part.size();
  }
  return h.hex_digest();
}

/** Gives the temp file the owner of the file it replaces (when permitted). */
core::Status copy_owner(int temp_fd, int like_fd, const std::string &temp_path) {
  struct stat st {};
  if (::fstat(like_fd, &st) == 0 && ::fchown(temp_fd, st.st_uid, st.st_gid) != 0 && errno != EPERM) {
    return sys_error(temp_path + ": fchown");
  }
  return {};
}

/** Runs the hook; an abort leaves the temp file where it is, as a crash would. */
core::Status crash_point(const StepHook &hook, std::string_view step, core::NewFile *temp) {
  auto st = run_hook(hook, step);
  if (!st && temp != nullptr) {
    temp->keep_temp();
  }
  return st;
}

// ---------------------------------------------------------------------------------------------
// Dotlock (Postfix dot_lockfile order: unique file, link() to <path>.lock)

/** True when `lock` was written by a maildsar process on this host that no longer runs. */
bool held_by_dead_maildsar(const std::string &lock, const std::string &host) {
  int fd = ::open(lock.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  core::Fd guard(fd);
  char buf[300] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  if (n <= 0) {
    return false;
  }
  std::string_view text(buf, static_cast<std::size_t>(n));
  if (!text.starts_with("maildsar ")) {
    return false;
  }
  text.remove_prefix(9);
  long pid = 0;
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    pid = pid * 10 + (text[i] - '0');
    ++i;
  }
  if (pid <= 0 || i >= text.size() || text[i] != ' ') {
    return false;
  }
  std::string_view rest = text.substr(i + 1);
  if (!rest.starts_with(host) || rest.substr(host.size()) != "\n") {
    return false; // another host (NFS): cannot tell whether it runs
  }
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

/** Removes the unique files `<lock>.<host>.<pid>.<n>` of killed maildsar runs on this host. */
void remove_orphans(const std::string &lock, const std::string &host) {
  const std::filesystem::path lock_path(lock);
  const std::string prefix = lock_path.filename().string() + "." + host + ".";
  std::error_code ec;
  for (const auto &entry : std::filesystem::directory_iterator(lock_path.parent_path(), ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(prefix)) {
      continue;
    }
    const std::string rest = name.substr(prefix.size());
    const std::size_t dot = rest.find('.');
    if (dot == std::string::npos || dot == 0) {
      continue;
    }
    long pid = 0;
    for (char c : rest.substr(0, dot)) {
      if (c < '0' || c > '9') {
        pid = -1;
        break;
      }
      pid = pid * 10 + (c - '0');
    }
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      ::unlink(entry.path().c_str());
    }
  }
}

class Dotlock {
public:
  static core::Result<Dotlock> acquire(const std::string &mbox, const MboxLockOptions &options) {
    static std::atomic<unsigned> counter{0};
    const std::string lock = mbox + ".lock";
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) {
      std::snprintf(host, sizeof host, "localhost");
    }
    const std::string unique = fmt::format("{}.{}.{}.{}", lock, host, ::getpid(), counter++);
    const std::string ours = fmt::format("maildsar {} {}\n", ::getpid(), host);
    remove_orphans(lock, host);
    const auto deadline = Clock::now() + options.dotlock_wait;
    {
      int fd = ::open(unique.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd < 0) {
        return std::unexpected(core::errno_error(unique + ": cannot create dotlock", errno));
      }
      core::Fd guard(fd);
      if (auto st = core::write_all(fd, ours, unique); !st) {
        ::unlink(unique.c_str());
        return std::unexpected(st.error());
      }
    }
    for (;;) {
      int rc = ::link(unique.c_str(), lock.c_str());
      int err = errno;
      if (rc != 0 && (err == EPERM || err == EOPNOTSUPP || err == ENOSYS)) {
        // no hard links here: exclusive create instead
        int fd = ::open(lock.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        rc = fd < 0 ? -1 : 0;
        err = errno;
        if (fd >= 0) {
          core::Fd guard(fd);
          (void)core::write_all(fd, ours, lock);
        }
      }
      if (rc == 0) {
        struct stat st {};
        if (::lstat(lock.c_str(), &st) != 0) {
          err = errno;
          ::unlink(unique.c_str());
          return std::unexpected(core::errno_error(lock, err));
        }
        ::unlink(unique.c_str());
        return Dotlock(lock, static_cast<std::uint64_t>(st.st_dev),
                       static_cast<std::uint64_t>(st.st_ino),
                       core::signal_cleanup::register_path(lock));
      }
      if (err != EEXIST) {
        ::unlink(unique.c_str());
        return std::unexpected(core::errno_error(lock + ": cannot create dotlock", err));
      }
      struct stat st {};
      if (::lstat(lock.c_str(), &st) == 0) {
        auto age = std::chrono::system_clock::now() -
                   std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec);
        if (held_by_dead_maildsar(lock, host)) {
          // Ours, left by a run that was killed: its process is gone, the lock is stale now.
          MAILDSAR_LOG_WARN("breaking dotlock {} left by a killed maildsar run", lock);
          ::unlink(lock.c_str());
          continue;
        }
        if (age > options.dotlock_stale_after) {
          MAILDSAR_LOG_WARN("breaking stale dotlock {} (older than {} s)", lock,
                            options.dotlock_stale_after.count());
          ::unlink(lock.c_str());
          continue;
        }
      }
      if (Clock::now() >= deadline) {
        ::unlink(unique.c_str());
        return core::fail(core::ErrorCode::temp_fail,
                          fmt::format("{}: locked by another program (dotlock {} held for more "
                                      "than {} ms)",
                                      mbox, lock, options.dotlock_wait.count()),
                          "a delivery agent or mail client holds the mailbox; try again later");
      }
      std::this_thread::sleep_for(k_dotlock_poll);
    }
  }

  Dotlock(Dotlock &&other) noexcept
      : m_lock(std::move(other.m_lock)), m_dev(other.m_dev), m_ino(other.m_ino),
        m_held(other.m_held), m_slot(other.m_slot) {
    other.m_held = false;
    other.m_slot = -1;
  }
  Dotlock &operator=(Dotlock &&) = delete;
  Dotlock(const Dotlock &) = delete;
  Dotlock &operator=(const Dotlock &) = delete;
  ~Dotlock() { release(); }

  /** Keeps the lock from looking stale during a long copy. */
  void refresh() const {
    if (m_held) {
      ::utimensat(AT_FDCWD, m_lock.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);
    }
  }

  /** Removes the lock file if it is still ours (not broken and replaced by someone else). */
  void release() {
    if (!m_held) {
      return;
    }
    m_held = false;
    core::signal_cleanup::unregister_path(m_slot);
    m_slot = -1;
    struct stat st {};
    if (::lstat(m_lock.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_dev) == m_dev &&
        static_cast<std::uint64_t>(st.st_ino) == m_ino) {
      ::unlink(m_lock.c_str());
    }
  }

private:
  Dotlock(std::string lock, std::uint64_t dev, std::uint64_t ino, int slot)
      : m_lock(std::move(lock)), m_dev(dev), m_ino(ino), m_slot(slot) {}
  std::string m_lock;
  std::uint64_t m_dev = 0;
  std::uint64_t m_ino = 0;
  bool m_held = true;
  int m_slot = -1; // core::signal_cleanup slot: SIGTERM/SIGINT remove the lock too
};

// ---------------------------------------------------------------------------------------------
// Copying

/** Copies [offset, offset+length) of `in` to the current position of `out`. */
class RangeCopier {
public:
  RangeCopier(int in, int out, const std::string &in_path, const std::string &out_path,
              const Dotlock *lock)
      : m_in(in), m_out(out), m_in_path(in_path), m_out_path(out_path), m_lock(lock) {}

  core::Status copy(std::uint64_t offset, std::uint64_t length) {
    while (length > 0) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length, k_copy_chunk));
      std::size_t got = 0;
      if (m_use_cfr) {
        auto off = static_cast<loff_t>(offset);
        ssize_t n = ::copy_file_range(m_in, &off, m_out, nullptr, want, 0);
        if (n < 0) {
          int err = errno;
          if (err == EINTR) {
            continue;
          }
          if (err == EXDEV || err == ENOSYS || err == EINVAL || err == EOPNOTSUPP) {
            m_use_cfr = false;
            continue;
          }
          return std::unexpected(core::errno_error(m_out_path, err));
        }
        if (n == 0) {
          return core::fail(core::ErrorCode::io,
                            fmt::format("{}: file shrank while copying (offset {})", m_in_path,
                                        offset));
        }
        got = static_cast<std::size_t>(n);
      } else {
        MAILDSAR_TRY_ASSIGN(std::string part, core::read_range(m_in, offset, want, m_in_path));
        if (part.empty()) {
          return core::fail(core::ErrorCode::io,
                            fmt::format("{}: file shrank while copying (offset {})", m_in_path,
                                        offset));
        }
        MAILDSAR_TRY(core::write_all(m_out, part, m_out_path));
        got = part.size();
      }
      offset += got;
      length -= got;
      m_since_refresh += got;
      if (m_since_refresh >= k_refresh_every && m_lock != nullptr) {
        m_lock->refresh();
        m_since_refresh = 0;
      }
    }
    return {};
  }

private:
  int m_in;
  int m_out;
  const std::string &m_in_path;
  const std::string &m_out_path;
  const Dotlock *m_lock;
  bool m_use_cfr = true;
  std::uint64_t m_since_refresh = 0;
};

core::Result<std::uint64_t> current_size(int fd, const std::string &path) {
  MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd, path));
  return st.size;
}

/** Copies whatever was appended to `in` beyond `copied_end`; returns the new end. */
core::Result<std::uint64_t> copy_appended(RangeCopier &copier, int in, std::uint64_t copied_end,
                                          const std::string &path) {
  for (;;) {
    MAILDSAR_TRY_ASSIGN(std::uint64_t size, current_size(in, path));
    if (size < copied_end) {
      return core::fail(core::ErrorCode::io,
                        fmt::format("{}: truncated by another program while being rewritten "
                                    "({} -> {} bytes); nothing changed",
                                    path, copied_end, size));
    }
    if (size == copied_end) {
      return copied_end;
    }
    MAILDSAR_TRY(copier.copy(copied_end, size - copied_end));
    copied_end = size;
  }
}

core::Result<MboxRewrite> rewrite_mbox_impl(const std::string &path, std::span<const MboxCut> cuts,
                                            const StepHook &hook, const MboxLockOptions &options) {
  std::vector<std::size_t> order(cuts.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return cuts[a].offset < cuts[b].offset; });
  for (std::size_t i = 0; i < order.size(); ++i) {
    const MboxCut &c = cuts[order[i]];
    if (c.length == 0 || c.sha256.empty()) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("mbox {}: cut at offset {} has no length or no SHA-256", path,
                                    c.offset));
    }
    if (i > 0) {
      const MboxCut &prev = cuts[order[i - 1]];
      if (prev.offset + prev.length > c.offset) {
        return core::fail(core::ErrorCode::data,
                          fmt::format("mbox {}: cuts at offsets {} and {} overlap", path,
                                      prev.offset, c.offset));
      }
    }
  }

  // The lock set (docs/operations.md): dotlock, then fcntl, then flock, each waited for at most
  // the configured time (then temp_fail, exit 75, with every lock taken so far released).
  MAILDSAR_TRY_ASSIGN(Dotlock dotlock, Dotlock::acquire(path, options));
  MAILDSAR_TRY_ASSIGN(core::Fd fd, open_rw(path));
  MAILDSAR_TRY(fcntl_write_lock(fd.get(), path, options.lock_wait));
  MAILDSAR_TRY(flock_write_lock(fd.get(), path, options.lock_wait));
  MAILDSAR_TRY(run_hook(hook, "mbox:locked"));

  const std::string temp_path = core::NewFile::temp_path_of(path);
  MAILDSAR_TRY(core::NewFile::remove_leftover(path));

  MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd.get(), path));
  MboxRewrite result;
  result.size_before = st.size;
  result.size_after = st.size;
  result.removed.assign(cuts.size(), false);
  std::uint64_t removed_bytes = 0;
  for (std::size_t i = 0; i < cuts.size(); ++i) {
    const MboxCut &c = cuts[i];
    if (c.offset > st.size || c.length > st.size - c.offset) {
      continue; // beyond the end: stale
    }
    MAILDSAR_TRY_ASSIGN(std::string sha, hash_range(fd.get(), c.offset, c.length, path));
    if (sha == c.sha256) {
      result.removed[i] = true;
      removed_bytes += c.length;
    }
  }
  if (removed_bytes == 0) {
    return result; // nothing of ours is there any more
  }

  MAILDSAR_TRY_ASSIGN(core::NewFile temp, core::NewFile::create(path, st.mode & 07777U));
  MAILDSAR_TRY(copy_owner(temp.fd(), fd.get(), temp_path));
  RangeCopier copier(fd.get(), temp.fd(), path, temp_path, &dotlock);
  std::uint64_t pos = 0;
  for (std::size_t i : order) {
    if (!result.removed[i]) {
      continue;
    }
    MAILDSAR_TRY(copier.copy(pos, cuts[i].offset - pos));
    pos = cuts[i].offset + cuts[i].length;
  }
  MAILDSAR_TRY(copier.copy(pos, st.size - pos));
  MAILDSAR_TRY_ASSIGN(std::uint64_t copied_end, copy_appended(copier, fd.get(), st.size, path));
  MAILDSAR_TRY(crash_point(hook, "mbox:temp-written", &temp));
  MAILDSAR_TRY(temp.sync());
  MAILDSAR_TRY(crash_point(hook, "mbox:temp-synced", &temp));
  // A last look for bytes appended by a writer that ignores locks, right before the rename.
  MAILDSAR_TRY_ASSIGN(std::uint64_t final_end, copy_appended(copier, fd.get(), copied_end, path));
  if (final_end != copied_end) {
    MAILDSAR_TRY(temp.sync());
  }
  MAILDSAR_TRY(crash_point(hook, "mbox:ready", &temp));
  MAILDSAR_TRY_ASSIGN(std::uint64_t temp_size, current_size(temp.fd(), temp_path));
  if (temp_size != final_end - removed_bytes) {
    return core::fail(core::ErrorCode::io,
                      fmt::format("mbox {}: the rewritten copy has {} bytes, expected {}; "
                                  "nothing changed",
                                  path, temp_size, final_end - removed_bytes));
  }
  if (auto renamed = temp.rename_into_place(core::NewFile::Replace::yes); !renamed) {
    return std::unexpected(renamed.error().with_context("mbox "));
  }
  MAILDSAR_TRY(run_hook(hook, "mbox:renamed"));
  MAILDSAR_TRY(core::fsync_dir(core::parent_dir(path)));
  MAILDSAR_TRY(run_hook(hook, "mbox:dir-synced"));
  result.size_after = temp_size;
  result.rewritten = true;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Logs

struct GzClose {
  void operator()(gzFile_s *f) const { gzclose(f); }
};

/** Reads a plain or gzip file from the start (plain: pread from a position we track). */
class ContentReader {
public:
  static core::Result<ContentReader> open(int fd, bool gzip, const std::string &path) {
    ContentReader r;
    r.m_fd = fd;
    r.m_path = path;
    if (gzip) {
      int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (dup < 0) {
        return sys_error(path + ": dup");
      }
      if (::lseek(dup, 0, SEEK_SET) < 0) {
        ::close(dup);
        return sys_error(path + ": lseek");
      }
      gzFile f = gzdopen(dup, "rb");
      if (f == nullptr) {
        ::close(dup);
        return core::fail(core::ErrorCode::io, path + ": cannot open gzip stream");
      }
      r.m_gz.reset(f);
    }
    return r;
  }

  /** Up to n bytes; empty = end. */
  core::Result<std::string_view> read(std::string &buf) {
    if (m_gz) {
      int got = gzread(m_gz.get(), buf.data(), static_cast<unsigned>(buf.size()));
      int errnum = Z_OK;
      const char *msg = gzerror(m_gz.get(), &errnum);
      if (got < 0 || (got == 0 && errnum != Z_OK)) {
        return core::fail(core::ErrorCode::data,
                          fmt::format("{}: compressed data truncated or corrupt ({})", m_path,
                                      msg != nullptr ? msg : "zlib error"));
      }
      return std::string_view(buf.data(), static_cast<std::size_t>(got));
    }
    for (;;) {
      ssize_t got = ::pread(m_fd, buf.data(), buf.size(), static_cast<off_t>(m_pos));
      if (got < 0) {
        if (errno == EINTR) {
          continue;
        }
        return sys_error(m_path);
      }
      m_pos += static_cast<std::uint64_t>(got);
      return std::string_view(buf.data(), static_cast<std::size_t>(got));
    }
  }

  [[nodiscard]] std::uint64_t position() const { return m_pos; }

private:
  ContentReader() = default;
  int m_fd = -1;
  std::string m_path;
  std::uint64_t m_pos = 0;
  std::unique_ptr<gzFile_s, GzClose> m_gz;
};

struct CurrentLine {
  std::uint64_t offset = 0; // plain files: byte offset of the line
  std::string content;
  bool complete = false; // seen (with or without a final newline)
};

/** The current contents (and plain offsets) of the wanted lines. */
core::Result<std::map<std::uint64_t, CurrentLine>>
read_lines(int fd, bool gzip, const std::string &path, std::span<const LineEdit> edits) {
  std::map<std::uint64_t, CurrentLine> lines;
  for (const auto &e : edits) {
    lines.emplace(e.line, CurrentLine{});
  }
  const std::uint64_t last = lines.rbegin()->first;
  MAILDSAR_TRY_ASSIGN(ContentReader reader, ContentReader::open(fd, gzip, path));
  std::string buf(k_copy_chunk, '\0');
  std::uint64_t line_no = 1;
  std::uint64_t offset = 0;
  bool in_line = false;
  auto current = lines.find(1);
  while (line_no <= last) {
    MAILDSAR_TRY_ASSIGN(std::string_view chunk, reader.read(buf));
    if (chunk.empty()) {
      break;
    }
    while (!chunk.empty() && line_no <= last) {
      std::size_t nl = chunk.find('\n');
      std::string_view part = chunk.substr(0, nl);
      if (current != lines.end()) {
        if (!in_line) {
          current->second.offset = offset;
        }
        current->second.content.append(part);
      }
      in_line = true;
      offset += part.size();
      if (nl == std::string_view::npos) {
        break;
      }
      if (current != lines.end()) {
        current->second.complete = true;
      }
      ++offset;
      ++line_no;
      in_line = false;
      current = lines.find(line_no);
      chunk.remove_prefix(nl + 1);
    }
  }
  if (in_line && current != lines.end()) {
    current->second.complete = true; // the last line has no newline
  }
  for (const auto &[n, l] : lines) {
    if (!l.complete) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("log {}: line {} is beyond the end of the file", path, n));
    }
  }
  return lines;
}

/** Output of the streamed log rewrite: plain buffered writes or gzip. */
class LogOutput {
public:
  LogOutput(int fd, bool gzip, const std::string &path) : m_fd(fd), m_path(path) {
    if (gzip) {
      m_gz_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (m_gz_fd >= 0) {
        m_gz = gzdopen(m_gz_fd, "wb");
      }
    }
    m_gzip = gzip;
    m_buf.reserve(k_copy_chunk);
  }
  LogOutput(const LogOutput &) = delete;
  LogOutput &operator=(const LogOutput &) = delete;
  ~LogOutput() {
    if (m_gz != nullptr) {
      gzclose(m_gz);
    } else if (m_gz_fd >= 0) {
      ::close(m_gz_fd);
    }
  }

  core::Status write(std::string_view data) {
    if (m_gzip && m_gz == nullptr) {
      return core::fail(core::ErrorCode::io, m_path + ": cannot open gzip output");
    }
    m_buf.append(data);
    if (m_buf.size() >= k_copy_chunk) {
      return flush();
    }
    return {};
  }

  core::Status finish() {
    MAILDSAR_TRY(flush());
    if (m_gz != nullptr) {
      int rc = gzclose(m_gz);
      m_gz = nullptr;
      m_gz_fd = -1;
      if (rc != Z_OK) {
        return core::fail(core::ErrorCode::io,
                          fmt::format("{}: gzip write failed ({})", m_path,
                                      rc == Z_ERRNO ? std::strerror(errno) : "zlib error"));
      }
    }
    return {};
  }

private:
  core::Status flush() {
    if (m_buf.empty()) {
      return {};
    }
    if (m_gz != nullptr) {
      int n = gzwrite(m_gz, m_buf.data(), static_cast<unsigned>(m_buf.size()));
      if (n <= 0) {
        int errnum = Z_OK;
        const char *msg = gzerror(m_gz, &errnum);
        return core::fail(core::ErrorCode::io,
                          fmt::format("{}: gzip write failed ({})", m_path,
                                      errnum == Z_ERRNO ? std::strerror(errno)
                                                        : (msg != nullptr ? msg : "zlib")));
      }
    } else {
      MAILDSAR_TRY(core::write_all(m_fd, m_buf, m_path));
    }
    m_buf.clear();
    return {};
  }

  int m_fd;
  const std::string &m_path;
  bool m_gzip = false;
  int m_gz_fd = -1;
  gzFile m_gz = nullptr;
  std::string m_buf;
};

/** Streams the log through the edits into `out`; returns the plain bytes read (for appends). */
core::Result<std::uint64_t> stream_edited(int fd, bool gzip, const std::string &path,
                                          const std::map<std::uint64_t, const LineEdit *> &edits,
                                          LogOutput &out) {
  MAILDSAR_TRY_ASSIGN(ContentReader reader, ContentReader::open(fd, gzip, path));
  std::string buf(k_copy_chunk, '\0');
  std::uint64_t line_no = 1;
  bool in_line = false;
  auto edit = edits.find(1);
  for (;;) {
    MAILDSAR_TRY_ASSIGN(std::string_view chunk, reader.read(buf));
    if (chunk.empty()) {
      break;
    }
    while (!chunk.empty()) {
      std::size_t nl = chunk.find('\n');
      std::string_view part = chunk.substr(0, nl);
      if (edit == edits.end()) {
        MAILDSAR_TRY(out.write(nl == std::string_view::npos ? part : chunk.substr(0, nl + 1)));
      }
      in_line = true;
      if (nl == std::string_view::npos) {
        break;
      }
      if (edit != edits.end() && edit->second->replacement) {
        MAILDSAR_TRY(out.write(*edit->second->replacement));
        MAILDSAR_TRY(out.write("\n"));
      }
      ++line_no;
      in_line = false;
      edit = edits.find(line_no);
      chunk.remove_prefix(nl + 1);
    }
  }
  if (in_line && edit != edits.end() && edit->second->replacement) {
    MAILDSAR_TRY(out.write(*edit->second->replacement)); // last line without a newline
  }
  return reader.position();
}

core::Result<LogRewrite> rewrite_log_impl(const std::string &path, std::span<const LineEdit> edits,
                                          const std::string &expected, const StepHook &hook) {
  if (edits.empty()) {
    return LogRewrite{};
  }
  std::map<std::uint64_t, const LineEdit *> by_line;
  for (const auto &e : edits) {
    if (e.line == 0) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("log {}: line number 0 (lines are 1-based)", path));
    }
    if (e.replacement && e.replacement->find('\n') != std::string::npos) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("log {}: the replacement of line {} holds a newline", path,
                                    e.line));
    }
    if (!by_line.emplace(e.line, &e).second) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("log {}: line {} is edited twice", path, e.line));
    }
  }

  MAILDSAR_TRY_ASSIGN(core::Fd fd, open_rw(path));
  MAILDSAR_TRY(fcntl_write_lock(fd.get(), path, MboxLockOptions{}.lock_wait));
  MAILDSAR_TRY(run_hook(hook, "log:locked"));
  MAILDSAR_TRY_ASSIGN(std::string magic, core::read_range(fd.get(), 0, 2, path));
  const bool gzip = magic == "\x1f\x8b";
  MAILDSAR_TRY_ASSIGN(auto current, read_lines(fd.get(), gzip, path, edits));

  bool all_done = true;
  bool same_length = true;
  bool all_lines_checked = true;
  for (const auto &[n, e] : by_line) {
    const std::string &now = current[n].content;
    bool done = e->replacement && *e->replacement == now;
    all_done = all_done && done;
    same_length = same_length && e->replacement && e->replacement->size() == now.size();
    if (e->expected_sha256.empty()) {
      all_lines_checked = false;
    } else if (!done && core::sha256_hex(now) != e->expected_sha256) {
      return stale(fmt::format("log {}: line {} changed since the plan was made", path, n));
    }
  }
  if (!expected.empty() && !all_done && !all_lines_checked) {
    core::Sha256 h;
    bool first = true;
    for (const auto &[n, line] : current) {
      if (!first) {
        h.update("\n");
      }
      first = false;
      h.update(line.content);
    }
    if (h.hex_digest() != expected) {
      return stale(fmt::format("log {}: the lines to edit changed since the plan was made", path));
    }
  }
  LogRewrite result;
  if (!gzip && (same_length || all_done)) {
    // every line of the edit, also those an interrupted run already wrote: the index has not
    // heard of those either
    for (const auto &[n, e] : by_line) {
      result.edited_offsets.push_back(current[n].offset);
    }
  }
  if (all_done) {
    result.rewritten_in_place = !gzip;
    return result;
  }

  if (!gzip && same_length) {
    result.rewritten_in_place = true;
    for (const auto &[n, e] : by_line) {
      const CurrentLine &line = current[n];
      if (*e->replacement == line.content) {
        continue;
      }
      const std::string &r = *e->replacement;
      std::size_t done = 0;
      while (done < r.size()) {
        ssize_t w = ::pwrite(fd.get(), r.data() + done, r.size() - done,
                             static_cast<off_t>(line.offset + done));
        if (w < 0) {
          if (errno == EINTR) {
            continue;
          }
          return sys_error(fmt::format("log {}: line {}", path, n));
        }
        done += static_cast<std::size_t>(w);
      }
      ++result.lines_changed;
      MAILDSAR_TRY(run_hook(hook, "log:line-written"));
    }
    MAILDSAR_TRY(fsync_fd(fd.get(), path));
    MAILDSAR_TRY(run_hook(hook, "log:synced"));
    return result;
  }

  for (const auto &[n, e] : by_line) {
    if (!e->replacement || *e->replacement != current[n].content) {
      ++result.lines_changed;
    }
  }
  const std::string temp_path = core::NewFile::temp_path_of(path);
  MAILDSAR_TRY(core::NewFile::remove_leftover(path));
  MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd.get(), path));
  MAILDSAR_TRY_ASSIGN(core::NewFile temp, core::NewFile::create(path, st.mode & 07777U));
  MAILDSAR_TRY(copy_owner(temp.fd(), fd.get(), temp_path));
  std::uint64_t read_end = 0;
  {
    LogOutput out(temp.fd(), gzip, temp_path);
    MAILDSAR_TRY_ASSIGN(read_end, stream_edited(fd.get(), gzip, path, by_line, out));
    MAILDSAR_TRY(out.finish());
  }
  MAILDSAR_TRY(crash_point(hook, "log:temp-written", &temp));
  MAILDSAR_TRY(temp.sync());
  MAILDSAR_TRY(crash_point(hook, "log:temp-synced", &temp));
  if (!gzip) {
    // lines syslog appended after our read: copied as they are, right before the rename
    if (::lseek(temp.fd(), 0, SEEK_END) < 0) {
      return sys_error(temp_path + ": lseek");
    }
    RangeCopier copier(fd.get(), temp.fd(), path, temp_path, nullptr);
    MAILDSAR_TRY_ASSIGN(std::uint64_t end, copy_appended(copier, fd.get(), read_end, path));
    if (end != read_end) {
      MAILDSAR_TRY(temp.sync());
    }
  }
  if (auto renamed = temp.rename_into_place(core::NewFile::Replace::yes); !renamed) {
    return std::unexpected(renamed.error().with_context("log "));
  }
  MAILDSAR_TRY(run_hook(hook, "log:renamed"));
  MAILDSAR_TRY(core::fsync_dir(core::parent_dir(path)));
  MAILDSAR_TRY(run_hook(hook, "log:dir-synced"));
  return result;
}

// ---------------------------------------------------------------------------------------------
// Maildir

/** The unique part of a maildir file name: before ':' (or mu's "!2,", Mailpile's ",2,"). */
std::string maildir_unique(std::string_view name) {
  for (std::string_view sep : {std::string_view(":"), std::string_view("!2,"),
                               std::string_view(",2,")}) {
    std::size_t at = name.find(sep);
    if (at != std::string_view::npos && at > 0) {
      return std::string(name.substr(0, at));
    }
  }
  return std::string(name);
}

bool is_regular_no_follow(const fs::path &p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

core::Result<std::string> maildir_current_path_impl(const std::string &path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    return path;
  }
  if (errno != ENOENT) {
    return sys_error(path);
  }
  fs::path p(path);
  fs::path sub = p.parent_path();
  std::string sub_name = sub.filename().string();
  // A file of cur/ or new/ may have been renamed (flags, new/ -> cur/); an abandoned delivery
  // in tmp/ may have been completed late (tmp/ -> new/). A stray file never moves.
  if (sub_name != "cur" && sub_name != "new" && sub_name != "tmp") {
    return core::fail(core::ErrorCode::no_input,
                      fmt::format("{}: no such file (and not in a maildir cur/, new/ or tmp/)", path));
  }
  const std::string unique = maildir_unique(p.filename().string());
  std::vector<std::string> found;
  for (const char *dir : {"cur", "new"}) {
    std::error_code ec;
    fs::directory_iterator it(sub.parent_path() / dir, ec);
    if (ec) {
      continue;
    }
    for (const auto &entry : it) {
      std::string name = entry.path().filename().string();
      if (maildir_unique(name) == unique && is_regular_no_follow(entry.path())) {
        found.push_back(entry.path().string());
      }
    }
  }
  if (found.empty()) {
    return core::fail(core::ErrorCode::no_input,
                      fmt::format("{}: no such file, and no file with its unique name {} in "
                                  "cur/ or new/",
                                  path, unique));
  }
  std::sort(found.begin(), found.end());
  return found.front();
}

core::Result<std::vector<std::string>> maildir_copies_impl(const std::string &root,
                                                           const std::string &sha256,
                                                           std::uint64_t size) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  if (ec) {
    return std::unexpected(core::errno_error(root, ec.value()));
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      return std::unexpected(core::errno_error(root, ec.value()));
    }
    const fs::directory_entry &entry = *it;
    std::error_code sec;
    fs::file_status status = entry.symlink_status(sec);
    if (sec) {
      continue;
    }
    std::string name = entry.path().filename().string();
    if (fs::is_directory(status)) {
      if (name == "tmp") {
        it.disable_recursion_pending();
      }
      continue;
    }
    std::string parent = entry.path().parent_path().filename().string();
    if (!fs::is_regular_file(status) || (parent != "cur" && parent != "new")) {
      continue;
    }
    std::error_code zec;
    std::uintmax_t file_size = entry.file_size(zec);
    if (zec || file_size != size) {
      continue;
    }
    auto fd = core::open_read(entry.path().string());
    if (!fd) {
      continue; // vanished or became a symlink meanwhile
    }
    MAILDSAR_TRY_ASSIGN(std::string sha, hash_range(fd->get(), 0, size, entry.path().string()));
    if (sha == sha256) {
      out.push_back(entry.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

core::Status remove_message_file_impl(const std::string &path, const std::string &sha256,
                                      const StepHook &hook) {
  MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(path));
  MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd.get(), path));
  if (!S_ISREG(st.mode)) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: not a regular file", path));
  }
  MAILDSAR_TRY_ASSIGN(std::string sha, hash_range(fd.get(), 0, st.size, path));
  if (sha != sha256) {
    return stale(fmt::format("{}: the file's contents changed since the plan was made", path));
  }
  // the name must still be the file we verified (not replaced meanwhile)
  MAILDSAR_TRY_ASSIGN(core::FileStat now, core::lstat_file(path));
  if (now.dev != st.dev || now.ino != st.ino) {
    return stale(fmt::format("{}: the file was replaced while it was being verified", path));
  }
  MAILDSAR_TRY(run_hook(hook, "file:verified"));
  if (::unlink(path.c_str()) != 0) {
    return sys_error(path + ": unlink");
  }
  MAILDSAR_TRY(run_hook(hook, "file:unlinked"));
  MAILDSAR_TRY(core::fsync_dir(core::parent_dir(path)));
  return run_hook(hook, "file:dir-synced");
}

template <class F> auto guarded(const std::string &context, F &&f) -> decltype(f()) {
  try {
    return f();
  } catch (...) {
    return std::unexpected(core::error_from_current_exception(context));
  }
}

} // namespace

bool is_stale(const core::Error &error) {
  return error.code == core::ErrorCode::data && error.hint == k_stale_hint;
}

core::Result<MboxRewrite> rewrite_mbox(const std::string &path, std::span<const MboxCut> cuts,
                                       const StepHook &hook) {
  return rewrite_mbox(path, cuts, hook, MboxLockOptions{});
}

core::Result<MboxRewrite> rewrite_mbox(const std::string &path, std::span<const MboxCut> cuts,
                                       const StepHook &hook, const MboxLockOptions &options) {
  return guarded("mbox " + path + ": ",
                 [&] { return rewrite_mbox_impl(path, cuts, hook, options); });
}

core::Result<LogRewrite> rewrite_log_lines(const std::string &path, std::span<const LineEdit> edits,
                                           const std::string &expected_lines_sha256,
                                           const StepHook &hook) {
  return guarded("log " + path + ": ",
                 [&] { return rewrite_log_impl(path, edits, expected_lines_sha256, hook); });
}

core::Status remove_message_file(const std::string &path, const std::string &sha256,
                                 const StepHook &hook) {
  return guarded(path + ": ", [&] { return remove_message_file_impl(path, sha256, hook); });
}

core::Result<std::string> maildir_current_path(const std::string &path) {
  return guarded(path + ": ", [&] { return maildir_current_path_impl(path); });
}

core::Result<std::vector<std::string>> maildir_copies(const std::string &maildir_root,
                                                      const std::string &sha256,
                                                      std::uint64_t size) {
  return guarded(maildir_root + ": ",
                 [&] { return maildir_copies_impl(maildir_root, sha256, size); });
}

} // namespace maildsar::connectors
