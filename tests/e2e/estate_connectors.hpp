// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace maildsar::test {

/**
 * A generated estate of the "other" stores: amavis and MailScanner quarantines, rotated Postfix,
 * Exim and Sendmail logs (plain and gzip), a small Maildir, and (when the corpus is there) copies
 * of corpus PST files. The data subject (Alice Smith) is planted in every store in several roles,
 * next to near misses that must not match.
 *
 * Item keys (see `hit_key` in the tests): "<abs path>" for Maildir and quarantine files,
 * "<abs path>#<queue id>" for log transactions, "<abs path>#<node id>" for PST items.
 */
struct ConnectorEstate {
  std::filesystem::path root;
  std::filesystem::path config;
  std::filesystem::path subject;     // Alice Smith (quarantine, logs, Maildir)
  std::filesystem::path pst_subject; // Terry Mahaffey + Margaret J. Tolle (identities of the corpus PSTs)
  bool has_pst = false;              // the corpus PST files were copied in
  std::set<std::string> expected;    // keys that `find --subject subject` must list
  std::set<std::string> near_misses; // keys that must not be listed
  std::set<std::string> pst_expected; // keys that `find --subject pst_subject` must list
  /** key -> roles that the subject's e-mail address or IP must show (a subset of the hit's). */
  std::map<std::string, std::set<std::string>> roles;
  /** The hand-checked Postfix transaction: its key and its 1-based line numbers. */
  std::string checked_key;
  std::vector<std::uint64_t> checked_lines;
};

/** Writes the estate under `root` (which must exist); `corpus` may be empty (no PST part). */
ConnectorEstate make_connector_estate(const std::filesystem::path &root,
                                      const std::filesystem::path &corpus);

/** gzip -n `path` in place (the file becomes `path`.gz); false when gzip failed. */
bool gzip_file(const std::filesystem::path &path);

/** The key of a `find --json` hit, as ConnectorEstate spells it (path, path@offset, path#node,
 * path#queue-id). */
std::string hit_key(const nlohmann::json &hit);

} // namespace maildsar::test
