// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <mutex>
#include <pthread.h>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace maildsar::core {

Fd::~Fd() { close(); }

Fd &Fd::operator=(Fd &&other) noexcept {
  if (this != &other) {
    close();
    m_fd = other.release();
  }
  return *this;
}

void Fd::close() {
  if (m_fd >= 0) {
    ::close(m_fd);
    m_fd = -1;
  }
}

ErrorCode code_from_errno(int err) {
  switch (err) {
  case ENOENT:
  case ENOTDIR:
    return ErrorCode::no_input;
  case EACCES:
  case EPERM:
    return ErrorCode::permission;
  case EWOULDBLOCK:
    return ErrorCode::temp_fail;
  default:
    return ErrorCode::io;
  }
}

Error errno_error(const std::string &what, int err) {
  return Error{code_from_errno(err), fmt::format("{}: {}", what, std::strerror(err))};
}

namespace {

FileStat from_stat(const struct stat &st) {
  FileStat fs;
  fs.dev = static_cast<std::uint64_t>(st.st_dev);
  fs.ino = static_cast<std::uint64_t>(st.st_ino);
  fs.size = static_cast<std::uint64_t>(st.st_size);
  fs.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL +
                static_cast<std::int64_t>(st.st_mtim.tv_nsec);
  fs.mode = static_cast<std::uint32_t>(st.st_mode);
  fs.nlink = static_cast<std::uint64_t>(st.st_nlink);
  return fs;
}

} // namespace

Result<FileStat> lstat_file(const std::string &path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return std::unexpected(errno_error(path, errno));
  }
  return from_stat(st);
}

Result<FileStat> fstat_fd(int fd, const std::string &path_for_errors) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return std::unexpected(errno_error(path_for_errors, errno));
  }
  return from_stat(st);
}

Result<Fd> open_read(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ELOOP) {
      return fail(ErrorCode::permission, fmt::format("{}: is a symbolic link, not followed", path));
    }
    return std::unexpected(errno_error(path, err));
  }
  return Fd(fd);
}

Result<std::string> read_range(int fd, std::uint64_t offset, std::uint64_t length,
                               const std::string &path_for_errors) {
  std::string out;
  out.resize(length);
  std::uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return std::unexpected(
          errno_error(fmt::format("{} (offset {})", path_for_errors, offset + done), errno));
    }
    if (n == 0) {
      break;
    }
    done += static_cast<std::uint64_t>(n);
  }
  out.resize(done);
  return out;
}

Result<std::string> read_file(const std::string &path, std::uint64_t max_bytes) {
  MAILDSAR_TRY_ASSIGN(Fd fd, open_read(path));
  MAILDSAR_TRY_ASSIGN(FileStat st, fstat_fd(fd.get(), path));
  if (!S_ISREG(st.mode)) {
    return fail(ErrorCode::data, fmt::format("{}: not a regular file", path));
  }
  if (st.size > max_bytes) {
    return fail(ErrorCode::data,
                fmt::format("{}: file of {} bytes exceeds the limit of {}", path, st.size, max_bytes));
  }
  return read_range(fd.get(), 0, st.size, path);
}

Status fsync_dir(const std::string &dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return std::unexpected(errno_error(dir, errno));
  }
  Fd guard(fd);
  if (::fsync(fd) != 0) {
    return std::unexpected(errno_error(dir, errno));
  }
  return {};
}

Status write_all(int fd, std::string_view data, const std::string &path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return std::unexpected(errno_error(path, errno));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

std::string parent_dir(const std::string &path) {
  std::filesystem::path p(path);
  return p.parent_path().empty() ? std::string(".") : p.parent_path().string();
}

namespace {

/**
 * "." + name + suffix, built by appending: GCC 12 at -O3 reports a false -Wrestrict overlap
 * inside `"." + std::string` (operator+(const char*, string&&) inlines an insert at position 0).
 */
std::string hidden_name(std::string_view name, std::string_view suffix) {
  std::string out;
  out.reserve(1 + name.size() + suffix.size());
  out.push_back('.');
  out.append(name);
  out.append(suffix);
  return out;
}

} // namespace

Status write_file_atomic(const std::string &path, std::string_view data, std::uint32_t mode) {
  std::filesystem::path p(path);
  const std::string dir = parent_dir(path);
  std::string tmpl = (std::filesystem::path(dir) / hidden_name(p.filename().string(), ".XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = ::mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0) {
    Error e = errno_error(path, errno);
    e.code = ErrorCode::cant_create;
    return std::unexpected(e);
  }
  Fd guard(fd);
  std::string tmp(buf.data());
  auto cleanup_fail = [&](Error e) {
    ::unlink(tmp.c_str());
    if (e.code == ErrorCode::io || e.code == ErrorCode::no_input) {
      e.code = ErrorCode::cant_create;
    }
    return std::unexpected(e);
  };
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    return cleanup_fail(errno_error(path, errno));
  }
  if (auto written = write_all(fd, data, path); !written) {
    return cleanup_fail(written.error());
  }
  if (::fsync(fd) != 0) {
    return cleanup_fail(errno_error(path, errno));
  }
  guard.close();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return cleanup_fail(errno_error(path, errno));
  }
  return fsync_dir(dir);
}

