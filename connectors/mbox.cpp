// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/mbox.hpp"

#include "connectors/limits.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "core/config.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <sys/stat.h>
#include <utility>
#include <vector>

namespace maildsar::connectors {

namespace {

constexpr std::size_t k_buffer_bytes = 1U << 20;    // read buffer of the line reader (its most)
constexpr std::size_t k_small_read_bytes = 64U << 10; // its first size when only one message is wanted
constexpr std::size_t k_min_read_bytes = 4U << 10;    // its first size at least
constexpr std::size_t k_head_bytes = 1024;          // what we keep of an over-long line
constexpr std::size_t k_peek_bytes = 2048;          // look-ahead window for separator checks
constexpr std::string_view k_bom = "\xEF\xBB\xBF";

std::string_view strip_eol(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.remove_suffix(1);
  }
  return line;
}

bool starts_with_from(std::string_view line) { return line.starts_with("From "); }

bool is_blank(std::string_view line_without_eol) { return line_without_eol.empty(); }


bool is_time_or_year(std::string_view tok) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  // hh:mm or hh:mm:ss
  auto colon = tok.find(':');
  if (colon != std::string_view::npos && colon >= 1 && colon <= 2 && colon + 3 <= tok.size() &&
      digit(tok[0]) && digit(tok[colon - 1]) && digit(tok[colon + 1]) && digit(tok[colon + 2])) {
    return true;
  }
  return tok.size() == 4 && std::all_of(tok.begin(), tok.end(), digit) &&
         (tok.starts_with("19") || tok.starts_with("20"));
}

/** Case-insensitive ASCII prefix test. */
bool iprefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = text[i];
    if (a >= 'A' && a <= 'Z') {
      a = static_cast<char>(a - 'A' + 'a');
    }
    if (a != prefix[i]) {
      return false;
    }
  }
  return true;
}

/** The value of a "Content-Length: N" header line, if it is one and N is a plain number. */
std::optional<std::uint64_t> content_length_of(std::string_view line) {
  if (!iprefix(line, "content-length")) {
    return std::nullopt;
  }
  line.remove_prefix(14);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
    line.remove_prefix(1);
  }
  if (line.empty() || line.front() != ':') {
    return std::nullopt;
  }
  line.remove_prefix(1);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
    line.remove_prefix(1);
  }
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) {
    line.remove_suffix(1);
  }
  if (line.empty() || line.size() > 15) {
    return std::nullopt;
  }
  std::uint64_t n = 0;
  for (char c : line) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

bool is_weekday(std::string_view tok) {
  static constexpr std::string_view k_days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  if (tok.ends_with(',')) {
    tok.remove_suffix(1);
  }
  return tok.size() == 3 && std::any_of(std::begin(k_days), std::end(k_days),
                                        [&](std::string_view d) { return iprefix(tok, d); });
}

bool is_month(std::string_view tok) {
  static constexpr std::string_view k_months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                  "jul", "aug", "sep", "oct", "nov", "dec"};
  return tok.size() == 3 && std::any_of(std::begin(k_months), std::end(k_months),
                                        [&](std::string_view m) { return iprefix(tok, m); });
}

std::vector<std::string_view> split_blanks(std::string_view text) {
  std::vector<std::string_view> tokens;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) {
      ++i;
    }
    std::size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\t') {
      ++j;
    }
    if (j > i) {
      tokens.push_back(text.substr(i, j - i));
    }
    i = j;
  }
  return tokens;
}

/** "Mon Jun  1 10:00:00 2009" (ctime) somewhere in the tokens. */
bool has_ctime_date(const std::vector<std::string_view> &tokens, std::size_t from) {
  for (std::size_t i = from; i + 1 < tokens.size(); ++i) {
    if (is_weekday(tokens[i]) && is_month(tokens[i + 1])) {
      for (std::size_t j = i + 2; j < tokens.size(); ++j) {
        if (tokens[j].find(':') != std::string_view::npos && is_time_or_year(tokens[j])) {
          return true;
        }
      }
    }
  }
  return false;
}

/**
 * How much a "From " line looks like an mbox envelope line. `strong`: "From -", "From - <date>",
 * "From sender <ctime date>", "From " alone. `weak`: "From sender@host" alone, or a time or a
 * year after the first word (could be body text: "From 9:00 to 17:00 ...").
 */
