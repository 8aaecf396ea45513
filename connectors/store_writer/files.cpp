// SPDX-License-Identifier: GPL-3.0-or-later
// The single-file stores: where a Maildir message is now (renamed for its flags, moved from
// new/ to cur/), the other copies of a message in a Maildir tree (found by size and SHA-256),
// and the removal of a message file after its contents are checked.

#include "connectors/store_writer/internal.hpp"

#include "core/fs.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
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

} // namespace maildsar::connectors::store_writer_detail
