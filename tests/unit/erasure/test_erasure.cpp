// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/config.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/secret.hpp"
#include "erasure/erasure.hpp"
#include "erasure/signing.hpp"
#include "erasure/state.hpp"
#include "indexer/indexer.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <filesystem>

namespace maildsar::erasure {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::ScratchDir;
using test::write_file;

/** A made-up OS account per person (not the test's own): approve() compares OS accounts. */
core::OsUser os_of(const std::string &name) {
  std::uint32_t uid = 50000;
  for (const char ch : name) {
    uid += static_cast<unsigned char>(ch);
  }
  return core::OsUser{uid, name};
}

/** `plan` by operator anna from her own OS account. */
PlanOptions anna_plans(const std::string &policy, const std::string &today) {
  PlanOptions o{"anna", policy, today};
  o.planner_os = os_of("anna");
  return o;
}

Manifest sample_manifest() {
  Manifest m;
  m.request = "DSAR-1";
  m.created = "2026-11-28T20:00:00Z";
  m.planner = "anna";
  m.subject = {KeyedIdentifier{"email", std::string(64, 'a')}};
  m.index_version = "2";
  m.tool_version = "0.1.0";
  ManifestItem item;
  item.id = "abc";
  item.action = Action::erase;
  item.reason = "message in an mbox archive";
  item.locator.source = "archive";
  item.locator.store = connectors::StoreKind::mbox;
  item.locator.path = "/srv/archive/2023.mbox";
  item.locator.offset = 687;
  item.locator.length = 316;
  item.sha256 = std::string(64, 'b');
  item.file = FileIdentity{1, 2, 3, 4};
  m.items.push_back(item);
  ManifestItem log = item;
  log.id = "def";
  log.action = Action::redact;
  log.locator = connectors::Locator{};
  log.locator.source = "postfix";
  log.locator.store = connectors::StoreKind::maillog;
  log.locator.path = "/var/log/mail.log";
  log.locator.queue_id = "4Q1";
  log.locator.lines = {3, 9};
  m.items.push_back(log);
  m.hash = m.compute_hash();
  return m;
}

TEST(Manifest, RoundTripsAndKeepsItsHash) {
  Manifest m = sample_manifest();
  auto parsed = parse_manifest(m.to_json().dump(2), "m.json");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->hash, m.hash);
  ASSERT_EQ(parsed->items.size(), 2U);
  EXPECT_EQ(parsed->items[0].locator.offset, 687U);
  EXPECT_EQ(parsed->items[0].action, Action::erase);
  EXPECT_EQ(parsed->items[1].locator.lines, (std::vector<std::uint64_t>{3, 9}));
  EXPECT_EQ(parsed->items[1].action, Action::redact);
}

TEST(Manifest, AnyEditIsDetected) {
  Manifest m = sample_manifest();
  for (const auto &edit : std::vector<std::function<void(json &)>>{
           [](json &j) { j["items"][0]["action"] = "retain"; },
           [](json &j) { j["items"][0]["locator"]["offset"] = 0; },
           [](json &j) { j["planner"] = "ben"; },
           [](json &j) { j["items"].erase(1); },
           [](json &j) { j["subject"][0]["hash"] = std::string(64, 'c'); },
       }) {
    json j = m.to_json();
    edit(j);
    auto parsed = parse_manifest(j.dump(), "m.json");
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().code, core::ErrorCode::data);
    EXPECT_NE(parsed.error().message.find("altered"), std::string::npos) << parsed.error().message;
  }
}

TEST(Manifest, MalformedManifestsAreDataErrors) {
  for (const std::string &text : {std::string("not json"), std::string("{}"), std::string("[1,2]"),
                                  std::string(R"({"schema": "maildsar.manifest", "version": 99})")}) {
    auto parsed = parse_manifest(text, "m.json");
    ASSERT_FALSE(parsed) << text;
    EXPECT_EQ(parsed.error().code, core::ErrorCode::data) << text;
    EXPECT_NE(parsed.error().message.find("m.json"), std::string::npos);
  }
  json j = sample_manifest().to_json();
  j["items"][0]["action"] = "shred";
  auto parsed = parse_manifest(j.dump(), "m.json");
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message.find("unknown action"), std::string::npos);
}

TEST(Manifest, SaveRefusesToOverwrite) {
  ScratchDir dir;
  const std::string path = (dir.path() / "m.json").string();
  ASSERT_TRUE(save_manifest(sample_manifest(), path));
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  auto again = save_manifest(sample_manifest(), path);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, core::ErrorCode::cant_create);
  auto loaded = load_manifest(path);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->hash, sample_manifest().hash);
}

