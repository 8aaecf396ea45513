// SPDX-License-Identifier: GPL-3.0-or-later
// Attachments of PST items. In the worker: the Extractor's second half, which reads text
// attachments, descends into embedded messages (attach method 5, parsed with pst_parse_item on
// the attachment's id2 list) and sets documents and attached messages aside for the parent
// (PstAttachmentOptions). In the parent: merge_pst_attachments, which hands the set-aside
// attachments to the same extraction as MIME attachments.
#include "connectors/pst/extractor.hpp"

#include "connectors/attachment_text.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "connectors/pst_worker.hpp"
#include "connectors/pst/text.hpp"
#include "extract/extract.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <set>
#include <utility>
#include <vector>

namespace maildsar::connectors {

namespace pst {

namespace {

constexpr int k_max_embed_depth = 8;
constexpr std::uint64_t k_max_text_attachment = 16ULL << 20;
/** A set-aside attachment travels in one frame of at most k_pst_max_frame (name, type included). */
constexpr std::uint64_t k_max_set_aside = k_pst_max_frame - (8U << 20);

} // namespace

bool Extractor::is_text_attachment(const std::string &name, const std::string &mime_type) {
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

bool Extractor::is_message_attachment(const std::string &name, const std::string &mime_type) {
  return lower_ascii(mime_type) == "message/rfc822" || lower_ascii(name).ends_with(".eml");
}

void Extractor::extract_attachments(pst_item &item, Item &out, int embed_depth) {
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

void Extractor::add_text_attachment(Item &out, std::string bytes, const std::string &name,
                                    const std::string &mime_type) {
  auto text = ensure_utf8(std::move(bytes));
  auto ext_lower = lower_ascii(name);
  if (lower_ascii(mime_type) == "text/html" || ext_lower.ends_with(".htm") ||
      ext_lower.ends_with(".html")) {
    text = html_to_text(text);
  }
  add_text(out, Role::attachment_body, std::move(text), name);
}

void Extractor::add_text_attachment_text(Item &out, std::string text, std::string field) {
  add_text(out, Role::attachment_body, std::move(text), std::move(field));
}

void Extractor::merge_attached_message(std::string_view bytes, const std::string &name, Item &out) {
  Item inner;
  if (mime::decode_message(bytes, inner)) {
    flatten_into(inner, out, name);
    return;
  }
  add_text_attachment(out, std::string(bytes), name, "message/rfc822");
}

void Extractor::flatten_into(Item &inner, Item &out, const std::string &name) {
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

Extractor::Read Extractor::read_bounded(pst_item_attach &attach, std::uint64_t max) {
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

std::string Extractor::read_attachment(pst_item_attach &attach, std::uint64_t max) {
  return read_bounded(attach, max).bytes;
}

std::optional<std::uint64_t> Extractor::stored_size(pst_item_attach &attach) {
  if (attach.data.data != nullptr) {
    return static_cast<std::uint64_t>(attach.data.size);
  }
  auto *id = pst_getID(&m_pf, attach.i_id);
  if (id == nullptr) {
    return std::nullopt;
  }
  return std::max<std::uint64_t>(id->inflated_size, id->size);
}

void Extractor::set_aside(pst_item_attach &attach, Item &out, const std::string &position,
                          const std::string &name, const std::string &mime_type, bool message) {
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

void Extractor::extract_embedded(pst_item_attach &attach, Item &out, int embed_depth,
                                 const std::string &position, const std::string &name) {
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

} // namespace pst

namespace {

using pst::Extractor;
using pst::ensure_utf8;

} // namespace

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

} // namespace maildsar::connectors
