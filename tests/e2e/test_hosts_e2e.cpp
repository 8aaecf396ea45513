// SPDX-License-Identifier: GPL-3.0-or-later
// One estate across hosts (issue 15, first slice) through the built binary: two "hosts", each a
// copy of samples/ with its own config and state, reached by the program transport running
// `maildsar -c HOST/maildsar.json agent`, and a DPO config with no local sources.
#include "core/config.hpp"
#include "core/hash.hpp"
#include "remote/host_client.hpp"
#include "remote/protocol.hpp"
#include "tests/e2e/e2e_support.hpp"
#include "tests/e2e/listening_agent.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/** Extra top-level keys for a host's config. */
std::string fmt_host_name(const std::string &name, const std::string &max_age) {
  std::string s = ", \"host_name\": \"" + name + "\"";
  if (!max_age.empty()) {
    s += ", \"max_index_age\": \"" + max_age + "\"";
  }
  return s;
}

std::string fmt_items(const std::string &host, std::size_t n) { return host + " (" + std::to_string(n) + " item(s))"; }

/** A copy of samples/ under `dir/name`, indexed; `max_age` replaces max_index_age when given. */
fs::path make_host(const fs::path &dir, const std::string &name, const std::string &max_age = "") {
  const fs::path root = dir / name;
  copy_tree(source_dir() / "samples", root);
  fs::remove_all(root / "state");
  const fs::path config = root / "maildsar.json";
  std::string text = read_file(config);
  const auto brace = text.rfind('}');
  text.insert(brace, fmt_host_name(name, max_age));
  write_file(config, text);
  index_json(config);
  return config;
}

json program_host(const std::string &name, const std::vector<std::string> &command) {
  return json{{"name", name}, {"transport", "program"}, {"command", command}};
}

json agent_of(const std::string &name, const fs::path &config) {
  return program_host(name, {MAILDSAR_BINARY, "-c", config.string(), "agent"});
}

/** The DPO's config: no local sources, only `hosts`. */
fs::path dpo_config(const fs::path &dir, const json &hosts) {
  const fs::path config = dir / "dpo" / "maildsar.json";
  write_file(config, json{{"state_dir", "state"}, {"hosts", hosts}}.dump(2));
  return config;
}

/** find --json lines split into hits and the closing maildsar.hosts summary. */
struct FindOutput {
  std::vector<json> hits;
  json summary;
};

FindOutput split(const RunResult &r) {
  FindOutput f;
  for (json &j : json_lines(r.out)) {
    if (j.contains("schema")) {
      EXPECT_TRUE(f.summary.is_null()) << "one summary only: " << r.out;
      f.summary = std::move(j);
    } else {
      EXPECT_TRUE(f.summary.is_null()) << "the summary comes last: " << r.out;
      f.hits.push_back(std::move(j));
    }
  }
  return f;
}

std::set<std::string> ids_of_local_find(const fs::path &config) {
  auto r = ds(config, {"find", "--email", "alice.smith@example.com"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> ids;
  for (const json &h : json_lines(r.out)) {
    EXPECT_FALSE(h.contains("host")) << "a local hit has no host field: " << h.dump();
    ids.insert(h.at("id").get<std::string>() + " " + h.at("path").get<std::string>());
  }
  return ids;
}

/** Lines of a host's audit log whose action is `action`. */
std::vector<json> audit_records(const fs::path &host_root, const std::string &action) {
  std::vector<json> out;
  for (json &j : json_lines(read_file(host_root / "state" / "audit.log"))) {
    if (j.value("action", "") == action) {
      out.push_back(std::move(j));
    }
  }
  return out;
}

class HostsE2e : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    s_dir = new ScratchDir();
    s_mx1 = make_host(s_dir->path(), "mx1");
    s_imap = make_host(s_dir->path(), "imap");
  }
  static void TearDownTestSuite() {
    delete s_dir;
    s_dir = nullptr;
  }
  static inline ScratchDir *s_dir = nullptr;
  static inline fs::path s_mx1;
  static inline fs::path s_imap;
};

