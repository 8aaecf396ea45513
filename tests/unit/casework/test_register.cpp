// SPDX-License-Identifier: GPL-3.0-or-later
// The request register: Art. 12(3) date rules, extension limits, status rules, file permissions,
// the purge of a closed request's identifiers after the retention period.
#include "casework/register.hpp"
#include "core/audit.hpp"
#include "core/config.hpp"
#include "core/secret.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <sys/stat.h>

namespace maildsar::casework {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

Date d(std::string_view text) {
  auto r = parse_date(text, "date");
  EXPECT_TRUE(r.has_value()) << text;
  return r ? *r : Date{};
}

core::Config make_config(const fs::path &dir, const std::string &extra = "") {
  const std::string text = R"({"state_dir": "state", "sources": [])" + extra + "}";
  auto config = core::parse_config(text, (dir / "maildsar.json").string());
  EXPECT_TRUE(config.has_value()) << (config ? "" : config.error().message);
  return config ? *config : core::Config{};
}

NewRequest alice(std::string id = "", std::string received = "2026-01-31") {
  NewRequest n;
  n.id = std::move(id);
  n.type = RequestType::erasure;
  n.received = d(received);
  n.subject.emails = {"Alice.Smith@Example.com"};
  n.subject.names = {"Alice Smith"};
  n.note = "asked by letter; Alice Smith's passport seen";
  return n;
}

unsigned mode_of(const fs::path &p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777U;
}

TEST(RequestDates, CalendarMonthRuleOfArt12) {
  // Regulation 1182/71 Art. 3(2)(c): same day number, else the last day of the month.
  EXPECT_EQ(to_string(add_months(d("2026-01-15"), 1)), "2026-02-15");
  EXPECT_EQ(to_string(add_months(d("2026-01-31"), 1)), "2026-02-28");
  EXPECT_EQ(to_string(add_months(d("2028-01-31"), 1)), "2028-02-29"); // leap year
  EXPECT_EQ(to_string(add_months(d("2026-01-29"), 1)), "2026-02-28");
  EXPECT_EQ(to_string(add_months(d("2026-03-31"), 1)), "2026-04-30");
  EXPECT_EQ(to_string(add_months(d("2026-12-15"), 1)), "2027-01-15"); // across the year
  EXPECT_EQ(to_string(add_months(d("2026-02-28"), 1)), "2026-03-28"); // not "end of month"
  // Extensions count from the receipt, not from the clamped due date.
  EXPECT_EQ(to_string(add_months(d("2026-01-31"), 3)), "2026-04-30");
  EXPECT_EQ(to_string(add_months(d("2026-11-30"), 3)), "2027-02-28");
  EXPECT_EQ(to_string(add_months(d("2027-11-30"), 3)), "2028-02-29");
  EXPECT_EQ(to_string(add_months(d("2024-02-29"), 12)), "2025-02-28");
  EXPECT_EQ(to_string(add_months(d("2099-12-31"), 2)), "2100-02-28"); // 2100 is no leap year
  EXPECT_EQ(to_string(add_months(d("2399-12-31"), 2)), "2400-02-29"); // 2400 is
}

TEST(RequestDates, ParseRejectsWhatIsNoCalendarDate) {
  for (const char *bad : {"2027-02-29", "2026-13-01", "2026-00-10", "2026-04-31", "2026-1-1", "", "tomorrow",
                          "2026-01-01T00:00:00Z", "20260101"}) {
    auto r = parse_date(bad, "--received");
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, core::ErrorCode::usage);
    EXPECT_NE(r.error().message.find("--received"), std::string::npos);
  }
  EXPECT_EQ(to_string(d("2028-02-29")), "2028-02-29");
}

TEST(RequestDates, DayNumbersRoundTripAndUtcDates) {
  for (std::int64_t n = -800; n < 200000; n += 37) {
    EXPECT_EQ(day_number(from_day_number(n)), n);
  }
  EXPECT_EQ(to_string(date_of(0)), "1970-01-01");
  EXPECT_EQ(to_string(date_of(1773964800)), "2026-03-20");
  EXPECT_EQ(to_string(date_of(1773964800 - 1)), "2026-03-19");
  EXPECT_EQ(to_string(date_of(-1)), "1969-12-31");
}

