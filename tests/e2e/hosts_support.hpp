// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// What the tests of hosts (issue 15) share: the samples' sources as a host's config lists them,
// a host made of them, and a state's audit records.
#include "tests/e2e/e2e_support.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace maildsar::test {

/** The samples' sources, by name, as each host's config lists them. */
inline nlohmann::json sample_source(const std::string &name) {
  static const std::map<std::string, nlohmann::json> sources{
      {"mailboxes", {{"name", "mailboxes"}, {"type", "maildir"}, {"path", "mail/example.com/*/Maildir"}, {"owner", "{1}@example.com"}}},
      {"archive", {{"name", "archive"}, {"type", "mbox"}, {"path", "archive/*.mbox"}}},
      {"amavis", {{"name", "amavis"}, {"type", "quarantine"}, {"format", "amavis"}, {"path", "quarantine/amavis"}}},
      {"postfix", {{"name", "postfix"}, {"type", "maillog"}, {"format", "postfix"}, {"path", "logs/mail.log*"}}}};
  return sources.at(name);
}

/** One host: a copy of samples/ under dir/name whose config lists only `sources`, indexed. */
inline std::filesystem::path make_host(const std::filesystem::path &dir, const std::string &name,
                                       const std::vector<std::string> &sources, const nlohmann::json &erasure,
                                       const nlohmann::json &extra = nlohmann::json::object()) {
  const std::filesystem::path root = dir / name;
  copy_tree(source_dir() / "samples", root);
  std::filesystem::remove_all(root / "state");
  nlohmann::json config{{"state_dir", "state"},
                        {"host_name", name},
                        {"sources", nlohmann::json::array()},
                        {"identity", {{"subaddress_separators", "+"}, {"phone_region", "GB"}}},
                        {"erasure", erasure}};
  for (const std::string &s : sources) {
    config["sources"].push_back(sample_source(s));
  }
  config.update(extra);
  write_file(root / "maildsar.json", config.dump(2));
  index_json(root / "maildsar.json");
  return root / "maildsar.json";
}

/** Lines of the audit log in `state` whose action is `action`. */
inline std::vector<nlohmann::json> audit_records(const std::filesystem::path &state, const std::string &action) {
  std::vector<nlohmann::json> out;
  for (nlohmann::json &j : json_lines(read_file(state / "audit.log"))) {
    if (j.value("action", "") == action) {
      out.push_back(std::move(j));
    }
  }
  return out;
}

} // namespace maildsar::test
