// SPDX-License-Identifier: GPL-3.0-or-later
// The PST reader's Extractor, first half: an item's properties (subject, dates, addresses,
// transport headers, contact card, bodies) as an Item. Attachments are attachments.cpp.
#include "connectors/pst/extractor.hpp"

#include "connectors/mime/mime_parser.hpp"
#include "connectors/pst/text.hpp"

extern "C" {
#include <libpst/lzfu.h> // declares pst_lzfu_decompress without C linkage
}

#include <array>
#include <string_view>
#include <utility>
#include <vector>

namespace maildsar::connectors::pst {

namespace {

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

} // namespace

void Extractor::extract(pst_item &item, Item &out, int embed_depth) {
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

std::string Extractor::str(pst_item &owner, pst_string &s) {
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

void Extractor::add_text(Item &out, Role role, std::string text, std::string field) {
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

void Extractor::add_address(Item &out, Role role, std::string name, std::string addr) {
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

void Extractor::add_display_list(Item &out, Role role, const std::string &list) {
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

void Extractor::extract_email(pst_item &item, pst_item_email &email, Item &out) {
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

void Extractor::extract_headers(std::string headers, Item &out) {
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

void Extractor::header_fallback(const std::string &headers, Item &out) {
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

void Extractor::extract_contact(pst_item &item, pst_item_contact &c, Item &out, CardNames card) {
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

void Extractor::extract_bodies(pst_item &item, Item &out) {
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

} // namespace maildsar::connectors::pst
