// SPDX-License-Identifier: GPL-3.0-or-later
// The PST/OST connector: reads Outlook stores through libpst (pst-utils' library) into Items.
//
// Traversal follows the libpst API as readpst uses it: pst_open, pst_load_index,
// pst_load_extended_attributes, parse the root record (d_head) and find the top of folders
// (pst_getTopOfFolders), then walk the descriptor tree; every descriptor is parsed with
// pst_parse_item: folders are descended into, everything else becomes one Item. Embedded
// messages (attach method 5) are parsed with pst_parse_item on the attachment's id2 list.
//
// libpst and crashes: libpst trusts the file (a corrupt PST overflows the heap in
// pst_load_extended_attributes, dereferences NULL in pst_parse_item, or asks for gigabytes), so
// this code runs in the maildsar-worker process (pst_worker.cpp, isolate.hpp): scan_pst_file is
// the parent side, scan_pst_file_in_process is what the worker calls.
//
// libpst and threads: libpst keeps process-wide state — a debug call stack that every library
// function pushes to (unless the debug level is raised above 3), and cached iconv descriptors in
// its string conversion code. Neither is safe to use from two threads at once, so every use of
// libpst in one process goes through g_libpst_mutex (a worker runs one task, so in practice PST
// files are scanned in parallel, each in its own worker).
//
// libpst and the process: it writes nothing to stdout for bad files (its warnings go to the
// debug log, which stays off); it calls exit() only when malloc fails, and pst_open() calls
// perror() when fopen() fails, so we open the file ourselves first and report that error.
#include "connectors/pst.hpp"

#include "connectors/attachment_text.hpp"
#include "connectors/mime/gobject.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "connectors/pst_worker.hpp"
#include "extract/extract.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"

#include <libpst/libpst.h>
extern "C" {
#include <libpst/lzfu.h> // declares pst_lzfu_decompress without C linkage
}

#include <fmt/format.h>
#include <glib.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

extern "C" {
// Exported by libpst but declared only in its private define.h.
void pst_debug_setlevel(int level);
}

namespace maildsar::connectors {

namespace {

std::mutex g_libpst_mutex; // guards every libpst call (see the top of this file)

constexpr int k_max_folder_depth = 128;
constexpr int k_max_embed_depth = 8;
constexpr std::uint64_t k_max_text_attachment = 16ULL << 20;
/** A set-aside attachment travels in one frame of at most k_pst_max_frame (name, type included). */
constexpr std::uint64_t k_max_set_aside = k_pst_max_frame - (8U << 20);

/** Frees a malloc()ed buffer handed over by libpst. */
struct CFree {
  void operator()(void *pointer) const noexcept { std::free(pointer); }
};
using CBuffer = std::unique_ptr<char, CFree>;

struct PstItemFree {
  void operator()(pst_item *item) const noexcept {
    if (item != nullptr) {
      pst_freeItem(item);
    }
  }
};
using PstItemPtr = std::unique_ptr<pst_item, PstItemFree>;

// ---------------------------------------------------------------------------------------------
// Text helpers

/** Makes `bytes` valid UTF-8: as is when it already is, else Windows-1252, else replaced. */
std::string ensure_utf8(std::string bytes, const char *charset = "WINDOWS-1252") {
  if (g_utf8_validate(bytes.data(), static_cast<gssize>(bytes.size()), nullptr) != FALSE) {
    return bytes;
  }
  gsize written = 0;
  mime::GCharPtr converted(g_convert(bytes.data(), static_cast<gssize>(bytes.size()), "UTF-8",
                                     charset, nullptr, &written, nullptr));
  if (converted) {
    return std::string(converted.get(), written);
  }
  mime::GCharPtr valid(g_utf8_make_valid(bytes.data(), static_cast<gssize>(bytes.size())));
  return valid ? std::string(valid.get()) : std::string();
}

std::string trim(std::string_view text) {
  const auto *ws = " \t\r\n";
  auto start = text.find_first_not_of(ws);
  if (start == std::string_view::npos) {
    return {};
  }
  auto end = text.find_last_not_of(ws);
  return std::string(text.substr(start, end - start + 1));
}

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (g_ascii_tolower(text[i]) != g_ascii_tolower(prefix[i])) {
      return false;
    }
  }
  return true;
}

std::string lower_ascii(std::string_view text) {
  std::string out(text);
  for (auto &c : out) {
    c = g_ascii_tolower(c);
  }
  return out;
}

void append_utf8(std::string &out, std::uint32_t code_point) {
  if (code_point == 0 || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    return;
  }
  std::array<char, 8> buffer{};
  auto len = g_unichar_to_utf8(static_cast<gunichar>(code_point), buffer.data());
  out.append(buffer.data(), static_cast<std::size_t>(len));
}

/** HTML to plain text: drops tags, comments, <style>/<script>/<head> content; decodes entities. */
std::string html_to_text(std::string_view html) {
  std::string out;
  out.reserve(html.size() / 2);
  std::size_t i = 0;
  auto skip_element = [&](std::string_view name) {
    // i is just after "<name"; skip to the matching "</name>"
    std::string close = "</" + std::string(name);
    while (i < html.size()) {
      auto lt = html.find('<', i);
      if (lt == std::string_view::npos) {
        i = html.size();
        return;
      }
      if (iequals_prefix(html.substr(lt), close)) {
        auto gt = html.find('>', lt);
        i = gt == std::string_view::npos ? html.size() : gt + 1;
        return;
      }
      i = lt + 1;
    }
  };
  while (i < html.size()) {
    char c = html[i];
    if (c == '<') {
      auto rest = html.substr(i);
      if (rest.starts_with("<!--")) {
        auto end = html.find("-->", i + 4);
        i = end == std::string_view::npos ? html.size() : end + 3;
        continue;
      }
      bool skip = false;
      for (std::string_view name : {"style", "script", "head"}) {
        // Built by appending, not "<" + std::string(name): GCC 12 -O3 reports a false -Wrestrict
        // in operator+(const char *, std::string &&) (GCC PR 105329).
        std::string tag(1, '<');
        tag += name;
        if (iequals_prefix(rest, tag) && rest.size() > tag.size() &&
            (rest[tag.size()] == '>' || g_ascii_isspace(rest[tag.size()]) != FALSE)) {
          i += tag.size();
          skip_element(name);
          skip = true;
          break;
        }
      }
      if (skip) {
        out += ' ';
        continue;
      }
      auto gt = html.find('>', i);
      bool block = iequals_prefix(rest, "<br") || iequals_prefix(rest, "<p") ||
                   iequals_prefix(rest, "</p") || iequals_prefix(rest, "<div") ||
                   iequals_prefix(rest, "</div") || iequals_prefix(rest, "<tr") ||
                   iequals_prefix(rest, "<li") || iequals_prefix(rest, "</td");
      out += block ? '\n' : ' ';
      i = gt == std::string_view::npos ? html.size() : gt + 1;
      continue;
    }
    if (c == '&') {
      auto semi = html.find(';', i);
      if (semi != std::string_view::npos && semi - i <= 10) {
        auto entity = html.substr(i + 1, semi - i - 1);
        std::uint32_t cp = 0;
        bool known = true;
        if (!entity.empty() && entity[0] == '#') {
          bool hex = entity.size() > 1 && (entity[1] == 'x' || entity[1] == 'X');
          auto digits = std::string(entity.substr(hex ? 2 : 1));
          char *end = nullptr;
          auto value = std::strtoul(digits.c_str(), &end, hex ? 16 : 10);
          known = !digits.empty() && end != nullptr && *end == '\0';
          cp = static_cast<std::uint32_t>(std::min<unsigned long>(value, 0x110000UL));
        } else if (entity == "amp") {
          cp = '&';
        } else if (entity == "lt") {
          cp = '<';
        } else if (entity == "gt") {
          cp = '>';
        } else if (entity == "quot") {
          cp = '"';
        } else if (entity == "apos") {
          cp = '\'';
        } else if (entity == "nbsp") {
          cp = ' ';
        } else {
          known = false;
        }
        if (known) {
          append_utf8(out, cp);
          i = semi + 1;
          continue;
        }
      }
    }
    out += c;
    ++i;
  }
  return out;
}

