// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/maildir.hpp"

#include "connectors/limits.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "core/config.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace maildsar::connectors {

namespace {

constexpr int k_max_folder_depth = 32;

core::FileStat from_stat(const struct stat &st) {
  core::FileStat fs;
  fs.dev = static_cast<std::uint64_t>(st.st_dev);
  fs.ino = static_cast<std::uint64_t>(st.st_ino);
  fs.size = static_cast<std::uint64_t>(st.st_size);
  fs.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL +
                static_cast<std::int64_t>(st.st_mtim.tv_nsec);
  fs.mode = static_cast<std::uint32_t>(st.st_mode);
  fs.nlink = static_cast<std::uint64_t>(st.st_nlink);
  return fs;
}

std::string real_path(const std::string &path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    return {};
  }
  return buf;
}

bool inside(const std::string &path, const std::string &root) {
  if (root == "/") {
    return !path.empty();
  }
  return !root.empty() && (path == root || (path.starts_with(root) && path[root.size()] == '/'));
}

std::string join(const std::string &dir, const std::string &name) {
  return dir.ends_with('/') ? dir + name : dir + "/" + name;
}

/** The names in an open directory (without "." and ".."), sorted. The fd stays open. */
core::Result<std::vector<std::string>> read_names(int dirfd, const std::string &path) {
  int dup_fd = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) {
    return std::unexpected(core::errno_error(path, errno));
  }
  DIR *dir = ::fdopendir(dup_fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(dup_fd);
    return std::unexpected(core::errno_error(path, err));
  }
  std::vector<std::string> names;
  errno = 0;
  while (auto *ent = ::readdir(dir)) {
    std::string_view name = ent->d_name;
    if (name != "." && name != "..") {
      names.emplace_back(name);
    }
    errno = 0;
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) {
    return std::unexpected(core::errno_error(path, err));
  }
  std::sort(names.begin(), names.end());
  return names;
}


/**
 * Length of what precedes the header block: a UTF-8 byte-order mark (Windows tools write one,
 * e.g. MimeKit's feedback-report.txt) and/or a leading mbox-style "From " envelope line (some
 * delivery agents keep it); 0 when there is neither.
 */
std::size_t envelope_line_length(std::string_view bytes) {
  std::size_t bom = bytes.starts_with("\xEF\xBB\xBF") ? 3 : 0;
  bytes.remove_prefix(bom);
  if (!bytes.starts_with("From ")) {
    return bom;
  }
  auto nl = bytes.find('\n');
  return bom + (nl == std::string_view::npos ? bytes.size() : nl + 1);
}

/**
 * A cheap sanity check before decoding: the file must start with a header field (after an
 * optional envelope line) and its header block must hold no NUL bytes.
 */
bool looks_like_message(std::string_view bytes) {
  bytes.remove_prefix(envelope_line_length(bytes));
  auto nl = bytes.find('\n');
  std::string_view first = bytes.substr(0, nl);
  if (!mime::is_header_field_line(first)) {
    return false;
  }
  auto end = bytes.find("\n\n");
  auto end_crlf = bytes.find("\r\n\r\n");
  std::size_t header_end = std::min({end, end_crlf, bytes.size()});
  return bytes.substr(0, header_end).find('\0') == std::string_view::npos;
}

/** How much of a loose or tmp/ file is read to decide whether it is a message. */
constexpr std::uint64_t k_sniff_bytes = 256ULL << 10;

/**
 * Names that mail servers and clients keep in a Maildir for their own state (never messages):
 * Dovecot (dovecot-uidlist, dovecot-keywords, dovecot.index*, dovecot.list.index*,
 * dovecot-acl*, dovecot.mailbox.log), Courier (courierimapuiddb, courierimapkeywords/,
 * courierimapacl, courierpop3dsizelist), the Maildir++ quota and folder markers (maildirsize,
 * maildirfolder), IMAP subscriptions, Evolution's folders.db; the folders .notmuch (notmuch's
 * Xapian database) and .nnmaildir (Gnus).
 */
bool is_mua_state_name(std::string_view name) {
  for (std::string_view prefix : {"dovecot-", "dovecot.", "courierimap", "courierpop3d",
                                  "folders.db"}) {
    if (name.starts_with(prefix)) {
      return true;
    }
  }
  for (std::string_view exact : {"maildirsize", "maildirfolder", "subscriptions", ".notmuch",
                                 ".nnmaildir"}) {
    if (name == exact) {
      return true;
    }
  }
  return false;
}

