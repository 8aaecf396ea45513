// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/item_reader.hpp"

#include "connectors/archive.hpp"
#include "connectors/mbox.hpp"
#include "connectors/mta_queue.hpp"
#include "connectors/quarantine.hpp"
#include "core/fs.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <string_view>

namespace maildsar::connectors {
namespace {

constexpr std::uint64_t k_max_whole_file_bytes = 4ULL << 30;  // a message file read whole
constexpr std::uint64_t k_max_decompressed_bytes = 1ULL << 30; // as the quarantine connector
constexpr std::size_t k_chunk_bytes = std::size_t{1} << 17;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

core::Result<core::Fd> open_regular(const std::string &path) {
  MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(path));
  MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd.get(), path));
  if (!S_ISREG(st.mode)) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: not a regular file", path));
  }
  return fd;
}

core::Result<std::string> whole_file(const std::string &path) {
  return core::read_file(path, k_max_whole_file_bytes);
}

/** [offset, offset+length) of a plain file; shorter when the file is (now) shorter. */
core::Result<std::string> plain_range(const Locator &loc) {
  MAILDSAR_TRY_ASSIGN(core::Fd fd, open_regular(loc.path));
  return core::read_range(fd.get(), loc.offset, loc.length, loc.path);
}

bool is_gzip_magic(std::string_view head) {
  return head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
         static_cast<unsigned char>(head[1]) == 0x8b;
}

core::Status not_supported(const Locator &loc, std::string_view what) {
  return core::fail(core::ErrorCode::data,
                    fmt::format("{} item {}: {} not supported for this store kind",
                                to_string(loc.store), loc.path, what));
}

// ---------------------------------------------------------------------------------------------
// maillog

struct GzClose {
  void operator()(gzFile_s *f) const { gzclose(f); }
};

/** Streams a plain or gzip file (magic bytes decide) chunk by chunk into `on_chunk`. */
core::Status stream_content(const std::string &path,
                            const std::function<void(std::string_view)> &on_chunk) {
  MAILDSAR_TRY_ASSIGN(core::Fd fd, open_regular(path));
  MAILDSAR_TRY_ASSIGN(std::string magic, core::read_range(fd.get(), 0, 2, path));
  std::string buf(k_chunk_bytes, '\0');
  if (magic == "\x1f\x8b") {
    int raw = fd.release();
    std::unique_ptr<gzFile_s, GzClose> gz(gzdopen(raw, "rb"));
    if (!gz) {
      ::close(raw);
      return core::fail(core::ErrorCode::io, fmt::format("{}: cannot open gzip stream", path));
    }
    for (;;) {
      int got = gzread(gz.get(), buf.data(), static_cast<unsigned>(buf.size()));
      int errnum = Z_OK;
      const char *msg = gzerror(gz.get(), &errnum);
      if (got < 0 || (got == 0 && errnum != Z_OK)) {
        return core::fail(core::ErrorCode::data,
                          fmt::format("{}: compressed data truncated or corrupt ({})", path,
                                      msg != nullptr ? msg : "zlib error"));
      }
      if (got == 0) {
        return {};
      }
      on_chunk(std::string_view(buf.data(), static_cast<std::size_t>(got)));
    }
  }
  std::uint64_t offset = 0;
  for (;;) {
    MAILDSAR_TRY_ASSIGN(std::string part, core::read_range(fd.get(), offset, buf.size(), path));
    if (part.empty()) {
      return {};
    }
    offset += part.size();
    on_chunk(part);
  }
}

