// SPDX-License-Identifier: GPL-3.0-or-later
// Exim spool messages, read from the format the Exim specification documents ("Format of spool
// files"). The -H file: its own name; the login name, uid and gid of the submitter; the sender
// in angle brackets; the arrival time and the count of delay warnings; option lines beginning
// with '-' (-host_address, -auth_id, ACL variables whose value follows on the next line(s) with
// its length given, ...); the tree of addresses not to deliver to ("XX" when empty, else lines
// "YY addr", "YN addr", ...); the recipient count and one recipient per line; a blank line; the
// header fields, each as a decimal length, a flag character ('*': removed from the message) and
// a space, then exactly that many bytes. The -D file: its own name on the first line, then the
// body. Exim 4.94 and later write an option whose value came from outside ("tainted") with two
// dashes ("--host_address [192.0.2.1]:25").
#include "connectors/queue/queue_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace maildsar::connectors::queue {

namespace {

constexpr std::size_t k_max_header_digits = 9; // a header field of up to 999,999,999 bytes

core::Error bad(std::string_view file, std::size_t offset, std::string cause) {
  return core::Error{core::ErrorCode::data, fmt::format("{} offset {}: {}", file, offset, cause), {}, std::nullopt};
}

/** A cursor over the lines of a file. */
class Lines {
public:
  explicit Lines(std::string_view bytes) : m_bytes(bytes) {}
  [[nodiscard]] bool at_end() const { return m_pos >= m_bytes.size(); }
  [[nodiscard]] std::size_t pos() const { return m_pos; }
  /** The next line without its '\n'; nullopt at the end or when the last line has no '\n'. */
  std::optional<std::string_view> next() {
    if (at_end()) {
      return std::nullopt;
    }
    std::size_t nl = m_bytes.find('\n', m_pos);
    if (nl == std::string_view::npos) {
      return std::nullopt;
    }
    std::string_view line = m_bytes.substr(m_pos, nl - m_pos);
    m_pos = nl + 1;
    return line;
  }
  /** Skips exactly `n` bytes; false when there are fewer. */
  bool skip(std::size_t n) {
    if (n > m_bytes.size() - m_pos) {
      return false;
    }
    m_pos += n;
    return true;
  }
  [[nodiscard]] std::string_view rest() const { return m_bytes.substr(std::min(m_pos, m_bytes.size())); }

private:
  std::string_view m_bytes;
  std::size_t m_pos = 0;
};

std::optional<std::uint64_t> number(std::string_view s) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end == s.data()) {
    return std::nullopt;
  }
  return v;
}

std::string_view first_word(std::string_view s) { return s.substr(0, s.find(' ')); }

std::string_view after_word(std::string_view s) {
  std::size_t sp = s.find(' ');
  return sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
}

/**
 * A recipient line: "addr", "addr pno" (old), or "addr[ errors_to] len,pno#flags" (Exim 4):
 * the address without what follows it.
 */
std::string recipient_address(std::string_view line) {
  if (std::size_t hash = line.rfind('#'); hash != std::string_view::npos && hash + 1 < line.size() &&
                                          std::all_of(line.begin() + static_cast<std::ptrdiff_t>(hash) + 1, line.end(),
                                                      [](char c) { return c >= '0' && c <= '9'; })) {
    std::string_view head = line.substr(0, hash);
    std::size_t sp = head.rfind(' ');
    if (sp != std::string_view::npos) {
      std::string_view lens = head.substr(sp + 1); // "len,pno"
      auto len = number(lens.substr(0, lens.find(',')));
      head = head.substr(0, sp);
      if (len && *len > 0 && *len + 1 <= head.size()) {
        head = head.substr(0, head.size() - static_cast<std::size_t>(*len) - 1); // " errors_to"
      }
      return std::string(head);
    }
  }
  std::size_t sp = line.rfind(' ');
  if (sp != std::string_view::npos && number(line.substr(sp + 1))) {
    return std::string(line.substr(0, sp)); // "addr pno"
  }
  return std::string(line);
}

