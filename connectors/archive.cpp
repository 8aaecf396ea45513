// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/archive.hpp"

#include "connectors/archive_internal.hpp"
#include "connectors/libarchive.hpp"
#include "connectors/limits.hpp"
#include "connectors/maildir.hpp"
#include "connectors/mbox.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "connectors/pst.hpp"
#include "connectors/pst_export.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"

#include <fmt/format.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <unordered_set>
#include <utility>
#include <vector>

namespace maildsar::connectors {

namespace archive_detail {

ArchivePtr new_reader() {
  ArchivePtr a(la().archive_read_new());
  if (!a) {
    return a;
  }
  la().archive_read_support_filter_gzip(a.get());
  la().archive_read_support_filter_bzip2(a.get());
  la().archive_read_support_filter_xz(a.get());
  la().archive_read_support_filter_zstd(a.get());
  la().archive_read_support_format_tar(a.get());
  la().archive_read_support_format_zip(a.get());
  return a;
}

std::string archive_error(struct archive *a) {
  const char *msg = la().archive_error_string(a);
  return msg != nullptr ? std::string(msg) : std::string("libarchive error");
}

} // namespace archive_detail

namespace {

using namespace archive_detail; // NOLINT(google-build-using-namespace): this module's own helpers

namespace fs = std::filesystem;

/** How much of a member is looked at before it is classified. */
constexpr std::size_t k_sniff_bytes = std::size_t{64} << 10;
/** Damaged stretches libarchive may skip (ARCHIVE_RETRY) in one archive before it is given up. */
constexpr int k_max_retries = 100;

std::mutex g_limits_mutex;
ArchiveLimits g_limits;  // guarded by g_limits_mutex
std::string g_spool_dir; // guarded by g_limits_mutex

std::string spool_dir() {
  std::lock_guard lock(g_limits_mutex);
  return g_spool_dir;
}

/** A temporary file that is removed (unlinked) when the object dies. */
class SpoolFile {
public:
  SpoolFile() = default;
  ~SpoolFile() {
    if (!m_path.empty()) {
      ::unlink(m_path.c_str());
    }
  }
  SpoolFile(const SpoolFile &) = delete;
  SpoolFile &operator=(const SpoolFile &) = delete;

  /** Creates it (0600, O_EXCL) in `dir` (made 0700 when missing). */
  core::Status create(const std::string &dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return std::unexpected(core::errno_error(dir, errno));
    }
    std::string templ = dir + "/pst-member-XXXXXX";
    int fd = ::mkostemp(templ.data(), O_CLOEXEC);
    if (fd < 0) {
      return std::unexpected(core::errno_error(templ, errno));
    }
    m_fd = core::Fd(fd);
    m_path = templ;
    return {};
  }
  [[nodiscard]] int fd() const { return m_fd.get(); }
  [[nodiscard]] const std::string &path() const { return m_path; }
  void close() { m_fd = core::Fd(); }

private:
  core::Fd m_fd;
  std::string m_path;
};

/** Passes a PST member's items and problems on as the archive's: its path, the member. */
class PstMemberSink final : public ItemSink {
public:
  PstMemberSink(ItemSink &out, const Locator &base, std::string position)
      : m_out(out), m_base(base), m_position(std::move(position)) {}
  void item(Item &&item) override {
    Locator loc = m_base;
    loc.folder = std::move(item.locator.folder);
    loc.node_id = item.locator.node_id;
    item.locator = std::move(loc);
    m_out.item(std::move(item));
  }
  void error(ScanError &&e) override {
    e.path = m_base.path;
    e.position = e.position.empty() ? m_position : m_position + " " + e.position;
    m_out.error(std::move(e));
  }

private:
  ItemSink &m_out;
  const Locator &m_base;
  std::string m_position;
};

bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) {
      return false;
    }
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        return false;
      }
    }
    i += n;
  }
  return true;
}