/**
 * RTF to plain text, best effort: keeps the document text, \par and \line as newlines, \'hh as
 * Windows-1252, \uN as Unicode; drops destinations ({\*...}, font/colour tables, pictures,
 * stylesheet, info) and every other control word. HTML encapsulated in RTF keeps its text.
 */
std::string rtf_to_text(std::string_view rtf) {
  std::string out;
  std::string pending_8bit; // \'hh bytes, converted together
  auto flush_8bit = [&] {
    if (!pending_8bit.empty()) {
      out += ensure_utf8(std::move(pending_8bit));
      pending_8bit.clear();
    }
  };
  struct Group {
    bool skip = false;
    int uc = 1; // characters to skip after \uN
  };
  std::vector<Group> stack{Group{}};
  int skip_chars = 0; // fallback characters after \uN still to drop
  std::size_t i = 0;
  while (i < rtf.size()) {
    char c = rtf[i];
    if (c == '{') {
      flush_8bit();
      stack.push_back(stack.back());
      ++i;
      if (stack.size() > 512) {
        break; // nonsense nesting
      }
      continue;
    }
    if (c == '}') {
      flush_8bit();
      if (stack.size() > 1) {
        stack.pop_back();
      }
      ++i;
      continue;
    }
    if (c == '\\') {
      ++i;
      if (i >= rtf.size()) {
        break;
      }
      char d = rtf[i];
      if (d == '\\' || d == '{' || d == '}') {
        flush_8bit();
        if (!stack.back().skip) {
          out += d;
        }
        ++i;
        continue;
      }
      if (d == '*') {
        stack.back().skip = true;
        ++i;
        continue;
      }
      if (d == '\'') {
        if (i + 2 < rtf.size()) {
          auto hex = std::string(rtf.substr(i + 1, 2));
          char *end = nullptr;
          auto value = std::strtoul(hex.c_str(), &end, 16);
          i += 3;
          if (skip_chars > 0) {
            --skip_chars;
            continue;
          }
          if (!stack.back().skip && end != nullptr && *end == '\0') {
            pending_8bit += static_cast<char>(value);
          }
          continue;
        }
        break;
      }
      if (g_ascii_isalpha(d) == FALSE) {
        // control symbol: \~ non-breaking space, \- optional hyphen, \_ hyphen, others dropped
        flush_8bit();
        if (!stack.back().skip) {
          if (d == '~') {
            out += ' ';
          } else if (d == '_') {
            out += '-';
          } else if (d == '\n' || d == '\r') {
            out += '\n';
          }
        }
        ++i;
        continue;
      }
      std::size_t start = i;
      while (i < rtf.size() && g_ascii_isalpha(rtf[i]) != FALSE) {
        ++i;
      }
      std::string word(rtf.substr(start, i - start));
      bool has_param = false;
      long param = 0;
      std::size_t pstart = i;
      if (i < rtf.size() && (rtf[i] == '-' || g_ascii_isdigit(rtf[i]) != FALSE)) {
        ++i;
        while (i < rtf.size() && g_ascii_isdigit(rtf[i]) != FALSE) {
          ++i;
        }
        auto digits = std::string(rtf.substr(pstart, i - pstart));
        param = std::strtol(digits.c_str(), nullptr, 10);
        has_param = true;
      }
      if (i < rtf.size() && rtf[i] == ' ') {
        ++i; // the delimiter space belongs to the control word
      }
      flush_8bit();
      static const std::set<std::string, std::less<>> k_destinations{
          "fonttbl", "colortbl", "stylesheet", "info", "pict", "object", "header", "footer",
          "headerl", "headerr", "footerl", "footerr", "listtable", "listoverridetable",
          "rsidtbl", "generator", "themedata", "colorschememapping", "datastore", "latentstyles",
          "xmlnstbl", "mmathPr", "fldinst", "bkmkstart", "bkmkend", "filetbl", "revtbl"};
      if (k_destinations.contains(word)) {
        stack.back().skip = true;
        continue;
      }
      if (word == "uc" && has_param) {
        stack.back().uc = static_cast<int>(std::clamp(param, 0L, 10L));
        continue;
      }
      if (word == "u" && has_param) {
        if (!stack.back().skip) {
          long cp = param < 0 ? param + 65536 : param;
          append_utf8(out, static_cast<std::uint32_t>(cp));
        }
        skip_chars = stack.back().uc;
        continue;
      }
      if (stack.back().skip) {
        continue;
      }
      if (word == "par" || word == "line" || word == "row" || word == "sect" || word == "page") {
        out += '\n';
      } else if (word == "tab" || word == "cell") {
        out += '\t';
      } else if (word == "emdash" || word == "endash") {
        out += '-';
      } else if (word == "lquote" || word == "rquote") {
        out += '\'';
      } else if (word == "ldblquote" || word == "rdblquote") {
        out += '"';
      } else if (word == "bullet") {
        out += '*';
      }
      continue;
    }
    if (c == '\r' || c == '\n') {
      ++i;
      continue;
    }
    if (skip_chars > 0) {
      --skip_chars;
      ++i;
      continue;
    }
    if (!stack.back().skip) {
      pending_8bit += c;
    }
    ++i;
  }
  flush_8bit();
  return out;
}

std::optional<std::int64_t> to_unix(const FILETIME *ft) {
  if (ft == nullptr) {
    return std::nullopt;
  }
  auto ticks = (static_cast<std::uint64_t>(ft->dwHighDateTime) << 32) | ft->dwLowDateTime;
  if (ticks == 0) {
    return std::nullopt;
  }
  constexpr std::int64_t k_epoch_diff = 11644473600LL; // 1601-01-01 to 1970-01-01, seconds
  return static_cast<std::int64_t>(ticks / 10000000ULL) - k_epoch_diff;
}

