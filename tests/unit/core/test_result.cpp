// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/result.hpp"

#include "core/exit_codes.hpp"
#include "core/hash.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

using namespace maildsar::core;

static_assert(exit_code(ErrorCode::usage) == k_exit_usage);
static_assert(exit_code(ErrorCode::config) == k_exit_config);
static_assert(exit_code(ErrorCode::not_indexed) == k_exit_unavailable);
static_assert(exit_code(ErrorCode::index_locked) == k_exit_temp_fail);

namespace {

Result<int> half(int x) {
  if (x % 2 != 0) {
    return fail(ErrorCode::data, "odd");
  }
  return x / 2;
}

Result<int> quarter(int x) {
  MAILDSAR_TRY_ASSIGN(int h, half(x));
  MAILDSAR_TRY_ASSIGN(int q, half(h));
  return q;
}

} // namespace

TEST(Result, TryAssignPropagates) {
  EXPECT_EQ(*quarter(8), 2);
  auto r = quarter(6);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::data);
}

TEST(Result, ErrorTableNamesAndExitCodes) {
  EXPECT_EQ(to_string(ErrorCode::no_input), "no_input");
  EXPECT_EQ(exit_code(ErrorCode::cant_create), 73);
  EXPECT_EQ(exit_code(ErrorCode::permission), 77);
  EXPECT_TRUE(info(ErrorCode::index_locked).retryable);
}

TEST(Result, ExceptionMapping) {
  auto map = [](auto thrower) {
    try {
      thrower();
    } catch (...) {
      return error_from_current_exception("ctx: ");
    }
    return Error{};
  };
  Error fs_err = map([] {
    throw std::filesystem::filesystem_error("x", std::make_error_code(std::errc::permission_denied));
  });
  EXPECT_EQ(fs_err.code, ErrorCode::permission);
  EXPECT_EQ(fs_err.message.rfind("ctx: ", 0), 0U);
  EXPECT_EQ(map([] { throw std::runtime_error("boom"); }).code, ErrorCode::internal);
}

TEST(Hash, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.hex_digest(), sha256_hex("abc"));
  EXPECT_EQ(hmac_sha256_hex("key", "The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
  // RFC 4231 test case 6: a key longer than the block is hashed first.
  EXPECT_EQ(hmac_sha256_hex(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  // A million bytes through several updates: the streaming digest of FIPS 180-2's long vector.
  Sha256 long_hash;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) {
    long_hash.update(chunk);
  }
  EXPECT_EQ(long_hash.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
