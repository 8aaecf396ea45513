// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/log_block.hpp"

#include "core/hash.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

namespace maildsar::index {

using nlohmann::json;

std::string LogBlock::key() const {
  return fmt::format("{}##block@{}", path, first_lines.empty() ? 0 : first_lines.front());
}

std::string log_block_data(const LogBlock &b) {
  // First lines as deltas: small numbers, which Xapian's compression of the data packs well.
  std::vector<std::uint64_t> deltas;
  deltas.reserve(b.first_lines.size());
  std::uint64_t prev = 0;
  for (std::uint64_t l : b.first_lines) {
    deltas.push_back(l - prev);
    prev = l;
  }
  json j{{"source", b.source},     {"path", b.path},         {"seg_from", b.seg_from},
         {"seg_to", b.seg_to},     {"seg_line", b.seg_line}, {"mtime_ns", b.mtime_ns},
         {"from", b.from},         {"to", b.to},             {"line", b.line},
         {"first", std::move(deltas)}, {"digest", b.digest}};
  if (b.truncated) {
    j["truncated"] = true;
  }
  if (!b.checks.empty()) {
    j["checks"] = b.checks;
  }
  if (b.parts.size() == k_block_parts) {
    // Where parts 1.. begin, as offsets from `from` and lines from `line`: small numbers.
    std::vector<std::uint64_t> bounds;
    for (std::size_t k = 1; k < k_block_parts; ++k) {
      bounds.push_back(b.parts[k].from - b.from);
      bounds.push_back(b.parts[k].lines_before - b.line);
    }
    j["parts"] = std::move(bounds);
  }
  return json{{"log_block", std::move(j)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_log_block_data(std::string_view data) { return data.starts_with("{\"log_block\":"); }

core::Result<LogBlock> parse_log_block(std::string_view data) {
  try {
    json all = json::parse(data);
    const json &j = all.at("log_block");
    LogBlock b;
    b.source = j.at("source").get<std::string>();
    b.path = j.at("path").get<std::string>();
    b.seg_from = j.at("seg_from").get<std::uint64_t>();
    b.seg_to = j.at("seg_to").get<std::uint64_t>();
    b.seg_line = j.at("seg_line").get<std::uint64_t>();
    b.mtime_ns = j.at("mtime_ns").get<std::int64_t>();
    b.from = j.at("from").get<std::uint64_t>();
    b.to = j.at("to").get<std::uint64_t>();
    b.line = j.at("line").get<std::uint64_t>();
    std::uint64_t prev = 0;
    for (const json &d : j.at("first")) {
      prev += d.get<std::uint64_t>();
      b.first_lines.push_back(prev);
    }
    b.digest = j.at("digest").get<std::string>();
    b.truncated = j.value("truncated", false);
    b.checks = j.value("checks", std::string());
    if (!b.checks.empty() && b.checks.size() != b.first_lines.size() * k_txn_check_hex) {
      return core::fail(core::ErrorCode::data, "index log block data: checks do not fit the transactions");
    }
    if (b.first_lines.empty() || b.from > b.to || b.seg_from > b.from) {
      return core::fail(core::ErrorCode::data, "index log block data: inconsistent ranges");
    }
    if (j.contains("parts")) {
      const json &bounds = j.at("parts");
      if (!bounds.is_array() || bounds.size() != 2 * (k_block_parts - 1)) {
        return core::fail(core::ErrorCode::data, "index log block data: parts do not fit the block");
      }
      b.parts.push_back(connectors::LogPart{b.from, b.to, b.line});
      for (std::size_t k = 1; k < k_block_parts; ++k) {
        const std::uint64_t at = bounds[2 * (k - 1)].get<std::uint64_t>();
        const std::uint64_t lines = bounds[2 * (k - 1) + 1].get<std::uint64_t>();
        const connectors::LogPart &before = b.parts.back();
        if (at > b.to - b.from || b.from + at < before.from || lines > std::numeric_limits<std::uint64_t>::max() - b.line ||
            b.line + lines < before.lines_before) {
          return core::fail(core::ErrorCode::data, "index log block data: parts do not fit the block");
        }
        b.parts.back().to = b.from + at;
        b.parts.push_back(connectors::LogPart{b.from + at, b.to, b.line + lines});
      }
    }
    return b;
  } catch (...) {
    return std::unexpected(core::error_from_current_exception("index log block data: "));
  }
}

std::vector<std::uint32_t> divide_block(LogBlock &block, std::span<const TxnLines> txns) {
  block.parts.clear();
  std::vector<std::uint32_t> masks(txns.size(), k_all_parts);
  if (block.to <= block.from) {
    return masks;
  }
  const std::uint64_t width = (block.to - block.from + k_block_parts - 1) / k_block_parts;
  auto part_of = [&](std::uint64_t begin) {
    return static_cast<std::size_t>(std::min<std::uint64_t>((begin - block.from) / width, k_block_parts - 1));
  };
  // Each part's first line (offset, number) and the block's last line number.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> first(k_block_parts, {std::numeric_limits<std::uint64_t>::max(), 0});
  std::uint64_t last_line = block.line;
  bool known = false;
  for (std::size_t t = 0; t < txns.size(); ++t) {
    const TxnLines &txn = txns[t];
    for (std::uint64_t l : txn.lines) {
      last_line = std::max(last_line, l);
    }
    if (txn.begins.size() != txn.lines.size() || txn.lines.empty() ||
        std::ranges::any_of(txn.begins, [&](std::uint64_t b) { return b < block.from || b >= block.to; })) {
      continue; // read wherever it lies: every part
    }
    known = true;
    std::uint32_t mask = 0;
    for (std::size_t i = 0; i < txn.lines.size(); ++i) {
      const std::size_t k = part_of(txn.begins[i]);
      mask |= 1U << k;
      first[k] = std::min(first[k], std::pair{txn.begins[i], txn.lines[i] - 1});
    }
    masks[t] = mask;
  }
  if (!known) {
    std::ranges::fill(masks, k_all_parts);
    return masks;
  }
  // A part without a line of the block begins where the next one does (at `to`: after the last).
  std::pair<std::uint64_t, std::uint64_t> next{block.to, last_line};
  std::vector<connectors::LogPart> parts(k_block_parts);
  for (std::size_t k = k_block_parts; k-- > 0;) {
    if (first[k].first != std::numeric_limits<std::uint64_t>::max()) {
      next = first[k];
    }
    parts[k].from = k == 0 ? block.from : next.first;
    parts[k].lines_before = k == 0 ? block.line : next.second;
  }
  for (std::size_t k = 0; k < k_block_parts; ++k) {
    parts[k].to = k + 1 < k_block_parts ? parts[k + 1].from : block.to;
  }
  block.parts = std::move(parts);
  return masks;
}

std::vector<connectors::LogPart> parts_to_read(const LogBlock &block, std::uint32_t mask) {
  std::vector<connectors::LogPart> out;
  if (mask == 0 || (mask & ~k_all_parts) != 0 || block.parts.size() != k_block_parts) {
    return out;
  }
  for (std::size_t k = 0; k < k_block_parts; ++k) {
    const connectors::LogPart &p = block.parts[k];
    if ((mask & (1U << k)) == 0 || p.from == p.to) {
      continue;
    }
    if (!out.empty() && out.back().to == p.from) {
      out.back().to = p.to;
    } else {
      out.push_back(p);
    }
  }
  return out;
}

std::string item_digest(const connectors::Item &item) {
  std::string fields = item.locator.queue_id; // not the path: a rotated log keeps its blocks
  for (std::uint64_t l : item.locator.lines) {
    fields += fmt::format(",{}", l);
  }
  fields += '\n' + item.sha256 + '\n' + item.message_id + '\n' +
            (item.date ? fmt::format("{}", *item.date) : std::string("-")) + '\n';
  for (const std::string &t : item.truncated) {
    fields += t + '\n';
  }
  return core::sha256_hex(fields);
}

void BlockDigest::add(const connectors::Item &item) {
  m_items.emplace_back(item.locator.lines.empty() ? 0 : item.locator.lines.front(), item_digest(item));
}

std::string BlockDigest::checks() const {
  auto sorted = m_items;
  std::sort(sorted.begin(), sorted.end());
  std::string out;
  out.reserve(sorted.size() * k_txn_check_hex);
  for (const auto &[line, h] : sorted) {
    out.append(h, 0, k_txn_check_hex);
  }
  return out;
}

std::string BlockDigest::hex() const {
  auto sorted = m_items;
  std::sort(sorted.begin(), sorted.end());
  std::string all;
  for (const auto &[line, h] : sorted) {
    all += h;
  }
  return core::sha256_hex(all);
}

bool BlockCollector::wants(std::uint64_t first_line) const {
  // else another block's transaction, or a part of one that began before the range
  return std::binary_search(m_block.first_lines.begin(), m_block.first_lines.end(), first_line);
}

void BlockCollector::log_item(connectors::Item &&item, connectors::LogSpan span) {
  if (item.locator.lines.empty() || !wants(item.locator.lines.front())) {
    return;
  }
  if (m_filtered) {
    const auto at = static_cast<std::size_t>(
        std::lower_bound(m_block.first_lines.begin(), m_block.first_lines.end(), item.locator.lines.front()) -
        m_block.first_lines.begin());
    const std::string digest = item_digest(item);
    if (std::string_view(digest).substr(0, k_txn_check_hex) !=
        std::string_view(m_block.checks).substr(at * k_txn_check_hex, k_txn_check_hex)) {
      m_mismatch = true; // not the transaction indexed: the block is read whole again
    }
  } else {
    m_digest.add(item);
  }
  items.push_back(std::move(item));
  line_begins.push_back(std::move(span.line_begins));
}

bool BlockCollector::complete() const {
  if (m_filtered) {
    return !m_mismatch && m_lines_before == m_expect_before;
  }
  return items.size() == m_block.first_lines.size() && m_digest.hex() == m_block.digest;
}

} // namespace maildsar::index
