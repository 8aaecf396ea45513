// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: identity discovery (issue 16 item 4). A generated estate plants aliases of the
// subject "Jane Doe" (jane@a.example): another address under her name, a Reply-To alias, an
// address delivered into her mailbox, a subaddress the config does not fold and the phone in
// her signature; beside her are unrelated people, one with a similar name ("Jane Dolan") and one
// whose signature she quotes in a reply. Stated threshold: every planted alias scores >= 0.5,
// no unrelated identifier does (the quoted phone scores 0.3).
#include "tests/e2e/e2e_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr double k_threshold = 0.5;

class Estate {
public:
  explicit Estate(const fs::path &root) : m_root(root) {
    for (const char *box : {"jane", "bob", "dolan"}) {
      for (const char *sub : {"cur", "new", "tmp"}) {
        fs::create_directories(root / "mail" / box / "Maildir" / sub);
      }
    }
    config = root / "maildsar.json";
    std::ofstream(config) << R"({"state_dir": "state", "identity": {"phone_region": "GB"}, "sources": [)"
                          << R"({"name": "mailboxes", "type": "maildir", "path": "mail/*/Maildir", "owner": "{1}@a.example"}]})";
  }
  /** Delivers one message into `box`'s inbox. */
  void deliver(const std::string &box, const std::string &headers, const std::string &body) {
    ++m_n;
    std::ofstream(m_root / "mail" / box / "Maildir/cur" / (std::to_string(m_n) + ".host:2,S"))
        << headers << "Date: Mon, " << (m_n % 27 + 1) << " Nov 2025 10:00:00 +0000\n"
        << "Message-ID: <" << m_n << "@gen.example>\n\n"
        << body;
  }
  fs::path config;

private:
  fs::path m_root;
  int m_n = 0;
};

void plant(Estate &e) {
  const std::string jane_sig = "\n-- \nJane Doe\nTel. +44 20 7123 4567\n";
  // Sent from her own address, signed.
  e.deliver("bob", "From: Jane Doe <jane@a.example>\nTo: bob@a.example\nSubject: budget\n", "Numbers attached.\n" + jane_sig);
  e.deliver("bob", "From: Jane Doe <jane+news@a.example>\nTo: bob@a.example\nSubject: folded\n", "Hi.\n");
  // Another address under her name (as sender, and as a recipient).
  e.deliver("bob", "From: Jane Doe <jane.doe@b.example>\nTo: bob@a.example\nSubject: from home\n", "Sent from home.\n" + jane_sig);
  e.deliver("bob", "From: Carol <carol@d.example>\nTo: Jane Doe <jane.doe@b.example>\nCc: bob@a.example\nSubject: hi\n",
            "Hello Jane.\n");
  // A Reply-To alias.
  e.deliver("bob", "From: Jane Doe <jane@a.example>\nReply-To: <jd.replies@c.example>\nTo: bob@a.example\nSubject: rsvp\n",
            "Please answer to my other address.\n" + jane_sig);
  // Her mailbox: a subaddress with '-' (not folded by the config) and another alias, delivered there.
  e.deliver("jane", "From: Shop <news@shop.example>\nTo: jane-news@a.example\nDelivered-To: jane-news@a.example\nSubject: sale\n",
            "Sale!\n");
  e.deliver("jane", "From: Carol <carol@d.example>\nTo: j.doe@a.example\nDelivered-To: j.doe@a.example\nSubject: one\n", "x\n");
  e.deliver("jane", "From: Dave <dave@d.example>\nTo: j.doe@a.example\nDelivered-To: j.doe@a.example\nSubject: two\n", "y\n");
  // Unrelated: Bob writes to her with his signature; she replies quoting it.
  e.deliver("jane",
            "From: Bob Smith <bob@a.example>\nTo: Jane Doe <jane@a.example>\nDelivered-To: jane@a.example\nSubject: re budget\n",
            "Thanks.\n-- \nBob Smith\n+44 161 234 5678\n");
  e.deliver("bob", "From: Jane Doe <jane@a.example>\nTo: Bob Smith <bob@a.example>\nSubject: Re: re budget\n",
            "> Thanks.\n> -- \n> Bob Smith\n> +44 161 234 5678\n\nYou are welcome.\n" + jane_sig);
  // Unrelated, similar name: Jane Dolan, her own address, phone and mailbox.
  for (int i = 0; i < 3; ++i) {
    e.deliver("bob", "From: Jane Dolan <jane.dolan@e.example>\nTo: bob@a.example\nSubject: dolan " + std::to_string(i) + "\n",
              "Regards\n-- \nJane Dolan\n+44 113 234 5678\n");
  }
  e.deliver("dolan", "From: Jane Dolan <dolan@a.example>\nTo: bob@a.example\nDelivered-To: jd@a.example\nSubject: d\n", "z\n");
}

std::map<std::string, json> by_identifier(const json &report) {
  std::map<std::string, json> out;
  for (const json &c : report.at("candidates")) {
    out[c.at("identifier").get<std::string>()] = c;
  }
  return out;
}

TEST(DiscoverE2e, PlantedAliasesAreProposedAndUnrelatedPeopleAreNot) {
  ScratchDir dir;
  Estate e(dir.path());
  plant(e);
  ASSERT_EQ(ds(e.config, {"index"}).exit_code, 0);
  auto r = ds(e.config, {"discover", "--email", "jane@a.example", "--name", "Jane Doe"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = json_lines(r.out).at(0);
  const auto found = by_identifier(report);

  const std::map<std::string, std::string> planted{{"jane.doe@b.example", "display-name"},
                                                   {"jd.replies@c.example", "reply-to"},
                                                   {"jane-news@a.example", "subaddress"},
                                                   {"j.doe@a.example", "mailbox"},
                                                   {"+442071234567", "signature"}};
  for (const auto &[id, rule] : planted) {
    ASSERT_TRUE(found.contains(id)) << id << " not proposed: " << report.dump(2);
    const json &c = found.at(id);
    EXPECT_GE(c["score"].get<double>(), k_threshold) << c.dump();
    bool has_rule = false;
    for (const json &ev : c["evidence"]) {
      has_rule = has_rule || ev["rule"] == rule;
    }
    EXPECT_TRUE(has_rule) << id << ": " << c.dump();
    EXPECT_GE(c["items"].get<int>(), 1);
    EXPECT_FALSE(c["examples"].empty());
    EXPECT_LE(c["examples"].size(), 2U);
    EXPECT_TRUE(c["first"].is_string() && c["last"].is_string()) << c.dump();
  }
  EXPECT_EQ(found.at("+442071234567")["kind"], "phone");
  EXPECT_EQ(found.at("+442071234567")["items"], 4) << found.at("+442071234567").dump(); // every signed message
  EXPECT_EQ(found.at("jane.doe@b.example")["items"], 2);
  // Her own addresses, folded subaddress included, are not "discovered".
  EXPECT_FALSE(found.contains("jane@a.example"));
  EXPECT_FALSE(found.contains("jane+news@a.example"));
  // Nobody unrelated reaches the threshold; the similar name and her phone are not proposed.
  for (const auto &[id, c] : found) {
    if (!planted.contains(id)) {
      EXPECT_LT(c["score"].get<double>(), k_threshold) << id << " proposed: " << c.dump();
    }
  }
  EXPECT_FALSE(found.contains("jane.dolan@e.example"));
  EXPECT_FALSE(found.contains("dolan@a.example"));
  EXPECT_FALSE(found.contains("+441132345678"));
  EXPECT_FALSE(found.contains("bob@a.example"));
  // The phone she quoted from Bob's signature: one item, below the threshold.
  if (found.contains("+441612345678")) {
    EXPECT_LT(found.at("+441612345678")["score"].get<double>(), k_threshold);
  }
  // Sorted by score.
  double previous = 1;
  for (const json &c : report["candidates"]) {
    EXPECT_LE(c["score"].get<double>(), previous);
    previous = c["score"].get<double>();
  }
  // --min-score lists only those.
  auto strong = ds(e.config, {"discover", "--email", "jane@a.example", "--name", "Jane Doe", "--min-score", "0.5"});
  ASSERT_EQ(strong.exit_code, 0) << strong.err;
  EXPECT_EQ(json_lines(strong.out).at(0)["candidates"].size(), planted.size()) << strong.out;
  // Human output names evidence and examples.
  auto human = maildsar_run({"-c", e.config.string(), "discover", "--email", "jane@a.example", "--name", "Jane Doe"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("jane.doe@b.example"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("display-name x2"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("nothing was added"), std::string::npos) << human.out;
  // No name and no address: a usage error.
  EXPECT_EQ(ds(e.config, {"discover", "--phone", "+44 20 7123 4567"}).exit_code, 64);
}

TEST(DiscoverE2e, AddWritesOnlyConfirmedIdentifiersIntoTheRequest) {
  ScratchDir dir;
  Estate e(dir.path());
  plant(e);
  ASSERT_EQ(ds(e.config, {"index"}).exit_code, 0);
  auto opened = ds(e.config, {"request", "open", "--type", "erasure", "--email", "jane@a.example", "--name", "Jane Doe",
                              "--received", "2025-11-30"});
  ASSERT_EQ(opened.exit_code, 0) << opened.err;
  const std::string id = json_lines(opened.out).at(0)["id"];
  // Discovery adds nothing by itself and leaves the request's status alone.
  ASSERT_EQ(ds(e.config, {"discover", "--request", id}).exit_code, 0);
  json shown = json_lines(ds(e.config, {"request", "show", id}).out).at(0);
  EXPECT_EQ(shown["status"], "open");
  EXPECT_EQ(shown["subject"]["emails"].size(), 1U) << shown.dump();
  // Something not proposed is refused.
  EXPECT_EQ(ds(e.config, {"discover", "--request", id, "--add", "someone@else.example"}).exit_code, 64);
  auto added = ds(e.config, {"discover", "--request", id, "--add", "jane.doe@b.example", "+442071234567"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(json_lines(added.out).at(0)["added"].size(), 2U) << added.out;
  shown = json_lines(ds(e.config, {"request", "show", id}).out).at(0);
  EXPECT_EQ(shown["subject"]["emails"], json::array({"jane@a.example", "jane.doe@b.example"})) << shown.dump();
  EXPECT_EQ(shown["subject"]["phones"], json::array({"+442071234567"})) << shown.dump();
  bool on_timeline = false;
  for (const json &t : shown["timeline"]) {
    on_timeline = on_timeline || t["action"] == "request-identifiers";
  }
  EXPECT_TRUE(on_timeline) << shown.dump();
  // `find --request` now searches the added address too.
  auto hits = ds(e.config, {"find", "--request", id});
  EXPECT_NE(hits.out.find("from home"), std::string::npos) << hits.out;
  // Without a request: into a subject file.
  const fs::path subject = dir.path() / "subject.json";
  std::ofstream(subject) << R"({"emails": ["jane@a.example"], "names": ["Jane Doe"]})";
  auto to_file = ds(e.config, {"discover", "--subject", subject.string(), "--add", "jd.replies@c.example"});
  ASSERT_EQ(to_file.exit_code, 0) << to_file.err;
  const json s = json::parse(read_file(subject));
  EXPECT_EQ(s["emails"], json::array({"jane@a.example", "jd.replies@c.example"})) << s.dump();
  EXPECT_EQ(s["names"], json::array({"Jane Doe"}));
  EXPECT_EQ(ds(e.config, {"discover", "--email", "jane@a.example", "--add", "jane.doe@b.example"}).exit_code, 64);
}

} // namespace
} // namespace maildsar::test
