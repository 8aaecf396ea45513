// SPDX-License-Identifier: GPL-3.0-or-later
// The request register through the built binary (issue 16 item 1): a request from `request
// open` to `request close` with every step naming it, the timeline from the audit log, deadline
// monitoring in `status`, the purge of identifiers by `retention`, and the bad-input paths.
#include "tests/e2e/e2e_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <sys/stat.h>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char *k_alice_message = "From: Alice Smith <alice.smith@example.com>\n"
                                        "To: bob@example.org\n"
                                        "Date: Tue, 14 Nov 2023 10:00:00 +0000\n"
                                        "Message-ID: <casework-1@example.com>\n"
                                        "Subject: my account\n\n"
                                        "Please delete my data.\n";

/** A Maildir of bob with one message of Alice and one of Carol. */
fs::path make_estate(const fs::path &root, const std::string &extra_config = "") {
  const fs::path md = root / "mail/bob/Maildir";
  for (const char *sub : {"cur", "new", "tmp"}) {
    fs::create_directories(md / sub);
  }
  write_file(md / "cur/1700000000.M1P1.host:2,S", k_alice_message);
  write_file(md / "cur/1700000001.M2P1.host:2,S",
             "From: carol@example.net\nTo: bob@example.org\nMessage-ID: <c@example.net>\nSubject: hi\n\nhello\n");
  const fs::path config = root / "maildsar.json";
  write_file(config, R"({"state_dir": "state", "sources": [)"
                     R"({"name": "mailboxes", "type": "maildir", "path": "mail/*/Maildir", "owner": "{1}@example.org"}])" +
                         extra_config + "}");
  return config;
}

json one(const RunResult &r) {
  auto lines = json_lines(r.out);
  EXPECT_EQ(lines.size(), 1U) << r.out << r.err;
  return lines.empty() ? json() : lines.front();
}

/** `maildsar --json ARGS` must fail with `code`, with the JSON error object on stdout. */
void expect_error(const fs::path &config, const std::vector<std::string> &args, int code, std::string_view name,
                  std::string_view message_part = "") {
  auto r = ds(config, args);
  std::string joined;
  for (const auto &a : args) {
    joined += a + " ";
  }
  EXPECT_EQ(r.exit_code, code) << joined << "\n" << r.out << r.err;
  json e = one(r);
  ASSERT_TRUE(e.contains("error")) << joined << r.out;
  EXPECT_EQ(e["error"]["code"], name) << joined;
  EXPECT_EQ(e["error"]["exit_code"], code) << joined;
  if (!message_part.empty()) {
    EXPECT_NE(e["error"]["message"].get<std::string>().find(message_part), std::string::npos)
        << joined << e.dump();
  }
}

std::vector<std::string> timeline_actions(const json &shown) {
  std::vector<std::string> out;
  for (const json &t : shown.at("timeline")) {
    out.push_back(t.at("action").get<std::string>());
  }
  return out;
}

TEST(RequestE2e, ErasureRequestFromIntakeToClosingWithItsTimeline) {
  ScratchDir dir;
  const fs::path config = make_estate(dir.path());
  ASSERT_EQ(ds(config, {"index"}).exit_code, 0);

  auto opened = ds(config, {"request", "open", "--type", "erasure", "--email", "alice.smith@example.com", "--name",
                            "Alice Smith", "--received", "2026-11-30", "--note", "letter; ID checked", "--operator",
                            "dpo-anna"});
  ASSERT_EQ(opened.exit_code, 0) << opened.err;
  json r = one(opened);
  EXPECT_EQ(r["schema"], "maildsar.request");
  EXPECT_EQ(r["id"], "DSAR-2026-0001");
  EXPECT_EQ(r["type"], "erasure");
  EXPECT_EQ(r["status"], "open");
  EXPECT_EQ(r["received"], "2026-11-30");
  EXPECT_EQ(r["due"], "2026-12-30");
  EXPECT_FALSE(r.contains("subject")); // only `show` prints the identifiers
  const std::string id = r["id"];
  // The register is private: file 0600 in the 0700 state directory.
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() / "state/requests.sqlite3").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777U, 0600U);
  ASSERT_EQ(::stat((dir.path() / "state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777U, 0700U);

  // find --request takes the subject from the register; the request becomes in-progress.
  auto found = ds(config, {"find", "--request", id, "--operator", "dpo-anna"});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  auto hits = json_lines(found.out);
  ASSERT_EQ(hits.size(), 1U) << found.out;
  EXPECT_EQ(hits[0]["message_id"], "casework-1@example.com");
  EXPECT_EQ(one(ds(config, {"request", "show", id}))["status"], "in-progress");

  // The access package of the same request (export's own audit record names it).
  auto exported = ds(config, {"export", "--request", id, "--out", (dir.path() / "package").string(), "--operator",
                              "dpo-anna"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err << exported.out;
  EXPECT_NE(read_file(dir.path() / "package/manifest.json").find(id), std::string::npos);

  const fs::path manifest = dir.path() / "m.json";
  auto planned = ds(config, {"plan", "--request", id, "--out", manifest.string(), "--operator", "dpo-anna"});
  ASSERT_EQ(planned.exit_code, 0) << planned.err;
  EXPECT_EQ(one(planned)["request"], id); // the manifest names the request (not "DSAR-<today>")
  EXPECT_EQ(json::parse(read_file(manifest))["request"], id);
  // approve/erase --request check the manifest belongs to that request.
  ASSERT_EQ(ds(config, {"request", "open", "OTHER-1", "--type", "access", "--email", "x@example.net"}).exit_code, 0);
  expect_error(config, {"approve", manifest.string(), "--request", "OTHER-1", "--operator", "admin-ben"}, 65, "data",
               "belongs to request " + id);
  expect_error(config, {"approve", manifest.string(), "--request", "NOPE-1", "--operator", "admin-ben"}, 66,
               "no_input");
  auto approved = ds(config, {"approve", manifest.string(), "--request", id, "--operator", "admin-ben"});
  ASSERT_EQ(approved.exit_code, 0) << approved.err;
  auto erased = ds(config, {"erase", manifest.string(), "--request", id, "--operator", "admin-ben"});
  ASSERT_EQ(erased.exit_code, 0) << erased.err << erased.out;
  auto verified = ds(config, {"verify", "--request", id, "--operator", "dpo-anna"});
  ASSERT_EQ(verified.exit_code, 0) << verified.err << verified.out;
  EXPECT_EQ(one(verified)["clean"], true);

  ASSERT_EQ(ds(config, {"request", "update", id, "--status", "answered", "--note", "reply sent"}).exit_code, 0);
  auto closed = ds(config, {"request", "close", id, "--operator", "dpo-anna"});
  ASSERT_EQ(closed.exit_code, 0) << closed.err;
  EXPECT_EQ(one(closed)["status"], "closed");
  EXPECT_EQ(one(closed)["outcome"], "answered");

  auto shown = ds(config, {"request", "show", id});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  json s = one(shown);
  EXPECT_EQ(s["subject"]["emails"], json::array({"alice.smith@example.com"}));
  EXPECT_EQ(s["subject"]["names"], json::array({"Alice Smith"}));
  ASSERT_EQ(s["notes"].size(), 2U);
  EXPECT_EQ(s["notes"][0]["text"], "letter; ID checked");
  EXPECT_EQ(timeline_actions(s),
            (std::vector<std::string>{"request-open", "request-status", "find", "export", "plan", "approve", "erase",
                                      "certificate", "request-status", "request-note", "request-close"}));
  EXPECT_EQ(s["timeline"][1]["details"]["status"], "in-progress");
  EXPECT_EQ(s["timeline"][5]["operator"], "admin-ben");
  // The audit log never holds the subject in clear; the chain is intact.
  const std::string audit = read_file(dir.path() / "state/audit.log");
  EXPECT_EQ(audit.find("alice.smith@example.com"), std::string::npos);
  EXPECT_EQ(audit.find("Alice Smith"), std::string::npos);
  EXPECT_EQ(ds(config, {"audit", "verify"}).exit_code, 0);

  // Human output of show names the subject and the timeline.
  auto human = maildsar_run({"-c", config.string(), "request", "show", id});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("alice.smith@example.com"), std::string::npos);
  EXPECT_NE(human.out.find("certificate"), std::string::npos);
}

TEST(RequestE2e, BadInputIsRefusedWithItsExitCode) {
  ScratchDir dir;
  const fs::path config = make_estate(dir.path());
  ASSERT_EQ(ds(config, {"index"}).exit_code, 0);
  expect_error(config, {"request", "show", "DSAR-2026-0001"}, 66, "no_input");
  expect_error(config, {"find", "--request", "DSAR-2026-0001"}, 66, "no_input", "no request DSAR-2026-0001");
  expect_error(config, {"request", "open", "--email", "a@example.com"}, 64, "usage", "--type is required");
  expect_error(config, {"request", "open", "--type", "deletion", "--email", "a@example.com"}, 64, "usage");
  expect_error(config, {"request", "open", "--type", "access"}, 64, "usage", "no identifier");
  expect_error(config, {"request", "open", "--type", "access", "--email", "not an address"}, 64, "usage",
               "not an e-mail address");
  expect_error(config, {"request", "open", "--type", "access", "--phone", "CALL-ME"}, 64, "usage");
  expect_error(config, {"request", "open", "--type", "access", "--email", "a@example.com", "--received", "2026-02-30"},
               64, "usage", "calendar date");
  expect_error(config, {"request", "open", "--type", "access", "--email", "a@example.com", "--received", "2026-12-01",
                        "--today", "2026-11-30"},
               64, "usage", "after today");
  expect_error(config, {"request", "open", "../etc", "--type", "access", "--email", "a@example.com"}, 64, "usage");
  expect_error(config, {"request", "frobnicate"}, 64, "usage", "unknown action");
  expect_error(config, {"request", "list", "--due-within", "7 days"}, 64, "usage");
  expect_error(config, {"request", "open", "--type", "access", "--email", "a@example.com", "--months", "2"}, 64,
               "usage", "--months does not apply");

  ASSERT_EQ(ds(config, {"request", "open", "R-1", "--type", "access", "--email", "alice.smith@example.com",
                        "--received", "2026-01-31", "--today", "2026-02-02"})
                .exit_code,
            0);
  expect_error(config, {"request", "open", "R-1", "--type", "erasure", "--email", "b@example.com"}, 73, "cant_create",
               "exists already");
  // Extension: up to three months in total, only within the first month, with a reason.
  expect_error(config, {"request", "extend", "R-1", "--months", "1", "--today", "2026-02-10"}, 64, "usage",
               "--reason");
  expect_error(config, {"request", "extend", "R-1", "--months", "3", "--reason", "x", "--today", "2026-02-10"}, 64,
               "usage", "at most 3");
  auto ext = ds(config, {"request", "extend", "R-1", "--months", "2", "--reason", "tapes", "--today", "2026-02-10"});
  ASSERT_EQ(ext.exit_code, 0) << ext.err;
  EXPECT_EQ(one(ext)["due"], "2026-04-30");
  EXPECT_EQ(one(ext)["extension_months"], 2);
  expect_error(config, {"request", "extend", "R-1", "--months", "1", "--reason", "x", "--today", "2026-02-10"}, 64,
               "usage", "at most 3");
  expect_error(config, {"request", "extend", "NOPE", "--months", "1", "--reason", "x"}, 66, "no_input");
  // The register holds the subject: identifiers besides a registered id are refused.
  expect_error(config, {"find", "--request", "R-1", "--email", "other@example.com"}, 64, "usage", "in the register");
  expect_error(config, {"request", "update", "R-1", "--status", "refused"}, 64, "usage", "--reason");
  expect_error(config, {"request", "update", "R-1", "--status", "done"}, 64, "usage");
  ASSERT_EQ(ds(config, {"request", "close", "R-1", "--today", "2026-02-12"}).exit_code, 0);
  expect_error(config, {"request", "close", "R-1"}, 65, "data", "was closed");
  expect_error(config, {"request", "update", "R-1", "--status", "in-progress"}, 65, "data");
  // A free-text id that is not in the register still works with identifiers (as before).
  auto free_text = ds(config, {"find", "--request", "LEGACY-7", "--email", "alice.smith@example.com"});
  EXPECT_EQ(free_text.exit_code, 0) << free_text.err;
  EXPECT_EQ(json_lines(free_text.out).size(), 1U);
}

TEST(RequestE2e, StatusAndListReportOverdueAndSoonDueRequests) {
  ScratchDir dir;
  const fs::path config = make_estate(dir.path(), R"(, "max_index_age": "3650d")");
  ASSERT_EQ(ds(config, {"index"}).exit_code, 0);
  ASSERT_EQ(ds(config, {"request", "open", "A", "--type", "access", "--email", "a@example.com", "--received",
                        "2026-01-10", "--today", "2026-01-10"})
                .exit_code,
            0); // due 2026-02-10
  ASSERT_EQ(ds(config, {"request", "open", "B", "--type", "objection", "--email", "b@example.com", "--received",
                        "2026-01-31", "--today", "2026-01-31"})
                .exit_code,
            0); // due 2026-02-28
  ASSERT_EQ(ds(config, {"request", "open", "C", "--type", "access", "--email", "c@example.com", "--received",
                        "2026-01-05", "--today", "2026-01-05"})
                .exit_code,
            0);
  ASSERT_EQ(ds(config, {"request", "update", "C", "--status", "answered"}).exit_code, 0); // clock stopped

  auto fine = ds(config, {"status", "--today", "2026-02-05"});
  EXPECT_EQ(fine.exit_code, 0) << fine.out << fine.err;
  json s = one(fine)["requests"];
  EXPECT_EQ(s["running"], 2);
  EXPECT_TRUE(s["overdue"].empty());
  ASSERT_EQ(s["due_soon"].size(), 1U);
  EXPECT_EQ(s["due_soon"][0]["id"], "A");
  EXPECT_EQ(s["due_soon"][0]["days_left"], 5);

  auto late = ds(config, {"status", "--today", "2026-02-11"});
  EXPECT_EQ(late.exit_code, 1) << late.out; // monitoring alerts on an overdue request
  s = one(late)["requests"];
  ASSERT_EQ(s["overdue"].size(), 1U);
  EXPECT_EQ(s["overdue"][0]["id"], "A");
  EXPECT_EQ(s["overdue"][0]["days_left"], -1);
  EXPECT_EQ(s["overdue"][0]["overdue"], true);
  auto human = maildsar_run({"-c", config.string(), "status", "--today", "2026-02-11"});
  EXPECT_EQ(human.exit_code, 1);
  EXPECT_NE(human.out.find("request A (access) is OVERDUE"), std::string::npos) << human.out;

  auto soon = json_lines(ds(config, {"request", "list", "--due-within", "7d", "--today", "2026-02-22"}).out);
  ASSERT_EQ(soon.size(), 3U); // A (overdue), B (due in 6 days), the summary
  EXPECT_EQ(soon[0]["id"], "A");
  EXPECT_EQ(soon[1]["id"], "B");
  EXPECT_EQ(soon[2]["summary"]["requests"], 2);
  EXPECT_EQ(soon[2]["summary"]["overdue"], 1);
  auto all = json_lines(ds(config, {"request", "list"}).out);
  EXPECT_EQ(all.size(), 4U); // A, B, C and the summary
  expect_error(config, {"status", "--today", "2026-02-31"}, 64, "usage");
}

TEST(RequestE2e, RetentionPurgesClosedRequestsToKeyedHashes) {
  ScratchDir dir;
  const fs::path config = make_estate(dir.path(), R"(, "requests": {"retention": "365d"})");
  ASSERT_EQ(ds(config, {"index"}).exit_code, 0);
  ASSERT_EQ(ds(config, {"request", "open", "R-1", "--type", "erasure", "--email", "alice.smith@example.com", "--name",
                        "Alice Smith", "--received", "2026-02-01", "--today", "2026-02-01", "--note", "Alice phoned"})
                .exit_code,
            0);
  ASSERT_EQ(ds(config, {"request", "close", "R-1", "--today", "2026-02-20"}).exit_code, 0);

  auto early = ds(config, {"retention", "--now", "2027-02-19"});
  ASSERT_EQ(early.exit_code, 0) << early.err;
  EXPECT_TRUE(json_lines(early.out).back()["summary"]["requests"]["due_for_purge"].empty());
  auto dry = ds(config, {"retention", "--now", "2027-02-20"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  json req = json_lines(dry.out).back()["summary"]["requests"];
  EXPECT_EQ(req["due_for_purge"], json::array({"R-1"}));
  EXPECT_EQ(req["purged"], 0);
  EXPECT_EQ(one(ds(config, {"request", "show", "R-1"}))["subject"]["emails"], json::array({"alice.smith@example.com"}));

  auto applied = ds(config, {"retention", "--apply", "--now", "2027-02-20"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(json_lines(applied.out).back()["summary"]["requests"]["purged"], 1);
  json s = one(ds(config, {"request", "show", "R-1"}));
  EXPECT_FALSE(s.contains("subject"));
  EXPECT_FALSE(s["purged"].is_null());
  ASSERT_EQ(s["keyed_subject"].size(), 2U);
  EXPECT_EQ(s["keyed_subject"][0]["kind"], "email");
  EXPECT_EQ(s["keyed_subject"][0]["hash"].get<std::string>().size(), 64U);
  EXPECT_TRUE(s["notes"].empty());
  EXPECT_EQ(timeline_actions(s).back(), "request-purge");
  expect_error(config, {"find", "--request", "R-1"}, 65, "data", "purged");
  for (const auto &entry : fs::directory_iterator(dir.path() / "state")) {
    if (entry.path().filename().string().starts_with("requests.sqlite3")) {
      const std::string bytes = read_file(entry.path());
      EXPECT_EQ(bytes.find("alice.smith@example.com"), std::string::npos) << entry.path();
      EXPECT_EQ(bytes.find("Alice phoned"), std::string::npos) << entry.path();
    }
  }
}

} // namespace
} // namespace maildsar::test
