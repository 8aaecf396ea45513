// SPDX-License-Identifier: GPL-3.0-or-later
// Erasure by redaction: the subject masked in a message that stays, in its store's form.
#include "erasure/message_redaction.hpp"

#include "connectors/limits.hpp"
#include "connectors/mbox.hpp"
#include "connectors/quarantine.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/secret.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

namespace maildsar::erasure {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_gzip(std::string_view bytes) { return bytes.size() >= 2 && bytes[0] == '\x1f' && bytes[1] == '\x8b'; }

/** Every bare LF as CRLF (a message stored with CRLF line ends stays so). */
std::string to_crlf(std::string_view lf) {
  std::string out;
  out.reserve(lf.size() + lf.size() / 32);
  for (std::size_t i = 0; i < lf.size(); ++i) {
    if (lf[i] == '\n' && (i == 0 || lf[i - 1] != '\r')) {
      out += '\r';
    }
    out += lf[i];
  }
  return out;
}

/** The line-end sequence a stored range ends with ("\n\n", "\r\n\r\n", "\n", ...). */
std::string_view trailing_newlines(std::string_view s) {
  std::size_t n = s.size();
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) {
    --n;
  }
  return s.substr(n);
}

/**
 * Sets the value of a top-level Content-Length field (if the entry has one) to the length of
 * the body as stored, the separating blank line left out: a reader that trusts the field must
 * still land on the next "From " line.
 */
std::string fix_content_length(std::string entry, std::size_t message_begin, std::string_view separator) {
  const bool crlf = separator.find('\r') != std::string_view::npos;
  const std::string blank = crlf ? "\r\n\r\n" : "\n\n";
  const std::size_t headers_end = entry.find(blank, message_begin);
  if (headers_end == std::string::npos) {
    return entry;
  }
  const std::size_t body_begin = headers_end + blank.size();
  std::size_t body_end = entry.size();
  const std::size_t one_line_end = crlf ? 2 : 1;
  if (body_end >= body_begin + one_line_end) {
    body_end -= one_line_end; // the blank line that separates entries is not part of the body
  }
  std::size_t at = message_begin;
  while (at < headers_end) {
    std::size_t line_end = entry.find('\n', at);
    if (line_end == std::string::npos || line_end > headers_end) {
      line_end = headers_end;
    }
    std::string_view line(entry.data() + at, line_end - at);
    constexpr std::string_view k_field = "content-length:";
    if (line.size() >= k_field.size() &&
        std::equal(k_field.begin(), k_field.end(), line.begin(), [](char a, char b) {
          return a == static_cast<char>(std::tolower(static_cast<unsigned char>(b)));
        })) {
      const std::string value = fmt::format("Content-Length: {}{}", body_end - body_begin, crlf ? "\r" : "");
      entry.replace(at, line_end - at, value);
      break;
    }
    at = line_end + 1;
  }
  return entry;
}

} // namespace

KeyedMasks::KeyedMasks(std::string key, const std::vector<KeyedIdentifier> &subject) : m_key(std::move(key)) {
  for (const KeyedIdentifier &k : subject) {
    m_targets.insert(k.kind + ":" + k.hash);
    m_kinds.email = m_kinds.email || k.kind == "email";
    m_kinds.ip = m_kinds.ip || k.kind == "ip";
    m_kinds.phone = m_kinds.phone || k.kind == "phone";
    m_kinds.name = m_kinds.name || k.kind == "name";
  }
}

bool KeyedMasks::has(std::string_view kind, const std::string &normalised) const {
  return !normalised.empty() && m_targets.contains(std::string(kind) + ":" + core::keyed_hash(m_key, kind, normalised));
}

std::optional<std::string> KeyedMasks::mailbox(const std::string &email, const std::string &name) {
  if (has("email", email) || has("name", name)) {
    return std::string(k_erased_label);
  }
  return std::nullopt;
}

std::optional<std::string> KeyedMasks::identifier(std::string_view kind, const std::string &normalised) {
  if (has(kind, normalised)) {
    return std::string(k_erased_label);
  }
  return std::nullopt;
}

std::string redaction_unsupported(const core::Config &config, const connectors::Locator &loc) {
  switch (loc.store) {
  case connectors::StoreKind::maildir:
    return {};
  case connectors::StoreKind::mbox: {
    for (const core::SourceConfig &s : config.sources) {
      if (s.name == loc.source && connectors::mbox_dialect_of(s.format) == connectors::MboxDialect::content_length) {
        return fmt::format("the mbox source '{}' is in the {} format, whose entries are delimited by their "
                           "Content-Length: it is not rewritten with a message changed in length",
                           s.name, s.format);
      }
    }
    return {};
  }
  case connectors::StoreKind::emlfolder:
    return {};
  case connectors::StoreKind::quarantine:
    if (loc.length > 0) {
      return ends_with(loc.path, ".gz") ? "a message inside a compressed quarantine mbox cannot be rewritten in place"
                                        : std::string();
    }
    if (ends_with(loc.path, ".header") &&
        core::lstat_file(loc.path.substr(0, loc.path.size() - 7) + ".body")) {
      return "a quarantined message kept as a .header and a .body file cannot be rewritten as one";
    }
    return {};
  case connectors::StoreKind::postfix_queue:
  case connectors::StoreKind::exim_spool:
    return "maildsar does not change an MTA's queue files";
  case connectors::StoreKind::archive:
    return "a backup archive is not changed in place";
  case connectors::StoreKind::pst:
    return "PST files cannot be changed in place";
  case connectors::StoreKind::maillog:
    return "not a message";
  }
  return "not a message";
}