namespace {

/** Reads `fd` to its end in 1 MiB chunks, handing each to `sink`. */
template <class Sink> Status read_chunks(int fd, const std::string &path, Sink &&sink) {
  std::string buf(1U << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return std::unexpected(errno_error(path, errno));
    }
    if (n == 0) {
      return {};
    }
    MAILDSAR_TRY(sink(std::string_view(buf.data(), static_cast<std::size_t>(n))));
  }
}

} // namespace

std::string NewFile::temp_path_of(const std::string &path) {
  return (std::filesystem::path(parent_dir(path)) /
          hidden_name(std::filesystem::path(path).filename().string(), ".maildsar-tmp"))
      .string();
}

Status NewFile::remove_leftover(const std::string &path) {
  const std::string temp = temp_path_of(path);
  if (::unlink(temp.c_str()) == 0) {
    MAILDSAR_LOG_WARN("removed the temp file {} of an interrupted run", temp);
    return {};
  }
  if (errno == ENOENT) {
    return {};
  }
  return std::unexpected(errno_error(temp + ": cannot remove leftover temp file", errno));
}

Result<NewFile> NewFile::create(const std::string &path, std::uint32_t mode) {
  MAILDSAR_TRY(remove_leftover(path));
  const std::string temp = temp_path_of(path);
  int fd = ::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) {
    Error e = errno_error(temp, errno);
    e.code = e.code == ErrorCode::permission ? e.code : ErrorCode::cant_create;
    return std::unexpected(e);
  }
  NewFile file(path, temp, Fd(fd));
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    return std::unexpected(errno_error(temp + ": fchmod", errno)); // the destructor removes it
  }
  return file;
}

NewFile::NewFile(NewFile &&other) noexcept
    : m_path(std::move(other.m_path)), m_temp(std::move(other.m_temp)), m_fd(std::move(other.m_fd)),
      m_armed(other.m_armed) {
  other.m_armed = false; // the moved-from object removes nothing
}

NewFile::~NewFile() {
  if (m_armed && !m_temp.empty()) {
    ::unlink(m_temp.c_str());
  }
}

Status NewFile::write(std::string_view data) { return write_all(m_fd.get(), data, m_temp); }

Status NewFile::sync() {
  if (::fsync(m_fd.get()) != 0) {
    return std::unexpected(errno_error(m_temp, errno));
  }
  return {};
}

Status NewFile::rename_into_place(Replace replace) {
  const int r = replace == Replace::yes
                    ? ::rename(m_temp.c_str(), m_path.c_str())
                    : ::renameat2(AT_FDCWD, m_temp.c_str(), AT_FDCWD, m_path.c_str(), RENAME_NOREPLACE);
  if (r != 0) {
    const int err = errno;
    if (err == EEXIST) {
      return fail(ErrorCode::cant_create, m_path + ": exists; not replaced");
    }
    return std::unexpected(errno_error(fmt::format("{}: rename of {}", m_path, m_temp), err));
  }
  m_armed = false;
  return {};
}

Status NewFile::commit() {
  MAILDSAR_TRY(sync());
  MAILDSAR_TRY(rename_into_place(Replace::no));
  m_fd.close();
  return fsync_dir(parent_dir(m_path));
}

Result<std::string> sha256_file(const std::string &path) {
  MAILDSAR_TRY_ASSIGN(Fd fd, open_read(path));
  Sha256 h;
  MAILDSAR_TRY(read_chunks(fd.get(), path, [&](std::string_view chunk) -> Status {
    h.update(chunk);
    return {};
  }));
  return h.hex_digest();
}