TEST(RequestRegister, IdsAreGeneratedPerYearAndNeverReused) {
  ScratchDir dir;
  const core::Config config = make_config(dir.path());
  auto reg = Register::open(config);
  ASSERT_TRUE(reg) << reg.error().message;
  auto a = reg->open_request(alice(), d("2026-02-01"), "dpo");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->id, "DSAR-2026-0001");
  EXPECT_EQ(a->status, Status::open);
  EXPECT_EQ(to_string(a->due()), "2026-02-28");
  auto given = reg->open_request(alice("DSAR-2026-0041"), d("2026-02-01"), "dpo");
  ASSERT_TRUE(given) << given.error().message;
  auto b = reg->open_request(alice(), d("2026-02-01"), "dpo");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->id, "DSAR-2026-0042"); // one more than the highest of the year
  auto other_year = reg->open_request(alice("", "2025-12-30"), d("2026-02-01"), "dpo");
  ASSERT_TRUE(other_year);
  EXPECT_EQ(other_year->id, "DSAR-2025-0001");

  auto again = reg->open_request(alice("DSAR-2026-0041"), d("2026-02-01"), "dpo");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, core::ErrorCode::cant_create);
  for (const char *bad : {"../x", "-x", "a b", "ä"}) {
    auto r = reg->open_request(alice(bad), d("2026-02-01"), "dpo");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, core::ErrorCode::usage) << bad;
  }
  auto future = reg->open_request(alice("", "2026-03-01"), d("2026-02-01"), "dpo");
  ASSERT_FALSE(future);
  EXPECT_EQ(future.error().code, core::ErrorCode::usage);
  NewRequest nobody = alice("NOBODY");
  nobody.subject = {};
  auto none = reg->open_request(nobody, d("2026-02-01"), "dpo");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, core::ErrorCode::usage);

  auto unknown = reg->get("DSAR-1999-0001");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, core::ErrorCode::no_input);
  auto list = reg->list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 4U);
  EXPECT_EQ(list->front().id, "DSAR-2025-0001"); // by received date
  EXPECT_EQ(list->front().subject.emails, std::vector<std::string>{"Alice.Smith@Example.com"});
  EXPECT_EQ(list->front().notes.size(), 1U);
}

TEST(RequestRegister, StateIsPrivate) {
  ScratchDir dir;
  const core::Config config = make_config(dir.path());
  auto reg = Register::open(config);
  ASSERT_TRUE(reg);
  ASSERT_TRUE(reg->open_request(alice(), d("2026-02-01"), "dpo"));
  EXPECT_EQ(mode_of(config.state_dir), 0700U);
  EXPECT_EQ(mode_of(register_path(config)), 0600U);
  // Nothing of the subject goes into the audit log in clear.
  const std::string audit = test::read_file(fs::path(config.state_dir) / "audit.log");
  EXPECT_NE(audit.find("request-open"), std::string::npos);
  EXPECT_EQ(audit.find("Alice"), std::string::npos);
  EXPECT_EQ(audit.find("alice"), std::string::npos);
  EXPECT_EQ(audit.find("passport"), std::string::npos);
}

TEST(RequestRegister, ConfirmedIdentifiersAreAddedOnceAndOnlyToAnOpenRequest) {
  ScratchDir dir;
  const core::Config config = make_config(dir.path());
  auto reg = Register::open(config);
  ASSERT_TRUE(reg);
  ASSERT_TRUE(reg->open_request(alice("R1"), d("2026-02-01"), "dpo"));
  query::SubjectProfile more;
  more.emails = {"a.smith@home.example", "Alice.Smith@Example.com"};
  more.phones = {"+442071234567"};
  auto r = reg->add_identifiers("R1", more, "dpo");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->subject.emails, (std::vector<std::string>{"Alice.Smith@Example.com", "a.smith@home.example"}));
  EXPECT_EQ(r->subject.phones, (std::vector<std::string>{"+442071234567"}));
  auto again = reg->add_identifiers("R1", more, "dpo"); // nothing new: nothing changes
  ASSERT_TRUE(again);
  EXPECT_EQ(again->subject.emails.size(), 2U);
  query::SubjectProfile bad;
  bad.emails = {"not an address"};
  auto refused = reg->add_identifiers("R1", bad, "dpo");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, core::ErrorCode::usage);
  // The audit log counts them; it names nobody.
  const std::string audit = test::read_file(fs::path(config.state_dir) / "audit.log");
  EXPECT_NE(audit.find("request-identifiers"), std::string::npos);
  EXPECT_EQ(audit.find("home.example"), std::string::npos);
  ASSERT_TRUE(reg->close("R1", d("2026-02-10"), "dpo"));
  auto closed = reg->add_identifiers("R1", more, "dpo");
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().code, core::ErrorCode::data);
}

