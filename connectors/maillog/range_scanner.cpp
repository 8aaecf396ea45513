// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/maillog/range_scanner.hpp"

#include "connectors/maillog/text.hpp"

#include <algorithm>
#include <functional>
#include <memory>
#include <unordered_set>
#include <utility>

namespace maildsar::connectors::maillog {

using std::string_view;

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

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
  std::vector<bool> needle(m_held.size(), false);
  auto line_at = [&](std::size_t offset) {
    auto it = std::upper_bound(m_held.begin(), m_held.end(), offset,
                               [](std::size_t o, const Held &h) { return o < h.at; });
    return static_cast<std::size_t>(it - m_held.begin()) - 1;
  };
  // lines with a needle, ASCII case-insensitively
  for (const std::string &n : *m_needles) {
    std::boyer_moore_horspool_searcher search(n.begin(), n.end(),
                                              [](char c) { return std::hash<char>{}(lower(c)); },
                                              [](char a, char b) { return lower(a) == lower(b); });
    for (auto it = m_text.begin(); it != m_text.end();) {
      auto [hit, hit_end] = search(it, m_text.end());
      if (hit == m_text.end()) {
        break;
      }
      const std::size_t l = line_at(static_cast<std::size_t>(hit - m_text.begin()));
      needle[l] = true;
      it = m_text.begin() + static_cast<std::ptrdiff_t>(m_held[l].at + m_held[l].size);
    }
  }
  // lines with a byte >= 0x80 (case folding of other scripts may give ASCII)
  for (std::size_t i = 0; i < m_held.size(); ++i) {
    if (!needle[i] && std::ranges::any_of(text_of(m_held[i]),
                                          [](char c) { return static_cast<unsigned char>(c) >= 0x80U; })) {
      needle[i] = true;
    }
  }
  // the keys of the needle lines' transactions, as written in their lines
  std::vector<std::string> keys;
  std::unique_ptr<FileParser> parser = m_format.open(m_mtime);
  for (std::size_t i = 0; i < m_held.size(); ++i) {
    if (!needle[i]) {
      continue;
    }
    const string_view view = view_of(text_of(m_held[i]), m_held[i].number == 1);
    if (trim(view).empty() || is_binary_line(view)) {
      continue;
    }
    KeyProbe probe;
    parser->line(view, probe);
    if (!probe.seen || probe.key.empty()) {
      continue; // a line of its own (or none)
    }
    string_view literal = probe.key;
    if (auto colon = literal.find(':'); colon != string_view::npos) {
      literal.remove_prefix(colon + 1); // "postfix:QID" -> "QID", as the line writes it
    }
    if (!literal.empty() && std::ranges::find(keys, literal) == keys.end()) {
      keys.emplace_back(literal);
    }
  }
  std::vector<bool> out = needle;
  for (const std::string &k : keys) {
    for (std::size_t i = 0; i < m_held.size(); ++i) {
      if (!out[i] && text_of(m_held[i]).find(k) != string_view::npos) {
        out[i] = true;
      }
    }
  }
  return out;
}

void RangeScanner::finish() {
  if (m_needles != nullptr) {
    const std::vector<bool> take = selected();
    const auto first = std::ranges::find(take, true);
    if (first != take.end() && first != take.begin() &&
        view_of(text_of(m_held[static_cast<std::size_t>(first - take.begin())]), false).starts_with("\xEF\xBB\xBF")) {
      pass_through(); // the scanner would take this line's BOM for the file's
    } else {
      m_log_sink->filtered();
      for (std::size_t i = 0; i < m_held.size(); ++i) {
        if (take[i]) {
          m_scanner.line(m_held[i].number, text_of(m_held[i]), m_held[i].begin, m_held[i].end);
        }
      }
      m_held.clear();
      m_text.clear();
    }
  }
  m_scanner.finish();
}

} // namespace maildsar::connectors::maillog
