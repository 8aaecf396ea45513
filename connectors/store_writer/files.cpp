// SPDX-License-Identifier: GPL-3.0-or-later
// The single-file stores: where a Maildir message is now (renamed for its flags, moved from
// new/ to cur/), the other copies of a message in a Maildir tree (found by size and SHA-256),
// and the removal of a message file after its contents are checked.

#include "connectors/store_writer/internal.hpp"

#include "core/fs.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

namespace maildsar::connectors::store_writer_detail {

// ---------------------------------------------------------------------------------------------
// Maildir

namespace {

namespace fs = std::filesystem;

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

} // namespace

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

// ---------------------------------------------------------------------------------------------
// Removing and replacing a message file (erasure; by redaction)

namespace {

/** Opens `path` (no symlink), checks it is a regular file holding `sha256`; the fd and its stat. */
core::Result<std::pair<core::Fd, core::FileStat>> open_verified(const std::string &path, const std::string &sha256) {
  MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(path));
  MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd.get(), path));
  if (!S_ISREG(st.mode)) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: not a regular file", path));
  }
  MAILDSAR_TRY_ASSIGN(std::string sha, hash_range(fd.get(), 0, st.size, path));
  if (sha != sha256) {
    return stale(fmt::format("{}: the file's contents changed since the plan was made", path));
  }
  return std::pair{std::move(fd), st};
}

/** Unlinks `path` when it is still the file `st` describes; then fsyncs its folder. */
core::Status unlink_same(const std::string &path, const core::FileStat &st) {
  MAILDSAR_TRY_ASSIGN(core::FileStat now, core::lstat_file(path));
  if (now.dev != st.dev || now.ino != st.ino) {
    return stale(fmt::format("{}: the file was replaced while it was being verified", path));
  }
  if (::unlink(path.c_str()) != 0) {
    return sys_error(path + ": unlink");
  }
  return core::fsync_dir(core::parent_dir(path));
}

/** The file of cur/ or new/ of `maildir` whose unique part is `unique`, if any. */
std::optional<std::string> maildir_file_named(const fs::path &maildir, const std::string &unique) {
  for (const char *dir : {"cur", "new"}) {
    std::error_code ec;
    fs::directory_iterator it(maildir / dir, ec);
    if (ec) {
      continue;
    }
    for (const auto &entry : it) {
      if (maildir_unique(entry.path().filename().string()) == unique && is_regular_no_follow(entry.path())) {
        return entry.path().string();
      }
    }
  }
  return std::nullopt;
}

} // namespace

core::Status remove_message_file_impl(const std::string &path, const std::string &sha256,
                                      const StepHook &hook) {
  MAILDSAR_TRY_ASSIGN(auto opened, open_verified(path, sha256));
  const core::FileStat &st = opened.second;
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


core::Status replace_message_file_impl(const std::string &path, const std::string &sha256, std::string_view bytes,
                                       const StepHook &hook) {
  MAILDSAR_TRY_ASSIGN(auto opened, open_verified(path, sha256));
  auto &[fd, st] = opened;
  MAILDSAR_TRY(run_hook(hook, "file:verified"));
  MAILDSAR_TRY_ASSIGN(core::NewFile temp, core::NewFile::create(path, st.mode & 07777U));
  MAILDSAR_TRY(copy_owner(temp.fd(), fd.get(), temp.temp_path()));
  MAILDSAR_TRY(temp.write(bytes));
  MAILDSAR_TRY(temp.sync());
  MAILDSAR_TRY(crash_point(hook, "file:temp-synced", &temp));
  MAILDSAR_TRY_ASSIGN(core::FileStat now, core::lstat_file(path));
  if (now.dev != st.dev || now.ino != st.ino) {
    return stale(fmt::format("{}: the file was replaced while it was being rewritten", path));
  }
  MAILDSAR_TRY(temp.rename_into_place(core::NewFile::Replace::yes));
  MAILDSAR_TRY(core::fsync_dir(core::parent_dir(path)));
  return run_hook(hook, "file:renamed");
}

core::Result<std::string> replace_maildir_message_impl(const std::string &path, const std::string &sha256,
                                                       std::string_view bytes, const std::string &new_unique,
                                                       const StepHook &hook) {
  const fs::path given(path);
  const std::string sub = given.parent_path().filename().string();
  if (sub != "cur" && sub != "new") {
    // A stray file or an abandoned delivery in tmp/: no name for an IMAP server to map.
    MAILDSAR_TRY(replace_message_file_impl(path, sha256, bytes, hook));
    return path;
  }
  if (new_unique.empty() || new_unique.find_first_of("/:") != std::string::npos || new_unique.front() == '.') {
    return core::fail(core::ErrorCode::data, fmt::format("{}: unusable new maildir name '{}'", path, new_unique));
  }
  const fs::path maildir = given.parent_path().parent_path();
  std::optional<std::string> linked = maildir_file_named(maildir, new_unique);
  auto old = maildir_current_path_impl(path);
  if (!old) {
    if (old.error().code == core::ErrorCode::no_input && linked) {
      return *linked; // done by an interrupted run
    }
    return std::unexpected(old.error());
  }
  MAILDSAR_TRY_ASSIGN(auto opened, open_verified(*old, sha256));
  auto &[fd, st] = opened;
  if (!linked) {
    const std::string old_name = fs::path(*old).filename().string();
    const std::string info = old_name.substr(maildir_unique(old_name).size()); // ":2,FLAGS" or ""
    const fs::path dest = fs::path(*old).parent_path() / (new_unique + info);
    // Written in tmp/ as delivery agents do; a Maildir without tmp/ (copied without its empty
    // folders) gets a hidden temp file beside the destination, which readers skip. No tmp/ is
    // created: it would belong to us, not to the mailbox's owner.
    std::error_code ec;
    const fs::path temp = fs::is_directory(maildir / "tmp", ec)
                              ? maildir / "tmp" / new_unique
                              : dest.parent_path() / ("." + new_unique + ".maildsar-tmp");
    if (::unlink(temp.c_str()) != 0 && errno != ENOENT) {
      return sys_error(temp.string() + ": cannot remove leftover temp file");
    }
    const int raw = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                           static_cast<mode_t>(st.mode & 0777U));
    if (raw < 0) {
      return sys_error(temp.string());
    }
    core::Fd out(raw);
    if (::fchmod(out.get(), static_cast<mode_t>(st.mode & 0777U)) != 0) {
      return sys_error(temp.string() + ": fchmod");
    }
    MAILDSAR_TRY(copy_owner(out.get(), fd.get(), temp.string()));
    MAILDSAR_TRY(core::write_all(out.get(), bytes, temp.string()));
    MAILDSAR_TRY(fsync_fd(out.get(), temp.string()));
    MAILDSAR_TRY(run_hook(hook, "maildir:temp-synced"));
    if (::link(temp.c_str(), dest.c_str()) != 0) {
      return errno == EEXIST ? core::fail(core::ErrorCode::cant_create,
                                          fmt::format("{}: exists; the redacted message was not linked", dest.string()))
                             : sys_error(dest.string() + ": link");
    }
    MAILDSAR_TRY(core::fsync_dir(dest.parent_path().string()));
    if (::unlink(temp.c_str()) != 0 && errno != ENOENT) {
      return sys_error(temp.string() + ": unlink");
    }
    MAILDSAR_TRY(run_hook(hook, "maildir:linked"));
    linked = dest.string();
  }
  MAILDSAR_TRY(unlink_same(*old, st));
  MAILDSAR_TRY(run_hook(hook, "maildir:old-unlinked"));
  return *linked;
}

} // namespace maildsar::connectors::store_writer_detail