// ---------------------------------------------------------------------------------------------
// Canonical serialisation for the item hash

void put_field(core::Sha256 &sha, std::string_view tag, std::string_view value) {
  sha.update(tag);
  sha.update(fmt::format(":{}:", value.size()));
  sha.update(value);
  sha.update("\n");
}

/**
 * PST items have no byte range of their own, so an Item's sha256 is the SHA-256 of a canonical
 * serialisation of everything extracted from it: "maildsar-pst-item-v1", then each field as
 * `tag:length:value\n` in a fixed order (message id, date, subject, addresses, IPs, texts).
 * Any change to the item as libpst reads it changes the hash; the locator keeps the node id.
 */
std::string item_hash(const Item &item) {
  core::Sha256 sha;
  sha.update("maildsar-pst-item-v1\n");
  put_field(sha, "message-id", item.message_id);
  put_field(sha, "date", item.date ? std::to_string(*item.date) : std::string());
  put_field(sha, "subject", item.subject);
  for (const auto &a : item.addresses) {
    put_field(sha, fmt::format("address/{}", to_string(a.role)), a.name + "\x1f" + a.addr);
  }
  for (const auto &ip : item.ips) {
    put_field(sha, fmt::format("ip/{}", to_string(ip.role)), ip.value);
  }
  for (const auto &t : item.texts) {
    put_field(sha, fmt::format("text/{}", to_string(t.role)), t.text);
  }
  return sha.hex_digest();
}

// ---------------------------------------------------------------------------------------------
// Item extraction

enum class Kind { folder, email, contact, appointment, journal, other, store };

constexpr std::uint64_t k_nid_type_mask = 0x1F;
constexpr std::uint64_t k_nid_normal_folder = 0x02;
constexpr std::uint64_t k_nid_search_folder = 0x03;

Kind classify(const pst_item &item, std::uint64_t d_id) {
  // The order is readpst's, so that our e-mail count is the number of messages readpst writes.
  // A descriptor whose node id says "folder" is one even when libpst found no folder properties
  // (MS-PST 2.2.2.1: NID_TYPE_NORMAL_FOLDER, NID_TYPE_SEARCH_FOLDER).
  auto nid_type = d_id & k_nid_type_mask;
  if (item.folder != nullptr || nid_type == k_nid_normal_folder ||
      nid_type == k_nid_search_folder) {
    return Kind::folder;
  }
  if (item.contact != nullptr && item.type == PST_TYPE_CONTACT) {
    return Kind::contact;
  }
  if (item.email != nullptr && (item.type == PST_TYPE_NOTE || item.type == PST_TYPE_SCHEDULE ||
                                item.type == PST_TYPE_REPORT)) {
    return Kind::email;
  }
  if (item.journal != nullptr && item.type == PST_TYPE_JOURNAL) {
    return Kind::journal;
  }
  if (item.appointment != nullptr && item.type == PST_TYPE_APPOINTMENT) {
    return Kind::appointment;
  }
  if (item.message_store != nullptr) {
    return Kind::store;
  }
  return Kind::other;
}

/** "Name <addr>", "addr", "Name" -> (name, addr). */
std::pair<std::string, std::string> split_mailbox(std::string_view token) {
  auto text = trim(token);
  auto lt = text.rfind('<');
  auto gt = text.rfind('>');
  if (lt != std::string::npos && gt != std::string::npos && gt > lt) {
    auto addr = trim(std::string_view(text).substr(lt + 1, gt - lt - 1));
    auto name = trim(std::string_view(text).substr(0, lt));
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
      name = name.substr(1, name.size() - 2);
    }
    if (addr.find('@') != std::string::npos) {
      return {name, addr};
    }
    return {text, {}};
  }
  if (text.find('@') != std::string::npos && text.find(' ') == std::string::npos) {
    return {{}, text};
  }
  if (text.size() >= 2 && text.front() == '\'' && text.back() == '\'') {
    text = text.substr(1, text.size() - 2); // Outlook quotes some display names
  }
  return {text, {}};
}

class Extractor {
public:
  Extractor(pst_file &pf, std::string path) : m_pf(pf), m_path(std::move(path)) {}

  /** Fills `out` (everything but the locator and sha256) from `item`. */
  void extract(pst_item &item, Item &out, int embed_depth) {
    auto subject = str(item, item.subject);
    if (subject.empty() && item.email != nullptr) {
      subject = str(item, item.email->outlook_normalized_subject);
    }
    if (subject.empty() && item.contact == nullptr) {
      subject = str(item, item.file_as);
    }
    out.subject = subject;
    add_text(out, Role::subject, subject);

    if (item.email != nullptr) {
      extract_email(item, *item.email, out);
    }
    if (item.contact != nullptr) {
      // libpst fills `contact` for any item that carries a contact property (a message's
      // PR_EMAIL_ADDRESS, say): only a real contact card gives names and addresses.
      extract_contact(item, *item.contact, out,
                      item.type == PST_TYPE_CONTACT ? CardNames::yes : CardNames::no);
    }
    if (item.appointment != nullptr) {
      auto &ap = *item.appointment;
      add_text(out, Role::body, str(item, ap.location));
      add_text(out, Role::body, str(item, ap.recurrence_description));
    }
    if (item.journal != nullptr) {
      add_text(out, Role::body, str(item, item.journal->type));
      add_text(out, Role::body, str(item, item.journal->description));
    }
    if (item.email == nullptr && item.contact == nullptr) {
      // PR_DISPLAY_NAME: a distribution list's or a task's name (on messages it is noise)
      auto display = str(item, item.file_as);
      add_text(out, Role::body, display == subject ? std::string() : display);
    }
    add_text(out, Role::body, str(item, item.comment));
    extract_bodies(item, out);
    extract_attachments(item, out, embed_depth);

    if (!out.date) {
      if (item.email != nullptr) {
        out.date = to_unix(item.email->arrival_date);
        if (!out.date) {
          out.date = to_unix(item.email->sent_date);
        }
      }
      if (!out.date && item.appointment != nullptr) {
        out.date = to_unix(item.appointment->start);
      }
      if (!out.date && item.journal != nullptr) {
        out.date = to_unix(item.journal->start);
      }
      if (!out.date) {
        out.date = to_unix(item.create_date);
      }
      if (!out.date) {
        out.date = to_unix(item.modify_date);
      }
    }
  }

private:
  std::string str(pst_item &owner, pst_string &s) {
    if (s.str == nullptr) {
      return {};
    }
    // Unicode stores hold UTF-8 already; ANSI strings are converted from the item's code page.
    // When libpst cannot convert, ensure_utf8 falls back to Windows-1252.
    pst_convert_utf8_null(&owner, &s);
    if (s.str == nullptr) {
      return {};
    }
    return ensure_utf8(std::string(s.str));
  }

