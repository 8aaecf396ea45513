// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/maillog/gz_access.hpp"
#include "connectors/log_range.hpp"
#include "connectors/maillog.hpp"

#include "core/fs.hpp"
#include "tests/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace maildsar;
using connectors::gz::Index;
using connectors::gz::k_gz_window;
using connectors::gz::Reader;
using maildsar::test::gzip;
using maildsar::test::ScratchDir;

namespace {

/** Log-like text of about `bytes` bytes, not too compressible (varied numbers). */
std::string text(std::size_t bytes, unsigned seed = 1) {
  std::string out;
  unsigned x = seed;
  for (int n = 0; out.size() < bytes; ++n) {
    x = x * 1103515245U + 12345U;
    out += fmt::format("Nov 14 10:{:02}:{:02} mx postfix/smtp[{}]: {:010X}: to=<u{}@example.com>, "
                       "status=sent ({})\n",
                       n % 60, (x >> 8U) % 60, x % 9999, x, (x >> 4U) % 100000, x ^ 0x5a5aU);
  }
  return out;
}

Reader open(const fs::path &p) {
  auto fd = core::open_read(p.string());
  EXPECT_TRUE(fd);
  auto r = Reader::open(std::move(*fd), p.string());
  EXPECT_TRUE(r);
  return std::move(*r);
}

/** Everything `r` gives from where it stands. */
std::string drain(Reader &r, std::size_t chunk = 7001) {
  std::string out;
  std::string buf(chunk, '\0');
  for (;;) {
    auto got = r.read(buf.data(), buf.size());
    EXPECT_TRUE(got) << (got ? "" : got.error().message);
    if (!got || *got == 0) {
      return out;
    }
    out.append(buf, 0, *got);
  }
}

/** Reads the file in full recording points every `spacing` bytes. */
Index index_of(const fs::path &p, std::uint64_t spacing) {
  Reader r = open(p);
  r.record_points(spacing);
  drain(r);
  return r.take_index();
}

/** A gzip member of `data` whose header carries every optional field (extra, name, comment,
    header CRC), as zlib's deflateSetHeader writes them. */
std::string gzip_with_header_fields(std::string_view data) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string extra = "AB\x04\x00wxyz"; // one subfield: id "AB", 4 bytes
  std::string name = "mail.log.2";
  std::string comment = "rotated by logrotate";
  gz_header header{};
  header.time = 1700000000;
  header.os = 3;
  header.extra = reinterpret_cast<Bytef *>(extra.data());
  header.extra_len = static_cast<uInt>(extra.size());
  header.name = reinterpret_cast<Bytef *>(name.data());
  header.comment = reinterpret_cast<Bytef *>(comment.data());
  header.hcrc = 1;
  EXPECT_EQ(deflateSetHeader(&zs, &header), Z_OK);
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())) + 128, '\0');
  zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef *>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

} // namespace

// A member whose header has every optional field (FEXTRA, FNAME, FCOMMENT, FHCRC), between two
// plain members: both inflaters (zlib while recording points, ISA-L otherwise and from a point)
// skip the fields and give the same content.
TEST(GzAccess, OptionalHeaderFieldsAreSkippedByBothInflaters) {
  ScratchDir dir;
  const std::string a = text(150000, 11);
  const std::string b = text(250000, 12);
  const std::string c = text(50000, 13);
  const std::string all = a + b + c;
  const fs::path p = dir / "fields.gz";
  test::write_file(p, gzip(a) + gzip_with_header_fields(b) + gzip(c));
  ASSERT_EQ(static_cast<unsigned char>(gzip_with_header_fields("x")[3]), 0x1EU); // the flags byte
  Reader whole = open(p);
  EXPECT_TRUE(drain(whole) == all);
  const Index index = index_of(p, 20000); // zlib read the same bytes to record these
  ASSERT_GE(index.points.size(), 4U);
  EXPECT_LE(index.points.back().out, all.size());
  for (const auto &point : index.points) {
    Reader r = open(p);
    ASSERT_TRUE(r.restart_at(point)) << point.out;
    EXPECT_TRUE(drain(r, 5000) == all.substr(point.out)) << point.out;
  }
}

