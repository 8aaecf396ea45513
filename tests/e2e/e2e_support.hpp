// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Helpers shared by the end-to-end suites: run the built binary, read its JSON Lines.

#include "tests/test_support.hpp"

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

} // namespace maildsar::test
