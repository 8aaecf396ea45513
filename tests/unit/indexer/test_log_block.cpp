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

// The block data is read field by field (a SAX reader: `find` reads hundreds of blocks per
// query): what log_block_data() writes reads back the same; fields it does not know, beside the
// block or in it, are skipped whole; a later duplicate wins as in a JSON object; anything of
// the wrong type, a missing field, or what is not JSON is refused, never half read.
TEST(LogBlockData, TheReaderTakesWhatTheWriterWritesAndRefusesTheRest) {
  LogBlock b = block_of(1000, 6000, 10);
  b.first_lines = {11, 14, 20};
  b.seg_from = 500;
  b.seg_to = 9000;
  b.seg_line = 4;
  b.mtime_ns = -7; // before 1970: still read
  b.checks = std::string(3 * index::k_txn_check_hex, 'f');
  b.truncated = true;
  const std::string data = index::log_block_data(b);
  auto same = [&](const std::string &text) {
    auto back = index::parse_log_block(text);
    if (!back) {
      ADD_FAILURE() << back.error().message << "\n" << text;
      return;
    }
    EXPECT_EQ(back->source, b.source);
    EXPECT_EQ(back->path, b.path);
    EXPECT_EQ(back->seg_from, b.seg_from);
    EXPECT_EQ(back->seg_to, b.seg_to);
    EXPECT_EQ(back->seg_line, b.seg_line);
    EXPECT_EQ(back->mtime_ns, b.mtime_ns);
    EXPECT_EQ(back->from, b.from);
    EXPECT_EQ(back->to, b.to);
    EXPECT_EQ(back->line, b.line);
    EXPECT_EQ(back->first_lines, b.first_lines);
    EXPECT_EQ(back->digest, b.digest);
    EXPECT_EQ(back->checks, b.checks);
    EXPECT_EQ(back->truncated, b.truncated);
  };
  same(data);
  auto by_json = index::parse_log_block_as_json(data); // the reader for anything else agrees
  ASSERT_TRUE(by_json) << by_json.error().message;
  EXPECT_EQ(by_json->first_lines, b.first_lines);
  EXPECT_EQ(by_json->checks, b.checks);
  EXPECT_EQ(by_json->mtime_ns, b.mtime_ns);
  const std::string open = "{\"log_block\":{";
  ASSERT_TRUE(data.starts_with(open)) << data;
  const std::string fields = data.substr(open.size(), data.size() - open.size() - 2); // without "}}"
  auto block_with = [&](const std::string &more) { return open + more + "," + fields + "}}"; };
  auto block_then = [&](const std::string &more) { return open + fields + "," + more + "}}"; };
  // skipped whole: unknown fields of every shape, in the block and beside it
  same(block_with(R"("new":{"a":[1,{"b":null}],"c":"d"})"));
  same(block_with(R"("new":[[1,2],{"from":"x"}])"));
  same(block_with(R"("new":1.5,"other":null,"flag":false)"));
  same(R"({"before":{"from":"x"},)" + data.substr(1));
  same(data.substr(0, data.size() - 1) + R"(,"after":[{"first":"x"}]})");
  // a later duplicate wins
  same(block_with(R"("from":1,"first":[1,2,3,4,5])"));
  auto later_first = index::parse_log_block(block_then(R"("first":[7,1,2])"));
  ASSERT_TRUE(later_first) << later_first.error().message;
  EXPECT_EQ(later_first->first_lines, (std::vector<std::uint64_t>{7, 8, 10}));
  auto later_from = index::parse_log_block(block_then(R"("from":1200)"));
  ASSERT_TRUE(later_from) << later_from.error().message;
  EXPECT_EQ(later_from->from, 1200U);
  // a later "log_block" replaces the first one whole: its missing fields are missing
  EXPECT_FALSE(index::parse_log_block(data.substr(0, data.size() - 1) + R"(,"log_block":{"from":1}})"));
  same(R"({"log_block":{"from":1},)" + data.substr(1));
  // refused
  for (const std::string &bad : {
           std::string(), std::string("null"), std::string("[]"), std::string("{}"), std::string("{\"log_block\":1}"),
           std::string("{\"log_block\":[]}"), std::string("{\"log_block\":{}}"), data.substr(0, data.size() - 1),
           data + "x", block_then(R"("from":"1000")"), block_then(R"("from":-1)"), block_then(R"("from":1.0)"),
           block_then(R"("from":null)"), block_then(R"("path":7)"), block_then(R"("path":["a"])"),
           block_then(R"("first":{"a":1})"), block_then(R"("first":[[1]])"), block_then(R"("first":[1,"2"])"),
           block_then(R"("first":[-1])"), block_then(R"("truncated":1)"), block_then(R"("checks":false)"),
           block_then(R"("mtime_ns":9223372036854775808)"), block_then(R"("parts":{"a":1})"),
           block_then(R"("parts":[1,2,3])"), block_then(R"("digest":{"x":1})"), block_then(R"("first":[7,1])"),
           std::string(R"({"before":{"log_block":1},"after":[1,2]})")}) {
    EXPECT_FALSE(index::parse_log_block(bad)) << bad;
  }
  std::string without_digest = data;
  const std::size_t at = without_digest.find("\"digest\":");
  ASSERT_NE(at, std::string::npos);
  without_digest.erase(at, without_digest.find(',', at) + 1 - at);
  EXPECT_FALSE(index::parse_log_block(without_digest)) << without_digest;
}
