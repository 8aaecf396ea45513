// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/log_block.hpp"

#include "core/hash.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <optional>

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

namespace {

/**
 * The block data read with nlohmann's SAX interface: `find` parses hundreds of blocks per
 * query, and building the DOM of each (an object per block, a value per first line) was most of
 * that. Strict: every field of the type log_block_data() writes (a later duplicate wins, as in
 * a DOM), anything else under "log_block" or beside it skipped whole.
 */
/** The fields of the block data (log_block_data). */
enum class Key { source, path, seg_from, seg_to, seg_line, mtime_ns, from, to, line, first, digest, truncated, checks, parts, other };
constexpr unsigned bit(Key k) { return 1U << static_cast<unsigned>(k); }
/** The fields every block has. */
constexpr unsigned k_required = bit(Key::source) | bit(Key::path) | bit(Key::seg_from) | bit(Key::seg_to) |
                                bit(Key::seg_line) | bit(Key::mtime_ns) | bit(Key::from) | bit(Key::to) |
                                bit(Key::line) | bit(Key::first) | bit(Key::digest);

Key key_of(std::string_view name) {
  static constexpr std::pair<std::string_view, Key> k_keys[] = {
      {"source", Key::source},     {"path", Key::path},         {"seg_from", Key::seg_from},
      {"seg_to", Key::seg_to},     {"seg_line", Key::seg_line}, {"mtime_ns", Key::mtime_ns},
      {"from", Key::from},         {"to", Key::to},             {"line", Key::line},
      {"first", Key::first},       {"digest", Key::digest},     {"truncated", Key::truncated},
      {"checks", Key::checks},     {"parts", Key::parts}};
  for (const auto &[text, key] : k_keys) {
    if (text == name) {
      return key;
    }
  }
  return Key::other;
}

class BlockReader final : public nlohmann::json_sax<json> {
public:
  LogBlock block;
  std::vector<std::uint64_t> first;
  std::vector<std::uint64_t> parts;
  bool has_parts = false;
  bool saw_block = false;
  std::string problem; // why the data was refused ("" while it is not)

  /** Whether every field that is not optional was there. */
  [[nodiscard]] bool complete() const { return (m_seen & k_required) == k_required; }

  bool null() override { return scalar() && (m_skipped || wrong_type()); }
  bool boolean(bool value) override {
    if (!scalar()) {
      return false;
    }
    if (m_skipped) {
      return true;
    }
    if (m_depth == 2 && m_key == Key::truncated) {
      block.truncated = value;
      return true;
    }
    return wrong_type();
  }
  bool number_integer(number_integer_t value) override {
    if (value >= 0) {
      return number_unsigned(static_cast<number_unsigned_t>(value));
    }
    if (!scalar()) {
      return false;
    }
    if (m_skipped) {
      return true;
    }
    if (m_depth == 2 && m_key == Key::mtime_ns) {
      block.mtime_ns = value;
      m_seen |= bit(Key::mtime_ns);
      return true;
    }
    return wrong_type();
  }
  bool number_unsigned(number_unsigned_t value) override {
    if (!scalar()) {
      return false;
    }
    if (m_skipped) {
      return true;
    }
    if (m_depth == 3) { // an element of "first" or "parts"
      (m_key == Key::first ? first : parts).push_back(value);
      return true;
    }
    if (m_depth != 2) {
      return wrong_type();
    }
    std::uint64_t *field = nullptr;
    switch (m_key) {
    case Key::seg_from: field = &block.seg_from; break;
    case Key::seg_to: field = &block.seg_to; break;
    case Key::seg_line: field = &block.seg_line; break;
    case Key::from: field = &block.from; break;
    case Key::to: field = &block.to; break;
    case Key::line: field = &block.line; break;
    case Key::mtime_ns:
      if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return wrong_type();
      }
      block.mtime_ns = static_cast<std::int64_t>(value);
      m_seen |= bit(Key::mtime_ns);
      return true;
    default: return wrong_type();
    }
    *field = value;
    m_seen |= bit(m_key);
    return true;
  }
  bool number_float(number_float_t /*value*/, const string_t & /*text*/) override {
    return scalar() && (m_skipped || wrong_type());
  }
  bool string(string_t &value) override {
    if (!scalar()) {
      return false;
    }
    if (m_skipped) {
      return true;
    }
    std::string *field = nullptr;
    switch (m_depth == 2 ? m_key : Key::other) {
    case Key::source: field = &block.source; break;
    case Key::path: field = &block.path; break;
    case Key::digest: field = &block.digest; break;
    case Key::checks: field = &block.checks; break;
    default: return wrong_type();
    }
    *field = std::move(value);
    m_seen |= bit(m_key);
    return true;
  }
  bool binary(binary_t & /*value*/) override { return scalar() && (m_skipped || wrong_type()); }
  bool start_object(std::size_t /*elements*/) override {
    ++m_depth;
    if (open_skipped()) {
      return true;
    }
    if (m_depth == 1) {
      return true; // the data
    }
    if (m_depth == 2 && m_block_next) { // the value of "log_block" (a later one wins, whole)
      m_block_next = false;
      block = LogBlock{};
      first.clear();
      parts.clear();
      has_parts = false;
      m_seen = 0;
      m_key = Key::other;
      saw_block = true;
      return true;
    }
    return wrong_type(); // no field of a block is an object
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t /*elements*/) override {
    ++m_depth;
    if (open_skipped()) {
      return true;
    }
    if (m_depth == 3 && (m_key == Key::first || m_key == Key::parts)) {
      if (m_key == Key::first) {
        first.clear(); // a later "first" wins
        m_seen |= bit(Key::first);
      } else {
        parts.clear();
        has_parts = true;
      }
      return true;
    }
    return wrong_type();
  }
  bool end_array() override { return close(); }
  bool key(string_t &name) override {
    if (m_skip_depth != 0) {
      return true;
    }
    if (m_depth == 1) {
      m_block_next = name == "log_block";
      m_skip_next = !m_block_next; // anything beside the block
      return true;
    }
    m_key = key_of(name);
    m_skip_next = m_key == Key::other; // a field this reader does not know
    return true;
  }
  bool parse_error(std::size_t position, const std::string & /*token*/, const nlohmann::detail::exception &e) override {
    problem = fmt::format("not JSON at byte {}: {}", position, e.what());
    return false;
  }

private:
  /**
   * A scalar value: sets m_skipped when it is inside a skipped value or is itself the value of
   * a skipped key. False (refused) for a scalar that is the whole data or the block.
   */
  bool scalar() {
    m_skipped = m_skip_depth != 0 || m_skip_next;
    m_skip_next = false;
    if (!m_skipped && (m_depth == 0 || m_block_next)) {
      m_block_next = false;
      return wrong_type();
    }
    return true;
  }
  /** At a container that opened (m_depth counts it): whether it is skipped. */
  bool open_skipped() {
    if (m_skip_depth != 0) {
      return true;
    }
    if (m_skip_next) {
      m_skip_next = false;
      m_skip_depth = m_depth;
      return true;
    }
    return false;
  }
  bool close() {
    if (m_skip_depth == m_depth) {
      m_skip_depth = 0; // the skipped object or array ends
    }
    --m_depth;
    return true;
  }
  bool wrong_type() {
    problem = "a field of the wrong type";
    return false;
  }

