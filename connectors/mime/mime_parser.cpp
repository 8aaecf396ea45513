// SPDX-License-Identifier: GPL-3.0-or-later
// MIME decoding with GMime 3.2: one RFC 5322 message -> the raw evidence of an Item.
// The entry points and the parser plumbing; the other pieces are listed in mime_internal.hpp.
#include "connectors/mime/mime_parser.hpp"

#include "connectors/mime/bounded_input.hpp"
#include "connectors/mime/gobject.hpp"
#include "connectors/mime/mime_internal.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace maildsar::connectors::mime {

MimeLibrary::MimeLibrary() { g_mime_init(); }
MimeLibrary::~MimeLibrary() { g_mime_shutdown(); }

namespace detail {

// ---------------------------------------------------------------------------------------------
// The decoding pass

namespace {

std::string_view gmime_warning_text(GMimeParserWarning code) {
  switch (code) {
  case GMIME_WARN_DUPLICATED_HEADER: return "duplicated header";
  case GMIME_WARN_DUPLICATED_PARAMETER: return "duplicated header parameter";
  case GMIME_WARN_UNENCODED_8BIT_HEADER: return "unencoded 8-bit header";
  case GMIME_WARN_INVALID_CONTENT_TYPE: return "invalid Content-Type";
  case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE: return "invalid RFC 2047 header value";
  case GMIME_WARN_MALFORMED_MULTIPART: return "malformed multipart";
  case GMIME_WARN_TRUNCATED_MESSAGE: return "truncated message";
  case GMIME_WARN_MALFORMED_MESSAGE: return "malformed message";
  case GMIME_CRIT_INVALID_HEADER_NAME: return "invalid header name";
  case GMIME_CRIT_CONFLICTING_HEADER: return "conflicting header";
  case GMIME_CRIT_CONFLICTING_PARAMETER: return "conflicting header parameter";
  case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY: return "multipart without boundary";
  case GMIME_WARN_INVALID_PARAMETER: return "invalid header parameter";
  case GMIME_WARN_INVALID_ADDRESS_LIST: return "invalid address list";
  case GMIME_CRIT_NESTING_OVERFLOW: return "MIME nesting too deep";
  case GMIME_WARN_PART_WITHOUT_CONTENT: return "MIME part without content";
  case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT: return "MIME part without headers or content";
  }
  return "parser problem";
}

void on_gmime_warning(gint64 offset, GMimeParserWarning code, const gchar * /*item*/,
                      gpointer user_data) {
  // The offending value may be personal data: only the kind and the offset are kept.
  static_cast<Warnings *>(user_data)->add_gmime(offset, code);
}

} // namespace

void Warnings::add(std::string message) {
  if (std::find(m_messages.begin(), m_messages.end(), message) != m_messages.end()) {
    return;
  }
  if (m_messages.size() < k_max_warnings) {
    m_messages.push_back(std::move(message));
  } else {
    ++m_dropped;
  }
}

void Warnings::add_gmime(gint64 offset, GMimeParserWarning code) {
  const auto index = static_cast<std::size_t>(code);
  if (index >= m_gmime.size()) {
    return;
  }
  GmimeCount &entry = m_gmime[index];
  if (entry.count++ == 0) {
    entry.first_offset = offset;
  }
}

/** Moves everything into `item.warnings`. */
void Warnings::flush(Item &item) {
  for (std::size_t i = 0; i < m_gmime.size(); ++i) {
    const GmimeCount &entry = m_gmime[i];
    if (entry.count == 0) {
      continue;
    }
    std::string message = "MIME: " + std::string(gmime_warning_text(static_cast<GMimeParserWarning>(i)));
    if (entry.first_offset >= 0) {
      message += " at byte " + std::to_string(entry.first_offset);
    }
    if (entry.count > 1) {
      message += " (" + std::to_string(entry.count) + " times)";
    }
    add(std::move(message));
  }
  for (std::string &message : m_messages) {
    item.warnings.push_back(std::move(message));
  }
  if (m_dropped > 0) {
    item.warnings.push_back("MIME: " + std::to_string(m_dropped) + " further warnings not shown");
  }
  m_messages.clear();
  m_gmime = {};
  m_dropped = 0;
}

ParserOptionsPtr make_parser_options(Warnings &warnings) {
  ParserOptionsPtr options = lenient_parser_options();
  g_mime_parser_options_set_warning_callback(options.get(), on_gmime_warning, &warnings);
  return options;
}

GObjectPtr<GMimeMessage> parse_message(std::string_view bytes, GMimeParserOptions *options) {
  const GObjectPtr<GMimeStream> stream =
      adopt(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
  const GObjectPtr<GMimeParser> parser = adopt(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  return adopt(g_mime_parser_construct_message(parser.get(), options));
}

Decoder::Decoder(Item &item, Warnings &warnings, GMimeParserOptions *options)
    : m_item(item), m_warnings(warnings), m_options(options),
      m_max_addresses(item_limits().max_addresses_per_role) {}

/** Number of headers in a message and its top MIME part. */
int Decoder::header_count(GMimeMessage *message) {
  int count = 0;
  if (GMimeHeaderList *headers = g_mime_object_get_header_list(as_object(message))) {
    count += g_mime_header_list_get_count(headers);
  }
  if (GMimeObject *body = g_mime_message_get_mime_part(message)) {
    if (GMimeHeaderList *headers = g_mime_object_get_header_list(body)) {
      count += g_mime_header_list_get_count(headers);
    }
  }
  return count;
}

/** A headerless text: the whole input is body text. */
void Decoder::decode_headerless(std::string_view bytes) { add_text(Role::body, fallback_to_utf8(bytes)); }

/** Adds text, keeping the item under k_max_text_bytes; `field` names an attachment. */
void Decoder::add_text(Role role, std::string text, std::string field) {
  if (m_capped || trim(text).empty()) {
    return;
  }
  if (m_text_bytes + text.size() > k_max_text_bytes) {
    std::size_t keep = k_max_text_bytes - m_text_bytes;
    while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0U) == 0x80U) {
      --keep; // do not cut a UTF-8 sequence
    }
    text.resize(keep);
    m_capped = true;
    m_warnings.add("MIME: extracted text exceeds 16 MiB; the rest of the message is not indexed");
  }
  m_text_bytes += text.size();
  if (!text.empty()) {
    m_item.texts.push_back(RawText{role, std::move(text), std::move(field)});
  }
}

} // namespace detail