/** "[192.0.2.1]:25" (Exim 4.96), "192.0.2.1.25" / "2001:db8::1.25" (older) -> the address. */
std::string host_address(std::string_view v) {
  if (v.starts_with('[')) {
    std::size_t close = v.find(']');
    return std::string(v.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
  }
  std::size_t dot = v.rfind('.');
  if (dot != std::string_view::npos && number(v.substr(dot + 1)) &&
      (v.find(':') != std::string_view::npos || std::count(v.begin(), v.end(), '.') == 4)) {
    v = v.substr(0, dot);
  }
  return std::string(v);
}

std::string strip_angles(std::string_view s) {
  if (s.size() >= 2 && s.front() == '<' && s.back() == '>') {
    s = s.substr(1, s.size() - 2);
  }
  return std::string(s);
}

} // namespace

bool is_exim_message_id(std::string_view id) {
  auto alnum = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    });
  };
  if (id.size() == 16) { // 6-6-2
    return id[6] == '-' && id[13] == '-' && alnum(id.substr(0, 6)) && alnum(id.substr(7, 6)) &&
           alnum(id.substr(14));
  }
  if (id.size() == 23) { // 6-11-4 (Exim 4.97 and later)
    return id[6] == '-' && id[18] == '-' && alnum(id.substr(0, 6)) && alnum(id.substr(7, 11)) &&
           alnum(id.substr(19));
  }
  return false;
}

