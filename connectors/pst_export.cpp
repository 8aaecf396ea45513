// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/pst_export.hpp"

#include "connectors/mbox.hpp"
#include "core/time.hpp"

#include "core/fs.hpp"

#include <fmt/format.h>
#include <libpst/libpst.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <mutex>
#include <set>
#include <string_view>
#include <utility>

namespace maildsar::connectors {

namespace {

std::mutex g_render_mutex; // libpst keeps global state; renderings run one at a time

struct PstItemFree {
  void operator()(pst_item *item) const noexcept {
    if (item != nullptr) {
      pst_freeItem(item);
    }
  }
};
using PstItemPtr = std::unique_ptr<pst_item, PstItemFree>;

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
    if (n == 9 || i + n >= s.size() + (n == 0 ? 1 : 0)) {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        return false;
      }
    }
    i += n + 1;
  }
  return true;
}

/** UTF-8 as is; anything else read as Latin-1. */
std::string to_utf8(std::string_view s) {
  if (valid_utf8(s)) {
    return std::string(s);
  }
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

std::string str(pst_item &item, pst_string &s) {
  if (s.str == nullptr) {
    return {};
  }
  pst_convert_utf8_null(&item, &s);
  return s.str != nullptr ? to_utf8(s.str) : std::string();
}

std::optional<std::int64_t> to_unix(const FILETIME *ft) {
  if (ft == nullptr) {
    return std::nullopt;
  }
  std::uint64_t ticks = (static_cast<std::uint64_t>(ft->dwHighDateTime) << 32) | ft->dwLowDateTime;
  auto secs = static_cast<std::int64_t>(ticks / 10000000ULL) - 11644473600LL;
  return secs;
}

std::string rfc5322_date(std::int64_t t) { return core::format_utc(t, "%a, %d %b %Y %H:%M:%S +0000"); }

std::string ical_date(std::int64_t t) { return core::format_utc(t, "%Y%m%dT%H%M%SZ"); }

std::string base64(std::string_view data, std::size_t line = 76) {
  static constexpr char k_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t col = 0;
  for (std::size_t i = 0; i < data.size(); i += 3) {
    std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(data[i])) << 16;
    if (i + 1 < data.size()) {
      v |= static_cast<std::uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8;
    }
    if (i + 2 < data.size()) {
      v |= static_cast<unsigned char>(data[i + 2]);
    }
    out.push_back(k_abc[(v >> 18) & 63]);
    out.push_back(k_abc[(v >> 12) & 63]);
    out.push_back(i + 1 < data.size() ? k_abc[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < data.size() ? k_abc[v & 63] : '=');
    col += 4;
    if (line > 0 && col >= line) {
      out += "\r\n";
      col = 0;
    }
  }
  if (line > 0 && col > 0) {
    out += "\r\n";
  }
  return out;
}

bool is_ascii_printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7F;
  });
}

/** A header value: as is when printable ASCII, else one RFC 2047 base64 word per 45 bytes. */
std::string header_value(std::string_view value) {
  if (is_ascii_printable(value)) {
    return std::string(value);
  }
  std::string out;
  std::size_t i = 0;
  while (i < value.size()) {
    std::size_t n = std::min<std::size_t>(45, value.size() - i);
    while (i + n < value.size() && n > 1 &&
           (static_cast<unsigned char>(value[i + n]) & 0xC0) == 0x80) {
      --n; // do not split a UTF-8 sequence
    }
    if (!out.empty()) {
      out += "\r\n ";
    }
    out += "=?UTF-8?B?" + base64(value.substr(i, n), 0) + "?=";
    i += n;
  }
  return out;
}

/** Removes CR/LF (header injection) from a value taken from the PST. */
std::string one_line(std::string_view s) {
  std::string out;
  for (char c : s) {
    out.push_back(c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
  }
  return out;
}

/** The stored transport headers without the MIME structure ones, CRLF line ends. */
std::string transport_headers(std::string_view raw) {
  std::string out;
  bool skipping = false;
  std::size_t pos = 0;
  while (pos < raw.size()) {
    auto eol = raw.find('\n', pos);
    std::string_view line = raw.substr(pos, eol == std::string_view::npos ? raw.size() - pos : eol - pos);
    pos = eol == std::string_view::npos ? raw.size() : eol + 1;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      break; // end of the header block
    }
    if (line.front() != ' ' && line.front() != '\t') {
      std::string lower;
      for (char c : line.substr(0, line.find(':'))) {
        lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      }
      skipping = lower == "content-type" || lower == "content-transfer-encoding" ||
                 lower == "mime-version" || lower == "content-disposition";
    }
    if (!skipping) {
      out.append(line);
      out += "\r\n";
    }
  }
  return out;
}

