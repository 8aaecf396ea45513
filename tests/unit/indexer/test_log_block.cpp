// SPDX-License-Identifier: GPL-3.0-or-later
// The parts of a log block (indexer/log_block.hpp): where they begin, each transaction's mask of
// parts (the wdf of its terms), which stretches a mask reads, and the block data that keeps them.
#include "indexer/log_block.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace maildsar;
using connectors::LogPart;
using index::LogBlock;
using index::TxnLines;

namespace {

LogBlock block_of(std::uint64_t from, std::uint64_t to, std::uint64_t line) {
  LogBlock b;
  b.source = "postfix";
  b.path = "/var/log/mail.log";
  b.from = from;
  b.to = to;
  b.line = line;
  b.first_lines = {line + 1};
  b.digest = std::string(64, 'a');
  return b;
}

bool operator_eq(const LogPart &a, const LogPart &b) {
  return a.from == b.from && a.to == b.to && a.lines_before == b.lines_before;
}

} // namespace

// Range [1000, 6000): five parts of 1000 bytes by size. Lines (begin, number): transaction A at
// 1000 (#11), 2500 (#14), 5900 (#20); B at 1100 (#12), 2600 (#15); C at 2700 (#16) with its
// line begins unknown. Part 1 begins at its first line (A's at 2500), not at 2000; parts 2 and 3
// hold no line of the block and begin (empty) where part 4 does, at A's last line.
TEST(LogBlockParts, PartsBeginAtTheBlocksLinesAndMasksNameTheirParts) {
  LogBlock b = block_of(1000, 6000, 10);
  const std::vector<std::uint64_t> a_lines{11, 14, 20}, a_begins{1000, 2500, 5900};
  const std::vector<std::uint64_t> b_lines{12, 15}, b_begins{1100, 2600};
  const std::vector<std::uint64_t> c_lines{16};
  const std::vector<TxnLines> txns{{a_lines, a_begins}, {b_lines, b_begins}, {c_lines, {}}};
  const std::vector<std::uint32_t> masks = index::divide_block(b, txns);
  ASSERT_EQ(masks.size(), 3U);
  EXPECT_EQ(masks[0], 0b10011U); // parts 0, 1, 4
  EXPECT_EQ(masks[1], 0b00011U); // parts 0, 1
  EXPECT_EQ(masks[2], index::k_all_parts);
  ASSERT_EQ(b.parts.size(), index::k_block_parts);
  const std::vector<LogPart> want{{1000, 2500, 10}, {2500, 5900, 13}, {5900, 5900, 19},
                                  {5900, 5900, 19}, {5900, 6000, 19}};
  for (std::size_t k = 0; k < want.size(); ++k) {
    EXPECT_TRUE(operator_eq(b.parts[k], want[k]))
        << k << ": " << b.parts[k].from << "-" << b.parts[k].to << " after " << b.parts[k].lines_before;
  }
}

TEST(LogBlockParts, WithoutAnyLineBeginTheBlockHasNoParts) {
  LogBlock b = block_of(0, 500, 0);
  const std::vector<std::uint64_t> lines{1, 2};
  const std::vector<std::uint64_t> wrong{0}; // not one per line
  const std::vector<TxnLines> txns{{lines, {}}, {lines, wrong}};
  EXPECT_EQ(index::divide_block(b, txns), (std::vector<std::uint32_t>{index::k_all_parts, index::k_all_parts}));
  EXPECT_TRUE(b.parts.empty());
  EXPECT_TRUE(index::parts_to_read(b, 1).empty()); // read whole
}

TEST(LogBlockParts, AMaskReadsItsNonEmptyPartsJoined) {
  LogBlock b = block_of(0, 500, 0);
  b.parts = {{0, 100, 0}, {100, 200, 3}, {200, 200, 5}, {200, 400, 5}, {400, 500, 9}};
  auto read = [&](std::uint32_t mask) { return index::parts_to_read(b, mask); };
  auto r = read(0b00011U);
  ASSERT_EQ(r.size(), 1U);
  EXPECT_TRUE(operator_eq(r[0], {0, 200, 0}));
  r = read(0b11001U); // parts 0, 3, 4
  ASSERT_EQ(r.size(), 2U);
  EXPECT_TRUE(operator_eq(r[0], {0, 100, 0}));
  EXPECT_TRUE(operator_eq(r[1], {200, 500, 5}));
  r = read(0b01110U); // parts 1, 2 (empty), 3: joined over the empty one
  ASSERT_EQ(r.size(), 1U);
  EXPECT_TRUE(operator_eq(r[0], {100, 400, 3}));
  EXPECT_TRUE(read(0).empty());                      // a block term without parts: whole
  EXPECT_TRUE(read(index::k_all_parts + 1).empty()); // not a mask of parts: whole
}

TEST(LogBlockParts, TheBlockDataKeepsThePartsAndRefusesOnesThatDoNotFit) {
  LogBlock b = block_of(1000, 6000, 10);
  b.parts = {{1000, 2500, 10}, {2500, 2500, 13}, {2500, 5900, 13}, {5900, 5900, 19}, {5900, 6000, 19}};
  const std::string data = index::log_block_data(b);
  auto back = index::parse_log_block(data);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->parts.size(), b.parts.size());
  for (std::size_t k = 0; k < b.parts.size(); ++k) {
    EXPECT_TRUE(operator_eq(back->parts[k], b.parts[k])) << k;
  }
  // without parts (indexed before them): none, and read whole
  LogBlock old = b;
  old.parts.clear();
  auto none = index::parse_log_block(index::log_block_data(old));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->parts.empty());
  // parts that do not fit the block are refused, never followed
  const std::string key = "\"parts\":[";
  const std::size_t at = data.find(key);
  ASSERT_NE(at, std::string::npos) << data;
  const std::size_t end = data.find(']', at);
  auto with = [&](const std::string &bounds) {
    return data.substr(0, at + key.size()) + bounds + data.substr(end);
  };
  EXPECT_TRUE(index::parse_log_block(with("1500,3,1500,3,4900,9,4900,9")));
  for (const char *bad : {"1500,3,1500,3,4900,9",         // too few
                          "1500,3,1400,3,4900,9,4900,9",  // offsets go back
                          "1500,3,1500,2,4900,9,4900,9",  // lines go back
                          "1500,3,1500,3,4900,9,5001,9",  // past the block's end
                          "1500,3,1500,3,4900,9,4900,-1", // not a count
                          "1500,3,1500,3,4900,9,4900,\"x\""}) {
    EXPECT_FALSE(index::parse_log_block(with(bad))) << bad;
  }
}
