// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// The maillog harnesses, one per log format (connectors/maillog/<format>.cpp). Each feeds its
// format twice:
//  * every line of the bytes straight to the format's parser (a syslog program's `parse`,
//    whether or not it claims the line, or a file format's FileParser), checking what a LineInfo
//    promises: a key is "<format>:<queue id>" with a non-empty queue id, identities are
//    non-empty valid UTF-8 with a log role, IPs are canonical;
//  * the bytes as one log file (plain, or gzip when they start with the gzip magic) that the
//    maillog connector, configured with the given source format, scans from the start: the
//    syslog reader's dispatch to all programs, the transaction assembly, continuation lines,
//    gzip; every item names lines of the file;
//  * the same file read as the query side reads a block for an address (a range scan with
//    needles, connectors/maillog/range_scanner.*): when the whole scan cut or split nothing, every
//    transaction read from the selected lines is exactly the one the whole scan gives;
//  * (a plain file) read only in parts (LogRange::parts) that are a transaction's lines, as
//    `find` reads the parts of a block: no item holds a line outside them, and that transaction,
//    when it holds the needle, is exactly the one the whole scan gives.
#include "connectors/connector.hpp"
#include "connectors/log_range.hpp"
#include "connectors/maillog.hpp"
#include "connectors/maillog/format.hpp"
#include "core/config.hpp"
#include "core/fs.hpp"
#include "fuzz/fuzz_support.hpp"
#include "tests/log_needle_sink.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <tuple>
#include <vector>
#include <optional>
#include <string>
#include <string_view>

