// SPDX-License-Identifier: GPL-3.0-or-later
#include "erasure/approval.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>

namespace maildsar::erasure {
namespace {

std::size_t count_of(const std::string &text, std::string_view what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) {
    ++n;
  }
  return n;
}

ManifestItem item(std::string id, std::string source, std::string folder, Action action, std::string reason) {
  ManifestItem i;
  i.id = std::move(id);
  i.action = action;
  i.reason = std::move(reason);
  i.locator.source = std::move(source);
  i.locator.store = connectors::StoreKind::maildir;
  i.locator.folder = std::move(folder);
  i.locator.path = "/srv/mail/" + i.locator.source + "/" + i.locator.folder + "/" + i.id;
  return i;
}

/** 10,000 items in three sources and five folders, with details for all but the last. */
ApprovalView big_view() {
  ApprovalView v;
  v.manifest.request = "DSAR-2026-0042";
  v.manifest.planner = "dpo-anna";
  v.manifest.created = "2026-12-03T10:00:00Z";
  v.manifest.hash = std::string(64, 'a');
  v.subject = {"email: alice.smith@example.com", "name: Alice Smith"};
  const char *sources[] = {"mailboxes", "archive", "gateway"};
  for (int i = 0; i < 10000; ++i) {
    const bool held = i % 10 == 0;
    ManifestItem m = item(fmt::format("{:064x}", i), sources[i % 3], fmt::format(".F{}", i % 5),
                          held ? Action::retain : Action::erase, held ? "hold: litigation 2026-17" : "message in a mailbox");
    if (held) {
      m.until = "2027-06-30";
    }
    v.manifest.items.push_back(m);
    if (i < 9999) {
      query::Hit h;
      h.id = m.id;
      h.date = 1700000000 + i;
      h.subject = i == 7 ? "<script>alert(1)</script> & more" : fmt::format("Subject {}", i);
      h.correspondents = {{"from", "bob.jones@example.com"}, {"to", "alice.smith@example.com"}};
      v.details.emplace(h.id, h);
    }
  }
  return v;
}

TEST(ApprovalSummary, TenThousandItemsAreGroupedAndCollapsed) {
  const ApprovalView v = big_view();
  const std::string html = approval_html(v);
  // one collapsible group per source and folder (3 x 5), each over k_open_group_items: closed
  EXPECT_EQ(count_of(html, "<details"), 15U);
  EXPECT_EQ(count_of(html, "<details open"), 0U);
  EXPECT_EQ(count_of(html, "<tr><td>"), 10000U + 3U); // every item, and the three source rows
  EXPECT_LT(html.size(), 10000U * 700U);
  // the counts, the protection that won, the subject, the hash the approver compares
  EXPECT_NE(html.find("<th class=\"n\">9000</th>"), std::string::npos);
  EXPECT_NE(html.find("1000 item(s): hold: litigation 2026-17 (until 2027-06-30)"), std::string::npos);
  EXPECT_NE(html.find("<li>email: alice.smith@example.com</li>"), std::string::npos);
  EXPECT_NE(html.find(std::string(64, 'a')), std::string::npos);
  // untrusted subject lines are escaped; no script, no external resource
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);
  // an item the index no longer holds is still listed, and says so
  EXPECT_EQ(count_of(html, "(not in the index)"), 1U);
}

TEST(ApprovalSummary, SmallGroupsAreOpen) {
  ApprovalView v;
  v.manifest.request = "R";
  v.manifest.hash = "h";
  v.manifest.items.push_back(item("1", "mailboxes", "", Action::erase, "message in a mailbox"));
  ManifestItem pst = item("2", "legacy", "Inbox", Action::manual, "PST files cannot be changed in place");
  pst.locator.store = connectors::StoreKind::pst;
  pst.instructions = "Open legacy.pst in Outlook and delete it";
  v.manifest.items.push_back(pst);
  const std::string html = approval_html(v);
  EXPECT_EQ(count_of(html, "<details open>"), 2U);
  EXPECT_NE(html.find("1 item(s): PST files cannot be changed in place"), std::string::npos);
  EXPECT_NE(html.find("Open legacy.pst in Outlook and delete it"), std::string::npos);
  EXPECT_NE(html.find("known here only as keyed hashes"), std::string::npos); // no subject given
}

TEST(ApprovalSummary, TheTextSaysTheSameWithoutControlCharacters) {
  ApprovalView v = big_view();
  v.details.begin()->second.subject = "evil\x1b]0;title\x07 subject";
  const std::string text = approval_text(v);
  EXPECT_NE(text.find("manifest sha256 " + std::string(64, 'a')), std::string::npos);
  EXPECT_NE(text.find("1000 item(s) retained: hold: litigation 2026-17 (until 2027-06-30)"), std::string::npos);
  EXPECT_NE(text.find("  subject email: alice.smith@example.com"), std::string::npos);
  EXPECT_NE(text.find("10000 item(s) in all"), std::string::npos);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(text.find('\x07'), std::string::npos);
  EXPECT_EQ(count_of(text, "from bob.jones@example.com; to alice.smith@example.com"), 9999U);
}

