// SPDX-License-Identifier: GPL-3.0-or-later
// Header fields for the MIME decoder: the role of each field, the addresses of address fields
// (with what GMime drops recovered), addresses and IP literals in other fields.
#include "connectors/mime/mime_internal.hpp"

#include <gmime/gmime.h>

#include <arpa/inet.h>

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

// ---------------------------------------------------------------------------------------------
// IP literals in Received and similar headers

namespace {

bool is_ip_token_char(char c) { return is_hex(c) || c == ':' || c == '.'; }

std::optional<std::string> ip_from_token(std::string_view token) {
  while (!token.empty() && token.back() == '.') {
    token.remove_suffix(1);
  }
  if (token.size() < 2 || token.size() > 45) {
    return std::nullopt;
  }
  const std::string candidate(token);
  std::array<unsigned char, 16> buffer{};
  if (candidate.find(':') != std::string::npos) {
    if (std::count(candidate.begin(), candidate.end(), ':') < 2 ||
        std::none_of(candidate.begin(), candidate.end(), [](char c) { return is_hex(c); })) {
      return std::nullopt;
    }
    if (inet_pton(AF_INET6, candidate.c_str(), buffer.data()) == 1) {
      return candidate;
    }
    return std::nullopt;
  }
  if (std::count(candidate.begin(), candidate.end(), '.') != 3 ||
      !std::all_of(candidate.begin(), candidate.end(),
                   [](char c) { return c == '.' || (c >= '0' && c <= '9'); })) {
    return std::nullopt;
  }
  if (inet_pton(AF_INET, candidate.c_str(), buffer.data()) == 1) {
    return candidate;
  }
  return std::nullopt;
}

} // namespace

std::vector<std::string> scan_ips(std::string_view text) {
  std::vector<std::string> ips;
  std::size_t i = 0;
  while (i < text.size()) {
    if (istarts_with(text.substr(i), "ipv6:") && (i == 0 || !is_alnum(text[i - 1]))) {
      i += 5;
    } else if (!is_ip_token_char(text[i]) || (i > 0 && is_alnum(text[i - 1]))) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && is_ip_token_char(text[j])) {
      ++j;
    }
    const bool bounded = j >= text.size() || !is_alnum(text[j]);
    if (bounded && j > i) {
      if (std::optional<std::string> ip = ip_from_token(text.substr(i, j - i))) {
        if (std::find(ips.begin(), ips.end(), *ip) == ips.end()) {
          ips.push_back(std::move(*ip));
        }
      }
    }
    i = std::max(j, i + 1);
  }
  return ips;
}

// ---------------------------------------------------------------------------------------------
// Addr-specs a reader sees in an address field, whatever GMime made of them

namespace {

/**
 * The addr-spec tokens of a decoded address-field value: maximal runs without white space,
 * separators ,;<>()[] or quotes (a quoted local part "john doe"@x stays one token), with
 * exactly one '@', a non-empty local part and a dotted domain (or an address literal).
 * Obsolete forms (d..x@, john.@) are kept as written; the indexer normalises and validates.
 */
std::vector<std::string> addr_spec_tokens(std::string_view text) {
  constexpr std::string_view k_separators = " \t\r\n,;<>()[]\"'`";
  std::vector<std::string> tokens;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t begin = pos;
    std::size_t end = pos;
    if (text[pos] == '"') {
      const std::size_t close = text.find('"', pos + 1);
      if (close != std::string_view::npos && close + 1 < text.size() && text[close + 1] == '@') {
        end = close + 1; // a quoted local part: the token goes on with its domain
      } else {
        ++pos;
        continue;
      }
    } else if (k_separators.find(text[pos]) != std::string_view::npos) {
      ++pos;
      continue;
    }
    while (end < text.size() && k_separators.find(text[end]) == std::string_view::npos) {
      ++end;
    }
    if (end < text.size() && text[end] == '[' && end > begin && text[end - 1] == '@') {
      const std::size_t close = text.find(']', end);
      end = close == std::string_view::npos ? end : close + 1; // user@[192.0.2.1]
    }
    pos = std::max(end, pos + 1);
    std::string_view token = text.substr(begin, end - begin);
    while (!token.empty() && (token.back() == '.' || token.back() == ':')) {
      token.remove_suffix(1); // end of a sentence
    }
    const std::size_t at = token.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 >= token.size() ||
        token.substr(0, at).find('@') != std::string_view::npos) {
      continue;
    }
    const std::string_view domain = token.substr(at + 1);
    if (domain.find('.') == std::string_view::npos && domain.front() != '[') {
      continue;
    }
    tokens.emplace_back(token);
  }
  return tokens;
}

