// SPDX-License-Identifier: GPL-3.0-or-later
#include "erasure/signing.hpp"

#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace maildsar::erasure {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::ScratchDir;

json certificate() {
  return json{{"schema", "maildsar.certificate"}, {"version", 1}, {"request", "DSAR-2026-0042"},
              {"counts", {{"maildir", {{"done", 3}}}}}, {"index_hits_remaining", 0}};
}

TEST(CertificateSignature, TheInstallationKeySignsAndAnyoneChecks) {
  ScratchDir dir;
  const std::string state = (dir / "state").string();
  json c = certificate();
  ASSERT_TRUE(sign_certificate(state, c));
  EXPECT_EQ(fs::status(installation_key_path(state)).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  auto check = check_certificate(json::parse(c.dump(2))); // as written to a file and read back
  ASSERT_TRUE(check) << check.error().message;
  EXPECT_TRUE(check->valid);
  auto key = installation_public_key(state);
  ASSERT_TRUE(key);
  EXPECT_EQ(check->public_key, *key); // the key is made once and kept
  EXPECT_EQ(c["signature"]["public_key_sha256"], check->public_key_sha256);

  json again = certificate();
  again["request"] = "DSAR-2026-0043";
  ASSERT_TRUE(sign_certificate(state, again));
  EXPECT_EQ(again["signature"]["public_key"], c["signature"]["public_key"]);
}

TEST(CertificateSignature, AnyChangeBreaksIt) {
  ScratchDir dir;
  json c = certificate();
  ASSERT_TRUE(sign_certificate((dir / "state").string(), c));
  json changed = c;
  changed["counts"]["maildir"]["done"] = 4;
  auto check = check_certificate(changed);
  ASSERT_TRUE(check);
  EXPECT_FALSE(check->valid);
  json added = c;
  added["note"] = "nothing else was there";
  EXPECT_FALSE(check_certificate(added)->valid);
  // signed by another installation: its own key verifies it, but it is another key
  ScratchDir other;
  json theirs = certificate();
  ASSERT_TRUE(sign_certificate((other / "state").string(), theirs));
  EXPECT_TRUE(check_certificate(theirs)->valid);
  EXPECT_NE(check_certificate(theirs)->public_key, check_certificate(c)->public_key);
  // a key swapped in after signing does not verify the old signature
  json swapped = c;
  swapped["signature"]["public_key"] = theirs["signature"]["public_key"];
  EXPECT_FALSE(check_certificate(swapped)->valid);
}

TEST(CertificateSignature, AnUnsignedOrMalformedCertificateIsADataError) {
  EXPECT_EQ(check_certificate(certificate()).error().code, core::ErrorCode::data);
  json bad = certificate();
  bad["signature"] = {{"algorithm", "ed25519"}, {"public_key", "not a key"}, {"value", "00"}};
  EXPECT_EQ(check_certificate(bad).error().code, core::ErrorCode::data);
  bad["signature"] = "abc";
  EXPECT_EQ(check_certificate(bad).error().code, core::ErrorCode::data);
}

TEST(CertificateSignature, AKeyFileOthersCanReadIsRefused) {
  ScratchDir dir;
  const std::string state = (dir / "state").string();
  ASSERT_TRUE(installation_public_key(state));
  fs::permissions(installation_key_path(state), fs::perms::group_read, fs::perm_options::add);
  EXPECT_EQ(installation_public_key(state).error().code, core::ErrorCode::permission);
}

} // namespace
} // namespace maildsar::erasure
