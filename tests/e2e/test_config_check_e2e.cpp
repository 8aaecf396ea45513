// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: `maildsar config check` (issue 19) on a copy of samples/ — clean, then with each
// problem it must name: an expired hold, logs without retention, a source that matches nothing,
// the Art. 15 information missing; a config that does not parse, overlapping sources, a state
// directory inside a store and a bad message policy are exit 78.
#include "tests/e2e/e2e_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <string>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::set<std::string> codes_of(const json &report) {
  std::set<std::string> codes;
  for (const json &w : report.at("warnings")) {
    codes.insert(w.at("code").get<std::string>());
  }
  return codes;
}

TEST(ConfigCheck, SamplesThenEveryProblemNamed) {
  ScratchDir dir;
  const fs::path root = dir.path() / "s";
  copy_tree(fs::path(MAILDSAR_SOURCE_DIR) / "samples", root);
  fs::remove_all(root / "state");
  const fs::path config = root / "maildsar.json";
  std::string text = read_file(config);
  // The samples lack retention for logs and quarantine and two Art. 15 statements: add them.
  text.insert(text.rfind('}'), R"(, "retention": {"postfix": "90d", "amavis": "30d"})");
  text.replace(text.find("\"internal_domains\""), 0,
               R"("automated_decisions": "None.", "transfers": "None outside the EU.", )");
  write_file(config, text);
  auto clean = ds(config, {"config", "check"});
  ASSERT_EQ(clean.exit_code, 0) << clean.err << clean.out;
  const json ok = json::parse(clean.out);
  EXPECT_EQ(ok.at("schema"), "maildsar.config-check");
  EXPECT_TRUE(ok.at("ok").get<bool>());
  ASSERT_EQ(ok.at("sources").size(), 4U);
  EXPECT_EQ(ok.at("sources")[0].at("name"), "mailboxes");
  EXPECT_EQ(ok.at("sources")[0].at("files"), 6U) << "the message files of alice.smith's and bob.jones's Maildirs";
  EXPECT_EQ(ok.at("sources")[3].at("files"), 2U) << "mail.log and mail.log.1";

  // Every problem at once.
  std::string bad = read_file(config);
  bad.replace(bad.find(R"("postfix": "90d", )"), std::string(R"("postfix": "90d", )").size(), "");
  bad.insert(bad.find(R"(    {"name": "amavis")"), R"(    {"name": "empty", "type": "mbox", "path": "nothing/*.mbox"},
)");
  bad.insert(bad.rfind('}'), R"(, "holds": [{"source": "archive", "reason": "case 12", "until": "2020-01-01"}])");
  bad.replace(bad.find(R"("automated_decisions": "None.", )"), std::string(R"("automated_decisions": "None.", )").size(),
              "");
  write_file(config, bad);
  auto warned = ds(config, {"config", "check"});
  EXPECT_EQ(warned.exit_code, 1) << warned.err << warned.out;
  const json w = json::parse(warned.out);
  EXPECT_FALSE(w.at("ok").get<bool>());
  EXPECT_EQ(codes_of(w), (std::set<std::string>{"no-files", "no-retention", "access-incomplete", "hold-expired"}))
      << w.dump(1);
  const std::string all = w.at("warnings").dump();
  EXPECT_NE(all.find("source 'empty' matches no file now"), std::string::npos) << all;
  EXPECT_NE(all.find("automated_decisions"), std::string::npos) << all;
  EXPECT_NE(all.find("expired on 2020-01-01"), std::string::npos) << all;

  // Human output names the same and exits the same.
  auto human = maildsar_run({"-c", config.string(), "config", "check"});
  EXPECT_EQ(human.exit_code, 1);
  EXPECT_NE(human.err.find("warning: source 'empty' matches no file now"), std::string::npos) << human.err;
  EXPECT_NE(human.out.find("4 warning(s)"), std::string::npos) << human.out;

  // Overlapping sources and the state inside a store are refused when the config is read, as
  // every command does.
  std::string twice = read_file(config);
  twice.insert(twice.find(R"(    {"name": "amavis")"),
               R"(    {"name": "archive-again", "type": "mbox", "path": "archive/2023.mbox"},
)");
  write_file(config, twice);
  auto overlap = ds(config, {"config", "check"});
  EXPECT_EQ(overlap.exit_code, 78) << overlap.err;
  EXPECT_NE(overlap.err.find("cover the same files"), std::string::npos) << overlap.err;
  write_file(config, bad);
  std::string inside = read_file(config);
  inside.replace(inside.find(R"("state_dir": "state")"), std::string(R"("state_dir": "state")").size(),
                 R"("state_dir": "archive/state")");
  write_file(config, inside);
  auto refused = ds(config, {"config", "check"});
  EXPECT_EQ(refused.exit_code, 78) << refused.err;
  EXPECT_NE(refused.err.find("must lie outside every store"), std::string::npos) << refused.err;

  // A config that does not parse, and a message policy it cannot have: 78.
  write_file(config, "{\"sources\": [");
  EXPECT_EQ(ds(config, {"config", "check"}).exit_code, 78);
  write_file(config, R"({"state_dir": "st", "sources": [], "erasure": {"message_policy": {"nobody": "redact"}}})");
  auto policy = ds(config, {"config", "check"});
  EXPECT_EQ(policy.exit_code, 78) << policy.err;
  EXPECT_NE(policy.err.find("'nobody' is not a role"), std::string::npos) << policy.err;
  EXPECT_EQ(ds(config, {"config"}).exit_code, 64);
}

// Shell completion (issue 19 item 2): written from the command table, driven here as bash would
// drive it, with the source names of the config and the request ids of the register.
TEST(Completion, BashCompletesCommandsOptionsSourcesAndRequestsZshParses) {
  ScratchDir dir;
  const fs::path root = dir.path() / "s";
  copy_tree(fs::path(MAILDSAR_SOURCE_DIR) / "samples", root);
  fs::remove_all(root / "state");
  const fs::path config = root / "maildsar.json";
  auto bash = maildsar_run({"completion", "bash"});
  ASSERT_EQ(bash.exit_code, 0) << bash.err;
  write_file(dir.path() / "maildsar.bash", bash.out);
  const std::string bin = fs::path(MAILDSAR_BINARY).parent_path().string();
  const auto complete = [&](const std::string &words, int cword) {
    const std::string script = "PATH='" + bin + "':$PATH; source '" + (dir.path() / "maildsar.bash").string() +
                               "'; COMP_WORDS=(" + words + "); COMP_CWORD=" + std::to_string(cword) +
                               "; _maildsar; printf '%s\\n' \"${COMPREPLY[@]}\"";
    return run({find_program("bash").string(), "-c", script}).out;
  };
  EXPECT_EQ(complete("maildsar er", 1), "erase\n");
  EXPECT_EQ(complete("maildsar -c '" + config.string() + "' index --so", 4), "--source\n");
  EXPECT_EQ(complete("maildsar -c '" + config.string() + "' index --source ''", 5),
            "mailboxes\narchive\namavis\npostfix\n");
  EXPECT_EQ(complete("maildsar -c '" + config.string() + "' find --request ''", 5), "\n")
      << "no register yet: nothing, and none created";
  EXPECT_FALSE(fs::exists(root / "state" / "requests.sqlite3"));
  ASSERT_EQ(ds(config, {"request", "open", "DSAR-2026-0042", "--type", "access", "--email", "a@example.com"}).exit_code,
            0);
  EXPECT_EQ(complete("maildsar -c '" + config.string() + "' find --request ''", 5), "DSAR-2026-0042\n");
  // Every option a command's completion offers is one the command accepts.
  const std::string plan_options = complete("maildsar plan --", 2);
  for (const char *option : {"--policy\n", "--pst\n", "--out\n", "--json\n"}) {
    EXPECT_NE(plan_options.find(option), std::string::npos) << option << " in " << plan_options;
  }
  auto zsh = maildsar_run({"completion", "zsh"});
  ASSERT_EQ(zsh.exit_code, 0);
  EXPECT_TRUE(zsh.out.starts_with("#compdef maildsar\n"));
  write_file(dir.path() / "_maildsar", zsh.out);
  if (!find_program("zsh").empty()) {
    auto parsed = run({find_program("zsh").string(), "-n", (dir.path() / "_maildsar").string()});
    EXPECT_EQ(parsed.exit_code, 0) << parsed.err;
  }
  EXPECT_EQ(maildsar_run({"completion", "fish"}).exit_code, 64);
}

} // namespace
} // namespace maildsar::test
