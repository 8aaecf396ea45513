// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/secret.hpp"

#include "core/fs.hpp"
#include "core/hash.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

namespace maildsar::core {

namespace {

/** Fills `out` from the kernel's CSPRNG (getrandom(2): blocks only until it is first seeded). */
Status random_bytes(char *out, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::getrandom(out + done, size - done, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail(ErrorCode::internal, fmt::format("getrandom: {}: cannot create the secret key", std::strerror(errno)));
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

/** Reads and checks an existing key file; nullopt when it does not exist. */
Result<std::optional<std::string>> read_existing(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return std::optional<std::string>{};
    }
    if (err == ELOOP) {
      return fail(ErrorCode::permission,
                  fmt::format("{}: is a symbolic link; the secret key must be a plain file", path));
    }
    return std::unexpected(errno_error(path, err));
  }
  Fd guard(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return std::unexpected(errno_error(path, errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(ErrorCode::permission, fmt::format("{}: not a regular file", path));
  }
  if ((st.st_mode & 077U) != 0) {
    return fail(ErrorCode::permission,
                fmt::format("{}: secret key is accessible by others (mode {:04o})", path,
                            st.st_mode & 07777U),
                fmt::format("chmod 600 '{}' and consider the key compromised", path));
  }
  if (static_cast<std::uint64_t>(st.st_size) != k_secret_bytes) {
    return fail(ErrorCode::data,
                fmt::format("{}: secret key has {} bytes, expected {}", path, st.st_size,
                            k_secret_bytes),
                "the key file is damaged; restore it from backup (a new key changes every pseudonym)");
  }
  MAILDSAR_TRY_ASSIGN(std::string key, read_range(fd, 0, k_secret_bytes, path));
  if (key.size() != k_secret_bytes) {
    return fail(ErrorCode::data, fmt::format("{}: secret key is truncated", path));
  }
  return std::optional<std::string>(std::move(key));
}

/** Writes a fresh key to an O_EXCL temporary file and links it to `path` (never replacing). */
Status create_key(const std::string &dir, const std::string &path) {
  std::string key(k_secret_bytes, '\0');
  MAILDSAR_TRY(random_bytes(key.data(), key.size()));
  std::string tmpl = (std::filesystem::path(dir) / ".secret.key.XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  const int fd = ::mkostemp(buf.data(), O_CLOEXEC); // O_EXCL, mode 0600
  if (fd < 0) {
    Error e = errno_error(path, errno);
    e.code = ErrorCode::cant_create;
    return std::unexpected(e);
  }
  Fd guard(fd);
  const std::string tmp(buf.data());
  auto failed = [&](Error e) {
    ::unlink(tmp.c_str());
    if (e.code == ErrorCode::io || e.code == ErrorCode::no_input) {
      e.code = ErrorCode::cant_create;
    }
    return std::unexpected(e);
  };
  if (::fchmod(fd, 0600) != 0) {
    return failed(errno_error(path, errno));
  }
  if (auto written = write_all(fd, key, path); !written) {
    return failed(written.error());
  }
  if (::fsync(fd) != 0) {
    return failed(errno_error(path, errno));
  }
  // link() fails with EEXIST when another process won the race: its key is the one.
  const int linked = ::link(tmp.c_str(), path.c_str());
  const int link_err = errno;
  ::unlink(tmp.c_str());
  if (linked != 0 && link_err != EEXIST) {
    Error e = errno_error(path, link_err);
    e.code = e.code == ErrorCode::permission ? e.code : ErrorCode::cant_create;
    return std::unexpected(e);
  }
  return fsync_dir(dir);
}

} // namespace

Result<std::string> load_or_create_secret(const std::string &state_dir) {
  MAILDSAR_TRY(ensure_private_dir(state_dir));
  const std::string path = (std::filesystem::path(state_dir) / k_secret_file).string();
  MAILDSAR_TRY_ASSIGN(std::optional<std::string> existing, read_existing(path));
  if (existing) {
    return std::move(*existing);
  }
  // A state that already holds records made with a key (manifests, journals, certificates) must
  // not silently get a new one: every keyed hash and pseudonym would change, and erase would
  // find nothing of the subject to redact and call that done.
  for (std::string_view made_with_key : k_state_made_with_key) {
    const std::string dependent = (std::filesystem::path(state_dir) / made_with_key).string();
    struct stat st {};
    if (::lstat(dependent.c_str(), &st) == 0) {
      return fail(ErrorCode::no_input,
                  fmt::format("{}: the secret key is missing, but the state directory holds {} made with "
                              "it; no new key is made",
                              path, made_with_key),
                  "restore secret.key from the backup of the state directory (docs/operations.md, "
                  "\"The state directory\"); if it is lost for good, see \"A lost secret key\" there");
    }
  }
  MAILDSAR_TRY(create_key(state_dir, path));
  MAILDSAR_TRY_ASSIGN(std::optional<std::string> created, read_existing(path));
  if (!created) {
    return fail(ErrorCode::io, fmt::format("{}: secret key vanished right after creation", path));
  }
  return std::move(*created);
}

std::string keyed_hash(std::string_view key, std::string_view kind, std::string_view value) {
  std::string message;
  message.reserve(kind.size() + 1 + value.size());
  message.append(kind);
  message.push_back('\0');
  message.append(value);
  return hmac_sha256_hex(key, message);
}

} // namespace maildsar::core
