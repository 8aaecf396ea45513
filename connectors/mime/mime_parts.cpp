// SPDX-License-Identifier: GPL-3.0-or-later
// The MIME part walk of the decoder: multiparts, attached messages, and each leaf part as body
// text, attachment text, or an attachment set aside for extraction.
#include "connectors/mime/mime_internal.hpp"

#include "extract/extract.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::connectors::mime::detail {

void Decoder::walk(GMimeObject *object, Origin origin, int depth) {
  if (object == nullptr || m_capped) {
    return;
  }
  if (depth > k_max_depth) {
    m_warnings.add("MIME: nesting deeper than " + std::to_string(k_max_depth) +
                   " levels; deeper parts not decoded");
    return;
  }
  if (auto *multipart = gobject_cast<GMimeMultipart>(object, g_mime_multipart_get_type())) {
    const int count = g_mime_multipart_get_count(multipart);
    for (int i = 0; i < count; ++i) {
      walk(g_mime_multipart_get_part(multipart, i), origin, depth + 1);
    }
  } else if (auto *message_part =
                 gobject_cast<GMimeMessagePart>(object, g_mime_message_part_get_type())) {
    if (GMimeMessage *attached = g_mime_message_part_get_message(message_part)) {
      walk_attached(attached, depth + 1);
    }
  } else if (auto *part = gobject_cast<GMimePart>(object, g_mime_part_get_type())) {
    walk_part(part, origin, depth);
  }
}

/** An attached message: its headers and texts are attachment_body evidence. */
void Decoder::walk_attached(GMimeMessage *message, int depth) {
  if (depth > k_max_depth) {
    m_warnings.add("MIME: nesting deeper than " + std::to_string(k_max_depth) +
                   " levels; deeper parts not decoded");
    return;
  }
  std::string summary;
  GMimeHeaderList *headers = g_mime_object_get_header_list(as_object(message));
  const int count = headers != nullptr ? g_mime_header_list_get_count(headers) : 0;
  for (int i = 0; i < count; ++i) {
    GMimeHeader *header = g_mime_header_list_get_header_at(headers, i);
    const std::string_view name = header_name(header);
    const std::string_view raw = header_raw_value(header);
    std::string line;
    if (address_role(name)) {
      for (const auto &[display, addr] : addresses(name, raw)) {
        if (!line.empty()) {
          line += ", ";
        }
        line += display.empty() ? addr : (addr.empty() ? display : display + " <" + addr + ">");
      }
    } else if (is_ip_header(name) || iequals(name, "subject") ||
               (!is_identifier_header(name) && !is_dkim_signature(name) &&
                raw.find('@') != std::string_view::npos)) {
      // Every field that may name someone (Received, X-Original-To, List-*, ...), as for
      // the message itself; Message-ID and signatures are left out on purpose: they look
      // like addresses but name no person.
      line = decode_header_text(raw);
    }
    if (!line.empty()) {
      summary += valid_utf8(name);
      summary += ": ";
      summary += line;
      summary += '\n';
    }
  }
  add_text(Role::attachment_body, std::move(summary));
  if (GMimeObject *body = g_mime_message_get_mime_part(message)) {
    walk(body, Origin::attached, depth + 1);
  }
}

/** The transfer-decoded bytes of a leaf part. */
std::string Decoder::content_bytes(GMimePart *part) {
  GMimeDataWrapper *content = g_mime_part_get_content(part);
  if (content == nullptr) {
    return {};
  }
  const GObjectPtr<GMimeStream> sink = adopt(g_mime_stream_mem_new());
  if (g_mime_data_wrapper_write_to_stream(content, sink.get()) < 0) {
    m_warnings.add("MIME: a part's content could not be decoded");
  }
  auto *memory = gobject_cast<GMimeStreamMem>(sink.get(), g_mime_stream_mem_get_type());
  GByteArray *array = memory != nullptr ? g_mime_stream_mem_get_byte_array(memory) : nullptr;
  if (array == nullptr || array->len == 0) {
    return {};
  }
  return std::string(reinterpret_cast<const char *>(array->data), array->len);
}

/** The decoded file names of a part (Content-Disposition filename, Content-Type name). */
std::vector<std::string> Decoder::file_names(GMimePart *part) {
  std::vector<std::string> names;
  const std::array<const char *, 2> values{
      g_mime_object_get_content_disposition_parameter(as_object(part), "filename"),
      g_mime_object_get_content_type_parameter(as_object(part), "name")};
  for (const char *value : values) {
    if (value == nullptr) {
      continue;
    }
    std::string name = std::string(value).find("=?") != std::string::npos
                           ? decode_header_text(value)
                           : valid_utf8(trim(value));
    if (!trim(name).empty() && std::find(names.begin(), names.end(), name) == names.end()) {
      names.push_back(std::move(name));
    }
  }
  return names;
}