  static void add_text(Item &out, Role role, std::string text, std::string field = {}) {
    text = trim(text);
    if (text.empty()) {
      return;
    }
    for (const auto &t : out.texts) {
      if (t.role == role && t.text == text && t.field == field) {
        return;
      }
    }
    out.texts.push_back(RawText{role, std::move(text), std::move(field)});
  }

  static void add_address(Item &out, Role role, std::string name, std::string addr) {
    name = trim(name);
    addr = trim(addr);
    if (addr.find('@') == std::string::npos) {
      addr.clear(); // X.500 DNs and other non-SMTP addresses are not addr-specs
    }
    if (name.empty() && addr.empty()) {
      return;
    }
    if (name == addr) {
      name.clear();
    }
    for (auto &a : out.addresses) {
      if (a.role != role) {
        continue;
      }
      if (a.name == name && a.addr == addr) {
        return;
      }
      // "Name" alone and "Name <addr>" in the same role: keep the fuller one
      if (!name.empty() && a.name == name && a.addr.empty()) {
        a.addr = addr;
        return;
      }
      if (!name.empty() && a.name == name && addr.empty()) {
        return;
      }
    }
    out.addresses.push_back(RawAddress{role, std::move(name), std::move(addr)});
  }

  /** A display list ("A; B <b@x>; c@y") -> one address per entry. */
  static void add_display_list(Item &out, Role role, const std::string &list) {
    std::size_t start = 0;
    while (start <= list.size()) {
      auto semi = list.find(';', start);
      auto token = std::string_view(list).substr(
          start, semi == std::string::npos ? std::string::npos : semi - start);
      auto [name, addr] = split_mailbox(token);
      add_address(out, role, name, addr);
      if (semi == std::string::npos) {
        break;
      }
      start = semi + 1;
    }
  }

  void extract_email(pst_item &item, pst_item_email &email, Item &out) {
    auto message_id = trim(str(item, email.messageid));
    if (message_id.size() >= 2 && message_id.front() == '<' && message_id.back() == '>') {
      message_id = message_id.substr(1, message_id.size() - 2);
    }
    out.message_id = message_id;
    out.date = to_unix(email.arrival_date);
    if (!out.date) {
      out.date = to_unix(email.sent_date);
    }

    // Sender (PR_SENT_REPRESENTING_*) and the actual sender (PR_SENDER_*).
    auto from_name = str(item, email.outlook_sender_name);
    auto from_addr = str(item, email.sender_address);
    add_address(out, Role::from, from_name, from_addr);
    auto sender_name = str(item, email.outlook_sender_name2);
    auto sender_addr = str(item, email.sender2_address);
    if (sender_name != from_name || sender_addr != from_addr) {
      add_address(out, Role::sender, sender_name, sender_addr);
    }
    // Recipients as MAPI keeps them: display lists (names, sometimes addresses).
    add_display_list(out, Role::to, str(item, email.sentto_address));
    add_display_list(out, Role::cc, str(item, email.cc_address));
    add_display_list(out, Role::bcc, str(item, email.bcc_address));
    add_display_list(out, Role::to, str(item, email.original_to));
    add_display_list(out, Role::cc, str(item, email.original_cc));
    add_display_list(out, Role::bcc, str(item, email.original_bcc));
    add_display_list(out, Role::reply_to, str(item, email.reply_to));
    // The mailbox that received it (PR_RECEIVED_BY_*, PR_RCVD_REPRESENTING_*).
    add_address(out, Role::delivered_to, str(item, email.outlook_received_name1),
                str(item, email.recip_address));
    add_address(out, Role::delivered_to, str(item, email.outlook_recipient_name),
                str(item, email.recip2_address));
    add_text(out, Role::return_path, str(item, email.return_path_address));
    add_text(out, Role::body, str(item, email.report_text));
    add_text(out, Role::body, str(item, email.supplementary_info));

    auto headers = str(item, email.header);
    if (!headers.empty()) {
      extract_headers(headers, out);
    }
  }

  /** The transport headers (PR_TRANSPORT_MESSAGE_HEADERS) with every role they carry. */
  void extract_headers(std::string headers, Item &out) {
    // Outlook may put a "Microsoft Mail Internet Headers Version 2.0" line first.
    if (iequals_prefix(headers, "Microsoft Mail Internet Headers")) {
      auto nl = headers.find('\n');
      headers = nl == std::string::npos ? std::string() : headers.substr(nl + 1);
    }
    // Keep the header block only (some stores append a body fragment after a blank line).
    for (std::string_view sep : {"\r\n\r\n", "\n\n"}) {
      auto end = headers.find(sep);
      if (end != std::string::npos) {
        headers.resize(end);
      }
    }
    auto colon = headers.find(':');
    auto first_nl = headers.find('\n');
    if (colon == std::string::npos || (first_nl != std::string::npos && colon > first_nl)) {
      out.warnings.push_back("transport headers are not RFC 5322 headers; ignored");
      return;
    }
    Item decoded;
    auto status = mime::decode_message(headers + "\n\n", decoded);
    if (status) {
      for (auto &a : decoded.addresses) {
        add_address(out, a.role, std::move(a.name), std::move(a.addr));
      }
      for (auto &ip : decoded.ips) {
        out.ips.push_back(std::move(ip));
      }
      for (auto &t : decoded.texts) {
        if (t.role != Role::subject && t.role != Role::body) {
          add_text(out, t.role, std::move(t.text));
        }
      }
      if (out.message_id.empty()) {
        out.message_id = decoded.message_id;
      }
      if (!out.date) {
        out.date = decoded.date;
      }
      for (auto &w : decoded.warnings) {
        out.warnings.push_back("transport headers: " + w);
      }
      return;
    }
    // Fallback without the MIME decoder: keep each address header as text with its role.
    out.warnings.push_back("transport headers not decoded: " + status.error().message);
    header_fallback(headers, out);
  }

  static void header_fallback(const std::string &headers, Item &out) {
    static const std::array<std::pair<std::string_view, Role>, 10> k_roles{{
        {"from", Role::from},
        {"to", Role::to},
        {"cc", Role::cc},
        {"bcc", Role::bcc},
        {"reply-to", Role::reply_to},
        {"sender", Role::sender},
        {"delivered-to", Role::delivered_to},
        {"return-path", Role::return_path},
        {"received", Role::received},
        {"x-original-to", Role::delivered_to},
    }};
    std::vector<std::string> fields;
    std::size_t start = 0;
    while (start < headers.size()) {
      auto nl = headers.find('\n', start);
      auto line = headers.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      if (!line.empty() && (line[0] == ' ' || line[0] == '\t') && !fields.empty()) {
        fields.back() += ' '; // two appends: no temporary from " " + std::string (GCC PR 105329)
        fields.back() += trim(line);
      } else {
        fields.push_back(line);
      }
      if (nl == std::string::npos) {
        break;
      }
      start = nl + 1;
    }
    for (const auto &field : fields) {
      auto colon = field.find(':');
      if (colon == std::string::npos) {
        continue;
      }
      auto name = lower_ascii(trim(std::string_view(field).substr(0, colon)));
      for (const auto &[header, role] : k_roles) {
        if (name == header) {
          add_text(out, role, field.substr(colon + 1));
        }
      }
    }
  }