std::string boundary(std::uint64_t node, int n, int depth) {
  // An attached message's boundaries differ from those of the messages around it.
  return depth == 0 ? fmt::format("=_maildsar_{:x}_{}", node, n) : fmt::format("=_maildsar_{:x}_e{}_{}", node, depth, n);
}

constexpr int k_max_embed_depth = 8; // as the scan (pst.cpp)

/** A MIME type for an attachment the PST stores without one (Outlook often does), by extension. */
std::string guess_type(std::string_view name) {
  static constexpr std::pair<std::string_view, std::string_view> k_types[] = {
      {".pdf", "application/pdf"},
      {".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
      {".pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
      {".doc", "application/msword"}, {".xls", "application/vnd.ms-excel"},
      {".ppt", "application/vnd.ms-powerpoint"}, {".odt", "application/vnd.oasis.opendocument.text"},
      {".ods", "application/vnd.oasis.opendocument.spreadsheet"}, {".rtf", "application/rtf"},
      {".zip", "application/zip"}, {".gz", "application/gzip"}, {".txt", "text/plain"},
      {".csv", "text/csv"}, {".htm", "text/html"}, {".html", "text/html"}, {".eml", "message/rfc822"},
      {".ics", "text/calendar"}, {".vcf", "text/vcard"}, {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"},
      {".png", "image/png"}, {".gif", "image/gif"}};
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto &[ext, type] : k_types) {
    if (lower.ends_with(ext)) {
      return std::string(type);
    }
  }
  return "application/octet-stream";
}

/** The file name of attachment `n` (1-based) of `item`. */
std::string attachment_name(pst_item &item, pst_item_attach &a, int n) {
  std::string name = str(item, a.filename2);
  if (name.empty()) {
    name = str(item, a.filename1);
  }
  return name.empty() ? fmt::format("attachment-{}", n) : name;
}

/** An attached Outlook item (attach method 5) parsed, or null when libpst cannot. */
PstItemPtr parse_embedded(pst_file &pf, pst_item_attach &a) {
  pst_index_ll *id = pst_getID(&pf, a.i_id);
  if (id == nullptr) {
    return nullptr;
  }
  pst_desc_tree desc{};
  desc.desc = id;
  return PstItemPtr(pst_parse_item(&pf, &desc, a.id2_head));
}

std::string attachment_bytes(pst_file &pf, pst_item_attach &a) {
  if (a.data.data != nullptr) {
    return std::string(a.data.data, a.data.size);
  }
  pst_binary b = pst_attach_to_mem(&pf, &a);
  std::string out;
  if (b.data != nullptr) {
    out.assign(b.data, b.size);
    std::free(b.data);
  }
  return out;
}

PstRendering render_contact(pst_item &item);
PstRendering render_appointment(pst_file &pf, pst_item &item, std::uint64_t node, std::int64_t now, int depth = 0);
PstRendering render_other(pst_item &item);

PstRendering render_email(pst_file &pf, pst_item &item, std::uint64_t node, int depth = 0) {
  pst_item_email &e = *item.email;
  std::string head;
  std::string stored = str(item, e.header);
  if (!stored.empty()) {
    head = transport_headers(stored);
  }
  if (head.empty()) {
    auto from_name = str(item, e.outlook_sender_name);
    auto from_addr = str(item, e.sender_address);
    if (!from_name.empty() || !from_addr.empty()) {
      head += "From: " + header_value(one_line(from_name)) +
              (from_addr.empty() ? "" : " <" + one_line(from_addr) + ">") + "\r\n";
    }
    if (auto to = str(item, e.sentto_address); !to.empty()) {
      head += "To: " + header_value(one_line(to)) + "\r\n";
    }
    if (auto cc = str(item, e.cc_address); !cc.empty()) {
      head += "Cc: " + header_value(one_line(cc)) + "\r\n";
    }
    if (auto subject = str(item, item.subject); !subject.empty()) {
      head += "Subject: " + header_value(one_line(subject)) + "\r\n";
    }
    if (auto d = to_unix(e.sent_date ? e.sent_date : e.arrival_date)) {
      head += "Date: " + rfc5322_date(*d) + "\r\n";
    }
    if (auto id = str(item, e.messageid); !id.empty()) {
      head += "Message-ID: " + one_line(id) + "\r\n";
    }
  }
  std::string b0 = boundary(node, 0, depth);
  std::string b1 = boundary(node, 1, depth);
  std::string out = head;
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: multipart/mixed; boundary=\"" + b0 + "\"\r\n\r\n";
  out += "This is a copy of a message kept in an Outlook data file (PST).\r\n";
  out += "--" + b0 + "\r\n";
  out += "Content-Type: multipart/alternative; boundary=\"" + b1 + "\"\r\n\r\n";
  out += "--" + b1 + "\r\nContent-Type: text/plain; charset=UTF-8\r\n"
         "Content-Transfer-Encoding: base64\r\n\r\n" +
         base64(str(item, item.body));
  if (auto html = str(item, e.htmlbody); !html.empty()) {
    out += "--" + b1 + "\r\nContent-Type: text/html; charset=UTF-8\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n" + base64(html);
  }
  out += "--" + b1 + "--\r\n";
  int n = 0;
  for (pst_item_attach *a = item.attach; a != nullptr; a = a->next) {
    ++n;
    std::string name = attachment_name(item, *a, n);
    std::string type = one_line(str(item, a->mimetype));
    if (type.empty() || type.find('/') == std::string::npos) {
      type = guess_type(name);
    }
    std::string quoted;
    for (char c : one_line(name)) {
      quoted += (c == '"' || c == '\\') ? '_' : c;
    }
    if (a->method == PST_ATTACH_EMBEDDED && depth < k_max_embed_depth) {
      // An attached Outlook item: its stored bytes are MAPI properties, of no use to the data
      // subject, so it is rendered like a kept item — a message as message/rfc822 (readpst does
      // the same), anything else as its .ics/.vcf/.txt rendering.
      if (PstItemPtr inner = parse_embedded(pf, *a)) {
        if (inner->email != nullptr) {
          out += "--" + b0 + "\r\nContent-Type: message/rfc822\r\n";
          out += "Content-Disposition: attachment; filename=\"" + header_value(quoted) + ".eml\"\r\n\r\n";
          out += render_email(pf, *inner, node, depth + 1).bytes;
          continue;
        }
        PstRendering r = inner->contact != nullptr && inner->type == PST_TYPE_CONTACT ? render_contact(*inner)
                         : inner->appointment != nullptr                             ? render_appointment(pf, *inner, node, std::time(nullptr), depth + 1)
                                                                                      : render_other(*inner);
        out += "--" + b0 + "\r\nContent-Type: " + guess_type("." + r.extension) + "; charset=UTF-8\r\n";
        out += "Content-Disposition: attachment; filename=\"" + header_value(quoted) + "." + r.extension + "\"\r\n";
        out += "Content-Transfer-Encoding: base64\r\n\r\n" + base64(r.bytes);
        continue;
      }
    }
    out += "--" + b0 + "\r\nContent-Type: " + type + "\r\n";
    out += "Content-Disposition: attachment; filename=\"" + header_value(quoted) + "\"\r\n";
    out += "Content-Transfer-Encoding: base64\r\n\r\n" + base64(attachment_bytes(pf, *a));
  }
  out += "--" + b0 + "--\r\n";
  return PstRendering{"eml", std::move(out)};
}

/** RFC 6350 / 5545 text value escaping. */
std::string escape_text(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == ',' || c == ';') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c != '\r') {
      out.push_back(c);
    }
  }
  return out;
}

