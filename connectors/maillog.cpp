// SPDX-License-Identifier: GPL-3.0-or-later
// The maillog connector: MTA delivery logs and access logs (postfix, exim, sendmail, dovecot,
// Exchange message tracking, anything else in a mail.log) read into log-transaction items.
//
// Reading: the file is streamed in chunks (plain or gzip, detected by magic bytes) and split into
// lines of at most k_max_line bytes, which the file's FileScanner (maillog/scanner.hpp) turns
// into transactions. The formats live in maillog/: one file per format behind the interface of
// maillog/format.hpp, listed in maillog/registry.cpp.
#include "connectors/maillog.hpp"
#include "connectors/log_range.hpp"

#include "connectors/maillog/format.hpp"
#include "connectors/maillog/gz_access.hpp"
#include "connectors/maillog/range_scanner.hpp"
#include "connectors/maillog/scanner.hpp"
#include "connectors/maillog/text.hpp"
#include "core/hash.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <cerrno>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace maildsar::connectors {

namespace {

using maillog::RangeScanner;
using maillog::SourceFormat;
using std::string_view;

constexpr std::size_t k_max_line = std::size_t{1} << 20; // longer lines are skipped (ScanError)
constexpr std::size_t k_chunk = std::size_t{1} << 16;
constexpr std::size_t k_fingerprint_bytes = 4096;

// ---------------------------------------------------------------------------------------------
// Reading (plain or gzip)

class ByteReader {
public:
  /** Opens `path`: plain, or gzip (by its magic bytes; read by gz::Reader). */
  static core::Result<ByteReader> open(const std::string &path) {
    MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(path));
    MAILDSAR_TRY_ASSIGN(std::string magic, core::read_range(fd.get(), 0, 2, path));
    ByteReader r;
    r.m_path = path;
    if (magic == "\x1f\x8b") {
      MAILDSAR_TRY_ASSIGN(gz::Reader gz, gz::Reader::open(std::move(fd), path));
      r.m_gz.emplace(std::move(gz));
    } else {
      r.m_fd = std::move(fd);
    }
    return r;
  }

  [[nodiscard]] bool compressed() const { return m_gz.has_value(); }
  [[nodiscard]] int fd() const { return m_gz ? m_gz->fd() : m_fd.get(); }
  /** The gzip reader (compressed() only). */
  [[nodiscard]] gz::Reader &gz() { return *m_gz; }

  /** Positions a plain file at `offset`. */
  core::Status seek(std::uint64_t offset) {
    if (::lseek(m_fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0) {
      return std::unexpected(core::errno_error("maillog " + m_path, errno));
    }
    return {};
  }

  /**
   * Reads up to n bytes; 0 = end. A gzip stream that ends early or is corrupt gives an
   * ErrorCode::data error (what was decompressed before it has been returned already).
   */
  core::Result<std::size_t> read(char *buf, std::size_t n) {
    if (m_gz) {
      return m_gz->read(buf, n);
    }
    for (;;) {
      ssize_t got = ::read(m_fd.get(), buf, n);
      if (got < 0) {
        if (errno == EINTR) {
          continue;
        }
        return std::unexpected(core::errno_error("maillog " + m_path, errno));
      }
      return static_cast<std::size_t>(got);
    }
  }

private:
  ByteReader() = default;
  std::string m_path;
  core::Fd m_fd;
  std::optional<gz::Reader> m_gz;
};

// ---------------------------------------------------------------------------------------------
// The per-file scanner


/** ErrorCode::usage unless `range.parts` are as LogRange says. */
core::Status check_parts(const LogRange &range) {
  if (range.parts.empty()) {
    return {};
  }
  bool ok = range.parts.front().from == range.from && range.lines_before &&
            *range.lines_before == range.parts.front().lines_before;
  for (std::size_t i = 0; ok && i < range.parts.size(); ++i) {
    const LogPart &p = range.parts[i];
    ok = p.from < p.to && p.to <= range.to &&
         (i == 0 || (p.from >= range.parts[i - 1].to && p.lines_before >= range.parts[i - 1].lines_before));
  }
  if (!ok) {
    return core::fail(core::ErrorCode::usage, "scan_log_range: the parts of a range must be ascending, "
                                              "disjoint, non-empty, within it and begin where it does");
  }
  return {};
}

/** Reads and drops the bytes of a compressed log from offset `at` (where it is) to `to`. */
core::Status skip_bytes(ByteReader &reader, std::uint64_t at, std::uint64_t to, const std::string &path) {
  std::string skip(k_chunk, '\0');
  for (std::uint64_t done = at; done < to;) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(k_chunk, to - done));
    MAILDSAR_TRY_ASSIGN(std::size_t got, reader.read(skip.data(), want));
    if (got == 0) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("maillog {}: offset {} is past the end of the content", path, to));
    }
    done += got;
  }
  return {};
}

