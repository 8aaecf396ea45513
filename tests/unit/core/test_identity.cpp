// SPDX-License-Identifier: GPL-3.0-or-later
// Who runs a command: the OS account, and what `--operator` may say about it.
#include "core/config.hpp"
#include "core/identity.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

namespace maildsar::core {
namespace {

const OsUser k_alice{1001, "alice"};
const OsUser k_service{998, "svc-dsar"};

TEST(Identity, WithoutOperatorTheOsAccountRuns) {
  auto id = resolve_operator(std::nullopt, k_alice, MayActForOthers::no);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->name, "alice");
  EXPECT_EQ(id->os.uid, 1001U);
  EXPECT_FALSE(id->acting_for_other);
}

TEST(Identity, OperatorMayRestateTheOsAccount) {
  auto id = resolve_operator(std::string(" Alice "), k_alice, MayActForOthers::no);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->name, "alice");
  EXPECT_FALSE(id->acting_for_other);
}

TEST(Identity, NamingSomeoneElseIsAUsageErrorWithoutTheRight) {
  auto id = resolve_operator(std::string("ben"), k_alice, MayActForOthers::no);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code, ErrorCode::usage);
  EXPECT_NE(id.error().message.find("OS user 'alice'"), std::string::npos) << id.error().message;
  EXPECT_NE(id.error().hint.find("act_for_others"), std::string::npos) << id.error().hint;
}

TEST(Identity, AServiceAccountMayActForAPersonAndBothAreKept) {
  auto id = resolve_operator(std::string("Alice"), k_service, MayActForOthers::yes);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->name, "alice");
  EXPECT_EQ(id->os.name, "svc-dsar");
  EXPECT_TRUE(id->acting_for_other);
}

TEST(Identity, EmptyOperatorIsAUsageError) {
  auto id = resolve_operator(std::string("  "), k_service, MayActForOthers::yes);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code, ErrorCode::usage);
}

TEST(Identity, CurrentOsUserIsTheRealUidNotTheEnvironment) {
  ::setenv("USER", "someone-else", 1);
  const OsUser me = current_os_user();
  EXPECT_EQ(me.uid, static_cast<std::uint32_t>(::getuid()));
  EXPECT_NE(me.name, "someone-else");
  EXPECT_FALSE(me.name.empty());
}

TEST(Identity, ActForOthersIsAListOfOsUserNames) {
  auto c = parse_config(R"({"sources": [], "erasure": {"act_for_others": ["svc-dsar"]}})", "/c.json");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(named_to_act_for_others(k_service, c->erasure.act_for_others));
  EXPECT_FALSE(named_to_act_for_others(k_alice, c->erasure.act_for_others));
  for (const char *bad : {R"("svc-dsar")", R"([""])", R"([1])", R"(["a b"])", R"(["x", "x"])"}) {
    auto r = parse_config(std::string(R"({"sources": [], "erasure": {"act_for_others": )") + bad + "}}", "/c.json");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::config) << bad;
    EXPECT_NE(r.error().message.find("act_for_others"), std::string::npos) << r.error().message;
  }
}

} // namespace
} // namespace maildsar::core
