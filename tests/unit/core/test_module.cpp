// SPDX-License-Identifier: GPL-3.0-or-later
// core::open_module with system libraries standing in for modules: libc's getpid() as the "ABI"
// function (its answer is known), libz as a library that is no maildsar module.
#include "core/module.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <unistd.h>

namespace maildsar::core {
namespace {

TEST(Module, NothingToOpenNamesEveryPathTriedInOrder) {
  ::setenv("MAILDSAR_TEST_MODULE", "/nonexistent/env.so", 1);
  const ModulePaths paths{"the test module", "MAILDSAR_TEST_MODULE", "../nonexistent/relative.so",
                          "/nonexistent/build.so", "/nonexistent/prefix.so"};
  auto r = open_module(paths, "maildsar_test_abi", 1);
  ::unsetenv("MAILDSAR_TEST_MODULE");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::internal);
  const std::string &m = r.error().message;
  EXPECT_TRUE(m.starts_with("cannot load the test module; tried:")) << m;
  const auto env = m.find("/nonexistent/env.so");
  const auto relative = m.find("nonexistent/relative.so");
  const auto build = m.find("/nonexistent/build.so");
  const auto prefix = m.find("/nonexistent/prefix.so");
  ASSERT_NE(prefix, std::string::npos) << m;
  EXPECT_LT(env, relative);
  EXPECT_LT(relative, build);
  EXPECT_LT(build, prefix);
  EXPECT_NE(r.error().hint.find("MAILDSAR_TEST_MODULE"), std::string::npos);
}

TEST(Module, ALibraryWithoutTheAbiOrOfAnotherAbiIsRefused) {
  const ModulePaths no_abi{"the test module", "", "", "libz.so.1", "/nonexistent/prefix.so"};
  auto r = open_module(no_abi, "maildsar_test_abi", 1);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("libz.so.1: not a maildsar module of ABI 1"), std::string::npos)
      << r.error().message;
  const ModulePaths libc{"the test module", "", "", "libc.so.6", "/nonexistent/prefix.so"};
  const int other = static_cast<int>(::getpid()) + 1;
  auto wrong = open_module(libc, "getpid", other);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("libc.so.6: not a maildsar module of ABI " + std::to_string(other)),
            std::string::npos)
      << wrong.error().message;
}

TEST(Module, TheFirstThatOpensWithTheAbiIsTakenAndItsSymbolsFound) {
  const ModulePaths libc{"the test module", "", "", "libc.so.6", "/nonexistent/prefix.so"};
  auto r = open_module(libc, "getpid", static_cast<int>(::getpid()));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_NE(module_symbol(*r, "getpid"), nullptr);
  EXPECT_EQ(module_symbol(*r, "maildsar_no_such_symbol"), nullptr);
}

} // namespace
} // namespace maildsar::core