namespace maildsar::fuzz {

/** What a log block promises of a transaction (index::item_digest's fields). */
inline auto promised(const connectors::Item &item) {
  return std::make_tuple(item.locator.queue_id, item.locator.lines, item.sha256, item.message_id, item.date,
                         item.truncated);
}

inline void check_selected_lines(const core::SourceConfig &source, const std::string &path,
                                 const std::vector<connectors::Item> &whole, const std::string &needle) {
  test::NeedleSink some({needle});
  connectors::LogRange all;
  (void)connectors::scan_log_range(source, path, all, some);
  bool plain = true;
  std::map<std::uint64_t, const connectors::Item *> by_first;
  for (const connectors::Item &item : whole) {
    plain = plain && item.truncated.empty() && item.bounded.empty();
    if (!item.locator.lines.empty()) {
      by_first.emplace(item.locator.lines.front(), &item);
    }
  }
  for (const connectors::Item &item : some.items) {
    require(!item.locator.lines.empty(), "a log item names its lines");
    if (some.was_filtered && plain) {
      auto it = by_first.find(item.locator.lines.front());
      require(it != by_first.end() && promised(*it->second) == promised(item),
              "a transaction read from the selected lines is the one a whole read gives");
    }
  }
}

inline void check_parts(const core::SourceConfig &source, const std::string &path, std::string_view content,
                        const std::string &needle) {
  test::NeedleSink whole({});
  if (!connectors::scan_log_range(source, path, connectors::LogRange{}, whole)) {
    return;
  }
  const bool plain = std::ranges::all_of(
      whole.items, [](const connectors::Item &item) { return item.truncated.empty() && item.bounded.empty(); });
  std::size_t tried = 0;
  for (std::size_t t = 0; t < whole.items.size() && tried < 3; ++t) {
    const connectors::Item &txn = whole.items[t];
    const std::vector<std::uint64_t> &begins = whole.line_begins[t];
    if (txn.locator.lines.empty() || begins.size() != txn.locator.lines.size()) {
      continue;
    }
    ++tried;
    connectors::LogRange range;
    for (std::size_t i = 0; i < begins.size(); ++i) {
      require(begins[i] < content.size(), "a line begins inside the file");
      require(i == 0 || begins[i] > begins[i - 1], "a transaction's lines ascend");
      const std::size_t nl = content.find('\n', begins[i]);
      const std::uint64_t end = nl == std::string_view::npos ? content.size() : nl + 1;
      if (!range.parts.empty() && range.parts.back().to == begins[i]) {
        range.parts.back().to = end;
      } else {
        range.parts.push_back(connectors::LogPart{begins[i], end, txn.locator.lines[i] - 1});
      }
    }
    range.from = range.parts.front().from;
    range.to = range.parts.back().to;
    range.lines_before = range.parts.front().lines_before;
    test::NeedleSink some({needle});
    require(connectors::scan_log_range(source, path, range, some).has_value(), "a range in parts is read");
    bool got = false;
    for (const connectors::Item &item : some.items) {
      for (std::uint64_t line : item.locator.lines) {
        require(std::ranges::find(txn.locator.lines, line) != txn.locator.lines.end(),
                "a range read in parts gives only the parts' lines");
      }
      if (item.locator.lines.front() == txn.locator.lines.front()) {
        got = true;
        if (some.was_filtered && plain) {
          require(promised(item) == promised(txn), "a transaction read in its parts is the one a whole read gives");
        }
      }
    }
    (void)got;
  }
}

inline void scan_log(std::string_view format, std::string_view bytes) {
  static const ScratchDir scratch;
  core::SourceConfig source;
  source.name = "logs";
  source.type = "maillog";
  source.format = std::string(format);
  source.path = scratch.path() + "/mail.log";
  source.root = scratch.path();
  auto connector = connectors::make_maillog_connector(source);
  require(connector.has_value(), "the maillog formats are known");

  connectors::FileEntry file;
  file.path = scratch.write("mail.log", bytes);
  auto st = core::lstat_file(file.path);
  require(st.has_value(), "lstat of the scratch log");
  file.stat = *st;
  connectors::ItemCollector sink;
  (void)(*connector)->scan(file, 0, sink);
  for (const connectors::Item &item : sink.items) {
    require(!item.locator.lines.empty(), "a log item names its lines");
    for (std::uint64_t line : item.locator.lines) {
      require(line >= 1 && line <= bytes.size() + 1, "a log item's lines are lines of the file");
    }
  }
  check_selected_lines(source, file.path, sink.items, "a");
  check_selected_lines(source, file.path, sink.items, "alice");
  if (!bytes.starts_with("\x1f\x8b")) {
    check_parts(source, file.path, bytes, "a");
  }
}

/** What the parsers promise about one line's LineInfo. */
inline void check_line_info(const connectors::maillog::LineInfo &info, std::string_view prefix) {
  using connectors::Role;
  namespace ml = connectors::maillog;
  if (info.key.empty()) {
    require(info.queue_id.empty(), "a queue id comes with a key");
    require(!info.closes, "only a keyed line closes a transaction");
  } else {
    require(!info.queue_id.empty(), "a key comes with a queue id");
    require(ml::starts_with(info.key, prefix), "a key starts with its format's name");
  }
  require(info.found.lines.empty() && info.found.raw.empty(), "a parser adds no lines");
  for (const auto &a : info.found.addresses) {
    require(!a.addr.empty(), "an address found is not empty");
    require(ml::sanitize_utf8(a.addr) == a.addr, "an address found is valid UTF-8");
    require(a.role == Role::log_from || a.role == Role::log_to || a.role == Role::log_user,
            "an address found has a log role");
  }
  for (const auto &v : info.found.ips) {
    require(v.role == Role::log_client, "an IP found is a log client");
    auto again = ml::as_ip(v.value);
    require(again.has_value() && *again == v.value, "an IP found is canonical");
  }
  require(ml::sanitize_utf8(info.found.message_id) == info.found.message_id,
          "a message id found is valid UTF-8");
}

/** Each line of `bytes` (split at '\n') through the syslog program `name`'s parser. */
inline void parse_syslog_lines(std::string_view name, std::string_view bytes) {
  namespace ml = connectors::maillog;
  const ml::SyslogProgram *program = nullptr;
  for (const ml::SyslogProgram *p : ml::syslog_programs()) {
    if (p->name == name) {
      program = p;
    }
  }
  require(program != nullptr, "the syslog program is registered");
  const std::string prefix = std::string(name) + ":";
  constexpr std::int64_t k_mtime = 1700000000; // 2023-11-14: dates lines without a year
  while (!bytes.empty()) {
    std::size_t nl = bytes.find('\n');
    std::string_view line = bytes.substr(0, nl);
    bytes = nl == std::string_view::npos ? std::string_view() : bytes.substr(nl + 1);
    ml::Prefix pre = ml::parse_prefix(line, k_mtime);
    (void)program->claims(pre);
    ml::LineInfo info;
    program->parse(pre, line, info);
    check_line_info(info, prefix);
  }
}

/** Records what a FileParser reports, checking each entry. */
class CheckingSink final : public connectors::maillog::LineSink {
public:
  explicit CheckingSink(std::string_view prefix) : m_prefix(prefix) {}
  void entry(connectors::maillog::LineInfo &&info, std::optional<std::int64_t> /*date*/,
             bool /*personal*/) override {
    // a file format's keys: "<format>:" or "<format>-<kind>:" (exchange-internal:)
    check_line_info(info, m_prefix);
  }
  bool continuation(std::string_view /*line*/) override { return false; }
  void header() override {}
  void unparsed() override {}

private:
  std::string m_prefix;
};

/** Each line of `bytes` through a fresh parser of the file format `name`. */
inline void parse_file_lines(std::string_view name, std::string_view bytes) {
  namespace ml = connectors::maillog;
  const ml::FileFormat *format = nullptr;
  for (const ml::FileFormat *f : ml::file_formats()) {
    if (f->name == name) {
      format = f;
    }
  }
  require(format != nullptr, "the file format is registered");
  std::unique_ptr<ml::FileParser> parser = format->open();
  CheckingSink sink(name);
  while (!bytes.empty()) {
    std::size_t nl = bytes.find('\n');
    std::string_view line = bytes.substr(0, nl);
    bytes = nl == std::string_view::npos ? std::string_view() : bytes.substr(nl + 1);
    if (!ml::trim(line).empty()) { // FileParser::line: never an empty or blank line
      (void)format->recognises(line);
      parser->line(line, sink);
    }
  }
}

} // namespace maildsar::fuzz