TEST(RequestRegister, ExtensionUpToThreeMonthsInTotalAndOnlyInTheFirstMonth) {
  ScratchDir dir;
  const core::Config config = make_config(dir.path());
  auto reg = Register::open(config);
  ASSERT_TRUE(reg);
  ASSERT_TRUE(reg->open_request(alice("R1"), d("2026-02-01"), "dpo"));
  auto no_reason = reg->extend("R1", 1, "", d("2026-02-10"), "dpo");
  ASSERT_FALSE(no_reason);
  EXPECT_EQ(no_reason.error().code, core::ErrorCode::usage);
  auto zero = reg->extend("R1", 0, "complex", d("2026-02-10"), "dpo");
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, core::ErrorCode::usage);
  auto three = reg->extend("R1", 3, "complex", d("2026-02-10"), "dpo");
  ASSERT_FALSE(three);
  EXPECT_EQ(three.error().code, core::ErrorCode::usage);

  auto one = reg->extend("R1", 1, "many archives", d("2026-02-10"), "dpo");
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(to_string(one->due()), "2026-03-31"); // 31 Jan + 2 months
  auto two = reg->extend("R1", 1, "backup tapes", d("2026-02-28"), "dpo"); // last day of the first month
  ASSERT_TRUE(two) << two.error().message;
  EXPECT_EQ(two->extension_months, 2);
  EXPECT_EQ(to_string(two->due()), "2026-04-30"); // 31 Jan + 3 months
  EXPECT_EQ(two->extension_reason, "many archives; backup tapes");
  auto beyond = reg->extend("R1", 1, "more", d("2026-02-20"), "dpo");
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().code, core::ErrorCode::usage);
  EXPECT_NE(beyond.error().message.find("at most 3"), std::string::npos);

  ASSERT_TRUE(reg->open_request(alice("R2"), d("2026-03-01"), "dpo"));
  auto late = reg->extend("R2", 1, "complex", d("2026-03-01"), "dpo"); // due 2026-02-28 has passed
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, core::ErrorCode::usage);
  EXPECT_NE(late.error().message.find("too late"), std::string::npos);
}

TEST(RequestRegister, StatusRulesAndDeadlines) {
  ScratchDir dir;
  const core::Config config = make_config(dir.path());
  auto reg = Register::open(config);
  ASSERT_TRUE(reg);
  ASSERT_TRUE(reg->open_request(alice("R1"), d("2026-02-01"), "dpo"));
  auto r = reg->get("R1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->days_left(d("2026-02-28")), 0);
  EXPECT_FALSE(r->overdue(d("2026-02-28"))); // the due day itself is in time
  EXPECT_TRUE(r->overdue(d("2026-03-01")));
  EXPECT_EQ(r->days_left(d("2026-03-03")), -3);

  ASSERT_TRUE(reg->started("R1", "dpo"));
  EXPECT_EQ(reg->get("R1")->status, Status::in_progress);
  auto refused = reg->set_status("R1", Status::refused, "", "dpo");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, core::ErrorCode::usage);
  auto closed_by_update = reg->set_status("R1", Status::closed, "", "dpo");
  ASSERT_FALSE(closed_by_update);
  EXPECT_EQ(closed_by_update.error().code, core::ErrorCode::usage);
  auto answered = reg->set_status("R1", Status::answered, "", "dpo");
  ASSERT_TRUE(answered);
  EXPECT_FALSE(answered->overdue(d("2026-05-01"))); // answered: the deadline no longer runs
  ASSERT_TRUE(reg->started("R1", "dpo"));
  EXPECT_EQ(reg->get("R1")->status, Status::answered); // a later step does not reopen it

  auto closed = reg->close("R1", d("2026-02-20"), "dpo");
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->status, Status::closed);
  EXPECT_EQ(closed->outcome, "answered");
  for (auto res : {reg->close("R1", d("2026-02-21"), "dpo"), reg->extend("R1", 1, "x", d("2026-02-21"), "dpo"),
                   reg->set_status("R1", Status::in_progress, "", "dpo")}) {
    ASSERT_FALSE(res);
    EXPECT_EQ(res.error().code, core::ErrorCode::data);
  }
  auto note = reg->add_note("R1", "late note", "dpo");
  ASSERT_FALSE(note);
  EXPECT_EQ(note.error().code, core::ErrorCode::data);
}

