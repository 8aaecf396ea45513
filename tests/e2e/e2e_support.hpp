// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Helpers shared by the end-to-end suites: run the built binary, read its JSON Lines.

#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace maildsar::test {

/**
 * The OS account the harness approves from. `approve` refuses the OS account that planned, and
 * the suites plan, approve and erase from one shell. When the tests run as root (as they do on
 * the build machines), `approve` runs with this real uid and effective uid 0 (`setpriv --ruid`),
 * so maildsar sees another OS login ("uid4242") that can still reach the root-owned 0700 state
 * and, as effective root, may act as `--operator admin-ben`. Not root: approve runs as the test's
 * own account and is refused as the planner's (the four-eyes suites need root;
 * test_identity_e2e.cpp covers two real Unix users).
 */
inline constexpr unsigned k_e2e_approver_uid = 4242;

/** argv that runs the maildsar binary with `args`, from another OS login for `approve` (see
    k_e2e_approver_uid). */
inline std::vector<std::string> maildsar_argv(const std::vector<std::string> &args) {
  std::vector<std::string> argv;
  const bool approving = std::find(args.begin(), args.end(), "approve") != args.end();
  if (approving && ::geteuid() == 0) {
    if (const std::filesystem::path setpriv = find_program("setpriv"); !setpriv.empty()) {
      argv = {setpriv.string(), "--ruid", std::to_string(k_e2e_approver_uid), "--"};
    }
  }
  argv.emplace_back(MAILDSAR_BINARY);
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

/** Runs the built `maildsar` with `args`. */
inline RunResult maildsar_run(const std::vector<std::string> &args,
                              const std::filesystem::path &cwd = {}) {
  return run(maildsar_argv(args), cwd);
}

/** Runs `maildsar -c CONFIG --json ARGS...` with `env` added to the environment. */
inline RunResult ds(const std::filesystem::path &config, const std::vector<std::string> &args,
                    const std::vector<std::string> &env = {}) {
  std::vector<std::string> all{"-c", config.string(), "--json"};
  all.insert(all.end(), args.begin(), args.end());
  return run(maildsar_argv(all), {}, env);
}

/** Parses JSON Lines output (one object per non-empty line). */
inline std::vector<nlohmann::json> json_lines(const std::string &out) {
  std::vector<nlohmann::json> v;
  std::istringstream ss(out);
  std::string line;
  while (std::getline(ss, line)) {
    if (!line.empty()) {
      v.push_back(nlohmann::json::parse(line));
    }
  }
  return v;
}

/** Runs `maildsar -c CONFIG index --json [EXTRA...]`, expects exit 0, returns the summary. */
inline nlohmann::json index_json(const std::filesystem::path &config,
                                 const std::vector<std::string> &extra = {}) {
  std::vector<std::string> args{"-c", config.string(), "index", "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = maildsar_run(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r.out);
  EXPECT_EQ(lines.size(), 1U) << r.out;
  return lines.empty() ? nlohmann::json() : lines.front();
}

/** The counts of one source in an index summary (a failure, and -1 counts, if absent). */
inline nlohmann::json source_counts(const nlohmann::json &summary, const std::string &name) {
  for (const auto &s : summary.at("sources")) {
    if (s.at("name") == name) {
      return s;
    }
  }
  ADD_FAILURE() << "no source " << name << " in " << summary.dump();
  return nlohmann::json::object(
      {{"items", -1}, {"errors", -1}, {"new", -1}, {"changed", -1}, {"removed", -1}});
}

} // namespace maildsar::test