std::string member_position(std::uint64_t index, std::string_view member) {
  return fmt::format("member {} '{}'", index, member);
}

/** Why reading stopped. */
enum class Stop {
  none,
  member, // this member is not read further (its bytes are drained under the archive's bounds)
  archive // the rest of the archive is not read
};

/**
 * One pass over an archive: members in order, with the bounds applied to every block read.
 * Problems go to `on_error` with the archive's path and the member's position.
 */
class ArchiveWalk {
public:
  ArchiveWalk(struct archive *a, std::string path, std::function<void(ScanError &&)> on_error)
      : m_a(a), m_path(std::move(path)), m_on_error(std::move(on_error)), m_limits(archive_limits()),
        m_deadline(std::chrono::steady_clock::now() + std::chrono::seconds(m_limits.timeout_seconds)) {}

  /** The next regular-file member; nullopt at the end or after a fatal problem (reported). */
  std::optional<std::string> next() {
    for (;;) {
      struct archive_entry *entry = nullptr;
      int r = la().archive_read_next_header(m_a, &entry);
      if (r == ARCHIVE_EOF) {
        return std::nullopt;
      }
      if (r == ARCHIVE_FATAL || entry == nullptr) {
        report(m_index == 0 ? std::string() : fmt::format("after {}", member_position(m_index, m_member)),
               m_index == 0 ? fmt::format("not a readable tar or zip archive ({})", archive_error(m_a))
                            : fmt::format("archive truncated or corrupt ({}); the rest is not read", archive_error(m_a)));
        return std::nullopt;
      }
      if (r == ARCHIVE_RETRY) {
        // libarchive skipped damaged bytes and can go on; bounded, a stream of damage is fatal
        if (++m_retries > k_max_retries) {
          report(fmt::format("after {}", member_position(m_index, m_member)),
                 fmt::format("archive truncated or corrupt: damaged past repair ({}); the rest is not read",
                             archive_error(m_a)));
          return std::nullopt;
        }
        continue;
      }
      ++m_index;
      if (m_index > m_limits.max_members) {
        report(fmt::format("member {}", m_index),
               fmt::format("more than limits.archive_max_members ({}) members; the rest is not read",
                           m_limits.max_members));
        return std::nullopt;
      }
      const char *name = la().archive_entry_pathname(entry);
      m_member = name != nullptr ? name : "";
      m_member_bytes = 0;
      m_member_stop = Stop::none;
      if (la().archive_entry_filetype(entry) != AE_IFREG || la().archive_entry_hardlink(entry) != nullptr) {
        continue; // directories, links, devices: no content of their own
      }
      if (m_member.empty() || !is_utf8(m_member)) {
        report(member_position(m_index, is_utf8(m_member) ? m_member : std::string("?")),
               "member name is empty or not UTF-8: not read");
        continue;
      }
      if (la().archive_entry_is_encrypted(entry) != 0) {
        report(position(), "encrypted member: cannot be read");
        continue;
      }
      return m_member;
    }
  }