TEST(KeyedSubject, NormalisesBeforeHashing) {
  core::Config config;
  const std::string key(32, 'k');
  query::SubjectProfile a;
  a.emails = {"alice.smith@example.com"};
  a.names = {"Alice Smith"};
  query::SubjectProfile b;
  b.emails = {"Alice.Smith+news@EXAMPLE.com"};
  b.names = {"SMITH, Álice"};
  auto ka = keyed_subject(config, a, key);
  auto kb = keyed_subject(config, b, key);
  ASSERT_TRUE(ka && kb);
  EXPECT_EQ(*ka, *kb);
  for (const KeyedIdentifier &k : *ka) {
    EXPECT_EQ(k.hash.find("alice"), std::string::npos);
  }
  auto other_key = keyed_subject(config, a, std::string(32, 'x'));
  ASSERT_TRUE(other_key);
  EXPECT_NE(other_key->front().hash, ka->front().hash);
  query::SubjectProfile bad;
  bad.emails = {"not an address"};
  EXPECT_FALSE(keyed_subject(config, bad, key));
}

/** A tiny estate: one mbox with two messages about the subject, indexed. */
struct Estate {
  ScratchDir dir;
  core::Config config;
  query::SubjectProfile subject;
  explicit Estate(const std::string &extra_config = "") {
    fs::create_directories(dir.path() / "archive");
    write_file(dir.path() / "archive/a.mbox",
               "From x@example.org Mon Nov 13 10:00:00 2023\nFrom: Alice Smith <alice.smith@example.com>\n"
               "To: bob@example.org\nSubject: one\n\nHello.\n\n"
               "From x@example.org Mon Nov 13 10:00:00 2023\nFrom: Bob <bob@example.org>\n"
               "To: alice.smith@example.com\nSubject: two\n\nHi.\n\n");
    write_file(dir.path() / "maildsar.json",
               R"({"state_dir": "state", "sources": [{"name": "archive", "type": "mbox", "path": "archive/*.mbox"}])" +
                   extra_config + "}");
    config = *core::load_config((dir.path() / "maildsar.json").string());
    EXPECT_TRUE(index::run_index(config, index::IndexOptions{}));
    subject.request = "DSAR-7";
    subject.emails = {"alice.smith@example.com"};
  }
};

TEST(Plan, DeletesMessagesAndRecordsHashes) {
  Estate e;
  auto result = plan(e.config, e.subject, anna_plans("", "2026-11-28"));
  ASSERT_TRUE(result) << result.error().message;
  const Manifest &m = result->manifest;
  EXPECT_EQ(m.request, "DSAR-7");
  EXPECT_EQ(m.planner, "anna");
  EXPECT_EQ(result->stale, 0U);
  ASSERT_EQ(m.items.size(), 2U);
  for (const ManifestItem &item : m.items) {
    EXPECT_EQ(item.action, Action::erase);
    EXPECT_EQ(item.sha256.size(), 64U);
    EXPECT_GT(item.file.size, 0U);
  }
  EXPECT_EQ(m.hash, m.compute_hash());
}

TEST(Plan, ActiveHoldsWinExpiredOnesDoNot) {
  Estate e(R"(, "holds": [{"source": "archive", "reason": "litigation 2026-17", "until": "2027-06-30"}])");
  auto held = plan(e.config, e.subject, anna_plans("", "2026-11-28"));
  ASSERT_TRUE(held);
  for (const ManifestItem &item : held->manifest.items) {
    EXPECT_EQ(item.action, Action::retain);
    EXPECT_EQ(item.reason, "hold: litigation 2026-17");
    EXPECT_EQ(item.until, "2027-06-30");
  }
  auto expired = plan(e.config, e.subject, anna_plans("", "2027-07-01"));
  ASSERT_TRUE(expired);
  for (const ManifestItem &item : expired->manifest.items) {
    EXPECT_EQ(item.action, Action::erase);
  }
}

TEST(Plan, PolicyExemptionsAndBadPolicies) {
  Estate e;
  const fs::path policy = e.dir.path() / "policy.json";
  write_file(policy, R"({"exemptions": [{"source": "archive", "reason": "Art. 17(3)(e) legal claims"}]})");
  auto exempt = plan(e.config, e.subject, anna_plans(policy.string(), "2026-11-28"));
  ASSERT_TRUE(exempt) << exempt.error().message;
  for (const ManifestItem &item : exempt->manifest.items) {
    EXPECT_EQ(item.action, Action::retain);
    EXPECT_EQ(item.reason, "exemption: Art. 17(3)(e) legal claims");
  }
  EXPECT_EQ(exempt->manifest.policy.at("exemptions").size(), 1U);
  for (const std::string &bad : {std::string(R"({"exemption": []})"),
                                 std::string(R"({"exemptions": [{"source": "archive"}]})"),
                                 std::string(R"({"exemptions": [{"source": "archive", "reason": "r", "until": "soon"}]})"),
                                 std::string(R"({"exemptions": [{"reason": "r"}]})"), std::string("{")}) {
    write_file(policy, bad);
    auto r = plan(e.config, e.subject, anna_plans(policy.string(), "2026-11-28"));
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, core::ErrorCode::data) << bad;
    EXPECT_NE(r.error().message.find("policy.json"), std::string::npos) << r.error().message;
  }
}

TEST(Approve, PlannerCannotApproveAndApprovalsCount) {
  Estate e(R"(, "erasure": {"approvals_required": 2})");
  auto result = plan(e.config, e.subject, anna_plans("", "2026-11-28"));
  ASSERT_TRUE(result);
  const Manifest &m = result->manifest;
  auto self = approve(e.config, m, "anna", "", os_of("anna"));
  ASSERT_FALSE(self);
  EXPECT_EQ(self.error().code, core::ErrorCode::permission);
  auto one = approve(e.config, m, "ben", "", os_of("ben"));
  ASSERT_TRUE(one);
  EXPECT_EQ(one->size(), 1U);
  // Not enough approvals yet: erase refuses and changes nothing.
  const std::string before = test::read_file(e.dir.path() / "archive/a.mbox");
  auto refused = erase(e.config, m, EraseOptions{"ben", DryRun::no, {}});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, core::ErrorCode::data);
  EXPECT_EQ(test::read_file(e.dir.path() / "archive/a.mbox"), before);
  EXPECT_EQ(approve(e.config, m, "ben", "", os_of("ben"))->size(), 1U); // twice is once
  EXPECT_EQ(approve(e.config, m, "cleo", "", os_of("cleo"))->size(), 2U);
  auto done = erase(e.config, m, EraseOptions{"cleo", DryRun::no, {}});
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->count("done"), 2U);
  EXPECT_EQ(test::read_file(e.dir.path() / "archive/a.mbox"), "");
}

/**
 * erase checks that each mbox cut is one whole message where it lies and falls back to a split
 * of the whole file when that check cannot tell. A range over two messages (an older splitter
 * that trusted a sender's Content-Length would have indexed one) is refused and nothing changes.
 */
TEST(Erase, AnMboxRangeThatIsNotOneMessageNowIsRefusedAndNothingChanges) {
  Estate e;
  auto result = plan(e.config, e.subject, anna_plans("", "2026-11-28"));
  ASSERT_TRUE(result);
  Manifest m = result->manifest;
  ASSERT_EQ(m.items.size(), 2U);
  const std::string before = test::read_file(e.dir.path() / "archive/a.mbox");
  std::sort(m.items.begin(), m.items.end(),
            [](const ManifestItem &a, const ManifestItem &b) { return a.locator.offset < b.locator.offset; });
  m.items.resize(1);
  ASSERT_EQ(m.items[0].locator.offset, 0U);
  m.items[0].locator.length = before.size(); // both messages, as one
  m.items[0].sha256 = core::sha256_hex(before);
  m.hash = m.compute_hash();
  ASSERT_TRUE(approve(e.config, m, "ben", "", os_of("ben")));
  auto done = erase(e.config, m, EraseOptions{"ben", DryRun::no, {}});
  ASSERT_TRUE(done) << done.error().message;
  ASSERT_EQ(done->items.size(), 1U);
  EXPECT_EQ(done->items[0].result, "failed");
  EXPECT_NE(done->items[0].detail.find("is not exactly one message"), std::string::npos) << done->items[0].detail;
  EXPECT_EQ(test::read_file(e.dir.path() / "archive/a.mbox"), before);
}

/** A first message after a byte-order mark cannot be checked where it lies (the split skips
    the mark only from the start): the whole-file split decides, and it is erased. */
TEST(Erase, TheFirstMessageOfAnMboxWithAByteOrderMarkIsErased) {
  Estate e;
  const std::string second = "From x@example.org Mon Nov 13 10:00:00 2023\nFrom: Carol <carol@example.net>\n"
                             "To: dave@example.net\nSubject: three\n\nNot about her.\n";
  write_file(e.dir.path() / "archive/a.mbox",
             "\xEF\xBB\xBF" "From x@example.org Mon Nov 13 10:00:00 2023\nFrom: Alice Smith <alice.smith@example.com>\n"
             "To: bob@example.org\nSubject: one\n\nHello.\n\n" +
                 second);
  ASSERT_TRUE(index::run_index(e.config, index::IndexOptions{}));
  auto result = plan(e.config, e.subject, anna_plans("", "2026-11-28"));
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(result->manifest.items.size(), 1U);
  EXPECT_EQ(result->manifest.items[0].locator.offset, 3U);
  ASSERT_TRUE(approve(e.config, result->manifest, "ben", "", os_of("ben")));
  auto done = erase(e.config, result->manifest, EraseOptions{"ben", DryRun::no, {}});
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->count("done"), 1U);
  const std::string after = test::read_file(e.dir.path() / "archive/a.mbox");
  EXPECT_EQ(after.find("alice"), std::string::npos) << after;
  EXPECT_NE(after.find(second), std::string::npos) << after;
}

} // namespace
} // namespace maildsar::erasure