  enum class CardNames { no, yes };

  void extract_contact(pst_item &item, pst_item_contact &c, Item &out, CardNames card) {
    auto fullname = str(item, c.fullname);
    if (fullname.empty() && card == CardNames::yes) {
      fullname = str(item, item.file_as);
    }
    auto given = trim(str(item, c.first_name) + " " + str(item, c.middle_name) + " " +
                      str(item, c.surname));
    // The card's own addresses carry the card's name (Role::body: seen in a contact card).
    for (pst_string *addr : {&c.address1, &c.address2, &c.address3}) {
      auto value = str(item, *addr);
      if (card == CardNames::yes && value.find('@') != std::string::npos) {
        add_address(out, Role::body, fullname, value);
      } else {
        add_text(out, Role::body, value);
      }
    }
    if (card == CardNames::yes) {
      add_address(out, Role::body, fullname, {});
      if (given != fullname) {
        add_address(out, Role::body, given, {});
      }
    } else {
      add_text(out, Role::body, fullname);
      add_text(out, Role::body, given);
    }
    for (pst_string *s : {&c.address1_desc, &c.address2_desc, &c.address3_desc,
                          &c.transmittable_display_name, &c.pref_name, &c.nickname,
                          &c.common_name, &c.display_name_prefix, &c.suffix, &c.initials,
                          &c.spouse_name, &c.assistant_name, &c.manager_name,
                          &c.account_name, &c.free_busy_address}) {
      add_text(out, Role::body, str(item, *s));
    }
    // Phone numbers, one text each, so that the indexer finds every one.
    for (pst_string *s :
         {&c.business_phone, &c.business_phone2, &c.home_phone, &c.home_phone2, &c.mobile_phone,
          &c.car_phone, &c.callback_phone, &c.company_main_phone, &c.assistant_phone,
          &c.other_phone, &c.pager_phone, &c.primary_phone, &c.radio_phone, &c.isdn_phone,
          &c.ttytdd_phone, &c.telex, &c.business_fax, &c.home_fax, &c.primary_fax}) {
      auto phone = trim(str(item, *s));
      add_text(out, Role::body, phone);
      // Some writers store a number twice over ("0123401234"): index the single number too.
      auto half = phone.size() / 2;
      if (half >= 4 && phone.size() % 2 == 0 &&
          std::string_view(phone).substr(0, half) == std::string_view(phone).substr(half)) {
        add_text(out, Role::body, phone.substr(0, half));
      }
    }
    // Postal addresses and the rest of the card.
    for (pst_string *s :
         {&c.home_address, &c.home_street, &c.home_city, &c.home_state, &c.home_postal_code,
          &c.home_country, &c.home_po_box, &c.business_address, &c.business_street,
          &c.business_city, &c.business_state, &c.business_postal_code, &c.business_country,
          &c.business_po_box, &c.other_address, &c.other_street, &c.other_city, &c.other_state,
          &c.other_postal_code, &c.other_country, &c.other_po_box, &c.work_address_street,
          &c.work_address_city, &c.work_address_state, &c.work_address_postalcode,
          &c.work_address_country, &c.work_address_postofficebox, &c.def_postal_address,
          &c.company_name, &c.department, &c.job_title, &c.profession, &c.office_loc,
          &c.location, &c.gov_id, &c.customer_id, &c.org_id, &c.computer_name,
          &c.personal_homepage, &c.business_homepage, &c.ftp_site, &c.hobbies, &c.keyword,
          &c.language, &c.billing_information, &c.mileage, &c.followup}) {
      add_text(out, Role::body, str(item, *s));
    }
  }

  void extract_bodies(pst_item &item, Item &out) {
    auto body = str(item, item.body);
    add_text(out, Role::body, body);
    if (item.email == nullptr) {
      return;
    }
    auto html = str(item, item.email->htmlbody);
    if (!html.empty()) {
      add_text(out, Role::body, html_to_text(html));
    }
    auto &rtf = item.email->rtf_compressed;
    // The RTF body may be newer than the plain one (PR_RTF_IN_SYNC); with an HTML body it is
    // only that HTML wrapped in RTF, so it is read when there is no HTML.
    if (html.empty() && rtf.data != nullptr && rtf.size > 0 && rtf.size <= 0xFFFFFFFFULL) {
      std::size_t size = 0;
      CBuffer raw(pst_lzfu_decompress(rtf.data, static_cast<std::uint32_t>(rtf.size), &size));
      if (raw) {
        add_text(out, Role::body, rtf_to_text(std::string_view(raw.get(), size)));
      } else {
        out.warnings.push_back("RTF body could not be decompressed");
      }
    }
  }

  static bool is_text_attachment(const std::string &name, const std::string &mime_type) {
    auto mime_lower = lower_ascii(mime_type);
    if (mime_lower.starts_with("text/") || mime_lower == "message/rfc822" ||
        mime_lower == "application/xml" || mime_lower == "application/json") {
      return true;
    }
    auto dot = name.rfind('.');
    if (dot == std::string::npos) {
      return false;
    }
    auto ext = lower_ascii(std::string_view(name).substr(dot + 1));
    static const std::set<std::string, std::less<>> k_text_ext{
        "txt", "csv", "htm", "html", "xml", "vcf", "ics", "eml", "log", "md", "json", "tsv"};
    return k_text_ext.contains(ext);
  }

  static bool is_message_attachment(const std::string &name, const std::string &mime_type) {
    return lower_ascii(mime_type) == "message/rfc822" || lower_ascii(name).ends_with(".eml");
  }