  /**
   * Reads the current member's next block into `out` (empty at its end). Returns Stop::member
   * when the member exceeds its bound (reported once; the caller drains it with drain()) and
   * Stop::archive when the archive must not be read further (reported).
   */
  Stop read_block(std::string_view &out, std::uint64_t member_bound = 0) {
    m_member_bound = member_bound != 0 ? member_bound : m_limits.max_member_bytes;
    out = {};
    if (m_member_stop != Stop::none) {
      return m_member_stop;
    }
    const void *buf = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    int r = ARCHIVE_OK;
    do { // an empty block is not the end
      r = la().archive_read_data_block(m_a, &buf, &size, &offset);
    } while (r >= ARCHIVE_WARN && r != ARCHIVE_EOF && size == 0 && static_cast<std::uint64_t>(offset) <= m_member_bytes &&
             !deadline_passed());
    if (r == ARCHIVE_EOF) {
      return Stop::none;
    }
    if (r < ARCHIVE_WARN) { // FATAL or FAILED (e.g. unsupported compression, truncated data)
      report(position(), fmt::format("member truncated or corrupt after {} bytes ({}); the rest of the archive is "
                                     "not read",
                                     m_member_bytes, archive_error(m_a)));
      return stop_archive();
    }
    if (static_cast<std::uint64_t>(offset) > m_member_bytes) {
      // a sparse member's hole: its bytes count as read (zeros are never a message)
      m_total_bytes += static_cast<std::uint64_t>(offset) - m_member_bytes;
      m_member_bytes = static_cast<std::uint64_t>(offset);
    }
    m_member_bytes += size;
    m_total_bytes += size;
    if (Stop s = check_bounds(); s != Stop::none) {
      return s;
    }
    out = std::string_view(static_cast<const char *>(buf), size);
    if (size == 0) {
      return check_bounds(); // only the deadline ends a run of empty blocks
    }
    return Stop::none;
  }

  /** Reads and discards the rest of the current member under the archive's bounds (not the
      member's: a member over its bound was reported already). */
  Stop drain() {
    if (m_member_stop == Stop::archive) {
      return Stop::archive;
    }
    m_member_stop = Stop::none;
    if (la().archive_filter_count(m_a) <= 1) {
      // No compression filter: tar and zip skip a member's stored bytes without decompressing
      // them (a zip member's compressed size is known), so a bomb member costs nothing.
      if (la().archive_read_data_skip(m_a) != ARCHIVE_OK) {
        report(position(), fmt::format("archive truncated or corrupt ({}); the rest is not read", archive_error(m_a)));
        return stop_archive();
      }
      return Stop::none;
    }
    m_draining = true; // a compressed stream: the skipped bytes are decompressed under the bounds
    std::string_view block;
    for (;;) {
      Stop s = read_block(block);
      if (s == Stop::archive) {
        return s;
      }
      if (block.empty()) {
        m_draining = false;
        return Stop::none;
      }
    }
  }

  void report(std::string position, std::string cause) {
    m_on_error(ScanError{m_path, std::move(position), std::move(cause)});
  }

  [[nodiscard]] std::string position() const { return member_position(m_index, m_member); }
  [[nodiscard]] bool stopped() const { return m_stopped; }

private:
  Stop stop_archive() {
    m_stopped = true;
    m_member_stop = Stop::archive;
    return Stop::archive;
  }

  [[nodiscard]] bool deadline_passed() const { return std::chrono::steady_clock::now() > m_deadline; }

  Stop check_bounds() {
    if (m_total_bytes > m_limits.max_total_bytes) {
      report(position(), fmt::format("archive holds more than limits.archive_max_total_gib ({} GiB) decompressed; "
                                     "the rest is not read",
                                     m_limits.max_total_bytes >> 30));
      return stop_archive();
    }
    const auto stored = static_cast<std::uint64_t>(std::max<la_int64_t>(la().archive_filter_bytes(m_a, -1), 1));
    if (m_total_bytes >= k_archive_ratio_floor && m_total_bytes / stored > m_limits.max_ratio) {
      report(position(),
             fmt::format("compression ratio above limits.archive_max_ratio ({}): {} bytes decompressed from {} "
                         "(a decompression bomb?); the rest is not read",
                         m_limits.max_ratio, m_total_bytes, stored));
      return stop_archive();
    }
    if (deadline_passed()) {
      report(position(), fmt::format("archive not read within limits.archive_timeout_seconds ({} s); the rest is "
                                     "not read",
                                     m_limits.timeout_seconds));
      return stop_archive();
    }
    if (!m_draining && m_member_bytes > m_member_bound) {
      report(position(), fmt::format("{}member larger than limits.{} ({} MiB): not read",
                                     m_member_bound == m_limits.max_member_bytes ? "" : "PST ",
                                     m_member_bound == m_limits.max_member_bytes ? "archive_max_member_mib"
                                                                                 : "archive_max_pst_mib",
                                     m_member_bound >> 20));
      m_member_stop = Stop::member;
      return Stop::member;
    }
    return Stop::none;
  }