namespace maildsar::erasure {
namespace {

/** Writes a fresh Ed25519 key pair as PEM files. */
void make_key_pair(const std::filesystem::path &private_pem, const std::filesystem::path &public_pem) {
  EVP_PKEY *key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  ASSERT_NE(key, nullptr);
  FILE *f = std::fopen(private_pem.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  f = std::fopen(public_pem.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_PUBKEY(f, key);
  std::fclose(f);
  EVP_PKEY_free(key);
}

TEST(Signing, SignsAndVerifiesApprovalMessages) {
  ScratchDir dir;
  make_key_pair(dir.path() / "ben.key", dir.path() / "ben.pub");
  make_key_pair(dir.path() / "eve.key", dir.path() / "eve.pub");
  const std::string msg = approval_message(std::string(64, 'a'), "ben");
  auto sig = sign_ed25519((dir.path() / "ben.key").string(), msg);
  ASSERT_TRUE(sig) << sig.error().message;
  EXPECT_EQ(sig->size(), 128U);
  EXPECT_TRUE(*verify_ed25519((dir.path() / "ben.pub").string(), msg, *sig));
  EXPECT_FALSE(*verify_ed25519((dir.path() / "eve.pub").string(), msg, *sig));
  EXPECT_FALSE(*verify_ed25519((dir.path() / "ben.pub").string(), approval_message(std::string(64, 'b'), "ben"), *sig));
  EXPECT_FALSE(*verify_ed25519((dir.path() / "ben.pub").string(), msg, "zz"));
  write_file(dir.path() / "junk.pem", "not a key");
  auto bad = sign_ed25519((dir.path() / "junk.pem").string(), msg);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, core::ErrorCode::data);
}

TEST(Approve, ThePlannersOsAccountCannotApproveUnderAnotherName) {
  Estate e;
  auto result = plan(e.config, e.subject, anna_plans("", "2026-11-28"));
  ASSERT_TRUE(result);
  const Manifest &m = result->manifest;
  ASSERT_TRUE(m.planner_os);
  EXPECT_EQ(m.planner_os->name, "anna");
  EXPECT_NE(m.to_json().dump().find(R"("planner_os":{"uid")"), std::string::npos); // in the hashed body
  // A service account that planned as "anna" says it is "ben" now: still the planner's account.
  auto same_os = approve(e.config, m, "ben", "", os_of("anna"));
  ASSERT_FALSE(same_os);
  EXPECT_EQ(same_os.error().code, core::ErrorCode::permission);
  EXPECT_NE(same_os.error().message.find("OS user 'anna' planned manifest"), std::string::npos)
      << same_os.error().message;
  EXPECT_TRUE(approvals(e.config, m.hash)->empty());
}

TEST(Approve, OneOsAccountCountsOnceWhateverItsNames) {
  Estate e(R"(, "erasure": {"approvals_required": 2})");
  auto result = plan(e.config, e.subject, anna_plans("", "2026-11-28"));
  ASSERT_TRUE(result);
  const Manifest &m = result->manifest;
  ASSERT_TRUE(approve(e.config, m, "ben", "", os_of("ben")));
  auto again = approve(e.config, m, "cleo", "", os_of("ben"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, core::ErrorCode::permission);
  EXPECT_NE(again.error().message.find("already approved"), std::string::npos) << again.error().message;
  auto listed = approvals(e.config, m.hash);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1U);
  ASSERT_TRUE(listed->front().os);
  EXPECT_EQ(listed->front().os->name, "ben");
  EXPECT_EQ(listed->front().os->uid, os_of("ben").uid);
}

TEST(Erase, ChecksTheApproversOsAccountsAgainAtExecution) {
  // Approvals written past `approve` (an older tool, an edited database): erase counts none from
  // the planner's OS account and each OS account once.
  Estate e(R"(, "erasure": {"approvals_required": 2})");
  auto result = plan(e.config, e.subject, anna_plans("", "2026-11-28"));
  ASSERT_TRUE(result);
  const Manifest &m = result->manifest;
  const std::string before = test::read_file(e.dir.path() / "archive/a.mbox");
  {
    auto db = ErasureDb::open(e.config);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->add_approval(m.hash, "ben", "2026-11-28T10:00:00Z", "", os_of("anna")));
    ASSERT_TRUE(db->add_approval(m.hash, "cleo", "2026-11-28T10:01:00Z", "", os_of("cleo")));
    ASSERT_TRUE(db->add_approval(m.hash, "dora", "2026-11-28T10:02:00Z", "", os_of("cleo")));
  }
  auto refused = erase(e.config, m, EraseOptions{"cleo", DryRun::no, {}});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, core::ErrorCode::data);
  EXPECT_NE(refused.error().message.find("1 of the 2 approvals"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("who planned it"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("already counted"), std::string::npos) << refused.error().message;
  EXPECT_EQ(test::read_file(e.dir.path() / "archive/a.mbox"), before);
  ASSERT_TRUE(approve(e.config, m, "eve", "", os_of("eve")));
  auto done = erase(e.config, m, EraseOptions{"cleo", DryRun::no, {}});
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->count("done"), 2U);
}

TEST(Approve, ConfiguredApproverKeysRequireValidSignatures) {
  ScratchDir keys;
  make_key_pair(keys.path() / "ben.key", keys.path() / "ben.pub");
  make_key_pair(keys.path() / "eve.key", keys.path() / "eve.pub");
  Estate e(R"(, "erasure": {"approver_keys": {"ben": ")" + (keys.path() / "ben.pub").string() + R"("}})");
  auto result = plan(e.config, e.subject, anna_plans("", "2026-11-28"));
  ASSERT_TRUE(result);
  const Manifest &m = result->manifest;
  auto unsigned_approval = approve(e.config, m, "ben", "", os_of("ben"));
  ASSERT_FALSE(unsigned_approval);
  EXPECT_EQ(unsigned_approval.error().code, core::ErrorCode::usage);
  auto wrong_key = approve(e.config, m, "ben", (keys.path() / "eve.key").string(), os_of("ben"));
  ASSERT_FALSE(wrong_key);
  EXPECT_EQ(wrong_key.error().code, core::ErrorCode::permission);
  // Someone without a configured key may sign, but the approval does not count.
  ASSERT_TRUE(approve(e.config, m, "eve", (keys.path() / "eve.key").string(), os_of("eve")));
  auto refused = erase(e.config, m, EraseOptions{"eve", DryRun::no, {}});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("not counted: eve"), std::string::npos) << refused.error().message;
  auto ok = approve(e.config, m, "ben", (keys.path() / "ben.key").string(), os_of("ben"));
  ASSERT_TRUE(ok) << ok.error().message;
  auto done = erase(e.config, m, EraseOptions{"cleo", DryRun::no, {}});
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->count("done"), 2U);
}

} // namespace
} // namespace maildsar::erasure

namespace maildsar::erasure {
namespace {

TEST(Erase, OneRunAtATime) {
  Estate e;
  auto result = plan(e.config, e.subject, anna_plans("", "2026-11-28"));
  ASSERT_TRUE(result);
  ASSERT_TRUE(approve(e.config, result->manifest, "ben", "", os_of("ben")));
  const std::string before = test::read_file(e.dir.path() / "archive/a.mbox");
  {
    auto held = core::FileLock::try_acquire((e.dir.path() / "state/erase.lock").string(), "");
    ASSERT_TRUE(held);
    auto refused = erase(e.config, result->manifest, EraseOptions{"ben", DryRun::no, {}});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, core::ErrorCode::temp_fail);
    EXPECT_EQ(test::read_file(e.dir.path() / "archive/a.mbox"), before);
  }
  auto done = erase(e.config, result->manifest, EraseOptions{"ben", DryRun::no, {}});
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->count("done"), 2U);
}

} // namespace
} // namespace maildsar::erasure
