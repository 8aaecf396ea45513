// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end regression test of issue 13 item 12 (bounded memory): `maildsar index` over an
// estate of hostile inputs — a gzip bomb in an amavis quarantine, a delivery log whose one queue
// id has a million lines, a message with a 200 MB header line, one with 100,000 MIME parts and
// one whose To: holds 500,000 addresses — runs under a 512 MiB address-space limit (prlimit
// --as) with the default thread count, indexes every item (cut at the limits, with a warning
// naming file and position, never dropped), and `find` still finds them, also under the limit.
#include "connectors/isolate.hpp"
#include "tests/e2e/e2e_support.hpp"
#include "tests/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using maildsar::test::json_lines;
using maildsar::test::RunResult;
using maildsar::test::ScratchDir;
using maildsar::test::write_file;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char *k_address_space = "--as=536870912"; // 512 MiB
constexpr const char *k_header =
    "From: Bob Sender <bob@example.org>\r\nSubject: hostile\r\nMessage-ID: <{}@example.org>\r\n"
    "Date: Tue, 14 Nov 2023 10:00:00 +0000\r\n";

/** A gzip file written chunk by chunk (the bomb never exists uncompressed). */
class GzipWriter {
public:
  explicit GzipWriter(const fs::path &path) : m_out(path, std::ios::binary) {
    EXPECT_EQ(deflateInit2(&m_zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
  }
  ~GzipWriter() { deflateEnd(&m_zs); }
  GzipWriter(const GzipWriter &) = delete;
  GzipWriter &operator=(const GzipWriter &) = delete;
  void write(const std::string &data) { pump(data, Z_NO_FLUSH); }
  void finish() { pump({}, Z_FINISH); }

private:
  void pump(const std::string &data, int flush) {
    m_zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(data.data()));
    m_zs.avail_in = static_cast<uInt>(data.size());
    std::string buf(1U << 16U, '\0');
    int rc = Z_OK;
    do {
      m_zs.next_out = reinterpret_cast<Bytef *>(buf.data());
      m_zs.avail_out = static_cast<uInt>(buf.size());
      rc = deflate(&m_zs, flush);
      m_out.write(buf.data(), static_cast<std::streamsize>(buf.size() - m_zs.avail_out));
    } while (m_zs.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
  }
  std::ofstream m_out;
  z_stream m_zs{};
};

/** The hostile estate; returns the config path. */
fs::path make_estate(const fs::path &dir) {
  for (const char *sub : {"mail/cur", "mail/new", "mail/tmp", "quarantine", "logs"}) {
    fs::create_directories(dir / sub);
  }
  { // A gzip bomb (~1.8 MB compressed, ~1.9 GB decompressed) in an amavis quarantine.
    GzipWriter gz(dir / "quarantine" / "virus-bomb0000001.gz");
    gz.write(fmt::format(k_header, "bomb") + "To: carol@example.com\r\n\r\n");
    const std::string block = [] {
      std::string line(998, 'A');
      line += "\r\n";
      std::string b;
      for (int i = 0; i < 1024; ++i) {
        b += line;
      }
      return b;
    }();
    for (int i = 0; i < 1800; ++i) {
      gz.write(block);
    }
    gz.finish();
  }
  { // A delivery log whose one queue id has a million lines; the last names lastone@.
    GzipWriter gz(dir / "logs" / "mail.log.1.gz");
    gz.write("Nov 14 10:00:00 mx postfix/qmgr[1]: 4AB12C3D4E: from=<carol@example.com>, size=1, "
             "nrcpt=1 (queue active)\n");
    std::string chunk;
    for (int i = 0; i < 1000; ++i) {
      chunk += fmt::format("Nov 14 10:00:01 mx postfix/smtp[2]: 4AB12C3D4E: to=<r{}@example.net>, "
                           "relay=none, delay=1, status=deferred (x)\n", i);
    }
    for (int i = 0; i < 1000; ++i) {
      gz.write(chunk);
    }
    gz.write("Nov 14 10:00:02 mx postfix/smtp[2]: 4AB12C3D4E: to=<lastone@example.net>, relay=none, "
             "delay=1, status=sent (x)\n");
    gz.finish();
  }
  { // A 200 MB header line.
    std::ofstream f(dir / "mail/cur/1.M1P1.mx:2,S", std::ios::binary);
    f << fmt::format(k_header, "longheader") << "To: dave@example.com\r\nX-Junk: ";
    const std::string mib(1U << 20U, 'a');
    for (int i = 0; i < 200; ++i) {
      f << mib;
    }
    f << "\r\n\r\nbody\r\n";
  }
  { // 100,000 MIME parts.
    std::ofstream f(dir / "mail/cur/2.M2P1.mx:2,S", std::ios::binary);
    f << fmt::format(k_header, "parts")
      << "To: erin@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n";
    for (int i = 0; i < 100000; ++i) {
      f << "--b\r\nContent-Type: text/plain\r\n\r\npart text\r\n";
    }
    f << "--b--\r\n";
  }
  { // A To: with 500,000 addresses.
    std::ofstream f(dir / "mail/cur/3.M3P1.mx:2,S", std::ios::binary);
    f << fmt::format(k_header, "many") << "To: ";
    for (int i = 0; i < 500000; ++i) {
      f << (i == 0 ? "" : ",\r\n ") << "User " << i << " <u" << i << "@example.com>";
    }
    f << "\r\n\r\nbody\r\n";
  }
  fs::path cfg = dir / "memory.json";
  write_file(cfg, R"({"state_dir": "state", "sources": [
    {"name": "mail", "type": "maildir", "path": "mail"},
    {"name": "amavis", "type": "quarantine", "format": "amavis", "path": "quarantine"},
    {"name": "postfix", "type": "maillog", "format": "postfix", "path": "logs/mail.log*"}]})");
  return cfg;
}

