// SPDX-License-Identifier: GPL-3.0-or-later
// Rewriting a backup archive without some of its members or mbox messages (a source with
// "rewrite": true; erasure/execute.cpp): same format and compression filter, a temporary file
// beside the archive, fsync, read-back check, rename.
#include "connectors/archive.hpp"

#include "connectors/archive_internal.hpp"
#include "connectors/libarchive.hpp"
#include "connectors/limits.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

namespace maildsar::connectors {

using namespace archive_detail; // NOLINT(google-build-using-namespace): this module's own helpers

namespace {

struct ArchiveWriteFree {
  void operator()(struct archive *a) const { la().archive_write_free(a); }
};
using ArchiveWriterPtr = std::unique_ptr<struct archive, ArchiveWriteFree>;

/** The writer's output: the temporary file (write errors kept for the caller). */
struct WriteTarget {
  core::NewFile *file = nullptr;
  std::optional<core::Error> error;
};

la_ssize_t write_to_target(struct archive * /*a*/, void *client, const void *buf, size_t n) {
  auto *target = static_cast<WriteTarget *>(client);
  if (auto written = target->file->write(std::string_view(static_cast<const char *>(buf), n)); !written) {
    target->error = written.error();
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

core::Status hook_at(const std::function<core::Status(std::string_view)> &hook, std::string_view step) {
  return hook ? hook(step) : core::Status{};
}

/** A regular member's whole content (bounded); ErrorCode::data when it cannot be read. */
core::Result<std::string> read_whole_member(struct archive *r, const std::string &path, const std::string &member,
                                            std::uint64_t max) {
  std::string out;
  for (;;) {
    const void *buf = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    int rc = la().archive_read_data_block(r, &buf, &size, &offset);
    if (rc == ARCHIVE_EOF) {
      return out;
    }
    if (rc < ARCHIVE_WARN) {
      return core::fail(core::ErrorCode::data, fmt::format("{}: member '{}' cannot be read ({}); nothing changed", path,
                                                           member, archive_error(r)));
    }
    const auto end = static_cast<std::uint64_t>(offset) + size;
    if (end > max) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("{}: member '{}' larger than limits.archive_max_member_mib; nothing changed", path,
                                    member));
    }
    if (static_cast<std::uint64_t>(offset) > out.size()) {
      out.resize(static_cast<std::size_t>(offset), '\0'); // a sparse hole
    }
    out.append(static_cast<const char *>(buf), size);
  }
}

/** The scan's archive-wide bounds, applied while an archive is rewritten. */
struct RewriteBudget {
  ArchiveLimits limits;
  std::chrono::steady_clock::time_point deadline;
  std::uint64_t total = 0; // decompressed bytes read so far

  core::Status add(struct archive *r, const std::string &path, std::uint64_t bytes) {
    total += bytes;
    const auto stored = static_cast<std::uint64_t>(std::max<la_int64_t>(la().archive_filter_bytes(r, -1), 1));
    if (total > limits.max_total_bytes || (total >= k_archive_ratio_floor && total / stored > limits.max_ratio) ||
        std::chrono::steady_clock::now() > deadline) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("{}: the archive exceeds limits.archive_max_total_gib, archive_max_ratio or "
                                    "archive_timeout_seconds while it is rewritten; nothing changed",
                                    path));
    }
    return {};
  }
};

/** Copies the current member's data to the writer, block by block (holes as zeros), within the
    budget. */
core::Status copy_member_data(struct archive *r, struct archive *w, const std::string &path, const std::string &member,
                              RewriteBudget &budget) {
  std::uint64_t written = 0;
  const std::string zeros(k_read_block_bytes, '\0');
  for (;;) {
    const void *buf = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    int rc = la().archive_read_data_block(r, &buf, &size, &offset);
    if (rc == ARCHIVE_EOF) {
      return {};
    }
    if (rc < ARCHIVE_WARN) {
      return core::fail(core::ErrorCode::data, fmt::format("{}: member '{}' cannot be read ({}); nothing changed", path,
                                                           member, archive_error(r)));
    }
    const std::uint64_t hole =
        static_cast<std::uint64_t>(offset) > written ? static_cast<std::uint64_t>(offset) - written : 0;
    MAILDSAR_TRY(budget.add(r, path, hole + size)); // before a hole is filled with zeros
    while (written < static_cast<std::uint64_t>(offset)) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), static_cast<std::uint64_t>(offset) - written));
      if (la().archive_write_data(w, zeros.data(), n) < 0) {
        return core::fail(core::ErrorCode::io, fmt::format("{}: writing member '{}': {}", path, member, archive_error(w)));
      }
      written += n;
    }
    if (size > 0 && la().archive_write_data(w, buf, size) < 0) {
      return core::fail(core::ErrorCode::io, fmt::format("{}: writing member '{}': {}", path, member, archive_error(w)));
    }
    written += size;
  }
}

