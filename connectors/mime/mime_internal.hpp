// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// What the pieces of the MIME decoder share; private to connectors/mime/ (it includes GMime).
//   mime_parser.cpp    decode_message, received_fields, the GMime parser, warnings, text budget
//   text_decode.cpp    charsets to UTF-8, header values (unfolding, RFC 2047)
//   html_text.cpp      HTML to text
//   header_fields.cpp  header roles, addresses and IP literals of header fields
//   mime_parts.cpp     the MIME part walk
//   attachments.cpp    attachments set aside for the extraction worker, uuencoded files
//   bounded_input.cpp  the input cut to limits.* before GMime sees it

#include "connectors/attachment_text.hpp"
#include "connectors/item.hpp"
#include "connectors/mime/gobject.hpp"

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

namespace maildsar::connectors::mime::detail {

inline constexpr int k_max_depth = 32;                          // MIME / attached-message nesting
inline constexpr std::size_t k_max_text_bytes = 16U << 20U;     // extracted text per item
inline constexpr std::size_t k_max_warnings = 32;               // distinct warnings per item
inline constexpr std::size_t k_binary_sniff_bytes = 64U << 10U; // how much we look at for NULs

// ---------------------------------------------------------------------------------------------
// Small string helpers

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(),
                    [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

inline bool istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

inline bool iends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && iequals(text.substr(text.size() - suffix.size()), suffix);
}

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'; }

inline std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_space(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

inline bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

inline bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

inline int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/** The value of a base64 digit (also the URL-safe '-' and '_'), or -1. */
int base64_value(char c);

/** Appends `code_point` as UTF-8; NUL, surrogates and values past U+10FFFF become U+FFFD. */
void append_code_point(std::string &out, std::uint32_t code_point);

/** True when the bytes look like binary data rather than text (NULs near the start). */
[[nodiscard]] bool looks_binary(std::string_view bytes);

// ---------------------------------------------------------------------------------------------
// UTF-8, charsets and header values (text_decode.cpp)

/** `text` as valid UTF-8: NULs become spaces, invalid sequences U+FFFD. */
[[nodiscard]] std::string valid_utf8(std::string_view text);

/** Bytes of unknown charset: UTF-8 when they are valid UTF-8, else windows-1252. */
[[nodiscard]] std::string fallback_to_utf8(std::string_view bytes);

/**
 * Converts `bytes` in `charset` (a MIME charset name; empty = unknown) to valid UTF-8. Never
 * fails: unknown charsets and invalid sequences fall back as in fallback_to_utf8. `problem` is
 * set to a short description when the conversion was lossy or guessed.
 */
[[nodiscard]] std::string to_utf8(std::string_view bytes, std::string_view charset,
                                  std::string *problem = nullptr);

/** Unfolds a raw header value: line breaks go, the whitespace after them stays. */
[[nodiscard]] std::string unfold(std::string_view raw);

/** Decodes an unstructured header value (Subject, ...) to UTF-8, RFC 2047 included. */
[[nodiscard]] std::string decode_header_text(std::string_view raw);

/**
 * Rewrites each run of adjacent encoded words in an address header as one UTF-8 base64 word
 * that GMime decodes correctly (works around GMime #133 without re-implementing RFC 5322
 * address parsing). Everything else is left as written.
 */
[[nodiscard]] std::string merge_encoded_words(std::string_view raw);

// ---------------------------------------------------------------------------------------------
// HTML (html_text.cpp)

/** Collapses whitespace: runs with a newline become one newline, others one space. */
[[nodiscard]] std::string collapse_whitespace(std::string_view text);

/**
 * HTML to plain text: tags dropped (block tags become line breaks), script/style/head content
 * dropped, comments dropped, character references decoded, and mailto:/tel: link targets kept
 * as text (they are identities even when the link text is not).
 */
[[nodiscard]] std::string html_to_text(std::string_view html);

/** The charset named by <meta charset=...> or <meta http-equiv content="...; charset=...">. */
[[nodiscard]] std::string html_meta_charset(std::string_view html);

// ---------------------------------------------------------------------------------------------
// Header fields (header_fields.cpp)

/** Every IPv4/IPv6 literal in `text` ("[203.0.113.45]", "[IPv6:2001:db8::1]", bare ones). */
[[nodiscard]] std::vector<std::string> scan_ips(std::string_view text);

/** The role of an address field ("from", "x-original-to", ...; any case), if it is one. */
[[nodiscard]] std::optional<Role> address_role(std::string_view header);

/**
 * Fields whose values are identifiers or signatures, not addresses (a Message-ID looks like
 * one): never scanned. DKIM-Signature is handled apart (only its i= tag names a mailbox).
 */
[[nodiscard]] bool is_identifier_header(std::string_view header);

/** DKIM-Signature and its relatives (only the i= tag names a mailbox). */
[[nodiscard]] bool is_dkim_signature(std::string_view header);

/** Received and the other fields that carry client IP literals. */
[[nodiscard]] bool is_ip_header(std::string_view header);

// ---------------------------------------------------------------------------------------------
// The decoding pass (mime_parser.cpp, Decoder: see each member's file)

/** Collects the problems of one decode_message call (GMime's and ours), de-duplicated. */
class Warnings {
public:
  void add(std::string message);
  void add_gmime(gint64 offset, GMimeParserWarning code);
  void flush(Item &item);

private:
  struct GmimeCount {
    std::size_t count = 0;
    gint64 first_offset = -1;
  };
  std::vector<std::string> m_messages;
  std::array<GmimeCount, 32> m_gmime{};
  std::size_t m_dropped = 0;
};

/** Options for one parse: loose RFC compliance, fallback charsets, warnings to `warnings`. */
[[nodiscard]] ParserOptionsPtr make_parser_options(Warnings &warnings);

/** Parses one message from memory. Null when GMime finds no message at all. */
[[nodiscard]] GObjectPtr<GMimeMessage> parse_message(std::string_view bytes,
                                                     GMimeParserOptions *options);

/** Where a part sits: in the message itself or inside an attached message. */
enum class Origin { message, attached };

inline GMimeObject *as_object(GMimeMessage *message) { return &message->parent_object; }
inline GMimeObject *as_object(GMimePart *part) { return &part->parent_object; }

/**
 * Decodes one parsed message into an Item. Members by file: the top-level header
 * (header_fields.cpp), the part walk (mime_parts.cpp), attachments for the extraction worker
 * (attachments.cpp), the text budget and the rest (mime_parser.cpp).
 */
class Decoder {
public:
  Decoder(Item &item, Warnings &warnings, GMimeParserOptions *options);
  void decode_top(GMimeMessage *message);
  static int header_count(GMimeMessage *message);
  void decode_headerless(std::string_view bytes);
  void finish();

private:
  // header_fields.cpp
  static std::string_view header_name(GMimeHeader *header);
  static std::string_view header_raw_value(GMimeHeader *header);
  void scan_header(std::string_view name, std::string_view raw);
  void add_header_text(Role role, std::string text, const std::string &field);
  static std::vector<std::string> display_names(const std::string &value);
  std::vector<std::pair<std::string, std::string>> addresses(std::string_view header,
                                                             std::string_view raw);
  static bool is_empty_group(std::string_view value);
  void recover_addresses(std::string_view header, const std::string &text,
                         std::vector<std::pair<std::string, std::string>> &found);

  // mime_parser.cpp
  void add_text(Role role, std::string text, std::string field = {});

  // mime_parts.cpp
  void walk(GMimeObject *object, Origin origin, int depth);
  void walk_attached(GMimeMessage *message, int depth);
  std::string content_bytes(GMimePart *part);
  static std::vector<std::string> file_names(GMimePart *part);
  static bool is_text_like(std::string_view type, std::string_view subtype,
                           const std::vector<std::string> &names);
  static bool is_message_type(std::string_view type, std::string_view subtype,
                              const std::vector<std::string> &names);
  static bool is_bare_text_type(GMimeObject *object);
  void walk_part(GMimePart *part, Origin origin, int depth);

  // attachments.cpp
  void set_aside_uuencoded(std::string_view text);
  static std::string fmt_attachment(const Attachment &a);

  Item &m_item;
  Warnings &m_warnings;
  GMimeParserOptions *m_options;
  std::uint64_t m_max_addresses;
  std::size_t m_text_bytes = 0;
  std::size_t m_header_text_bytes = 0;
  bool m_capped = false;
  const bool m_extract = attachment_text_enabled();
  std::size_t m_leaf_parts = 0;
  std::vector<Attachment> m_attachments; // set aside for extraction
};

} // namespace maildsar::connectors::mime::detail