  void extract_attachments(pst_item &item, Item &out, int embed_depth) {
    int index = 0;
    for (auto *attach = item.attach; attach != nullptr; attach = attach->next) {
      ++index;
      const std::string position =
          m_position.empty() ? std::to_string(index) : fmt::format("{}.{}", m_position, index);
      auto name = str(item, attach->filename2);
      if (name.empty()) {
        name = str(item, attach->filename1);
      }
      add_text(out, Role::attachment_name, name);
      auto mime_type = str(item, attach->mimetype);
      if (attach->method == PST_ATTACH_EMBEDDED) {
        extract_embedded(*attach, out, embed_depth, position, name);
        continue;
      }
      const bool message = is_message_attachment(name, mime_type);
      if (m_options != nullptr && (message || (m_options->documents && !is_text_attachment(name, mime_type)))) {
        set_aside(*attach, out, position, name, mime_type, message);
        continue;
      }
      if (!is_text_attachment(name, mime_type)) {
        continue;
      }
      if (attach->data.data == nullptr) {
        auto *id = pst_getID(&m_pf, attach->i_id);
        if (id == nullptr) {
          out.warnings.push_back(fmt::format("attachment {}: data not found", position));
          continue;
        }
        if (id->inflated_size > k_max_text_attachment || id->size > k_max_text_attachment) {
          out.warnings.push_back(fmt::format("attachment {}: text too large, skipped", position));
          continue;
        }
      }
      std::string bytes = read_attachment(*attach, k_max_text_attachment);
      if (bytes.empty()) {
        continue;
      }
      if (message) {
        // No parent to hand it to (an in-process scan): decoded here.
        merge_attached_message(bytes, name, out);
        continue;
      }
      add_text_attachment(out, std::move(bytes), name, mime_type);
    }
  }

public:
  /** A text attachment's text as attachment-body, named by the attachment's file name. */
  static void add_text_attachment(Item &out, std::string bytes, const std::string &name,
                                  const std::string &mime_type) {
    auto text = ensure_utf8(std::move(bytes));
    auto ext_lower = lower_ascii(name);
    if (lower_ascii(mime_type) == "text/html" || ext_lower.ends_with(".htm") ||
        ext_lower.ends_with(".html")) {
      text = html_to_text(text);
    }
    add_text(out, Role::attachment_body, std::move(text), name);
  }

  /** Extracted text of a document attachment. */
  static void add_text_attachment_text(Item &out, std::string text, std::string field) {
    add_text(out, Role::attachment_body, std::move(text), std::move(field));
  }

  /** An attached e-mail file: decoded by the MIME parser and flattened; else read as text. */
  static void merge_attached_message(std::string_view bytes, const std::string &name, Item &out) {
    Item inner;
    if (mime::decode_message(bytes, inner)) {
      flatten_into(inner, out, name);
      return;
    }
    add_text_attachment(out, std::string(bytes), name, "message/rfc822");
  }

  /** An attached message's evidence as attachment-body texts of the outer item. */
  static void flatten_into(Item &inner, Item &out, const std::string &name) {
    for (const auto &a : inner.addresses) {
      // fmt, not chains of std::string operator+ (GCC 12 -O3 false -Wrestrict, GCC PR 105329).
      std::string line = fmt::format("{}: {}", to_string(a.role), a.name);
      if (!a.addr.empty()) {
        line += fmt::format("{}<{}>", a.name.empty() ? "" : " ", a.addr);
      }
      add_text(out, Role::attachment_body, line, name);
    }
    if (!inner.message_id.empty()) {
      add_text(out, Role::attachment_body, "message-id: " + inner.message_id, name);
    }
    for (const auto &t : inner.texts) {
      // A nested attachment's text keeps that attachment's name.
      add_text(out, Role::attachment_body, t.text,
               t.role == Role::attachment_body && !t.field.empty() ? t.field : name);
    }
    for (const auto &ip : inner.ips) {
      add_text(out, Role::attachment_body, ip.value, name);
    }
    for (const auto &w : inner.warnings) {
      out.warnings.push_back("attached message: " + w);
    }
    // What the MIME parser could not extract from the message's own attachments counts here.
    for (auto &p : inner.problems) {
      out.problems.push_back(fmt::format("attached message \"{}\": {}", name, p));
    }
    for (auto &t : inner.truncated) {
      out.truncated.push_back(fmt::format("attached message \"{}\": {}", name, t));
    }
    out.attachment_hashes.insert(out.attachment_hashes.end(), inner.attachment_hashes.begin(),
                                 inner.attachment_hashes.end());
  }

private:
  /** The attachment's bytes and their size; the bytes are left out when more than `max`. */
  struct Read {
    std::string bytes;
    std::uint64_t size = 0;
  };
  Read read_bounded(pst_item_attach &attach, std::uint64_t max) {
    if (attach.data.data != nullptr) {
      const auto size = static_cast<std::uint64_t>(attach.data.size);
      return {size <= max ? std::string(attach.data.data, attach.data.size) : std::string(), size};
    }
    pst_binary data = pst_attach_to_mem(&m_pf, &attach);
    CBuffer owned(data.data);
    if (owned == nullptr) {
      return {};
    }
    const auto size = static_cast<std::uint64_t>(data.size);
    return {size <= max ? std::string(owned.get(), data.size) : std::string(), size};
  }

  /** The attachment's bytes, or "" when it is larger than `max` (or empty, or not found). */
  std::string read_attachment(pst_item_attach &attach, std::uint64_t max) {
    return read_bounded(attach, max).bytes;
  }

  /** Size of the attachment's data as the index gives it (a lower bound for multi-block data). */
  std::optional<std::uint64_t> stored_size(pst_item_attach &attach) {
    if (attach.data.data != nullptr) {
      return static_cast<std::uint64_t>(attach.data.size);
    }
    auto *id = pst_getID(&m_pf, attach.i_id);
    if (id == nullptr) {
      return std::nullopt;
    }
    return std::max<std::uint64_t>(id->inflated_size, id->size);
  }

  /**
   * Hands a document or an attached message to m_options->sink (the PST worker sends it to the
   * parent). Bounded: an attachment above max_attachment_bytes, or one that would take the item's
   * set-aside bytes above max_item_bytes, goes as `withheld` (name and size, no bytes), which the
   * parent reports as text not extracted (Item::truncated). Files nothing is extracted from
   * (images, executables) give their names only.
   */
  void set_aside(pst_item_attach &attach, Item &out, const std::string &position, const std::string &name,
                 const std::string &mime_type, bool message) {
    auto size = stored_size(attach);
    if (!size) {
      out.warnings.push_back(fmt::format("attachment {}: data not found", position));
      return;
    }
    const std::uint64_t limit = std::min(m_options->max_attachment_bytes, k_max_set_aside);
    PstAttachment a;
    a.node_id = m_node;
    a.position = position;
    a.name = name;
    a.mime_type = mime_type;
    a.message = message;
    a.size = *size;
    if (*size <= limit) {
      // Read (a multi-block attachment may turn out larger than its index said).
      Read read = read_bounded(attach, limit);
      if (read.size == 0) {
        return; // empty or unreadable: names only
      }
      a.bytes = std::move(read.bytes);
      a.size = read.size;
    }
    if (!message) {
      const extract::Format format = extract::detect(a.bytes, mime_type, name);
      if (format == extract::Format::none) {
        return; // an image, an executable, unknown: names only
      }
      if (format == extract::Format::text) {
        if (a.bytes.empty()) {
          out.warnings.push_back(fmt::format("attachment {}: text too large, skipped", position));
        } else {
          add_text_attachment(out, std::move(a.bytes), name, mime_type);
        }
        return;
      }
    }
    if (!a.bytes.empty() && m_item_bytes + a.bytes.size() > m_options->max_item_bytes) {
      a.bytes.clear(); // the item's budget is spent
    }
    a.withheld = a.bytes.empty();
    m_item_bytes += a.bytes.size();
    m_options->sink(std::move(a));
  }