/** Counts '\n' in the first `offset` bytes and checks that `offset` starts a line. */
core::Result<std::uint64_t> lines_before(ByteReader &reader, std::uint64_t offset,
                                         const std::string &path) {
  std::string buf(k_chunk, '\0');
  std::uint64_t done = 0;
  std::uint64_t lines = 0;
  char last = '\n';
  while (done < offset) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(k_chunk, offset - done));
    MAILDSAR_TRY_ASSIGN(std::size_t got, reader.read(buf.data(), want));
    if (got == 0) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("maillog {}: offset {} is past the end of the file", path,
                                    offset));
    }
    lines += maillog::count_newlines(string_view(buf.data(), got));
    last = buf[got - 1];
    done += got;
  }
  if (last != '\n') {
    return core::fail(core::ErrorCode::data,
                      fmt::format("maillog {}: offset {} is not at the start of a line", path,
                                  offset));
  }
  return lines;
}

/**
 * Appends `chunk` (decompressed bytes starting at offset `at`) to the line being assembled and
 * calls `finish_line(end)` with the offset after each newline. A line longer than k_max_line is
 * marked `overlong` and not kept (finish_line reports it and resets both).
 */
template <typename Finish>
void feed_lines(string_view chunk, std::uint64_t at, std::string &line, bool &overlong,
                Finish &&finish_line) {
  while (!chunk.empty()) {
    const std::size_t nl = chunk.find('\n');
    const string_view part = chunk.substr(0, nl);
    if (!overlong) {
      if (line.size() + part.size() > k_max_line) {
        overlong = true;
        line.clear();
        line.shrink_to_fit();
      } else {
        line.append(part);
      }
    }
    if (nl == string_view::npos) {
      return;
    }
    at += nl + 1;
    finish_line(at);
    chunk.remove_prefix(nl + 1);
  }
}

/**
 * Reads decompressed bytes [range.from, range.to) of `path` line by line into a RangeScanner (a FileScanner)
 * (Connector::scan and scan_log_range). A compressed log is decompressed from its start; the
 * bytes before `from` are skipped (counted for their lines when `lines_before` is unknown). With
 * `range.parts`, only the parts are read (the bytes between them are skipped: seeked over in a
 * plain log, decompressed and dropped in a compressed one).
 */