// Every restart point of a multi-member file (points inside members and right after a member's
// header) resumes at exactly the bytes a read from the start gives, with the line count there.
TEST(GzAccess, EveryRestartPointResumesAtTheSameBytes) {
  ScratchDir dir;
  const std::string a = text(300000, 1);
  const std::string b = text(200000, 2);
  const std::string c = text(5000, 3);
  const std::string all = a + b + c;
  const fs::path p = dir / "multi.gz";
  test::write_file(p, gzip(a) + gzip(b) + gzip(c));
  Reader whole = open(p);
  ASSERT_EQ(drain(whole), all);

  const Index index = index_of(p, 20000);
  ASSERT_GE(index.points.size(), 4U); // deflate blocks of this text hold ~100 KB each
  EXPECT_EQ(index.compressed_size, fs::file_size(p));
  bool crossed_member = false;
  for (const auto &point : index.points) {
    crossed_member = crossed_member || point.out > a.size();
    Reader r = open(p);
    ASSERT_TRUE(r.restart_at(point)) << point.out;
    EXPECT_EQ(r.position(), point.out);
    EXPECT_EQ(point.lines, static_cast<std::uint64_t>(std::count(all.begin(), all.begin() + static_cast<long>(point.out), '\n')));
    const std::string rest = drain(r, 4096);
    ASSERT_EQ(rest.size(), all.size() - point.out) << point.out;
    EXPECT_TRUE(rest == all.substr(point.out)) << point.out;
  }
  EXPECT_TRUE(crossed_member);
  // The compact form round-trips, and Index::before picks the last point at or before.
  auto back = Index::parse(index.serialise());
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->points.size(), index.points.size());
  for (std::size_t i = 0; i < index.points.size(); ++i) {
    EXPECT_EQ(back->points[i].in, index.points[i].in);
    EXPECT_EQ(back->points[i].bits, index.points[i].bits);
    EXPECT_EQ(back->points[i].out, index.points[i].out);
    EXPECT_EQ(back->points[i].lines, index.points[i].lines);
    EXPECT_EQ(back->points[i].window, index.points[i].window);
  }
  EXPECT_EQ(back->before(0), nullptr);
  EXPECT_EQ(back->before(index.points[3].out), &back->points[3]);
  EXPECT_EQ(back->before(index.points[3].out + 1), &back->points[3]);
  EXPECT_EQ(back->before(index.points[4].out - 1), &back->points[3]);
  // Small: the windows are deflated.
  EXPECT_LT(index.serialise().size(), index.points.size() * 32768 / 2);
}

// With a bytes-per-window-byte ratio, points are at least that many decompressed bytes per byte
// of the previous point's deflated window apart, so the windows of a log take at most 1/ratio of
// its bytes (plus one window) whatever the spacing; and every point still resumes exactly. A
// point's window keeps only the bytes the data after it copies (zeros elsewhere), so points
// are also at least that window's span (32 KiB + the longest match) apart, whatever the spacing.
TEST(GzAccess, PointsAreSpacedByTheSizeOfTheirWindows) {
  ScratchDir dir;
  const std::string all = text(3000000, 9);
  const fs::path p = dir / "mail.log.2.gz";
  test::write_file(p, gzip(all));
  Reader r = open(p);
  r.record_points(4096, 100);
  drain(r);
  const Index index = r.take_index();
  ASSERT_GE(index.points.size(), 3U);
  std::uint64_t windows = 0;
  for (std::size_t i = 0; i < index.points.size(); ++i) {
    windows += index.points[i].window.size();
    if (i > 0) {
      EXPECT_GE(index.points[i].out - index.points[i - 1].out, 100 * index.points[i - 1].window.size()) << i;
    }
  }
  EXPECT_LE(windows, all.size() / 100 + k_gz_window);
  const Index dense = index_of(p, 4096);
  EXPECT_GT(dense.points.size(), 2 * index.points.size()); // the ratio is what spaced them
  for (std::size_t i = 1; i < dense.points.size(); ++i) {
    EXPECT_GE(dense.points[i].out - dense.points[i - 1].out, k_gz_window + 258) << i;
  }
  for (const auto &point : index.points) {
    Reader at = open(p);
    ASSERT_TRUE(at.restart_at(point)) << point.out;
    EXPECT_TRUE(drain(at, 65536) == all.substr(point.out)) << point.out;
  }
}