/** `maildsar -c CFG --json ARGS...` under the address-space limit. */
RunResult limited(const fs::path &cfg, const std::vector<std::string> &args) {
  std::vector<std::string> argv{"/usr/bin/prlimit", k_address_space, "--", MAILDSAR_BINARY, "-c", cfg.string(), "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  return maildsar::test::run(argv);
}

/** The notices (warnings) of an index summary whose cause contains `what`. */
std::vector<json> notices_with(const json &summary, const std::string &what) {
  std::vector<json> out;
  for (const json &n : summary.at("notices")) {
    if (n.at("cause").get<std::string>().find(what) != std::string::npos) {
      out.push_back(n);
    }
  }
  return out;
}

std::vector<json> hits_of(const RunResult &r) {
  std::vector<json> hits;
  for (const json &j : json_lines(r.out)) {
    if (j.contains("sha256")) { // a hit (the summary has none)
      hits.push_back(j);
    }
  }
  return hits;
}

} // namespace

TEST(BoundedMemory, HostileEstateIndexesUnderHalfAGibibyteAndStaysFindable) {
  if (!maildsar::connectors::isolate::memory_limit_supported()) {
    GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot be "
                    "used in this build (the plain build runs this test)";
  }
  ScratchDir dir;
  const fs::path cfg = make_estate(dir.path());

  RunResult r = limited(cfg, {"index"}); // default thread count
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 4000);
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1U) << r.out;
  const json &summary = lines.front();
  EXPECT_EQ(summary.at("errors"), 0) << summary.dump();
  EXPECT_GE(summary.at("warnings").get<int>(), 5) << summary.dump();
  // Every item is indexed: 3 messages, the bomb, and the log transaction in parts.
  EXPECT_EQ(maildsar::test::source_counts(summary, "mail").at("items"), 3);
  EXPECT_EQ(maildsar::test::source_counts(summary, "amavis").at("items"), 1);
  EXPECT_GE(maildsar::test::source_counts(summary, "postfix").at("items").get<int>(), 100);

  // Each cut is a warning naming the file (and, for log parts, the lines).
  auto cut = notices_with(summary, "item cut at limits.max_item_mib"); // the bomb, the 200 MB file
  EXPECT_EQ(cut.size(), 2U) << summary.dump();
  EXPECT_TRUE(std::ranges::any_of(cut, [](const json &n) {
    return n.at("path").get<std::string>().find("virus-bomb0000001.gz") != std::string::npos;
  })) << summary.dump();
  auto long_line = notices_with(summary, "line(s) cut at limits.max_header_kib");
  ASSERT_EQ(long_line.size(), 1U) << summary.dump();
  EXPECT_NE(long_line[0].at("path").get<std::string>().find("1.M1P1"), std::string::npos);
  auto parts = notices_with(summary, "MIME parts beyond limits.max_mime_parts (1000)");
  ASSERT_EQ(parts.size(), 1U) << summary.dump();
  EXPECT_NE(parts[0].at("path").get<std::string>().find("2.M2P1"), std::string::npos);
  auto many = notices_with(summary, "beyond limits.max_addresses_per_role (1000)");
  ASSERT_GE(many.size(), 1U) << summary.dump();
  EXPECT_NE(many[0].at("path").get<std::string>().find("3.M3P1"), std::string::npos);
  auto split = notices_with(summary, "log transaction 4AB12C3D4E split");
  EXPECT_GE(split.size(), 100U);
  EXPECT_EQ(split.front().at("position"), "line 1");

  // Found afterwards, under the same limit: each hostile item, and the log's last line.
  struct Want {
    const char *email;
    const char *path_part;
  };
  for (const Want &w : {Want{"dave@example.com", "1.M1P1"}, Want{"erin@example.com", "2.M2P1"},
                        Want{"u999@example.com", "3.M3P1"}, Want{"bob@example.org", "virus-bomb"},
                        Want{"lastone@example.net", "mail.log.1.gz"}}) {
    RunResult f = limited(cfg, {"find", "--email", w.email});
    ASSERT_EQ(f.exit_code, 0) << w.email << ": " << f.err;
    auto hits = hits_of(f);
    ASSERT_FALSE(hits.empty()) << w.email;
    EXPECT_TRUE(std::ranges::any_of(hits, [&](const json &h) {
      return h.at("path").get<std::string>().find(w.path_part) != std::string::npos;
    })) << w.email << " " << f.out.substr(0, 2000);
  }
  // An item indexed in part says so in its hit.
  RunResult f = limited(cfg, {"find", "--email", "u1@example.com"});
  auto hits = hits_of(f);
  ASSERT_EQ(hits.size(), 1U) << f.out.substr(0, 2000);
  EXPECT_TRUE(hits[0].contains("truncated")) << hits[0].dump().substr(0, 2000);
  // The 1001st address of the To: is beyond the cap: not indexed (and the item says so above).
  EXPECT_TRUE(hits_of(limited(cfg, {"find", "--email", "u200000@example.com"})).empty());
}