  struct archive *m_a;
  std::string m_path;
  std::function<void(ScanError &&)> m_on_error;
  ArchiveLimits m_limits;
  std::chrono::steady_clock::time_point m_deadline;
  std::uint64_t m_index = 0;        // 1-based index of the current member among all entries
  std::string m_member;
  std::uint64_t m_member_bytes = 0; // decompressed bytes of the current member so far
  std::uint64_t m_total_bytes = 0;  // decompressed bytes of all members so far
  Stop m_member_stop = Stop::none;
  bool m_draining = false;
  bool m_stopped = false;
  int m_retries = 0;
  std::uint64_t m_member_bound = 0; // the member's bound (a PST member's is its own)
};

enum class MemberKind { maildir_message, mbox, message, pst, other };

MemberKind classify(std::string_view member, std::string_view head) {
  if (head.starts_with("!BDN")) {
    return MemberKind::pst;
  }
  if (archive_maildir_folder(member)) {
    return looks_like_mail_message(head) ? MemberKind::maildir_message : MemberKind::other;
  }
  if (head.starts_with("From ")) {
    std::size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (looks_like_mbox_from_line(line)) {
      return MemberKind::mbox;
    }
  }
  return looks_like_mail_message(head) ? MemberKind::message : MemberKind::other;
}

/** Reads the first k_sniff_bytes of the member (fewer: all of it) into `head`, which the member
    is classified by; Stop::none, or why reading stopped. */
Stop read_head(ArchiveWalk &walk, std::string &head) {
  std::string_view block;
  while (head.size() < k_sniff_bytes) {
    const Stop s = walk.read_block(block);
    if (s != Stop::none || block.empty()) {
      return s;
    }
    head.append(block);
  }
  return Stop::none;
}

/**
 * Reads past one member exactly as scan_archive reads it (the same blocks, bounds, skips), so
 * that a reader looking for a later member meets the archive as the scan met it: a reader that
 * skipped where the scan read (or the reverse) could fail, or lose its place, on a damaged
 * archive whose items the scan found.
 */
Stop consume_as_scan(ArchiveWalk &walk, std::string_view member, bool duplicate) {
  if (duplicate) {
    return walk.drain();
  }
  std::string head;
  std::string_view block;
  Stop s = read_head(walk, head);
  if (s == Stop::archive) {
    return s;
  }
  if (s == Stop::member) {
    return walk.drain();
  }
  const bool at_end = head.size() < k_sniff_bytes;
  std::uint64_t bound = 0; // the member's own: archive_max_member_mib
  switch (classify(member, head)) {
  case MemberKind::other:
    return at_end ? Stop::none : walk.drain();
  case MemberKind::pst:
    if (spool_dir().empty() || head.size() > archive_limits().max_pst_bytes) {
      return walk.drain();
    }
    bound = archive_limits().max_pst_bytes;
    break;
  case MemberKind::mbox:
  case MemberKind::maildir_message:
  case MemberKind::message:
    break;
  }
  while (!at_end) {
    s = walk.read_block(block, bound);
    if (s == Stop::archive) {
      return s;
    }
    if (s == Stop::member) {
      return walk.drain();
    }
    if (block.empty()) {
      break;
    }
  }
  return Stop::none;
}

/** Decodes one message into an item; a decoding failure of the data kind is a ScanError. */
void emit_message(Item &&item, std::string_view bytes, const std::string &position, ItemSink &sink) {
  std::string_view message = bytes;
  message.remove_prefix(mail_envelope_line_length(message));
  auto decoded = mime::decode_message(message, item);
  if (!decoded) {
    if (decoded.error().code == core::ErrorCode::data) {
      sink.error(ScanError{item.locator.path, position, decoded.error().message});
      return;
    }
    item.warnings.push_back(decoded.error().message);
  }
  sink.item(std::move(item));
}