enum class FromLine { no, weak, strong };

FromLine classify_from_line(std::string_view line) {
  line = strip_eol(line);
  if (!line.starts_with("From ")) {
    return FromLine::no;
  }
  std::string_view rest = line.substr(5);
  auto tokens = split_blanks(rest);
  if (tokens.empty()) {
    return FromLine::strong; // "From " with an empty envelope sender
  }
  if (tokens[0] == "-") {
    if (tokens.size() == 1 || has_ctime_date(tokens, 1)) {
      return FromLine::strong; // Netscape / Thunderbird
    }
    return FromLine::weak;
  }
  if (tokens.size() == 1) {
    bool sender = tokens[0].find('@') != std::string_view::npos || iprefix(tokens[0], "mailer-daemon");
    return sender ? FromLine::weak : FromLine::no;
  }
  if (has_ctime_date(tokens, 1)) {
    return FromLine::strong;
  }
  return std::any_of(tokens.begin() + 1, tokens.end(), is_time_or_year) ? FromLine::weak
                                                                        : FromLine::no;
}

/** The envelope sender of a message's "From " line when it is an address, else "". */
std::string envelope_sender(const MboxMessage &msg) {
  if (msg.from_line_length == 0 || msg.raw.size() < msg.from_line_length) {
    return {};
  }
  const std::string_view line = strip_eol(msg.raw.substr(0, msg.from_line_length));
  if (!line.starts_with("From ")) {
    return {};
  }
  const auto tokens = split_blanks(line.substr(5));
  if (tokens.empty() || tokens[0].find('@') == std::string_view::npos) {
    return {};
  }
  std::string_view sender = tokens[0];
  if (sender.size() >= 2 && sender.front() == '<' && sender.back() == '>') {
    sender = sender.substr(1, sender.size() - 2);
  }
  return std::string(sender);
}

/** One line as the reader found it. `head` is valid until the next call. */
struct Line {
  std::uint64_t offset = 0;
  std::uint64_t length = 0; // newline included
  std::string_view head;    // the line's first bytes (all of it when it fits), newline included
};

/**
 * Reads a file line by line through a fixed buffer (pread), so that memory stays bounded
 * whatever the file and line sizes.
 */
class LineReader {
public:
  /** `first_bytes`: the buffer's first size at most (no more than the range to read, nor less
      than k_min_read_bytes); it grows up to k_buffer_bytes while a line does not fit, so a line
      is "long" (head kept, rest skipped) beyond k_buffer_bytes whatever it is. */
  LineReader(int fd, const std::string &path, std::uint64_t start, std::uint64_t end,
             std::size_t first_bytes = k_buffer_bytes)
      : m_fd(fd), m_path(path), m_end(end), m_buf(first_size(first_bytes, start, end), '\0'),
        m_buf_off(start) {}

  void seek(std::uint64_t offset) {
    m_buf_off = offset;
    m_pos = 0;
    m_len = 0;
  }

  /** Next line, or std::nullopt at the end. */
  core::Result<std::optional<Line>> next() {
    for (;;) {
      if (m_pos < m_len) {
        const char *start = m_buf.data() + m_pos;
        const void *nl = std::memchr(start, '\n', m_len - m_pos);
        if (nl != nullptr) {
          std::size_t n = static_cast<std::size_t>(static_cast<const char *>(nl) - start) + 1;
          Line line{m_buf_off + m_pos, n, std::string_view(start, n)};
          m_pos += n;
          return line;
        }
      }
      std::uint64_t file_pos = m_buf_off + m_len;
      if (file_pos >= m_end) {
        if (m_pos >= m_len) {
          return std::optional<Line>{};
        }
        std::size_t n = m_len - m_pos;
        Line line{m_buf_off + m_pos, n, std::string_view(m_buf.data() + m_pos, n)};
        m_pos = m_len;
        return line;
      }
      if (m_pos > 0) { // compact
        std::memmove(m_buf.data(), m_buf.data() + m_pos, m_len - m_pos);
        m_buf_off += m_pos;
        m_len -= m_pos;
        m_pos = 0;
      }
      if (m_len == m_buf.size()) {
        if (m_buf.size() >= k_buffer_bytes) {
          return long_line();
        }
        m_buf.resize(std::min(k_buffer_bytes, 2 * m_buf.size()));
      }
      MAILDSAR_TRY(fill());
    }
  }

private:
  static std::size_t first_size(std::size_t first_bytes, std::uint64_t start, std::uint64_t end) {
    // (a small file, or a fuzzer's input, need not pay for zeroing a 1 MiB buffer)
    const std::uint64_t range = end > start ? end - start : 0;
    return static_cast<std::size_t>(std::min<std::uint64_t>(std::min(first_bytes, k_buffer_bytes),
                                                            std::max<std::uint64_t>(range, k_min_read_bytes)));
  }