// Like gzread: bytes after the last member that are not gzip are ignored; a truncated member
// gives what came before and then a data error.
TEST(GzAccess, TrailingGarbageAndTruncationAsGzread) {
  ScratchDir dir;
  const std::string a = text(100000, 4);
  const fs::path p = dir / "trailing.gz";
  test::write_file(p, gzip(a) + std::string("\0\0garbage", 9));
  Reader r = open(p);
  EXPECT_EQ(drain(r), a);

  const std::string z = gzip(a);
  const fs::path t = dir / "truncated.gz";
  test::write_file(t, z.substr(0, z.size() / 2));
  Reader tr = open(t);
  std::string got;
  std::string buf(4096, '\0');
  bool failed = false;
  for (int i = 0; i < 1000 && !failed; ++i) {
    auto n = tr.read(buf.data(), buf.size());
    if (!n) {
      EXPECT_EQ(n.error().code, core::ErrorCode::data);
      failed = true;
    } else if (*n == 0) {
      break;
    } else {
      got.append(buf, 0, *n);
    }
  }
  EXPECT_TRUE(failed);
  EXPECT_TRUE(a.starts_with(got));
}

// A damaged member (a byte of its deflate data changed, or its CRC) is a data error at the latest
// when its trailer is checked (read from the start, where the CRC-32 is known); never a silent end.
TEST(GzAccess, ADamagedMemberIsADataError) {
  ScratchDir dir;
  const std::string a = text(400000, 6);
  const std::string z = gzip(a);
  for (const std::size_t at : {z.size() / 2, z.size() - 6}) { // in the data; in the CRC-32
    std::string bad = z;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    const fs::path p = dir / fmt::format("bad{}.gz", at);
    test::write_file(p, bad);
    Reader r = open(p);
    std::string buf(8192, '\0');
    bool failed = false;
    for (int i = 0; i < 10000 && !failed; ++i) {
      auto n = r.read(buf.data(), buf.size());
      if (!n) {
        EXPECT_EQ(n.error().code, core::ErrorCode::data) << at;
        failed = true;
      } else if (*n == 0) {
        break;
      }
    }
    EXPECT_TRUE(failed) << at;
  }
}

// Malformed serialised points are refused (never trusted), a damaged window is refused at
// restart, and a file of another size is refused by scan_log_ranges.
TEST(GzAccess, DamagedOrForeignPointsAreRefused) {
  ScratchDir dir;
  const std::string all = text(400000, 5);
  const fs::path p = dir / "mail.log.2.gz";
  test::write_file(p, gzip(all));
  const Index index = index_of(p, 50000);
  ASSERT_GE(index.points.size(), 3U);
  const std::string blob = index.serialise();
  EXPECT_FALSE(Index::parse("MDGZ"));
  EXPECT_FALSE(Index::parse(blob.substr(0, blob.size() - 1)));
  EXPECT_FALSE(Index::parse(blob + "x"));
  for (std::size_t cut = 0; cut < 64; ++cut) {
    (void)Index::parse(blob.substr(0, cut)); // no crash, whatever the prefix
  }
  Index damaged = index;
  damaged.points[2].window[damaged.points[2].window.size() / 2] ^= 0x55;
  Reader r = open(p);
  EXPECT_FALSE(r.restart_at(damaged.points[2]));

  core::SourceConfig src;
  src.name = "logs";
  src.type = "maillog";
  src.format = "postfix";
  connectors::ItemCollector sink;
  connectors::LogRange range;
  range.from = 0;
  std::vector<connectors::ItemSink *> sinks{&sink};
  Index foreign = index;
  foreign.compressed_size += 1;
  auto st = connectors::scan_log_ranges(src, p.string(), std::span(&range, 1), sinks, foreign.serialise());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, core::ErrorCode::data);
}