/** Scans every member of an opened archive. */
void scan_archive(struct archive *a, const Locator &base, ItemSink &sink) {
  ArchiveWalk walk(a, base.path, [&](ScanError &&e) { sink.error(std::move(e)); });
  std::unordered_set<std::string> seen;
  const std::uint64_t max_item = item_limits().max_item_bytes;
  while (auto member = walk.next()) {
    const std::string position = walk.position();
    if (!seen.insert(*member).second) {
      walk.report(position, "the archive holds this member path again (an appended copy): only the first is read");
      if (walk.drain() == Stop::archive) {
        return;
      }
      continue;
    }
    std::string head;
    std::string_view block;
    Stop s = read_head(walk, head);
    if (s == Stop::archive) {
      return;
    }
    if (s == Stop::member) {
      if (walk.drain() == Stop::archive) {
        return;
      }
      continue;
    }
    const bool at_end = head.size() < k_sniff_bytes;
    Locator loc = base;
    loc.member = *member;
    switch (classify(*member, head)) {
    case MemberKind::pst: {
      // libpst needs a seekable file: the member goes to a private temporary file in the state
      // directory, bounded, is scanned by the isolated PST worker, and is removed.
      const std::string dir = spool_dir();
      SpoolFile spool;
      core::Status made = dir.empty() ? core::fail(core::ErrorCode::config, "no state directory for its temporary copy")
                                      : spool.create(dir);
      bool ok = made.has_value();
      if (!ok) {
        walk.report(position, "PST file inside an archive: not read: " + made.error().message);
      }
      const std::uint64_t max_pst = archive_limits().max_pst_bytes;
      if (ok && head.size() > max_pst) { // the first blocks read may already be past the bound
        walk.report(position, fmt::format("PST member larger than limits.archive_max_pst_mib ({} MiB): not read",
                                          max_pst >> 20));
        ok = false;
      }
      ok = ok && static_cast<bool>(core::write_all(spool.fd(), head, spool.path()));
      while (ok && !at_end) {
        s = walk.read_block(block, max_pst);
        if (s != Stop::none || block.empty()) {
          break;
        }
        ok = static_cast<bool>(core::write_all(spool.fd(), block, spool.path()));
        if (!ok) {
          walk.report(position, "PST file inside an archive: not read: cannot write its temporary copy");
        }
      }
      if (s == Stop::archive) {
        return;
      }
      if (!ok || s == Stop::member) {
        if (walk.drain() == Stop::archive) {
          return;
        }
        continue;
      }
      spool.close();
      PstMemberSink pst_sink(sink, loc, position);
      if (auto scanned = scan_pst_file(base.source, spool.path(), pst_sink); !scanned) {
        std::string cause = scanned.error().message;
        if (auto at = cause.find(spool.path()); at != std::string::npos) {
          cause.replace(at, spool.path().size(), "the PST member");
        }
        walk.report(position, "PST file inside an archive: " + cause);
      }
      continue;
    }
    case MemberKind::other:
      sink.skipped(base.path + "#" + *member, SkipReason::not_message);
      if (!at_end && walk.drain() == Stop::archive) {
        return;
      }
      continue;
    case MemberKind::mbox: {
      // The splitter reads with pread: the member goes to an anonymous memory file (bounded by
      // limits.archive_max_member_mib), never to disk.
      core::Fd mfd(::memfd_create("maildsar-archive", MFD_CLOEXEC));
      if (!mfd) {
        walk.report(position, fmt::format("memfd_create: {}", std::strerror(errno)));
        if (walk.drain() == Stop::archive) {
          return;
        }
        continue;
      }
      bool ok = static_cast<bool>(core::write_all(mfd.get(), head, base.path));
      std::uint64_t size = head.size();
      while (ok && !at_end) {
        s = walk.read_block(block);
        if (s != Stop::none || block.empty()) {
          break;
        }
        ok = static_cast<bool>(core::write_all(mfd.get(), block, base.path));
        size += block.size();
      }
      if (s == Stop::archive) {
        return;
      }
      if (s == Stop::member || !ok) {
        if (!ok) {
          walk.report(position, "cannot hold the member in memory (memfd write failed): not read");
        }
        if (walk.drain() == Stop::archive) {
          return;
        }
        continue;
      }
      auto on_message = [&](const MboxMessage &msg) {
        Item item;
        item.locator = loc;
        item.locator.offset = msg.offset;
        item.locator.length = msg.length;
        item.sha256 = msg.sha256;
        const std::string at = fmt::format("{} offset {}", position, msg.offset);
        BigItemGate gate(msg.raw.size());
        std::string content = mbox_message_content(msg);
        if (!looks_like_mail_message(content)) {
          sink.error(ScanError{base.path, at, "not a mail message (no RFC 5322 header block)"});
          return;
        }
        if (msg.too_large) {
          item.truncated.push_back(
              fmt::format("item cut at limits.max_item_mib: {} of {} bytes decoded", msg.raw.size(), msg.length));
        }
        if (msg.truncated) {
          item.warnings.push_back(
              fmt::format("{} {}: message truncated (the member ends inside its header block)", base.path, at));
        }
        emit_message(std::move(item), content, at, sink);
      };
      auto on_error = [&](ScanError &&e) {
        e.path = base.path;
        e.position = e.position.empty() ? position : position + " " + e.position;
        sink.error(std::move(e));
      };
      const std::string label = base.path + "#" + *member;
      if (auto split = split_mbox(mfd.get(), label, 0, size, on_message, on_error); !split) {
        walk.report(position, split.error().message);
      }
      continue;
    }
    case MemberKind::maildir_message:
    case MemberKind::message: {
      core::Sha256 sha;
      sha.update(head);
      std::string bytes = head.substr(0, static_cast<std::size_t>(std::min<std::uint64_t>(head.size(), max_item)));
      std::uint64_t size = head.size();
      while (!at_end) {
        s = walk.read_block(block);
        if (s != Stop::none || block.empty()) {
          break;
        }
        sha.update(block);
        if (bytes.size() < max_item) {
          bytes.append(block.substr(0, static_cast<std::size_t>(std::min<std::uint64_t>(block.size(),
                                                                                          max_item - bytes.size()))));
        }
        size += block.size();
      }
      if (s == Stop::archive) {
        return;
      }
      if (s == Stop::member) {
        if (walk.drain() == Stop::archive) {
          return;
        }
        continue;
      }
      Item item;
      item.locator = std::move(loc);
      if (auto folder = archive_maildir_folder(*member)) {
        item.locator.folder = *folder;
      }
      item.sha256 = sha.hex_digest();
      if (size > bytes.size()) {
        item.truncated.push_back(
            fmt::format("item cut at limits.max_item_mib: {} of {} bytes decoded", bytes.size(), size));
      }
      BigItemGate gate(bytes.size());
      emit_message(std::move(item), bytes, position, sink);
      continue;
    }
    }
  }
}