TEST(ApprovalSummary, ItsPathIsBesideTheManifest) {
  EXPECT_EQ(approval_html_path("/tmp/out/manifest.json"), "/tmp/out/manifest.html");
  EXPECT_EQ(approval_html_path("/tmp/out/manifest"), "/tmp/out/manifest.html");
  EXPECT_EQ(approval_html_path(".json"), ".json.html");
}

TEST(ApprovalSummary, DetailsCarriedFromAHostRoundTripAndMalformedOnesAreSkipped) {
  const ApprovalView sent = big_view();
  const nlohmann::json carried = details_json(sent);
  ASSERT_EQ(carried.size(), 9999U) << "every item with details, none for the last";
  ApprovalView got;
  got.manifest = sent.manifest;
  got.subject = sent.subject;
  EXPECT_EQ(add_details(got, carried), 0U);
  EXPECT_EQ(approval_text(got), approval_text(sent)) << "the same summary from the carried details";

  // Untrusted: wrong types, ids of no item, oversized strings and lists.
  nlohmann::json bad = nlohmann::json::object();
  const std::string first = sent.manifest.items[0].id;
  const std::string second = sent.manifest.items[1].id;
  bad[first] = {{"date", "yesterday"}, {"subject", "x"}, {"correspondents", nlohmann::json::array()}};
  bad[std::string(64, 'f')] = {{"date", nullptr}, {"subject", "not an item"}, {"correspondents", nlohmann::json::array()}};
  bad[sent.manifest.items[2].id] = 42;
  nlohmann::json people = nlohmann::json::array();
  for (int i = 0; i < 100; ++i) {
    people.push_back({"to", fmt::format("p{}@example.com", i)});
  }
  people.push_back({"to"}); // not a pair: dropped
  bad[second] = {{"date", nullptr}, {"subject", std::string(600, 'a') + "\xc3\xa9"}, {"correspondents", people}};
  ApprovalView v;
  v.manifest = sent.manifest;
  EXPECT_EQ(add_details(v, bad), 3U);
  ASSERT_EQ(v.details.size(), 1U);
  const query::Hit &h = v.details.at(second);
  EXPECT_EQ(h.subject, std::string(512, 'a'));
  EXPECT_EQ(h.correspondents.size(), 32U);
  EXPECT_FALSE(h.date);
  EXPECT_EQ(add_details(v, nlohmann::json::array()), 1U) << "not an object";
  EXPECT_EQ(add_details(v, nlohmann::json()), 0U) << "none sent (an older agent)";
}

TEST(ApprovalSummary, TheEstateSummaryShowsEveryHostItsSliceAndWhoWasNotSearched) {
  EstateApprovalView e;
  e.request = "DSAR-2026-0042";
  e.planner = "dpo-anna";
  e.created = "2026-12-04T12:00:00Z";
  e.hash = std::string(64, 'e');
  e.subject = {"email: alice.smith@example.com"};
  ApprovalView imap = big_view();
  imap.details.begin()->second.subject = "<b>bold</b>";
  e.hosts.push_back({"imap", "imap.example.com", "", imap});
  ApprovalView mx1;
  mx1.manifest.hash = std::string(64, 'b');
  mx1.manifest.items.push_back(item(std::string(64, '1'), "postfix", "", Action::redact, "delivery-log transaction"));
  e.hosts.push_back({"mx1", "mx1.example.com", "its items' details could not be read: host mx1: down", mx1});
  e.not_searched.emplace_back("mx2", "host mx2: unreachable");
  const std::string html = estate_approval_html(e);
  EXPECT_NE(html.find("<h2>Host imap (imap.example.com): 10000 item(s)</h2>"), std::string::npos);
  EXPECT_NE(html.find("<h2>Host mx1 (mx1.example.com): 1 item(s)</h2>"), std::string::npos);
  EXPECT_NE(html.find("Host mx2 was NOT SEARCHED"), std::string::npos);
  EXPECT_NE(html.find("its items&#39; details could not be read: host mx1: down"), std::string::npos);
  EXPECT_NE(html.find(std::string(64, 'e')), std::string::npos);
  EXPECT_NE(html.find("<li>email: alice.smith@example.com</li>"), std::string::npos);
  EXPECT_EQ(html.find("<b>bold</b>"), std::string::npos) << "details are escaped";
  EXPECT_EQ(count_of(html, "<h3>Every item</h3>"), 2U);
  const std::string text = estate_approval_text(e);
  EXPECT_NE(text.find("== host imap (imap.example.com) =="), std::string::npos);
  EXPECT_NE(text.find("  host mx2: NOT SEARCHED"), std::string::npos);
  EXPECT_NE(text.find("10000 item(s) in all"), std::string::npos);
  EXPECT_NE(text.find("1 item(s) in all"), std::string::npos);
}

} // namespace
} // namespace maildsar::erasure
