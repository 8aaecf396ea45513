// SPDX-License-Identifier: GPL-3.0-or-later
// The data of a log block document (indexer/log_block.hpp), read by `find` for every matched
// block: a fast reader for the data as the indexer writes it, a SAX reader for everything else.
// Invariants: both read every input alike (parse_log_block against parse_log_block_as_json);
// what is not JSON is refused; what is read is a block that log_block_data() writes back and
// parse_log_block() reads again as the same block.
#include "fuzz/fuzz_support.hpp"
#include "indexer/log_block.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <tuple>

namespace {

auto fields(const maildsar::index::LogBlock &b) {
  return std::tie(b.source, b.path, b.seg_from, b.seg_to, b.seg_line, b.mtime_ns, b.from, b.to, b.line, b.first_lines,
                  b.digest, b.truncated, b.checks);
}

bool same_parts(const maildsar::index::LogBlock &a, const maildsar::index::LogBlock &b) {
  if (a.parts.size() != b.parts.size()) {
    return false;
  }
  for (std::size_t k = 0; k < a.parts.size(); ++k) {
    if (a.parts[k].from != b.parts[k].from || a.parts[k].to != b.parts[k].to ||
        a.parts[k].lines_before != b.parts[k].lines_before) {
      return false;
    }
  }
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view text = maildsar::fuzz::as_view(data, size);
  auto block = maildsar::index::parse_log_block(text);
  auto by_json = maildsar::index::parse_log_block_as_json(text);
  if (block.has_value() != by_json.has_value() ||
      (block && (fields(*block) != fields(*by_json) || !same_parts(*block, *by_json)))) {
    std::abort(); // the fast reader and the JSON reader disagree
  }
  if (!block) {
    return 0;
  }
  if (!nlohmann::json::accept(text)) {
    std::abort(); // read what is not JSON
  }
  auto again = maildsar::index::parse_log_block(maildsar::index::log_block_data(*block));
  if (!again || fields(*again) != fields(*block) || !same_parts(*again, *block)) {
    std::abort(); // written back, it reads as another block (or not at all)
  }
  return 0;
}
