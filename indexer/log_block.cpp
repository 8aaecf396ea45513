// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/log_block.hpp"

#include "core/hash.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

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
    return b;
  } catch (...) {
    return std::unexpected(core::error_from_current_exception("index log block data: "));
  }
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

void BlockCollector::log_item(connectors::Item &&item, connectors::LogSpan /*span*/) {
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
}

bool BlockCollector::complete() const {
  if (m_filtered) {
    return !m_mismatch && m_lines_before == m_block.line;
  }
  return items.size() == m_block.first_lines.size() && m_digest.hex() == m_block.digest;
}

} // namespace maildsar::index