core::Result<StoredRedaction> redact_stored_item(const connectors::Locator &loc, std::string_view stored,
                                                 KeyedMasks &masks, const index::Normalizer &normalizer) {
  if (loc.store != connectors::StoreKind::maildir && loc.store != connectors::StoreKind::mbox &&
      loc.store != connectors::StoreKind::emlfolder && loc.store != connectors::StoreKind::quarantine) {
    return core::fail(core::ErrorCode::data, "not a message of a store that erase rewrites");
  }
  const bool range = loc.length > 0 && loc.store != connectors::StoreKind::maildir;
  std::string message;
  std::string from_line;
  bool gzipped = false;
  if (range) {
    connectors::MboxMessage m;
    m.raw = stored;
    m.length = stored.size();
    const std::size_t nl = stored.find('\n');
    m.from_line_length = nl == std::string_view::npos ? stored.size() : nl + 1;
    from_line.assign(stored.substr(0, m.from_line_length));
    message = connectors::mbox_message_content(m);
  } else if (loc.store != connectors::StoreKind::maildir && is_gzip(stored)) {
    MAILDSAR_TRY_ASSIGN(message, connectors::gunzip(stored, connectors::item_limits().max_item_bytes));
    gzipped = true;
  } else {
    message.assign(stored);
  }
  const std::size_t first_nl = message.find('\n');
  const bool crlf = first_nl != std::string::npos && first_nl > 0 && message[first_nl - 1] == '\r';

  redaction::MessageOptions options;
  options.withhold_unreadable = false; // another person's attachment is kept unless it names the subject
  options.withheld_reason = "it names a person whose data was erased (Art. 17 GDPR)";
  MAILDSAR_TRY_ASSIGN(redaction::RedactedMessage redacted, redaction::redact_message(message, masks, normalizer, options));
  StoredRedaction out;
  out.report = std::move(redacted.report);
  if (!out.report.changed()) {
    out.stored.assign(stored);
    return out;
  }
  std::string bytes = crlf ? to_crlf(redacted.bytes) : std::move(redacted.bytes);
  if (range) {
    const std::string_view separator = trailing_newlines(stored);
    std::string body = connectors::quote_mboxrd(bytes);
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) {
      body.pop_back();
    }
    std::string entry = from_line + body;
    entry += separator.empty() ? std::string_view(crlf ? "\r\n" : "\n") : separator;
    out.stored = fix_content_length(std::move(entry), from_line.size(), separator);
  } else if (gzipped) {
    MAILDSAR_TRY_ASSIGN(out.stored, connectors::gzip_compress(bytes));
  } else {
    out.stored = std::move(bytes);
  }
  return out;
}

std::vector<std::string> change_list(const redaction::MessageReport &report) {
  std::vector<std::string> out;
  for (const std::string &place : report.places) {
    out.push_back(place);
  }
  if (!report.removed_headers.empty()) {
    std::vector<std::string> names = report.removed_headers;
    std::ranges::sort(names);
    names.erase(std::unique(names.begin(), names.end()), names.end());
    std::string list;
    for (const std::string &n : names) {
      list += (list.empty() ? "" : ", ") + n;
    }
    out.push_back("signature removed, no longer valid: " + list);
  }
  if (!report.unchecked.empty()) {
    out.push_back(fmt::format("{} attachment(s) kept without their text checked (unreadable or not extractable)",
                              report.unchecked.size()));
  }
  out.emplace_back("X-Maildsar-Redacted header added");
  return out;
}

std::string redacted_maildir_unique(const std::string &old_path, const std::string &manifest_hash) {
  const std::string name = std::filesystem::path(old_path).filename().string();
  std::string unique = name;
  for (std::string_view sep : {std::string_view(":"), std::string_view("!2,"), std::string_view(",2,")}) {
    if (std::size_t at = name.find(sep); at != std::string::npos && at > 0) {
      unique = name.substr(0, at);
      break;
    }
  }
  std::size_t digits = 0;
  while (digits < unique.size() && digits < 20 && unique[digits] >= '0' && unique[digits] <= '9') {
    ++digits;
  }
  return fmt::format("{}.R{}.maildsar", digits > 0 ? unique.substr(0, digits) : std::string("0"),
                     core::sha256_hex(manifest_hash + '\0' + unique).substr(0, 16));
}

} // namespace maildsar::erasure