class MaildirConnector final : public Connector {
public:
  explicit MaildirConnector(core::SourceConfig source) : m_source(std::move(source)) {}

  [[nodiscard]] StoreKind kind() const override { return StoreKind::maildir; }

  [[nodiscard]] core::Result<std::vector<FileEntry>> list_files(ItemSink &errors) const override {
    std::vector<FileEntry> out;
    MAILDSAR_TRY(each_file(errors, [&](FileEntry &&entry) { out.push_back(std::move(entry)); }));
    return out;
  }

  [[nodiscard]] core::Status each_file(ItemSink &errors,
                                       const std::function<void(FileEntry &&)> &each) const override {
    MAILDSAR_TRY_ASSIGN(std::vector<core::GlobMatch> matches, core::expand_glob(m_source.path));
    Walk walk{errors, m_source.root.empty() ? std::string() : real_path(m_source.root), {}, each,
              now_ns()};
    for (auto &match : matches) {
      struct stat st {};
      if (::lstat(match.path.c_str(), &st) != 0) {
        int err = errno;
        errors.error(ScanError{match.path, "", fmt::format("cannot stat: {}", std::strerror(err))});
        continue;
      }
      if (S_ISLNK(st.st_mode)) {
        report_symlink(walk, match.path);
        continue;
      }
      if (!S_ISDIR(st.st_mode)) {
        errors.error(ScanError{match.path, "", "not a directory (a Maildir is a folder); skipped"});
        continue;
      }
      if (!m_source.root.empty() && !inside(real_path(match.path), walk.root_real)) {
        errors.error(ScanError{
            match.path, "",
            fmt::format("real path is outside the source root '{}'; skipped", m_source.root)});
        continue;
      }
      int fd = ::open(match.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        errors.error(ScanError{match.path, "",
                               fmt::format("cannot open folder: {}", std::strerror(err))});
        continue;
      }
      core::Fd dir(fd);
      walk.owner = m_source.owner.empty() ? std::string()
                                          : core::expand_owner(m_source.owner, match.captures);
      walk_folder(walk, dir.get(), match.path, "", 0);
    }
    return {};
  }

  [[nodiscard]] core::Result<std::optional<LayoutDigest>> layout_fingerprint() const override {
    MAILDSAR_TRY_ASSIGN(std::vector<core::GlobMatch> matches, core::expand_glob(m_source.path));
    Layout layout{core::Sha256(), now_ns(), true, true};
    for (const auto &match : matches) {
      int fd = ::open(match.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        return std::optional<LayoutDigest>(); // a symlink, a file, unreadable: list instead
      }
      core::Fd dir(fd);
      struct stat st {};
      if (::fstat(dir.get(), &st) != 0) {
        return std::optional<LayoutDigest>();
      }
      layout.add(match.path, st);
      digest_folder(layout, dir.get(), match.path, 0);
      if (!layout.trusted) {
        return std::optional<LayoutDigest>();
      }
    }
    return std::optional<LayoutDigest>(LayoutDigest{layout.hash.hex_digest(), layout.settled});
  }

