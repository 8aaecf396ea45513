// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Helpers shared by the end-to-end suites: run the built binary, read its JSON Lines.

#include "tests/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

namespace maildsar::test {

/** Runs the built `maildsar` with `args`. */
inline RunResult maildsar_run(const std::vector<std::string> &args,
                              const std::filesystem::path &cwd = {}) {
  std::vector<std::string> argv{MAILDSAR_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, cwd);
}

/** Runs `maildsar -c CONFIG --json ARGS...` with `env` added to the environment. */
inline RunResult ds(const std::filesystem::path &config, const std::vector<std::string> &args,
                    const std::vector<std::string> &env = {}) {
  std::vector<std::string> argv{MAILDSAR_BINARY, "-c", config.string(), "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {}, env);
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