  core::Status fill() {
    std::uint64_t file_pos = m_buf_off + m_len;
    std::uint64_t want = std::min<std::uint64_t>(m_buf.size() - m_len, m_end - file_pos);
    MAILDSAR_TRY_ASSIGN(std::string chunk, core::read_range(m_fd, file_pos, want, m_path));
    if (chunk.empty()) {
      m_end = file_pos; // the file shrank under us: stop here
      return {};
    }
    std::memcpy(m_buf.data() + m_len, chunk.data(), chunk.size());
    m_len += chunk.size();
    return {};
  }

  /** A line longer than the whole buffer: keep its head, skip through to its newline. */
  core::Result<std::optional<Line>> long_line() {
    Line line;
    line.offset = m_buf_off;
    m_long_head.assign(m_buf.data(), k_head_bytes);
    std::uint64_t length = 0;
    for (;;) {
      const void *nl = std::memchr(m_buf.data(), '\n', m_len);
      if (nl != nullptr) {
        std::size_t n = static_cast<std::size_t>(static_cast<const char *>(nl) - m_buf.data()) + 1;
        length += n;
        m_pos = n;
        break;
      }
      length += m_len;
      m_buf_off += m_len;
      m_len = 0;
      m_pos = 0;
      if (m_buf_off >= m_end) {
        break;
      }
      MAILDSAR_TRY(fill());
      if (m_len == 0) {
        break;
      }
    }
    line.length = length;
    line.head = m_long_head;
    return std::optional<Line>(line);
  }

  int m_fd;
  const std::string &m_path;
  std::uint64_t m_end;
  std::string m_buf;
  std::uint64_t m_buf_off; // file offset of m_buf[0]
  std::size_t m_pos = 0;
  std::size_t m_len = 0;
  std::string m_long_head;
};

/** The mbox splitter's state for one pass over a file. */
class Splitter {
public:
  Splitter(int fd, const std::string &path, std::uint64_t file_size,
           const std::function<void(const MboxMessage &)> &on_message,
           const std::function<void(ScanError &&)> &on_error, MboxDialect dialect,
           MboxSplitContent content = MboxSplitContent::messages)
      : m_fd(fd), m_path(path), m_size(file_size), m_on_message(on_message), m_on_error(on_error),
        m_dialect(dialect), m_content(content) {}

  /** Stop once this many messages were reported (their ends need the next separator only); the
      reader then starts with a small buffer, as it reads little. */
  void stop_after(std::size_t messages) {
    m_max_messages = messages;
    m_first_read_bytes = k_small_read_bytes;
  }

  /** True when a separator line starts at `offset` (which must follow a newline or be 0). */
  core::Result<bool> separator_at(std::uint64_t offset) {
    if (offset >= m_size) {
      return false;
    }
    MAILDSAR_TRY_ASSIGN(std::string window, peek(offset, k_peek_bytes));
    auto nl = window.find('\n');
    std::string_view line = strip_eol(std::string_view(window).substr(0, nl));
    if (nl == std::string::npos && window.size() == k_peek_bytes) {
      return false; // not a plausible envelope line
    }
    std::uint64_t next = nl == std::string::npos ? m_size : offset + nl + 1;
    MAILDSAR_TRY_ASSIGN(bool prev_blank, preceded_by_blank_line(offset));
    return is_separator(line, prev_blank, next);
  }

  /**
   * The separator rule: a strong envelope line needs a blank line before it OR a header field
   * after it; a weak one needs both.
   */
  core::Result<bool> is_separator(std::string_view line, bool prev_blank,
                                  std::uint64_t next_line_offset) {
    FromLine kind = classify_from_line(line);
    if (kind == FromLine::no) {
      return false;
    }
    if (kind == FromLine::strong && prev_blank) {
      return true;
    }
    if (kind == FromLine::weak && !prev_blank) {
      return false;
    }
    return next_line_is_header(next_line_offset);
  }

