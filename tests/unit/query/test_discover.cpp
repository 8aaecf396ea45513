// SPDX-License-Identifier: GPL-3.0-or-later
// Identity discovery's scores (query/discover.hpp; the table in docs/cli.md "discover").
#include "query/discover.hpp"

#include <gtest/gtest.h>

namespace maildsar::query {
namespace {

TEST(DiscoverScore, EachRuleGrowsWithItemsUpToThreeMore) {
  EXPECT_DOUBLE_EQ(rule_score("display-name", 1), 0.6);
  EXPECT_NEAR(rule_score("display-name", 2), 0.7, 1e-9);
  EXPECT_NEAR(rule_score("display-name", 4), 0.9, 1e-9);
  EXPECT_NEAR(rule_score("display-name", 400), 0.9, 1e-9);
  EXPECT_DOUBLE_EQ(rule_score("signature", 1), 0.3);
  EXPECT_NEAR(rule_score("signature", 3), 0.5, 1e-9);
  EXPECT_DOUBLE_EQ(rule_score("reply-to", 1), 0.5);
  EXPECT_DOUBLE_EQ(rule_score("mailbox", 1), 0.4);
  EXPECT_DOUBLE_EQ(rule_score("subaddress", 1), 0.8);
  EXPECT_DOUBLE_EQ(rule_score("no-such-rule", 9), 0);
}

TEST(DiscoverScore, RulesCombineAsIndependentEvidence) {
  EXPECT_DOUBLE_EQ(combined_score({}), 0);
  EXPECT_DOUBLE_EQ(combined_score({0.3}), 0.3);
  EXPECT_DOUBLE_EQ(combined_score({0.8, 0.4}), 0.88);
  EXPECT_DOUBLE_EQ(combined_score({0.3, 0.3}), 0.51); // two weak rules together pass 0.5
  EXPECT_LT(combined_score({0.9, 0.9, 0.9}), 1.0);
}

} // namespace
} // namespace maildsar::query