core::Status scan_content(const core::SourceConfig &source, const SourceFormat &format,
                          const std::string &path, const LogRange &range, ItemSink &sink) {
  MAILDSAR_TRY_ASSIGN(ByteReader reader, ByteReader::open(path));
  std::int64_t mtime_ns = range.mtime_ns;
  if (mtime_ns == 0 && !reader.compressed()) {
    if (auto st = core::fstat_fd(reader.fd(), path)) {
      mtime_ns = st->mtime_ns;
    }
  } else if (mtime_ns == 0) {
    if (auto st = core::lstat_file(path)) {
      mtime_ns = st->mtime_ns;
    }
  }
  std::uint64_t line_no = 0;
  if (range.from > 0 && range.lines_before) {
    line_no = *range.lines_before;
    if (reader.compressed()) {
      MAILDSAR_TRY(skip_bytes(reader, 0, range.from, path));
    } else {
      MAILDSAR_TRY(reader.seek(range.from));
    }
  } else if (range.from > 0) {
    if (!reader.compressed()) {
      MAILDSAR_TRY(reader.seek(0));
    }
    MAILDSAR_TRY_ASSIGN(line_no, lines_before(reader, range.from, path));
  } else if (!reader.compressed()) {
    MAILDSAR_TRY(reader.seek(0));
  }
  if (auto *log_sink = dynamic_cast<LogSink *>(&sink)) {
    log_sink->started(line_no);
  }
  RangeScanner scanner(source, format, path, mtime_ns / 1000000000, sink);
  std::string buf(k_chunk, '\0');
  std::string line;
  bool overlong = false;
  std::uint64_t pos = range.from;        // offset of the next byte read
  std::uint64_t line_begin = range.from; // offset of the line being assembled
  auto finish_line = [&](std::uint64_t end) {
    ++line_no;
    if (overlong) {
      sink.error(ScanError{path, fmt::format("line {}", line_no),
                           fmt::format("line longer than {} bytes skipped", k_max_line)});
    } else {
      scanner.line(line_no, line, line_begin, end);
    }
    line.clear();
    overlong = false;
    line_begin = end;
  };
  std::size_t part = 0; // in range.parts: the one being read
  auto stop_at = [&] { return range.parts.empty() ? range.to : std::min(range.to, range.parts[part].to); };
  for (;;) {
    if (pos >= stop_at()) {
      if (part + 1 >= range.parts.size()) {
        break;
      }
      // The next part: each part ends at a line start, so no line is being assembled here.
      if (!line.empty() || overlong) {
        finish_line(pos);
      }
      const LogPart &next = range.parts[++part];
      if (reader.compressed()) {
        MAILDSAR_TRY(skip_bytes(reader, pos, next.from, path));
      } else {
        MAILDSAR_TRY(reader.seek(next.from));
      }
      pos = next.from;
      line_begin = next.from;
      line_no = next.lines_before;
      continue;
    }
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), stop_at() - pos));
    auto got = reader.read(buf.data(), want);
    if (!got) {
      if (got.error().code == core::ErrorCode::data) { // damaged gzip: keep what was read
        sink.error(ScanError{path, fmt::format("line {}", line_no + 1), got.error().message});
        break;
      }
      return std::unexpected(got.error());
    }
    if (*got == 0) {
      break;
    }
    feed_lines(string_view(buf.data(), *got), pos, line, overlong, finish_line);
    pos += *got;
  }
  if (!line.empty() || overlong) {
    finish_line(pos); // last line without a newline
  }
  scanner.finish();
  return {};
}