using detail::as_object;
using detail::Decoder;
using detail::iequals;
using detail::looks_binary;
using detail::make_parser_options;
using detail::parse_message;
using detail::scan_ips;
using detail::trim;
using detail::unfold;
using detail::valid_utf8;
using detail::Warnings;

core::Status decode_message(std::string_view bytes, Item &item) {
  Warnings warnings;
  std::string_view input = bytes;
  if (input.substr(0, 3) == "\xEF\xBB\xBF") {
    input.remove_prefix(3); // UTF-8 byte order mark
  }
  bool skipped_blank = false;
  while (!input.empty() && (input.front() == '\n' || input.substr(0, 2) == "\r\n")) {
    input.remove_prefix(input.front() == '\n' ? 1 : 2);
    skipped_blank = true;
  }
  if (trim(input).empty()) {
    return core::fail(core::ErrorCode::data, "empty input: not a message");
  }
  if (skipped_blank) {
    warnings.add("MIME: blank lines before the header skipped");
  }
  // Bounded before GMime sees it (limits.*; connectors/mime/bounded_input.hpp).
  const ItemLimits limits = item_limits();
  std::string bounded;
  input = bound_input(input, limits, bounded, item.truncated);
  const ParserOptionsPtr options = make_parser_options(warnings); // outlives every GMime object
  Decoder decoder(item, warnings, options.get());
  const GObjectPtr<GMimeMessage> message = parse_message(input, options.get());
  const bool has_headers = message && Decoder::header_count(message.get()) > 0;
  if (!has_headers && looks_binary(input)) {
    return core::fail(core::ErrorCode::data,
                      "not a message: binary data without any RFC 5322 header",
                      "is this file in the right source (PST, TNEF, compressed)?");
  }
  if (!has_headers) {
    warnings.add("MIME: no RFC 5322 header found; the whole input is treated as body text");
  }
  if (message) {
    decoder.decode_top(message.get());
    decoder.finish();
  } else {
    decoder.decode_headerless(input);
  }
  warnings.flush(item);
  return {};
}

bool is_header_field_line(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size()) {
    auto c = static_cast<unsigned char>(line[i]);
    if (c == ':' || c < 33 || c > 126) {
      break;
    }
    ++i;
  }
  if (i == 0) {
    return false;
  }
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
    ++i;
  }
  return i < line.size() && line[i] == ':';
}

std::optional<Role> address_field_role(std::string_view header) { return detail::address_role(header); }

ParserOptionsPtr lenient_parser_options() {
  ParserOptionsPtr options{g_mime_parser_options_new()};
  g_mime_parser_options_set_address_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_parameter_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_rfc2047_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_allow_addresses_without_domain(options.get(), TRUE);
  std::array<const char *, 3> fallback{"UTF-8", "windows-1252", nullptr};
  g_mime_parser_options_set_fallback_charsets(options.get(), fallback.data());
  return options;
}

core::Result<std::vector<ReceivedField>> received_fields(std::string_view bytes) {
  std::string_view input = bytes;
  if (input.substr(0, 3) == "\xEF\xBB\xBF") {
    input.remove_prefix(3);
  }
  if (input.starts_with("From ")) { // mbox separator line
    const std::size_t eol = input.find('\n');
    input.remove_prefix(eol == std::string_view::npos ? input.size() : eol + 1);
  }
  Warnings warnings;
  const ParserOptionsPtr options = make_parser_options(warnings);
  const GObjectPtr<GMimeMessage> message = parse_message(input, options.get());
  GMimeHeaderList *headers =
      message ? g_mime_object_get_header_list(as_object(message.get())) : nullptr;
  const int count = headers != nullptr ? g_mime_header_list_get_count(headers) : 0;
  if (count == 0) {
    return core::fail(core::ErrorCode::data, "not a message: no RFC 5322 header");
  }
  std::vector<ReceivedField> fields;
  for (int i = 0; i < count; ++i) {
    GMimeHeader *header = g_mime_header_list_get_header_at(headers, i);
    const char *name = g_mime_header_get_name(header);
    if (name == nullptr || !iequals(name, "received")) {
      continue;
    }
    const char *raw = g_mime_header_get_raw_value(header);
    ReceivedField field;
    field.value = valid_utf8(trim(unfold(raw != nullptr ? std::string_view(raw) : std::string_view())));
    const std::size_t semicolon = field.value.rfind(';');
    std::string_view before = field.value;
    if (semicolon != std::string::npos) {
      const std::string when(trim(std::string_view(field.value).substr(semicolon + 1)));
      if (GDateTime *date = g_mime_utils_header_decode_date(when.c_str()); date != nullptr) {
        field.date = static_cast<std::int64_t>(g_date_time_to_unix(date));
        g_date_time_unref(date);
      }
      before = before.substr(0, semicolon);
    }
    field.ips = scan_ips(before);
    fields.push_back(std::move(field));
  }
  return fields;
}

} // namespace maildsar::connectors::mime
