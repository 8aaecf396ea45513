// SPDX-License-Identifier: GPL-3.0-or-later
// Property test (issue 13 item 4): random valid mboxes whose messages carry hostile
// Content-Length headers; erasing any subset of messages leaves every other message
// byte-identical. Deterministic seed, a few hundred cases.
#include "connectors/mbox.hpp"
#include "connectors/store_writer.hpp"

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace maildsar;
using namespace maildsar::connectors;

namespace {

struct Sink final : ItemSink {
  std::vector<Item> items;
  std::vector<ScanError> errors;
  void item(Item &&it) override { items.push_back(std::move(it)); }
  void error(ScanError &&e) override { errors.push_back(std::move(e)); }
};

/** A valid mboxrd file: its messages and where each one starts. */
struct Generated {
  std::vector<std::string> messages; // each ends with the blank line before the next separator
  std::string file() const {
    std::string out;
    for (const std::string &m : messages) {
      out += m;
    }
    return out;
  }
};

const char *const k_words[] = {"hello", "meeting", "From", "invoice", ">From", "Content-Length: 1",
                               "From here on", "x", "", "regards"};

/**
 * Generates `n` messages. Bodies hold lines that mboxrd would quote (">From ..."), text that
 * looks like headers, and blank lines; some messages carry a Content-Length, chosen to be
 * hostile: spanning exactly one or more following messages (landing on a separator or on EOF),
 * too short, too long, or zero.
 */
Generated generate(std::mt19937 &rng, std::size_t n, bool crlf) {
  const std::string eol = crlf ? "\r\n" : "\n";
  auto pick = [&](std::size_t bound) { return std::uniform_int_distribution<std::size_t>(0, bound - 1)(rng); };
  std::vector<std::string> heads;
  std::vector<std::string> bodies;
  for (std::size_t i = 0; i < n; ++i) {
    std::string head = "From sender" + std::to_string(i) + "@example.org Mon Nov 13 10:00:" +
                       (i % 60 < 10 ? "0" : "") + std::to_string(i % 60) + " 2023" + eol +
                       "From: Person " + std::to_string(i) + " <p" + std::to_string(i) + "@example.org>" + eol +
                       "To: team@example.org" + eol + "Subject: message " + std::to_string(i) + eol +
                       "Message-ID: <m" + std::to_string(i) + "." + std::to_string(pick(100000)) + "@example.org>" + eol;
    std::string body;
    const std::size_t lines = pick(8);
    for (std::size_t l = 0; l < lines; ++l) {
      std::string line = k_words[pick(std::size(k_words))];
      if (line.starts_with("From ") || line == "From") {
        line = ">" + line; // mboxrd quoting: a body line never starts with "From "
      }
      body += line + eol;
    }
    heads.push_back(std::move(head));
    bodies.push_back(std::move(body));
  }
  // Sizes first without Content-Length, then add hostile ones (digits change the sizes, so a
  // length meant to land on a later separator is computed from the final sizes of what follows
  // and this message's own body: the header itself is not part of the span).
  Generated g;
  std::vector<std::string> finals(n);
  for (std::size_t i = n; i-- > 0;) {
    std::string cl;
    const std::uint64_t own = bodies[i].size() + eol.size(); // body + the blank line before the next From
    switch (pick(6)) {
    case 0:
    case 1: {
      // Swallow the next k messages exactly: lands on a separator, or on EOF.
      std::uint64_t span = own;
      const std::size_t k = 1 + pick(3);
      for (std::size_t j = i + 1; j < n && j <= i + k; ++j) {
        span += finals[j].size();
      }
      cl = std::to_string(span);
      break;
    }
    case 2:
      cl = std::to_string(pick(static_cast<std::size_t>(own) + 1)); // too short
      break;
    case 3:
      cl = std::to_string(own + 1 + pick(5000)); // lands nowhere in particular
      break;
    case 4:
      cl = "0";
      break;
    default:
      break; // none
    }
    std::string head = heads[i];
    if (!cl.empty()) {
      head += "Content-Length: " + cl + eol;
    }
    finals[i] = head + eol + bodies[i] + eol;
  }
  g.messages = std::move(finals);
  return g;
}

TEST(MboxProperty, HostileContentLengthNeverCostsAnotherMessage) {
  std::mt19937 rng(20261202);
  test::ScratchDir dir;
  const fs::path path = dir / "archive.mbox";
  const core::SourceConfig source{"archive", "mbox", "", path.string(), "", dir.path().string()};
  auto connector = make_mbox_connector(source);
  ASSERT_TRUE(connector.has_value());
  std::size_t cases = 0;
  std::size_t hostile_cases = 0;
  for (int round = 0; round < 300; ++round) {
    const bool crlf = round % 5 == 4;
    Generated g = generate(rng, 2 + std::uniform_int_distribution<std::size_t>(0, 8)(rng), crlf);
    const std::string data = g.file();
    hostile_cases += data.find("Content-Length") != std::string::npos ? 1U : 0U;
    test::write_file(path, data);

    // 1. The split is the generator's: one item per message, exact ranges.
    Sink sink;
    auto st = core::lstat_file(path.string());
    ASSERT_TRUE(st.has_value());
    ASSERT_TRUE((*connector)->scan(FileEntry{path.string(), "", "", *st}, 0, sink).has_value());
    ASSERT_EQ(sink.items.size(), g.messages.size()) << "round " << round << "\n" << data;
    std::uint64_t pos = 0;
    for (std::size_t i = 0; i < g.messages.size(); ++i) {
      ASSERT_EQ(sink.items[i].locator.offset, pos) << "round " << round << " message " << i;
      ASSERT_EQ(sink.items[i].locator.length, g.messages[i].size()) << "round " << round << " message " << i;
      pos += g.messages[i].size();
    }

    // 2. Erase a random non-empty subset (by the connector's locators, as erase does).
    std::vector<MboxCut> cuts;
    std::vector<bool> erased(g.messages.size(), false);
    for (std::size_t i = 0; i < g.messages.size(); ++i) {
      if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) {
        erased[i] = true;
        cuts.push_back(MboxCut{sink.items[i].locator.offset, sink.items[i].locator.length, sink.items[i].sha256});
      }
    }
    if (cuts.empty()) {
      erased[0] = true;
      cuts.push_back(MboxCut{sink.items[0].locator.offset, sink.items[0].locator.length, sink.items[0].sha256});
    }
    auto rewritten = rewrite_mbox(path.string(), cuts, StepHook{});
    ASSERT_TRUE(rewritten.has_value()) << rewritten.error().message;

    // 3. Every message not erased is there, byte-identical, in order; nothing else is.
    std::string expected;
    for (std::size_t i = 0; i < g.messages.size(); ++i) {
      if (!erased[i]) {
        expected += g.messages[i];
      }
    }
    ASSERT_EQ(test::read_file(path), expected) << "round " << round;
    ++cases;
  }
  EXPECT_EQ(cases, 300U);
  EXPECT_GT(hostile_cases, 250U); // the generator really produced hostile lengths
}

