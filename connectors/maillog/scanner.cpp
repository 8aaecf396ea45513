// SPDX-License-Identifier: GPL-3.0-or-later
// The transaction assembler: the lines of one file, as its format's parser reports them, become
// items. Lines with the same key are one transaction, emitted when it closes ("removed",
// "Completed") or at the end of the file, in parts when it outgrows the item limits; a line
// without a key is an item of its own when it names someone, held back for continuation lines.
#include "connectors/maillog/scanner.hpp"

#include "core/hash.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace maildsar::connectors::maillog {

using std::string_view;

namespace {

/** All open transactions together hold at most this many times limits.max_transaction_kib. */
constexpr std::size_t k_open_budget_factor = 8;
constexpr std::size_t k_max_pending_parts = 100000; // part numbers remembered across such splits
/** What an open transaction costs besides its lines (its map entry, strings, sets), counted
    against the budget so that a million queue ids that never complete stay bounded too. */
constexpr std::size_t k_open_txn_overhead = 1024;

} // namespace

void FileScanner::count(Counter &c, std::uint64_t line) {
  if (c.n++ == 0) {
    c.first = line;
  }
}

FileScanner::FileScanner(const core::SourceConfig &source, const SourceFormat &format,
                         std::string path, std::int64_t mtime, ItemSink &sink)
    : m_source(source), m_format(format), m_path(std::move(path)), m_sink(sink),
      m_parser(format.open(mtime)) {}

FileScanner::~FileScanner() = default;

void FileScanner::line(std::uint64_t number, string_view raw, std::uint64_t begin,
                       std::uint64_t end) {
  m_begin = begin;
  m_end = end;
  string_view view = raw;
  if (!view.empty() && view.back() == '\r') {
    view.remove_suffix(1);
  }
  if (number == 1 && starts_with(view, "\xEF\xBB\xBF")) { // the file's BOM: never one of a later line
    view.remove_prefix(3);
  }
  const bool first = !m_seen_line;
  m_seen_line = true;
  if (trim(view).empty()) {
    flush_single();
    m_last_key.clear();
    return;
  }
  if (is_binary_line(view)) {
    count(m_binary, number);
    return;
  }
  if (first) {
    if (const FileFormat *ff = m_format.recognise(view)) {
      m_parser = ff->open();
      m_format_name = ff->name;
    }
  }
  m_number = number;
  m_raw = raw;
  m_parser->line(view, *this);
}

  /** End of data: emits the open transactions (in the order of their first line) and summaries. */
void FileScanner::finish() {
  flush_single();
  std::vector<Txn> rest;
  rest.reserve(m_open.size());
  for (auto &[key, txn] : m_open) {
    if (!txn.lines.empty()) { // empty: the part after a split that got no line
      rest.push_back(std::move(txn));
    }
  }
  m_open.clear();
  std::sort(rest.begin(), rest.end(),
            [](const Txn &a, const Txn &b) { return a.lines.front() < b.lines.front(); });
  for (auto &t : rest) {
    emit(std::move(t));
  }
  if (m_binary.n > 0) {
    m_sink.error(ScanError{m_path, fmt::format("line {}", m_binary.first),
                           fmt::format("{} binary line(s) skipped (NUL bytes or not text)",
                                       m_binary.n)});
  }
  if (m_unparsed.n > 0) {
    m_sink.error(ScanError{
        m_path, fmt::format("line {}", m_unparsed.first),
        fmt::format("{} line(s) not understood as {} log lines", m_unparsed.n, m_format_name)});
  }
}

void FileScanner::append_line(Txn &t, std::uint64_t number, string_view raw) const {
  if (!t.lines.empty()) {
    t.raw += '\n';
  } else {
    t.begin = m_begin;
  }
  t.end = std::max(t.end, m_end);
  t.raw.append(raw);
  t.lines.push_back(number);
  t.line_begins.push_back(m_begin);
}

void FileScanner::merge(Txn &into, Txn &&from) const {
  if (!into.date) {
    into.date = from.date;
  }
  if (into.message_id.empty()) {
    into.message_id = std::move(from.message_id);
  }
  if (into.subject.empty()) {
    into.subject = std::move(from.subject);
  }
  for (const std::string &id : from.log_ids) {
    into.add_log_id(id);
  }
  for (auto &a : from.addresses) {
    into.add_bounded(a.role, a.addr, false, m_limits.max_addresses_per_role);
  }
  for (auto &v : from.ips) {
    into.add_bounded(v.role, v.value, true, m_limits.max_addresses_per_role);
  }
}