core::Result<QueuedMessage> parse_exim_spool(std::string_view id, std::string_view header_file,
                                             std::string_view data_file, std::uint64_t max_content,
                                             bool data_cut) {
  QueuedMessage out;
  Lines h(header_file);
  auto need = [&](std::string_view what) -> core::Result<std::string_view> {
    std::size_t at = h.pos();
    auto line = h.next();
    if (!line) {
      return std::unexpected(bad("-H", at, fmt::format("the file ends before {} (truncated)", what)));
    }
    return *line;
  };
  MAILDSAR_TRY_ASSIGN(std::string_view name, need("its name line"));
  if (name != fmt::format("{}-H", id)) {
    return std::unexpected(bad("-H", 0, fmt::format("the first line is not the file's own name {}-H", id)));
  }
  std::size_t at = h.pos();
  MAILDSAR_TRY_ASSIGN(std::string_view user, need("the submitter line"));
  if (std::string_view login = first_word(user); !login.empty()) {
    out.texts.push_back(RawText{Role::log_user, std::string(login), "submitted by", TextScan::addresses});
  }
  at = h.pos();
  MAILDSAR_TRY_ASSIGN(std::string_view sender, need("the sender line"));
  if (sender.size() < 2 || sender.front() != '<' || sender.back() != '>') {
    return std::unexpected(bad("-H", at, "the sender line is not an address in angle brackets"));
  }
  out.envelope.push_back(EnvelopeAddress{Role::envelope_from, strip_angles(sender), {}, "sender"});
  at = h.pos();
  MAILDSAR_TRY_ASSIGN(std::string_view times, need("the time line"));
  auto received = number(first_word(times));
  if (!received) {
    return std::unexpected(bad("-H", at, "the time line does not begin with a number"));
  }
  if (*received <= static_cast<std::uint64_t>(INT64_MAX)) {
    out.arrival = static_cast<std::int64_t>(*received);
  }

  // Options, then the non-recipients tree.
  std::string_view line;
  while (true) {
    at = h.pos();
    MAILDSAR_TRY_ASSIGN(line, need("the recipients"));
    if (!line.starts_with('-')) {
      break;
    }
    // "-name value"; "--name value" is the same option with a tainted value (Exim 4.94+).
    std::string_view option = first_word(line.substr(line.starts_with("--") ? 2 : 1));
    std::string_view value = after_word(line);
    if (option == "host_address" || option == "interface_address") {
      if (option == "host_address" && !value.empty()) {
        out.ips.push_back(RawValue{Role::log_client, host_address(value)});
      }
    } else if (option == "auth_id" || option == "auth_sender") {
      out.texts.push_back(RawText{Role::log_user, std::string(value), std::string(option), TextScan::addresses});
    } else if (option == "aclc" || option == "aclm" || option == "acl") {
      // "-aclc <name> <length>": the value is the next <length> bytes, then a newline.
      std::size_t sp = value.rfind(' ');
      auto len = number(sp == std::string_view::npos ? value : value.substr(sp + 1));
      if (!len || *len > header_file.size()) {
        return std::unexpected(bad("-H", at, "an ACL variable without a valid length"));
      }
      std::string_view rest = h.rest();
      if (!h.skip(static_cast<std::size_t>(*len)) || !h.skip(1)) {
        return std::unexpected(bad("-H", at, fmt::format("ACL variable of {} bytes runs past the end of the file", *len)));
      }
      out.texts.push_back(RawText{Role::header, std::string(rest.substr(0, static_cast<std::size_t>(*len))),
                                  "ACL variable", TextScan::addresses});
    }
  }
  // The tree of addresses already delivered to (or not to be delivered to).
  while (line != "XX" && line.size() > 3 && (line[0] == 'Y' || line[0] == 'N') && (line[1] == 'Y' || line[1] == 'N') &&
         line[2] == ' ') {
    out.envelope.push_back(EnvelopeAddress{Role::envelope_to, std::string(line.substr(3)), {}, "done recipient"});
    at = h.pos();
    MAILDSAR_TRY_ASSIGN(line, need("the recipient count"));
  }
  if (line == "XX") {
    at = h.pos();
    MAILDSAR_TRY_ASSIGN(line, need("the recipient count"));
  }
  auto count = number(line);
  if (!count || std::to_string(*count) != line) {
    return std::unexpected(bad("-H", at, "expected the recipient count"));
  }
  if (*count > header_file.size()) { // one line each at least
    return std::unexpected(bad("-H", at, fmt::format("recipient count {} exceeds the file", *count)));
  }
  for (std::uint64_t i = 0; i < *count; ++i) {
    MAILDSAR_TRY_ASSIGN(std::string_view r, need("the last recipient"));
    out.envelope.push_back(EnvelopeAddress{Role::envelope_to, recipient_address(r), {}, "recipient"});
  }
  at = h.pos();
  MAILDSAR_TRY_ASSIGN(std::string_view blank, need("the header fields"));
  if (!blank.empty()) {
    return std::unexpected(bad("-H", at, "expected a blank line before the header fields"));
  }

  // Header fields: "NNN" + flag + ' ' + NNN bytes.
  std::string headers;
  std::string_view rest = h.rest();
  std::size_t base = h.pos();
  std::size_t p = 0;
  while (p < rest.size()) {
    std::size_t digits = 0;
    while (p + digits < rest.size() && digits <= k_max_header_digits && rest[p + digits] >= '0' &&
           rest[p + digits] <= '9') {
      ++digits;
    }
    if (digits < 3 || digits > k_max_header_digits) {
      return std::unexpected(bad("-H", base + p, "expected a header field's length"));
    }
    auto len = number(rest.substr(p, digits));
    if (!len || p + digits + 2 > rest.size() || rest[p + digits + 1] != ' ') {
      return std::unexpected(bad("-H", base + p, "expected a header field's flag and a space after its length"));
    }
    const char flag = rest[p + digits];
    std::size_t start = p + digits + 2;
    if (*len > rest.size() - start) {
      return std::unexpected(bad("-H", base + p, fmt::format("header field of {} bytes runs past the end of the "
                                                             "file (truncated)",
                                                             *len)));
    }
    std::string_view field = rest.substr(start, static_cast<std::size_t>(*len));
    if (flag == '*') {
      // Removed from the message (by a router, an ACL, a rewrite) but still in the file.
      out.texts.push_back(RawText{Role::header, std::string(field), "removed header field", TextScan::addresses});
    } else {
      const std::uint64_t room = max_content > headers.size() ? max_content - headers.size() : 0;
      headers.append(field.substr(0, static_cast<std::size_t>(std::min<std::uint64_t>(field.size(), room))));
      if (field.size() > room) {
        out.content_cut = true;
      }
    }
    p = start + static_cast<std::size_t>(*len);
  }

  // The -D file: its own name, then the body.
  Lines d(data_file);
  auto dname = d.next();
  if (!dname) {
    return std::unexpected(bad("-D", 0, "the file ends before its name line (truncated)"));
  }
  if (*dname != fmt::format("{}-D", id)) {
    return std::unexpected(bad("-D", 0, fmt::format("the first line is not the file's own name {}-D", id)));
  }
  std::string_view body = d.rest();
  out.content = std::move(headers);
  if (out.content.size() < max_content) {
    out.content += '\n';
    std::size_t room = static_cast<std::size_t>(max_content - out.content.size());
    out.content.append(body.substr(0, std::min(room, body.size())));
    if (body.size() > room) {
      out.content_cut = true;
    }
  } else {
    out.content_cut = true;
  }
  if (data_cut) {
    out.content_cut = true;
  }
  return out;
}

} // namespace maildsar::connectors::queue