  core::Status run(std::uint64_t start) {
    LineReader reader(m_fd, m_path, start, m_size, m_first_read_bytes);
    bool prev_blank = true;
    bool in_headers = false;
    // a plain value and a flag, not std::optional: GCC 12 -O2 reports a false
    // maybe-uninitialized for the optional here
    std::uint64_t content_length = 0;
    bool has_content_length = false;
    bool content_length_seen_twice = false;

    for (;;) {
      MAILDSAR_TRY_ASSIGN(std::optional<Line> next, reader.next());
      if (!next) {
        break;
      }
      const Line &line = *next;
      std::string_view text = strip_eol(line.head);
      bool blank = line.length <= 2 && is_blank(text);

      bool separator = false;
      if (starts_with_from(text)) {
        if (!m_msg_start && !m_garbage_start) {
          separator = true; // the first line with content: lenient
        } else {
          MAILDSAR_TRY_ASSIGN(separator,
                              is_separator(text, prev_blank, line.offset + line.length));
        }
      }

      if (separator) {
        MAILDSAR_TRY(finish_message(line.offset, false));
        if (m_reported >= m_max_messages) {
          return {};
        }
        if (!m_msg_start && m_garbage_start) {
          m_on_error(ScanError{
              m_path, fmt::format("offset {}", *m_garbage_start),
              fmt::format("{} bytes before the first \"From \" line are not part of any message; "
                          "skipped",
                          line.offset - *m_garbage_start)});
          m_garbage_start.reset();
        }
        m_msg_start = line.offset;
        m_from_len = line.length;
        in_headers = true;
        has_content_length = false;
        content_length_seen_twice = false;
        prev_blank = false;
        continue;
      }

      if (!m_msg_start) {
        if (!blank && !m_garbage_start) {
          m_garbage_start = line.offset;
        }
        prev_blank = blank;
        continue;
      }

      if (in_headers) {
        if (blank) {
          in_headers = false;
          std::uint64_t body_start = line.offset + line.length;
          if (m_dialect == MboxDialect::content_length && has_content_length && !content_length_seen_twice) {
            MAILDSAR_TRY_ASSIGN(bool trusted, content_length_fits(body_start, content_length));
            if (trusted) {
              reader.seek(body_start + content_length);
              prev_blank = true;
              continue;
            }
          }
        } else if (auto n = content_length_of(text)) {
          content_length_seen_twice = has_content_length;
          content_length = *n;
          has_content_length = true;
        }
      }
      prev_blank = blank;
    }
    MAILDSAR_TRY(finish_message(m_size, in_headers));
    if (!m_any_message && m_garbage_start) {
      m_on_error(ScanError{m_path, fmt::format("offset {}", *m_garbage_start),
                           "not an mbox file (no \"From \" separator line found)"});
    }
    return {};
  }

private:
  core::Result<std::string> peek(std::uint64_t offset, std::uint64_t n) {
    if (offset >= m_size) {
      return std::string();
    }
    return core::read_range(m_fd, offset, std::min(n, m_size - offset), m_path);
  }

  /** True when the line before `offset` is empty (or `offset` starts the file). */
  core::Result<bool> preceded_by_blank_line(std::uint64_t offset) {
    if (offset <= 1) {
      return true;
    }
    std::uint64_t from = offset >= 3 ? offset - 3 : 0;
    MAILDSAR_TRY_ASSIGN(std::string before, peek(from, offset - from));
    std::string_view b(before);
    if (!b.ends_with('\n')) {
      return false;
    }
    b.remove_suffix(1);
    if (b.ends_with('\r')) {
      b.remove_suffix(1);
    }
    return b.empty() ? from == 0 : b.back() == '\n';
  }

  core::Result<bool> next_line_is_header(std::uint64_t offset) {
    if (offset >= m_size) {
      return true;
    }
    MAILDSAR_TRY_ASSIGN(std::string window, peek(offset, k_head_bytes));
    auto nl = window.find('\n');
    return mime::is_header_field_line(strip_eol(std::string_view(window).substr(0, nl)));
  }