/** Folds a content line at 75 octets (not inside a UTF-8 sequence), CRLF-terminated. */
std::string fold(std::string_view line) {
  std::string out;
  std::size_t col = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    auto c = static_cast<unsigned char>(line[i]);
    if (col >= 74 && (c & 0xC0) != 0x80) {
      out += "\r\n ";
      col = 1;
    }
    out.push_back(line[i]);
    ++col;
  }
  return out + "\r\n";
}

PstRendering render_contact(pst_item &item) {
  pst_item_contact &c = *item.contact;
  std::string out = "BEGIN:VCARD\r\nVERSION:3.0\r\n";
  std::string fn = str(item, c.fullname);
  if (fn.empty()) {
    fn = str(item, item.file_as);
  }
  out += fold("FN:" + escape_text(fn));
  out += fold("N:" + escape_text(str(item, c.surname)) + ";" + escape_text(str(item, c.first_name)) +
              ";;;");
  for (pst_string *s : {&c.address1, &c.address2, &c.address3}) {
    if (auto v = str(item, *s); !v.empty()) {
      out += fold("EMAIL;TYPE=INTERNET:" + escape_text(v));
    }
  }
  std::pair<pst_string *, std::string_view> phones[] = {
      {&c.business_phone, "WORK"}, {&c.business_phone2, "WORK"}, {&c.home_phone, "HOME"},
      {&c.home_phone2, "HOME"},    {&c.mobile_phone, "CELL"}};
  for (auto &[s, type] : phones) {
    if (auto v = str(item, *s); !v.empty()) {
      out += fold(fmt::format("TEL;TYPE={}:{}", type, escape_text(v)));
    }
  }
  if (auto v = str(item, c.company_name); !v.empty()) {
    out += fold("ORG:" + escape_text(v));
  }
  if (auto v = str(item, c.job_title); !v.empty()) {
    out += fold("TITLE:" + escape_text(v));
  }
  if (auto v = str(item, c.business_address); !v.empty()) {
    out += fold("LABEL;TYPE=WORK:" + escape_text(v));
  }
  if (auto v = str(item, c.home_address); !v.empty()) {
    out += fold("LABEL;TYPE=HOME:" + escape_text(v));
  }
  if (auto v = str(item, item.body); !v.empty()) {
    out += fold("NOTE:" + escape_text(v));
  }
  out += "END:VCARD\r\n";
  return PstRendering{"vcf", std::move(out)};
}