class ArchiveConnector final : public Connector {
public:
  explicit ArchiveConnector(core::SourceConfig source) : m_source(std::move(source)) {}

  [[nodiscard]] StoreKind kind() const override { return StoreKind::archive; }

  [[nodiscard]] core::Result<std::vector<FileEntry>> list_files(ItemSink &errors) const override {
    return list_source_files(m_source, errors); // as an mbox source lists its files
  }

  [[nodiscard]] core::Status scan(const FileEntry &file, std::uint64_t /*from_offset*/,
                                  ItemSink &sink) const override {
    MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(file.path));
    MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd.get(), file.path));
    if (!S_ISREG(st.mode)) {
      return core::fail(core::ErrorCode::data, fmt::format("{}: not a regular file", file.path));
    }
    ArchivePtr a = new_reader();
    if (!a || la().archive_read_open_fd(a.get(), fd.get(), k_read_block_bytes) != ARCHIVE_OK) {
      sink.error(ScanError{file.path, "",
                           fmt::format("not a readable tar or zip archive ({})",
                                       a ? archive_error(a.get()) : std::string("out of memory"))});
      return {};
    }
    Locator base;
    base.source = m_source.name;
    base.store = StoreKind::archive;
    base.path = file.path;
    scan_archive(a.get(), base, sink);
    return {};
  }