  unsigned m_depth = 0;      // open objects and arrays
  unsigned m_skip_depth = 0; // > 0: inside a skipped object or array opened at this depth
  bool m_skip_next = false;  // the next value is skipped (a key this reader does not know)
  bool m_block_next = false; // the next value is that of "log_block"
  bool m_skipped = false;    // the scalar being read is skipped
  Key m_key = Key::other;
  unsigned m_seen = 0; // bit() of each field read
};

/** What the reader of the block data found, before the checks of finish_block. */
struct BlockFields {
  LogBlock block;
  std::vector<std::uint64_t> first;
  std::vector<std::uint64_t> parts;
  bool has_parts = false;
};

/**
 * The block data as log_block_data() writes it — one flat object of ASCII strings without
 * escapes, unsigned numbers, arrays of them and a boolean, no white space — read without a
 * JSON parser (a tenth of the time: `find` reads hundreds of blocks per query). nullopt for
 * anything else, which the JSON reader (BlockReader) then reads or refuses: this one never
 * refuses, and never reads anything other than the JSON reader would.
 */
std::optional<BlockFields> read_canonical(std::string_view data) {
  constexpr std::string_view k_open = R"({"log_block":{)";
  if (!data.starts_with(k_open) || !data.ends_with("}}")) {
    return std::nullopt;
  }
  BlockFields f;
  unsigned seen = 0;
  std::size_t at = k_open.size();
  const std::size_t end = data.size() - 2;
  const auto number = [&](std::uint64_t &out) {
    const std::size_t begin = at;
    std::uint64_t value = 0;
    while (at < end && data[at] >= '0' && data[at] <= '9') {
      const auto digit = static_cast<std::uint64_t>(data[at] - '0');
      if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
        return false; // too big for an unsigned number: the JSON reader says what it is
      }
      value = value * 10 + digit;
      ++at;
    }
    if (at == begin || (data[begin] == '0' && at - begin > 1)) {
      return false; // none, or a leading zero (not JSON)
    }
    out = value;
    return true;
  };
  const auto text = [&](std::string &out) {
    if (at >= end || data[at] != '"') {
      return false;
    }
    const std::size_t begin = ++at;
    while (at < end && data[at] != '"') {
      const auto c = static_cast<unsigned char>(data[at]);
      if (c < 0x20U || c >= 0x80U || c == '\\') {
        return false; // an escape, a control or a non-ASCII byte
      }
      ++at;
    }
    if (at >= end) {
      return false;
    }
    out.assign(data.substr(begin, at - begin));
    ++at;
    return true;
  };
  const auto numbers = [&](std::vector<std::uint64_t> &out) {
    if (at >= end || data[at] != '[') {
      return false;
    }
    ++at;
    out.clear(); // a later duplicate wins
    if (at < end && data[at] == ']') {
      ++at;
      return true;
    }
    for (;;) {
      std::uint64_t value = 0;
      if (!number(value)) {
        return false;
      }
      out.push_back(value);
      if (at < end && data[at] == ',') {
        ++at;
        continue;
      }
      if (at < end && data[at] == ']') {
        ++at;
        return true;
      }
      return false;
    }
  };
  for (bool first_field = true; at < end; first_field = false) {
    if (!first_field) {
      if (data[at] != ',') {
        return std::nullopt;
      }
      ++at;
    }
    std::string name;
    if (!text(name) || at >= end || data[at] != ':') {
      return std::nullopt;
    }
    ++at;
    const Key key = key_of(name);
    bool ok = false;
    switch (key) {
    case Key::source: ok = text(f.block.source); break;
    case Key::path: ok = text(f.block.path); break;
    case Key::digest: ok = text(f.block.digest); break;
    case Key::checks: ok = text(f.block.checks); break;
    case Key::seg_from: ok = number(f.block.seg_from); break;
    case Key::seg_to: ok = number(f.block.seg_to); break;
    case Key::seg_line: ok = number(f.block.seg_line); break;
    case Key::from: ok = number(f.block.from); break;
    case Key::to: ok = number(f.block.to); break;
    case Key::line: ok = number(f.block.line); break;
    case Key::mtime_ns: {
      std::uint64_t value = 0;
      ok = number(value) && value <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
      f.block.mtime_ns = static_cast<std::int64_t>(value);
      break;
    }
    case Key::first: ok = numbers(f.first); break;
    case Key::parts:
      ok = numbers(f.parts);
      f.has_parts = true;
      break;
    case Key::truncated:
      if (data.substr(at).starts_with("true")) {
        f.block.truncated = true;
        at += 4;
        ok = true;
      } else if (data.substr(at).starts_with("false")) {
        f.block.truncated = false;
        at += 5;
        ok = true;
      }
      break;
    case Key::other: break; // a field the JSON reader skips
    }
    if (!ok) {
      return std::nullopt;
    }
    seen |= bit(key);
  }
  if (at != end || (seen & k_required) != k_required) {
    return std::nullopt;
  }
  return f;
}