PstRendering render_appointment(pst_file &pf, pst_item &item, std::uint64_t node, std::int64_t now, int depth) {
  pst_item_appointment &a = *item.appointment;
  std::string out = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//maildsar//access export//EN\r\n"
                    "BEGIN:VEVENT\r\n";
  out += fold(fmt::format("UID:pst-node-{}@maildsar.invalid", node));
  out += "DTSTAMP:" + ical_date(now) + "\r\n";
  if (auto s = to_unix(a.start)) {
    out += "DTSTART:" + ical_date(*s) + "\r\n";
  }
  if (auto e = to_unix(a.end)) {
    out += "DTEND:" + ical_date(*e) + "\r\n";
  }
  out += fold("SUMMARY:" + escape_text(str(item, item.subject)));
  if (auto v = str(item, a.location); !v.empty()) {
    out += fold("LOCATION:" + escape_text(v));
  }
  if (auto v = str(item, item.body); !v.empty()) {
    out += fold("DESCRIPTION:" + escape_text(v));
  }
  // Its attachments, inline (RFC 5545 3.8.1.1: ATTACH;ENCODING=BASE64;VALUE=BINARY), so that the
  // package (and a converted archive) holds them too; an attached Outlook item as its rendering.
  int n = 0;
  for (pst_item_attach *at = item.attach; at != nullptr; at = at->next) {
    ++n;
    std::string name = attachment_name(item, *at, n);
    std::string type = one_line(str(item, at->mimetype));
    std::string bytes;
    if (at->method == PST_ATTACH_EMBEDDED) {
      PstItemPtr inner = depth < k_max_embed_depth ? parse_embedded(pf, *at) : nullptr;
      if (!inner) {
        continue;
      }
      PstRendering r = inner->email != nullptr ? render_email(pf, *inner, node, depth + 1)
                       : inner->contact != nullptr ? render_contact(*inner)
                                                   : render_other(*inner);
      name += "." + r.extension;
      type = guess_type(name);
      bytes = std::move(r.bytes);
    } else {
      bytes = attachment_bytes(pf, *at);
    }
    if (bytes.empty()) {
      continue; // nothing to hand over (an empty attachment, or data libpst cannot find)
    }
    if (type.empty() || type.find('/') == std::string::npos) {
      type = guess_type(name);
    }
    std::string safe;
    for (char c : one_line(name)) {
      safe += (c == '"' || c == ';' || c == ':' || c == ',' || c == '\\') ? '_' : c;
    }
    out += fold(fmt::format("ATTACH;FMTTYPE={};ENCODING=BASE64;VALUE=BINARY;X-FILENAME=\"{}\":{}", type, safe,
                            base64(bytes, 0)));
  }
  out += "END:VEVENT\r\nEND:VCALENDAR\r\n";
  return PstRendering{"ics", std::move(out)};
}

PstRendering render_other(pst_item &item) {
  std::string out = "Subject: " + str(item, item.subject) + "\n\n" + str(item, item.body) + "\n";
  return PstRendering{"txt", std::move(out)};
}

} // namespace

