// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: MTA queues (issue 17 item 1) through the built binary, on the sample queues of
// samples/queue (the Exim spool written by Exim 4.96 itself, the Postfix queue files written
// from the record format and checked with postcat) beside delivery logs of the same queue ids:
// find returns the queued messages with their queue ids; plan makes them manual actions with the
// exact postsuper / exim command; trace joins a queued message with the log transaction of the
// same queue id; with allow_remove, erase runs the command and the files are gone.
#include "tests/e2e/e2e_support.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <sys/stat.h>

using maildsar::test::ds;
using maildsar::test::json_lines;
using maildsar::test::read_file;
using maildsar::test::ScratchDir;
using maildsar::test::write_file;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string k_alice = "alice.smith@example.com";
const std::string k_exim_id = "1xZ7OB-0002Tj-30";

/** The estate: both sample queues and a Postfix and an Exim log naming the same queue ids. */
fs::path make_estate(const ScratchDir &dir, const std::string &extra_queue_keys) {
  const fs::path samples = maildsar::test::source_dir() / "samples" / "queue";
  maildsar::test::copy_tree(samples / "postfix", dir / "spool/postfix");
  maildsar::test::copy_tree(samples / "exim", dir / "spool/exim4");
  fs::remove(dir / "spool/exim4/mainlog");
  write_file(dir / "logs/mail.log",
             "Nov 14 22:13:20 mx1 postfix/smtpd[1234]: A1B2C3D4E5: client=mail.example.com[203.0.113.45]\n"
             "Nov 14 22:13:20 mx1 postfix/cleanup[1235]: A1B2C3D4E5: message-id=<queued-1@example.com>\n"
             "Nov 14 22:13:20 mx1 postfix/qmgr[1236]: A1B2C3D4E5: from=<alice.smith@example.com>, size=489, "
             "nrcpt=1 (queue active)\n"
             "Nov 14 22:13:51 mx1 postfix/smtp[1237]: A1B2C3D4E5: to=<bob@example.org>, relay=none, delay=31, "
             "delays=0/0/31/0, dsn=4.4.1, status=deferred (connect to example.org[192.0.2.1]:25: Connection "
             "timed out)\n"
             "Nov 14 22:14:00 mx1 postfix/smtpd[1234]: C0FFEE1234: client=other.example.net[198.51.100.7]\n"
             "Nov 14 22:14:00 mx1 postfix/cleanup[1235]: C0FFEE1234: message-id=<other@example.net>\n"
             "Nov 14 22:14:00 mx1 postfix/qmgr[1236]: C0FFEE1234: from=<erin@example.net>, size=300, nrcpt=1 "
             "(queue active)\n");
  fs::copy_file(samples / "exim/mainlog", dir / "logs/exim-mainlog");
  const fs::path config = dir / "maildsar.json";
  write_file(config, R"({"state_dir": "state", "sources": [
    {"name": "pfqueue", "type": "postfix-queue", "path": "spool/postfix")" + extra_queue_keys + R"(},
    {"name": "eximspool", "type": "exim-spool", "path": "spool/exim4")" + extra_queue_keys + R"(},
    {"name": "pflog", "type": "maillog", "format": "postfix", "path": "logs/mail.log"},
    {"name": "eximlog", "type": "maillog", "format": "exim", "path": "logs/exim-mainlog"}]})");
  return config;
}

std::map<std::string, json> queued_hits(const std::string &out) {
  std::map<std::string, json> by_id;
  for (const json &h : json_lines(out)) {
    if (h.at("store") == "postfix-queue" || h.at("store") == "exim-spool") {
      by_id[h.at("queue_id").get<std::string>()] = h;
    }
  }
  return by_id;
}

} // namespace