/** scan_log_ranges() of a compressed log: one pass of decompression, a scanner per range. */
core::Status scan_compressed_ranges(const core::SourceConfig &source, const SourceFormat &format,
                                    const std::string &path, std::span<const LogRange> ranges,
                                    std::span<ItemSink *const> sinks, const gz::Index *points) {
  MAILDSAR_TRY_ASSIGN(ByteReader reader, ByteReader::open(path));
  std::int64_t file_mtime_ns = 0;
  if (auto st = core::lstat_file(path)) {
    file_mtime_ns = st->mtime_ns;
  }
  std::vector<std::size_t> order(ranges.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ranges[a].from < ranges[b].from; });
  std::uint64_t last_to = 0;
  for (const LogRange &r : ranges) {
    last_to = std::max(last_to, r.to);
  }
  std::vector<std::unique_ptr<RangeScanner>> scanners(ranges.size());
  std::vector<bool> done(ranges.size(), false);
  std::size_t next = 0; // in `order`: the next range to start
  std::vector<std::size_t> active;
  std::uint64_t first_end = k_content_end; // the least `to` of the active ranges
  auto finish_before = [&](std::uint64_t begin) { // ranges that end at or before `begin` are over
    if (begin < first_end) {
      return; // none (checked for every line: the active ranges are not walked for nothing)
    }
    first_end = k_content_end;
    std::erase_if(active, [&](std::size_t i) {
      if (ranges[i].to <= begin) {
        scanners[i]->finish();
        scanners[i].reset();
        done[i] = true;
        return true;
      }
      first_end = std::min(first_end, ranges[i].to);
      return false;
    });
  };
  // A range with parts gets only the lines that begin in them; `cursor` is its first part that
  // ends after the line being looked at (lines come in ascending order).
  std::vector<std::size_t> cursor(ranges.size(), 0);
  auto part_after = [&](std::size_t i, std::uint64_t at) {
    const std::vector<LogPart> &parts = ranges[i].parts;
    while (cursor[i] < parts.size() && parts[cursor[i]].to <= at) {
      ++cursor[i];
    }
    return cursor[i];
  };
  auto in_parts = [&](std::size_t i, std::uint64_t at) {
    const std::vector<LogPart> &parts = ranges[i].parts;
    if (parts.empty()) {
      return true;
    }
    const std::size_t c = part_after(i, at);
    return c < parts.size() && parts[c].from <= at;
  };
  std::uint64_t line_no = 0;
  std::uint64_t pos = 0;
  std::uint64_t line_begin = 0;
  std::string buf(k_chunk, '\0');
  std::string line;
  bool overlong = false;
  auto finish_line = [&](std::uint64_t end) {
    ++line_no;
    finish_before(line_begin);
    while (next < order.size() && ranges[order[next]].from <= line_begin) {
      const std::size_t i = order[next++];
      if (ranges[i].from == line_begin && ranges[i].to > line_begin) {
        const std::int64_t mtime_ns = ranges[i].mtime_ns != 0 ? ranges[i].mtime_ns : file_mtime_ns;
        if (auto *log_sink = dynamic_cast<LogSink *>(sinks[i])) {
          log_sink->started(line_no - 1);
        }
        scanners[i] = std::make_unique<RangeScanner>(source, format, path, mtime_ns / 1000000000, *sinks[i]);
        active.push_back(i);
        first_end = std::min(first_end, ranges[i].to);
      } else {
        done[i] = true; // not at a line start, or empty: it gets no line (its caller sees why)
      }
    }
    for (std::size_t i : active) {
      if (end <= ranges[i].to && in_parts(i, line_begin)) {
        if (overlong) {
          sinks[i]->error(ScanError{path, fmt::format("line {}", line_no),
                                    fmt::format("line longer than {} bytes skipped", k_max_line)});
        } else {
          scanners[i]->line(line_no, line, line_begin, end);
        }
      }
    }
    line.clear();
    overlong = false;
    line_begin = end;
  };
  // Between ranges (and between the parts of the ranges being read) nothing is parsed: the next
  // range's or part's start is reached by a restart point (when `points` has one past `pos`) and
  // by decompressing the rest, counting its lines. The skip stops one byte early, so that the
  // newline before the range ends a line as usual.
  auto skip_to_next = [&]() -> core::Result<bool> {
    std::uint64_t next_from = k_content_end;
    std::optional<std::uint64_t> next_lines; // lines before next_from, when a range or part says
    if (next < order.size()) {
      next_from = ranges[order[next]].from;
      next_lines = ranges[order[next]].lines_before;
    }
    for (std::size_t i : active) {
      const std::vector<LogPart> &parts = ranges[i].parts;
      if (parts.empty()) {
        return true; // reads every line
      }
      const std::size_t c = part_after(i, line_begin);
      if (c < parts.size()) {
        if (parts[c].from <= line_begin) {
          return true; // in one of its parts
        }
        if (parts[c].from < next_from) {
          next_from = parts[c].from;
          next_lines = parts[c].lines_before;
        }
      }
    }
    if (next_from == k_content_end) {
      return active.empty(); // nothing more to read for anyone (else: to the end, as before)
    }
    if (next_from == 0) {
      return true;
    }
    const std::uint64_t target = next_from - 1;
    if (target <= pos) {
      return true;
    }
    if (const gz::Point *p = points != nullptr ? points->before(target) : nullptr; p != nullptr && p->out > pos) {
      if (auto st = reader.gz().restart_at(*p); !st) {
        return std::unexpected(st.error().with_context("maillog " + path + ": "));
      }
      pos = p->out;
      line_no = p->lines;
    }
    // From a restart point the lines skipped need not be counted when the index says how many
    // lines come before the range or part (the byte before it ends the line before it: the
    // blocks' checks catch a file that no longer agrees). Read from the start, they are counted.
    const bool count = points == nullptr || !next_lines || *next_lines == 0;
    while (pos < target) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), target - pos));
      auto got = reader.read(buf.data(), want);
      if (!got) {
        if (got.error().code != core::ErrorCode::data) {
          return std::unexpected(got.error());
        }
        return false; // damaged gzip: no range gets a line past it
      }
      if (*got == 0) {
        return false;
      }
      if (count) {
        line_no += maillog::count_newlines(string_view(buf.data(), *got));
      }
      pos += *got;
    }
    if (!count) {
      line_no = *next_lines - 1;
    }
    line.clear();
    overlong = false;
    line_begin = pos;
    return true;
  };
  // Where the parts being read end (every active range's current part, or its end when it is
  // read whole): a read stops there, for the next part may lie past a restart point, and what a
  // read inflates beyond it would be inflated only to be skipped.
  auto reading_end = [&]() {
    std::uint64_t end = 0;
    for (std::size_t i : active) {
      const std::vector<LogPart> &parts = ranges[i].parts;
      if (parts.empty()) {
        end = std::max(end, ranges[i].to);
        continue;
      }
      const std::size_t c = part_after(i, line_begin);
      if (c < parts.size() && parts[c].from <= line_begin) {
        end = std::max(end, parts[c].to);
      }
    }
    return end;
  };
  while (pos < last_to) {
    MAILDSAR_TRY_ASSIGN(bool more, skip_to_next());
    if (!more) {
      break;
    }
    std::uint64_t until = last_to;
    if (const std::uint64_t end = reading_end(); end > pos) {
      until = std::min(until, end);
    }
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), until - pos));
    auto got = reader.read(buf.data(), want);
    if (!got) {
      if (got.error().code != core::ErrorCode::data) {
        return std::unexpected(got.error());
      }
      for (std::size_t i : active) { // damaged gzip: keep what was read
        sinks[i]->error(ScanError{path, fmt::format("line {}", line_no + 1), got.error().message});
      }
      break;
    }
    if (*got == 0) {
      break;
    }
    feed_lines(string_view(buf.data(), *got), pos, line, overlong, finish_line);
    pos += *got;
  }
  if (!line.empty() || overlong) {
    finish_line(pos); // last line without a newline
  }
  finish_before(k_content_end);
  return {};
}