TEST(BoundedMemory, LimitsOutOfRangeAreAConfigError) {
  ScratchDir dir;
  fs::create_directories(dir / "mail/cur");
  for (const char *limits : {R"({"max_item_mib": 0})", R"({"max_mime_parts": -1})",
                             R"({"max_header_kib": 4096, "max_item_mib": 1})",
                             R"({"max_addresses_per_role": "many"})", R"({"max_transaction_lines": 5})"}) {
    fs::path cfg = dir / "limits.json";
    write_file(cfg, fmt::format(R"({{"state_dir": "state", "sources": [{{"name": "mail", "type": "maildir",
      "path": "mail"}}], "limits": {}}})", limits));
    RunResult r = maildsar::test::ds(cfg, {"index"});
    EXPECT_EQ(r.exit_code, 78) << limits << ": " << r.out << r.err;
    EXPECT_NE(r.out.find("limits."), std::string::npos) << limits << ": " << r.out;
  }
}

// Regression: with the smallest configurable transaction limits, a log whose one queue id fills
// a part (100 lines) and whose never-closing transactions then outgrow the open-transactions
// budget (8 x 64 KiB) killed `index` with SIGSEGV (the empty next part was emitted as an item
// without lines). Now it indexes, and the queue id's later line is found as its part 2.
TEST(BoundedMemory, SplitTransactionAndOpenBudgetSplitDoNotCrashIndex) {
  ScratchDir dir;
  fs::create_directories(dir / "logs");
  std::string text = "Nov 14 10:00:00 mx postfix/qmgr[1]: 4AB12C3D4E: from=<big@example.com>, "
                     "size=1, nrcpt=99 (queue active)\n";
  for (int i = 1; i < 100; ++i) {
    text += fmt::format("Nov 14 10:00:01 mx postfix/smtp[2]: 4AB12C3D4E: to=<r{}@example.net>, "
                        "relay=none, delay=1, status=deferred (x)\n",
                        i);
  }
  for (int i = 0; i < 3000; ++i) {
    text += fmt::format("Nov 14 10:00:02 mx postfix/cleanup[3]: {:010X}: message-id=<m{}@"
                        "example.org> padding-padding-padding-padding-padding-padding-padding-"
                        "padding-padding-padding-padding-padding-padding-padding-padding\n",
                        0x100000 + i, i);
  }
  text += "Nov 14 10:00:03 mx postfix/smtp[2]: 4AB12C3D4E: to=<late@example.net>, relay=none, "
          "delay=3, status=sent (250 ok)\n";
  write_file(dir / "logs/mail.log", text);
  const fs::path cfg = dir / "config.json";
  write_file(cfg, fmt::format(R"({{"state_dir": "{}", "sources": [{{"name": "logs",
    "type": "maillog", "format": "postfix", "path": "{}"}}],
    "limits": {{"max_transaction_lines": 100, "max_transaction_kib": 64}}}})",
                              (dir / "state").string(), (dir / "logs/mail.log").string()));
  RunResult idx = maildsar::test::ds(cfg, {"index"});
  ASSERT_EQ(idx.exit_code, 0) << idx.err.substr(0, 2000);

  RunResult late = maildsar::test::ds(cfg, {"find", "--email", "late@example.net"});
  ASSERT_EQ(late.exit_code, 0) << late.err.substr(0, 2000);
  auto hits = json_lines(late.out);
  ASSERT_EQ(hits.size(), 1U) << late.out;
  EXPECT_EQ(hits[0].at("queue_id"), "4AB12C3D4E");
  EXPECT_EQ(hits[0].at("lines"), json::array({3101}));

  RunResult big = maildsar::test::ds(cfg, {"find", "--email", "big@example.com"});
  ASSERT_EQ(big.exit_code, 0) << big.err.substr(0, 2000);
  hits = json_lines(big.out);
  ASSERT_EQ(hits.size(), 1U) << big.out;
  EXPECT_EQ(hits[0].at("lines").size(), 100U);
}