// scan_log_ranges with restart points gives exactly the items it gives without them, for ranges
// far apart (each resumed at a point) and for overlapping ones; and it really resumes there:
// with the bytes before the first point destroyed, the later ranges still read.
TEST(GzAccess, RangesReadFromRestartPointsGiveTheSameItems) {
  ScratchDir dir;
  const std::string all = text(600000, 6);
  const fs::path p = dir / "mail.log.3.gz";
  std::string z = gzip(all);
  test::write_file(p, z);
  const Index index = index_of(p, 40000);
  ASSERT_GE(index.points.size(), 4U);
  auto line_start = [&](std::uint64_t at) { return all.find('\n', at) + 1; };
  std::vector<connectors::LogRange> ranges;
  for (std::uint64_t at : {std::uint64_t{1000}, std::uint64_t{250000}, std::uint64_t{255000}, std::uint64_t{480000}}) {
    connectors::LogRange r;
    r.from = line_start(at);
    r.to = line_start(at + 9000);
    r.lines_before = static_cast<std::uint64_t>(std::count(all.begin(), all.begin() + static_cast<long>(r.from), '\n'));
    ranges.push_back(r);
  }
  core::SourceConfig src;
  src.name = "logs";
  src.type = "maillog";
  src.format = "postfix";
  auto scan = [&](const std::string &points, std::span<const connectors::LogRange> rs) {
    std::vector<connectors::ItemCollector> sinks(rs.size());
    std::vector<connectors::ItemSink *> ptrs;
    for (auto &s : sinks) {
      ptrs.push_back(&s);
    }
    auto st = connectors::scan_log_ranges(src, p.string(), rs, ptrs, points);
    EXPECT_TRUE(st) << (st ? "" : st.error().message);
    return sinks;
  };
  auto plain = scan({}, ranges);
  auto fast = scan(index.serialise(), ranges);
  ASSERT_EQ(plain.size(), fast.size());
  for (std::size_t i = 0; i < plain.size(); ++i) {
    ASSERT_FALSE(plain[i].items.empty());
    ASSERT_EQ(plain[i].items.size(), fast[i].items.size()) << i;
    for (std::size_t k = 0; k < plain[i].items.size(); ++k) {
      EXPECT_EQ(plain[i].items[k].locator.lines, fast[i].items[k].locator.lines);
      EXPECT_EQ(plain[i].items[k].sha256, fast[i].items[k].sha256);
    }
  }
  // Destroy compressed bytes well before the first point (same size): only the first range
  // (before any point) can no longer be read; the others resume at their points.
  ASSERT_GT(index.points.front().in, 2000U);
  for (std::size_t i = 1000; i < 1500; ++i) {
    z[i] = static_cast<char>(z[i] ^ 0x3c);
  }
  test::write_file(p, z);
  auto later = scan(index.serialise(), std::span(ranges).subspan(1));
  for (std::size_t i = 0; i < later.size(); ++i) {
    ASSERT_EQ(later[i].items.size(), plain[i + 1].items.size()) << i;
    EXPECT_TRUE(later[i].errors.empty());
    for (std::size_t k = 0; k < later[i].items.size(); ++k) {
      EXPECT_EQ(later[i].items[k].sha256, plain[i + 1].items[k].sha256);
    }
  }
}