/** The block data read by nlohmann's SAX interface (BlockReader). */
core::Result<BlockFields> read_json(std::string_view data) {
  BlockReader r;
  if (!json::sax_parse(data, &r) || !r.problem.empty()) {
    return core::fail(core::ErrorCode::data, "index log block data: " + (r.problem.empty() ? std::string("not JSON") : r.problem));
  }
  if (!r.saw_block || !r.complete()) {
    return core::fail(core::ErrorCode::data, "index log block data: a field is missing");
  }
  return BlockFields{std::move(r.block), std::move(r.first), std::move(r.parts), r.has_parts};
}

/** The block of `f`, checked. */
core::Result<LogBlock> finish_block(BlockFields f) {
  LogBlock b = std::move(f.block);
  std::uint64_t prev = 0;
  b.first_lines.reserve(f.first.size());
  for (std::uint64_t d : f.first) {
    prev += d;
    b.first_lines.push_back(prev);
  }
  if (!b.checks.empty() && b.checks.size() != b.first_lines.size() * k_txn_check_hex) {
    return core::fail(core::ErrorCode::data, "index log block data: checks do not fit the transactions");
  }
  if (b.first_lines.empty() || b.from > b.to || b.seg_from > b.from) {
    return core::fail(core::ErrorCode::data, "index log block data: inconsistent ranges");
  }
  if (f.has_parts) {
    const std::vector<std::uint64_t> &bounds = f.parts;
    if (bounds.size() != 2 * (k_block_parts - 1)) {
      return core::fail(core::ErrorCode::data, "index log block data: parts do not fit the block");
    }
    b.parts.push_back(connectors::LogPart{b.from, b.to, b.line});
    for (std::size_t k = 1; k < k_block_parts; ++k) {
      const std::uint64_t at = bounds[2 * (k - 1)];
      const std::uint64_t lines = bounds[2 * (k - 1) + 1];
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
}

} // namespace

core::Result<LogBlock> parse_log_block(std::string_view data) {
  try {
    if (std::optional<BlockFields> fields = read_canonical(data)) {
      return finish_block(std::move(*fields));
    }
    MAILDSAR_TRY_ASSIGN(BlockFields fields, read_json(data));
    return finish_block(std::move(fields));
  } catch (...) {
    return std::unexpected(core::error_from_current_exception("index log block data: "));
  }
}

core::Result<LogBlock> parse_log_block_as_json(std::string_view data) {
  try {
    MAILDSAR_TRY_ASSIGN(BlockFields fields, read_json(data));
    return finish_block(std::move(fields));
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