core::Result<std::string> log_lines(const Locator &loc) {
  if (loc.lines.empty()) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("maillog item {}: the locator names no lines", loc.path));
  }
  std::map<std::uint64_t, std::string> wanted;
  for (std::uint64_t n : loc.lines) {
    if (n == 0) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("maillog item {}: line number 0 (lines are 1-based)", loc.path));
    }
    wanted.emplace(n, std::string());
  }
  const std::uint64_t last = wanted.rbegin()->first;
  std::uint64_t line_no = 1;
  std::size_t found = 0;
  bool in_line = false; // bytes of line `line_no` were seen
  auto current = wanted.find(line_no);
  auto on_chunk = [&](std::string_view chunk) {
    while (!chunk.empty() && line_no <= last) {
      std::size_t nl = chunk.find('\n');
      std::string_view part = chunk.substr(0, nl);
      if (current != wanted.end()) {
        current->second.append(part);
      }
      in_line = true;
      if (nl == std::string_view::npos) {
        return;
      }
      if (current != wanted.end()) {
        ++found;
      }
      ++line_no;
      in_line = false;
      current = wanted.find(line_no);
      chunk.remove_prefix(nl + 1);
    }
  };
  MAILDSAR_TRY(stream_content(loc.path, on_chunk));
  if (in_line && current != wanted.end()) {
    ++found; // the last line has no newline
  }
  if (found < wanted.size()) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("maillog {}: line {} is beyond the end of the file", loc.path,
                                  last));
  }
  std::string out;
  bool first = true;
  for (std::uint64_t n : loc.lines) {
    if (!first) {
      out += '\n';
    }
    first = false;
    out += wanted[n];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// quarantine

enum class QuarantineShape { stored_file, header_body_pair, mbox_message };

struct QuarantineFile {
  QuarantineShape shape = QuarantineShape::stored_file;
  bool compressed = false;
  std::string body_path; // header_body_pair
};

core::Result<QuarantineFile> classify_quarantine(const Locator &loc) {
  QuarantineFile q;
  MAILDSAR_TRY_ASSIGN(core::Fd fd, open_regular(loc.path));
  MAILDSAR_TRY_ASSIGN(std::string head, core::read_range(fd.get(), 0, 2, loc.path));
  q.compressed = ends_with(loc.path, ".gz") || is_gzip_magic(head);
  if (loc.length > 0) {
    q.shape = QuarantineShape::mbox_message;
  } else if (ends_with(loc.path, ".header")) {
    std::string body = loc.path.substr(0, loc.path.size() - 7) + ".body";
    if (core::lstat_file(body)) {
      q.shape = QuarantineShape::header_body_pair;
      q.body_path = std::move(body);
    }
  }
  return q;
}

/** The quarantine file's content, decompressed when it is gzip data. */
core::Result<std::string> quarantine_content(const Locator &loc, const QuarantineFile &q) {
  MAILDSAR_TRY_ASSIGN(std::string stored, whole_file(loc.path));
  if (!q.compressed) {
    return stored;
  }
  auto inflated = gunzip(stored, k_max_decompressed_bytes);
  if (!inflated) {
    return std::unexpected(inflated.error().with_context(loc.path + ": "));
  }
  return std::move(*inflated);
}

core::Result<std::string> quarantine_mbox_range(const Locator &loc, const QuarantineFile &q) {
  if (!q.compressed) {
    return plain_range(loc);
  }
  MAILDSAR_TRY_ASSIGN(std::string content, quarantine_content(loc, q));
  if (loc.offset >= content.size()) {
    return std::string();
  }
  return content.substr(static_cast<std::size_t>(loc.offset),
                        static_cast<std::size_t>(std::min<std::uint64_t>(
                            loc.length, content.size() - loc.offset)));
}

core::Result<std::string> quarantine_bytes(const Locator &loc) {
  MAILDSAR_TRY_ASSIGN(QuarantineFile q, classify_quarantine(loc));
  switch (q.shape) {
  case QuarantineShape::mbox_message:
    return quarantine_mbox_range(loc, q);
  case QuarantineShape::header_body_pair: {
    MAILDSAR_TRY_ASSIGN(std::string header, whole_file(loc.path));
    MAILDSAR_TRY_ASSIGN(std::string body, whole_file(q.body_path));
    return header + body;
  }
  case QuarantineShape::stored_file:
    break;
  }
  return whole_file(loc.path);
}

/** An mbox range as an RFC 5322 message: no "From " line, ">From " unquoted. */
std::string mbox_range_message(std::string_view raw) {
  MboxMessage m;
  m.raw = raw;
  m.length = raw.size();
  std::size_t nl = raw.find('\n');
  m.from_line_length = nl == std::string_view::npos ? raw.size() : nl + 1;
  return mbox_message_content(m);
}

core::Result<std::string> quarantine_message(const Locator &loc) {
  MAILDSAR_TRY_ASSIGN(QuarantineFile q, classify_quarantine(loc));
  switch (q.shape) {
  case QuarantineShape::mbox_message: {
    MAILDSAR_TRY_ASSIGN(std::string raw, quarantine_mbox_range(loc, q));
    return mbox_range_message(raw);
  }
  case QuarantineShape::header_body_pair: {
    // joined as the quarantine connector decodes it: header block, blank line, body
    MAILDSAR_TRY_ASSIGN(std::string stored, whole_file(loc.path));
    MAILDSAR_TRY_ASSIGN(std::string body, whole_file(q.body_path));
    if (!ends_with(stored, "\n\n") && !ends_with(stored, "\r\n\r\n")) {
      if (!ends_with(stored, "\n")) {
        stored += '\n';
      }
      stored += '\n';
    }
    return stored + body;
  }
  case QuarantineShape::stored_file:
    break;
  }
  return quarantine_content(loc, q);
}

} // namespace

core::Result<std::string> read_item_bytes(const Locator &locator) {
  try {
    switch (locator.store) {
    case StoreKind::maildir:
      return whole_file(locator.path);
    case StoreKind::mbox:
      return plain_range(locator);
    case StoreKind::maillog:
      return log_lines(locator);
    case StoreKind::quarantine:
    case StoreKind::emlfolder:
      return quarantine_bytes(locator);
    case StoreKind::postfix_queue:
    case StoreKind::exim_spool:
      return read_queue_item_bytes(locator);
    case StoreKind::archive:
      return read_archive_item_bytes(locator);
    case StoreKind::pst:
      break;
    }
    return std::unexpected(not_supported(locator, "reading the bytes of an item is").error());
  } catch (...) {
    return std::unexpected(core::error_from_current_exception(locator.path + ": "));
  }
}

core::Result<std::string> read_message(const Locator &locator) {
  try {
    switch (locator.store) {
    case StoreKind::maildir:
      return whole_file(locator.path);
    case StoreKind::mbox: {
      MAILDSAR_TRY_ASSIGN(std::string raw, plain_range(locator));
      return mbox_range_message(raw);
    }
    case StoreKind::quarantine:
    case StoreKind::emlfolder:
      return quarantine_message(locator);
    case StoreKind::postfix_queue:
    case StoreKind::exim_spool:
      return read_queued_message(locator);
    case StoreKind::archive: {
      MAILDSAR_TRY_ASSIGN(std::string raw, read_archive_item_bytes(locator));
      return locator.length > 0 ? mbox_range_message(raw) : raw;
    }
    case StoreKind::maillog:
    case StoreKind::pst:
      break;
    }
    return std::unexpected(not_supported(locator, "reading a message is").error());
  } catch (...) {
    return std::unexpected(core::error_from_current_exception(locator.path + ": "));
  }
}

} // namespace maildsar::connectors