  void extract_embedded(pst_item_attach &attach, Item &out, int embed_depth, const std::string &position,
                        const std::string &name) {
    if (embed_depth >= k_max_embed_depth) {
      out.warnings.push_back(fmt::format("attachment {}: embedded messages nested too deep", position));
      return;
    }
    auto *id = pst_getID(&m_pf, attach.i_id);
    if (id == nullptr) {
      out.warnings.push_back(fmt::format("attachment {}: embedded message not found", position));
      return;
    }
    pst_desc_tree desc{};
    desc.desc = id;
    PstItemPtr inner_item(pst_parse_item(&m_pf, &desc, attach.id2_head));
    if (!inner_item) {
      out.warnings.push_back(
          fmt::format("attachment {}: embedded message could not be parsed", position));
      return;
    }
    Item inner;
    const std::string outer_position = std::exchange(m_position, position);
    extract(*inner_item, inner, embed_depth + 1);
    m_position = outer_position;
    flatten_into(inner, out, name.empty() ? inner.subject : name);
  }

public:
  /** Where set-aside attachments go (nullptr: nowhere) and the item they belong to. */
  void set_options(const PstAttachmentOptions *options) { m_options = options; }
  void begin_item(std::uint64_t node) {
    m_node = node;
    m_item_bytes = 0;
    m_position.clear();
  }

private:
  pst_file &m_pf;
  std::string m_path;
  const PstAttachmentOptions *m_options = nullptr;
  std::uint64_t m_node = 0;
  std::uint64_t m_item_bytes = 0; // set-aside bytes of the current item
  std::string m_position;         // the attachment an embedded message being read came from
};

// ---------------------------------------------------------------------------------------------
// The walk

class Walker {
public:
  Walker(pst_file &pf, std::string source, std::string path, ItemSink &sink,
         const PstAttachmentOptions *attachments)
      : m_pf(pf), m_source(std::move(source)), m_path(std::move(path)), m_sink(sink),
        m_extractor(pf, m_path) {
    m_extractor.set_options(attachments);
  }

  void walk(pst_desc_tree *first, const std::string &folder, int depth) {
    if (depth > k_max_folder_depth) {
      error(0, fmt::format("folder '{}' nested deeper than {} levels; not read", folder,
                           k_max_folder_depth));
      return;
    }
    for (auto *d = first; d != nullptr; d = d->next) {
      if (!m_seen.insert(d->d_id).second) {
        error(d->d_id, "descriptor seen twice (corrupt descriptor tree); skipped");
        continue;
      }
      if (d->desc == nullptr) {
        // No data block: nothing to read, but its children may hold items.
        if (d->child != nullptr) {
          walk(d->child, folder, depth + 1);
        }
        continue;
      }
      PstItemPtr item(pst_parse_item(&m_pf, d, nullptr));
      if (!item) {
        ++m_stats.unreadable;
        error(d->d_id, fmt::format("item in folder '{}' could not be parsed by libpst", folder));
        continue;
      }
      auto kind = classify(*item, d->d_id);
      if (kind == Kind::folder) {
        ++m_stats.folders;
        auto name = folder_name(*item);
        if (d->child != nullptr) {
          walk(d->child, folder + "/" + name, depth + 1);
        }
        continue;
      }
      if (kind == Kind::store) {
        continue; // a second message store record: nothing personal in it
      }
      emit(*item, *d, folder, kind);
    }
  }

  [[nodiscard]] const PstScanStats &stats() const { return m_stats; }
  PstScanStats &stats() { return m_stats; }

  static std::string folder_name(pst_item &item) {
    if (item.file_as.str == nullptr) {
      return "(unnamed)";
    }
    pst_convert_utf8_null(&item, &item.file_as);
    std::string name = item.file_as.str != nullptr ? ensure_utf8(item.file_as.str) : "";
    std::replace(name.begin(), name.end(), '/', '_');
    return name.empty() ? "(unnamed)" : name;
  }

private:
  void error(std::uint64_t node, std::string cause) {
    m_sink.error(ScanError{m_path, node != 0 ? fmt::format("node {:#x}", node) : "",
                           std::move(cause)});
  }

  void emit(pst_item &raw, const pst_desc_tree &d, const std::string &folder, Kind kind) {
    switch (kind) {
    case Kind::email:
      ++m_stats.emails;
      break;
    case Kind::contact:
      ++m_stats.contacts;
      break;
    case Kind::appointment:
      ++m_stats.appointments;
      break;
    case Kind::journal:
      ++m_stats.journals;
      break;
    default:
      ++m_stats.others;
      break;
    }
    Item item;
    item.locator.source = m_source;
    item.locator.store = StoreKind::pst;
    item.locator.path = m_path;
    item.locator.folder = folder;
    item.locator.node_id = d.d_id;
    m_extractor.begin_item(d.d_id);
    m_extractor.extract(raw, item, 0);
    // The hash does not depend on which attachments were set aside (that depends on the limits
    // and on whether attachment text is on): plan and erase compare it with the index's.
    item.sha256 = item_hash(item);
    m_sink.item(std::move(item));
  }

  pst_file &m_pf;
  std::string m_source;
  std::string m_path;
  ItemSink &m_sink;
  Extractor m_extractor;
  PstScanStats m_stats;
  std::set<std::uint64_t> m_seen;
};

/** pst_open + pst_close as a guard. */
class PstFile {
public:
  PstFile() { std::memset(&m_pf, 0, sizeof m_pf); }
  ~PstFile() {
    if (m_open) {
      pst_close(&m_pf);
    }
  }
  PstFile(const PstFile &) = delete;
  PstFile &operator=(const PstFile &) = delete;

  bool open(const std::string &path) {
    // The charset for ANSI items that name none; a literal, as libpst keeps the pointer.
    m_open = pst_open(&m_pf, path.c_str(), "windows-1252") == 0;
    return m_open;
  }
  pst_file &get() { return m_pf; }

private:
  pst_file m_pf{};
  bool m_open = false;
};

core::Status check_readable(const std::string &path) {
  auto fd = core::open_read(path);
  if (!fd) {
    return std::unexpected(fd.error().with_context("pst: "));
  }
  auto st = core::fstat_fd(fd->get(), path);
  if (!st) {
    return std::unexpected(st.error().with_context("pst: "));
  }
  if (!S_ISREG(static_cast<mode_t>(st->mode))) {
    return core::fail(core::ErrorCode::data, fmt::format("pst {}: not a regular file", path));
  }
  if (st->size < 512) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("pst {}: not a PST/OST file ({} bytes, too short)", path,
                                  st->size));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// The connector

class PstConnector final : public Connector {
public:
  explicit PstConnector(core::SourceConfig source) : m_source(std::move(source)) {}

  [[nodiscard]] StoreKind kind() const override { return StoreKind::pst; }

