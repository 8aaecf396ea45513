// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/mbox.hpp"

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using namespace maildsar;
using namespace maildsar::connectors;

namespace {

struct MboxSink final : ItemSink {
  std::vector<Item> items;
  std::vector<ScanError> errors;
  void item(Item &&it) override { items.push_back(std::move(it)); }
  void error(ScanError &&e) override { errors.push_back(std::move(e)); }
};

std::string message(const std::string &from_line, const std::string &subject,
                    const std::string &body = "Hello.\n") {
  return from_line + "\nFrom: alice@example.com\nTo: bob@example.org\nSubject: " + subject +
         "\n\n" + body + "\n";
}

std::unique_ptr<Connector> make(const std::string &pattern, const std::string &root,
                                const std::string &owner = {}, const std::string &format = {}) {
  core::SourceConfig src{"archive", "mbox", format, pattern, owner, root};
  auto c = make_mbox_connector(src);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
  return std::move(*c);
}

FileEntry entry_for(const fs::path &path, const std::string &owner = {}) {
  auto st = core::lstat_file(path.string());
  EXPECT_TRUE(st.has_value());
  return FileEntry{path.string(), "", owner, st ? *st : core::FileStat{}};
}

/** Scans a whole file through the connector. */
core::Status scan_file(const fs::path &path, MboxSink &sink, std::uint64_t from_offset = 0,
                       const std::string &format = {}) {
  auto c = make(path.string(), path.parent_path().string(), {}, format);
  return c->scan(entry_for(path), from_offset, sink);
}

struct Range {
  std::uint64_t offset;
  std::uint64_t length;
  friend bool operator==(const Range &, const Range &) = default;
};

std::vector<Range> ranges(const MboxSink &sink) {
  std::vector<Range> out;
  for (const auto &it : sink.items) {
    out.push_back(Range{it.locator.offset, it.locator.length});
  }
  return out;
}

std::vector<std::uint64_t> offsets(const MboxSink &sink) {
  std::vector<std::uint64_t> out;
  for (const auto &it : sink.items) {
    out.push_back(it.locator.offset);
  }
  return out;
}

/** Checks that the items tile [first, size) exactly and that each hash is of its range. */
void expect_exact_cover(const MboxSink &sink, const std::string &data, std::uint64_t first = 0) {
  std::uint64_t pos = first;
  for (const auto &it : sink.items) {
    EXPECT_EQ(it.locator.offset, pos);
    EXPECT_EQ(it.sha256, core::sha256_hex(std::string_view(data).substr(
                             it.locator.offset, it.locator.length)));
    pos = it.locator.offset + it.locator.length;
  }
  EXPECT_EQ(pos, data.size());
}

} // namespace

TEST(MboxConnector, SplitsSimpleMbox) {
  test::ScratchDir dir;
  std::string m1 = message("From alice@example.com Mon Jan  1 10:00:00 2024", "one");
  std::string m2 = message("From bob@example.org Tue Jan  2 11:00:00 2024", "two");
  std::string m3 = message("From MAILER-DAEMON Wed Jan  3 12:00:00 2024", "three");
  std::string data = m1 + m2 + m3;
  test::write_file(dir / "a.mbox", data);
  MboxSink sink;
  ASSERT_TRUE(scan_file(dir / "a.mbox", sink).has_value());
  EXPECT_TRUE(sink.errors.empty());
  EXPECT_EQ(ranges(sink), (std::vector<Range>{{0, m1.size()},
                                              {m1.size(), m2.size()},
                                              {m1.size() + m2.size(), m3.size()}}));
  expect_exact_cover(sink, data);
  EXPECT_EQ(sink.items[0].locator.store, StoreKind::mbox);
  EXPECT_EQ(sink.items[0].locator.source, "archive");
  EXPECT_EQ(sink.items[0].locator.path, (dir / "a.mbox").string());
  EXPECT_EQ(sink.items[1].subject, "two");
  EXPECT_TRUE(sink.items[1].warnings.empty());
  const auto &addrs = sink.items[1].addresses;
  EXPECT_TRUE(std::any_of(addrs.begin(), addrs.end(), [](const RawAddress &a) {
    return a.role == Role::from && a.addr == "alice@example.com";
  }));
}