/**
 * A transaction beyond limits.max_transaction_lines / _kib (one queue id with millions of
 * lines) is emitted as a part, and the lines after it go to the next part: memory stays
 * bounded and no line is left out (each part is an item; erase redacts the lines of each part
 * that names the subject). Also bounds all open transactions together.
 */
void FileScanner::bound_open(std::unordered_map<std::string, Txn>::iterator it,
                              std::uint64_t next_line) {
  Txn &t = it->second;
  if (t.lines.size() < m_limits.max_transaction_lines && t.raw.size() < m_limits.max_transaction_bytes) {
    if (m_open_bytes > k_open_budget_factor * m_limits.max_transaction_bytes) {
      split_all_open(next_line);
    }
    return;
  }
  m_open_bytes -= std::min(m_open_bytes, t.raw.size());
  Txn next;
  next.queue_id = t.queue_id;
  next.date = t.date;
  next.message_id = t.message_id;
  next.subject = t.subject;
  next.part = (t.part == 0 ? 1 : t.part) + 1;
  if (t.part == 0) {
    t.part = 1;
  }
  t.continues_at = next_line;
  t.budget_split = false; // split for its own size: a note of its own
  Txn done = std::move(t);
  t = std::move(next);
  emit(std::move(done));
}

/** All open transactions together exceed the budget: each is emitted as a part. */
void FileScanner::split_all_open(std::uint64_t next_line) {
  std::vector<std::string> keys;
  keys.reserve(m_open.size());
  for (const auto &[key, txn] : m_open) {
    keys.push_back(key);
  }
  // In the order of their first lines: deterministic, and the parts of neighbouring lines stay
  // together (the log index's blocks then cover short ranges of the file).
  std::sort(keys.begin(), keys.end(), [&](const std::string &a, const std::string &b) {
    const Txn &ta = m_open.at(a);
    const Txn &tb = m_open.at(b);
    return (ta.lines.empty() ? 0 : ta.lines.front()) < (tb.lines.empty() ? 0 : tb.lines.front());
  });
  bool first = true;
  for (const std::string &key : keys) {
    auto it = m_open.find(key);
    Txn done = std::move(it->second);
    m_open.erase(it);
    if (done.lines.empty()) {
      // the next part of a transaction split at a limit, which has no line yet: nothing to
      // emit (an item without lines has no locator); its number waits for its first line
      if (m_parts_pending.size() < k_max_pending_parts) {
        m_parts_pending[done.queue_id] = done.part;
      }
      continue;
    }
    if (done.part == 0) {
      done.part = 1;
    }
    done.budget_split = true;
    if (first) {
      done.note = fmt::format("{} open log transaction(s) split before line {}: together they exceeded "
                              "{} x limits.max_transaction_kib; each is indexed in parts (a queue id "
                              "that goes on later is a part of its own)",
                              keys.size(), next_line, k_open_budget_factor);
      first = false;
    }
    done.continues_at = next_line; // or later: its next line opens a new part
    if (m_parts_pending.size() < k_max_pending_parts) { // else the next part is numbered anew
      m_parts_pending[done.queue_id] = done.part + 1;
    }
    emit(std::move(done));
  }
  m_open_bytes = 0;
}

/** Adds the line with what it names to its transaction (key) or as an item of its own. */
void FileScanner::entry(LineInfo &&info, std::optional<std::int64_t> date, bool personal) {
  const std::uint64_t number = m_number;
  const string_view raw = m_raw;
  info.found.date = date;
  if (info.key.empty()) {
    flush_single();
    m_last_key.clear();
    bool named = !info.found.addresses.empty() || !info.found.ips.empty();
    if (!personal && !named) {
      return; // nothing about anyone in this line
    }
    Txn t = std::move(info.found);
    t.queue_id = fmt::format("line-{}", number);
    append_line(t, number, raw);
    m_single = std::move(t);
    return;
  }
  flush_single();
  auto [it, inserted] = m_open.try_emplace(info.key);
  Txn &t = it->second;
  if (inserted) {
    m_open_bytes += k_open_txn_overhead;
    t.queue_id = info.queue_id;
    if (auto p = m_parts_pending.find(t.queue_id); p != m_parts_pending.end()) {
      t.part = p->second; // continues a transaction split by the open-transactions budget
      m_parts_pending.erase(p);
    }
  }
  append_line(t, number, raw);
  m_open_bytes += raw.size() + 1;
  merge(t, std::move(info.found));
  m_last_key = info.key;
  if (info.closes) {
    Txn done = std::move(t);
    m_open.erase(it);
    m_open_bytes -= std::min(m_open_bytes, done.raw.size() + k_open_txn_overhead);
    m_last_key.clear();
    emit(std::move(done));
    return;
  }
  bound_open(it, number + 1);
}