class MaillogConnector final : public Connector {
public:
  MaillogConnector(core::SourceConfig source, SourceFormat format)
      : m_source(std::move(source)), m_format(format) {}

  [[nodiscard]] StoreKind kind() const override { return StoreKind::maillog; }
  [[nodiscard]] bool supports_append() const override { return true; }

  [[nodiscard]] core::Result<std::vector<FileEntry>> list_files(ItemSink &errors) const override {
    MAILDSAR_TRY_ASSIGN(auto matches, core::expand_glob(m_source.path));
    std::vector<FileEntry> out;
    for (auto &m : matches) {
      auto st = core::lstat_file(m.path);
      if (!st) {
        errors.error(ScanError{m.path, "", st.error().message});
        continue;
      }
      if (S_ISLNK(st->mode)) {
        errors.error(ScanError{m.path, "", "symbolic link skipped"});
        continue;
      }
      if (!S_ISREG(st->mode)) {
        if (!S_ISDIR(st->mode)) {
          errors.error(ScanError{m.path, "", "not a regular file, skipped"});
        }
        continue;
      }
      if (!m_source.root.empty()) {
        std::string root = m_source.root;
        if (root.back() != '/') {
          root += '/';
        }
        if (!m.path.starts_with(root)) {
          errors.error(ScanError{m.path, "", "outside the source root " + m_source.root +
                                                 ", skipped"});
          continue;
        }
      }
      FileEntry e;
      e.path = m.path;
      e.owner = core::expand_owner(m_source.owner, m.captures);
      e.stat = *st;
      out.push_back(std::move(e));
    }
    return out;
  }