TEST(MboxConnector, UnquotesMboxrd) {
  EXPECT_EQ(unquote_mboxrd(">From a\n>>From b\n>x\nFrom c\n> From d\n>>>From e"),
            "From a\n>From b\n>x\nFrom c\n> From d\n>>From e");
  EXPECT_EQ(unquote_mboxrd("a\r\n>From b\r\n"), "a\r\nFrom b\r\n");
  EXPECT_EQ(unquote_mboxrd(""), "");

  test::ScratchDir dir;
  std::string m1 = message("From a@b Mon Jan  1 10:00:00 2024", "q",
                           "first\n\n>From the start\n>>From quoted\n");
  std::string m2 = message("From a@b Mon Jan  1 10:00:01 2024", "r");
  test::write_file(dir / "rd.mbox", m1 + m2);
  int fd = ::open((dir / "rd.mbox").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  core::Fd guard(fd);
  std::vector<std::string> contents;
  std::vector<ScanError> errors;
  auto st = split_mbox(
      fd, (dir / "rd.mbox").string(), 0, m1.size() + m2.size(),
      [&](const MboxMessage &m) { contents.push_back(mbox_message_content(m)); },
      [&](ScanError &&e) { errors.push_back(std::move(e)); });
  ASSERT_TRUE(st.has_value());
  ASSERT_EQ(contents.size(), 2U);
  EXPECT_TRUE(errors.empty());
  EXPECT_FALSE(contents[0].starts_with("From "));
  EXPECT_NE(contents[0].find("\nFrom the start\n>From quoted\n"), std::string::npos);
}

// erase checks that each cut is still one whole message by splitting the file again: only the
// boundaries, the same as a full split finds, without reading or hashing every message.
TEST(MboxConnector, SplitForBoundariesFindsTheSameMessagesWithoutTheirBytes) {
  test::ScratchDir dir;
  std::string mbox;
  for (int i = 0; i < 30; ++i) {
    mbox += message("From a@b Mon Jan  1 10:00:00 2024", "m" + std::to_string(i),
                    i % 7 == 0 ? "body\n\nFrom here on, body text\n" : "body\n");
  }
  test::write_file(dir / "b.mbox", mbox);
  int fd = ::open((dir / "b.mbox").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  core::Fd guard(fd);
  for (MboxDialect dialect : {MboxDialect::separators, MboxDialect::content_length}) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> full;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> bounds;
    ASSERT_TRUE(split_mbox(
        fd, "b.mbox", 0, mbox.size(), [&](const MboxMessage &m) { full.emplace_back(m.offset, m.length); },
        [](ScanError &&) {}, dialect));
    ASSERT_TRUE(split_mbox(
        fd, "b.mbox", 0, mbox.size(),
        [&](const MboxMessage &m) {
          bounds.emplace_back(m.offset, m.length);
          EXPECT_TRUE(m.raw.empty());
          EXPECT_TRUE(m.sha256.empty());
        },
        [](ScanError &&) {}, dialect, MboxSplitContent::boundaries));
    EXPECT_EQ(full.size(), 30U);
    EXPECT_EQ(bounds, full);
  }
}

TEST(MboxConnector, AMessageWhereItLiesHasItsLengthInTheWholeSplit) {
  test::ScratchDir dir;
  std::string mbox = "From a@b Mon Jan  1 10:00:00 2024\r\nFrom: a@b\r\nSubject: crlf\r\n\r\nbody\r\n\r\n";
  for (int i = 0; i < 12; ++i) {
    mbox += message("From a@b Mon Jan  1 10:00:00 2024", "m" + std::to_string(i),
                    i % 3 == 0 ? "body\n\nFrom here on, body text\nFrom 9:00 to 17:00\n" : "body\n");
    if (i == 5) { // lines longer than the reader's first buffer (64 KiB), one beyond its most (1 MiB)
      mbox += message("From a@b Mon Jan  1 10:00:00 2024", "long", std::string(200000, 'x') + "\n" +
                                                                    std::string(1200000, 'y') + "\n");
    }
  }
  test::write_file(dir / "c.mbox", mbox);
  int fd = ::open((dir / "c.mbox").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  core::Fd guard(fd);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> full;
  ASSERT_TRUE(split_mbox(
      fd, "c.mbox", 0, mbox.size(), [&](const MboxMessage &m) { full.emplace_back(m.offset, m.length); },
      [](ScanError &&) {}));
  ASSERT_EQ(full.size(), 14U);
  for (const auto &[offset, length] : full) {
    auto at = mbox_message_length_at(fd, "c.mbox", mbox.size(), offset);
    ASSERT_TRUE(at) << at.error().message;
    EXPECT_EQ(*at, std::optional<std::uint64_t>(length)) << offset;
  }
  // Every other line start, and a place inside a line, starts no message.
  for (std::size_t pos = 0; pos < mbox.size(); pos = mbox.find('\n', pos) + 1) {
    const bool starts = std::any_of(full.begin(), full.end(), [&](const auto &m) { return m.first == pos; });
    auto at = mbox_message_length_at(fd, "c.mbox", mbox.size(), pos);
    ASSERT_TRUE(at);
    EXPECT_EQ(at->has_value(), starts) << pos;
    if (mbox[pos] != '\n') { // pos + 1 is inside this line, not the next line's start
      auto inside = mbox_message_length_at(fd, "c.mbox", mbox.size(), pos + 1);
      ASSERT_TRUE(inside);
      EXPECT_FALSE(inside->has_value()) << pos + 1;
    }
  }
  auto beyond = mbox_message_length_at(fd, "c.mbox", mbox.size(), mbox.size() + 1);
  ASSERT_TRUE(beyond);
  EXPECT_FALSE(beyond->has_value());
}

TEST(MboxConnector, RecognisesEnvelopeLines) {
  EXPECT_TRUE(looks_like_mbox_from_line("From -"));
  EXPECT_TRUE(looks_like_mbox_from_line("From - "));
  EXPECT_TRUE(looks_like_mbox_from_line("From - Fri Aug 05 10:57:20 2016\r"));
  EXPECT_TRUE(looks_like_mbox_from_line("From 1844347792267117879@xxx"));
  EXPECT_TRUE(looks_like_mbox_from_line("From bre@slinky  Fri Jan 10 15:32:16 2014"));
  EXPECT_TRUE(looks_like_mbox_from_line("From \"naveen.andrews@enron.com\" Wed Jan 30 18:07:01 2002"));
  EXPECT_TRUE(looks_like_mbox_from_line("From MAILER-DAEMON"));
  EXPECT_FALSE(looks_like_mbox_from_line("From Russia with love"));
  EXPECT_FALSE(looks_like_mbox_from_line("From the desk of Alice"));
  EXPECT_FALSE(looks_like_mbox_from_line("From: alice@example.com"));
  EXPECT_FALSE(looks_like_mbox_from_line(">From a@b Mon Jan  1 10:00:00 2024"));
}

TEST(MboxConnector, DoesNotSplitOnUnescapedBodyFromLines) {
  test::ScratchDir dir;
  std::string m1 = message("From a@b Mon Jan  1 10:00:00 2024", "one",
                           "Movie:\n\nFrom Russia with love\nYear: 1963\n\n"
                           "From 9:00 to 17:00 we work\n\nbye\n");
  std::string m2 = message("From a@b Mon Jan  1 10:00:01 2024", "two");
  std::string data = m1 + m2;
  test::write_file(dir / "o.mbox", data);
  MboxSink sink;
  ASSERT_TRUE(scan_file(dir / "o.mbox", sink).has_value());
  EXPECT_EQ(ranges(sink), (std::vector<Range>{{0, m1.size()}, {m1.size(), m2.size()}}));
  EXPECT_TRUE(sink.errors.empty());
}

TEST(MboxConnector, SplitsWithoutBlankLineWhenHeadersFollow) {
  test::ScratchDir dir;
  // GMime/MimeKit test mboxes: "From - " right after a MIME boundary, no blank line
  std::string m1 = "From - \nFrom: a@b\nSubject: one\n\n--x\nbody\n--x--\n";
  std::string m2 = "From - \nFrom: a@b\nSubject: two\n\nbody\n";
  // and an envelope line followed directly by the body (no header fields)
  std::string m3 = "\nFrom sender Mon Jun 01 11:00:00 2010\n\nTest content\n";
  std::string data = m1 + m2 + m3;
  test::write_file(dir / "nb.mbox", data);
  MboxSink sink;
  ASSERT_TRUE(scan_file(dir / "nb.mbox", sink).has_value());
  EXPECT_EQ(offsets(sink), (std::vector<std::uint64_t>{0, m1.size(), m1.size() + m2.size() + 1}));
  expect_exact_cover(sink, data);
  // a weak envelope line (no date) needs both a blank line before and a header after
  std::string w = "From a@b Mon Jan  1 10:00:00 2024\nSubject: w\n\ntext\nFrom x@y\nSubject: no\n";
  test::write_file(dir / "weak.mbox", w);
  MboxSink sink2;
  ASSERT_TRUE(scan_file(dir / "weak.mbox", sink2).has_value());
  EXPECT_EQ(sink2.items.size(), 1U);
}

TEST(MboxConnector, TrustsAMatchingContentLength) {
  test::ScratchDir dir;
  // body with an unescaped line that looks exactly like a separator followed by a header
  std::string body = "text\n\nFrom x@y Mon Jan  1 10:00:00 2024\nSubject: not a message\n\nend\n";
  std::string m1 = "From a@b Mon Jan  1 10:00:00 2024\nSubject: cl\nContent-Length: " +
                   std::to_string(body.size()) + "\n\n" + body + "\n";
  std::string m2 = message("From a@b Mon Jan  1 10:00:01 2024", "two");
  std::string data = m1 + m2;
  test::write_file(dir / "cl.mbox", data);
  MboxSink sink;
  ASSERT_TRUE(scan_file(dir / "cl.mbox", sink, 0, "mboxcl2").has_value());
  EXPECT_EQ(ranges(sink), (std::vector<Range>{{0, m1.size()}, {m1.size(), m2.size()}}));

  // a Content-Length that spans to EOF is trusted too
  std::string last = "From a@b Mon Jan  1 10:00:00 2024\nContent-Length: " +
                     std::to_string(body.size()) + "\n\n" + body;
  test::write_file(dir / "cl-eof.mbox", last);
  MboxSink sink2;
  ASSERT_TRUE(scan_file(dir / "cl-eof.mbox", sink2, 0, "mboxcl").has_value());
  EXPECT_EQ(ranges(sink2), (std::vector<Range>{{0, last.size()}}));
}

// Issue 13 item 4: unless the source is configured as mboxcl/mboxcl2, Content-Length (written
// by the sender) never makes a message swallow the next, properly separated one.
TEST(MboxConnector, IgnoresContentLengthUnlessTheDialectIsMboxcl) {
  test::ScratchDir dir;
  std::string m2 = message("From b@c Mon Jan  1 10:00:01 2024", "the next person's");
  std::string body1 = "mine\n";
  // The hostile length spans this body, the blank line and all of m2: it lands on EOF.
  std::string m1 = "From a@b Mon Jan  1 10:00:00 2024\nSubject: hostile\nContent-Length: " +
                   std::to_string(body1.size() + 1 + m2.size()) + "\n\n" + body1 + "\n";
  std::string m3 = message("From c@d Mon Jan  1 10:00:02 2024", "third");
  // ... and in a second file it lands exactly on the separator of m3.
  for (const std::string &data : {m1 + m2, m1 + m2 + m3}) {
    test::write_file(dir / "hostile.mbox", data);
    for (const char *format : {"", "mboxo", "mboxrd"}) {
      MboxSink sink;
      ASSERT_TRUE(scan_file(dir / "hostile.mbox", sink, 0, format).has_value());
      ASSERT_GE(sink.items.size(), 2U) << format;
      EXPECT_EQ(ranges(sink)[0], (Range{0, m1.size()})) << format;
      EXPECT_EQ(ranges(sink)[1], (Range{m1.size(), m2.size()})) << format;
      expect_exact_cover(sink, data);
    }
  }
  EXPECT_FALSE(make_mbox_connector(core::SourceConfig{"a", "mbox", "mboxcl3", "/x/*.mbox", "", "/x"}).has_value());
}

TEST(MboxConnector, IgnoresAWrongContentLength) {
  test::ScratchDir dir;
  std::string m1 = "From a@b Mon Jan  1 10:00:00 2024\nSubject: cl\nContent-Length: 3\n\nabcdef\n\n";
  std::string m2 = "From a@b Mon Jan  1 10:00:00 2024\nSubject: cl\nContent-Length: 999999\n\nx\n\n";
  std::string m3 = message("From a@b Mon Jan  1 10:00:01 2024", "three");
  std::string data = m1 + m2 + m3;
  test::write_file(dir / "bad-cl.mbox", data);
  MboxSink sink;
  ASSERT_TRUE(scan_file(dir / "bad-cl.mbox", sink).has_value());
  EXPECT_EQ(offsets(sink), (std::vector<std::uint64_t>{0, m1.size(), m1.size() + m2.size()}));
  expect_exact_cover(sink, data);
}

TEST(MboxConnector, SplitsCrlfMbox) {
  test::ScratchDir dir;
  std::string m1 = "From a@b Mon Jan  1 10:00:00 2024\r\nSubject: one\r\n\r\n"
                   "body\r\n\r\nFrom Russia with love\r\n\r\n";
  std::string m2 = "From a@b Mon Jan  1 10:00:01 2024\r\nSubject: two\r\n\r\nbody\r\n";
  std::string data = m1 + m2;
  test::write_file(dir / "crlf.mbox", data);
  MboxSink sink;
  ASSERT_TRUE(scan_file(dir / "crlf.mbox", sink).has_value());
  EXPECT_EQ(ranges(sink), (std::vector<Range>{{0, m1.size()}, {m1.size(), m2.size()}}));
  EXPECT_TRUE(sink.errors.empty());
  for (const auto &it : sink.items) {
    for (const auto &w : it.warnings) {
      EXPECT_EQ(w.find("truncated"), std::string::npos) << w;
    }
  }
}

TEST(MboxConnector, SkipsUtf8BomAndLeadingBlankLines) {
  test::ScratchDir dir;
  std::string m1 = message("From -", "one");
  std::string m2 = message("From -", "two");
  std::string data = "\xEF\xBB\xBF" + m1 + m2;
  test::write_file(dir / "bom.mbox", data);
  MboxSink sink;
  ASSERT_TRUE(scan_file(dir / "bom.mbox", sink).has_value());
  EXPECT_TRUE(sink.errors.empty());
  EXPECT_EQ(ranges(sink), (std::vector<Range>{{3, m1.size()}, {3 + m1.size(), m2.size()}}));
  expect_exact_cover(sink, data, 3);

  std::string blank = "\n\n" + m1;
  test::write_file(dir / "blank.mbox", blank);
  MboxSink sink2;
  ASSERT_TRUE(scan_file(dir / "blank.mbox", sink2).has_value());
  EXPECT_TRUE(sink2.errors.empty());
  EXPECT_EQ(ranges(sink2), (std::vector<Range>{{2, m1.size()}}));
}

TEST(MboxConnector, ReportsGarbageBeforeFirstMessageAndContinues) {
  test::ScratchDir dir;
  std::string garbage = "this is not\na message\n\n";
  std::string m1 = message("From a@b Mon Jan  1 10:00:00 2024", "one");
  std::string m2 = message("From a@b Mon Jan  1 10:00:01 2024", "two");
  std::string data = garbage + m1 + m2;
  test::write_file(dir / "g.mbox", data);
  MboxSink sink;
  ASSERT_TRUE(scan_file(dir / "g.mbox", sink).has_value());
  ASSERT_EQ(sink.errors.size(), 1U);
  EXPECT_EQ(sink.errors[0].path, (dir / "g.mbox").string());
  EXPECT_EQ(sink.errors[0].position, "offset 0");
  EXPECT_NE(sink.errors[0].cause.find(std::to_string(garbage.size()) + " bytes"), std::string::npos);
  ASSERT_EQ(sink.items.size(), 2U);
  expect_exact_cover(sink, data, garbage.size());
}

TEST(MboxConnector, AppendScanYieldsOnlyNewMessages) {
  test::ScratchDir dir;
  std::string m1 = message("From a@b Mon Jan  1 10:00:00 2024", "one");
  std::string m2 = message("From a@b Mon Jan  1 10:00:01 2024", "two");
  std::string m3 = message("From a@b Mon Jan  1 10:00:02 2024", "three");
  test::write_file(dir / "grow.mbox", m1 + m2);
  auto c = make((dir / "grow.mbox").string(), dir.path().string());
  EXPECT_TRUE(c->supports_append());
  MboxSink first;
  ASSERT_TRUE(c->scan(entry_for(dir / "grow.mbox"), 0, first).has_value());
  ASSERT_EQ(first.items.size(), 2U);
  std::uint64_t end = first.items[1].locator.offset + first.items[1].locator.length;
  EXPECT_EQ(end, m1.size() + m2.size());

  test::write_file(dir / "grow.mbox", m1 + m2 + m3);
  MboxSink second;
  ASSERT_TRUE(c->scan(entry_for(dir / "grow.mbox"), end, second).has_value());
  EXPECT_EQ(ranges(second), (std::vector<Range>{{end, m3.size()}}));
  EXPECT_EQ(second.items[0].sha256, core::sha256_hex(m3));

  MboxSink nothing; // nothing appended
  ASSERT_TRUE(c->scan(entry_for(dir / "grow.mbox"), end + m3.size(), nothing).has_value());
  EXPECT_TRUE(nothing.items.empty());
}

TEST(MboxConnector, FromOffsetNotAtBoundaryIsDataError) {
  test::ScratchDir dir;
  std::string m1 = message("From a@b Mon Jan  1 10:00:00 2024", "one");
  std::string m2 = message("From a@b Mon Jan  1 10:00:01 2024", "two");
  test::write_file(dir / "x.mbox", m1 + m2);
  auto c = make((dir / "x.mbox").string(), dir.path().string());
  for (std::uint64_t off : {std::uint64_t{1}, std::uint64_t{m1.size() - 1},
                            std::uint64_t{m1.size() + 1}, std::uint64_t{m1.size() + m2.size() + 10}}) {
    MboxSink sink;
    auto st = c->scan(entry_for(dir / "x.mbox"), off, sink);
    ASSERT_FALSE(st.has_value()) << off;
    EXPECT_EQ(st.error().code, core::ErrorCode::data);
    EXPECT_TRUE(sink.items.empty());
  }
  MboxSink ok;
  ASSERT_TRUE(c->scan(entry_for(dir / "x.mbox"), m1.size(), ok).has_value());
  EXPECT_EQ(ok.items.size(), 1U);
}

TEST(MboxConnector, TruncatedFinalMessageIsKeptWithWarning) {
  test::ScratchDir dir;
  std::string m1 = message("From a@b Mon Jan  1 10:00:00 2024", "one");
  std::string cut = "From a@b Mon Jan  1 10:00:01 2024\nFrom: alice@example.com\nSubj";
  std::string data = m1 + cut;
  test::write_file(dir / "t.mbox", data);
  MboxSink sink;
  ASSERT_TRUE(scan_file(dir / "t.mbox", sink).has_value());
  ASSERT_EQ(sink.items.size(), 2U);
  expect_exact_cover(sink, data);
  const auto &w = sink.items[1].warnings;
  EXPECT_TRUE(std::any_of(w.begin(), w.end(), [](const std::string &s) {
    return s.find("truncated") != std::string::npos;
  }));
  for (const auto &s : sink.items[0].warnings) {
    EXPECT_EQ(s.find("truncated"), std::string::npos);
  }
}

TEST(MboxConnector, NotAnMboxIsOneErrorAndNoItems) {
  test::ScratchDir dir;
  test::write_file(dir / "text.mbox", "Hello,\nthis is just text.\n\nFrom Russia with love\n");
  MboxSink sink;
  ASSERT_TRUE(scan_file(dir / "text.mbox", sink).has_value());
  EXPECT_TRUE(sink.items.empty());
  ASSERT_EQ(sink.errors.size(), 1U);
  EXPECT_EQ(sink.errors[0].position, "offset 0");
  EXPECT_NE(sink.errors[0].cause.find("not an mbox file"), std::string::npos);

  test::write_file(dir / "binary.mbox", std::string("\0\1\2\3\4\n\0\0", 8));
  MboxSink sink2;
  ASSERT_TRUE(scan_file(dir / "binary.mbox", sink2).has_value());
  EXPECT_TRUE(sink2.items.empty());
  EXPECT_EQ(sink2.errors.size(), 1U);

  test::write_file(dir / "empty.mbox", "");
  MboxSink sink3;
  ASSERT_TRUE(scan_file(dir / "empty.mbox", sink3).has_value());
  EXPECT_TRUE(sink3.items.empty());
  EXPECT_TRUE(sink3.errors.empty());
}

TEST(MboxConnector, OwnerAddressIsAdded) {
  test::ScratchDir dir;
  test::write_file(dir / "users" / "carol.mbox", message("From a@b Mon Jan  1 10:00:00 2024", "x"));
  auto c = make((dir / "users" / "*.mbox").string(), dir.path().string(), "{1}@example.com");
  MboxSink sink;
  auto files = c->list_files(sink);
  ASSERT_TRUE(files.has_value());
  ASSERT_EQ(files->size(), 1U);
  EXPECT_EQ((*files)[0].owner, "carol@example.com");
  ASSERT_TRUE(c->scan((*files)[0], 0, sink).has_value());
  ASSERT_EQ(sink.items.size(), 1U);
  const auto &addrs = sink.items[0].addresses;
  EXPECT_TRUE(std::any_of(addrs.begin(), addrs.end(), [](const RawAddress &a) {
    return a.role == Role::owner && a.addr == "carol@example.com";
  }));
}

// Issue 13 item 13: the From_ line's envelope sender is evidence of its message.
TEST(MboxConnector, FromLineSenderIsEnvelopeFrom) {
  test::ScratchDir dir;
  const std::string data = message("From Env.Sender@example.org Mon Jan  1 10:00:00 2024", "x") +
                           message("From - Mon Jan  1 10:00:00 2024", "y") +
                           message("From MAILER-DAEMON Mon Jan  1 10:00:00 2024", "z");
  test::write_file(dir / "a.mbox", data);
  MboxSink sink;
  ASSERT_TRUE(scan_file(dir / "a.mbox", sink).has_value());
  ASSERT_EQ(sink.items.size(), 3U);
  const auto envelope = [](const Item &item) {
    std::vector<std::string> out;
    for (const RawAddress &a : item.addresses) {
      if (a.role == Role::envelope_from) {
        out.push_back(a.addr + "|" + a.field);
      }
    }
    return out;
  };
  EXPECT_EQ(envelope(sink.items[0]), std::vector<std::string>{"Env.Sender@example.org|From_"});
  EXPECT_TRUE(envelope(sink.items[1]).empty());
  EXPECT_TRUE(envelope(sink.items[2]).empty());
}

TEST(MboxConnector, ListSkipsSymlinksDirectoriesAndEscapes) {
  test::ScratchDir dir;
  fs::path root = dir / "archive";
  test::write_file(root / "a.mbox", message("From a@b Mon Jan  1 10:00:00 2024", "x"));
  test::write_file(dir / "outside" / "secret.mbox", message("From a@b Mon Jan  1 10:00:00 2024", "x"));
  fs::create_symlink(root / "a.mbox", root / "b.mbox");
  fs::create_directories(root / "c.mbox");
  fs::create_symlink(dir / "outside", root / "sub");
  auto c = make((root / "*.mbox").string(), root.string());
  MboxSink sink;
  auto files = c->list_files(sink);
  ASSERT_TRUE(files.has_value());
  ASSERT_EQ(files->size(), 1U);
  EXPECT_EQ((*files)[0].path, (root / "a.mbox").string());
  ASSERT_EQ(sink.errors.size(), 2U);
  EXPECT_NE(sink.errors[0].cause.find("symbolic link skipped"), std::string::npos);
  EXPECT_NE(sink.errors[1].cause.find("not a regular file"), std::string::npos);

  auto c2 = make((root / "sub" / "*.mbox").string(), root.string());
  MboxSink sink2;
  auto files2 = c2->list_files(sink2);
  ASSERT_TRUE(files2.has_value());
  EXPECT_TRUE(files2->empty());
  ASSERT_EQ(sink2.errors.size(), 1U);
  EXPECT_NE(sink2.errors[0].cause.find("outside the source root"), std::string::npos);
}

TEST(MboxConnector, LargeMboxScansWithBoundedMemory) {
  test::ScratchDir dir;
  fs::path path = dir / "big.mbox";
  std::string body;
  for (int i = 0; i < 160; ++i) {
    body += "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\n";
  }
  std::size_t count = 0;
  std::uint64_t size = 0;
  {
    std::ofstream out(path, std::ios::binary);
    while (size < 50ULL * 1000 * 1000) {
      std::string m = message("From a@b Mon Jan  1 10:00:00 2024", "n" + std::to_string(count), body);
      out << m;
      size += m.size();
      ++count;
    }
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  core::Fd guard(fd);
  std::size_t seen = 0;
  std::uint64_t covered = 0;
  std::size_t max_raw = 0;
  auto st = split_mbox(
      fd, path.string(), 0, size,
      [&](const MboxMessage &m) {
        ++seen;
        covered += m.length;
        max_raw = std::max(max_raw, m.raw.size());
      },
      [](ScanError &&) { ADD_FAILURE() << "unexpected error"; });
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(seen, count);
  EXPECT_EQ(covered, size);
  EXPECT_LT(max_raw, 20000U);
}

// Issue 13 item 12: a message beyond the item bound (limits.max_item_mib, at most
// k_mbox_max_message_bytes) is hashed whole, decoded from its first bytes, and says so.
TEST(MboxConnector, HugeMessageIsHashedWholeAndDecodedInPart) {
  test::ScratchDir dir;
  fs::path path = dir / "huge.mbox";
  std::string head = "From a@b Mon Jan  1 10:00:00 2024\nSubject: huge\n\n";
  std::string tail = "\n\n" + message("From a@b Mon Jan  1 10:00:01 2024", "small");
  std::uint64_t huge = k_mbox_max_message_bytes + 4096;
  {
    test::write_file(path, head);
    ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(huge - 2)), 0); // sparse zeros
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << tail;
  }
  MboxSink sink;
  ASSERT_TRUE(scan_file(path, sink).has_value());
  ASSERT_EQ(sink.items.size(), 2U);
  EXPECT_EQ(sink.items[0].locator.length, huge);
  EXPECT_TRUE(sink.errors.empty());
  EXPECT_EQ(sink.items[0].subject, "huge"); // its head was decoded
  ASSERT_FALSE(sink.items[0].truncated.empty()); // the item bound, and its one 64 MiB "line"
  EXPECT_NE(sink.items[0].truncated[0].find("item cut at limits.max_item_mib"), std::string::npos)
      << sink.items[0].truncated[0];
  EXPECT_TRUE(sink.items[1].truncated.empty());
  // expected hash, streamed
  core::Sha256 hash;
  auto fd = core::open_read(path.string());
  ASSERT_TRUE(fd.has_value());
  for (std::uint64_t done = 0; done < huge;) {
    auto part = core::read_range(fd->get(), done, std::min<std::uint64_t>(1 << 20, huge - done),
                                 path.string());
    ASSERT_TRUE(part.has_value());
    hash.update(*part);
    done += part->size();
  }
  EXPECT_EQ(sink.items[0].sha256, hash.hex_digest());
}

TEST(MboxConnector, CorpusMessageCounts) {
  fs::path corpus = test::corpus_dir();
  if (corpus.empty()) {
    GTEST_SKIP() << "corpus not found";
  }
  // SOURCES.md counts "From " lines; unmunged.mbox.txt has 2 real messages (its other
  // "From " lines are unescaped body text).
  const std::map<std::string, std::size_t> expected = {
      {"mbox/aspose/ExampleMbox.mbox", 1},
      {"mbox/gmime/substring.mbox", 3},
      {"mbox/mailpile/tests.mbx", 9},
      {"mbox/mime4j/mbox.rlug", 5},
      {"mbox/mimekit/content-length.mbox.txt", 29},
      {"mbox/mimekit/issue1189.mbox.txt", 4},
      {"mbox/mimekit/simple.mbox.txt", 3},
      {"mbox/mimekit/unmunged.mbox.txt", 2},
      {"mbox/tika/complex.mbox", 3},
      {"mbox/tika/headers.mbox", 1},
      {"mbox/tika/multiline.mbox", 1},
      {"mbox/tika/multiline2.mbox", 1},
      {"mbox/tika/quoted.mbox", 1},
      {"mbox/tika/simple.mbox", 2},
      {"mbox/tika/single_mail.mbox", 1},
      {"mbox/tika/testMBOX_complex.mbox", 1},
      {"mbox/tika/testMBOX_lengthy_x-headers.mbox", 1},
  };
  for (const auto &[file, count] : expected) {
    fs::path path = corpus / file;
    std::string data = test::read_file(path);
    MboxSink sink;
    ASSERT_TRUE(scan_file(path, sink).has_value()) << file;
    EXPECT_EQ(sink.items.size(), count) << file;
    EXPECT_TRUE(sink.errors.empty()) << file << ": " << sink.errors.front().cause;
    std::uint64_t first = data.starts_with("\xEF\xBB\xBF") ? 3 : 0;
    expect_exact_cover(sink, data, first);
  }
}

TEST(MboxConnector, CorpusOffsetsMatchMimeKit) {
  fs::path corpus = test::corpus_dir();
  if (corpus.empty()) {
    GTEST_SKIP() << "corpus not found";
  }
  for (const char *name : {"content-length", "issue1189"}) {
    fs::path dir = corpus / "mbox" / "mimekit";
    auto json = nlohmann::json::parse(
        test::read_file(dir / "expected" / (std::string(name) + ".unix-offsets.json")));
    std::vector<std::uint64_t> want;
    for (const auto &m : json) {
      want.push_back(m.at("mboxMarkerOffset").get<std::uint64_t>());
    }
    MboxSink sink;
    ASSERT_TRUE(scan_file(dir / (std::string(name) + ".mbox.txt"), sink).has_value());
    EXPECT_EQ(offsets(sink), want) << name;
  }
}

TEST(MboxConnector, EximTestsuiteMailboxesScanWithoutFailure) {
  fs::path corpus = test::corpus_dir();
  if (corpus.empty()) {
    GTEST_SKIP() << "corpus not found";
  }
  std::size_t files = 0;
  std::size_t messages = 0;
  for (const auto &e : fs::recursive_directory_iterator(corpus / "mbox" / "exim-testsuite")) {
    if (!e.is_regular_file() || e.is_symlink()) {
      continue;
    }
    std::string data = test::read_file(e.path());
    MboxSink sink;
    ASSERT_TRUE(scan_file(e.path(), sink).has_value()) << e.path();
    ++files;
    messages += sink.items.size();
    if (!sink.items.empty()) {
      std::uint64_t covered = 0;
      for (const auto &it : sink.items) {
        covered += it.locator.length;
      }
      EXPECT_EQ(covered, data.size() - sink.items.front().locator.offset) << e.path();
    } else if (!data.empty() && data.find_first_not_of("\r\n") != std::string::npos) {
      EXPECT_FALSE(sink.errors.empty()) << e.path(); // not an mbox: said so
    }
  }
  EXPECT_EQ(files, 523U);
  // SOURCES.md counts 869 "From " lines; 6 of them are not separators: "From : p@q" (a header
  // in 0095.userx and 0101.userx) and "From should not be escaped" body lines in BSMTP files
  // (0100.user{w,y,z}, 0101.userz), which are not mboxes at all.
  EXPECT_EQ(messages, 863U);
}