  /** mboxcl2: does a body of `n` bytes from `body_start` end at EOF or right before a separator? */
  core::Result<bool> content_length_fits(std::uint64_t body_start, std::uint64_t n) {
    if (n > m_size || body_start > m_size - n) {
      return false;
    }
    std::uint64_t end = body_start + n;
    if (end == m_size) {
      return true;
    }
    if (end > 0) {
      MAILDSAR_TRY_ASSIGN(std::string before, peek(end - 1, 1));
      if (before != "\n") {
        return false;
      }
    }
    MAILDSAR_TRY_ASSIGN(std::string window, peek(end, 2));
    std::uint64_t from = end;
    if (window.starts_with("\n")) {
      from += 1;
    } else if (window.starts_with("\r\n")) {
      from += 2;
    }
    return separator_at(from);
  }

  /** Reports the open message, which ends at `end`. */
  core::Status finish_message(std::uint64_t end, bool truncated) {
    if (!m_msg_start) {
      return {};
    }
    MboxMessage msg;
    msg.offset = *m_msg_start;
    msg.length = end - *m_msg_start;
    msg.from_line_length = m_from_len;
    msg.truncated = truncated;
    m_msg_start.reset();
    m_any_message = true;
    ++m_reported;
    if (m_content == MboxSplitContent::boundaries) {
      m_on_message(msg);
      return {};
    }
    std::string bytes;
    // Bounded (limits.max_item_mib): a bigger message is hashed whole, its first bytes kept.
    const std::uint64_t max = std::min(k_mbox_max_message_bytes, item_limits().max_item_bytes);
    if (msg.length <= max) {
      MAILDSAR_TRY_ASSIGN(bytes, core::read_range(m_fd, msg.offset, msg.length, m_path));
      if (bytes.size() != msg.length) {
        return core::fail(core::ErrorCode::io,
                          fmt::format("{}: file shrank while reading (offset {})", m_path,
                                      msg.offset + bytes.size()));
      }
      msg.sha256 = core::sha256_hex(bytes);
      msg.raw = bytes;
    } else {
      msg.too_large = true;
      core::Sha256 hash;
      std::uint64_t done = 0;
      while (done < msg.length) {
        std::uint64_t chunk = std::min<std::uint64_t>(k_buffer_bytes, msg.length - done);
        MAILDSAR_TRY_ASSIGN(std::string part,
                            core::read_range(m_fd, msg.offset + done, chunk, m_path));
        if (part.empty()) {
          return core::fail(core::ErrorCode::io,
                            fmt::format("{}: file shrank while reading (offset {})", m_path,
                                        msg.offset + done));
        }
        hash.update(part);
        if (bytes.size() < max) {
          bytes.append(part, 0, static_cast<std::size_t>(std::min<std::uint64_t>(part.size(), max - bytes.size())));
        }
        done += part.size();
      }
      msg.sha256 = hash.hex_digest();
      msg.raw = bytes;
    }
    m_on_message(msg);
    return {};
  }

  int m_fd;
  const std::string &m_path;
  std::uint64_t m_size;
  const std::function<void(const MboxMessage &)> &m_on_message;
  const std::function<void(ScanError &&)> &m_on_error;
  std::optional<std::uint64_t> m_msg_start;
  std::uint64_t m_from_len = 0;
  std::optional<std::uint64_t> m_garbage_start;
  bool m_any_message = false;
  MboxDialect m_dialect;
  MboxSplitContent m_content;
  std::size_t m_reported = 0;
  std::size_t m_max_messages = std::numeric_limits<std::size_t>::max();
  std::size_t m_first_read_bytes = k_buffer_bytes;
};

/** realpath(), or empty on failure. */
std::string real_path(const std::string &path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    return {};
  }
  return buf;
}

bool inside(const std::string &path, const std::string &root) {
  if (root.empty() || root == "/") {
    return true;
  }
  return path == root || (path.starts_with(root) && path[root.size()] == '/');
}

class MboxConnector final : public Connector {
public:
  explicit MboxConnector(core::SourceConfig source) : m_source(std::move(source)) {}

  [[nodiscard]] StoreKind kind() const override { return StoreKind::mbox; }
  [[nodiscard]] bool supports_append() const override { return true; }

  [[nodiscard]] core::Result<std::vector<FileEntry>> list_files(ItemSink &errors) const override {
    return list_source_files(m_source, errors);
  }