Status move_file_durably(const std::string &from, const std::string &to) {
  MAILDSAR_TRY_ASSIGN(FileStat src, lstat_file(from));
  if ((src.mode & S_IFMT) != S_IFREG) {
    return fail(ErrorCode::data, from + ": not a regular file; not moved");
  }
  if (auto existing = lstat_file(to)) {
    // An earlier move copied it completely but was interrupted before removing the source.
    MAILDSAR_TRY_ASSIGN(std::string a, sha256_file(from));
    MAILDSAR_TRY_ASSIGN(std::string b, sha256_file(to));
    if ((existing->mode & S_IFMT) != S_IFREG || existing->size != src.size || a != b) {
      return fail(ErrorCode::cant_create, to + ": exists with other contents; " + from + " not moved");
    }
  } else if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    MAILDSAR_TRY(fsync_dir(parent_dir(to)));
    return fsync_dir(parent_dir(from));
  } else if (errno != EXDEV) {
    return std::unexpected(errno_error(from + " -> " + to, errno));
  } else {
    MAILDSAR_TRY_ASSIGN(Fd in, open_read(from));
    MAILDSAR_TRY_ASSIGN(NewFile out, NewFile::create(to, src.mode & 07777));
    MAILDSAR_TRY(read_chunks(in.get(), from, [&](std::string_view chunk) { return out.write(chunk); }));
    MAILDSAR_TRY(out.commit());
  }
  if (::unlink(from.c_str()) != 0 && errno != ENOENT) {
    return std::unexpected(errno_error(from, errno));
  }
  return fsync_dir(parent_dir(from));
}

Status ensure_private_dir(const std::string &dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return fail(ErrorCode::cant_create, fmt::format("{}: {}", dir, ec.message()));
  }
  if (::chmod(dir.c_str(), 0700) != 0) {
    return std::unexpected(errno_error(dir, errno));
  }
  return {};
}

namespace signal_cleanup {
namespace {

constexpr std::size_t k_slots = 16;
constexpr std::size_t k_path_max = 4096;
// Written only with the signals blocked; read by the handler.
char g_paths[k_slots][k_path_max];
volatile std::sig_atomic_t g_used[k_slots];
std::once_flag g_installed;

extern "C" void on_signal(int sig) {
  for (std::size_t i = 0; i < k_slots; ++i) {
    if (g_used[i] != 0) {
      ::unlink(g_paths[i]);
    }
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig);
}

/** Blocks the handled signals while the table changes. */
class Blocked {
public:
  Blocked() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
      sigaddset(&set, sig);
    }
    ::pthread_sigmask(SIG_BLOCK, &set, &m_old);
  }
  ~Blocked() { ::pthread_sigmask(SIG_SETMASK, &m_old, nullptr); }
  Blocked(const Blocked &) = delete;
  Blocked &operator=(const Blocked &) = delete;

private:
  sigset_t m_old{};
};

} // namespace

int register_path(const std::string &path) {
  std::call_once(g_installed, [] {
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
      struct sigaction old {};
      ::sigaction(sig, nullptr, &old);
      if (old.sa_handler == SIG_IGN) {
        continue; // e.g. nohup: leave ignored signals ignored
      }
      struct sigaction sa {};
      sa.sa_handler = on_signal;
      sigemptyset(&sa.sa_mask);
      ::sigaction(sig, &sa, nullptr);
    }
  });
  if (path.size() + 1 > k_path_max) {
    return -1;
  }
  Blocked blocked;
  for (std::size_t i = 0; i < k_slots; ++i) {
    if (g_used[i] == 0) {
      std::memcpy(g_paths[i], path.c_str(), path.size() + 1);
      g_used[i] = 1;
      return static_cast<int>(i);
    }
  }
  return -1;
}

void unregister_path(int slot) {
  if (slot < 0 || static_cast<std::size_t>(slot) >= k_slots) {
    return;
  }
  Blocked blocked;
  g_used[slot] = 0;
}

} // namespace signal_cleanup

Result<FileLock> FileLock::try_acquire(const std::string &path, std::string hint) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return std::unexpected(errno_error(path, errno));
  }
  Fd guard(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err == EWOULDBLOCK) {
      return std::unexpected(Error{ErrorCode::index_locked,
                                   fmt::format("{}: locked by another process", path),
                                   std::move(hint), std::nullopt});
    }
    return std::unexpected(errno_error(path, err));
  }
  return FileLock(std::move(guard));
}

Result<TempDir> TempDir::create(std::string_view prefix) {
  std::error_code ec;
  auto base = std::filesystem::temp_directory_path(ec);
  if (ec) {
    base = "/tmp";
  }
  std::string tmpl = (base / (std::string(prefix) + ".XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    return std::unexpected(errno_error(tmpl, errno));
  }
  return TempDir(std::filesystem::path(buf.data()));
}

TempDir::~TempDir() {
  if (!m_path.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
  }
}

} // namespace maildsar::core