TEST(MtaQueueE2e, FoundPlannedManualAndTracedWithTheLog) {
  ScratchDir dir;
  const fs::path config = make_estate(dir, "");
  // A file Postfix moved to corrupt/: read like the others, but postsuper does not act there.
  fs::create_directories(dir / "spool/postfix/corrupt");
  fs::copy_file(dir / "spool/postfix/hold/F00BA12345", dir / "spool/postfix/corrupt/D00D00D00D");
  auto idx = maildsar::test::index_json(config);
  ASSERT_EQ(idx.at("errors"), 0) << idx.dump();
  EXPECT_EQ(maildsar::test::source_counts(idx, "pfqueue").at("items"), 3);
  EXPECT_EQ(maildsar::test::source_counts(idx, "eximspool").at("items"), 2);

  auto found = ds(config, {"find", "--email", k_alice});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  auto queued = queued_hits(found.out);
  ASSERT_EQ(queued.size(), 4U) << found.out; // deferred, hold (appended recipient), corrupt, the Exim message
  const json &deferred = queued.at("A1B2C3D4E5");
  EXPECT_EQ(deferred.at("store"), "postfix-queue");
  EXPECT_EQ(deferred.at("folder"), "deferred");
  EXPECT_EQ(deferred.at("message_id"), "queued-1@example.com");
  EXPECT_TRUE(deferred.at("path").get<std::string>().ends_with("/spool/postfix/deferred/A/A1B2C3D4E5"));
  EXPECT_EQ(queued.at("F00BA12345").at("folder"), "hold");
  const json &spooled = queued.at(k_exim_id);
  EXPECT_EQ(spooled.at("store"), "exim-spool");
  EXPECT_EQ(spooled.at("message_id"), "spooled-1@example.com");
  bool envelope = false;
  for (const json &m : deferred.at("matched")) {
    for (const json &r : m.at("roles")) {
      envelope = envelope || r == "envelope-from";
    }
  }
  EXPECT_TRUE(envelope) << deferred.dump();
  // The client IP of the queue file's envelope is found as any IP is.
  auto by_ip = ds(config, {"find", "--ip", "203.0.113.45"});
  EXPECT_EQ(queued_hits(by_ip.out).count("A1B2C3D4E5"), 1U) << by_ip.out;

  const fs::path manifest = dir / "manifest.json";
  auto plan = ds(config, {"plan", "--email", k_alice, "--out", manifest.string(), "--operator", "dpo-anna"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err << plan.out;
  json mj = json::parse(read_file(manifest));
  std::map<std::string, json> planned;
  for (const json &item : mj.at("items")) {
    const std::string store = item.at("locator").at("store");
    if (store == "postfix-queue" || store == "exim-spool") {
      planned[item.at("locator").at("queue_id").get<std::string>()] = item;
    }
  }
  ASSERT_EQ(planned.size(), 4U) << mj.dump(1);
  for (const auto &[id, item] : planned) {
    EXPECT_EQ(item.at("action"), "manual") << item.dump();
  }
  EXPECT_NE(planned.at("A1B2C3D4E5").at("instructions").get<std::string>().find(
                "/usr/sbin/postsuper -d A1B2C3D4E5 deferred"),
            std::string::npos)
      << planned.at("A1B2C3D4E5").dump();
  EXPECT_NE(planned.at("F00BA12345").at("instructions").get<std::string>().find("/usr/sbin/postsuper -d F00BA12345 hold"),
            std::string::npos);
  EXPECT_NE(planned.at(k_exim_id).at("instructions").get<std::string>().find("/usr/sbin/exim -Mrm " + k_exim_id),
            std::string::npos)
      << planned.at(k_exim_id).dump();
  const std::string by_hand = planned.at("D00D00D00D").at("instructions");
  EXPECT_EQ(by_hand.find("postsuper"), std::string::npos) << by_hand;
  EXPECT_NE(by_hand.find("remove " + (dir / "spool/postfix/corrupt/D00D00D00D").string()), std::string::npos) << by_hand;

  // trace: the queued copy and the log transaction of the same queue id, joined.
  for (const auto &[mid, qid, store] : {std::tuple<std::string, std::string, std::string>{"queued-1@example.com", "A1B2C3D4E5", "postfix-queue"},
                                        {"spooled-1@example.com", k_exim_id, "exim-spool"}}) {
    auto traced = ds(config, {"trace", "<" + mid + ">"});
    ASSERT_EQ(traced.exit_code, 0) << traced.err;
    std::string log_id;
    const json *queue_copy = nullptr;
    auto lines = json_lines(traced.out);
    for (const json &c : lines) {
      if (c.at("kind") == "copy" && c.at("store") == "maillog" && c.value("queue_id", "") == qid) {
        log_id = c.at("id");
      }
      if (c.at("kind") == "copy" && c.at("store") == store) {
        queue_copy = &c;
      }
    }
    ASSERT_FALSE(log_id.empty()) << traced.out;
    ASSERT_NE(queue_copy, nullptr) << traced.out;
    EXPECT_EQ(queue_copy->at("queue_id"), qid);
    EXPECT_EQ(queue_copy->at("same_queue_id"), json::array({log_id})) << traced.out;
  }
  // export: the queued copy carries the envelope (alice is only an envelope recipient of the
  // held message).
  auto exported = ds(config, {"export", "--email", k_alice, "--out", (dir / "package").string()});
  ASSERT_EQ(exported.exit_code, 0) << exported.err << exported.out;
  json pkg = json::parse(read_file(dir / "package/manifest.json"));
  std::string held_copy;
  for (const json &item : pkg.at("items")) {
    if (item.at("location").get<std::string>().ends_with("/hold/F00BA12345")) {
      held_copy = read_file(dir / "package" / item.at("copy").get<std::string>());
      EXPECT_EQ(item.at("category"), "message waiting in a mail server queue");
    }
  }
  EXPECT_TRUE(held_copy.starts_with("X-Maildsar-Queue: postfix-queue hold F00BA12345\n")) << held_copy;
  EXPECT_NE(held_copy.find("X-Maildsar-Envelope-To: <alice.smith@example.com> (recipient)\n"), std::string::npos)
      << held_copy;
  EXPECT_NE(held_copy.find("\nSubject: Held\n"), std::string::npos) << held_copy;

  // Nothing was changed.
  EXPECT_TRUE(fs::exists(dir / "spool/postfix/deferred/A/A1B2C3D4E5"));
}

TEST(MtaQueueE2e, AllowRemoveRunsTheCommandJournalledAndTheFilesAreGone) {
  ScratchDir dir;
  // Stand-ins for postsuper and exim that do what the real ones do to these files.
  const fs::path postsuper = dir / "bin/postsuper";
  write_file(postsuper, "#!/bin/sh\n[ \"$1\" = -d ] || exit 64\nfind \"" + (dir / "spool/postfix").string() +
                            "/$3\" -name \"$2\" -type f -delete\n");
  const fs::path exim = dir / "bin/exim";
  write_file(exim, "#!/bin/sh\n[ \"$1\" = -Mrm ] || exit 64\nrm -f \"" + (dir / "spool/exim4/input").string() +
                       "/$2-H\" \"" + (dir / "spool/exim4/input").string() + "/$2-D\"\n");
  ::chmod(postsuper.c_str(), 0700);
  ::chmod(exim.c_str(), 0700);
  const fs::path config = make_estate(dir, R"(, "allow_remove": true, "command": ")" + dir.path().string() + "/bin/CMD\"");
  // one command per type
  std::string text = read_file(config);
  text.replace(text.find("/bin/CMD"), 8, "/bin/postsuper");
  text.replace(text.find("/bin/CMD"), 8, "/bin/exim");
  write_file(config, text);
  ASSERT_EQ(maildsar::test::index_json(config).at("errors"), 0);

  const fs::path manifest = dir / "manifest.json";
  ASSERT_EQ(ds(config, {"plan", "--email", k_alice, "--out", manifest.string(), "--operator", "dpo-anna"}).exit_code, 0);
  json mj = json::parse(read_file(manifest));
  std::size_t deletes = 0;
  for (const json &item : mj.at("items")) {
    const std::string store = item.at("locator").at("store");
    if (store == "postfix-queue" || store == "exim-spool") {
      EXPECT_EQ(item.at("action"), "delete") << item.dump();
      EXPECT_NE(item.at("reason").get<std::string>().find("allow_remove"), std::string::npos);
      ++deletes;
    }
  }
  EXPECT_EQ(deletes, 3U);
  ASSERT_EQ(ds(config, {"approve", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
  auto erase = ds(config, {"erase", manifest.string(), "--operator", "ops-cleo"});
  ASSERT_EQ(erase.exit_code, 0) << erase.err << erase.out;
  auto report = json::parse(erase.out);
  EXPECT_EQ(report.at("counts").at("postfix-queue").at("done"), 2) << report.dump(1);
  EXPECT_EQ(report.at("counts").at("exim-spool").at("done"), 1) << report.dump(1);

  EXPECT_FALSE(fs::exists(dir / "spool/postfix/deferred/A/A1B2C3D4E5"));
  EXPECT_FALSE(fs::exists(dir / "spool/postfix/hold/F00BA12345"));
  EXPECT_FALSE(fs::exists(dir / "spool/exim4/input" / (k_exim_id + "-H")));
  EXPECT_FALSE(fs::exists(dir / "spool/exim4/input" / (k_exim_id + "-D")));
  EXPECT_TRUE(fs::exists(dir / "spool/exim4/input/1xZ7OB-0002Tm-34-H")); // erin's message stays
  EXPECT_TRUE(queued_hits(ds(config, {"find", "--email", k_alice}).out).empty());
  auto verify = ds(config, {"verify", "--email", k_alice});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}