  [[nodiscard]] core::Status scan(const FileEntry &file, std::uint64_t from_offset,
                                  ItemSink &sink) const override {
    MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(file.path));
    MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd.get(), file.path));
    if (!S_ISREG(st.mode)) {
      return core::fail(core::ErrorCode::data, fmt::format("{}: not a regular file", file.path));
    }
    auto on_message = [&](const MboxMessage &msg) {
      Item item;
      item.locator.source = m_source.name;
      item.locator.store = StoreKind::mbox;
      item.locator.path = file.path;
      item.locator.offset = msg.offset;
      item.locator.length = msg.length;
      item.sha256 = msg.sha256;
      std::string position = fmt::format("offset {}", msg.offset);
      if (msg.too_large) {
        item.truncated.push_back(fmt::format("item cut at limits.max_item_mib: {} of {} bytes decoded",
                                             msg.raw.size(), msg.length));
      }
      BigItemGate gate(msg.raw.size());
      auto decoded = mime::decode_message(mbox_message_content(msg), item);
      if (!decoded) {
        if (decoded.error().code == core::ErrorCode::data) {
          sink.error(ScanError{file.path, position, decoded.error().message});
        } else {
          item.warnings.push_back(decoded.error().message);
        }
      }
      if (msg.truncated) {
        item.warnings.push_back(
            fmt::format("{} {}: message truncated (the file ends inside its header block)",
                        file.path, position));
      }
      if (std::string sender = envelope_sender(msg); !sender.empty()) {
        // The From_ line is part of the item's bytes: its sender is the subject's data too
        // (found, erased with the message, and seen by verify).
        item.addresses.push_back(RawAddress{Role::envelope_from, "", std::move(sender), "From_"});
      }
      if (!file.owner.empty()) {
        item.addresses.push_back(RawAddress{Role::owner, "", file.owner});
      }
      sink.item(std::move(item));
    };
    auto on_error = [&](ScanError &&error) { sink.error(std::move(error)); };
    return split_mbox(fd.get(), file.path, from_offset, st.size, on_message, on_error,
                      mbox_dialect_of(m_source.format).value_or(MboxDialect::separators));
  }

private:
  core::SourceConfig m_source;
};

} // namespace

bool looks_like_mbox_from_line(std::string_view line) {
  return classify_from_line(line) != FromLine::no;
}

std::string unquote_mboxrd(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  std::size_t pos = 0;
  while (pos < message.size()) {
    auto nl = message.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? message.size() : nl + 1;
    std::string_view line = message.substr(pos, end - pos);
    std::size_t quotes = 0;
    while (quotes < line.size() && line[quotes] == '>') {
      ++quotes;
    }
    if (quotes > 0 && line.substr(quotes).starts_with("From ")) {
      line.remove_prefix(1);
    }
    out.append(line);
    pos = end;
  }
  return out;
}

std::string quote_mboxrd(std::string_view message) {
  std::string out;
  out.reserve(message.size() + 16);
  std::size_t pos = 0;
  while (pos < message.size()) {
    auto nl = message.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? message.size() : nl + 1;
    std::string_view line = message.substr(pos, end - pos);
    std::size_t quotes = 0;
    while (quotes < line.size() && line[quotes] == '>') {
      ++quotes;
    }
    if (line.substr(quotes).starts_with("From ")) {
      out.push_back('>');
    }
    out.append(line);
    pos = end;
  }
  return out;
}

std::string mbox_message_content(const MboxMessage &message) {
  std::string_view raw = message.raw;
  raw.remove_prefix(std::min<std::size_t>(raw.size(), message.from_line_length));
  return unquote_mboxrd(raw);
}

namespace {

/** split_mbox with a splitter the caller set up: checks `from_offset`, then runs. */
core::Status run_split(Splitter &splitter, int fd, const std::string &path, std::uint64_t from_offset,
                       std::uint64_t file_size) {
  if (from_offset > file_size) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("mbox {}: offset {} is beyond the end of the file ({} bytes); "
                                  "rescan from the start",
                                  path, from_offset, file_size));
  }
  std::uint64_t start = from_offset;
  if (from_offset == 0) {
    MAILDSAR_TRY_ASSIGN(std::string head, core::read_range(fd, 0, std::min<std::uint64_t>(3, file_size), path));
    if (head == k_bom) {
      start = k_bom.size();
    }
  } else if (from_offset < file_size) {
    MAILDSAR_TRY_ASSIGN(std::string before, core::read_range(fd, from_offset - 1, 1, path));
    bool ok = before == "\n";
    if (ok) {
      MAILDSAR_TRY_ASSIGN(ok, splitter.separator_at(from_offset));
    }
    if (!ok) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("mbox {}: offset {} is not the start of a \"From \" line; "
                                    "rescan from the start",
                                    path, from_offset));
    }
  } else {
    return {}; // nothing appended
  }
  return splitter.run(start);
}

} // namespace