bool Decoder::is_text_like(std::string_view type, std::string_view subtype,
                           const std::vector<std::string> &names) {
  if (type == "text") {
    return true;
  }
  if (type == "message") {
    return subtype == "delivery-status" || subtype == "disposition-notification" ||
           subtype == "feedback-report" || subtype == "global-delivery-status" ||
           subtype == "global-disposition-notification" || subtype == "global-headers" ||
           subtype == "partial" || subtype == "external-body";
  }
  if (type == "application") {
    constexpr std::array<std::string_view, 14> k_text_apps{
        "json",    "xml",        "javascript", "x-javascript", "ecmascript", "csv",
        "x-csv",   "yaml",       "x-yaml",     "ics",          "rtf",        "x-vcard",
        "vcard",   "x-sh"};
    if (std::find(k_text_apps.begin(), k_text_apps.end(), subtype) != k_text_apps.end() ||
        iends_with(subtype, "+xml") || iends_with(subtype, "+json")) {
      return true;
    }
    if (subtype == "octet-stream") {
      constexpr std::array<std::string_view, 10> k_text_extensions{
          ".txt", ".csv", ".log", ".ics", ".vcf", ".json", ".xml", ".htm", ".html", ".md"};
      return std::any_of(names.begin(), names.end(), [&](const std::string &name) {
        return std::any_of(k_text_extensions.begin(), k_text_extensions.end(),
                           [&](std::string_view ext) { return iends_with(name, ext); });
      });
    }
  }
  return false;
}

bool Decoder::is_message_type(std::string_view type, std::string_view subtype,
                              const std::vector<std::string> &names) {
  if (type == "message" && (subtype == "rfc822" || subtype == "global")) {
    return true;
  }
  return type == "application" && subtype == "octet-stream" &&
         std::any_of(names.begin(), names.end(),
                     [](const std::string &name) { return iends_with(name, ".eml"); });
}

/** True when the part's own Content-Type field says just "text" (no subtype), which a
    mail reader shows as text/plain. */
bool Decoder::is_bare_text_type(GMimeObject *object) {
  const char *value = g_mime_object_get_header(object, "Content-Type");
  if (value == nullptr) {
    return false;
  }
  std::string_view type = trim(value);
  type = trim(type.substr(0, type.find(';')));
  return iequals(type, "text");
}

void Decoder::walk_part(GMimePart *part, Origin origin, int depth) {
  GMimeObject *object = as_object(part);
  GMimeContentType *content_type = g_mime_object_get_content_type(object);
  std::string type =
      lower(to_std_string(content_type != nullptr ? g_mime_content_type_get_media_type(content_type) : nullptr));
  std::string subtype = lower(
      to_std_string(content_type != nullptr ? g_mime_content_type_get_media_subtype(content_type) : nullptr));
  if (type == "application" && subtype == "octet-stream" && is_bare_text_type(object)) {
    type = "text"; // "Content-Type: text" without a subtype: GMime's fallback hides it
    subtype = "plain";
  }
  const std::vector<std::string> names = file_names(part);
  for (const std::string &name : names) {
    add_text(Role::attachment_name, name);
  }
  ++m_leaf_parts;
  const std::string disposition = lower(to_std_string(g_mime_object_get_disposition(object)));
  const bool body_type = type.empty() || (type == "text" && (subtype == "plain" || subtype == "html" ||
                                                             subtype == "enriched" ||
                                                             subtype == "richtext"));
  const bool attachment = origin == Origin::attached || disposition == "attachment" ||
                          (!names.empty() && disposition != "inline") || !body_type;

  if (is_message_type(type, subtype, names)) {
    // A message GMime left as a leaf (e.g. base64-encoded message/rfc822): parse it here.
    const std::string bytes = content_bytes(part);
    if (trim(bytes).empty()) {
      return;
    }
    if (GObjectPtr<GMimeMessage> attached = parse_message(bytes, m_options);
        attached && header_count(attached.get()) > 0) {
      walk_attached(attached.get(), depth + 1);
      return;
    }
    if (looks_binary(bytes)) {
      return;
    }
    add_text(Role::attachment_body, fallback_to_utf8(bytes));
    return;
  }
  if (attachment && m_extract && (type != "text" || subtype == "rtf") && type != "message") {
    // PDF, Office, OpenDocument, RTF, archives: their text comes from the worker (finish()).
    const std::string name = names.empty() ? std::string() : names.front();
    std::string bytes = content_bytes(part);
    const extract::Format format = extract::detect(bytes, type + "/" + subtype, name);
    if (format != extract::Format::none && format != extract::Format::text) {
      m_attachments.push_back(Attachment{name, type + "/" + subtype, std::to_string(m_leaf_parts), std::move(bytes)});
      return;
    }
  }
  if (!is_text_like(type, subtype, names)) {
    return; // binary: its names only
  }
  std::string charset = to_std_string(g_mime_object_get_content_type_parameter(object, "charset"));
  const bool wide_charset = istarts_with(charset, "utf-16") || istarts_with(charset, "utf-32") ||
                            istarts_with(charset, "ucs-") || iequals(charset, "unicode");
  const std::string bytes = content_bytes(part);
  if (bytes.empty() || (!wide_charset && looks_binary(bytes))) {
    return;
  }
  const bool html = subtype == "html" || subtype == "xhtml+xml" ||
                    (type == "application" && subtype == "octet-stream" &&
                     std::any_of(names.begin(), names.end(), [](const std::string &name) {
                       return iends_with(name, ".htm") || iends_with(name, ".html");
                     }));
  if (charset.empty() && html) {
    charset = html_meta_charset(bytes);
  }
  std::string problem;
  std::string text = to_utf8(bytes, charset, &problem);
  if (!problem.empty()) {
    m_warnings.add("MIME: " + problem);
  }
  if (html) {
    text = html_to_text(text);
  } else {
    text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
  }
  if (m_extract && !html) {
    set_aside_uuencoded(text);
  }
  add_text(attachment ? Role::attachment_body : Role::body, std::move(text),
           attachment && !names.empty() ? names.front() : std::string());
}

} // namespace maildsar::connectors::mime::detail
