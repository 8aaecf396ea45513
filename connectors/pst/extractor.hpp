// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// What the pieces of the PST reader share: libpst's buffers and items as owning pointers, and
// the Extractor, which turns one libpst item into an Item. Its members live in two files:
// extractor.cpp (properties, addresses, headers, bodies) and attachments.cpp (attachments,
// embedded messages, the set-aside attachments of PstAttachmentOptions). The walk over a file's
// folders is scan.cpp; the connector is connectors/pst.cpp.

#include "connectors/item.hpp"
#include "connectors/pst.hpp"

#include <libpst/libpst.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace maildsar::connectors::pst {

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

/** Turns one libpst item into an Item: extract() is the worker's, the static members serve the parent too. */
class Extractor {
public:
  Extractor(pst_file &pf, std::string path) : m_pf(pf), m_path(std::move(path)) {}

  /** Fills `out` (everything but the locator and sha256) from `item`. */
  void extract(pst_item &item, Item &out, int embed_depth);

private:
  std::string str(pst_item &owner, pst_string &s);
  static void add_text(Item &out, Role role, std::string text, std::string field = {});
  static void add_address(Item &out, Role role, std::string name, std::string addr);
  /** A display list ("A; B <b@x>; c@y") -> one address per entry. */
  static void add_display_list(Item &out, Role role, const std::string &list);
  void extract_email(pst_item &item, pst_item_email &email, Item &out);
  /** The transport headers (PR_TRANSPORT_MESSAGE_HEADERS) with every role they carry. */
  void extract_headers(std::string headers, Item &out);
  static void header_fallback(const std::string &headers, Item &out);

  enum class CardNames { no, yes };

  void extract_contact(pst_item &item, pst_item_contact &c, Item &out, CardNames card);
  void extract_bodies(pst_item &item, Item &out);
  static bool is_text_attachment(const std::string &name, const std::string &mime_type);
  static bool is_message_attachment(const std::string &name, const std::string &mime_type);
  void extract_attachments(pst_item &item, Item &out, int embed_depth);

public:
  /** A text attachment's text as attachment-body, named by the attachment's file name. */
  static void add_text_attachment(Item &out, std::string bytes, const std::string &name,
                                  const std::string &mime_type);

  /** Extracted text of a document attachment. */
  static void add_text_attachment_text(Item &out, std::string text, std::string field);

  /** An attached e-mail file: decoded by the MIME parser and flattened; else read as text. */
  static void merge_attached_message(std::string_view bytes, const std::string &name, Item &out);

  /** An attached message's evidence as attachment-body texts of the outer item. */
  static void flatten_into(Item &inner, Item &out, const std::string &name);

private:
  /** The attachment's bytes and their size; the bytes are left out when more than `max`. */
  struct Read {
    std::string bytes;
    std::uint64_t size = 0;
  };
  Read read_bounded(pst_item_attach &attach, std::uint64_t max);

  /** The attachment's bytes, or "" when it is larger than `max` (or empty, or not found). */
  std::string read_attachment(pst_item_attach &attach, std::uint64_t max);

  /** Size of the attachment's data as the index gives it (a lower bound for multi-block data). */
  std::optional<std::uint64_t> stored_size(pst_item_attach &attach);

  /**
   * Hands a document or an attached message to m_options->sink (the PST worker sends it to the
   * parent). Bounded: an attachment above max_attachment_bytes, or one that would take the item's
   * set-aside bytes above max_item_bytes, goes as `withheld` (name and size, no bytes), which the
   * parent reports as text not extracted (Item::truncated). Files nothing is extracted from
   * (images, executables) give their names only.
   */
  void set_aside(pst_item_attach &attach, Item &out, const std::string &position, const std::string &name,
                 const std::string &mime_type, bool message);

  void extract_embedded(pst_item_attach &attach, Item &out, int embed_depth, const std::string &position,
                        const std::string &name);

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

} // namespace maildsar::connectors::pst
