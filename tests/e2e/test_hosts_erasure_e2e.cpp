// SPDX-License-Identifier: GPL-3.0-or-later
// Erasure across hosts (issue 15) through the built binary: three "hosts" on one machine, each a
// copy of samples/ with its own config, state and sources — the Maildirs on imap, the mbox and
// the quarantine on archive, the delivery logs on mx1 — reached by the program transport; a DPO
// config with only `hosts`. plan -> approve (signed) -> erase -> verify across them.
#include "core/config.hpp"
#include "core/hash.hpp"
#include "remote/host_client.hpp"
#include "tests/e2e/hosts_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char *const k_email = "alice.smith@example.com";

/** An approver's Ed25519 key pair made with openssl. */
struct KeyPair {
  fs::path priv;
  fs::path pub;
};

KeyPair make_key(const fs::path &dir, const std::string &name) {
  const fs::path openssl = find_program("openssl");
  KeyPair k{dir / (name + ".pem"), dir / (name + ".pub.pem")};
  auto r = run({openssl.string(), "genpkey", "-algorithm", "ed25519", "-out", k.priv.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run({openssl.string(), "pkey", "-in", k.priv.string(), "-pubout", "-out", k.pub.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return k;
}

/** Hex Ed25519 signature of `message` (openssl pkeyutl -rawin). */
std::string sign(const fs::path &dir, const fs::path &key, const std::string &message) {
  const fs::path in = dir / "message";
  const fs::path out = dir / "signature";
  write_file(in, message);
  auto r = run({find_program("openssl").string(), "pkeyutl", "-sign", "-rawin", "-inkey", key.string(), "-in",
                in.string(), "-out", out.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string hex;
  for (const char c : read_file(out)) {
    hex += fmt::format("{:02x}", static_cast<unsigned char>(c));
  }
  return hex;
}

json agent_of(const std::string &name, const fs::path &config, const std::vector<std::string> &env = {}) {
  std::vector<std::string> command;
  if (!env.empty()) {
    command.push_back(find_program("env").string());
    command.insert(command.end(), env.begin(), env.end());
  }
  command.insert(command.end(), {MAILDSAR_BINARY, "-c", config.string(), "agent"});
  return json{{"name", name}, {"transport", "program"}, {"command", command}};
}

/** Three hosts, an approver key known to all of them, and a DPO config asking them. */
class HostsErasureE2e : public ::testing::Test {
protected:
  void SetUp() override {
    m_key = make_key(m_dir.path(), "admin-ben");
    m_erasure = json{{"approver_keys", {{"admin-ben", m_key.pub.string()}}}, {"require_signatures", true}};
    m_imap = make_host(m_dir.path(), "imap", {"mailboxes"}, m_erasure);
    m_archive = make_host(m_dir.path(), "archive", {"archive", "amavis"}, m_erasure);
    m_mx1 = make_host(m_dir.path(), "mx1", {"postfix"}, m_erasure);
    m_subject = m_dir.path() / "subject.json";
    write_file(m_subject, json{{"request", "DSAR-2026-0042"}, {"emails", {k_email}}}.dump());
    set_hosts(json::array({agent_of("imap", m_imap), agent_of("archive", m_archive), agent_of("mx1", m_mx1)}));
  }

  void set_hosts(const json &hosts) {
    write_file(dpo(), json{{"state_dir", "state"}, {"hosts", hosts}}.dump(2));
  }
  fs::path dpo() const { return m_dir.path() / "dpo" / "maildsar.json"; }
  fs::path dpo_state() const { return m_dir.path() / "dpo" / "state"; }
  fs::path manifest() const { return m_dir.path() / "estate.manifest.json"; }

  RunResult plan(const std::vector<std::string> &extra = {}) {
    std::vector<std::string> args{"plan", "--subject", m_subject.string(), "--out", manifest().string(), "--operator", "dpo-anna"};
    args.insert(args.end(), extra.begin(), extra.end());
    return ds(dpo(), args);
  }
  RunResult approve_signed() {
    return ds(dpo(), {"approve", manifest().string(), "--operator", "admin-ben", "--sign-key", m_key.priv.string()});
  }
  RunResult erase() { return ds(dpo(), {"erase", manifest().string(), "--operator", "dpo-anna"}); }
  RunResult verify() { return ds(dpo(), {"verify", "--subject", m_subject.string(), "--operator", "dpo-anna"}); }

  /** How many items `find` on the host itself gives for the subject. */
  static std::size_t local_hits(const fs::path &host) {
    auto r = ds(host, {"find", "--email", k_email});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json_lines(r.out).size();
  }

  ScratchDir m_dir;
  KeyPair m_key;
  json m_erasure;
  fs::path m_imap;
  fs::path m_archive;
  fs::path m_mx1;
  fs::path m_subject;
};

TEST_F(HostsErasureE2e, PlanApproveSignedEraseRemovesTheSubjectFromEveryHostAndVerifyCertifies) {
  const std::size_t imap_before = local_hits(m_imap);
  const std::size_t archive_before = local_hits(m_archive);
  const std::size_t mx1_before = local_hits(m_mx1);
  ASSERT_GE(imap_before, 1U);
  ASSERT_GE(archive_before, 2U) << "the samples hold Alice in the mbox and the quarantine";
  ASSERT_GE(mx1_before, 1U);

  auto p = plan();
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  const json planned = json_lines(p.out).at(0);
  EXPECT_EQ(planned["estate"], true);
  EXPECT_EQ(planned["request"], "DSAR-2026-0042");
  ASSERT_EQ(planned["hosts"].size(), 3U);
  EXPECT_EQ(planned["not_searched"], json::array());

  // The manifest lists the items per host; each slice is the very manifest that host planned
  // and kept in its own state.
  const json m = json::parse(read_file(manifest()));
  EXPECT_EQ(m["schema"], "maildsar.estate-manifest");
  EXPECT_EQ(m["estate_sha256"], planned["manifest_sha256"]);
  std::map<std::string, std::size_t> items;
  for (const json &h : m["hosts"]) {
    const std::string name = h["name"];
    const json &slice = m["slices"].at(name);
    EXPECT_EQ(slice["manifest_sha256"], h["slice_sha256"]);
    items[name] = slice["items"].size();
    EXPECT_EQ(h["items"], slice["items"].size());
    for (const json &item : slice["items"]) {
      const fs::path root = (name == "imap" ? m_imap : name == "archive" ? m_archive : m_mx1).parent_path();
      EXPECT_TRUE(item["locator"]["path"].get<std::string>().starts_with(root.string() + "/")) << name << ": " << item.dump();
    }
  }
  EXPECT_EQ(items["imap"], imap_before);
  EXPECT_EQ(items["archive"], archive_before);
  EXPECT_EQ(items["mx1"], mx1_before);
  EXPECT_EQ(read_file(manifest()).find(k_email), std::string::npos) << "no identifier in clear";
  // Each host recorded its own plan.
  EXPECT_EQ(audit_records(m_imap.parent_path() / "state", "plan").size(), 1U);

  // The planner cannot approve; a signed approval by another person can.
  auto self = ds(dpo(), {"approve", manifest().string(), "--operator", "dpo-anna", "--sign-key", m_key.priv.string()});
  EXPECT_EQ(self.exit_code, 77) << self.err;
  auto a = approve_signed();
  ASSERT_EQ(a.exit_code, 0) << a.err << a.out;
  EXPECT_EQ(json_lines(a.out).at(0)["signed"], 1);

  auto e = erase();
  ASSERT_EQ(e.exit_code, 0) << e.err << e.out;
  const json report = json_lines(e.out).at(0);
  EXPECT_EQ(report["schema"], "maildsar.estate-erase-report");
  ASSERT_EQ(report["hosts"].size(), 3U);
  for (const json &h : report["hosts"]) {
    EXPECT_EQ(h["result"], "done") << h.dump();
    EXPECT_EQ(h["report"]["index_updated"], true) << h.dump();
  }
  EXPECT_EQ(local_hits(m_imap), 0U);
  EXPECT_EQ(local_hits(m_archive), 0U);
  EXPECT_EQ(local_hits(m_mx1), 0U);

  // The DPO host's audit log: one record per host result; each host's own log: its erase,
  // naming the estate manifest whose signed approvals it checked.
  const std::vector<json> per_host = audit_records(dpo_state(), "erase-host");
  ASSERT_EQ(per_host.size(), 3U);
  std::set<std::string> hosts;
  for (const json &r : per_host) {
    hosts.insert(r["details"]["host"].get<std::string>());
    EXPECT_EQ(r["details"]["result"], "done") << r.dump();
    EXPECT_EQ(r["details"]["manifest_sha256"], planned["manifest_sha256"]);
    EXPECT_EQ(r.dump().find(k_email), std::string::npos);
  }
  EXPECT_EQ(hosts, (std::set<std::string>{"imap", "archive", "mx1"}));
  for (const fs::path &host : {m_imap, m_archive, m_mx1}) {
    const std::vector<json> erased = audit_records(host.parent_path() / "state", "erase");
    ASSERT_EQ(erased.size(), 1U) << host;
    EXPECT_EQ(erased[0]["details"]["estate_sha256"], planned["manifest_sha256"]);
    EXPECT_EQ(erased[0]["details"]["approvers"], json::array({"admin-ben"}));
    EXPECT_EQ(erased[0]["details"]["client_operator"], "dpo-anna");
  }
  EXPECT_EQ(audit_records(dpo_state(), "approve").size(), 1U);
  EXPECT_EQ(ds(dpo(), {"audit", "verify"}).exit_code, 0);

  auto v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.err << v.out;
  const json verified = json_lines(v.out).at(0);
  EXPECT_EQ(verified["clean"], true) << v.out;
  for (const json &h : verified["hosts"]) {
    EXPECT_EQ(h["clean"], true) << h.dump();
    EXPECT_FALSE(h["certificate"].is_null()) << h.dump();
  }

  // Running it again changes nothing and says so (each host replays its journal), in words.
  auto again = maildsar_run({"-c", dpo().string(), "erase", manifest().string(), "--operator", "dpo-anna"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  for (const char *host : {"imap", "archive", "mx1"}) {
    EXPECT_NE(again.out.find(std::string("host ") + host + ": done ("), std::string::npos) << again.out;
  }
  EXPECT_NE(again.out.find("erasure of DSAR-2026-0042 across 3 host(s) ran"), std::string::npos) << again.out;
}

TEST_F(HostsErasureE2e, PlanAndApproveShowSayWhatEachHostWillDo) {
  auto p = maildsar_run({"-c", dpo().string(), "plan", "--subject", m_subject.string(), "--out", manifest().string(),
                         "--operator", "dpo-anna"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("imap:delete  mailboxes"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("mx1:redact  postfix"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("host archive (archive): slice "), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("--sign-key KEY"), std::string::npos) << p.out;

  // The approvers' summary beside the manifest: whom, and per host each item with its date,
  // subject line and correspondents, which only that host's index holds.
  const fs::path summary = m_dir.path() / "estate.manifest.html";
  ASSERT_TRUE(fs::exists(summary)) << p.out;
  EXPECT_EQ(fs::status(summary).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  const std::string html = read_file(summary);
  for (const char *want : {"Erasure across hosts for approval: DSAR-2026-0042", "email: alice.smith@example.com",
                           "<h2>Host imap (imap)", "<h2>Host archive (archive)", "<h2>Host mx1 (mx1)",
                           "Quarterly report", "Away next week", "2023-11-14 10:00", "from alice.smith@example.com"}) {
    EXPECT_NE(html.find(want), std::string::npos) << want << "\n" << html;
  }
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find(json::parse(read_file(manifest()))["estate_sha256"].get<std::string>()), std::string::npos);

  // approve --show: the same per host, each host reading its own index now.
  auto show = maildsar_run({"-c", dpo().string(), "approve", "--show", manifest().string()});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  for (const char *want : {"Erasure across hosts for approval: DSAR-2026-0042", "planned by dpo-anna",
                           "== host imap (imap) ==", "== host archive (archive) ==", "Quarterly report",
                           "from alice.smith@example.com", "approvals recorded here: 0"}) {
    EXPECT_NE(show.out.find(want), std::string::npos) << want << "\n" << show.out;
  }
  EXPECT_EQ(show.out.find("alice.smith@example.com |"), std::string::npos) << "no subject identifier as such";
  EXPECT_TRUE(audit_records(dpo_state(), "approve").empty()) << "--show approves nothing";
  // A host that cannot be asked: its slice is still shown, and why its details are missing.
  set_hosts(json::array({agent_of("imap", m_imap), agent_of("archive", m_archive),
                         json{{"name", "mx1"}, {"transport", "program"}, {"command", {"/nonexistent/bin/maildsar", "agent"}}}}));
  auto down = maildsar_run({"-c", dpo().string(), "approve", "--show", manifest().string()});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_NE(down.out.find("== host mx1 (mx1) ==\n  its items' dates, subject lines and correspondents could not be read"),
            std::string::npos) << down.out;
  EXPECT_NE(down.out.find("Quarterly report"), std::string::npos) << down.out;
  set_hosts(json::array({agent_of("imap", m_imap), agent_of("archive", m_archive), agent_of("mx1", m_mx1)}));
  // A plan never overwrites a manifest, and finds that out before any host plans.
  auto again = plan();
  EXPECT_EQ(again.exit_code, 73) << again.err;
  EXPECT_EQ(audit_records(m_imap.parent_path() / "state", "plan").size(), 1U);
}

TEST_F(HostsErasureE2e, PlanExitsOneNamingAHostThatIsDownAndTheManifestSaysWhoWasNotSearched) {
  set_hosts(json::array({agent_of("imap", m_imap), agent_of("archive", m_archive),
                         json{{"name", "mx1"}, {"transport", "program"}, {"command", {"/nonexistent/bin/maildsar", "agent"}}}}));
  auto p = plan();
  EXPECT_EQ(p.exit_code, 1) << p.err << p.out;
  EXPECT_NE(p.err.find("maildsar: error: host mx1: "), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("no manifest was written"), std::string::npos) << p.err;
  EXPECT_FALSE(fs::exists(manifest()));

  // Another protocol version, and an agent of a release without `plan`: named, no manifest.
  set_hosts(json::array(
      {agent_of("imap", m_imap),
       json{{"name", "v2"}, {"transport", "program"},
            {"command", {"/bin/sh", "-c", R"(read l; echo '{"ok":true,"op":"hello","version":2}'; cat >/dev/null)"}}},
       json{{"name", "old"}, {"transport", "program"},
            {"command", {"/bin/sh", "-c",
                         R"(read l; echo '{"ok":true,"op":"hello","version":1,"host":"old","program":"maildsar 0.0.9","ops":["hello","status","find"]}'; read l; echo '{"ok":true,"op":"status","stale":false,"sources":[]}'; cat >/dev/null)"}}}}));
  auto v = plan();
  EXPECT_EQ(v.exit_code, 1) << v.err;
  EXPECT_NE(v.err.find("host v2: protocol version mismatch"), std::string::npos) << v.err;
  EXPECT_NE(v.err.find("host old: its agent (maildsar 0.0.9) does not offer `plan`"), std::string::npos) << v.err;
  EXPECT_FALSE(fs::exists(manifest()));

  // A stale index is a host not searched too.
  const fs::path stale_dir = m_dir.path() / "stale";
  const fs::path stale = make_host(stale_dir, "mx9", {"postfix"}, m_erasure, json{{"max_index_age", "1s"}});
  set_hosts(json::array({agent_of("imap", m_imap), agent_of("mx9", stale)}));
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto s = plan();
  EXPECT_EQ(s.exit_code, 1) << s.err;
  EXPECT_NE(s.err.find("host mx9: its index is stale"), std::string::npos) << s.err;
  EXPECT_FALSE(fs::exists(manifest()));

  // Knowingly without it: the manifest records that mx1 was not searched, and erase says so.
  set_hosts(json::array({agent_of("imap", m_imap), agent_of("archive", m_archive),
                         json{{"name", "mx1"}, {"transport", "program"}, {"command", {"/nonexistent/bin/maildsar", "agent"}}}}));
  auto allowed = plan({"--allow-missing-host", "mx1"});
  ASSERT_EQ(allowed.exit_code, 0) << allowed.err;
  EXPECT_NE(allowed.err.find("NOT planned (--allow-missing-host mx1)"), std::string::npos) << allowed.err;
  const json m = json::parse(read_file(manifest()));
  ASSERT_EQ(m["not_searched"].size(), 1U);
  EXPECT_EQ(m["not_searched"][0]["name"], "mx1");
  EXPECT_EQ(m["hosts"].size(), 2U);
  ASSERT_EQ(approve_signed().exit_code, 0);
  auto e = erase();
  EXPECT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.err.find("host mx1 was not searched when planning"), std::string::npos) << e.err;
  const std::vector<json> per_host = audit_records(dpo_state(), "erase-host");
  ASSERT_EQ(per_host.size(), 3U);
  EXPECT_EQ(per_host.back()["details"]["host"], "mx1");
  EXPECT_EQ(per_host.back()["details"]["result"], "not-searched");
  EXPECT_GE(local_hits(m_mx1), 1U) << "nothing of a host not searched was touched";
}

TEST_F(HostsErasureE2e, AnAgentKilledMidEraseResumesAndConverges) {
  ASSERT_EQ(plan().exit_code, 0);
  const json m = json::parse(read_file(manifest()));
  ASSERT_GE(m["slices"]["imap"]["items"].size(), 2U) << "the kill comes at imap's second file";
  ASSERT_EQ(approve_signed().exit_code, 0);
  // imap's agent dies (SIGKILL, as a lost connection or a crash) when its second file's step starts.
  set_hosts(json::array({agent_of("imap", m_imap, {"MAILDSAR_FAULT_AT=file:1:started"}), agent_of("archive", m_archive),
                         agent_of("mx1", m_mx1)}));
  auto killed = erase();
  EXPECT_EQ(killed.exit_code, 1) << killed.err << killed.out;
  EXPECT_NE(killed.err.find("maildsar: error: host imap: "), std::string::npos) << killed.err;
  EXPECT_GE(local_hits(m_imap), 1U) << "the run was cut short";
  {
    const std::vector<json> per_host = audit_records(dpo_state(), "erase-host");
    ASSERT_EQ(per_host.size(), 3U);
    EXPECT_EQ(per_host[0]["details"]["host"], "imap");
    EXPECT_EQ(per_host[0]["details"]["result"], "failed");
  }

  set_hosts(json::array({agent_of("imap", m_imap), agent_of("archive", m_archive), agent_of("mx1", m_mx1)}));
  auto resumed = erase();
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err << resumed.out;
  EXPECT_EQ(local_hits(m_imap), 0U);
  auto v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.err << v.out;
  EXPECT_EQ(json_lines(v.out).at(0)["clean"], true);
  EXPECT_EQ(audit_records(dpo_state(), "erase-host").size(), 6U);
}

TEST_F(HostsErasureE2e, AManifestAlteredInTransitIsRefusedByTheAgent) {
  ASSERT_EQ(plan().exit_code, 0);
  ASSERT_EQ(approve_signed().exit_code, 0);
  const std::size_t archive_before = local_hits(m_archive);
  // Between the DPO host and archive's agent, a wrapper edits the request line: first the
  // approval's signature (one hex digit), then the slice (an item's reason).
  const std::vector<std::pair<std::string, std::string>> tampers{
      {R"(s/"signature":"a/"signature":"b/;t
s/"signature":"[0-9b-f]/"signature":"a/)",
       "bad signature"},
      {R"(s/"reason":"[^"]*"/"reason":"nothing to see"/)", "altered"}};
  for (const auto &[script, why] : tampers) {
    const fs::path wrapper = m_dir.path() / "tamper.sh";
    write_file(wrapper, "sed -u '" + script + "' | " + MAILDSAR_BINARY + " -c " + m_archive.string() + " agent\n");
    set_hosts(json::array({agent_of("imap", m_imap),
                           json{{"name", "archive"}, {"transport", "program"}, {"command", {"/bin/sh", wrapper.string()}}},
                           agent_of("mx1", m_mx1)}));
    auto e = erase();
    EXPECT_EQ(e.exit_code, 65) << e.err << e.out;
    EXPECT_NE(e.err.find("maildsar: error: host archive: "), std::string::npos) << e.err;
    EXPECT_NE(e.err.find(why), std::string::npos) << e.err;
    EXPECT_NE(e.err.find("nothing was changed"), std::string::npos) << e.err;
    EXPECT_EQ(local_hits(m_archive), archive_before);
    const std::vector<json> per_host = audit_records(dpo_state(), "erase-host");
    ASSERT_GE(per_host.size(), 3U);
    EXPECT_EQ(per_host[per_host.size() - 2]["details"]["host"], "archive");
    EXPECT_EQ(per_host[per_host.size() - 2]["details"]["result"], "refused");
    EXPECT_EQ(per_host.back()["details"]["result"], "done") << "the other hosts are not held up";
  }
  EXPECT_EQ(local_hits(m_imap), 0U);
  // The manifest file itself altered on the DPO host: refused before any host is asked.
  json m = json::parse(read_file(manifest()));
  m["slices"]["archive"]["items"][0]["reason"] = "edited";
  const fs::path edited = m_dir.path() / "edited.json";
  write_file(edited, m.dump(2));
  auto local = ds(dpo(), {"erase", edited.string()});
  EXPECT_EQ(local.exit_code, 65) << local.err;
  EXPECT_EQ(local_hits(m_archive), archive_before);
}

TEST_F(HostsErasureE2e, UnsignedApprovalsAreRefusedForRemoteSlices) {
  ASSERT_EQ(plan().exit_code, 0);
  auto a = ds(dpo(), {"approve", manifest().string(), "--operator", "admin-ben"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.err.find("hosts accept only signed approvals"), std::string::npos) << a.err;
  const std::size_t imap_before = local_hits(m_imap);
  auto e = erase();
  EXPECT_EQ(e.exit_code, 65) << e.err << e.out;
  for (const char *host : {"imap", "archive", "mx1"}) {
    EXPECT_NE(e.err.find(std::string("maildsar: error: host ") + host + ": "), std::string::npos) << e.err;
  }
  EXPECT_NE(e.err.find("admin-ben (unsigned: an OS-login approval cannot be verified on this host)"), std::string::npos)
      << e.err;
  EXPECT_EQ(local_hits(m_imap), imap_before);

  // A host without approver keys cannot check any approval made elsewhere: refused too.
  const fs::path bare = make_host(m_dir.path() / "bare", "mx2", {"postfix"}, json::object());
  set_hosts(json::array({agent_of("mx2", bare)}));
  fs::remove(manifest());
  fs::remove(m_dir.path() / "estate.manifest.html");
  ASSERT_EQ(plan().exit_code, 0);
  ASSERT_EQ(approve_signed().exit_code, 0);
  auto refused = erase();
  EXPECT_EQ(refused.exit_code, 65) << refused.err;
  EXPECT_NE(refused.err.find("host mx2: "), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("no erasure.approver_keys"), std::string::npos) << refused.err;
}

TEST_F(HostsErasureE2e, HoldsOnAHostWinWhenPlanningAndAgainAtErase) {
  // archive's mbox is under a hold from the start; a hold on its quarantine comes after approval.
  json held = json::parse(read_file(m_archive));
  held["holds"] = json::array({json{{"source", "archive"}, {"reason", "litigation 2026-17"}}});
  write_file(m_archive, held.dump(2));
  ASSERT_EQ(plan().exit_code, 0);
  const json m = json::parse(read_file(manifest()));
  std::map<std::string, std::string> actions; // source -> action
  for (const json &item : m["slices"]["archive"]["items"]) {
    actions[item["locator"]["source"]] = item["action"];
  }
  EXPECT_EQ(actions["archive"], "retain");
  EXPECT_EQ(actions["amavis"], "delete");
  ASSERT_EQ(approve_signed().exit_code, 0);
  held["holds"].push_back(json{{"source", "amavis"}, {"reason", "incident 2026-3"}});
  write_file(m_archive, held.dump(2));
  const std::size_t archive_before = local_hits(m_archive);
  auto e = erase();
  ASSERT_EQ(e.exit_code, 0) << e.err << e.out;
  EXPECT_EQ(local_hits(m_archive), archive_before) << "both holds won on archive";
  EXPECT_EQ(local_hits(m_imap), 0U);
  const json report = json_lines(e.out).at(0);
  for (const json &h : report["hosts"]) {
    if (h["name"] == "archive") {
      for (const json &o : h["report"]["items"]) {
        EXPECT_EQ(o["result"], "retained") << o.dump();
      }
    }
  }
}

TEST_F(HostsErasureE2e, TheAgentErasesOnlyASliceItPlannedItselfNamedByTheSignedBinding) {
  ASSERT_EQ(plan().exit_code, 0);
  const json m = json::parse(read_file(manifest()));
  json binding = m;
  binding.erase("estate_sha256");
  binding.erase("slices");
  ASSERT_EQ(core::sha256_hex(binding.dump()), m["estate_sha256"]) << "the signed hash is that of the binding";
  const auto signed_by_ben = [&](const json &b) {
    const std::string message = "maildsar approval v1\nmanifest " + core::sha256_hex(b.dump()) + "\noperator admin-ben\n";
    return json::array({json{{"operator", "admin-ben"}, {"time", "2026-12-04T09:00:00Z"},
                             {"signature", sign(m_dir.path(), m_key.priv, message)}}});
  };
  core::HostConfig host;
  host.name = "archive";
  host.transport = "program";
  host.command = {MAILDSAR_BINARY, "-c", m_archive.string(), "agent"};
  const auto erase_request = [&](const json &b, const json &slice, const json &approvals) {
    auto client = remote::HostClient::connect(host);
    EXPECT_TRUE(client) << client.error().message;
    return client->request(json{{"op", "erase"}, {"estate", b}, {"slice", slice}, {"approvals", approvals},
                                {"operator", "dpo-anna"}, {"dry_run", true}});
  };
  const json slice = m["slices"]["archive"];

  // A manifest planned on the host by hand (not by its agent), bound and signed: refused.
  const fs::path by_hand = m_dir.path() / "by-hand.json";
  ASSERT_EQ(ds(m_archive, {"plan", "--subject", m_subject.string(), "--out", by_hand.string(), "--operator", "dpo-carl"}).exit_code, 0);
  const json other = json::parse(read_file(by_hand));
  json other_binding = binding;
  other_binding["hosts"][1]["slice_sha256"] = other["manifest_sha256"];
  ASSERT_EQ(other_binding["hosts"][1]["name"], "archive");
  auto r = erase_request(other_binding, other, signed_by_ben(other_binding));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::data);
  EXPECT_NE(r.error().message.find("was not planned by this host's agent"), std::string::npos) << r.error().message;

  // The slice it planned, under a signed binding that names another slice for it: refused.
  r = erase_request(other_binding, slice, signed_by_ben(other_binding));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("does not name slice"), std::string::npos) << r.error().message;

  // The right binding with a field changed after signing (the signature is over the original).
  json later = binding;
  later["planner"] = "someone-else";
  r = erase_request(later, slice, signed_by_ben(binding));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("admin-ben (bad signature)"), std::string::npos) << r.error().message;

  // The same with the planner's own signature: the planner never counts.
  r = erase_request(binding, slice, json::array({json{{"operator", "dpo-anna"}, {"time", "t"}, {"signature", "00"}}}));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("dpo-anna (planned it)"), std::string::npos) << r.error().message;

  // All of it right: the dry run is accepted.
  r = erase_request(binding, slice, signed_by_ben(binding));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)["dry_run"], true);
  EXPECT_EQ((*r)["manifest_sha256"], slice["manifest_sha256"]);
}

TEST_F(HostsErasureE2e, TheDpoHostsOwnSourcesAreASliceNamedLocalErasedWithTheHosts) {
  // The DPO host keeps the delivery logs itself and asks imap and archive for the rest.
  fs::remove_all(dpo().parent_path());
  const fs::path own = make_host(m_dir.path(), "dpo", {"postfix"}, m_erasure);
  ASSERT_EQ(own, dpo());
  const std::size_t own_before = local_hits(dpo());
  ASSERT_GE(own_before, 1U);
  json config = json::parse(read_file(dpo()));
  const json alone = config;
  config["hosts"] = json::array({agent_of("imap", m_imap), agent_of("archive", m_archive)});
  write_file(dpo(), config.dump(2));
  const auto own_hits = [&] {
    write_file(dpo(), alone.dump(2)); // find without the hosts: the local sources only
    const std::size_t n = local_hits(dpo());
    write_file(dpo(), config.dump(2));
    return n;
  };

  auto p = plan();
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  const json planned = json_lines(p.out).at(0);
  ASSERT_EQ(planned["hosts"].size(), 3U) << planned.dump();
  EXPECT_EQ(planned["hosts"][0]["name"], "local");
  EXPECT_EQ(planned["hosts"][0]["agent_host"], "dpo");
  const json m = json::parse(read_file(manifest()));
  const json &local = m["slices"]["local"];
  ASSERT_EQ(local["items"].size(), own_before);
  for (const json &item : local["items"]) {
    EXPECT_EQ(item["locator"]["source"], "postfix");
    EXPECT_TRUE(item["locator"]["path"].get<std::string>().starts_with(dpo().parent_path().string() + "/"));
  }
  EXPECT_NE(read_file(m_dir.path() / "estate.manifest.html").find("<h2>Host local (dpo)"), std::string::npos);

  // The local slice is checked as a host's is: signed approvals against this config's keys
  // (with keys configured, an unsigned approval is refused already here).
  auto unsigned_approval = ds(dpo(), {"approve", manifest().string(), "--operator", "admin-ben"});
  EXPECT_EQ(unsigned_approval.exit_code, 64) << unsigned_approval.err;
  EXPECT_NE(unsigned_approval.err.find("approvals must be signed"), std::string::npos) << unsigned_approval.err;
  ASSERT_EQ(erase().exit_code, 65) << "no approval yet: every slice refused";
  EXPECT_EQ(own_hits(), own_before) << "nothing changed on a refusal";
  ASSERT_EQ(approve_signed().exit_code, 0);
  auto e = erase();
  ASSERT_EQ(e.exit_code, 0) << e.err << e.out;
  const json report = json_lines(e.out).at(0); // kept: a loop over a temporary's member dangles
  for (const json &h : report["hosts"]) {
    EXPECT_EQ(h["result"], "done") << h.dump();
  }
  EXPECT_EQ(own_hits(), 0U);
  EXPECT_EQ(local_hits(m_imap), 0U);
  EXPECT_EQ(local_hits(m_archive), 0U);
  std::set<std::string> hosts;
  for (const json &r : audit_records(dpo_state(), "erase-host")) {
    hosts.insert(r["details"]["host"].get<std::string>());
  }
  EXPECT_EQ(hosts, (std::set<std::string>{"local", "imap", "archive"}));
  ASSERT_EQ(audit_records(dpo_state(), "erase").size(), 1U) << "the local slice's own erase record";
  EXPECT_EQ(audit_records(dpo_state(), "erase")[0]["details"]["estate_sha256"], planned["manifest_sha256"]);
  auto v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.err << v.out;
  EXPECT_EQ(json_lines(v.out).at(0)["clean"], true) << v.out;

  // A host named "local" beside local sources would be ambiguous in a manifest: refused.
  config["hosts"].push_back(agent_of("local", m_mx1));
  write_file(dpo(), config.dump(2));
  auto ambiguous = ds(dpo(), {"find", "--email", k_email});
  EXPECT_EQ(ambiguous.exit_code, 78) << ambiguous.err;
  EXPECT_NE(ambiguous.err.find("the name 'local' is this host's own sources"), std::string::npos) << ambiguous.err;
}

TEST_F(HostsErasureE2e, APolicyGoesToEveryHostAndItsExemptionsWinThere) {
  const fs::path policy = m_dir.path() / "policy.json";
  const json exemptions = json::array({json{{"source", "amavis"}, {"reason", "Art. 17(3)(e): legal claim 2026-9"}}});
  write_file(policy, json{{"exemptions", exemptions}, {"messages", {{"default", "delete"}}}}.dump());
  auto p = plan({"--policy", policy.string()});
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  const json m = json::parse(read_file(manifest()));
  for (const char *host : {"imap", "archive", "mx1"}) {
    EXPECT_EQ(m["slices"][host]["policy"]["exemptions"], exemptions) << host;
  }
  std::size_t retained = 0;
  for (const json &item : m["slices"]["archive"]["items"]) {
    if (item["locator"]["source"] == "amavis") {
      EXPECT_EQ(item["action"], "retain") << item.dump();
      EXPECT_NE(item["reason"].get<std::string>().find("legal claim 2026-9"), std::string::npos) << item.dump();
      ++retained;
    } else {
      EXPECT_EQ(item["action"], "delete") << item.dump();
    }
  }
  EXPECT_GE(retained, 1U);
  ASSERT_EQ(approve_signed().exit_code, 0);
  const std::size_t archive_before = local_hits(m_archive);
  auto e = erase();
  ASSERT_EQ(e.exit_code, 0) << e.err << e.out;
  EXPECT_EQ(local_hits(m_archive), retained) << "the exempted quarantine items stay, the mbox ones went"
                                             << " (before: " << archive_before << ")";
  // A policy that is no policy is refused on the DPO host, before any host plans.
  write_file(policy, R"({"exemptions": "all"})");
  fs::remove(manifest());
  fs::remove(m_dir.path() / "estate.manifest.html");
  auto bad = plan({"--policy", policy.string()});
  EXPECT_EQ(bad.exit_code, 65) << bad.err;
  EXPECT_EQ(audit_records(m_imap.parent_path() / "state", "plan").size(), 1U) << "no host planned again";
}

TEST_F(HostsErasureE2e, PlanResurrectedAcrossHostsPlansWhatCameBackOnEachHost) {
  ASSERT_EQ(plan().exit_code, 0);
  ASSERT_EQ(approve_signed().exit_code, 0);
  ASSERT_EQ(erase().exit_code, 0);
  ASSERT_EQ(local_hits(m_imap), 0U);
  // A restore from backup on imap brings one of Alice's messages back; its index flags it.
  const std::string file = "mail/example.com/alice.smith/Maildir/cur/1700000000.M1P100.mx1:2,S";
  fs::copy_file(source_dir() / "samples" / file, m_imap.parent_path() / file);
  index_json(m_imap);

  const fs::path again = m_dir.path() / "resurrected.json";
  auto p = ds(dpo(), {"plan", "--request", "DSAR-2026-0042", "--resurrected", "--out", again.string(), "--operator",
                      "dpo-anna"});
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  const json m = json::parse(read_file(again));
  ASSERT_EQ(m["slices"]["imap"]["items"].size(), 1U) << m.dump();
  EXPECT_EQ(m["slices"]["imap"]["items"][0]["action"], "delete");
  EXPECT_EQ(m["slices"]["archive"]["items"].size(), 0U);
  EXPECT_EQ(m["slices"]["mx1"]["items"].size(), 0U);
  EXPECT_EQ(read_file(again).find(k_email), std::string::npos);
  ASSERT_EQ(ds(dpo(), {"approve", again.string(), "--operator", "admin-ben", "--sign-key", m_key.priv.string()}).exit_code, 0);
  auto e = ds(dpo(), {"erase", again.string(), "--operator", "dpo-anna"});
  ASSERT_EQ(e.exit_code, 0) << e.err << e.out;
  EXPECT_EQ(local_hits(m_imap), 0U);
  EXPECT_FALSE(fs::exists(m_imap.parent_path() / file));
  // An identifier beside --resurrected is refused, as in a local plan.
  auto both = ds(dpo(), {"plan", "--request", "DSAR-2026-0042", "--resurrected", "--email", k_email, "--out",
                         (m_dir.path() / "both.json").string(), "--operator", "dpo-anna"});
  EXPECT_EQ(both.exit_code, 64) << both.err;
}

} // namespace
} // namespace maildsar::test