TEST(RequestRegister, PurgeAfterRetentionKeepsOnlyKeyedHashes) {
  ScratchDir dir;
  const core::Config config = make_config(dir.path(), R"(, "requests": {"retention": "1y"})");
  EXPECT_EQ(config.request_retention_seconds, 365 * 86400);
  auto reg = Register::open(config);
  ASSERT_TRUE(reg);
  ASSERT_TRUE(reg->open_request(alice("R1"), d("2026-02-01"), "dpo"));
  ASSERT_TRUE(reg->open_request(alice("R2"), d("2026-02-01"), "dpo")); // stays open
  ASSERT_TRUE(reg->set_status("R1", Status::answered, "", "dpo"));
  ASSERT_TRUE(reg->close("R1", d("2026-02-20"), "dpo"));

  constexpr std::int64_t k_2027_02_19 = 1802995200; // 2027-02-19T00:00:00Z
  constexpr std::int64_t k_2027_02_20 = k_2027_02_19 + 86400;
  auto early = reg->due_for_purge(k_2027_02_19, config.request_retention_seconds);
  ASSERT_TRUE(early);
  EXPECT_TRUE(early->empty()); // 364 days after closing
  auto due = reg->due_for_purge(k_2027_02_20, config.request_retention_seconds);
  ASSERT_TRUE(due);
  ASSERT_EQ(due->size(), 1U);
  EXPECT_EQ(due->front().id, "R1");

  ASSERT_TRUE(reg->purge("R1", "retention"));
  auto r = reg->get("R1");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->subject.empty());
  EXPECT_TRUE(r->notes.empty());
  EXPECT_FALSE(r->purged.empty());
  // The same keyed hashes as manifests and certificates hold for this subject.
  auto key = core::load_or_create_secret(config.state_dir);
  ASSERT_TRUE(key);
  auto expected = erasure::keyed_subject(config, alice().subject, *key);
  ASSERT_TRUE(expected);
  EXPECT_EQ(r->keyed_subject, *expected);
  ASSERT_EQ(r->keyed_subject.size(), 2U);
  EXPECT_EQ(r->keyed_subject[0].hash, core::keyed_hash(*key, "email", "alice.smith@example.com"));
  auto again = reg->due_for_purge(k_2027_02_20, config.request_retention_seconds);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());
  ASSERT_TRUE(reg->purge("R1", "retention")); // idempotent
  auto open_one = reg->purge("R2", "retention");
  ASSERT_FALSE(open_one);
  EXPECT_EQ(open_one.error().code, core::ErrorCode::usage);

  // R2 still holds the address; remove it too, then no byte of the register's files holds it.
  ASSERT_TRUE(reg->close("R2", d("2026-02-20"), "dpo"));
  ASSERT_TRUE(reg->purge("R2", "retention"));
  for (const auto &entry : fs::directory_iterator(config.state_dir)) {
    if (entry.path().filename().string().starts_with("requests.sqlite3")) {
      const std::string bytes = test::read_file(entry.path());
      EXPECT_EQ(bytes.find("Alice.Smith@Example.com"), std::string::npos) << entry.path();
      EXPECT_EQ(bytes.find("passport"), std::string::npos) << entry.path();
    }
  }
}

// Purged requests hold keyed hashes: once there are any, a lost secret.key is an error, never
// silently replaced (a new key would leave the purged hashes matching nobody). A register
// purged before the marker existed gets it when it is opened.
TEST(RequestRegister, PurgedRequestsKeepALostKeyFromBeingReplaced) {
  ScratchDir dir;
  const core::Config config = make_config(dir.path());
  const fs::path state = config.state_dir;
  const fs::path marker = state / core::k_keyed_requests_marker;
  const fs::path key_file = state / core::k_secret_file;
  {
    auto reg = Register::open(config);
    ASSERT_TRUE(reg);
    ASSERT_TRUE(reg->open_request(alice("R1"), d("2026-02-01"), "dpo"));
    EXPECT_FALSE(fs::exists(marker)); // nothing keyed yet
    ASSERT_TRUE(reg->set_status("R1", Status::answered, "", "dpo"));
    ASSERT_TRUE(reg->close("R1", d("2026-02-20"), "dpo"));
    ASSERT_TRUE(reg->purge("R1", "retention"));
  }
  ASSERT_TRUE(fs::exists(marker));
  EXPECT_EQ(mode_of(marker), 0600U);
  ASSERT_FALSE(fs::exists(state / "erasure.sqlite3")); // the register is the only keyed record

  ASSERT_TRUE(fs::remove(key_file));
  auto lost = core::load_or_create_secret(config.state_dir);
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, core::ErrorCode::no_input);
  EXPECT_NE(lost.error().message.find("requests.keyed"), std::string::npos) << lost.error().message;
  EXPECT_FALSE(fs::exists(key_file)); // no new key was made

  // A register purged by an older version (no marker) is marked when opened.
  ASSERT_TRUE(fs::remove(marker));
  ASSERT_TRUE(Register::open(config));
  EXPECT_TRUE(fs::exists(marker));
  EXPECT_FALSE(core::load_or_create_secret(config.state_dir));
}

TEST(RequestRegister, ConfigRejectsBadRetention) {
  ScratchDir dir;
  for (const char *bad : {R"({"state_dir": "s", "requests": {"retention": "3 years"}})",
                          R"({"state_dir": "s", "requests": {"keep": "3y"}})", R"({"state_dir": "s", "requests": 3})"}) {
    auto c = core::parse_config(bad, (dir.path() / "maildsar.json").string());
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(c.error().code, core::ErrorCode::config) << bad;
  }
}

} // namespace
} // namespace maildsar::casework
