// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/maillog/range_scanner.hpp"

#include "connectors/maillog/text.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <unordered_set>
#include <utility>

namespace maildsar::connectors::maillog {

using std::string_view;

namespace {

/** What the format's parser makes of a line: its transaction key only. */
class KeyProbe final : public LineSink {
public:
  void entry(LineInfo &&info, std::optional<std::int64_t> /*date*/, bool /*personal*/) override {
    key = std::move(info.key);
    seen = true;
  }
  bool continuation(string_view /*line*/) override { return false; }
  void header() override {}
  void unparsed() override {}

  std::string key;
  bool seen = false;
};

/** A line as FileScanner::line sees it (no CR, no BOM on the first line). */
string_view view_of(string_view raw, bool first) {
  if (!raw.empty() && raw.back() == '\r') {
    raw.remove_suffix(1);
  }
  if (first && raw.starts_with("\xEF\xBB\xBF")) {
    raw.remove_prefix(3);
  }
  return raw;
}

/** The offset of the first byte >= 0x80 at or after `from`, or npos (eight bytes at a time). */
std::size_t find_high_byte(string_view text, std::size_t from) {
  constexpr std::uint64_t k_high = 0x8080808080808080ULL;
  std::size_t at = from;
  for (; at + 8 <= text.size(); at += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, text.data() + at, 8);
    if ((word & k_high) != 0) {
      break;
    }
  }
  for (; at < text.size(); ++at) {
    if (static_cast<unsigned char>(text[at]) >= 0x80U) {
      return at;
    }
  }
  return string_view::npos;
}

} // namespace

RangeScanner::RangeScanner(const core::SourceConfig &source, const SourceFormat &format,
                           std::string path, std::int64_t mtime, ItemSink &sink)
    : m_format(format), m_mtime(mtime), m_log_sink(dynamic_cast<LogSink *>(&sink)),
      m_scanner(source, format, std::move(path), mtime, sink) {
  if (m_log_sink != nullptr && format.keyed_lines()) {
    const std::vector<std::string> *needles = m_log_sink->needles();
    if (needles != nullptr && !needles->empty() &&
        std::ranges::none_of(*needles, [](const std::string &n) { return n.empty(); })) {
      m_needles = needles;
    }
  }
}

void RangeScanner::line(std::uint64_t number, string_view raw, std::uint64_t begin, std::uint64_t end) {
  if (m_needles == nullptr) {
    m_scanner.line(number, raw, begin, end);
    return;
  }
  if (m_text.size() + raw.size() + 1 > k_max_held_bytes) {
    pass_through();
    m_scanner.line(number, raw, begin, end);
    return;
  }
  m_held.push_back(Held{number, begin, end, m_text.size(), raw.size()});
  m_text.append(raw);
  m_text.push_back('\n'); // a needle never spans two lines
}

void RangeScanner::pass_through() {
  for (const Held &h : m_held) {
    m_scanner.line(h.number, text_of(h), h.begin, h.end);
  }
  m_held.clear();
  m_text.clear();
  m_text.shrink_to_fit();
  m_needles = nullptr;
}

std::vector<bool> RangeScanner::selected() const {
  std::vector<bool> take(m_held.size(), false);
  const string_view text(m_text);
  auto line_at = [&](std::size_t offset) {
    auto it = std::upper_bound(m_held.begin(), m_held.end(), offset,
                               [](std::size_t o, const Held &h) { return o < h.at; });
    return static_cast<std::size_t>(it - m_held.begin()) - 1;
  };
  // Marks the line of each place `next(from)` finds (npos: no more), looking on after its end.
  auto mark_lines = [&](std::vector<bool> &marks, auto &&next) {
    for (std::size_t at = next(0); at != string_view::npos;) {
      const std::size_t l = line_at(at);
      marks[l] = true;
      at = next(m_held[l].at + m_held[l].size + 1);
    }
  };
  std::vector<bool> needle(m_held.size(), false);
  for (const std::string &n : *m_needles) {
    const NoCaseSearch search(n);
    mark_lines(needle, [&](std::size_t from) { return search.find_word(text, from); });
  }
  // lines with a byte >= 0x80 (case folding of other scripts may give ASCII)
  mark_lines(needle, [&](std::size_t from) { return find_high_byte(text, from); });
  // the keys of the needle lines' transactions, as written in their lines
  std::unique_ptr<FileParser> parser = m_format.open(m_mtime);
  auto key_of = [&](std::size_t i) -> std::string {
    const string_view view = view_of(text_of(m_held[i]), m_held[i].number == 1);
    if (trim(view).empty() || is_binary_line(view)) {
      return {}; // the scanner skips it
    }
    KeyProbe probe;
    parser->line(view, probe);
    return probe.seen ? std::move(probe.key) : std::string();
  };
  std::unordered_set<std::string> keys;
  std::vector<std::string> literals;
  for (std::size_t i = 0; i < m_held.size(); ++i) {
    if (!needle[i]) {
      continue;
    }
    take[i] = true;
    std::string key = key_of(i);
    if (key.empty()) {
      continue; // a line of its own (or none)
    }
    string_view literal = key;
    if (auto colon = literal.find(':'); colon != string_view::npos) {
      literal.remove_prefix(colon + 1); // "postfix:QID" -> "QID", as the line writes it
    }
    if (!literal.empty() && std::ranges::find(literals, literal) == literals.end()) {
      literals.emplace_back(literal);
    }
    keys.insert(std::move(key));
  }
  // the other lines of those transactions: each holds its key as written; a line that holds it
  // but is another transaction's (a queue id quoted in a bounce) stays out, so that no
  // transaction is read in part
  std::vector<bool> has_literal(m_held.size(), false);
  for (const std::string &k : literals) {
    mark_lines(has_literal, [&](std::size_t from) { return text.find(k, from); });
  }
  for (std::size_t i = 0; i < m_held.size(); ++i) {
    if (has_literal[i] && !take[i] && keys.contains(key_of(i))) {
      take[i] = true;
    }
  }
  return take;
}

void RangeScanner::finish() {
  if (m_needles != nullptr) {
    const std::vector<bool> take = selected();
    m_log_sink->filtered();
    for (std::size_t i = 0; i < m_held.size(); ++i) {
      if (take[i]) {
        m_scanner.line(m_held[i].number, text_of(m_held[i]), m_held[i].begin, m_held[i].end);
      }
    }
    m_held.clear();
    m_text.clear();
  }
  m_scanner.finish();
}

} // namespace maildsar::connectors::maillog

namespace maildsar::connectors {

bool holds_needle(std::string_view text, std::span<const std::string> needles) {
  if (maillog::find_high_byte(text, 0) != std::string_view::npos) {
    return true;
  }
  return std::ranges::any_of(needles, [&](const std::string &needle) {
    return maillog::NoCaseSearch(needle).find_word(text, 0) != std::string_view::npos;
  });
}

} // namespace maildsar::connectors