private:
  core::SourceConfig m_source;
};

} // namespace

void set_archive_spool_dir(const std::string &dir) {
  std::lock_guard lock(g_limits_mutex);
  g_spool_dir = dir;
}

void set_archive_limits(const ArchiveLimits &limits) {
  std::lock_guard lock(g_limits_mutex);
  g_limits = limits;
}

ArchiveLimits archive_limits() {
  std::lock_guard lock(g_limits_mutex);
  return g_limits;
}

std::optional<std::string> archive_maildir_folder(std::string_view member) {
  std::vector<std::string_view> parts;
  while (!member.empty()) {
    std::size_t slash = member.find('/');
    std::string_view part = member.substr(0, slash);
    if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    if (slash == std::string_view::npos) {
      break;
    }
    member.remove_prefix(slash + 1);
  }
  // the file's own directory must be cur/, new/ or tmp/
  if (parts.size() < 2) {
    return std::nullopt;
  }
  std::string_view dir = parts[parts.size() - 2];
  if (dir != "cur" && dir != "new" && dir != "tmp") {
    return std::nullopt;
  }
  // Maildir++: the folder is the component above cur/ when it starts with '.', else the inbox
  if (parts.size() >= 3) {
    std::string_view folder = parts[parts.size() - 3];
    if (folder.size() > 1 && folder.front() == '.' && folder != "..") {
      return std::string(folder);
    }
  }
  return std::string();
}

void scan_archive_bytes(std::string_view bytes, const Locator &base, ItemSink &sink) {
  ArchivePtr a = new_reader();
  if (!a || la().archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
    sink.error(ScanError{base.path, "",
                         fmt::format("not a readable tar or zip archive ({})",
                                     a ? archive_error(a.get()) : std::string("out of memory"))});
    return;
  }
  Locator b = base;
  b.store = StoreKind::archive;
  scan_archive(a.get(), b, sink);
}

namespace {

/**
 * Opens the archive of `locator`, walks it as the scan does up to its member, and calls
 * `at_member(walk, fail)` there; `fail(what)` makes the error of a member that cannot be read
 * (naming the last problem met). ErrorCode::no_input when the archive holds no such member.
 */
template <class T, class AtMember>
core::Result<T> at_archive_member(const Locator &locator, AtMember &&at_member) {
  if (locator.member.empty()) {
    return core::fail(core::ErrorCode::data, fmt::format("archive item {}: the locator names no member", locator.path));
  }
  MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(locator.path));
  MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd.get(), locator.path));
  if (!S_ISREG(st.mode)) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: not a regular file", locator.path));
  }
  ArchivePtr a = new_reader();
  if (!a || la().archive_read_open_fd(a.get(), fd.get(), k_read_block_bytes) != ARCHIVE_OK) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: not a readable tar or zip archive", locator.path));
  }
  std::vector<ScanError> problems;
  ArchiveWalk walk(a.get(), locator.path, [&](ScanError &&e) { problems.push_back(std::move(e)); });
  auto failed = [&](std::string_view what) -> core::Error {
    std::string cause = problems.empty() ? std::string(what)
                                         : fmt::format("{} {}: {}", what, problems.back().position,
                                                       problems.back().cause);
    return core::Error{core::ErrorCode::data,
                       fmt::format("{}: member '{}': {}", locator.path, locator.member, cause), {}};
  };
  std::unordered_set<std::string> seen;
  while (auto member = walk.next()) {
    const bool duplicate = !seen.insert(*member).second;
    if (*member != locator.member || duplicate) {
      if (consume_as_scan(walk, *member, duplicate) == Stop::archive) {
        return std::unexpected(failed("the archive could not be read up to the member"));
      }
      continue;
    }
    return at_member(walk, failed);
  }
  if (!problems.empty()) {
    return std::unexpected(failed("the archive could not be read up to the member"));
  }
  return core::fail(core::ErrorCode::no_input,
                    fmt::format("{}: the archive holds no member '{}'", locator.path, locator.member));
}

} // namespace

