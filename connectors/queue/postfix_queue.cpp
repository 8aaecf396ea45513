// SPDX-License-Identifier: GPL-3.0-or-later
// Postfix queue files, read from the format as Postfix documents it (src/global/rec_type.h and
// record.c; what `postcat` shows): a sequence of records, each a type byte, the data length in
// 7-bit groups (low-order group first, the high bit set on every byte but the last) and the
// data. Envelope records come first (C size, T arrival time, F full name, S sender, R/O/D
// recipients, A attributes, ...), then M and the content as N (a line) and L (a line's part
// without its end) records, then X and the records extracted from the header (R, r, e, ...),
// then E. A p record holds a decimal file offset to go on reading at (0: none); w records are
// padding.
#include "connectors/queue/queue_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace maildsar::connectors::queue {

namespace {

// Record types (rec_type.h).
constexpr char k_size = 'C';
constexpr char k_time = 'T';
constexpr char k_full = 'F';
constexpr char k_from = 'S';
constexpr char k_done = 'D';
constexpr char k_rcpt = 'R';
constexpr char k_orcp = 'O';
constexpr char k_drcp = '/';
constexpr char k_attr = 'A';
constexpr char k_mesg = 'M';
constexpr char k_cont = 'L';
constexpr char k_norm = 'N';
constexpr char k_xtra = 'X';
constexpr char k_rrto = 'r';
constexpr char k_erto = 'e';
constexpr char k_ptr = 'p';
constexpr char k_dtxt = 'w';
constexpr char k_dsn_orcpt = 'o';
constexpr char k_end = 'E';

/** Where the reader is: before M (envelope), between M and X (content), after X (extracted). */
enum class Segment { envelope, content, extracted };

core::Error bad(std::uint64_t offset, std::string cause) {
  return core::Error{core::ErrorCode::data, fmt::format("offset {}: {}", offset, cause), {}, std::nullopt};
}

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  return s;
}

/** The leading decimal number of `s` (after blanks), nullopt when there is none. */
std::optional<std::uint64_t> leading_number(std::string_view s) {
  s = trim_left(s);
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end == s.data()) {
    return std::nullopt;
  }
  return v;
}

std::string printable_type(char type) {
  auto u = static_cast<unsigned char>(type);
  return u >= 0x21 && u < 0x7f ? fmt::format("'{}'", type) : fmt::format("0x{:02x}", u);
}

/** "<a@b>" and "a@b" -> "a@b" (cleanup stores the bare address; be lenient). */
std::string bare_address(std::string_view s) {
  if (s.size() >= 2 && s.front() == '<' && s.back() == '>') {
    s = s.substr(1, s.size() - 2);
  }
  return std::string(s);
}

} // namespace

bool is_postfix_queue_id(std::string_view id) {
  return id.size() >= 5 && id.size() <= 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
         });
}

