// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include <filesystem>
#include <set>
#include <string>

namespace maildsar::test {

/**
 * A generated estate with one data subject (Alice Smith) planted in every variant DESIGN §3
 * names, plus near misses that must not match. `expected` holds the keys of the items that
 * must be found ("<abs path>" for Maildir files, "<abs path>@<offset>" for mbox messages).
 */
struct PlantedEstate {
  std::filesystem::path root;
  std::filesystem::path config;
  std::filesystem::path subject;
  std::set<std::string> expected;
  std::set<std::string> near_misses;
  std::filesystem::path mbox; // the archive mbox
};

/** Writes the estate under `root` (which must exist). */
PlantedEstate make_planted_estate(const std::filesystem::path &root);

} // namespace maildsar::test