TEST_F(HostsE2e, FindReturnsTheHitsOfEveryHostWithItsName) {
  ScratchDir dpo;
  const fs::path config = dpo_config(dpo.path(), json::array({agent_of("mx1", s_mx1), agent_of("imap", s_imap)}));
  const std::size_t mx1_audit_before = audit_records(s_mx1.parent_path(), "find").size();
  auto r = ds(config, {"find", "--email", "alice.smith@example.com"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const FindOutput f = split(r);
  // Exactly what each host finds locally, each hit named with its host.
  std::map<std::string, std::set<std::string>> got;
  for (const json &h : f.hits) {
    ASSERT_TRUE(h.contains("host")) << h.dump();
    got[h["host"].get<std::string>()].insert(h.at("id").get<std::string>() + " " + h.at("path").get<std::string>());
    EXPECT_FALSE(h.at("matched").empty());
    EXPECT_EQ(h.at("matched")[0].at("identifier"), "alice.smith@example.com");
  }
  const std::set<std::string> mx1 = ids_of_local_find(s_mx1);
  const std::set<std::string> imap = ids_of_local_find(s_imap);
  EXPECT_GE(mx1.size(), 4U) << "the samples hold Alice in the Maildirs, the mbox, the quarantine and the log";
  EXPECT_EQ(got["mx1"], mx1);
  EXPECT_EQ(got["imap"], imap);
  EXPECT_EQ(got.size(), 2U);
  for (const json &h : f.hits) {
    const std::string root = (h["host"] == "mx1" ? s_mx1 : s_imap).parent_path().string() + "/";
    EXPECT_TRUE(h["path"].get<std::string>().starts_with(root)) << h.dump();
  }
  // The summary says every host was searched.
  ASSERT_TRUE(f.summary.is_object()) << r.out;
  EXPECT_EQ(f.summary["schema"], "maildsar.hosts");
  EXPECT_EQ(f.summary["version"], 1);
  EXPECT_EQ(f.summary["complete"], true);
  EXPECT_EQ(f.summary["not_searched"], json::array());
  ASSERT_EQ(f.summary["hosts"].size(), 2U);
  EXPECT_EQ(f.summary["hosts"][0]["name"], "mx1");
  EXPECT_EQ(f.summary["hosts"][0]["searched"], true);
  EXPECT_EQ(f.summary["hosts"][0]["items"], mx1.size());
  EXPECT_EQ(f.summary["hosts"][1]["items"], imap.size());
  // The agent's host recorded the search in its own audit log, without the identity in clear.
  const std::vector<json> audit = audit_records(s_mx1.parent_path(), "find");
  ASSERT_EQ(audit.size(), mx1_audit_before + 1);
  EXPECT_EQ(audit.back().dump().find("alice.smith"), std::string::npos) << audit.back().dump();
  EXPECT_NE(audit.back().dump().find("\"via\":\"agent\""), std::string::npos) << audit.back().dump();

  // Human output shows the host of each hit and which hosts were searched.
  auto human = maildsar_run({"-c", config.string(), "find", "--email", "alice.smith@example.com"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("  mx1:mailboxes"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("  imap:postfix"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find(std::to_string(mx1.size() + imap.size()) + " item(s) held for the subject"),
            std::string::npos)
      << human.out;
  EXPECT_NE(human.out.find(fmt_items("mx1", mx1.size()) + ", " + fmt_items("imap", imap.size())), std::string::npos)
      << human.out;
}

TEST_F(HostsE2e, AnUnreachableHostFailsFindNamingItUnlessAllowedMissing) {
  ScratchDir dpo;
  for (const json &bad : {program_host("mx2", {"/nonexistent/bin/maildsar", "agent"}),
                          program_host("mx2", {"/bin/false"})}) {
    const fs::path config = dpo_config(dpo.path(), json::array({agent_of("mx1", s_mx1), bad}));
    auto r = ds(config, {"find", "--email", "alice.smith@example.com"});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("maildsar: error: host mx2: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("find gives no answer while a host of the estate could not be searched"), std::string::npos);
    const FindOutput f = split(r);
    EXPECT_TRUE(f.hits.empty()) << "nothing printed as if complete: " << r.out;
    ASSERT_TRUE(f.summary.is_object()) << r.out;
    EXPECT_EQ(f.summary["complete"], false);
    EXPECT_EQ(f.summary["not_searched"], json::array({"mx2"}));
    EXPECT_EQ(f.summary["hosts"][1]["allowed_missing"], false);
    EXPECT_NE(f.summary["hosts"][1]["error"].get<std::string>().find("host mx2: "), std::string::npos);

    // Knowingly without it: mx1's hits, a warning, and the output says mx2 was not searched.
    auto allowed = ds(config, {"find", "--email", "alice.smith@example.com", "--allow-missing-host", "mx2"});
    EXPECT_EQ(allowed.exit_code, 0) << allowed.out << allowed.err;
    EXPECT_NE(allowed.err.find("maildsar: warning: host mx2: "), std::string::npos) << allowed.err;
    EXPECT_NE(allowed.err.find("NOT SEARCHED (--allow-missing-host mx2)"), std::string::npos) << allowed.err;
    const FindOutput a = split(allowed);
    EXPECT_EQ(a.hits.size(), ids_of_local_find(s_mx1).size());
    for (const json &h : a.hits) {
      EXPECT_EQ(h["host"], "mx1");
    }
    EXPECT_EQ(a.summary["complete"], false);
    EXPECT_EQ(a.summary["not_searched"], json::array({"mx2"}));
    EXPECT_EQ(a.summary["hosts"][1]["searched"], false);
    EXPECT_EQ(a.summary["hosts"][1]["allowed_missing"], true);
    // ... and the DPO host's audit log records the search that left mx2 out.
    const std::vector<json> audit = audit_records(dpo.path() / "dpo", "find");
    ASSERT_FALSE(audit.empty());
    EXPECT_EQ(audit.back()["details"]["hosts_not_searched"], json::array({"mx2"})) << audit.back().dump();
  }
  // Naming a host that is not configured is a usage error.
  const fs::path config = dpo_config(dpo.path(), json::array({agent_of("mx1", s_mx1)}));
  auto r = ds(config, {"find", "--email", "alice.smith@example.com", "--allow-missing-host", "mx9"});
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("--allow-missing-host mx9: no such host in the config"), std::string::npos) << r.err;
}

TEST_F(HostsE2e, AProtocolMismatchOrAnAgentWithoutItsConfigIsNamed) {
  ScratchDir dpo;
  const fs::path config = dpo_config(
      dpo.path(),
      json::array({agent_of("mx1", s_mx1),
                   program_host("old", {"/bin/sh", "-c", R"(read l; echo '{"ok":true,"op":"hello","version":2}'; cat >/dev/null)"}),
                   agent_of("lost", dpo.path() / "missing.json")}));
  auto r = ds(config, {"find", "--email", "alice.smith@example.com"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("host old: protocol version mismatch: this maildsar speaks version 1, the agent answered "
                       "version 2"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("host lost: the agent ended the connection without answering hello (exit status 66)"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(split(r).hits.empty());
}

TEST_F(HostsE2e, AStaleHostFailsFindAndStatus) {
  ScratchDir dir;
  const fs::path stale = make_host(dir.path(), "mx3", "1s");
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  const fs::path config = dpo_config(dir.path(), json::array({agent_of("mx1", s_mx1), agent_of("mx3", stale)}));
  auto r = ds(config, {"find", "--email", "alice.smith@example.com"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("host mx3: its index is stale (sources mailboxes, archive, amavis, postfix; oldest indexed "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("max_index_age 1s"), std::string::npos) << r.err;
  EXPECT_TRUE(split(r).hits.empty());

  auto st = ds(config, {"status"});
  EXPECT_EQ(st.exit_code, 1) << st.err;
  const json status = json_lines(st.out).at(0);
  ASSERT_EQ(status["hosts"].size(), 2U) << st.out;
  EXPECT_EQ(status["hosts"][0]["name"], "mx1");
  EXPECT_EQ(status["hosts"][0]["ok"], true);
  EXPECT_EQ(status["hosts"][0]["agent_host"], "mx1");
  EXPECT_EQ(status["hosts"][1]["reachable"], true);
  EXPECT_EQ(status["hosts"][1]["stale"], true);
  EXPECT_EQ(status["hosts"][1]["max_index_age_seconds"], 1);
  EXPECT_GE(status["hosts"][1]["index_age_seconds"].get<int>(), 2);
}

TEST_F(HostsE2e, StatusReportsEachHostAndFailsWhenOneIsUnreachable) {
  ScratchDir dpo;
  const fs::path good = dpo_config(dpo.path(), json::array({agent_of("mx1", s_mx1), agent_of("imap", s_imap)}));
  auto ok = ds(good, {"status"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  const json s = json_lines(ok.out).at(0);
  ASSERT_EQ(s["hosts"].size(), 2U);
  for (const json &h : s["hosts"]) {
    EXPECT_EQ(h["reachable"], true) << h.dump();
    EXPECT_EQ(h["stale"], false);
    EXPECT_LT(h["index_age_seconds"].get<int>(), 3600);
    EXPECT_EQ(h["error"], "");
  }
  auto human = maildsar_run({"-c", good.string(), "status"});
  EXPECT_NE(human.out.find("host imap         ok, index age "), std::string::npos) << human.out;

  const fs::path bad = dpo_config(dpo.path(), json::array({agent_of("mx1", s_mx1), program_host("mx2", {"/bin/false"})}));
  auto r = ds(bad, {"status"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const json b = json_lines(r.out).at(0);
  EXPECT_EQ(b["hosts"][0]["ok"], true);
  EXPECT_EQ(b["hosts"][1]["reachable"], false);
  EXPECT_NE(b["hosts"][1]["error"].get<std::string>().find("host mx2: the agent ended the connection"), std::string::npos)
      << b.dump();
  auto human_bad = maildsar_run({"-c", bad.string(), "status"});
  EXPECT_NE(human_bad.out.find("host mx2          UNREACHABLE: host mx2: "), std::string::npos) << human_bad.out;
}

/** Runs `maildsar -c CONFIG agent` with `input` on its stdin (through sh: printf-free, a file). */
RunResult agent_session(const fs::path &dir, const fs::path &config, const std::string &input) {
  const fs::path in = dir / "agent-input";
  write_file(in, input);
  return run({"/bin/sh", "-c", "exec \"$0\" -c \"$1\" agent < \"$2\"", MAILDSAR_BINARY, config.string(), in.string()});
}

TEST_F(HostsE2e, TheAgentBinaryAnswersTheProtocolAndRefusesWhatItMust) {
  ScratchDir dir;
  const std::string hello = R"({"op":"hello","version":1})" "\n";
  auto r = agent_session(dir.path(), s_mx1,
                         hello + R"({"op":"status"})" "\n"
                                 R"({"op":"find","subject":{"emails":["alice.smith@example.com"],"shoe_size":42}})" "\n"
                                 R"({"op":"find","subject":"alice"})" "\n"
                                 R"({"op":"find","subject":{"emails":[]}})" "\n"
                                 R"({"op":"shred","manifest":"m.json"})" "\n"
                                 "{{{\n"
                                 R"({"op":"find","subject":{"emails":["alice.smith@example.com"]}})" "\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::vector<json> lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 8U) << r.out;
  EXPECT_EQ(lines[0]["host"], "mx1");
  EXPECT_EQ(lines[0]["ops"], json::array({"hello", "affected", "erase", "export", "export_done", "export_read", "find", "plan", "retention", "show", "status", "trace", "verify"}));
  EXPECT_EQ(lines[1]["stale"], false);
  ASSERT_EQ(lines[1]["sources"].size(), 4U);
  EXPECT_EQ(lines[1]["sources"][0]["name"], "mailboxes");
  EXPECT_EQ(lines[1]["max_index_age_seconds"], 86400);
  EXPECT_EQ(lines[2]["ok"], false);
  EXPECT_NE(lines[2]["error"]["message"].get<std::string>().find("shoe_size"), std::string::npos) << lines[2].dump();
  EXPECT_EQ(lines[3]["error"]["message"], R"(find: "subject" must be a subject object)");
  EXPECT_EQ(lines[4]["error"]["message"], "find: the subject has no identifier");
  EXPECT_EQ(lines[5]["error"]["message"], "unknown op 'shred'");
  EXPECT_EQ(lines[6]["error"]["message"], "request is not a JSON object");
  EXPECT_EQ(lines[7]["ok"], true);
  EXPECT_EQ(lines[7]["hits"].size(), ids_of_local_find(s_mx1).size());
  EXPECT_EQ(lines[7]["partially_indexed"], 0);

  // Another version: refused naming both, the session ends (exit 1), nothing else is read.
  auto v = agent_session(dir.path(), s_mx1, R"({"op":"hello","version":7})" "\n" R"({"op":"status"})" "\n");
  EXPECT_EQ(v.exit_code, 1);
  const std::vector<json> vl = json_lines(v.out);
  ASSERT_EQ(vl.size(), 1U) << v.out;
  EXPECT_NE(vl[0]["error"]["message"].get<std::string>().find("this agent speaks version 1, the client asked for 7"),
            std::string::npos);

  // A line beyond 64 MiB: an error, then the session is closed.
  auto big = agent_session(dir.path(), s_mx1, hello + std::string((64U << 20U) + 10, 'x') + "\n" + R"({"op":"status"})" "\n");
  EXPECT_EQ(big.exit_code, 1);
  const std::vector<json> bl = json_lines(big.out);
  ASSERT_EQ(bl.size(), 2U) << big.out.substr(0, 500);
  EXPECT_NE(bl[1]["error"]["message"].get<std::string>().find("request longer than 67108864 bytes"), std::string::npos);

  // An agent whose own sources are not indexed refuses find (not_indexed), as local find would.
  const fs::path fresh = dir.path() / "fresh";
  copy_tree(source_dir() / "samples", fresh);
  fs::remove_all(fresh / "state");
  auto ni = agent_session(dir.path(), fresh / "maildsar.json",
                          hello + R"({"op":"status"})" "\n" R"({"op":"find","subject":{"emails":["a@example.com"]}})" "\n");
  const std::vector<json> nl = json_lines(ni.out);
  ASSERT_EQ(nl.size(), 3U) << ni.out << ni.err;
  EXPECT_EQ(nl[1]["stale"], true);
  EXPECT_EQ(nl[1]["index_age_seconds"], nullptr);
  EXPECT_EQ(nl[2]["error"]["code"], "not_indexed");
}

json connect_host(const std::string &name, const fs::path &socket) {
  return program_host(name, {connect_binary().string(), socket.string()});
}

TEST_F(HostsE2e, AListeningAgentAnswersAsTheForcedCommandDoesAndFailsLoudWhenGone) {
  ScratchDir dir;
  const fs::path sock = dir.path() / "mx1.sock";
  const fs::path log = dir.path() / "agent.log";
  ListeningAgent agent(s_mx1, sock, log);
  ASSERT_TRUE(fs::exists(fs::symlink_status(sock))) << read_file(log);
  EXPECT_EQ(fs::status(sock).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);

  // The same answer as an agent process per search, twice (a fresh session each time).
  const fs::path direct = dpo_config(dir.path() / "direct", json::array({agent_of("mx1", s_mx1)}));
  const fs::path listening = dpo_config(dir.path() / "listening", json::array({connect_host("mx1", sock)}));
  const std::size_t audit_before = audit_records(s_mx1.parent_path(), "find").size();
  auto want = ds(direct, {"find", "--email", "alice.smith@example.com"});
  ASSERT_EQ(want.exit_code, 0) << want.err;
  for (int round = 0; round < 2; ++round) {
    auto got = ds(listening, {"find", "--email", "alice.smith@example.com"});
    ASSERT_EQ(got.exit_code, 0) << got.out << got.err << read_file(log);
    EXPECT_EQ(split(got).hits, split(want).hits);
    EXPECT_EQ(split(got).summary["complete"], true);
  }
  // Each search through the socket is on the host's timeline, as through the forced command.
  const std::vector<json> audit = audit_records(s_mx1.parent_path(), "find");
  ASSERT_EQ(audit.size(), audit_before + 3);
  EXPECT_EQ(audit.back()["details"]["via"], "agent");
  // status through it too, and an export, whose files cross the connector in chunks of
  // ~700 KiB lines.
  auto status = ds(listening, {"status"});
  EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
  const fs::path package = dir.path() / "package";
  auto exported = ds(listening, {"export", "--email", "alice.smith@example.com", "--out", package.string()});
  ASSERT_EQ(exported.exit_code, 0) << exported.out << exported.err << read_file(log);
  const json host_manifest = json::parse(read_file(package / "hosts" / "mx1" / "manifest.json"));
  EXPECT_EQ(host_manifest["items"].size(), split(want).hits.size());
  EXPECT_TRUE(fs::exists(package / "hosts" / "mx1" / "report.html"));

  // A config the agent can no longer read: the session says why, and find names the host.
  const fs::path moved = s_mx1.string() + ".moved";
  fs::rename(s_mx1, moved);
  auto broken = ds(listening, {"find", "--email", "alice.smith@example.com"});
  fs::rename(moved, s_mx1);
  EXPECT_EQ(broken.exit_code, 1) << broken.out << broken.err;
  EXPECT_NE(broken.err.find("maildsar: error: host mx1: "), std::string::npos) << broken.err;
  EXPECT_NE(broken.err.find("maildsar.json"), std::string::npos) << broken.err;

  // Stopped: the socket is gone and find fails naming the host, never "nothing held".
  EXPECT_EQ(agent.stop(), 0) << read_file(log);
  EXPECT_FALSE(fs::exists(fs::symlink_status(sock)));
  auto gone = ds(listening, {"find", "--email", "alice.smith@example.com"});
  EXPECT_EQ(gone.exit_code, 1) << gone.out << gone.err;
  EXPECT_NE(gone.err.find("maildsar: error: host mx1: "), std::string::npos) << gone.err;
  EXPECT_NE(gone.err.find("is `maildsar agent --listen"), std::string::npos) << gone.err;
  EXPECT_TRUE(split(gone).hits.empty());
}

TEST(HostsConnect, TheConnectorSaysHowItIsUsed) {
  const std::string connect = connect_binary().string();
  auto none = run({connect});
  EXPECT_EQ(none.exit_code, 64);
  EXPECT_NE(none.err.find("usage: maildsar-connect SOCKET"), std::string::npos) << none.err;
  auto help = run({connect, "--help"});
  EXPECT_EQ(help.exit_code, 0);
  auto missing = run({connect, "/nonexistent/agent.sock"});
  EXPECT_EQ(missing.exit_code, 69);
  EXPECT_NE(missing.err.find("/nonexistent/agent.sock: No such file or directory"), std::string::npos) << missing.err;
  auto too_long = run({connect, "/" + std::string(200, 'x')});
  EXPECT_EQ(too_long.exit_code, 64);
}

// An agent may end a session before reading what it was sent: a session whose config cannot be
// read answers hello with the reason and closes. The connector was then often still writing the
// client's request; its write failed and it ended at once, dropping the reason the agent had
// already sent, so the client saw only "ended the connection without answering hello" (a CI run
// of HostsE2e.AListeningAgentAnswersAsTheForcedCommandDoesAndFailsLoudWhenGone failed so). Here
// the connector is kept writing 4 MiB that the stand-in agent never reads, when it answers and
// closes: the answer must still reach the client.
TEST(HostsConnect, WhatTheAgentSaidReachesTheClientWhenItClosedWithTheInputUnread) {
  ScratchDir dir;
  const fs::path sock = dir.path() / "a.sock";
  const fs::path input = dir.path() / "input";
  write_file(input, std::string(4U << 20U, 'x') + "\n");
  const int server = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(server, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(sock.string().size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, sock.c_str(), sock.string().size());
  ASSERT_EQ(::bind(server, reinterpret_cast<const sockaddr *>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(server, 1), 0);
  const std::string answer = R"({"op":"hello","ok":false,"error":{"message":"config unreadable"}})" "\n";
  std::thread agent([&] {
    const int fd = ::accept(server, nullptr, nullptr);
    if (fd < 0) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300)); // the connector blocks on its write
    (void)::write(fd, answer.data(), answer.size());
    ::close(fd); // the input unread
  });
  const std::string connect = connect_binary().string();
  auto r = run({"/bin/sh", "-c", R"(exec "$0" "$1" < "$2")", connect, sock.string(), input.string()});
  agent.join();
  ::close(server);
  EXPECT_EQ(r.out, answer) << r.err;
  EXPECT_EQ(r.exit_code, 74) << r.err;
  EXPECT_NE(r.err.find("the agent closed the connection"), std::string::npos) << r.err;
}

TEST_F(HostsE2e, LocalSourcesAndHostsTogether) {
  ScratchDir dir;
  copy_tree(source_dir() / "samples", dir.path() / "dpo");
  fs::remove_all(dir.path() / "dpo" / "state");
  const fs::path config = dir.path() / "dpo" / "maildsar.json";
  std::string text = read_file(config);
  text.insert(text.rfind('}'), ", \"hosts\": " + json::array({agent_of("mx1", s_mx1)}).dump());
  write_file(config, text);
  index_json(config);
  auto r = ds(config, {"find", "--email", "alice.smith@example.com"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const FindOutput f = split(r);
  std::size_t local = 0;
  std::size_t remote = 0;
  for (const json &h : f.hits) {
    if (h.contains("host")) {
      EXPECT_EQ(h["host"], "mx1");
      ++remote;
    } else {
      EXPECT_EQ(remote, 0U) << "local hits come first";
      EXPECT_TRUE(h["path"].get<std::string>().starts_with((dir.path() / "dpo").string())) << h.dump();
      ++local;
    }
  }
  EXPECT_EQ(remote, ids_of_local_find(s_mx1).size());
  EXPECT_EQ(local, remote) << "the same samples on both";
  EXPECT_EQ(f.summary["complete"], true);
}

// Breach scoping of another host's items (issue 16 item 5, `affected --host`): the same report
// the host gives for itself, each row naming the host; unknown hosts and sources, an unreachable
// or stale host are refused, loudly.
TEST_F(HostsE2e, AffectedOnAHostIsWhatTheHostSaysOfItself) {
  ScratchDir dir;
  const fs::path config = dpo_config(dir.path(), json::array({agent_of("mx1", s_mx1), agent_of("imap", s_imap),
                                                              program_host("down", {"/nonexistent/maildsar"})}));
  auto local = ds(s_mx1, {"affected", "--source", "mailboxes"});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  auto remote = ds(config, {"affected", "--host", "mx1", "--source", "mailboxes"});
  ASSERT_EQ(remote.exit_code, 0) << remote.err;
  const std::vector<json> want = json_lines(local.out);
  const std::vector<json> got = json_lines(remote.out);
  ASSERT_EQ(got.size(), want.size()) << remote.out;
  ASSERT_GE(got.size(), 3U) << "Alice, Bob, Carol and the rest, then the summary";
  for (std::size_t i = 0; i < got.size(); ++i) {
    json g = got[i];
    if (g.contains("summary")) {
      EXPECT_EQ(g["summary"]["host"], "mx1");
      g["summary"].erase("host");
    } else {
      EXPECT_EQ(g["host"], "mx1") << g.dump();
      g.erase("host");
    }
    EXPECT_EQ(g, want[i]) << i;
  }
  EXPECT_NE(remote.out.find("\"alice.smith@example.com\""), std::string::npos);
  // CSV gets a host column; the agent's host audits who asked.
  auto csv = maildsar_run({"-c", config.string(), "affected", "--host", "imap", "--source", "postfix", "--csv"});
  EXPECT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_TRUE(csv.out.starts_with("kind,identifier,items,roles,categories,first,last,person,host\n")) << csv.out;
  EXPECT_NE(csv.out.find(",imap\n"), std::string::npos) << csv.out;
  EXPECT_NE(read_file(s_imap.parent_path() / "state" / "audit.log").find("\"affected\""), std::string::npos);
  // Refused: a host or a source the estate does not have, a host that is down.
  auto no_host = ds(config, {"affected", "--host", "mx9", "--source", "mailboxes"});
  EXPECT_EQ(no_host.exit_code, 64) << no_host.err;
  auto no_source = ds(config, {"affected", "--host", "mx1", "--source", "nothing"});
  EXPECT_NE(no_source.exit_code, 0);
  EXPECT_NE(no_source.err.find("no source \"nothing\" on this host"), std::string::npos) << no_source.err;
  auto down = ds(config, {"affected", "--host", "down", "--source", "mailboxes"});
  EXPECT_NE(down.exit_code, 0);
  EXPECT_NE(down.err.find("host down"), std::string::npos) << down.err;
}

TEST_F(HostsE2e, AffectedRefusesAStaleHost) {
  ScratchDir dir;
  const fs::path stale = make_host(dir.path(), "mx3", "1s");
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  const fs::path config = dpo_config(dir.path(), json::array({agent_of("mx3", stale)}));
  auto r = ds(config, {"affected", "--host", "mx3", "--source", "mailboxes"});
  EXPECT_EQ(r.exit_code, 75) << r.out << r.err;
  EXPECT_NE(r.err.find("host mx3: its index is stale"), std::string::npos) << r.err;
  EXPECT_TRUE(json_lines(r.out).empty() || json_lines(r.out).front().contains("error")) << r.out;
}


TEST_F(HostsE2e, TraceFollowsAMessageOverEveryHost) {
  ScratchDir dpo;
  const fs::path config = dpo_config(dpo.path(), json::array({agent_of("mx1", s_mx1), agent_of("imap", s_imap)}));
  auto local = ds(s_mx1, {"trace", "<q4-report-1@example.com>"});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  std::vector<json> local_copies;
  std::vector<json> local_hops;
  for (json &j : json_lines(local.out)) {
    (j["kind"] == "copy" ? local_copies : local_hops).push_back(std::move(j));
  }
  ASSERT_EQ(local_copies.size(), 1U) << local.out;

  auto r = ds(config, {"trace", "q4-report-1@example.com"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::vector<json> lines = json_lines(r.out);
  ASSERT_FALSE(lines.empty());
  const json summary = lines.back();
  EXPECT_EQ(summary["schema"], "maildsar.hosts");
  EXPECT_EQ(summary["complete"], true);
  lines.pop_back();
  std::map<std::string, int> copies;
  std::size_t hops = 0;
  for (const json &j : lines) {
    ASSERT_TRUE(j.contains("host")) << j.dump();
    if (j["kind"] == "copy") {
      ++copies[j["host"].get<std::string>()];
      json without = j;
      without.erase("host");
      if (j["host"] == "mx1") {
        EXPECT_EQ(without, local_copies[0]) << "a host's copy is what the host itself reports";
      }
    } else {
      ++hops;
    }
  }
  EXPECT_EQ(copies, (std::map<std::string, int>{{"mx1", 1}, {"imap", 1}}));
  EXPECT_EQ(hops, local_hops.size());
  EXPECT_FALSE(audit_records(s_imap.parent_path(), "trace").empty()) << "the host records the trace it served";

  auto human = maildsar_run({"-c", config.string(), "trace", "q4-report-1@example.com"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("2 copy(ies) and log transaction(s), in time order:"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("  imap:mailboxes"), std::string::npos) << human.out;

  // A host that cannot be searched: no answer, the host named, unless allowed to be missing.
  const fs::path down = dpo_config(dpo.path() / "down", json::array({agent_of("mx1", s_mx1), program_host("mx2", {"/bin/false"})}));
  auto d = ds(down, {"trace", "q4-report-1@example.com"});
  EXPECT_EQ(d.exit_code, 1) << d.out << d.err;
  EXPECT_NE(d.err.find("maildsar: error: host mx2: "), std::string::npos) << d.err;
  EXPECT_EQ(json_lines(d.out).size(), 1U) << "only the summary: " << d.out;
  auto allowed = ds(down, {"trace", "q4-report-1@example.com", "--allow-missing-host", "mx2"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
  EXPECT_EQ(json_lines(allowed.out).back()["not_searched"], json::array({"mx2"}));
}

// ---- export across hosts (issue 15, second slice) -------------------------------------------

namespace spread {

/** A message of ~1.5 MiB from Alice: its copy crosses the wire in several export_read chunks. */
std::string big_message() {
  std::string m = "From: Alice Smith <alice.smith@example.com>\r\nTo: carol@example.org\r\n"
                  "Subject: the big one\r\nMessage-ID: <big-1@example.com>\r\n"
                  "Date: Tue, 14 Nov 2023 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\n";
  for (int i = 0; i < 24000; ++i) {
    m += "line " + std::to_string(i) + " of a long report, padded to about sixty-four bytes..\r\n";
  }
  return m;
}

/** A copy of samples/ under `dir/name` whose config has only `sources` (JSON), indexed. */
fs::path make_spread_host(const fs::path &dir, const std::string &name, const json &sources) {
  const fs::path root = dir / name;
  copy_tree(source_dir() / "samples", root);
  fs::remove_all(root / "state");
  const fs::path config = root / "maildsar.json";
  write_file(config, json{{"state_dir", "state"},
                          {"host_name", name},
                          {"sources", sources},
                          {"identity", {{"subaddress_separators", "+"}, {"phone_region", "GB"}}}}
                         .dump(2));
  index_json(config);
  return config;
}

} // namespace spread

/** The subject spread over three hosts: Maildir on a, mbox and quarantine on b, logs on c. */
class HostsExportE2e : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    s_dir = new ScratchDir();
    // Host a's Alice has one message more, big enough to need several chunks.
    write_file(s_dir->path() / "big.eml", spread::big_message());
    s_a = spread::make_spread_host(s_dir->path(), "a",
                                   json::array({{{"name", "mailboxes"}, {"type", "maildir"},
                                                 {"path", "mail/example.com/*/Maildir"}, {"owner", "{1}@example.com"}}}));
    fs::copy_file(s_dir->path() / "big.eml",
                  s_a.parent_path() / "mail/example.com/alice.smith/Maildir/cur/1700000200.M3P100.a:2,S");
    index_json(s_a);
    s_b = spread::make_spread_host(s_dir->path(), "b",
                                   json::array({{{"name", "archive"}, {"type", "mbox"}, {"path", "archive/*.mbox"}},
                                                {{"name", "amavis"}, {"type", "quarantine"}, {"format", "amavis"},
                                                 {"path", "quarantine/amavis"}}}));
    s_c = spread::make_spread_host(s_dir->path(), "c",
                                   json::array({{{"name", "postfix"}, {"type", "maillog"}, {"format", "postfix"},
                                                 {"path", "logs/mail.log*"}}}));
  }
  static void TearDownTestSuite() {
    delete s_dir;
    s_dir = nullptr;
  }
  static json three_hosts() { return json::array({agent_of("a", s_a), agent_of("b", s_b), agent_of("c", s_c)}); }
  static inline ScratchDir *s_dir = nullptr;
  static inline fs::path s_a;
  static inline fs::path s_b;
  static inline fs::path s_c;
};

TEST_F(HostsExportE2e, FindIsTheUnionAndExportHasOneCompleteFolderPerHost) {
  ScratchDir dpo;
  const fs::path config = dpo_config(dpo.path(), three_hosts());
  // find: the union of what each host finds locally.
  auto f = ds(config, {"find", "--email", "alice.smith@example.com"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  const FindOutput found = split(f);
  std::map<std::string, std::size_t> per_host;
  for (const json &h : found.hits) {
    ++per_host[h.at("host").get<std::string>()];
  }
  const std::map<std::string, fs::path> configs{{"a", s_a}, {"b", s_b}, {"c", s_c}};
  for (const auto &[name, cfg] : configs) {
    EXPECT_EQ(per_host[name], ids_of_local_find(cfg).size()) << name;
    EXPECT_GE(per_host[name], 1U) << name;
  }

  const fs::path out = dpo.path() / "package";
  auto r = ds(config, {"export", "--email", "alice.smith@example.com", "--out", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json doc = json_lines(r.out).back();
  EXPECT_EQ(doc["complete"], true);
  EXPECT_EQ(doc["not_searched"], json::array());
  EXPECT_EQ(doc["local_part"], false);
  EXPECT_EQ(doc["items"], 0) << "no local sources";
  EXPECT_EQ(doc["items_total"], found.hits.size());
  ASSERT_EQ(doc["hosts"].size(), 3U) << doc.dump();
  bool big_seen = false;
  for (const json &row : doc["hosts"]) {
    const std::string name = row["name"].get<std::string>();
    EXPECT_EQ(row["exported"], true) << row.dump();
    EXPECT_EQ(row["items"], per_host[name]) << row.dump();
    EXPECT_EQ(row["folder"], "hosts/" + name);
    // The host's folder is that host's complete package: its manifest lists the items, and
    // every file it names arrived, whole.
    const fs::path folder = out / "hosts" / name;
    const json manifest = json::parse(read_file(folder / "manifest.json"));
    EXPECT_EQ(manifest["schema"], "maildsar.export-manifest");
    EXPECT_EQ(manifest["items"].size(), per_host[name]);
    EXPECT_EQ(core::sha256_hex(read_file(folder / "manifest.json")), row["package_sha256"]);
    std::size_t files = 0;
    for (const auto &e : fs::recursive_directory_iterator(folder)) {
      if (e.is_regular_file()) {
        ++files;
        EXPECT_FALSE(e.path().string().ends_with(".part")) << e.path();
        big_seen = big_seen || e.file_size() > 3 * remote::k_export_chunk_bytes / 2;
      }
    }
    EXPECT_EQ(files, row["files"].get<std::size_t>());
    EXPECT_TRUE(fs::exists(folder / "report.html"));
    // Nothing of the subject stays behind in the agent's state.
    const fs::path staging = configs.at(name).parent_path() / "state" / "agent-export";
    EXPECT_TRUE(!fs::exists(staging) || fs::is_empty(staging)) << staging;
    // The host recorded its export on its own timeline.
    EXPECT_FALSE(audit_records(configs.at(name).parent_path(), "export").empty()) << name;
  }
  EXPECT_TRUE(big_seen) << "host a's big message arrived whole, in several chunks";
  const json index = json::parse(read_file(out / "hosts.json"));
  EXPECT_EQ(index["schema"], "maildsar.export-hosts");
  EXPECT_EQ(index["complete"], true);
  EXPECT_EQ(index["hosts"].size(), 3U);
  EXPECT_FALSE(fs::exists(out / "report.html")) << "no local report claiming nothing is held";
  // One record per host's part in the DPO host's audit log, without identities.
  const std::vector<json> audit = audit_records(config.parent_path(), "export-host");
  ASSERT_EQ(audit.size(), 3U);
  EXPECT_EQ(audit[0].dump().find("alice.smith"), std::string::npos) << audit[0].dump();
  EXPECT_NE(audit[0].dump().find("\"host\":\"a\""), std::string::npos) << audit[0].dump();

  // Human output names each host's folder.
  auto human = maildsar_run({"-c", config.string(), "export", "--email", "alice.smith@example.com", "--out",
                             (dpo.path() / "p2").string()});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("host b: " + std::to_string(per_host["b"]) + " item(s) in "), std::string::npos) << human.out;
}

TEST_F(HostsExportE2e, AnUnreachableHostFailsExportNamingItUnlessAllowedMissing) {
  ScratchDir dpo;
  const fs::path config =
      dpo_config(dpo.path(), json::array({agent_of("a", s_a), program_host("down", {"/bin/false"})}));
  const fs::path out = dpo.path() / "package";
  auto r = ds(config, {"export", "--email", "alice.smith@example.com", "--out", out.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("maildsar: error: host down: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("export writes no package while a host of the estate cannot be reached"), std::string::npos);
  EXPECT_FALSE(fs::exists(out)) << "nothing written as if complete";
  const json summary = json_lines(r.out).back();
  EXPECT_EQ(summary["schema"], "maildsar.hosts");
  EXPECT_EQ(summary["not_searched"], json::array({"down"}));

  auto allowed = ds(config, {"export", "--email", "alice.smith@example.com", "--out", out.string(),
                             "--allow-missing-host", "down"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.out << allowed.err;
  EXPECT_NE(allowed.err.find("NOT EXPORTED (--allow-missing-host down)"), std::string::npos) << allowed.err;
  const json doc = json_lines(allowed.out).back();
  EXPECT_EQ(doc["complete"], false);
  EXPECT_EQ(doc["not_searched"], json::array({"down"}));
  EXPECT_EQ(doc["hosts"][0]["exported"], true);
  EXPECT_EQ(doc["hosts"][1]["exported"], false);
  EXPECT_EQ(doc["hosts"][1]["allowed_missing"], true);
  const json index = json::parse(read_file(out / "hosts.json"));
  EXPECT_EQ(index["complete"], false);
  EXPECT_EQ(index["not_searched"], json::array({"down"}));
  EXPECT_TRUE(fs::exists(out / "hosts" / "a" / "manifest.json"));
  EXPECT_FALSE(fs::exists(out / "hosts" / "down"));

  // Options the slice does not carry across hosts are refused, not ignored.
  auto zip = ds(config, {"export", "--email", "alice.smith@example.com", "--out", (dpo.path() / "z").string(), "--zip"});
  EXPECT_EQ(zip.exit_code, 64) << zip.err;
}

TEST_F(HostsExportE2e, TheAgentServesOnlyTheFilesOfThePackageItBuilt) {
  core::HostConfig host;
  host.name = "a";
  host.transport = "program";
  host.command = {MAILDSAR_BINARY, "-c", s_a.string(), "agent"};
  auto client = remote::HostClient::connect(host);
  ASSERT_TRUE(client) << client.error().message;
  // Nothing to read before an export, whatever the path.
  auto none = client->request({{"op", "export_read"}, {"export_id", "0000"}, {"path", "report.html"}, {"offset", 0}});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message, "host a: export_read: export_read: no such export in this session") << none.error().message;
  auto built = client->request({{"op", "export"}, {"subject", {{"emails", {"alice.smith@example.com"}}}}});
  ASSERT_TRUE(built) << built.error().message;
  const std::string id = (*built)["export_id"];
  ASSERT_FALSE((*built)["files"].empty());
  const std::string staging = (s_a.parent_path() / "state" / "agent-export" / id).string();
  EXPECT_TRUE(fs::exists(staging));
  for (const std::string path : {"../../maildsar.json", "/etc/passwd", "package/report.html", "nothing.txt",
                                 "report.html/../manifest.json"}) {
    auto r = client->request({{"op", "export_read"}, {"export_id", id}, {"path", path}, {"offset", 0}});
    ASSERT_FALSE(r) << path;
    EXPECT_NE(r.error().message.find("no such file in this export's package"), std::string::npos) << r.error().message;
  }
  auto past = client->request({{"op", "export_read"}, {"export_id", id}, {"path", "manifest.json"}, {"offset", 1U << 30U}});
  ASSERT_FALSE(past);
  EXPECT_NE(past.error().message.find("offset"), std::string::npos) << past.error().message;
  auto ok = client->request({{"op", "export_read"}, {"export_id", id}, {"path", "manifest.json"}, {"offset", 0}});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(remote::base64_decode((*ok)["data"].get<std::string>()).value_or(""),
            read_file(fs::path(staging) / "package" / "manifest.json"));
  // A session that ends without export_done leaves nothing behind.
  client->close();
  EXPECT_FALSE(fs::exists(staging));
}

TEST_F(HostsExportE2e, VerifyRescansEveryHostAndNamesWhatRemainsWhere) {
  ScratchDir dpo;
  const fs::path config = dpo_config(dpo.path(), three_hosts());
  // Alice is still everywhere: each host lists its places, each row names its host.
  auto r = ds(config, {"verify", "--email", "alice.smith@example.com"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const json doc = json_lines(r.out).back();
  EXPECT_EQ(doc["clean"], false);
  EXPECT_EQ(doc["local_part"], false);
  ASSERT_EQ(doc["hosts"].size(), 3U) << doc.dump();
  std::set<std::string> hosts_with_residue;
  for (const json &row : doc["remaining"]) {
    hosts_with_residue.insert(row.at("host").get<std::string>());
    const fs::path root = (row["host"] == "a" ? s_a : row["host"] == "b" ? s_b : s_c).parent_path();
    EXPECT_TRUE(row["path"].get<std::string>().starts_with(root.string())) << row.dump();
  }
  EXPECT_EQ(hosts_with_residue, (std::set<std::string>{"a", "b", "c"}));
  for (const json &h : doc["hosts"]) {
    EXPECT_EQ(h["verified"], true) << h.dump();
    EXPECT_EQ(h["clean"], false) << h.dump();
    EXPECT_GE(h["remaining"].get<std::size_t>(), 1U) << h.dump();
    EXPECT_TRUE(h["certificate"].is_null()) << "no certificate while something remains: " << h.dump();
  }
  EXPECT_EQ(audit_records(config.parent_path(), "verify-host").size(), 3U);

  // Someone no host holds: every host certifies itself, on itself.
  auto clean = ds(config, {"verify", "--email", "nobody.here@example.net"});
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  const json c = json_lines(clean.out).back();
  EXPECT_EQ(c["clean"], true);
  EXPECT_EQ(c["remaining"], json::array());
  const std::map<std::string, fs::path> roots{{"a", s_a.parent_path()}, {"b", s_b.parent_path()}, {"c", s_c.parent_path()}};
  for (const json &h : c["hosts"]) {
    EXPECT_EQ(h["clean"], true) << h.dump();
    const std::string cert = h.at("certificate").get<std::string>();
    EXPECT_TRUE(cert.starts_with(roots.at(h["name"].get<std::string>()).string())) << cert;
    EXPECT_EQ(core::sha256_hex(read_file(cert)), h["certificate_sha256"]) << cert;
  }
  auto human = maildsar_run({"-c", config.string(), "verify", "--email", "nobody.here@example.net"});
  EXPECT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("host b: nothing of the subject remains"), std::string::npos) << human.out;

  // A host that cannot be reached: no "nothing remains" for the estate, the host named.
  const fs::path down = dpo_config(dpo.path() / "down", json::array({agent_of("a", s_a), program_host("c", {"/bin/false"})}));
  auto d = ds(down, {"verify", "--email", "nobody.here@example.net"});
  EXPECT_EQ(d.exit_code, 1) << d.out << d.err;
  EXPECT_NE(d.err.find("maildsar: error: host c: "), std::string::npos) << d.err;
  const json dj = json_lines(d.out).back();
  EXPECT_EQ(dj["clean"], false);
  EXPECT_EQ(dj["hosts"][1]["verified"], false);
  EXPECT_NE(dj["hosts"][1]["error"].get<std::string>().find("host c: "), std::string::npos);
}

TEST_F(HostsExportE2e, RetentionDryRunAsksEveryHostItsOwnRules) {
  ScratchDir dir;
  // A host with a retention rule of its own for its delivery logs.
  const fs::path host = spread::make_spread_host(dir.path(), "r",
                                                 json::array({{{"name", "postfix"}, {"type", "maillog"}, {"format", "postfix"},
                                                               {"path", "logs/mail.log*"}}}));
  json text = json::parse(read_file(host));
  text["retention"] = {{"postfix", "30d"}};
  write_file(host, text.dump(2));
  auto local = ds(host, {"retention", "--now", "2030-01-01"});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  const json local_summary = json_lines(local.out).back()["summary"];
  ASSERT_GT(local_summary["items"].get<std::size_t>(), 0U) << local.out;

  const fs::path config = dpo_config(dir.path(), json::array({agent_of("r", host), agent_of("a", s_a)}));
  auto r = ds(config, {"retention", "--now", "2030-01-01"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json summary = json_lines(r.out).back()["summary"];
  EXPECT_EQ(summary["dry_run"], true);
  EXPECT_EQ(summary["complete"], true);
  ASSERT_EQ(summary["hosts"].size(), 2U);
  EXPECT_EQ(summary["hosts"][0]["name"], "r");
  EXPECT_EQ(summary["hosts"][0]["items"], local_summary["items"]);
  EXPECT_EQ(summary["hosts"][0]["sources"], local_summary["sources"]) << "the host's own rules and counts";
  EXPECT_EQ(summary["hosts"][1]["sources"], json::object()) << "host a has no retention rule";
  auto human = maildsar_run({"-c", config.string(), "retention", "--now", "2030-01-01"});
  EXPECT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("r:postfix"), std::string::npos) << human.out;

  // --apply never reaches a host: a warning says so, and the host's logs stay as they were.
  const std::string before = read_file(host.parent_path() / "logs" / "mail.log");
  auto apply = ds(config, {"retention", "--now", "2030-01-01", "--apply"});
  EXPECT_EQ(apply.exit_code, 0) << apply.err;
  EXPECT_NE(apply.err.find("retention --apply changes only this host's stores"), std::string::npos) << apply.err;
  EXPECT_EQ(read_file(host.parent_path() / "logs" / "mail.log"), before);

  // A host that cannot be asked: no dry run, the host named.
  const fs::path down = dpo_config(dir.path() / "down", json::array({agent_of("r", host), program_host("gone", {"/bin/false"})}));
  auto d = ds(down, {"retention", "--now", "2030-01-01"});
  EXPECT_EQ(d.exit_code, 1) << d.out << d.err;
  EXPECT_NE(d.err.find("maildsar: error: host gone: "), std::string::npos) << d.err;
}

// A host's answers are untrusted: a count of another type in them (a broken or hostile agent,
// here a real one whose answers are rewritten on the way) makes verify and export name the
// host, exit 1, never an internal error.
TEST_F(HostsExportE2e, AnAnswerWithAFieldOfAnotherTypeIsNamedNotACrash) {
  ScratchDir dpo;
  const std::string agent = fmt::format("'{}' -c '{}' agent", MAILDSAR_BINARY, s_a.string());
  const fs::path config = dpo_config(
      dpo.path(),
      json::array({program_host("evil", {"/bin/sh", "-c",
                                         agent + R"( | sed -u -e 's/"files_rescanned":[0-9]*/"files_rescanned":"many"/' )"
                                                 R"(-e 's/"copied":[0-9]*/"copied":-1/')"})}));
  auto v = ds(config, {"verify", "--email", "nobody.here@example.net"});
  EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
  EXPECT_NE(v.err.find("host evil: the answer to verify has a \"files_rescanned\" that is not a count"),
            std::string::npos)
      << v.err;
  auto e = ds(config, {"export", "--email", "alice.smith@example.com", "--out", (dpo.path() / "pkg").string()});
  EXPECT_EQ(e.exit_code, 1) << e.out << e.err;
  EXPECT_NE(e.err.find("host evil: the answer to export has a \"copied\" that is not a count"), std::string::npos)
      << e.err;
}

TEST(HostsSamples, TheThreeHostSampleConfigsAreValid) {
  // The DPO host's sample: valid and complete (its hosts are not contacted by config check).
  auto dpo = ds(source_dir() / "samples" / "hosts" / "dpo.json", {"config", "check"});
  EXPECT_EQ(dpo.exit_code, 0) << dpo.out << dpo.err;
  EXPECT_EQ(json::parse(dpo.out)["ok"], true) << dpo.out;
  // A mail host's sample names the real paths of a Debian MX: valid, only their absence warned of.
  auto mx1 = ds(source_dir() / "samples" / "hosts" / "mx1.json", {"config", "check"});
  ASSERT_FALSE(mx1.out.empty()) << mx1.err;
  const json check = json::parse(mx1.out);
  for (const json &w : check["warnings"]) {
    EXPECT_TRUE(w["code"] == "unreadable" || w["code"] == "no-files") << w.dump();
  }
}

} // namespace
} // namespace maildsar::test
