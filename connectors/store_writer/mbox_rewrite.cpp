// SPDX-License-Identifier: GPL-3.0-or-later
// The mbox rewrite: the cuts checked against their SHA-256 under the full lock set (dotlock,
// fcntl, flock), everything else copied to a temp file (copy_file_range where the kernel allows,
// bytes appended meanwhile copied too), then fsync and rename. The range copier and the copy of
// appended bytes are shared with the log rewrite.

#include "connectors/store_writer/internal.hpp"

#include "core/fs.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <numeric>
#include <vector>

namespace maildsar::connectors::store_writer_detail {
namespace {

constexpr std::uint64_t k_refresh_every = 16ULL << 20; // touch the dotlock every 16 MiB

} // namespace

// ---------------------------------------------------------------------------------------------
// Copying

core::Status RangeCopier::copy(std::uint64_t offset, std::uint64_t length) {
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

namespace {

core::Result<std::uint64_t> current_size(int fd, const std::string &path) {
  MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd, path));
  return st.size;
}

} // namespace

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
  std::uint64_t added_bytes = 0; // replacements written in the place of cuts
  bool any = false;
  for (std::size_t i = 0; i < cuts.size(); ++i) {
    const MboxCut &c = cuts[i];
    if (c.offset > st.size || c.length > st.size - c.offset) {
      continue; // beyond the end: stale
    }
    MAILDSAR_TRY_ASSIGN(std::string sha, hash_range(fd.get(), c.offset, c.length, path));
    if (sha == c.sha256) {
      result.removed[i] = true;
      any = true;
      removed_bytes += c.length;
      added_bytes += c.replacement ? c.replacement->size() : 0;
    }
  }
  if (!any) {
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
    if (cuts[i].replacement) {
      MAILDSAR_TRY(core::write_all(temp.fd(), *cuts[i].replacement, temp_path));
    }
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
  if (temp_size != final_end - removed_bytes + added_bytes) {
    return core::fail(core::ErrorCode::io,
                      fmt::format("mbox {}: the rewritten copy has {} bytes, expected {}; "
                                  "nothing changed",
                                  path, temp_size, final_end - removed_bytes + added_bytes));
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

} // namespace maildsar::connectors::store_writer_detail