core::Result<std::string> read_archive_item_bytes(const Locator &locator) {
  if (locator.node_id != 0) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("archive item {} member '{}' node {:#x}: an item of a PST member has no byte range "
                                  "(render_archive_pst_items renders it)",
                                  locator.path, locator.member, locator.node_id));
  }
  return at_archive_member<std::string>(locator, [&](ArchiveWalk &walk, auto &failed) -> core::Result<std::string> {
    std::string out;
    std::uint64_t pos = 0;
    const std::uint64_t end = locator.length > 0 ? locator.offset + locator.length : UINT64_MAX;
    std::string_view block;
    for (;;) {
      Stop s = walk.read_block(block);
      if (s != Stop::none) {
        return std::unexpected(failed("the member could not be read"));
      }
      if (block.empty()) {
        break;
      }
      const std::uint64_t from = std::max(pos, locator.offset);
      const std::uint64_t to = std::min(pos + block.size(), end);
      if (from < to) {
        out.append(block.substr(static_cast<std::size_t>(from - pos), static_cast<std::size_t>(to - from)));
      }
      pos += block.size();
      if (pos >= end) {
        break;
      }
    }
    return out;
  });
}

core::Result<std::map<std::uint64_t, core::Result<PstRendering>>>
render_archive_pst_items(const Locator &member, const std::vector<std::uint64_t> &node_ids) {
  using Renderings = std::map<std::uint64_t, core::Result<PstRendering>>;
  const std::string dir = spool_dir();
  if (dir.empty()) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("{}: member '{}': no state directory for the PST's temporary copy", member.path,
                                  member.member));
  }
  return at_archive_member<Renderings>(member, [&](ArchiveWalk &walk, auto &failed) -> core::Result<Renderings> {
    // As the scan read it: a private temporary copy, bounded, rendered by the PST worker.
    SpoolFile spool;
    MAILDSAR_TRY(spool.create(dir));
    const std::uint64_t max_pst = archive_limits().max_pst_bytes;
    std::uint64_t size = 0;
    std::string_view block;
    for (;;) {
      if (walk.read_block(block, max_pst) != Stop::none) {
        return std::unexpected(failed("the PST member could not be read"));
      }
      if (block.empty()) {
        break;
      }
      size += block.size();
      if (size > max_pst) {
        return std::unexpected(failed("the PST member is larger than limits.archive_max_pst_mib"));
      }
      MAILDSAR_TRY(core::write_all(spool.fd(), block, spool.path()));
    }
    spool.close();
    return render_pst_items(spool.path(), node_ids);
  });
}

core::Result<std::unique_ptr<Connector>> make_archive_connector(const core::SourceConfig &source) {
  if (!source.format.empty()) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': type archive takes no format (tar, compressed tar and zip are "
                                  "recognised by their content)",
                                  source.name));
  }
  return std::unique_ptr<Connector>(std::make_unique<ArchiveConnector>(source));
}

} // namespace maildsar::connectors
