// SPDX-License-Identifier: GPL-3.0-or-later
// The log rewrite: given lines of a plain or gzip log replaced or removed after a check of their
// SHA-256 under an fcntl lock. Same-length edits of a plain log are written in place; any other
// edit streams the log through the edits into a temp file (gzip again for a gzip log), lines
// appended meanwhile copied too, then fsync and rename.

#include "connectors/store_writer/internal.hpp"

#include "core/fs.hpp"
#include "core/hash.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

namespace maildsar::connectors::store_writer_detail {

// ---------------------------------------------------------------------------------------------
// Logs

namespace {

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

} // namespace

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

} // namespace maildsar::connectors::store_writer_detail
