// SPDX-License-Identifier: GPL-3.0-or-later
// The pieces every store writer shares: step hooks and crash points, the errors (stale item,
// system error, lock timeout), opening a store file for writing, the fcntl and flock write locks
// with bounded waits, fsync, hashing a byte range, the owner of a temp file, and the dotlock
// (Postfix's order: a unique file linked to `<path>.lock`, stale and orphaned locks broken).

#include "connectors/store_writer/internal.hpp"

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"

#include <csignal>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <thread>

namespace maildsar::connectors::store_writer_detail {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds k_dotlock_poll{50};

} // namespace

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

namespace {

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

} // namespace

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

core::Status copy_owner(int temp_fd, int like_fd, const std::string &temp_path) {
  struct stat st {};
  if (::fstat(like_fd, &st) == 0 && ::fchown(temp_fd, st.st_uid, st.st_gid) != 0 && errno != EPERM) {
    return sys_error(temp_path + ": fchown");
  }
  return {};
}

core::Status crash_point(const StepHook &hook, std::string_view step, core::NewFile *temp) {
  auto st = run_hook(hook, step);
  if (!st && temp != nullptr) {
    temp->keep_temp();
  }
  return st;
}

// ---------------------------------------------------------------------------------------------
// Dotlock (Postfix dot_lockfile order: unique file, link() to <path>.lock)

namespace {

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

} // namespace

core::Result<Dotlock> Dotlock::acquire(const std::string &mbox, const MboxLockOptions &options) {
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

Dotlock::Dotlock(Dotlock &&other) noexcept
    : m_lock(std::move(other.m_lock)), m_dev(other.m_dev), m_ino(other.m_ino),
      m_held(other.m_held), m_slot(other.m_slot) {
  other.m_held = false;
  other.m_slot = -1;
}

Dotlock::~Dotlock() { release(); }

void Dotlock::refresh() const {
  if (m_held) {
    ::utimensat(AT_FDCWD, m_lock.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);
  }
}

void Dotlock::release() {
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

Dotlock::Dotlock(std::string lock, std::uint64_t dev, std::uint64_t ino, int slot)
    : m_lock(std::move(lock)), m_dev(dev), m_ino(ino), m_slot(slot) {}

} // namespace maildsar::connectors::store_writer_detail
