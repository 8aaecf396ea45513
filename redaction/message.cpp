// SPDX-License-Identifier: GPL-3.0-or-later
#include "redaction/message.hpp"

#include "connectors/attachment_text.hpp"
#include "connectors/item.hpp"
#include "connectors/limits.hpp"
#include "connectors/mime/gobject.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "extract/extract.hpp"
#include "redaction/html.hpp"

#include <fmt/format.h>
#include <gmime/gmime.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace maildsar::redaction {

using connectors::mime::adopt;
using connectors::mime::for_each_mailbox;
using connectors::mime::GCharPtr;
using connectors::mime::gobject_cast;
using connectors::mime::GObjectPtr;

bool is_placeholder_address(std::string_view email) {
  return email.size() > k_placeholder_domain.size() && email.ends_with(k_placeholder_domain) &&
         email[email.size() - k_placeholder_domain.size() - 1] == '@';
}

std::string placeholder_address(std::string_view label) {
  std::string local;
  for (const char c : label) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0) {
      local.push_back(static_cast<char>(std::tolower(u)));
    } else if (!local.empty() && local.back() != '-') {
      local.push_back('-');
    }
  }
  while (!local.empty() && local.back() == '-') {
    local.pop_back();
  }
  if (local.empty()) {
    local = "redacted";
  }
  return local + "@" + std::string(k_placeholder_domain);
}

// ---------------------------------------------------------------------------------------------
// Masks

ListedMasks::ListedMasks(std::set<std::pair<std::string, std::string>> identities, std::string label)
    : m_identities(std::move(identities)), m_label(std::move(label)) {}

std::optional<std::string> ListedMasks::mailbox(const std::string &email, const std::string &name) {
  if ((!email.empty() && m_identities.contains({"email", email})) ||
      (!name.empty() && m_identities.contains({"name", name}))) {
    return m_label;
  }
  return std::nullopt;
}

std::optional<std::string> ListedMasks::identifier(std::string_view kind, const std::string &normalised) {
  if (m_identities.contains({std::string(kind), normalised})) {
    return m_label;
  }
  return std::nullopt;
}

Search ListedMasks::kinds() const {
  Search s;
  for (const auto &[kind, value] : m_identities) {
    s.email = s.email || kind == "email";
    s.ip = s.ip || kind == "ip";
    s.phone = s.phone || kind == "phone";
    s.name = s.name || kind == "name";
  }
  return s;
}

PersonLabels::PersonLabels(std::set<std::pair<std::string, std::string>> kept) : m_kept(std::move(kept)) {}

std::string PersonLabels::label_of_email(const std::string &email) {
  if (auto it = m_by_email.find(email); it != m_by_email.end()) {
    return it->second;
  }
  std::string label = fmt::format("[person {}]", ++m_people);
  m_by_email.emplace(email, label);
  m_legend.emplace(label, email);
  return label;
}

std::optional<std::string> PersonLabels::mailbox(const std::string &email, const std::string &name) {
  if ((!email.empty() && m_kept.contains({"email", email})) || (email.empty() && m_kept.contains({"name", name}))) {
    return std::nullopt;
  }
  std::string label;
  if (!email.empty()) {
    label = label_of_email(email);
  } else if (auto it = m_by_name.find(name); it != m_by_name.end()) {
    label = it->second;
  } else if (!name.empty()) {
    label = label_of_email("name:" + name);
  } else {
    return std::nullopt;
  }
  if (!name.empty() && !m_kept.contains({"name", name})) {
    m_by_name.emplace(name, label); // the first address seen with a name keeps it
  }
  return label;
}

void PersonLabels::mask_name(const std::string &name) {
  if (name.empty() || m_by_name.contains(name)) {
    return;
  }
  m_kept.erase({"name", name});
  m_by_name.emplace(name, label_of_email("name:" + name));
}

std::optional<std::string> PersonLabels::identifier(std::string_view kind, const std::string &normalised) {
  if (m_kept.contains({std::string(kind), normalised})) {
    return std::nullopt;
  }
  if (kind == "email") {
    return label_of_email(normalised);
  }
  if (kind == "name") {
    auto it = m_by_name.find(normalised);
    return it == m_by_name.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  if (kind == "phone") {
    auto it = m_by_phone.find(normalised);
    if (it == m_by_phone.end()) {
      std::string label = fmt::format("[phone {}]", ++m_phones);
      it = m_by_phone.emplace(normalised, label).first;
      m_legend.emplace(label, normalised);
    }
    return it->second;
  }
  return std::nullopt; // IPs of the mail's path are not people: kept
}

Search PersonLabels::kinds() const {
  Search s;
  s.email = true;
  s.phone = true;
  s.name = true;
  return s;
}

// ---------------------------------------------------------------------------------------------
// The engine

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}


/** Signature fields that no longer verify once anything is changed. */
bool is_signature_field(std::string_view name) {
  static constexpr std::array<std::string_view, 5> k_fields{"DKIM-Signature", "X-Google-DKIM-Signature", "ARC-Seal",
                                                            "ARC-Message-Signature", "DomainKey-Signature"};
  return std::ranges::any_of(k_fields, [&](std::string_view f) { return iequals(f, name); });
}