  [[nodiscard]] core::Result<std::vector<FileEntry>> list_files(ItemSink &errors) const override {
    auto matches = core::expand_glob(m_source.path);
    if (!matches) {
      return std::unexpected(matches.error().with_context("source " + m_source.name + ": "));
    }
    std::vector<FileEntry> files;
    for (auto &match : *matches) {
      auto st = core::lstat_file(match.path);
      if (!st) {
        errors.error(ScanError{match.path, "", st.error().message});
        continue;
      }
      auto mode = static_cast<mode_t>(st->mode);
      if (S_ISLNK(mode)) {
        errors.error(ScanError{match.path, "", "symbolic link; skipped (not followed)"});
        continue;
      }
      if (S_ISDIR(mode)) {
        continue; // a directory matched the pattern: not a store file
      }
      if (!S_ISREG(mode)) {
        errors.error(ScanError{match.path, "", "not a regular file; skipped"});
        continue;
      }
      if (!m_source.root.empty() && !inside_root(match.path)) {
        errors.error(ScanError{match.path, "",
                               fmt::format("outside the source root {}; skipped", m_source.root)});
        continue;
      }
      FileEntry entry;
      entry.path = match.path;
      if (!m_source.owner.empty()) {
        entry.owner = core::expand_owner(m_source.owner, match.captures);
      }
      entry.stat = *st;
      files.push_back(std::move(entry));
    }
    return files;
  }

  [[nodiscard]] core::Status scan(const FileEntry &file, std::uint64_t from_offset,
                                  ItemSink &sink) const override {
    if (from_offset != 0) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("pst {}: PST files are always scanned whole", file.path));
    }
    auto stats = scan_pst_file(m_source.name, file.path, sink);
    if (!stats) {
      return std::unexpected(stats.error());
    }
    return {};
  }

private:
  [[nodiscard]] bool inside_root(const std::string &path) const {
    std::error_code ec;
    auto parent = std::filesystem::weakly_canonical(std::filesystem::path(path).parent_path(), ec);
    auto root = std::filesystem::weakly_canonical(m_source.root, ec);
    if (ec) {
      return false;
    }
    auto rel = parent.lexically_relative(root);
    return !rel.empty() && *rel.begin() != "..";
  }

  core::SourceConfig m_source;
};

} // namespace

core::Result<PstScanStats> scan_pst_file_in_process(const std::string &source, const std::string &path,
                                                    ItemSink &sink, const PstAttachmentOptions *attachments) {
  MAILDSAR_TRY(check_readable(path));
  std::error_code ec;

  std::lock_guard lock(g_libpst_mutex);
  static bool debug_off = false;
  if (!debug_off) {
    // Above 3 every pst_debug* call returns at once: no log, no global call stack.
    pst_debug_setlevel(5);
    debug_off = true;
  }

  PstFile file;
  if (!file.open(path)) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("pst {}: not a PST/OST file libpst can read", path));
  }
  auto &pf = file.get();
  if (pst_load_index(&pf) != 0 || pf.d_head == nullptr) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("pst {}: the index cannot be read (corrupt or truncated)", path));
  }
  pst_load_extended_attributes(&pf); // optional: named properties; items parse without it

  // The header records the file's size (ibFileEof); a shorter file was truncated and whatever
  // lived past its end is gone. Report it, then read what is left.
  // (Copied out first: libpst's pst_file is packed, and fmt binds its arguments by reference —
  // a reference to a misaligned member is undefined behaviour.)
  const std::uint64_t header_size = static_cast<std::uint64_t>(pf.size);
  if (auto actual = std::filesystem::file_size(path, ec); !ec && actual < header_size) {
    sink.error(ScanError{path, fmt::format("offset {}", actual),
                         fmt::format("file truncated: the PST header gives {} bytes, the file "
                                     "has {}; items stored past the end cannot be read",
                                     header_size, actual)});
  }

  PstItemPtr root(pst_parse_item(&pf, pf.d_head, nullptr));
  if (!root || root->message_store == nullptr) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("pst {}: no message store record (corrupt)", path));
  }
  auto *top = pst_getTopOfFolders(&pf, root.get());
  if (top == nullptr) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("pst {}: top of folders not found (corrupt)", path));
  }
  std::string top_name = "Top of Personal Folders";
  if (top->desc != nullptr) {
    PstItemPtr top_item(pst_parse_item(&pf, top, nullptr));
    if (top_item && top_item->file_as.str != nullptr) {
      top_name = Walker::folder_name(*top_item);
    }
  }
  Walker walker(pf, source, path, sink, attachments);
  ++walker.stats().folders;
  walker.walk(top->child, top_name, 0);
  return walker.stats();
}

void merge_pst_attachments(Item &item, std::vector<PstAttachment> &attachments) {
  auto label = [](const PstAttachment &a) {
    return fmt::format("attachment \"{}\" (PST attachment {})", a.name.empty() ? "(no name)" : ensure_utf8(a.name),
                       a.position);
  };
  std::vector<Attachment> documents;
  std::vector<const PstAttachment *> of_document;
  for (PstAttachment &a : attachments) {
    if (a.withheld) {
      // Never silent: the attachment was not read (docs/reliability.md).
      item.truncated.push_back(fmt::format("{}: {} bytes, more than limits.extract_max_attachment_mib or the "
                                           "item's limits.max_item_mib: {} not read",
                                           label(a), a.size, a.message ? "attached message" : "text"));
      continue;
    }
    if (a.message) {
      Extractor::merge_attached_message(a.bytes, a.name, item);
      continue;
    }
    documents.push_back(Attachment{a.name, a.mime_type, a.position, std::move(a.bytes), "PST attachment"});
    of_document.push_back(&a);
  }
  if (documents.empty()) {
    return;
  }
  // The same path as MIME attachments (Decoder::finish() in mime/attachments.cpp): cache, then the
  // extract worker.
  std::vector<AttachmentText> texts = extract_attachments(documents);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const PstAttachment &a = *of_document[i];
    AttachmentText &t = texts[i];
    item.attachment_hashes.push_back(t.sha256);
    for (const std::string &w : t.warnings) {
      item.warnings.push_back(fmt::format("{}: {}", label(a), w));
    }
    if (t.truncated) {
      item.truncated.push_back(fmt::format("{}: text indexed in part{}", label(a),
                                           t.warnings.empty() ? std::string() : " (" + t.warnings.front() + ")"));
    }
    if (!t.problem.empty()) {
      item.problems.push_back(std::move(t.problem));
    }
    Extractor::add_text_attachment_text(item, ensure_utf8(std::move(t.text)),
                                        a.name.empty() ? "attachment " + a.position : a.name);
  }
}

core::Result<std::unique_ptr<Connector>> make_pst_connector(const core::SourceConfig &source) {
  if (source.path.empty()) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': pst needs a path", source.name));
  }
  return std::unique_ptr<Connector>(std::make_unique<PstConnector>(source));
}

} // namespace maildsar::connectors