/**
 * Unfolds a raw address-field value, joining the two sides of a fold that split an address
 * ("alice@exam" CRLF " ple.com", "alice.smith@" CRLF " example.com"): a fold is dropped with
 * its white space when the character before or after it is '@' or '.', or when the word
 * before it holds an '@' whose domain has no dot yet. Other folds keep their white space.
 */
std::string join_split_folds(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  std::size_t i = 0;
  while (i < raw.size()) {
    const char c = raw[i];
    if (c != '\r' && c != '\n') {
      out.push_back(c);
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < raw.size() && (raw[j] == '\r' || raw[j] == '\n')) {
      ++j;
    }
    std::size_t next = j;
    while (next < raw.size() && (raw[next] == ' ' || raw[next] == '\t')) {
      ++next;
    }
    const char before = out.empty() ? ' ' : out.back();
    const char after = next < raw.size() ? raw[next] : ' ';
    const std::size_t word_begin = out.find_last_of(" \t,;<>\"");
    const std::string_view word =
        std::string_view(out).substr(word_begin == std::string::npos ? 0 : word_begin + 1);
    const std::size_t at = word.find('@');
    const bool open_domain = at != std::string_view::npos && word.find('.', at) == std::string_view::npos;
    const bool split = !is_space(before) && next > j && !is_space(after) && after != ',' &&
                       after != '<' && after != '(' && after != '"' &&
                       (before == '@' || before == '.' || after == '@' || after == '.' || open_domain);
    if (split) {
      i = next;
    } else {
      i = j;
    }
  }
  return out;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Header roles

namespace {

struct HeaderRole {
  std::string_view header; // lower case
  Role role;
};

constexpr std::array k_address_headers{
    HeaderRole{"from", Role::from},
    HeaderRole{"to", Role::to},
    HeaderRole{"cc", Role::cc},
    HeaderRole{"bcc", Role::bcc},
    HeaderRole{"reply-to", Role::reply_to},
    HeaderRole{"sender", Role::sender},
    HeaderRole{"delivered-to", Role::delivered_to},
    HeaderRole{"return-path", Role::return_path},
    HeaderRole{"resent-from", Role::resent_from},
    HeaderRole{"resent-to", Role::resent_to},
    HeaderRole{"resent-cc", Role::resent_cc},
    HeaderRole{"resent-bcc", Role::resent_bcc},
    HeaderRole{"resent-reply-to", Role::header},
    HeaderRole{"resent-sender", Role::resent_sender},
    HeaderRole{"apparently-to", Role::to},
    HeaderRole{"x-original-from", Role::from},
    HeaderRole{"x-original-sender", Role::sender},
    HeaderRole{"mail-reply-to", Role::reply_to},
    HeaderRole{"mail-followup-to", Role::reply_to},
    HeaderRole{"disposition-notification-to", Role::notification},
    HeaderRole{"return-receipt-to", Role::notification},
    HeaderRole{"errors-to", Role::notification},
    HeaderRole{"envelope-to", Role::envelope_to}, // Exim
    HeaderRole{"x-original-to", Role::envelope_to}, // Postfix
    HeaderRole{"x-envelope-to", Role::envelope_to},
    HeaderRole{"x-delivered-to", Role::envelope_to},
    HeaderRole{"x-forwarded-to", Role::envelope_to},
    HeaderRole{"x-envelope-to-blocked", Role::envelope_to},
    HeaderRole{"x-envelope-from", Role::envelope_from},
};

} // namespace

std::optional<Role> address_role(std::string_view header) {
  for (const HeaderRole &entry : k_address_headers) {
    if (iequals(entry.header, header)) {
      return entry.role;
    }
  }
  return std::nullopt;
}

namespace {

/** True for the roles whose evidence names the header field it came from. */
bool role_keeps_field(Role role) {
  switch (role) {
  case Role::received:
  case Role::envelope_from:
  case Role::envelope_to:
  case Role::resent_from:
  case Role::resent_to:
  case Role::resent_cc:
  case Role::resent_bcc:
  case Role::resent_sender:
  case Role::notification:
  case Role::header:
    return true;
  default:
    return false;
  }
}

/** Display-name lists written by archives and exporters (Enron, Outlook exports). */
constexpr std::array<std::string_view, 4> k_display_name_headers{"x-from", "x-to", "x-cc", "x-bcc"};

bool is_display_name_header(std::string_view header) {
  return std::any_of(k_display_name_headers.begin(), k_display_name_headers.end(),
                     [&](std::string_view name) { return iequals(name, header); });
}

} // namespace

bool is_identifier_header(std::string_view header) {
  constexpr std::array<std::string_view, 12> k_skipped{
      "message-id",     "references",          "in-reply-to",       "content-id",
      "resent-message-id", "arc-seal",         "arc-message-signature", "x-forwarded-encrypted",
      "supersedes",     "content-type",        "content-transfer-encoding", "mime-version"};
  return iends_with(header, "-id") || iends_with(header, "-signature") ||
         iends_with(header, "-seal") ||
         std::any_of(k_skipped.begin(), k_skipped.end(),
                     [&](std::string_view name) { return iequals(name, header); });
}

bool is_dkim_signature(std::string_view header) {
  return iequals(header, "dkim-signature") || iequals(header, "x-google-dkim-signature") ||
         iequals(header, "domainkey-signature");
}

namespace {

/** The role of an address found by scanning the value of a field that is not structured. */
Role scanned_role(std::string_view header) {
  if (iequals(header, "received") || iequals(header, "x-received") ||
      istarts_with(header, "arc-") || iequals(header, "authentication-results") ||
      iends_with(header, "-authentication-results")) {
    return Role::received;
  }
  return Role::header;
}

constexpr std::array<std::string_view, 6> k_ip_headers{
    "received",          "x-originating-ip", "x-sender-ip",
    "x-client-ip",       "x-remote-ip",      "x-forwarded-for"};

} // namespace

bool is_ip_header(std::string_view header) {
  return std::any_of(k_ip_headers.begin(), k_ip_headers.end(),
                     [&](std::string_view name) { return iequals(name, header); });
}

// ---------------------------------------------------------------------------------------------
// Decoder: the header fields of the top-level message

/** The top-level message: header roles, IPs, subject and the body. */
void Decoder::decode_top(GMimeMessage *message) {
  if (const char *id = g_mime_message_get_message_id(message); id != nullptr) {
    m_item.message_id = valid_utf8(trim(id));
  }
  if (GDateTime *date = g_mime_message_get_date(message); date != nullptr) {
    m_item.date = static_cast<std::int64_t>(g_date_time_to_unix(date));
  }
  GMimeHeaderList *headers = g_mime_object_get_header_list(as_object(message));
  const int count = headers != nullptr ? g_mime_header_list_get_count(headers) : 0;
  bool have_subject = false;
  for (int i = 0; i < count; ++i) {
    GMimeHeader *header = g_mime_header_list_get_header_at(headers, i);
    const std::string_view name = header_name(header);
    const std::string_view raw = header_raw_value(header);
    if (std::optional<Role> role = address_role(name)) {
      const std::string field = role_keeps_field(*role) ? valid_utf8(name) : std::string();
      for (auto &[display, addr] : addresses(name, raw)) {
        m_item.addresses.push_back(RawAddress{*role, std::move(display), std::move(addr), field});
      }
      continue;
    }
    if (is_ip_header(name)) {
      for (std::string &ip : scan_ips(raw)) {
        if (std::none_of(m_item.ips.begin(), m_item.ips.end(),
                         [&](const RawValue &seen) { return seen.value == ip; })) {
          m_item.ips.push_back(RawValue{Role::received, std::move(ip)});
        }
      }
    }
    if (iequals(name, "subject")) {
      if (!have_subject) {
        have_subject = true;
        m_item.subject = decode_header_text(raw);
        if (!m_item.subject.empty()) {
          add_text(Role::subject, m_item.subject);
        }
      }
      continue;
    }
    if (is_display_name_header(name)) {
      for (std::string &display : display_names(decode_header_text(raw))) {
        m_item.addresses.push_back(
            RawAddress{Role::header, std::move(display), std::string(), valid_utf8(name)});
      }
    }
    scan_header(name, raw);
  }
  if (GMimeObject *body = g_mime_message_get_mime_part(message); body != nullptr) {
    walk(body, Origin::message, 1);
  }
}

std::string_view Decoder::header_name(GMimeHeader *header) {
  const char *name = g_mime_header_get_name(header);
  return name != nullptr ? std::string_view(name) : std::string_view();
}

std::string_view Decoder::header_raw_value(GMimeHeader *header) {
  const char *raw = g_mime_header_get_raw_value(header);
  return raw != nullptr ? std::string_view(raw) : std::string_view();
}

/**
 * The value of a field that is not parsed as an address list, scanned for addresses by the
 * indexer (whole addresses only, DESIGN §3). Identifier and signature fields are skipped; of
 * a DKIM signature only the i= tag (the signing identity) is kept.
 */
void Decoder::scan_header(std::string_view name, std::string_view raw) {
  if (raw.find('@') == std::string_view::npos && raw.find("=?") == std::string_view::npos) {
    return; // no address can be in it
  }
  std::string field = valid_utf8(name);
  if (is_dkim_signature(name)) {
    const std::string value = unfold(raw);
    std::size_t begin = 0;
    while (begin < value.size()) {
      const std::size_t end = std::min(value.find(';', begin), value.size());
      const std::string_view tag = trim(std::string_view(value).substr(begin, end - begin));
      if (tag.starts_with("i=") || tag.starts_with("i ")) {
        add_header_text(Role::header, std::string(tag.substr(tag.find('=') + 1)), field);
      }
      begin = end + 1;
    }
    return;
  }
  if (is_identifier_header(name)) {
    return;
  }
  const Role role = scanned_role(name);
  std::string decoded = decode_header_text(raw);
  if (raw.find("=?") != std::string_view::npos) {
    std::string unfolded = valid_utf8(trim(unfold(raw)));
    if (unfolded != decoded) {
      add_header_text(role, std::move(unfolded), field);
    }
  }
  add_header_text(role, std::move(decoded), field);
}

void Decoder::add_header_text(Role role, std::string text, const std::string &field) {
  if (text.find('@') == std::string::npos || m_header_text_bytes + text.size() > k_max_text_bytes) {
    return;
  }
  m_header_text_bytes += text.size();
  m_item.texts.push_back(RawText{role, std::move(text), field, TextScan::addresses});
}

/**
 * The display names of an X-From/X-To/X-cc/X-bcc list ("Steffes, James D. </O=ENRON/...>,
 * Jeff Dasovich, Kean, Steven J."): split at top-level commas and semicolons; a piece of one
 * word without <...> is a last name and joins the next piece ("Last, First").
 */
std::vector<std::string> Decoder::display_names(const std::string &value) {
  struct Piece {
    std::string name;
    bool bracketed = false;
  };
  std::vector<Piece> pieces(1);
  bool quoted = false;
  int angle = 0;
  for (const char c : value) {
    if (c == '"' && angle == 0) {
      quoted = !quoted;
      continue;
    }
    if (!quoted && c == '<') {
      ++angle;
      pieces.back().bracketed = true;
      continue;
    }
    if (!quoted && c == '>' && angle > 0) {
      --angle;
      continue;
    }
    if (angle > 0) {
      continue;
    }
    if (!quoted && (c == ',' || c == ';')) {
      pieces.emplace_back();
      continue;
    }
    pieces.back().name.push_back(c);
  }
  std::vector<std::string> names;
  std::string pending;
  for (Piece &piece : pieces) {
    std::string name = collapse_whitespace(trim(piece.name));
    if (name.find('@') != std::string::npos) {
      name.clear(); // an address, not a name: the address scan takes it
    }
    const bool one_word = !name.empty() && name.find(' ') == std::string::npos;
    if (!pending.empty()) {
      name = name.empty() ? pending : pending + ", " + name;
      pending.clear();
    } else if (one_word && !piece.bracketed) {
      pending = std::move(name);
      continue;
    }
    if (!name.empty()) {
      names.push_back(std::move(name));
    }
  }
  if (!pending.empty()) {
    names.push_back(std::move(pending));
  }
  return names;
}

/** The (display name, addr-spec) pairs of one address header, decoded. */
std::vector<std::pair<std::string, std::string>> Decoder::addresses(std::string_view header,
                                                                    std::string_view raw) {
  std::vector<std::pair<std::string, std::string>> found;
  // At most limits.max_addresses_per_role per field (a 500,000-address To: is not kept whole).
  std::uint64_t dropped = 0;
  struct NoteDropped {
    Item &item;
    std::string_view header;
    const std::uint64_t &dropped;
    std::uint64_t cap;
    ~NoteDropped() {
      if (dropped > 0) {
        item.truncated.push_back("at least " + std::to_string(dropped) + " address(es) of a " + valid_utf8(header) +
                                 " field beyond limits.max_addresses_per_role (" + std::to_string(cap) +
                                 ") not indexed");
      }
    }
  } note{m_item, header, dropped, m_max_addresses};
  const std::string prepared = merge_encoded_words(raw);
  const GObjectPtr<InternetAddressList> list =
      adopt(internet_address_list_parse(m_options, prepared.c_str()));
  for_each_mailbox(list.get(), [&](InternetAddressMailbox *mailbox) {
    if (found.size() >= m_max_addresses) {
      ++dropped;
      return;
    }
    const char *name = internet_address_get_name(&mailbox->parent_object);
    std::string display = name != nullptr ? valid_utf8(collapse_whitespace(trim(name))) : std::string();
    std::string addr = valid_utf8(trim(to_std_string(internet_address_mailbox_get_addr(mailbox))));
    if (addr.find("=?") != std::string::npos) {
      addr = decode_header_text(addr); // a bare encoded word GMime took for an addr-spec
    }
    if (!display.empty() || !addr.empty()) {
      found.emplace_back(std::move(display), std::move(addr));
    }
  });
  const std::string_view value = trim(raw);
  if (found.empty() && !value.empty() && value != "<>" && !is_empty_group(value)) {
    recover_addresses(header, decode_header_text(value), found);
    return found;
  }
  if (value.find('@') == std::string_view::npos && value.find("=?") == std::string_view::npos) {
    return found;
  }
  // An encoded word that wraps a whole address list ("=?utf-8?Q?Alice_<a@x>,_Bob_<b@y>?="):
  // GMime sees one name; the decoded value parsed again gives the mailboxes.
  const std::string decoded = decode_header_text(value);
  const bool wrapped = std::any_of(found.begin(), found.end(), [](const auto &entry) {
    return entry.first.find('@') != std::string::npos ||
           entry.second.find_first_of("<>, ") != std::string::npos;
  });
  if (wrapped) {
    std::vector<std::pair<std::string, std::string>> again;
    const GObjectPtr<InternetAddressList> reparsed =
        adopt(internet_address_list_parse(m_options, decoded.c_str()));
    for_each_mailbox(reparsed.get(), [&](InternetAddressMailbox *mailbox) {
      const char *name = internet_address_get_name(&mailbox->parent_object);
      std::string display = name != nullptr ? valid_utf8(collapse_whitespace(trim(name))) : std::string();
      std::string addr = valid_utf8(trim(to_std_string(internet_address_mailbox_get_addr(mailbox))));
      if (!addr.empty()) {
        again.emplace_back(std::move(display), std::move(addr));
      }
    });
    if (!again.empty()) {
      found = std::move(again);
    }
  }
  // Addresses GMime dropped or changed (obsolete "d..x@", "john.@", an address inside a
  // comment, one split by folding): every addr-spec a reader sees in the value is kept.
  std::vector<std::string> seen;
  seen.reserve(found.size());
  for (const auto &entry : found) {
    seen.push_back(lower(entry.second));
  }
  const auto keep = [&](std::string token) {
    if (found.size() >= m_max_addresses) {
      dropped = std::max<std::uint64_t>(dropped, 1); // an addr-spec GMime may have counted already
      return;
    }
    const std::string key = lower(token);
    if (std::find(seen.begin(), seen.end(), key) == seen.end()) {
      seen.push_back(key);
      found.emplace_back(std::string(), std::move(token));
    }
  };
  for (std::string &token : addr_spec_tokens(decoded)) {
    keep(std::move(token));
  }
  if (value.find('\n') != std::string_view::npos) {
    for (std::string &token : addr_spec_tokens(decode_header_text(join_split_folds(raw)))) {
      keep(std::move(token));
    }
  }
  return found;
}

/** "undisclosed-recipients:;" (an empty group, maybe followed by a comment). */
bool Decoder::is_empty_group(std::string_view value) {
  const std::size_t colon = value.find(':');
  if (colon == std::string_view::npos || value.substr(0, colon).find_first_of("<@\"") != std::string_view::npos) {
    return false;
  }
  const std::string_view rest = trim(value.substr(colon + 1));
  return !rest.empty() && rest.front() == ';';
}

/**
 * A header GMime found no mailbox in ("mailing list x@y", "Alice Smith, Bob Jones"): keeps
 * every addr-spec-like token as an address, or else every comma-separated name, so no data is
 * lost.
 */
void Decoder::recover_addresses(std::string_view header, const std::string &text,
                                std::vector<std::pair<std::string, std::string>> &found) {
  constexpr std::string_view k_separators = " \t,;<>\"'()[]";
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t begin = text.find_first_not_of(k_separators, pos);
    if (begin == std::string::npos) {
      break;
    }
    const std::size_t end = std::min(text.find_first_of(k_separators, begin), text.size());
    const std::string_view token = std::string_view(text).substr(begin, end - begin);
    const std::size_t at = token.find('@');
    if (at != std::string_view::npos && at > 0 && at + 1 < token.size()) {
      found.emplace_back(std::string(), std::string(token));
    }
    pos = end;
  }
  if (!found.empty()) {
    return;
  }
  m_warnings.add("MIME: " + valid_utf8(header) + " header holds no address; kept as names");
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t end = std::min(text.find_first_of(",;", begin), text.size());
    std::string name = collapse_whitespace(trim(std::string_view(text).substr(begin, end - begin)));
    if (!name.empty()) {
      found.emplace_back(std::move(name), std::string());
    }
    begin = end + 1;
  }
}

} // namespace maildsar::connectors::mime::detail