// In the mboxcl2 dialect a Content-Length is trusted only when it lands exactly on a separator
// or EOF: any other value (too short, too long, zero) leaves the "From " separators in charge.
TEST(MboxProperty, MboxclTrustsOnlyLengthsThatLandOnASeparator) {
  std::mt19937 rng(1302);
  test::ScratchDir dir;
  const fs::path path = dir / "cl.mbox";
  const core::SourceConfig source{"archive", "mbox", "mboxcl2", path.string(), "", dir.path().string()};
  auto connector = make_mbox_connector(source);
  ASSERT_TRUE(connector.has_value());
  for (int round = 0; round < 100; ++round) {
    Generated g = generate(rng, 2 + std::uniform_int_distribution<std::size_t>(0, 6)(rng), false);
    const std::string data = g.file();
    test::write_file(path, data);
    Sink sink;
    auto st = core::lstat_file(path.string());
    ASSERT_TRUE(st.has_value());
    ASSERT_TRUE((*connector)->scan(FileEntry{path.string(), "", "", *st}, 0, sink).has_value());
    // Every item starts at a generated separator and ends on one (or EOF): never mid-message.
    std::vector<std::uint64_t> starts;
    std::uint64_t pos = 0;
    for (const std::string &m : g.messages) {
      starts.push_back(pos);
      pos += m.size();
    }
    starts.push_back(pos);
    std::uint64_t covered = 0;
    for (const Item &item : sink.items) {
      EXPECT_NE(std::find(starts.begin(), starts.end(), item.locator.offset), starts.end()) << round;
      EXPECT_NE(std::find(starts.begin(), starts.end(), item.locator.offset + item.locator.length), starts.end())
          << round;
      EXPECT_EQ(item.locator.offset, covered) << round;
      covered = item.locator.offset + item.locator.length;
    }
    EXPECT_EQ(covered, data.size()) << round;
  }
}

} // namespace