core::Status for_each_pst_rendering_in_process(const std::string &path, const std::vector<std::uint64_t> &node_ids,
                                              const PstRenderSink &sink) {
  {
    MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(path)); // O_NOFOLLOW, readable
  }
  std::lock_guard lock(g_render_mutex);
  pst_file pf{};
  if (pst_open(&pf, path.c_str(), "windows-1252") != 0) {
    return core::fail(core::ErrorCode::data, fmt::format("pst {}: not a PST/OST file libpst can read", path));
  }
  struct Closer {
    pst_file *f;
    ~Closer() { pst_close(f); }
  } closer{&pf};
  if (pst_load_index(&pf) != 0 || pf.d_head == nullptr) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("pst {}: the index cannot be read (corrupt or truncated)", path));
  }
  pst_load_extended_attributes(&pf);
  std::set<std::uint64_t> wanted(node_ids.begin(), node_ids.end());
  std::int64_t now = std::time(nullptr);
  for (pst_desc_tree *d = pf.d_head; d != nullptr && !wanted.empty(); d = pst_getNextDptr(d)) {
    std::uint64_t id = d->d_id;
    if (!wanted.contains(id)) {
      continue;
    }
    wanted.erase(id);
    PstItemPtr item(pst_parse_item(&pf, d, nullptr));
    if (!item) {
      MAILDSAR_TRY(sink(id, core::fail(core::ErrorCode::data,
                                       fmt::format("pst {}: node {}: item cannot be parsed", path, id))));
      continue;
    }
    if (item->contact != nullptr && item->type == PST_TYPE_CONTACT) {
      MAILDSAR_TRY(sink(id, render_contact(*item)));
    } else if (item->appointment != nullptr && item->type == PST_TYPE_APPOINTMENT) {
      MAILDSAR_TRY(sink(id, render_appointment(pf, *item, id, now)));
    } else if (item->email != nullptr) {
      MAILDSAR_TRY(sink(id, render_email(pf, *item, id)));
    } else {
      MAILDSAR_TRY(sink(id, render_other(*item)));
    }
  }
  for (auto id : wanted) {
    MAILDSAR_TRY(sink(id, core::fail(core::ErrorCode::data,
                                     fmt::format("pst {}: node {} not found (file changed since indexing?)", path, id))));
  }
  return {};
}

core::Result<std::map<std::uint64_t, core::Result<PstRendering>>>
render_pst_items(const std::string &path, const std::vector<std::uint64_t> &node_ids) {
  std::map<std::uint64_t, core::Result<PstRendering>> out;
  MAILDSAR_TRY(for_each_pst_rendering(path, node_ids, [&](std::uint64_t id, core::Result<PstRendering> r) -> core::Status {
    out.emplace(id, std::move(r));
    return {};
  }));
  return out;
}

std::string to_mbox_message(const PstRendering &rendering, const PstMboxContext &context) {
  // The PST item's place, so that nothing of its context is lost in the flat archive.
  std::string extra = "X-Maildsar-PST-File: " + header_value(one_line(context.pst_name)) + "\r\n" +
                      "X-Maildsar-PST-Folder: " + header_value(one_line(context.folder)) + "\r\n" +
                      fmt::format("X-Maildsar-PST-Node: {}\r\n", context.node_id);
  std::string message;
  if (rendering.extension == "eml") {
    message = extra + rendering.bytes;
  } else {
    const bool contact = rendering.extension == "vcf";
    const bool calendar = rendering.extension == "ics";
    const std::string kind = contact ? "Contact" : calendar ? "Calendar item" : "Item";
    const std::string type = contact ? "text/vcard" : calendar ? "text/calendar" : "text/plain";
    message = "Subject: " + header_value(one_line(kind + " kept in " + context.pst_name + " (" + context.folder + ")")) +
              "\r\n" + "Date: " + rfc5322_date(context.now) + "\r\n" +
              fmt::format("Message-ID: <pst-{}-{}@maildsar.invalid>\r\n", context.node_id, context.now) + extra +
              "MIME-Version: 1.0\r\n" + "Content-Type: " + type + "; charset=UTF-8\r\n" +
              fmt::format("Content-Disposition: inline; filename=\"node-{}.{}\"\r\n", context.node_id,
                          rendering.extension) +
              "Content-Transfer-Encoding: base64\r\n\r\n" + base64(rendering.bytes);
  }
  // mbox: LF line ends, ">From " quoting (mboxrd), a blank line after the message.
  std::string lf;
  lf.reserve(message.size());
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t eol = message.find('\n', pos);
    std::string_view line(message.data() + pos, (eol == std::string::npos ? message.size() : eol) - pos);
    pos = eol == std::string::npos ? message.size() : eol + 1;
    if (line.ends_with('\r')) {
      line.remove_suffix(1);
    }
    lf.append(line);
    lf.push_back('\n');
  }
  std::string out = "From MAILER-DAEMON " + core::format_utc(context.now, "%a %b %e %H:%M:%S %Y") + "\n" +
                    quote_mboxrd(lf);
  out.push_back('\n');
  return out;
}

} // namespace maildsar::connectors