  [[nodiscard]] core::Status scan(const FileEntry &file, std::uint64_t /*from_offset*/,
                                  ItemSink &sink) const override {
    MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(file.path));
    MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd.get(), file.path));
    if (!S_ISREG(st.mode)) {
      return core::fail(core::ErrorCode::data, fmt::format("{}: not a regular file", file.path));
    }
    Item item;
    item.locator.source = m_source.name;
    item.locator.store = StoreKind::maildir;
    item.locator.path = file.path;
    item.locator.folder = file.folder;
    item.locator.mark = file.mark;
    if (!file.owner.empty()) {
      item.addresses.push_back(RawAddress{Role::owner, "", file.owner});
    }

    // Bounded (limits.max_item_mib): a bigger file is decoded from its first bytes only, and the
    // item says so; the hash always covers the whole file (erase removes the whole file).
    const std::uint64_t max = item_limits().max_item_bytes;
    BigItemGate gate(std::min(st.size, max));
    MAILDSAR_TRY_ASSIGN(FileHead head, read_head(fd.get(), st.size, max, file.path));
    item.sha256 = std::move(head.sha256);
    if (head.size > max) {
      item.truncated.push_back(
          fmt::format("item cut at limits.max_item_mib: {} of {} bytes decoded", max, head.size));
    }
    std::string bytes = std::move(head.bytes);
    if (!looks_like_message(bytes)) {
      sink.error(ScanError{file.path, "",
                           bytes.empty() ? "not a mail message (empty file)"
                                         : "not a mail message (no header fields, or binary data)"});
      sink.item(std::move(item)); // still counted and findable by path
      return {};
    }
    std::string_view message(bytes);
    message.remove_prefix(envelope_line_length(message));
    auto decoded = mime::decode_message(message, item);
    if (!decoded) {
      if (decoded.error().code == core::ErrorCode::data) {
        sink.error(ScanError{file.path, "", decoded.error().message});
      } else {
        item.warnings.push_back(decoded.error().message);
      }
    }
    sink.item(std::move(item));
    return {};
  }