/** Entries of an archive file read whole (the rewritten copy's check); ErrorCode::data if it does not read. */
core::Result<std::uint64_t> count_entries(int fd, const std::string &path) {
  if (::lseek(fd, 0, SEEK_SET) != 0) {
    return std::unexpected(core::errno_error(path, errno));
  }
  ArchivePtr a = new_reader();
  if (!a || la().archive_read_open_fd(a.get(), fd, k_read_block_bytes) != ARCHIVE_OK) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: the rewritten copy does not read ({})", path,
                                                         a ? archive_error(a.get()) : std::string("out of memory")));
  }
  std::uint64_t n = 0;
  for (;;) {
    struct archive_entry *entry = nullptr;
    int rc = la().archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) {
      return n;
    }
    if (rc < ARCHIVE_WARN || la().archive_read_data_skip(a.get()) < ARCHIVE_WARN) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("{}: the rewritten copy does not read ({})", path, archive_error(a.get())));
    }
    ++n;
  }
}

} // namespace

core::Result<ArchiveRewrite> rewrite_archive(const std::string &path, std::span<const ArchiveCut> cuts,
                                             const std::function<core::Status(std::string_view)> &hook) {
  ArchiveRewrite result;
  result.removed.assign(cuts.size(), false);
  MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(path));
  struct stat before {};
  if (::fstat(fd.get(), &before) != 0) {
    return std::unexpected(core::errno_error(path, errno));
  }
  if (!S_ISREG(before.st_mode)) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: not a regular file", path));
  }
  const ArchiveLimits limits = archive_limits();
  RewriteBudget budget{limits, std::chrono::steady_clock::now() + std::chrono::seconds(limits.timeout_seconds)};
  ArchivePtr r = new_reader();
  if (!r || la().archive_read_open_fd(r.get(), fd.get(), k_read_block_bytes) != ARCHIVE_OK) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: not a readable tar or zip archive; nothing changed", path));
  }
  MAILDSAR_TRY_ASSIGN(core::NewFile temp, core::NewFile::create(path, static_cast<std::uint32_t>(before.st_mode & 07777U)));
  if (::fchown(temp.fd(), before.st_uid, before.st_gid) != 0 && (before.st_uid != ::geteuid() || errno != EPERM)) {
    return std::unexpected(core::errno_error(temp.temp_path() + ": fchown", errno));
  }
  // The target before the writer: archive_write_free flushes through the callback into it.
  WriteTarget target{&temp, std::nullopt};
  ArchiveWriterPtr w(la().archive_write_new());
  std::unordered_set<std::string> seen;
  std::uint64_t entries = 0;
  std::uint64_t kept = 0;
  bool opened = false;
  auto write_failed = [&](std::string_view what) {
    if (target.error) {
      return std::unexpected(target.error->with_context(path + ": "));
    }
    return std::unexpected(core::Error{core::ErrorCode::io, fmt::format("{}: {}: {}", path, what, archive_error(w.get())),
                                       "", std::nullopt});
  };
  for (;;) {
    struct archive_entry *entry = nullptr;
    int rc = la().archive_read_next_header(r.get(), &entry);
    if (rc == ARCHIVE_EOF) {
      break;
    }
    if (rc < ARCHIVE_WARN || entry == nullptr) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("{}: the archive does not read whole ({}); nothing changed", path, archive_error(r.get())));
    }
    if (++entries > limits.max_members) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("{}: more than limits.archive_max_members entries; nothing changed", path));
    }
    if (!opened) {
      // The same format and compression filter as the original (filter 0 is the decompressor
      // next to the format; the last one reads the file).
      if (la().archive_write_set_format(w.get(), la().archive_format(r.get())) != ARCHIVE_OK) {
        return core::fail(core::ErrorCode::data, fmt::format("{}: cannot write this archive format ({}); nothing changed",
                                                             path, archive_error(w.get())));
      }
      for (int i = la().archive_filter_count(r.get()) - 2; i >= 0; --i) {
        if (la().archive_write_add_filter(w.get(), la().archive_filter_code(r.get(), i)) != ARCHIVE_OK) {
          return core::fail(core::ErrorCode::data, fmt::format("{}: cannot write its compression ({}); nothing changed",
                                                               path, archive_error(w.get())));
        }
      }
      if (la().archive_filter_count(r.get()) > 1) {
        // no zero padding after compressed data (tar pads its blocks before compression, as
        // GNU tar and bsdtar do; a zstd reader takes trailing zeros for a broken frame)
        la().archive_write_set_bytes_in_last_block(w.get(), 1);
      }
      if (la().archive_write_open(w.get(), &target, nullptr, write_to_target, nullptr) != ARCHIVE_OK) {
        return write_failed("cannot start the rewritten copy");
      }
      opened = true;
    }
    const char *raw = la().archive_entry_pathname(entry);
    if (raw == nullptr || *raw == '\0' ||
        (la().archive_entry_filetype(entry) == AE_IFLNK && la().archive_entry_symlink(entry) == nullptr)) {
      // libarchive's writers dereference these (found by fuzzing: a SEGV in archive_write_header)
      return core::fail(core::ErrorCode::data,
                        fmt::format("{}: entry {} has no name (or a link without a target): the archive cannot be "
                                    "rewritten; nothing changed",
                                    path, entries));
    }
    const std::string member = raw;
    std::vector<std::size_t> mine;
    const bool first = seen.insert(member).second;
    if (la().archive_entry_filetype(entry) == AE_IFREG && la().archive_entry_hardlink(entry) == nullptr) {
      for (std::size_t i = 0; i < cuts.size(); ++i) {
        // a range is one of the first member of that path (as the scan read it); a whole member
        // goes wherever its bytes are, an appended copy of it too
        if (cuts[i].member == member && (first || cuts[i].length == 0)) {
          mine.push_back(i);
        }
      }
    }
    if (mine.empty()) {
      ++kept;
      if (la().archive_write_header(w.get(), entry) < ARCHIVE_WARN) {
        return write_failed(fmt::format("writing the header of '{}'", member));
      }
      if (la().archive_entry_size(entry) > 0 || la().archive_entry_filetype(entry) == AE_IFREG) {
        MAILDSAR_TRY(copy_member_data(r.get(), w.get(), path, member, budget));
      }
      continue;
    }
    MAILDSAR_TRY_ASSIGN(std::string content, read_whole_member(r.get(), path, member, limits.max_member_bytes));
    MAILDSAR_TRY(budget.add(r.get(), path, content.size()));
    bool whole = false;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (std::size_t i : mine) {
      const ArchiveCut &c = cuts[i];
      if (c.length == 0) {
        if (core::sha256_hex(content) == c.sha256) {
          result.removed[i] = true;
          whole = true;
        }
      } else if (c.offset <= content.size() && c.length <= content.size() - c.offset &&
                 core::sha256_hex(std::string_view(content).substr(static_cast<std::size_t>(c.offset),
                                                                   static_cast<std::size_t>(c.length))) == c.sha256) {
        result.removed[i] = true;
        ranges.emplace_back(c.offset, c.length);
      }
    }
    if (whole) {
      continue; // the member is left out
    }
    std::sort(ranges.begin(), ranges.end());
    std::string rest;
    std::uint64_t pos = 0;
    for (const auto &[offset, length] : ranges) {
      if (offset < pos) {
        continue; // overlapping ranges cannot come from one split; keep the first
      }
      rest.append(content, static_cast<std::size_t>(pos), static_cast<std::size_t>(offset - pos));
      pos = offset + length;
    }
    rest.append(content, static_cast<std::size_t>(pos), std::string::npos);
    ++kept;
    la().archive_entry_set_size(entry, static_cast<la_int64_t>(rest.size()));
    if (la().archive_write_header(w.get(), entry) < ARCHIVE_WARN) {
      return write_failed(fmt::format("writing the header of '{}'", member));
    }
    if (!rest.empty() && la().archive_write_data(w.get(), rest.data(), rest.size()) < 0) {
      return write_failed(fmt::format("writing member '{}'", member));
    }
  }
  if (std::none_of(result.removed.begin(), result.removed.end(), [](bool b) { return b; })) {
    return result; // nothing of ours is there any more: the archive is not touched
  }
  if (!opened) {
    return core::fail(core::ErrorCode::internal, fmt::format("{}: an item was removed from an empty archive", path));
  }
  if (la().archive_write_close(w.get()) != ARCHIVE_OK) {
    return write_failed("finishing the rewritten copy");
  }
  MAILDSAR_TRY(hook_at(hook, "archive:temp-written"));
  MAILDSAR_TRY(temp.sync());
  MAILDSAR_TRY(hook_at(hook, "archive:temp-synced"));
  MAILDSAR_TRY_ASSIGN(std::uint64_t written, count_entries(temp.fd(), temp.temp_path()));
  if (written != kept) {
    return core::fail(core::ErrorCode::io, fmt::format("{}: the rewritten copy holds {} entries, expected {}; nothing "
                                                       "changed",
                                                       path, written, kept));
  }
  struct stat after {};
  if (::stat(path.c_str(), &after) != 0 || after.st_ino != before.st_ino || after.st_size != before.st_size ||
      after.st_mtim.tv_sec != before.st_mtim.tv_sec || after.st_mtim.tv_nsec != before.st_mtim.tv_nsec) {
    return core::fail(core::ErrorCode::temp_fail,
                      fmt::format("{}: the archive changed while it was rewritten; nothing changed", path));
  }
  if (auto renamed = temp.rename_into_place(core::NewFile::Replace::yes); !renamed) {
    return std::unexpected(renamed.error().with_context("archive "));
  }
  MAILDSAR_TRY(hook_at(hook, "archive:renamed"));
  MAILDSAR_TRY(core::fsync_dir(core::parent_dir(path)));
  result.rewritten = true;
  return result;
}

} // namespace maildsar::connectors