void FileScanner::header() { flush_single(); }

void FileScanner::unparsed() { count(m_unparsed, m_number); }

/** A continuation line (exim rejectlog header dump) joins the entry before it. */
bool FileScanner::continuation(string_view view) {
  const std::uint64_t number = m_number;
  const string_view raw = m_raw;
  if (m_single) {
    append_line(*m_single, number, raw);
    extract_common(view, *m_single);
    return true;
  }
  if (!m_last_key.empty()) {
    auto it = m_open.find(m_last_key);
    if (it != m_open.end()) {
      append_line(it->second, number, raw);
      m_open_bytes += raw.size() + 1;
      extract_common(view, it->second);
      bound_open(it, number + 1);
      return true;
    }
  }
  return false;
}

void FileScanner::flush_single() {
  if (m_single) {
    Txn t = std::move(*m_single);
    m_single.reset();
    emit(std::move(t));
  }
}

namespace {

/** Blanks every occurrence of `token` in `text`; with `whole`, only where no letter or digit
 *  touches it (a queue id inside a word is part of that word). */
void blank(std::string &text, std::string_view token, bool whole) {
  for (std::size_t p = text.find(token); p != std::string::npos;) {
    const std::size_t end = p + token.size();
    if (whole && ((p > 0 && is_alnum(text[p - 1])) || (end < text.size() && is_alnum(text[end])))) {
      p = text.find(token, p + 1);
      continue;
    }
    std::fill_n(text.begin() + static_cast<std::ptrdiff_t>(p), token.size(), ' ');
    p = text.find(token, end);
  }
}

/**
 * The text of a transaction's lines as identities are looked for in it, with what names nobody
 * blanked wherever it appears: the transaction's Message-ID (message-id=<...>, Exim's id=, an
 * Exchange column), its queue id, and the log ids its parser recognised (Txn::log_ids). A
 * Message-ID looks like an address, and the mail side leaves the Message-ID field out of the
 * address scan too (connectors/mime); a queue id or amavis's "(4983-18)" is a run of digits a
 * phone-number scan would weigh, and in some regions accept. The item's bytes and digest keep
 * the lines as they are.
 */
std::string identity_text(std::string_view raw, std::string_view message_id,
                          std::string_view queue_id, const std::vector<std::string> &log_ids) {
  std::string text = sanitize_utf8(raw);
  if (message_id.size() >= 3) {
    blank(text, message_id, false);
  }
  if (queue_id.size() >= 5) {
    blank(text, queue_id, true);
  }
  for (const std::string &id : log_ids) {
    blank(text, id, false);
  }
  return text;
}

} // namespace

void FileScanner::emit(Txn &&t) {
  if (m_log_sink != nullptr && !t.lines.empty() && !m_log_sink->wants(t.lines.front())) {
    return;
  }
  Item item;
  item.locator.source = m_source.name;
  item.locator.store = StoreKind::maillog;
  item.locator.path = m_path;
  item.locator.queue_id = std::move(t.queue_id);
  item.locator.lines = std::move(t.lines);
  item.sha256 = core::sha256_hex(t.raw);
  item.message_id = std::move(t.message_id);
  item.date = t.date;
  item.subject = std::move(t.subject);
  item.addresses = std::move(t.addresses);
  item.ips = std::move(t.ips);
  item.texts.push_back(RawText{Role::body, identity_text(t.raw, item.message_id, item.locator.queue_id, t.log_ids)});
  if (!t.note.empty()) {
    item.bounded.push_back(std::move(t.note));
  }
  if (t.part > 0 && !t.budget_split) {
    item.bounded.push_back(
        t.continues_at > 0
            ? fmt::format("log transaction {} split at limits.max_transaction_lines/_kib: part {} "
                          "(lines {}-{}); the next part starts at line {} or later",
                          item.locator.queue_id, t.part, item.locator.lines.front(),
                          item.locator.lines.back(), t.continues_at)
            : fmt::format("log transaction {} split at limits.max_transaction_lines/_kib: part {} "
                          "(lines {}-{}), the last",
                          item.locator.queue_id, t.part, item.locator.lines.front(),
                          item.locator.lines.back()));
  }
  if (t.dropped > 0) {
    item.truncated.push_back(fmt::format("{} address(es)/IP(s) beyond limits.max_addresses_per_role ({}) per "
                                         "role not indexed",
                                         t.dropped, m_limits.max_addresses_per_role));
  }
  if (m_log_sink != nullptr) {
    m_log_sink->log_item(std::move(item), LogSpan{t.begin, t.end, std::move(t.line_begins)});
  } else {
    m_sink.item(std::move(item));
  }
}

} // namespace maildsar::connectors::maillog