core::Status split_mbox(int fd, const std::string &path, std::uint64_t from_offset,
                        std::uint64_t file_size,
                        const std::function<void(const MboxMessage &)> &on_message,
                        const std::function<void(ScanError &&)> &on_error, MboxDialect dialect,
                        MboxSplitContent content) {
  Splitter splitter(fd, path, file_size, on_message, on_error, dialect, content);
  return run_split(splitter, fd, path, from_offset, file_size);
}

core::Result<std::optional<std::uint64_t>> mbox_message_length_at(int fd, const std::string &path,
                                                                  std::uint64_t file_size,
                                                                  std::uint64_t offset) {
  std::optional<MboxMessage> first;
  const std::function<void(const MboxMessage &)> on_message = [&](const MboxMessage &m) {
    if (!first) {
      first = m;
    }
  };
  const std::function<void(ScanError &&)> on_error = [](ScanError &&) {};
  Splitter splitter(fd, path, file_size, on_message, on_error, MboxDialect::separators,
                    MboxSplitContent::boundaries);
  splitter.stop_after(1);
  if (auto st = run_split(splitter, fd, path, offset, file_size); !st) {
    if (st.error().code == core::ErrorCode::data) {
      return std::optional<std::uint64_t>(); // no separator line starts there
    }
    return std::unexpected(st.error());
  }
  if (!first || first->offset != offset) {
    return std::optional<std::uint64_t>(); // offset 0 of a file whose first message starts later
  }
  return std::optional<std::uint64_t>(first->length);
}

std::optional<MboxDialect> mbox_dialect_of(std::string_view format) {
  if (format.empty() || format == "mboxo" || format == "mboxrd") {
    return MboxDialect::separators;
  }
  if (format == "mboxcl" || format == "mboxcl2") {
    return MboxDialect::content_length;
  }
  return std::nullopt;
}

core::Result<std::vector<FileEntry>> list_source_files(const core::SourceConfig &source, ItemSink &errors) {
  MAILDSAR_TRY_ASSIGN(std::vector<core::GlobMatch> matches, core::expand_glob(source.path));
  std::string root = source.root.empty() ? std::string() : real_path(source.root);
  std::vector<FileEntry> out;
  for (auto &match : matches) {
    auto st = core::lstat_file(match.path);
    if (!st) {
      errors.error(ScanError{match.path, "", "cannot stat: " + st.error().message});
      continue;
    }
    if (S_ISLNK(st->mode)) {
      errors.error(ScanError{match.path, "", "symbolic link skipped"});
      continue;
    }
    if (!S_ISREG(st->mode)) {
      errors.error(ScanError{match.path, "", "not a regular file; skipped"});
      continue;
    }
    if (!source.root.empty()) {
      std::string real = real_path(match.path);
      if (root.empty() || real.empty() || !inside(real, root)) {
        errors.error(ScanError{match.path, "",
                               fmt::format("real path '{}' is outside the source root '{}'; "
                                           "skipped",
                                           real, source.root)});
        continue;
      }
    }
    FileEntry entry;
    entry.path = match.path;
    entry.owner = source.owner.empty() ? std::string()
                                         : core::expand_owner(source.owner, match.captures);
    entry.stat = *st;
    out.push_back(std::move(entry));
  }
  return out;
}

core::Result<std::unique_ptr<Connector>> make_mbox_connector(const core::SourceConfig &source) {
  if (!mbox_dialect_of(source.format)) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': unknown mbox format '{}'", source.name, source.format),
                      "formats are mboxo, mboxrd, mboxcl, mboxcl2");
  }
  if (source.path.empty() || source.path.front() != '/') {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': path '{}' is not absolute", source.name, source.path));
  }
  return std::unique_ptr<Connector>(std::make_unique<MboxConnector>(source));
}

} // namespace maildsar::connectors