/** The address fields GMime keeps as address lists on a message (edited through them). */
constexpr std::array<GMimeAddressType, 6> k_address_types{GMIME_ADDRESS_TYPE_SENDER, GMIME_ADDRESS_TYPE_FROM,
                                                          GMIME_ADDRESS_TYPE_REPLY_TO, GMIME_ADDRESS_TYPE_TO,
                                                          GMIME_ADDRESS_TYPE_CC, GMIME_ADDRESS_TYPE_BCC};
bool is_address_list_field(std::string_view name) {
  static constexpr std::array<std::string_view, 6> k_fields{"Sender", "From", "Reply-To", "To", "Cc", "Bcc"};
  return std::ranges::any_of(k_fields, [&](std::string_view f) { return iequals(f, name); });
}

/** Fields that identify messages, not people (their values look like addresses). */
bool is_message_id_field(std::string_view name) {
  static constexpr std::array<std::string_view, 6> k_fields{"Message-ID", "In-Reply-To", "References",
                                                            "Content-ID", "Resent-Message-ID", "Original-Message-ID"};
  return std::ranges::any_of(k_fields, [&](std::string_view f) { return iequals(f, name); });
}

/** Structured MIME fields: their parameters (file names) are edited through the part. */
bool is_mime_structure_field(std::string_view name) {
  return iequals(name, "Content-Type") || iequals(name, "Content-Disposition") ||
         iequals(name, "Content-Transfer-Encoding") || iequals(name, "MIME-Version");
}

GMimeObject *as_object(gpointer p) { return gobject_cast<GMimeObject>(p, g_mime_object_get_type()); }

