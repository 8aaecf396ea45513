// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: approvers are who they say they are (issue 16 item 3). The operator is the OS
// login (getuid, not $USER); `--operator` may only restate it unless the config lets that login
// act for others (both are then recorded); the OS login that planned can never approve, whatever
// name it gives; two real Unix users plan and approve (root only: the test creates them).
//
// How the state is shared between OS users: maildsar keeps its state directory 0700 and its
// files 0600 (personal data), owned by whoever runs it. Two ordinary logins therefore cannot use
// one state directory at the same time. The test hands the working tree (config, maildir, state,
// manifest) to the login of the next step with chown, as an administrator hands a case over;
// each step then runs fully as that login (setpriv --reuid/--regid --clear-groups: real and
// effective uid, no capabilities), so what maildsar sees is exactly what the kernel says.
#include "tests/e2e/e2e_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <pwd.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/** An OS login a step runs as: the test's own, or (root) a uid the tree is handed to. */
struct Login {
  unsigned uid = 0;
  unsigned gid = 0;
  std::string name; // as maildsar names it: passwd name or "uid<N>"
};

Login own_login() {
  Login l{static_cast<unsigned>(::getuid()), static_cast<unsigned>(::getgid()), ""};
  const passwd *pw = ::getpwuid(::getuid());
  l.name = pw != nullptr ? pw->pw_name : "uid" + std::to_string(l.uid);
  return l;
}

