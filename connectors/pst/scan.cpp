// SPDX-License-Identifier: GPL-3.0-or-later
// The PST/OST reader: walks an Outlook store through libpst (pst-utils' library) into Items.
//
// Traversal follows the libpst API as readpst uses it: pst_open, pst_load_index,
// pst_load_extended_attributes, parse the root record (d_head) and find the top of folders
// (pst_getTopOfFolders), then walk the descriptor tree; every descriptor is parsed with
// pst_parse_item: folders are descended into, everything else becomes one Item. Embedded
// messages (attach method 5) are parsed with pst_parse_item on the attachment's id2 list.
// The Extractor (extractor.hpp) turns each item into an Item.
//
// libpst and crashes: libpst trusts the file (a corrupt PST overflows the heap in
// pst_load_extended_attributes, dereferences NULL in pst_parse_item, or asks for gigabytes), so
// this code runs in the maildsar-worker process (pst_worker.cpp, isolate.hpp): scan_pst_file is
// the parent side, scan_pst_file_in_process (here) is what the worker calls.
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

#include "connectors/pst/extractor.hpp"
#include "connectors/pst/text.hpp"
#include "core/hash.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <string_view>
#include <utility>

extern "C" {
// Exported by libpst but declared only in its private define.h.
void pst_debug_setlevel(int level);
}

namespace maildsar::connectors {

namespace {

using pst::Extractor;
using pst::PstItemPtr;
using pst::ensure_utf8;

std::mutex g_libpst_mutex; // guards every libpst call (see the top of this file)

constexpr int k_max_folder_depth = 128;

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
// The walk

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

} // namespace maildsar::connectors