  [[nodiscard]] core::Status scan(const FileEntry &file, std::uint64_t from_offset,
                                  ItemSink &sink) const override {
    try {
      return scan_impl(file, from_offset, sink);
    } catch (...) {
      return std::unexpected(core::error_from_current_exception("maillog " + file.path + ": "));
    }
  }

private:
  core::Status scan_impl(const FileEntry &file, std::uint64_t from_offset, ItemSink &sink) const {
    if (from_offset > 0) {
      MAILDSAR_TRY_ASSIGN(ByteReader probe, ByteReader::open(file.path));
      if (probe.compressed()) {
        return core::fail(core::ErrorCode::data,
                          fmt::format("maillog {}: a compressed log cannot be read from offset {}",
                                      file.path, from_offset));
      }
    }
    LogRange range;
    range.from = from_offset;
    // Transactions that began before the offset are split: the new lines of such a queue id
    // become an item of their own (same queue id, only the new line numbers).
    range.lines_before = from_offset > 0 ? std::nullopt : std::optional<std::uint64_t>(0);
    range.mtime_ns = file.stat.mtime_ns;
    return scan_content(m_source, m_format, file.path, range, sink);
  }

  core::SourceConfig m_source;
  SourceFormat m_format;
};

} // namespace

bool keyed_log_lines(const core::SourceConfig &source) {
  auto format = SourceFormat::from_name(source.format);
  return format && format->keyed_lines();
}

core::Result<std::unique_ptr<Connector>> make_maillog_connector(const core::SourceConfig &source) {
  auto format = SourceFormat::from_name(source.format);
  if (!format) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': unknown maillog format '{}'", source.name,
                                  source.format),
                      "formats are " + SourceFormat::names());
  }
  return std::make_unique<MaillogConnector>(source, *format);
}

core::Status scan_log_range(const core::SourceConfig &source, const std::string &path,
                           const LogRange &range, ItemSink &sink) {
  auto format = SourceFormat::from_name(source.format);
  if (!format) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': unknown maillog format '{}'", source.name,
                                  source.format),
                      "formats are " + SourceFormat::names());
  }
  MAILDSAR_TRY(check_parts(range));
  try {
    return scan_content(source, *format, path, range, sink);
  } catch (...) {
    return std::unexpected(core::error_from_current_exception("maillog " + path + ": "));
  }
}

core::Status scan_log_ranges(const core::SourceConfig &source, const std::string &path,
                            std::span<const LogRange> ranges, std::span<ItemSink *const> sinks,
                            std::string_view gz_points) {
  if (ranges.size() != sinks.size()) {
    return core::fail(core::ErrorCode::usage, "scan_log_ranges: one sink per range");
  }
  for (const LogRange &range : ranges) {
    MAILDSAR_TRY(check_parts(range));
  }
  auto format = SourceFormat::from_name(source.format);
  if (!format) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': unknown maillog format '{}'", source.name,
                                  source.format),
                      "formats are " + SourceFormat::names());
  }
  try {
    MAILDSAR_TRY_ASSIGN(ByteReader probe, ByteReader::open(path));
    if (probe.compressed()) {
      std::optional<gz::Index> points;
      if (!gz_points.empty()) {
        MAILDSAR_TRY_ASSIGN(points, gz::Index::parse(gz_points));
        MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(probe.fd(), path));
        if (st.size != points->compressed_size) {
          return core::fail(core::ErrorCode::data,
                            fmt::format("maillog {}: its gzip restart points are of another file", path));
        }
      }
      return scan_compressed_ranges(source, *format, path, ranges, sinks, points ? &*points : nullptr);
    }
    for (std::size_t i = 0; i < ranges.size(); ++i) {
      MAILDSAR_TRY(scan_content(source, *format, path, ranges[i], *sinks[i]));
    }
    return {};
  } catch (...) {
    return std::unexpected(core::error_from_current_exception("maillog " + path + ": "));
  }
}

core::Result<std::string> content_fingerprint(const std::string &path) {
  MAILDSAR_TRY_ASSIGN(std::string head, read_content_head(path));
  return core::sha256_hex(head);
}