private:
  struct Walk {
    ItemSink &errors;
    std::string root_real; // realpath of the source root; empty = no root check
    std::string owner;
    const std::function<void(FileEntry &&)> &emit; // each file found, as it is found
    std::int64_t now_ns = 0; // the listing's clock, for the age of tmp/ files
  };

  void report_symlink(Walk &walk, const std::string &path) const {
    std::string cause = "symbolic link skipped";
    if (!m_source.root.empty()) {
      std::string target = real_path(path);
      if (target.empty() || !inside(target, walk.root_real)) {
        cause += " (it points outside the source root)";
      }
    }
    walk.errors.error(ScanError{path, "", std::move(cause)});
  }

  /** True when `names` (a folder's entries) make it a Maildir folder: cur/, new/ or tmp/ (or
      the Maildir++ marker file maildirfolder) is among them. */
  static bool is_maildir_folder(int dirfd, const std::vector<std::string> &names) {
    for (const auto &name : names) {
      if (name == "maildirfolder") {
        return true;
      }
      if (name == "cur" || name == "new" || name == "tmp") {
        struct stat st {};
        if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
          return true;
        }
      }
    }
    return false;
  }

  /** True when the file at dirfd/name starts like a mail message (see looks_like_message). */
  static core::Result<bool> sniff_message(int dirfd, const std::string &name, const std::string &path) {
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      return std::unexpected(core::errno_error(path, errno));
    }
    core::Fd file(fd);
    MAILDSAR_TRY_ASSIGN(std::string head, core::read_range(file.get(), 0, k_sniff_bytes, path));
    return looks_like_message(head);
  }

  /**
   * Walks one Maildir folder. Its cur/ and new/ hold the messages. Every other sub-folder is
   * walked too: Maildir++ folders (".Sent", ".Foo.Bar") and nested plain folders that are
   * Maildirs themselves ("foo/baz"); the state folders of mail programs (.notmuch,
   * courierimapkeywords) are not, unless they hold cur/ or new/. Files lying in a Maildir folder
   * itself (outside cur/ and new/: "stray", as notmuch indexes them) and files in tmp/ older
   * than 36 hours (abandoned deliveries, which the Maildir spec lets a cleaner delete) are
   * items too, when they look like messages; a younger tmp/ file is a delivery in progress and
   * is not touched. Everything else is skipped and counted (SkipReason): dotfiles, the state
   * files of mail programs, files that are no message, directories inside cur/new/tmp, files
   * of folders that are no Maildir folder.
   */
  void walk_folder(Walk &walk, int dirfd, const std::string &path, const std::string &folder,
                   int depth) const {
    auto names = read_names(dirfd, path);
    if (!names) {
      walk.errors.error(ScanError{path, "", "cannot read folder: " + names.error().message});
      return;
    }
    const bool maildir_folder = is_maildir_folder(dirfd, *names);
    if (depth > 0 && !maildir_folder && is_mua_state_name(fs_name(path))) {
      walk.errors.skipped(path, SkipReason::mua_file); // .notmuch/, courierimapkeywords/
      return;
    }
    for (const auto &name : *names) {
      if (name == "cur" || name == "new") {
        collect_messages(walk, dirfd, path, name, folder);
      }
    }
    for (const auto &name : *names) {
      if (name == "cur" || name == "new") {
        continue;
      }
      std::string child = join(path, name);
      struct stat st {};
      if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        int err = errno;
        walk.errors.error(ScanError{child, "", fmt::format("cannot stat: {}", std::strerror(err))});
        continue;
      }
      if (S_ISLNK(st.st_mode)) {
        report_symlink(walk, child);
        continue;
      }
      if (name == "tmp" && S_ISDIR(st.st_mode)) {
        collect_tmp(walk, dirfd, path, folder);
        continue;
      }
      if (!S_ISDIR(st.st_mode)) {
        consider_stray(walk, dirfd, name, child, st, folder, maildir_folder);
        continue;
      }
      if (depth >= k_max_folder_depth) {
        walk.errors.error(ScanError{child, "", "folder nesting too deep; skipped"});
        continue;
      }
      int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        walk.errors.error(
            ScanError{child, "", fmt::format("cannot open folder: {}", std::strerror(err))});
        continue;
      }
      core::Fd sub(fd);
      walk_folder(walk, sub.get(), child, folder.empty() ? name : folder + "/" + name, depth + 1);
    }
  }

  static std::string fs_name(const std::string &path) {
    auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
  }

  /** Why a file lying in a folder (outside cur/new/tmp) is not an item, or nullopt: it is one. */
  static std::optional<SkipReason> loose_file_skip(const std::string &name, bool maildir_folder) {
    if (name.starts_with('.')) {
      return SkipReason::dotfile;
    }
    if (is_mua_state_name(name)) {
      return SkipReason::mua_file;
    }
    if (!maildir_folder) {
      return SkipReason::outside_folder;
    }
    return std::nullopt;
  }

  /** A file in the folder itself: a stray item when it is a regular file that looks like mail. */
  void consider_stray(Walk &walk, int dirfd, const std::string &name, const std::string &path,
                      const struct stat &st, const std::string &folder, bool maildir_folder) const {
    if (auto skip = loose_file_skip(name, maildir_folder)) {
      walk.errors.skipped(path, *skip);
      return;
    }
    if (!S_ISREG(st.st_mode)) {
      walk.errors.error(ScanError{path, "", "not a regular file; skipped"});
      return;
    }
    add_candidate(walk, dirfd, name, path, st, folder, "stray");
  }

  /** Lists a stray or tmp/ file as an item when it looks like a message; else counts it. */
  void add_candidate(Walk &walk, int dirfd, const std::string &name, const std::string &path,
                     const struct stat &st, const std::string &folder, const char *mark) const {
    auto message = sniff_message(dirfd, name, path);
    if (!message) {
      walk.errors.error(ScanError{path, "", message.error().message});
      return;
    }
    if (!*message) {
      walk.errors.skipped(path, SkipReason::not_message);
      return;
    }
    FileEntry entry;
    entry.path = path;
    entry.folder = folder;
    entry.owner = walk.owner;
    entry.stat = from_stat(st);
    entry.mark = mark;
    walk.emit(std::move(entry));
  }

  /** True when a tmp/ file's mtime is more than k_tmp_age before `now_ns`. */
  /**
   * Opens folder `name` of `parentfd` (no symlink) into `dir` and lists it into `names`; false,
   * with one error for the walk, when either fails.
   */
  static bool open_listed(Walk &walk, int parentfd, const std::string &name, const std::string &path,
                          core::Fd &dir, std::vector<std::string> &names) {
    int fd = ::openat(parentfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      walk.errors.error(ScanError{path, "", fmt::format("cannot open folder: {}", std::strerror(err))});
      return false;
    }
    dir = core::Fd(fd);
    auto listed = read_names(dir.get(), path);
    if (!listed) {
      walk.errors.error(ScanError{path, "", "cannot read folder: " + listed.error().message});
      return false;
    }
    names = std::move(*listed);
    return true;
  }

  static bool abandoned(const struct stat &st, std::int64_t now_ns) {
    std::int64_t mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL +
                         static_cast<std::int64_t>(st.st_mtim.tv_nsec);
    return mtime < now_ns - k_maildir_tmp_age_seconds * 1000000000LL;
  }

  /** The files of `parent/tmp`: those older than 36 hours are items (mark "tmp"). */
  void collect_tmp(Walk &walk, int parentfd, const std::string &parent,
                   const std::string &folder) const {
    std::string path = join(parent, "tmp");
    core::Fd dir;
    std::vector<std::string> names;
    if (!open_listed(walk, parentfd, "tmp", path, dir, names)) {
      return;
    }
    for (const auto &name : names) {
      std::string file_path = join(path, name);
      if (name.starts_with('.')) {
        walk.errors.skipped(file_path, SkipReason::dotfile);
        continue;
      }
      struct stat st {};
      if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
          walk.errors.skipped(file_path, SkipReason::in_delivery); // renamed into new/ meanwhile
          continue;
        }
        int err = errno;
        walk.errors.error(
            ScanError{file_path, "", fmt::format("cannot stat: {}", std::strerror(err))});
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        walk.errors.skipped(file_path, SkipReason::directory);
        continue;
      }
      if (S_ISLNK(st.st_mode)) {
        report_symlink(walk, file_path);
        continue;
      }
      if (!S_ISREG(st.st_mode)) {
        walk.errors.error(ScanError{file_path, "", "not a regular file; skipped"});
        continue;
      }
      if (!abandoned(st, walk.now_ns)) {
        walk.errors.skipped(file_path, SkipReason::in_delivery);
        continue;
      }
      add_candidate(walk, dir.get(), name, file_path, st, folder, "tmp");
    }
  }

  /** Running digest of folder identities and mtimes (see layout_fingerprint). */
  struct Layout {
    core::Sha256 hash;
    std::int64_t now = 0;
    bool trusted = true;  // false: a symlink or unreadable folder (list_files reports it)
    bool settled = true;  // false: a folder changed within the last two seconds

    void add(const std::string &path, const struct stat &st) {
      std::int64_t mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL +
                           static_cast<std::int64_t>(st.st_mtim.tv_nsec);
      // A folder changed within the last two seconds could change again within the same
      // timestamp after we looked: do not trust the digest then (notmuch does the same).
      if (mtime > now - 2000000000LL) {
        settled = false;
      }
      hash.update(fmt::format("{}\n{}:{}:{}\n", path, static_cast<std::uint64_t>(st.st_dev),
                              static_cast<std::uint64_t>(st.st_ino), mtime));
    }

    /** A file whose contents matter (stray candidate, tmp/ file); `old`: past 36 hours. */
    void add_file(const std::string &path, const struct stat &st, bool old) {
      add(path, st);
      hash.update(fmt::format("F{}:{}\n", static_cast<std::uint64_t>(st.st_size), old ? 1 : 0));
    }
  };

  static std::int64_t now_ns() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + static_cast<std::int64_t>(ts.tv_nsec);
  }

  /**
   * The folder structure walk_folder() follows, stat()ing cur/ and new/ without reading them.
   * Stray candidates and tmp/ files are few and can change in place or age past 36 hours
   * without their folder's mtime changing: each one's identity, size, mtime and age go in.
   */
  void digest_folder(Layout &layout, int dirfd, const std::string &path, int depth) const {
    auto names = read_names(dirfd, path);
    if (!names) {
      layout.trusted = false;
      return;
    }
    const bool maildir_folder = is_maildir_folder(dirfd, *names);
    if (depth > 0 && !maildir_folder && is_mua_state_name(fs_name(path))) {
      return; // not walked (walk_folder skips it)
    }
    for (const auto &name : *names) {
      struct stat st {};
      if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISLNK(st.st_mode)) {
        layout.trusted = false; // list_files reports it
        return;
      }
      std::string child = join(path, name);
      if (!S_ISDIR(st.st_mode)) {
        if (!loose_file_skip(name, maildir_folder)) {
          layout.add_file(child, st, false);
        }
        continue;
      }
      layout.add(child, st);
      if (name == "cur" || name == "new") {
        continue; // its mtime covers every add, remove and rename of a message file
      }
      if (name == "tmp") {
        digest_tmp(layout, dirfd, child);
        if (!layout.trusted) {
          return;
        }
        continue;
      }
      if (depth >= k_max_folder_depth) {
        layout.trusted = false;
        return;
      }
      int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        layout.trusted = false;
        return;
      }
      core::Fd sub(fd);
      digest_folder(layout, sub.get(), child, depth + 1);
      if (!layout.trusted) {
        return;
      }
    }
  }

  /** tmp/: every file with its age class (a file that passes 36 hours becomes an item). */
  void digest_tmp(Layout &layout, int parentfd, const std::string &path) const {
    int fd = ::openat(parentfd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      layout.trusted = false;
      return;
    }
    core::Fd dir(fd);
    auto names = read_names(dir.get(), path);
    if (!names) {
      layout.trusted = false;
      return;
    }
    for (const auto &name : *names) {
      if (name.starts_with('.')) {
        continue;
      }
      struct stat st {};
      if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
          layout.settled = false; // a delivery moved it meanwhile
          continue;
        }
        layout.trusted = false;
        return;
      }
      if (S_ISLNK(st.st_mode)) {
        layout.trusted = false;
        return;
      }
      layout.add_file(join(path, name), st, abandoned(st, layout.now));
    }
  }

  /** Adds the message files of `parent/name` (cur or new). */
  void collect_messages(Walk &walk, int parentfd, const std::string &parent,
                        const std::string &name, const std::string &folder) const {
    std::string path = join(parent, name);
    struct stat st {};
    if (::fstatat(parentfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      int err = errno;
      walk.errors.error(ScanError{path, "", fmt::format("cannot stat: {}", std::strerror(err))});
      return;
    }
    if (S_ISLNK(st.st_mode)) {
      report_symlink(walk, path);
      return;
    }
    if (!S_ISDIR(st.st_mode)) {
      walk.errors.error(ScanError{path, "", "not a directory; skipped"});
      return;
    }
    core::Fd dir;
    std::vector<std::string> names;
    if (!open_listed(walk, parentfd, name, path, dir, names)) {
      return;
    }
    for (const auto &file : names) {
      std::string file_path = join(path, file);
      if (file.starts_with('.')) {
        walk.errors.skipped(file_path, SkipReason::dotfile); // .keep, .gitkeep, ...: markers
        continue;
      }
      struct stat fst {};
      if (::fstatat(dir.get(), file.c_str(), &fst, AT_SYMLINK_NOFOLLOW) != 0) {
        int err = errno;
        walk.errors.error(
            ScanError{file_path, "", fmt::format("cannot stat: {}", std::strerror(err))});
        continue;
      }
      if (S_ISLNK(fst.st_mode)) {
        report_symlink(walk, file_path);
        continue;
      }
      if (S_ISDIR(fst.st_mode)) {
        walk.errors.skipped(file_path, SkipReason::directory);
        continue;
      }
      if (!S_ISREG(fst.st_mode)) {
        walk.errors.error(ScanError{file_path, "", "not a regular file; skipped"});
        continue;
      }
      FileEntry entry;
      entry.path = std::move(file_path);
      entry.folder = folder;
      entry.owner = walk.owner;
      entry.stat = from_stat(fst);
      walk.emit(std::move(entry));
    }
  }

  core::SourceConfig m_source;
};

} // namespace

std::string maildir_folder_dir(const Locator &locator) {
  std::string dir = core::parent_dir(locator.path);
  if (locator.mark != "stray") {
    dir = core::parent_dir(dir); // drop cur/, new/ or tmp/
  }
  return dir;
}

std::string maildir_root(const Locator &locator) {
  std::string dir = maildir_folder_dir(locator);
  const std::string &folder = locator.folder;
  if (!folder.empty() && dir.size() > folder.size() && dir.ends_with(folder) &&
      dir[dir.size() - folder.size() - 1] == '/') {
    dir.resize(dir.size() - folder.size() - 1);
  }
  return dir;
}

core::Result<std::unique_ptr<Connector>> make_maildir_connector(const core::SourceConfig &source) {
  if (source.path.empty() || source.path.front() != '/') {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': path '{}' is not absolute", source.name, source.path));
  }
  return std::unique_ptr<Connector>(std::make_unique<MaildirConnector>(source));
}

bool looks_like_mail_message(std::string_view bytes) { return looks_like_message(bytes); }

std::size_t mail_envelope_line_length(std::string_view bytes) { return envelope_line_length(bytes); }

} // namespace maildsar::connectors