core::Result<QueuedMessage> parse_postfix_queue_file(std::string_view bytes, std::uint64_t max_content,
                                                     bool file_cut) {
  QueuedMessage out;
  Segment segment = Segment::envelope;
  std::string full_name;
  std::size_t pos = 0;
  // Pointer records may send the reader back; a byte read twice means a loop (cleanup never
  // writes one: every byte of a queue file belongs to one record chain).
  std::uint64_t consumed = 0;
  bool first = true;
  bool ended = false;
  while (!ended) {
    if (pos >= bytes.size()) {
      if (file_cut) {
        out.content_cut = true;
        break;
      }
      return std::unexpected(bad(pos, "the file ends without an end record (truncated)"));
    }
    const std::size_t at = pos;
    const char type = bytes[pos++];
    std::uint64_t len = 0;
    unsigned shift = 0;
    while (true) {
      if (pos >= bytes.size()) {
        if (file_cut) {
          out.content_cut = true;
          return out;
        }
        return std::unexpected(bad(at, fmt::format("record {}: the file ends inside its length", printable_type(type))));
      }
      auto b = static_cast<unsigned char>(bytes[pos++]);
      len |= static_cast<std::uint64_t>(b & 0x7fU) << shift;
      if ((b & 0x80U) == 0) {
        break;
      }
      shift += 7;
      if (shift >= 31) { // Postfix: at most the bits of an int
        return std::unexpected(bad(at, fmt::format("record {}: too many length bytes", printable_type(type))));
      }
    }
    if (len > bytes.size() - pos) {
      if (file_cut) {
        out.content_cut = true;
        break;
      }
      return std::unexpected(bad(at, fmt::format("record {}: length {} runs past the end of the file ({} bytes; "
                                                 "truncated or corrupt)",
                                                 printable_type(type), len, bytes.size())));
    }
    std::string_view data = bytes.substr(pos, static_cast<std::size_t>(len));
    pos += static_cast<std::size_t>(len);
    consumed += pos - at;
    if (consumed > bytes.size()) {
      return std::unexpected(bad(at, "pointer records make a loop"));
    }
    if (first) {
      if (type != k_size) {
        return std::unexpected(bad(at, fmt::format("not a Postfix queue file: the first record is {}, not a size "
                                                   "record 'C'",
                                                   printable_type(type))));
      }
      first = false;
    }
    switch (type) {
    case k_ptr: {
      auto target = leading_number(data);
      if (!target) {
        return std::unexpected(bad(at, "malformed pointer record"));
      }
      if (*target == 0) {
        break; // a reserved pointer that points nowhere yet
      }
      if (*target >= bytes.size()) {
        if (file_cut) {
          out.content_cut = true;
          return out;
        }
        return std::unexpected(bad(at, fmt::format("pointer to offset {} outside the file ({} bytes)", *target,
                                                   bytes.size())));
      }
      pos = static_cast<std::size_t>(*target);
      break;
    }
    case k_dtxt:
      break;
    case k_end:
      ended = true;
      break;
    case k_time:
      if (auto t = leading_number(data); t && *t <= static_cast<std::uint64_t>(INT64_MAX)) {
        out.arrival = static_cast<std::int64_t>(*t);
      }
      break;
    case k_full:
      full_name.assign(data);
      break;
    case k_from:
      out.envelope.push_back(EnvelopeAddress{Role::envelope_from, bare_address(data), {}, "sender"});
      break;
    case k_rcpt:
      out.envelope.push_back(EnvelopeAddress{Role::envelope_to, bare_address(data), {},
                                             segment == Segment::extracted ? "extracted recipient" : "recipient"});
      break;
    case k_orcp:
      out.envelope.push_back(EnvelopeAddress{Role::envelope_to, bare_address(data), {}, "original recipient"});
      break;
    case k_done:
      out.envelope.push_back(EnvelopeAddress{Role::envelope_to, bare_address(data), {}, "done recipient"});
      break;
    case k_drcp:
      out.envelope.push_back(EnvelopeAddress{Role::envelope_to, bare_address(data), {}, "canceled recipient"});
      break;
    case k_rrto:
      out.envelope.push_back(EnvelopeAddress{Role::notification, bare_address(data), {}, "return-receipt"});
      break;
    case k_erto:
      out.envelope.push_back(EnvelopeAddress{Role::notification, bare_address(data), {}, "errors-to"});
      break;
    case k_attr: {
      std::size_t eq = data.find('=');
      if (eq == std::string_view::npos) {
        break;
      }
      std::string_view name = data.substr(0, eq);
      std::string_view value = data.substr(eq + 1);
      if (name == "log_client_address" || name == "client_address") {
        if (!value.empty() && value != "unknown") {
          out.ips.push_back(RawValue{Role::log_client, std::string(value)});
        }
      } else if (name == "sasl_username" || name == "sasl_sender" || name == "log_ident") {
        out.texts.push_back(RawText{Role::log_user, std::string(value), std::string(name), TextScan::addresses});
      }
      break;
    }
    case k_dsn_orcpt: {
      // "rfc822;alice@example.com": the original recipient the client gave (RFC 3461 ORCPT)
      std::size_t semi = data.find(';');
      out.envelope.push_back(EnvelopeAddress{Role::received,
                                             bare_address(semi == std::string_view::npos ? data : data.substr(semi + 1)),
                                             {}, "ORCPT"});
      break;
    }
    case k_mesg:
      segment = Segment::content;
      break;
    case k_xtra:
      segment = Segment::extracted;
      break;
    case k_norm:
    case k_cont:
      if (segment != Segment::content) {
        break; // not content outside M..X
      }
      if (out.content.size() < max_content) {
        std::size_t room = static_cast<std::size_t>(max_content - out.content.size());
        out.content.append(data.substr(0, std::min(room, data.size())));
        if (data.size() > room) {
          out.content_cut = true;
        } else if (type == k_norm) {
          if (out.content.size() < max_content) {
            out.content += '\n';
          } else {
            out.content_cut = true;
          }
        }
      } else {
        out.content_cut = true;
      }
      break;
    default:
      break; // C, c, I, L (filter), W, K, f, P, V, '>', other DSN and milter records: nothing personal
    }
  }
  if (!full_name.empty()) {
    for (EnvelopeAddress &a : out.envelope) {
      if (a.role == Role::envelope_from) {
        a.name = full_name;
        break;
      }
    }
  }
  return out;
}

} // namespace maildsar::connectors::queue