core::Result<std::string> read_content_head(const std::string &path) {
  MAILDSAR_TRY_ASSIGN(ByteReader reader, ByteReader::open(path));
  if (!reader.compressed()) {
    MAILDSAR_TRY(reader.seek(0));
  }
  std::string data(k_fingerprint_bytes, '\0');
  std::size_t have = 0;
  while (have < data.size()) {
    auto got = reader.read(data.data() + have, data.size() - have);
    if (!got) {
      return std::unexpected(got.error().with_context("maillog " + path + ": "));
    }
    if (*got == 0) {
      break;
    }
    have += *got;
  }
  data.resize(have);
  return data;
}

core::Result<ContentProbe> probe_content(const std::string &path, std::uint64_t mark) {
  static_assert(k_content_probe_bytes == k_fingerprint_bytes);
  MAILDSAR_TRY_ASSIGN(ByteReader reader, ByteReader::open(path));
  ContentProbe probe;
  probe.compressed = reader.compressed();
  auto window_start = [](std::uint64_t end) {
    return end > k_fingerprint_bytes ? end - k_fingerprint_bytes : 0;
  };
  if (!reader.compressed()) {
    MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(reader.fd(), path));
    probe.size = st.size;
    auto read_hash = [&](std::uint64_t end) -> core::Result<std::string> {
      std::uint64_t start = window_start(end);
      MAILDSAR_TRY_ASSIGN(std::string bytes, core::read_range(reader.fd(), start, end - start, path));
      if (bytes.size() != end - start) {
        return core::fail(core::ErrorCode::data,
                          fmt::format("maillog {}: shorter than {} bytes", path, end));
      }
      return core::sha256_hex(bytes);
    };
    MAILDSAR_TRY_ASSIGN(probe.head,
                        core::read_range(reader.fd(), 0,
                                         std::min<std::uint64_t>(k_fingerprint_bytes, probe.size),
                                         path));
    std::uint64_t at = mark == k_content_end ? probe.size : mark;
    if (at <= probe.size) {
      MAILDSAR_TRY_ASSIGN(probe.mark_fingerprint, read_hash(at));
    }
    MAILDSAR_TRY_ASSIGN(probe.end_fingerprint, read_hash(probe.size));
    return probe;
  }
  // Compressed: stream it, keeping the last 4096 bytes before each chunk, and record restart
  // points for the query side (gz_access.hpp).
  reader.gz().record_points(gz::k_gz_point_spacing, gz::k_gz_bytes_per_window_byte);
  std::string buf(k_chunk, '\0');
  std::string window; // bytes [pos - window.size(), pos)
  std::uint64_t pos = 0;
  for (;;) {
    auto got = reader.read(buf.data(), buf.size());
    if (!got) {
      return std::unexpected(got.error().with_context("maillog " + path + ": "));
    }
    if (*got == 0) {
      break;
    }
    std::string_view chunk(buf.data(), *got);
    if (probe.head.size() < k_fingerprint_bytes) {
      probe.head.append(chunk.substr(0, k_fingerprint_bytes - probe.head.size()));
    }
    std::string combined = window;
    combined.append(chunk);
    std::uint64_t start = pos - window.size(); // offset of combined[0]
    std::uint64_t end = pos + *got;
    if (mark != k_content_end && mark > pos && mark <= end) {
      std::uint64_t from = window_start(mark);
      probe.mark_fingerprint = core::sha256_hex(std::string_view(combined).substr(
          static_cast<std::size_t>(from - start), static_cast<std::size_t>(mark - from)));
    }
    pos = end;
    std::size_t keep = std::min<std::size_t>(combined.size(), k_fingerprint_bytes);
    window.assign(combined, combined.size() - keep, keep);
  }
  probe.size = pos;
  probe.gz_points = reader.gz().take_index().serialise();
  probe.end_fingerprint = core::sha256_hex(window);
  if (mark == 0) {
    probe.mark_fingerprint = core::sha256_hex(std::string_view());
  } else if (mark == k_content_end) {
    probe.mark_fingerprint = probe.end_fingerprint;
  }
  return probe;
}

} // namespace maildsar::connectors