/** Hands `tree` to `who` (root only) and runs maildsar there as `who`, wholly. */
RunResult run_as(const Login &who, const fs::path &tree, const std::vector<std::string> &args) {
  std::vector<std::string> argv;
  if (::geteuid() == 0 && who.uid != 0) {
    auto chown = run({find_program("chown").string(), "-R", std::to_string(who.uid) + ":" + std::to_string(who.gid),
                      tree.string()});
    EXPECT_EQ(chown.exit_code, 0) << chown.err;
    argv = {find_program("setpriv").string(), "--reuid", std::to_string(who.uid), "--regid", std::to_string(who.gid),
            "--clear-groups", "--"};
  }
  argv.emplace_back(MAILDSAR_BINARY);
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

/** A login that is not root: the test's own, or, as root, a bare uid (no passwd entry). */
Login unprivileged_login() {
  if (::geteuid() != 0) {
    return own_login();
  }
  return Login{4243, 4243, "uid4243"};
}

/** A maildir with one message of the subject, and a config (extra: more top-level keys). */
fs::path make_tree(const fs::path &tree, const std::string &extra) {
  // The scratch dir is 0700 root; the logins the tree is handed to must reach it.
  fs::create_directories(tree);
  fs::permissions(tree.parent_path(), fs::perms::others_exec, fs::perm_options::add);
  fs::create_directories(tree / "Maildir/cur");
  fs::create_directories(tree / "Maildir/new");
  fs::create_directories(tree / "Maildir/tmp");
  std::ofstream(tree / "Maildir/cur/1.host:2,S")
      << "From: Alice Smith <alice.smith@example.com>\nTo: bob@example.org\nSubject: hello\n"
         "Date: Mon, 13 Nov 2023 10:00:00 +0000\nMessage-ID: <1@example.com>\n\nHello Bob.\n";
  const fs::path config = tree / "maildsar.json";
  std::ofstream(config) << R"({"state_dir": "state", "sources": [{"name": "mail", "type": "maildir", "path": "Maildir"}])"
                        << extra << "}";
  return config;
}

json first_json(const RunResult &r) {
  auto lines = json_lines(r.out);
  return lines.empty() ? json() : lines.front();
}

TEST(IdentityE2e, OperatorMayOnlyRestateTheOsLogin) {
  ScratchDir dir;
  const fs::path tree = dir.path() / "t";
  const Login me = unprivileged_login();
  const fs::path config = make_tree(tree, "");
  // Another person's name: a usage error that says why and how.
  auto other = run_as(me, tree, {"-c", config.string(), "--json", "--operator", "someone-else", "status"});
  EXPECT_EQ(other.exit_code, 64) << other.err << other.out;
  EXPECT_NE(other.err.find("--operator may only restate"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find("act_for_others"), std::string::npos) << other.err;
  // Restating oneself (any case) is fine.
  std::string upper = me.name;
  for (char &ch : upper) {
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  auto restated = run_as(me, tree, {"-c", config.string(), "--json", "--operator", upper, "status"});
  EXPECT_NE(restated.exit_code, 64) << restated.err;
  // The config lets this login act for others: then it may.
  make_tree(tree, R"(, "erasure": {"act_for_others": [")" + me.name + R"("]})");
  auto acting = run_as(me, tree, {"-c", config.string(), "--json", "--operator", "someone-else", "status"});
  EXPECT_NE(acting.exit_code, 64) << acting.err;
}

TEST(IdentityE2e, OneOsLoginCannotPlanAndApproveUnderTwoNames) {
  ScratchDir dir;
  const fs::path tree = dir.path() / "t";
  const Login svc = unprivileged_login();
  const fs::path config = make_tree(tree, R"(, "erasure": {"act_for_others": [")" + svc.name + R"("]})");
  const std::string c = config.string();
  ASSERT_EQ(run_as(svc, tree, {"-c", c, "index"}).exit_code, 0);
  const fs::path manifest = tree / "m.json";
  auto plan = run_as(svc, tree, {"-c", c, "--json", "plan", "--email", "alice.smith@example.com", "--out",
                                 manifest.string(), "--operator", "dpo-anna"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_EQ(first_json(plan)["planner"], "dpo-anna");
  EXPECT_EQ(first_json(plan)["planner_os_user"], svc.name);
  const json m = json::parse(read_file(manifest));
  EXPECT_EQ(m["planner"], "dpo-anna");
  EXPECT_EQ(m["planner_os"]["user"], svc.name);
  EXPECT_EQ(m["planner_os"]["uid"], svc.uid);
  auto approve = run_as(svc, tree, {"-c", c, "--json", "approve", manifest.string(), "--operator", "admin-ben"});
  EXPECT_EQ(approve.exit_code, 77) << approve.err;
  EXPECT_NE(approve.err.find("OS user '" + svc.name + "' planned manifest"), std::string::npos) << approve.err;
  auto erase = run_as(svc, tree, {"-c", c, "--json", "erase", manifest.string(), "--operator", "admin-ben"});
  EXPECT_EQ(erase.exit_code, 65) << erase.err; // no approval counts
  // Both names are in the audit log: the operator and the login that acted for them.
  bool planned_with_login = false;
  for (const std::string &line : {read_file(tree / "state/audit.log")}) {
    for (const json &rec : json_lines(line)) {
      if (rec["action"] == "plan") {
        planned_with_login = rec["operator"] == "dpo-anna" && rec.value("os_user", "") == svc.name;
      }
    }
  }
  EXPECT_TRUE(planned_with_login) << read_file(tree / "state/audit.log");
  auto listed = run_as(svc, tree, {"-c", c, "audit"});
  EXPECT_NE(listed.out.find("dpo-anna (OS user " + svc.name + ")"), std::string::npos) << listed.out;
}

/** Unix users made for one test and removed after it (root only). */
class TempUsers {
public:
  ~TempUsers() {
    for (const std::string &n : m_names) {
      run({find_program("userdel").string(), n});
    }
  }
  std::optional<Login> add(const std::string &name) {
    auto r = run({find_program("useradd").string(), "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin",
                  name});
    if (r.exit_code != 0) {
      ADD_FAILURE() << "useradd " << name << ": " << r.err;
      return std::nullopt;
    }
    m_names.push_back(name);
    const passwd *pw = ::getpwnam(name.c_str());
    if (pw == nullptr) {
      ADD_FAILURE() << "no passwd entry for " << name;
      return std::nullopt;
    }
    return Login{static_cast<unsigned>(pw->pw_uid), static_cast<unsigned>(pw->pw_gid), name};
  }

private:
  std::vector<std::string> m_names;
};

TEST(IdentityE2e, TwoRealUnixUsersPlanAndApprove) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "creating two Unix users needs root (useradd); the same-login refusal is covered by "
                    "OneOsLoginCannotPlanAndApproveUnderTwoNames";
  }
  if (find_program("useradd").empty() || find_program("setpriv").empty()) {
    GTEST_SKIP() << "useradd or setpriv is not installed";
  }
  TempUsers users;
  const std::string tag = std::to_string(::getpid());
  auto planner = users.add("mdsp" + tag);
  auto approver = users.add("mdsa" + tag);
  ASSERT_TRUE(planner && approver);
  ScratchDir dir;
  const fs::path tree = dir.path() / "t";
  const fs::path config = make_tree(tree, "");
  const std::string c = config.string();
  ASSERT_EQ(run_as(*planner, tree, {"-c", c, "index"}).exit_code, 0);
  const fs::path manifest = tree / "m.json";
  auto plan = run_as(*planner, tree, {"-c", c, "--json", "plan", "--email", "alice.smith@example.com", "--out",
                                      manifest.string()});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_EQ(first_json(plan)["planner"], planner->name); // the OS login by default
  // The planner cannot approve, and cannot pretend to be the approver either.
  auto self = run_as(*planner, tree, {"-c", c, "--json", "approve", manifest.string()});
  EXPECT_EQ(self.exit_code, 77) << self.err;
  auto pretend = run_as(*planner, tree, {"-c", c, "--json", "approve", manifest.string(), "--operator", approver->name});
  EXPECT_EQ(pretend.exit_code, 64) << pretend.err;
  // $USER says nothing.
  auto env = run({find_program("setpriv").string(), "--reuid", std::to_string(planner->uid), "--regid",
                  std::to_string(planner->gid), "--clear-groups", "--", MAILDSAR_BINARY, "-c", c, "--json", "approve",
                  manifest.string()},
                 {}, {"USER=" + approver->name, "LOGNAME=" + approver->name});
  EXPECT_EQ(env.exit_code, 77) << env.err;
  // The other login approves.
  auto approved = run_as(*approver, tree, {"-c", c, "--json", "approve", manifest.string()});
  ASSERT_EQ(approved.exit_code, 0) << approved.err;
  const json a = first_json(approved);
  ASSERT_EQ(a["approvals"].size(), 1U) << a.dump();
  EXPECT_EQ(a["approvals"][0]["operator"], approver->name);
  EXPECT_EQ(a["approvals"][0]["os_user"], approver->name);
  EXPECT_TRUE(a["ready"].get<bool>());
  // The planner's login carries it out (erase checks the approvals' logins again).
  auto erased = run_as(*planner, tree, {"-c", c, "--json", "erase", manifest.string()});
  EXPECT_EQ(erased.exit_code, 0) << erased.err;
  EXPECT_FALSE(fs::exists(tree / "Maildir/cur/1.host:2,S"));
  // The certificate names both logins: who planned and who approved.
  auto verified = run_as(*planner, tree, {"-c", c, "--json", "verify", "--email", "alice.smith@example.com"});
  ASSERT_EQ(verified.exit_code, 0) << verified.err << verified.out;
  const json cert = json::parse(read_file(first_json(verified).at("certificate").get<std::string>()));
  const std::string hash = json::parse(read_file(manifest)).at("manifest_sha256");
  EXPECT_EQ(cert["approvers"][hash], json::array({approver->name})) << cert.dump();
  EXPECT_EQ(cert["approver_os_users"][hash], json::array({approver->name})) << cert.dump();
  EXPECT_EQ(cert["planners"][hash]["os_user"], planner->name) << cert.dump();
  // The audit log says who approved, by login.
  bool approved_by_login = false;
  for (const json &rec : json_lines(read_file(tree / "state/audit.log"))) {
    approved_by_login = approved_by_login ||
                        (rec["action"] == "approve" && rec["details"]["approver_os_user"] == approver->name);
  }
  EXPECT_TRUE(approved_by_login);
  // Hand everything back so that the scratch dir can go.
  run({find_program("chown").string(), "-R", "0:0", tree.string()});
}

} // namespace
} // namespace maildsar::test