GObjectPtr<GMimeMessage> parse(std::string_view bytes) {
  const GObjectPtr<GMimeStream> stream = adopt(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
  const GObjectPtr<GMimeParser> parser = adopt(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  const connectors::mime::ParserOptionsPtr options = connectors::mime::lenient_parser_options();
  return adopt(g_mime_parser_construct_message(parser.get(), options.get()));
}

std::optional<std::string> to_string(GMimeObject *object) {
  GMimeFormatOptions *format = g_mime_format_options_new();
  g_mime_format_options_set_newline_format(format, GMIME_NEWLINE_FORMAT_UNIX);
  const GCharPtr text(g_mime_object_to_string(object, format));
  g_mime_format_options_free(format);
  if (text == nullptr) {
    return std::nullopt;
  }
  return std::string(text.get());
}

/** The decoded bytes of a leaf part (transfer encoding undone). */
std::string content_bytes(GMimePart *part) {
  GMimeDataWrapper *content = g_mime_part_get_content(part);
  if (content == nullptr) {
    return {};
  }
  const GObjectPtr<GMimeStream> sink = adopt(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(content, sink.get());
  GByteArray *array = g_mime_stream_mem_get_byte_array(gobject_cast<GMimeStreamMem>(sink.get(), g_mime_stream_mem_get_type()));
  return array == nullptr || array->len == 0 ? std::string()
                                             : std::string(reinterpret_cast<const char *>(array->data), array->len);
}

/** New content for a leaf part, in its transfer encoding when that was base64 or QP. */
/**
 * The part's transfer encoding after its content changed: the one it had when the new content
 * still fits it (base64 and quoted-printable always; none, 7bit, 8bit and binary while the
 * placeholders add no byte they exclude), so that what did not change stays as it was written;
 * else the best 7-bit-safe one.
 */
void keep_encoding(GMimePart *part, GMimeContentEncoding original, std::string_view bytes) {
  if (original == GMIME_CONTENT_ENCODING_BASE64 || original == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
    g_mime_part_set_content_encoding(part, original);
    return;
  }
  const bool has_nul = bytes.find('\0') != std::string_view::npos;
  const bool ascii = std::ranges::all_of(bytes, [](char c) { return static_cast<unsigned char>(c) < 0x80U; });
  if ((original == GMIME_CONTENT_ENCODING_BINARY) ||
      (original == GMIME_CONTENT_ENCODING_8BIT && !has_nul) ||
      ((original == GMIME_CONTENT_ENCODING_7BIT || original == GMIME_CONTENT_ENCODING_DEFAULT) && ascii && !has_nul)) {
    g_mime_part_set_content_encoding(part, original);
    return;
  }
  g_mime_part_set_content_encoding(part, g_mime_part_get_best_content_encoding(part, GMIME_ENCODING_CONSTRAINT_7BIT));
}

/** `utf8` in `charset` (iconv through GLib); nullopt when a character has no place in it. */
std::optional<std::string> from_utf8(const std::string &utf8, const std::string &charset) {
  gsize written = 0;
  GError *error = nullptr;
  const GCharPtr converted(g_convert(utf8.data(), static_cast<gssize>(utf8.size()), charset.c_str(), "UTF-8", nullptr,
                                     &written, &error));
  if (error != nullptr) {
    g_error_free(error);
    return std::nullopt;
  }
  if (converted == nullptr) {
    return std::nullopt;
  }
  return std::string(converted.get(), written);
}

void set_content_bytes(GMimePart *part, const std::string &bytes) {
  const GMimeContentEncoding original = g_mime_part_get_content_encoding(part);
  const GObjectPtr<GMimeStream> stream = adopt(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
  const GObjectPtr<GMimeDataWrapper> wrapper =
      adopt(g_mime_data_wrapper_new_with_stream(stream.get(), GMIME_CONTENT_ENCODING_DEFAULT));
  g_mime_part_set_content(part, wrapper.get());
  keep_encoding(part, original, bytes);
}

/** Bytes that are not text: a NUL, or more than a tenth control characters. */
bool looks_binary(std::string_view bytes) {
  std::size_t control = 0;
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (u == 0) {
      return true;
    }
    control += u < 0x20U && u != '\t' && u != '\n' && u != '\r' && u != '\f' ? 1U : 0U;
  }
  return control * 10 > bytes.size();
}

/** `bytes` in UTF-8: from `charset` when GLib knows it, else as GMime reads unlabelled 8-bit text. */
std::string to_utf8(const std::string &bytes, const std::string &charset) {
  if (!charset.empty()) {
    gsize written = 0;
    GError *error = nullptr;
    const GCharPtr converted(g_convert(bytes.data(), static_cast<gssize>(bytes.size()), "UTF-8", charset.c_str(),
                                       nullptr, &written, &error));
    if (error != nullptr) {
      g_error_free(error);
    } else if (converted != nullptr) {
      return std::string(converted.get(), written);
    }
  }
  if (g_utf8_validate(bytes.data(), static_cast<gssize>(bytes.size()), nullptr) != FALSE) {
    return bytes;
  }
  const GCharPtr decoded(g_mime_utils_decode_8bit(nullptr, bytes.data(), bytes.size()));
  return connectors::mime::to_std_string(decoded.get());
}

bool iends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

class Engine {
public:
  Engine(Masks &masks, const index::Normalizer &normalizer, const MessageOptions &options, MessageReport &report)
      : m_masks(masks), m_norm(normalizer), m_options(options), m_report(report), m_search(masks.kinds()) {
    m_search.everyone = false;
  }

  /** First pass: every mailbox of every (attached) message, so that the Masks learns names. */
  void learn(GMimeMessage *message, int depth) {
    if (message == nullptr || depth > k_max_depth) {
      return;
    }
    for (GMimeAddressType type : k_address_types) {
      for_each_mailbox(g_mime_message_get_addresses(message, type), [&](InternetAddressMailbox *mailbox) {
        (void)decide(mailbox);
      });
    }
    walk_messages(g_mime_message_get_mime_part(message), depth);
  }

  /** What made the redaction impossible, when something did; the message must not be used. */
  [[nodiscard]] const std::optional<core::Error> &failure() const { return m_failure; }

  /** Second pass: replaces what the Masks says, everywhere. */
  void redact(GMimeMessage *message, int depth) {
    if (message == nullptr || depth > k_max_depth) {
      return;
    }
    const int outer_depth = m_depth;
    m_depth = depth;
    for (GMimeAddressType type : k_address_types) {
      const std::size_t before = m_report.header_replacements;
      for_each_mailbox(g_mime_message_get_addresses(message, type), [&](InternetAddressMailbox *mailbox) {
        redact_mailbox(mailbox);
      });
      if (m_report.header_replacements != before) {
        note(address_field_name(type));
      }
    }
    redact_headers(as_object(message), true);
    GMimeObject *body = g_mime_message_get_mime_part(message);
    if (body != nullptr) {
      if (GObjectPtr<GMimeObject> replacement = redact_part(body, depth)) {
        g_mime_message_set_mime_part(message, replacement.get());
      }
    }
    m_depth = outer_depth;
  }

  /** `text` with the masked identities replaced: by their label, or (`address_form`, header
      fields) e-mail addresses by the label's placeholder address. */
  std::string text(std::string_view in, bool address_form, std::size_t &count) {
    std::vector<std::string> labels; // in the order find_identities takes the identifiers
    Search search = m_search;
    search.wanted = [&](std::string_view kind, const std::string &value) {
      if (kind == "email" && is_placeholder_address(value)) {
        return false;
      }
      std::optional<std::string> label = m_masks.identifier(kind, value);
      if (label) {
        labels.push_back(std::move(*label));
      }
      return label.has_value();
    };
    std::vector<Found> found = find_identities(in, m_norm, search);
    std::vector<std::pair<Found, std::string>> hits;
    for (std::size_t i = 0; i < found.size(); ++i) {
      hits.emplace_back(std::move(found[i]), labels[i]);
    }
    if (m_search.email) {
      whole_address_words(in, hits);
    }
    if (hits.empty()) {
      return std::string(in);
    }
    std::ranges::sort(hits, {}, [](const auto &h) { return h.first.begin; });
    std::string out;
    std::size_t at = 0;
    for (const auto &[f, label] : hits) {
      out.append(in.substr(at, f.begin - at));
      out += address_form && f.kind == "email" ? placeholder_address(label) : label;
      m_report.labels.insert(label);
      at = f.end;
      ++count;
    }
    out.append(in.substr(at));
    return out;
  }

  /** The signature fields of the messages redacted: none of them holds once anything changed. */
  void remove_signatures() {
    for (GMimeObject *object : m_signed) {
      GMimeHeaderList *list = g_mime_object_get_header_list(object);
      for (int i = list != nullptr ? g_mime_header_list_get_count(list) : 0; i-- > 0;) {
        const std::string name =
            connectors::mime::to_std_string(g_mime_header_get_name(g_mime_header_list_get_header_at(list, i)));
        if (is_signature_field(name)) {
          g_mime_header_list_remove_at(list, i);
          m_report.removed_headers.push_back(name);
        }
      }
    }
    m_signed.clear();
  }

private:
  static constexpr int k_max_depth = 16;

  /**
   * Addresses written as one word with the characters a local part may hold but free text
   * usually does not ('=', '/', '?', ...: VERP and BATV bounce addresses, "user=domain@relay"):
   * the text tokeniser takes only the part after such a character, which would leave the rest of
   * the word — often the person's own address — in place. The whole word is masked when it is
   * an address the Masks masks; an address found inside it is then replaced with the word.
   */
  void whole_address_words(std::string_view in, std::vector<std::pair<Found, std::string>> &hits) {
    static constexpr std::string_view k_local_specials = "!#$%&'*+-/=?^_`{|}~.";
    const auto local_char = [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || k_local_specials.find(c) != std::string_view::npos;
    };
    const auto domain_char = [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.';
    };
    for (std::size_t at = in.find('@'); at != std::string_view::npos; at = in.find('@', at + 1)) {
      std::size_t begin = at;
      while (begin > 0 && local_char(in[begin - 1])) {
        --begin;
      }
      while (begin < at && (in[begin] == '.' || in[begin] == '/' || in[begin] == '?')) {
        ++begin;
      }
      std::size_t end = at + 1;
      while (end < in.size() && domain_char(in[end])) {
        ++end;
      }
      while (end > at + 1 && (in[end - 1] == '.' || in[end - 1] == '-')) {
        --end;
      }
      if (begin == at || end == at + 1) {
        continue;
      }
      const bool covered = std::ranges::any_of(hits, [&](const auto &h) {
        return h.first.begin <= begin && h.first.end >= end;
      });
      if (covered) {
        continue;
      }
      std::optional<std::string> email = m_norm.email(in.substr(begin, end - begin));
      if (!email || is_placeholder_address(*email)) {
        continue;
      }
      std::optional<std::string> label = m_masks.identifier("email", *email);
      if (!label) {
        continue;
      }
      std::erase_if(hits, [&](const auto &h) { return h.first.begin < end && h.first.end > begin; });
      hits.emplace_back(Found{begin, end, "email", *email}, *label);
    }
  }

  std::optional<std::string> decide(InternetAddressMailbox *mailbox) {
    const std::string addr = connectors::mime::to_std_string(internet_address_mailbox_get_addr(mailbox));
    const std::string name = connectors::mime::to_std_string(
        internet_address_get_name(gobject_cast<InternetAddress>(mailbox, internet_address_get_type())));
    std::string email = m_norm.email(addr).value_or(std::string());
    if (is_placeholder_address(email)) {
      return std::nullopt;
    }
    std::vector<std::string> tokens = m_norm.name_tokens(name);
    std::string name_value = tokens.empty() ? std::string() : redaction::name_value(std::move(tokens));
    if (email.empty() && name_value.empty()) {
      return std::nullopt;
    }
    return m_masks.mailbox(email, name_value);
  }

  void redact_mailbox(InternetAddressMailbox *mailbox, bool name_it = true) {
    auto *address = gobject_cast<InternetAddress>(mailbox, internet_address_get_type());
    if (std::optional<std::string> label = decide(mailbox)) {
      const char *had = internet_address_get_name(address);
      if (name_it || (had != nullptr && *had != '\0')) {
        internet_address_set_name(address, label->c_str());
      }
      internet_address_mailbox_set_addr(mailbox, placeholder_address(*label).c_str());
      m_report.labels.insert(*label);
      ++m_report.header_replacements;
      return;
    }
    // Kept, but its display name may still name someone ("Alice Smith via Bob").
    const char *name = internet_address_get_name(address);
    if (name != nullptr && *name != '\0') {
      const std::string redacted = text(name, false, m_report.header_replacements);
      if (redacted != name) {
        internet_address_set_name(address, redacted.c_str());
      }
    }
  }

  void redact_headers(GMimeObject *object, bool message) {
    GMimeHeaderList *list = object != nullptr ? g_mime_object_get_header_list(object) : nullptr;
    if (list == nullptr) {
      return;
    }
    for (int i = g_mime_header_list_get_count(list); i-- > 0;) {
      GMimeHeader *header = g_mime_header_list_get_header_at(list, i);
      const std::string name = connectors::mime::to_std_string(g_mime_header_get_name(header));
      if (is_signature_field(name)) {
        if (message) {
          m_signed.push_back(object); // removed once anything changed (remove_signatures)
        }
        continue;
      }
      if ((message && is_address_list_field(name)) || is_mime_structure_field(name) ||
          (m_masks.masks_everyone() && is_message_id_field(name))) {
        continue;
      }
      const char *value = g_mime_header_get_value(header);
      if (value == nullptr || *value == '\0') {
        continue;
      }
      const std::size_t before = m_report.header_replacements;
      if (connectors::mime::address_field_role(name) && redact_address_field(header, value)) {
        if (m_report.header_replacements != before) {
          note(name);
        }
        continue;
      }
      const std::string redacted = text(value, true, m_report.header_replacements);
      if (redacted != value) {
        g_mime_header_set_value(header, nullptr, redacted.c_str(), "utf-8");
        note(name);
      }
    }
  }

  /**
   * A field whose value is an address list but that GMime keeps as plain text (Return-Path,
   * Delivered-To, X-Original-To, Resent-*): its mailboxes are decided as a From's are, since a
   * VERP or BATV address is one token to the address parser but not to a text search. False
   * when the value holds no mailbox (then it is searched as text).
   */
  bool redact_address_field(GMimeHeader *header, const char *value) {
    const connectors::mime::ParserOptionsPtr options = connectors::mime::lenient_parser_options();
    const GObjectPtr<InternetAddressList> list = adopt(internet_address_list_parse(options.get(), value));
    if (!list || internet_address_list_length(list.get()) == 0) {
      return false;
    }
    const std::size_t before = m_report.header_replacements;
    // Envelope fields (Return-Path, Delivered-To) hold a bare address: no name is added.
    for_each_mailbox(list.get(), [&](InternetAddressMailbox *mailbox) { redact_mailbox(mailbox, false); });
    if (m_report.header_replacements == before) {
      return true; // nobody masked in it
    }
    const GCharPtr written(internet_address_list_to_string(list.get(), nullptr, FALSE));
    std::string updated = connectors::mime::to_std_string(written.get());
    const std::string_view original(value);
    if (original.find_first_not_of(" \t") != std::string_view::npos &&
        original[original.find_first_not_of(" \t")] == '<' && updated.find('<') == std::string::npos) {
      updated = "<" + updated + ">"; // Return-Path: <addr>
    }
    g_mime_header_set_value(header, nullptr, updated.c_str(), "utf-8");
    return true;
  }

  /** Attached messages, for learn(). */
  void walk_messages(GMimeObject *part, int depth) {
    if (part == nullptr || depth > k_max_depth) {
      return;
    }
    if (auto *multipart = gobject_cast<GMimeMultipart>(part, g_mime_multipart_get_type())) {
      for (int i = 0; i < g_mime_multipart_get_count(multipart); ++i) {
        walk_messages(g_mime_multipart_get_part(multipart, i), depth + 1);
      }
    } else if (auto *attached = gobject_cast<GMimeMessagePart>(part, g_mime_message_part_get_type())) {
      learn(g_mime_message_part_get_message(attached), depth + 1);
    }
  }

  /** Redacts a part in place; returns a part to put in its place (a withheld attachment). */
  GObjectPtr<GMimeObject> redact_part(GMimeObject *part, int depth) {
    if (depth > k_max_depth) {
      return withhold(part, "nested deeper than the redaction follows");
    }
    redact_headers(part, false);
    if (auto *multipart = gobject_cast<GMimeMultipart>(part, g_mime_multipart_get_type())) {
      // The text before the first boundary and after the last: no reader shows it, but it is there.
      if (const char *prologue = g_mime_multipart_get_prologue(multipart); prologue != nullptr && *prologue != '\0') {
        const std::string redacted = text(to_utf8(prologue, ""), false, m_report.text_replacements);
        if (redacted != prologue) {
          note("MIME preamble");
          g_mime_multipart_set_prologue(multipart, redacted.c_str());
        }
      }
      if (const char *epilogue = g_mime_multipart_get_epilogue(multipart); epilogue != nullptr && *epilogue != '\0') {
        const std::string redacted = text(to_utf8(epilogue, ""), false, m_report.text_replacements);
        if (redacted != epilogue) {
          note("MIME epilogue");
          g_mime_multipart_set_epilogue(multipart, redacted.c_str());
        }
      }
      for (int i = 0; i < g_mime_multipart_get_count(multipart); ++i) {
        if (GObjectPtr<GMimeObject> replacement = redact_part(g_mime_multipart_get_part(multipart, i), depth + 1)) {
          const GObjectPtr<GMimeObject> old = adopt(g_mime_multipart_replace(multipart, i, replacement.get()));
        }
      }
      return {};
    }
    if (auto *attached = gobject_cast<GMimeMessagePart>(part, g_mime_message_part_get_type())) {
      redact(g_mime_message_part_get_message(attached), depth + 1);
      return {};
    }
    auto *leaf = gobject_cast<GMimePart>(part, g_mime_part_get_type());
    if (leaf == nullptr) {
      return {};
    }
    if (const char *filename = g_mime_part_get_filename(leaf); filename != nullptr && *filename != '\0') {
      const std::string redacted = text(filename, false, m_report.text_replacements);
      if (redacted != filename) {
        note("attachment name");
        g_mime_part_set_filename(leaf, redacted.c_str());
      }
    }
    if (auto *text_part = gobject_cast<GMimeTextPart>(part, g_mime_text_part_get_type())) {
      return redact_text_part(text_part);
    }
    return redact_leaf(leaf, depth);
  }

  /**
   * A leaf that is not a GMimeTextPart, read as the indexer reads it: an attached message left
   * as a leaf is redacted as a message; PDF, Office and the other extractable formats are
   * checked by their text; anything else that is text is redacted as text; binary bytes that
   * show a masked identity as text are withheld.
   */
  GObjectPtr<GMimeObject> redact_leaf(GMimePart *leaf, int depth) {
    std::string bytes = content_bytes(leaf);
    if (bytes.empty()) {
      return {};
    }
    GMimeObject *object = as_object(leaf);
    GMimeContentType *ct = g_mime_object_get_content_type(object);
    const std::string type = connectors::mime::to_std_string(ct != nullptr ? g_mime_content_type_get_media_type(ct) : nullptr);
    const std::string subtype =
        connectors::mime::to_std_string(ct != nullptr ? g_mime_content_type_get_media_subtype(ct) : nullptr);
    const std::string name = connectors::mime::to_std_string(g_mime_part_get_filename(leaf));
    const bool octet = iequals(type, "application") && iequals(subtype, "octet-stream");
    if ((iequals(type, "message") && (iequals(subtype, "rfc822") || iequals(subtype, "global"))) ||
        (octet && iends_with(name, ".eml"))) {
      if (GObjectPtr<GMimeMessage> attached = parse(bytes); attached && depth < k_max_depth) {
        const MessageReport before = m_report;
        const std::size_t signed_before = m_signed.size();
        learn(attached.get(), depth + 1);
        redact(attached.get(), depth + 1);
        std::vector<GMimeObject *> attached_signed(m_signed.begin() + static_cast<std::ptrdiff_t>(signed_before),
                                                   m_signed.end());
        m_signed.resize(signed_before); // `attached` is gone after this block
        if (m_report.header_replacements != before.header_replacements ||
            m_report.text_replacements != before.text_replacements || m_report.withheld != before.withheld) {
          std::swap(m_signed, attached_signed);
          remove_signatures();
          std::swap(m_signed, attached_signed);
          std::optional<std::string> written = to_string(as_object(attached.get()));
          if (!written) {
            return withhold(object, "an attached message that could not be written again after redaction");
          }
          set_content_bytes(leaf, *written);
        }
        return {};
      }
    }
    const extract::Format format = extract::detect(bytes, type + "/" + subtype, name);
    if (format != extract::Format::none && format != extract::Format::text && format != extract::Format::message) {
      return check_attachment(leaf, std::move(bytes), name, type + "/" + subtype);
    }
    if (!looks_binary(bytes)) {
      const std::string charset = connectors::mime::to_std_string(g_mime_object_get_content_type_parameter(object, "charset"));
      const std::string before = to_utf8(bytes, charset);
      const bool html = iequals(subtype, "html") || iequals(subtype, "xhtml+xml") ||
                        (octet && (iends_with(name, ".htm") || iends_with(name, ".html")));
      std::size_t count = 0;
      std::string after;
      if (html) {
        const char *why = nullptr;
        std::optional<std::string> redacted = redacted_html(before, count, why);
        if (!redacted) {
          return withhold(object, why);
        }
        after = std::move(*redacted);
      } else {
        after = text(before, false, count);
      }
      if (count > 0) {
        m_report.text_replacements += count;
        note(fmt::format("{}/{} part", type, subtype));
        if (std::optional<std::string> encoded = charset.empty() ? std::nullopt : from_utf8(after, charset)) {
          set_content_bytes(leaf, *encoded); // in the part's own charset: its label stays true
        } else {
          set_content_bytes(leaf, after);
          if (!charset.empty() || g_str_is_ascii(after.c_str()) == FALSE) {
            g_mime_object_set_content_type_parameter(object, "charset", "utf-8");
          }
        }
      }
      return {};
    }
    // Binary: kept unless its bytes show a masked identity as text (an independent reader
    // decoding every part as text would see it).
    std::size_t count = 0;
    (void)text(to_utf8(bytes, "ISO-8859-1"), false, count);
    if (count > 0) {
      return withhold(object, m_options.withheld_reason);
    }
    return {};
  }

  /**
   * `html` with what the Masks masks replaced (`count` counts them); nullopt, with `why` the part
   * is withheld, when it cannot be: unparsable, or no HTML module (m_failure: the message is
   * then not used at all).
   */
  std::optional<std::string> redacted_html(const std::string &html, std::size_t &count, const char *&why) {
    core::Result<std::optional<std::string>> redacted =
        redact_html(html, [&](std::string_view s) { return text(s, false, count); });
    if (!redacted) {
      m_failure = redacted.error();
      why = "HTML that could not be redacted";
      return std::nullopt;
    }
    if (!*redacted) {
      why = "HTML that could not be parsed to redact it";
    }
    return std::move(*redacted);
  }

  GObjectPtr<GMimeObject> redact_text_part(GMimeTextPart *part) {
    const GCharPtr decoded(g_mime_text_part_get_text(part));
    if (decoded == nullptr) {
      return {};
    }
    const std::string before(decoded.get());
    GMimeContentType *type = g_mime_object_get_content_type(as_object(part));
    const bool html = type != nullptr && g_mime_content_type_is_type(type, "text", "html") != FALSE;
    std::string after;
    std::size_t count = 0;
    if (html) {
      const char *why = nullptr;
      std::optional<std::string> redacted = redacted_html(before, count, why);
      if (!redacted) {
        return withhold(as_object(part), why);
      }
      after = std::move(*redacted);
    } else {
      after = text(before, false, count);
    }
    if (count == 0) {
      return {};
    }
    m_report.text_replacements += count;
    note(html ? "text/html part" : "text/plain part");
    auto *leaf = gobject_cast<GMimePart>(part, g_mime_part_get_type());
    // In the charset the part was written in when the text fits it (the placeholders are
    // ASCII), so that the rest of the part keeps its bytes; else as GMime chooses.
    const std::string charset =
        connectors::mime::to_std_string(g_mime_object_get_content_type_parameter(as_object(part), "charset"));
    if (std::optional<std::string> encoded = charset.empty() ? std::nullopt : from_utf8(after, charset)) {
      set_content_bytes(leaf, *encoded);
      return {};
    }
    if (charset.empty() && g_str_is_ascii(after.c_str()) != FALSE) {
      set_content_bytes(leaf, after); // plain ASCII as before: no charset label to add
      return {};
    }
    const GMimeContentEncoding original = g_mime_part_get_content_encoding(leaf);
    g_mime_text_part_set_text(part, after.c_str());
    if (original == GMIME_CONTENT_ENCODING_BASE64 || original == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
      g_mime_part_set_content_encoding(leaf, original);
    } else {
      g_mime_part_set_content_encoding(leaf, g_mime_part_get_best_content_encoding(leaf, GMIME_ENCODING_CONSTRAINT_7BIT));
    }
    return {};
  }

  /** An extractable attachment (PDF, Office, ...): kept when its text names nobody masked. */
  GObjectPtr<GMimeObject> check_attachment(GMimePart *part, std::string bytes, const std::string &name,
                                           const std::string &mime_type) {
    // What the bytes show as text counts too (a TNEF or ZIP member's header may hold an address
    // the extracted text leaves out).
    std::size_t raw_count = 0;
    (void)text(to_utf8(bytes, "ISO-8859-1"), false, raw_count);
    if (raw_count > 0) {
      return withhold(as_object(part), m_options.withheld_reason);
    }
    if (!m_options.check_attachments || !connectors::attachment_text_enabled()) {
      m_report.unchecked.push_back(name.empty() ? "(unnamed attachment)" : name);
      return {};
    }
    connectors::Attachment attachment;
    attachment.name = name;
    attachment.mime_type = mime_type;
    attachment.part = "redaction";
    attachment.bytes = std::move(bytes);
    std::vector<connectors::AttachmentText> texts = connectors::extract_attachments({attachment});
    const connectors::AttachmentText &found = texts.front();
    if (!found.problem.empty()) {
      if (m_options.withhold_unreadable) {
        return withhold(as_object(part), "its text could not be read to check it (" + found.problem + ")");
      }
      m_report.unchecked.push_back(name);
      return {};
    }
    std::size_t count = 0;
    (void)text(found.text, false, count);
    if (count > 0) {
      return withhold(as_object(part), m_options.withheld_reason);
    }
    if (found.truncated && m_options.withhold_unreadable) {
      return withhold(as_object(part), "only part of its text could be read to check it");
    }
    return {};
  }

  GObjectPtr<GMimeObject> withhold(GMimeObject *part, const std::string &why) {
    std::string name;
    std::string type = "unknown type";
    std::size_t bytes = 0;
    if (auto *leaf = gobject_cast<GMimePart>(part, g_mime_part_get_type())) {
      name = connectors::mime::to_std_string(g_mime_part_get_filename(leaf));
      if (GMimeDataWrapper *content = g_mime_part_get_content(leaf)) {
        const GObjectPtr<GMimeStream> null = adopt(g_mime_stream_null_new());
        bytes = static_cast<std::size_t>(std::max<gint64>(0, g_mime_data_wrapper_write_to_stream(content, null.get())));
      }
    }
    if (GMimeContentType *ct = g_mime_object_get_content_type(part)) {
      const GCharPtr mime_type(g_mime_content_type_get_mime_type(ct));
      type = connectors::mime::to_std_string(mime_type.get());
    }
    std::size_t ignored = 0;
    const std::string shown = name.empty() ? "(unnamed)" : text(name, false, ignored);
    const std::string what = fmt::format("{} ({}, {} bytes): {}", shown, type, bytes, why);
    m_report.withheld.push_back(what);
    note(fmt::format("attachment withheld ({})", type));
    const GObjectPtr<GMimeTextPart> replacement = adopt(g_mime_text_part_new_with_subtype("plain"));
    const std::string body = fmt::format("An attachment was removed from this copy.\n\n{}\n", what);
    g_mime_text_part_set_text(replacement.get(), body.c_str());
    auto *leaf = gobject_cast<GMimePart>(replacement.get(), g_mime_part_get_type());
    g_mime_part_set_content_encoding(leaf, g_mime_part_get_best_content_encoding(leaf, GMIME_ENCODING_CONSTRAINT_7BIT));
    g_mime_object_set_disposition(as_object(replacement.get()), "inline");
    return GObjectPtr<GMimeObject>(as_object(connectors::mime::retain(replacement.get()).release()));
  }

  /** Records where a change was made (MessageReport::places). */
  void note(const std::string &place) {
    m_report.places.insert(m_depth > 0 ? "attached message: " + place : place);
  }

  static std::string address_field_name(GMimeAddressType type) {
    switch (type) {
    case GMIME_ADDRESS_TYPE_SENDER:
      return "Sender";
    case GMIME_ADDRESS_TYPE_FROM:
      return "From";
    case GMIME_ADDRESS_TYPE_REPLY_TO:
      return "Reply-To";
    case GMIME_ADDRESS_TYPE_TO:
      return "To";
    case GMIME_ADDRESS_TYPE_CC:
      return "Cc";
    case GMIME_ADDRESS_TYPE_BCC:
      return "Bcc";
    }
    return "address field";
  }

  Masks &m_masks;
  const index::Normalizer &m_norm;
  int m_depth = 0; // of the message being redacted (0: the outer one)
  const MessageOptions &m_options;
  MessageReport &m_report;
  Search m_search; // the kinds texts are searched for
  std::vector<GMimeObject *> m_signed; // messages (borrowed: alive until written) with signature fields
  std::optional<core::Error> m_failure; // what made the redaction impossible (no HTML module)
};

std::string summary(const MessageReport &r) {
  std::vector<std::string> parts;
  parts.push_back(fmt::format("{} identifier(s) replaced in header fields, {} in texts and attachment names",
                              r.header_replacements, r.text_replacements));
  if (!r.removed_headers.empty()) {
    parts.push_back(fmt::format("signature field(s) removed, no longer valid: {}", fmt::join(r.removed_headers, ", ")));
  }
  if (!r.withheld.empty()) {
    parts.push_back(fmt::format("{} attachment(s) withheld", r.withheld.size()));
  }
  return "maildsar; " + fmt::format("{}", fmt::join(parts, "; "));
}

/** Whether the decoded message still shows an identity `masks` masks (the check after). */
std::vector<std::string> leftovers(std::string_view bytes, Masks &masks, const index::Normalizer &norm) {
  std::vector<std::string> out;
  connectors::Item item;
  if (auto st = connectors::mime::decode_message(bytes, item); !st) {
    out.push_back("the result does not decode: " + st.error().message);
    return out;
  }
  Search search = masks.kinds();
  search.everyone = false;
  search.wanted = [&](std::string_view kind, const std::string &value) {
    return !(kind == "email" && is_placeholder_address(value)) && masks.identifier(kind, value).has_value();
  };
  for (const connectors::RawAddress &a : item.addresses) {
    if (a.role == connectors::Role::owner) {
      continue;
    }
    std::optional<std::string> email = norm.email(a.addr);
    if (email && !is_placeholder_address(*email) && search.email && masks.identifier("email", *email)) {
      out.push_back(fmt::format("{} address in {}", connectors::to_string(a.role), a.field.empty() ? "a header" : a.field));
    }
    if (!a.name.empty() && !find_identities(a.name, norm, search).empty()) {
      out.push_back(fmt::format("a display name in {}", a.field.empty() ? connectors::to_string(a.role) : a.field));
    }
  }
  for (const connectors::RawText &t : item.texts) {
    if (!find_identities(t.text, norm, search).empty()) {
      out.push_back(fmt::format("{} text{}", connectors::to_string(t.role), t.field.empty() ? "" : " of " + t.field));
    }
  }
  if (search.ip) {
    for (const connectors::RawValue &ip : item.ips) {
      if (std::optional<std::string> n = norm.ip(ip.value); n && masks.identifier("ip", *n)) {
        out.push_back("an IP address in a Received field");
      }
    }
  }
  return out;
}

} // namespace

core::Result<RedactedMessage> redact_message(std::string_view raw, Masks &masks, const index::Normalizer &normalizer,
                                             const MessageOptions &options) {
  if (raw.size() > connectors::item_limits().max_item_bytes) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("message of {} bytes exceeds the item limit ({} bytes): not redacted", raw.size(),
                                  connectors::item_limits().max_item_bytes));
  }
  std::string_view input = raw;
  if (input.starts_with("\xEF\xBB\xBF")) {
    input.remove_prefix(3); // a UTF-8 byte order mark, which would hide the first field's name
  }
  while (!input.empty() && (input.front() == '\n' || input.starts_with("\r\n"))) {
    input.remove_prefix(input.front() == '\n' ? 1 : 2);
  }
  std::string terminated;
  if (!input.empty() && input.back() != '\n') {
    // A message that ends inside its last line (no body, no final newline): GMime would write
    // the next header field onto that line ("Subject: xX-Maildsar-Redacted: ...").
    terminated.reserve(input.size() + 1);
    terminated.append(input).push_back('\n');
    input = terminated;
  }
  const GObjectPtr<GMimeMessage> message = parse(input);
  if (!message) {
    return core::fail(core::ErrorCode::data, "not a message: GMime could not parse it");
  }
  RedactedMessage result;
  Engine engine(masks, normalizer, options, result.report);
  engine.learn(message.get(), 0);
  engine.redact(message.get(), 0);
  if (engine.failure()) {
    return std::unexpected(*engine.failure());
  }
  if (!result.report.changed()) {
    result.bytes.assign(raw);
  } else {
    engine.remove_signatures();
    g_mime_object_append_header(as_object(message.get()), "X-Maildsar-Redacted", summary(result.report).c_str(), "utf-8");
    std::optional<std::string> written = to_string(as_object(message.get()));
    if (!written) {
      return core::fail(core::ErrorCode::internal, "redaction: GMime could not write the redacted message");
    }
    result.bytes = std::move(*written);
  }
  if (std::vector<std::string> left = leftovers(result.bytes, masks, normalizer); !left.empty()) {
    return core::fail(core::ErrorCode::internal,
                      fmt::format("redaction left a masked identity in the message ({}): not used",
                                  fmt::join(left, "; ")));
  }
  return result;
}

} // namespace maildsar::redaction