// A range with parts gets exactly the lines that begin in its parts, numbered as in the file:
// from a plain log (seeking over the gaps), from a gzip log decompressed from its start and
// resuming at restart points in the gaps, alone and beside an overlapping range without parts.
// Parts that do not fit their range are refused.
TEST(GzAccess, ARangeReadInPartsGetsOnlyThePartsLines) {
  ScratchDir dir;
  const std::string all = text(300000, 8); // one-line transactions: an item per line
  const fs::path plain = dir / "mail.log";
  const fs::path gz = dir / "mail.log.1.gz";
  test::write_file(plain, all);
  test::write_file(gz, gzip(all));
  const Index index = index_of(gz, 20000);
  auto line_start = [&](std::uint64_t at) { return all.find('\n', at) + 1; };
  auto lines_before = [&](std::uint64_t at) {
    return static_cast<std::uint64_t>(std::count(all.begin(), all.begin() + static_cast<long>(at), '\n'));
  };
  auto part = [&](std::uint64_t from, std::uint64_t to) {
    return connectors::LogPart{line_start(from), line_start(to), lines_before(line_start(from))};
  };
  connectors::LogRange parted;
  parted.parts = {part(10000, 13000), part(60000, 61000), part(61000, 62000), part(150000, 190000)};
  parted.from = parted.parts.front().from;
  parted.to = parted.parts.back().to;
  parted.lines_before = parted.parts.front().lines_before;
  connectors::LogRange whole;
  whole.from = line_start(55000);
  whole.to = line_start(70000);
  whole.lines_before = lines_before(whole.from);
  // the line numbers each range must give
  auto expected = [&](const connectors::LogRange &r) {
    std::vector<std::uint64_t> out;
    std::uint64_t n = *r.lines_before;
    for (std::uint64_t at = r.from; at < r.to; at = all.find('\n', at) + 1) {
      ++n;
      const bool in = r.parts.empty() || std::ranges::any_of(r.parts, [&](const connectors::LogPart &p) {
                        return at >= p.from && at < p.to;
                      });
      if (in) {
        out.push_back(n);
      }
    }
    return out;
  };
  const std::vector<std::uint64_t> want_parted = expected(parted);
  const std::vector<std::uint64_t> want_whole = expected(whole);
  ASSERT_GT(want_parted.size(), 300U);
  ASSERT_LT(want_parted.size(), (lines_before(parted.to) - lines_before(parted.from)) / 2);
  core::SourceConfig src;
  src.name = "logs";
  src.type = "maillog";
  src.format = "postfix";
  auto numbers = [](const connectors::ItemCollector &c) {
    std::vector<std::uint64_t> out;
    for (const connectors::Item &item : c.items) {
      EXPECT_EQ(item.locator.lines.size(), 1U);
      out.insert(out.end(), item.locator.lines.begin(), item.locator.lines.end());
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  {
    connectors::ItemCollector sink;
    ASSERT_TRUE(connectors::scan_log_range(src, plain.string(), parted, sink));
    EXPECT_EQ(numbers(sink), want_parted);
    connectors::ItemCollector from_gz;
    ASSERT_TRUE(connectors::scan_log_range(src, gz.string(), parted, from_gz));
    EXPECT_EQ(numbers(from_gz), want_parted);
    for (std::size_t i = 0; i < sink.items.size() && i < from_gz.items.size(); ++i) {
      EXPECT_EQ(sink.items[i].sha256, from_gz.items[i].sha256);
    }
  }
  const std::vector<connectors::LogRange> ranges{parted, whole};
  for (const fs::path &p : {plain, gz}) {
    for (const std::string &points : {std::string(), index.serialise()}) {
      if (p == plain && !points.empty()) {
        continue;
      }
      std::vector<connectors::ItemCollector> sinks(2);
      std::vector<connectors::ItemSink *> ptrs{&sinks[0], &sinks[1]};
      auto st = connectors::scan_log_ranges(src, p.string(), ranges, ptrs, points);
      ASSERT_TRUE(st) << st.error().message;
      EXPECT_EQ(numbers(sinks[0]), want_parted) << p << " points: " << !points.empty();
      EXPECT_EQ(numbers(sinks[1]), want_whole) << p << " points: " << !points.empty();
    }
  }
  // refused: a first part elsewhere than the range's start, parts out of order, an empty part,
  // a part past the range's end
  auto refused = [&](connectors::LogRange r) {
    connectors::ItemCollector sink;
    auto st = connectors::scan_log_range(src, plain.string(), r, sink);
    return !st && st.error().code == core::ErrorCode::usage;
  };
  connectors::LogRange bad = parted;
  bad.from = parted.from - 1;
  EXPECT_TRUE(refused(bad));
  bad = parted;
  std::swap(bad.parts[1], bad.parts[2]);
  EXPECT_TRUE(refused(bad));
  bad = parted;
  bad.parts[1].to = bad.parts[1].from;
  EXPECT_TRUE(refused(bad));
  bad = parted;
  bad.to = parted.parts.back().from;
  EXPECT_TRUE(refused(bad));
}

// A byte-order mark is the file's only on its first line: a range (or a part) that begins at a
// later line that starts with one reads that line as the whole file does, BOM included.
TEST(GzAccess, AByteOrderMarkInsideTheFileIsTheLinesOwn) {
  ScratchDir dir;
  const std::string log =
      "\xEF\xBB\xBFNov 14 10:00:01 mx postfix/qmgr[7]: AAAA000001: from=<a@example.org>, size=1, nrcpt=1\n"
      "Nov 14 10:00:02 mx postfix/qmgr[7]: AAAA000001: removed\n"
      "\xEF\xBB\xBFNov 14 10:00:03 mx postfix/qmgr[7]: BBBB000002: from=<b@example.org>, size=1, nrcpt=1\n"
      "Nov 14 10:00:04 mx postfix/qmgr[7]: BBBB000002: removed\n";
  const fs::path p = dir / "mail.log";
  test::write_file(p, log);
  core::SourceConfig src;
  src.name = "logs";
  src.type = "maillog";
  src.format = "postfix";
  connectors::ItemCollector whole;
  ASSERT_TRUE(connectors::scan_log_range(src, p.string(), connectors::LogRange{}, whole));
  // the whole file: the BOM of line 3 makes it no Postfix line (a line of its own, naming b@)
  ASSERT_EQ(whole.items.size(), 3U);
  connectors::LogRange from_third;
  from_third.from = log.find("\xEF\xBB\xBFNov 14 10:00:03");
  from_third.lines_before = 2;
  connectors::ItemCollector part;
  ASSERT_TRUE(connectors::scan_log_range(src, p.string(), from_third, part));
  ASSERT_EQ(part.items.size(), 2U);
  for (std::size_t i = 0; i < part.items.size(); ++i) {
    EXPECT_EQ(part.items[i].locator.lines, whole.items[i + 1].locator.lines) << i;
    EXPECT_EQ(part.items[i].sha256, whole.items[i + 1].sha256) << i;
  }
}
