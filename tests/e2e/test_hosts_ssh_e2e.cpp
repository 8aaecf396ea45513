// SPDX-License-Identifier: GPL-3.0-or-later
// The ssh transport for real (issue 15): a private sshd of the test's own on a free loopback port
// (its own config, host key, authorized_keys, pid file and log in a temp dir; the machine's sshd,
// /etc/ssh and ~/.ssh are not touched), three "hosts" each reached by its own client key whose
// authorized_keys line is the forced command + `restrict` form of docs/deployment.md, and a DPO
// config whose hosts use `"transport": "ssh"`. find, status, export and plan -> approve (signed)
// -> erase -> verify go through /usr/bin/ssh and sshd; a key forced to /bin/false, a login that
// prints a banner and a wrong host key make find exit 1 naming the host.
//
// ssh reads ~/.ssh/config from the passwd entry's home directory, not from $HOME, so the test
// cannot hand the DPO process an ssh config through HOME. The transport runs "ssh" from $PATH
// (remote/host_client.cpp), so the DPO process gets a PATH whose first entry holds a two-line
// `ssh` that runs the real ssh with `-F <the test's ssh_config>`: port, IdentityFile and
// UserKnownHostsFile come from there; StrictHostKeyChecking stays on.
#include "tests/e2e/hosts_support.hpp"
#include "tests/e2e/listening_agent.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

const char *const k_email = "alice.smith@example.com";
const char *const k_sshd = "/usr/sbin/sshd";

/** The account sshd logs in: the test's own (as root, root; otherwise sshd runs unprivileged and
    can log in no one else). Empty if it has no passwd entry. */
std::string login_name() {
  const passwd *pw = ::getpwuid(::geteuid());
  return pw != nullptr ? std::string(pw->pw_name) : std::string();
}

/** A loopback port that was free a moment ago (bind port 0, read it back, close). */
int free_loopback_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    return -1;
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001U); // 127.0.0.1
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(s, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 && // NOLINT: the sockets API
      ::getsockname(s, reinterpret_cast<sockaddr *>(&a), &len) == 0) { // NOLINT: the sockets API
    port = ntohs(a.sin_port);
  }
  ::close(s);
  return port;
}

/** The first two fields ("type base64") of a .pub file. */
std::string public_key(const fs::path &pub) {
  std::string text = read_file(pub);
  const auto first = text.find(' ');
  const auto second = first == std::string::npos ? std::string::npos : text.find(' ', first + 1);
  text = text.substr(0, second);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.pop_back();
  }
  return text;
}

std::size_t count_of(const std::string &text, const std::string &needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

/** Three mail hosts (the erasure suite's layout: Maildirs on imap, mbox and quarantine on
    archive, delivery logs on mx1), a private sshd, one client key per host, and a DPO config
    reaching them over ssh. */
class HostsSshE2e : public ::testing::Test {
protected:
  void SetUp() override {
    if (!fs::exists(k_sshd) || m_ssh.empty() || m_keygen.empty()) {
      GTEST_SKIP() << "openssh-server and openssh-client are not installed (scripts/install-deps.sh): no "
                      "/usr/sbin/sshd, ssh or ssh-keygen";
    }
    m_user = login_name();
    ASSERT_FALSE(m_user.empty()) << "the test's uid has no passwd entry for sshd to log in";
    ASSERT_EQ(std::string(MAILDSAR_BINARY).find_first_of(" \"\\"), std::string::npos) << "forced command quoting";
    ASSERT_EQ(m_dir.path().string().find_first_of(" \"\\"), std::string::npos) << "forced command quoting";
    fs::create_directories(ssh_dir() / "keys");
    fs::create_directories(ssh_dir() / "bin");
    keygen(ssh_dir() / "ssh_host_ed25519_key");
    keygen(ssh_dir() / "forged_host_key"); // a host key that is not this sshd's
    if (HasFatalFailure()) {
      return;
    }
    write_file(ssh_dir() / "authorized_keys", "");
    // The `ssh` the DPO's transport finds first in its PATH (see the top of the file).
    write_file(ssh_dir() / "bin" / "ssh",
               fmt::format("#!/bin/sh\nexec '{}' -F '{}' \"$@\"\n", m_ssh.string(), (ssh_dir() / "ssh_config").string()));
    fs::permissions(ssh_dir() / "bin" / "ssh", fs::perms::owner_all);
    start_sshd();
    if (HasFatalFailure()) {
      return;
    }
    write_file(ssh_dir() / "known_hosts",
               fmt::format("[127.0.0.1]:{} {}\n", m_port, public_key(ssh_dir() / "ssh_host_ed25519_key.pub")));
    write_file(ssh_dir() / "known_hosts.forged",
               fmt::format("[127.0.0.1]:{} {}\n", m_port, public_key(ssh_dir() / "forged_host_key.pub")));

    const std::string approver_pub = (m_dir.path() / "admin-ben.pub.pem").string();
    m_approver_key = m_dir.path() / "admin-ben.pem";
    const fs::path openssl = find_program("openssl");
    ASSERT_FALSE(openssl.empty());
    ASSERT_EQ(run({openssl.string(), "genpkey", "-algorithm", "ed25519", "-out", m_approver_key.string()}).exit_code, 0);
    ASSERT_EQ(run({openssl.string(), "pkey", "-in", m_approver_key.string(), "-pubout", "-out", approver_pub}).exit_code, 0);
    const json erasure{{"approver_keys", {{"admin-ben", approver_pub}}}, {"require_signatures", true}};
    m_hosts["imap"] = make_host("imap", {"mailboxes"}, erasure);
    m_hosts["archive"] = make_host("archive", {"archive", "amavis"}, erasure);
    m_hosts["mx1"] = make_host("mx1", {"postfix"}, erasure);
    for (const auto &[name, config] : m_hosts) {
      add_login(name, fmt::format("{} -c {} agent", MAILDSAR_BINARY, config.string()));
    }
    m_subject = m_dir.path() / "subject.json";
    write_file(m_subject, json{{"request", "DSAR-2026-0042"}, {"emails", {k_email}}}.dump());
    set_hosts({"imap", "archive", "mx1"});
  }

  void TearDown() override {
    stop_sshd();
    if (HasFailure()) {
      std::cerr << "---- sshd log\n" << read_file(ssh_dir() / "sshd.log") << "----\n";
    }
  }

  fs::path ssh_dir() const { return m_dir.path() / "ssh"; }
  fs::path dpo() const { return m_dir.path() / "dpo" / "maildsar.json"; }
  fs::path dpo_state() const { return m_dir.path() / "dpo" / "state"; }
  fs::path manifest() const { return m_dir.path() / "estate.manifest.json"; }
  std::string sshd_log() const { return read_file(ssh_dir() / "sshd.log"); }

  void keygen(const fs::path &key) {
    auto r = run({m_keygen.string(), "-q", "-t", "ed25519", "-N", "", "-C", key.filename().string(), "-f", key.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  /** A copy of samples/ under `name` whose config lists only `sources`, indexed. */
  fs::path make_host(const std::string &name, const std::vector<std::string> &sources, const json &erasure) {
    return test::make_host(m_dir.path(), name, sources, erasure);
  }

  /** A client key for the ssh host alias `alias`.test, accepted by sshd only to run `forced`
      (the authorized_keys form of docs/deployment.md), checked against `known_hosts`. */
  void add_login(const std::string &alias, const std::string &forced, const std::string &known_hosts = "known_hosts") {
    const fs::path key = ssh_dir() / "keys" / alias;
    keygen(key);
    std::string lines = read_file(ssh_dir() / "authorized_keys");
    lines += fmt::format("command=\"{}\",restrict {} {}\n", forced, public_key(fs::path(key.string() + ".pub")), alias);
    write_file(ssh_dir() / "authorized_keys", lines);
    m_aliases.push_back({alias, key, ssh_dir() / known_hosts});
    // ssh takes the first value it finds: each alias's block first, the shared defaults last.
    std::string config;
    for (const Alias &a : m_aliases) {
      config += fmt::format("Host {}.test\n  IdentityFile {}\n  UserKnownHostsFile {}\n", a.name, a.key.string(),
                            a.known_hosts.string());
    }
    config += fmt::format("Host *\n"
                          "  HostName 127.0.0.1\n"
                          "  Port {}\n"
                          "  IdentitiesOnly yes\n"
                          "  IdentityAgent none\n"
                          "  PasswordAuthentication no\n"
                          "  KbdInteractiveAuthentication no\n"
                          "  StrictHostKeyChecking yes\n"
                          "  GlobalKnownHostsFile /dev/null\n"
                          "  UpdateHostKeys no\n"
                          "  CheckHostIP no\n"
                          "  ControlMaster no\n"
                          "  ConnectTimeout 10\n"
                          "  LogLevel ERROR\n",
                          m_port);
    write_file(ssh_dir() / "ssh_config", config);
  }

  /** Every host's agent kept running (`agent --listen`, docs/deployment.md "A listening agent")
      and each host's key forced to `maildsar-connect SOCKET` instead of the agent. */
  void listen_everywhere() {
    write_file(ssh_dir() / "authorized_keys", "");
    m_aliases.clear();
    for (const auto &[name, config] : m_hosts) {
      const fs::path sock = m_dir.path() / (name + ".sock");
      m_listeners.push_back(std::make_unique<ListeningAgent>(config, sock, m_dir.path() / (name + ".agent.log")));
      ASSERT_TRUE(remote::socket_is_live(sock.string())) << name;
      fs::remove(ssh_dir() / "keys" / name); // a new key for the same alias
      fs::remove(ssh_dir() / "keys" / (name + ".pub"));
      add_login(name, fmt::format("{} {}", connect_binary().string(), sock.string()));
    }
  }

  /** `approve` by admin-ben with his signing key, then `erase`, of the estate manifest(): both
      exit 0, every host's result "done", and the subject found on no host any more. */
  void approve_and_erase() {
    auto a = dpo_run({"approve", manifest().string(), "--operator", "admin-ben", "--sign-key", m_approver_key.string()});
    ASSERT_EQ(a.exit_code, 0) << a.err << a.out;
    auto e = dpo_run({"erase", manifest().string(), "--operator", "dpo-anna"});
    ASSERT_EQ(e.exit_code, 0) << e.err << e.out;
    const json report = json_lines(e.out).at(0);
    ASSERT_EQ(report["hosts"].size(), 3U) << report.dump();
    for (const json &h : report["hosts"]) {
      EXPECT_EQ(h["result"], "done") << h.dump();
    }
    for (const auto &[name, config] : m_hosts) {
      EXPECT_TRUE(local_find(config).empty()) << name;
    }
  }

  /** The DPO config: only `hosts`, each over ssh to its alias. */
  void set_hosts(const std::vector<std::string> &names) {
    json hosts = json::array();
    for (const std::string &n : names) {
      hosts.push_back({{"name", n}, {"transport", "ssh"}, {"ssh", m_user + "@" + n + ".test"}, {"timeout", "30s"}});
    }
    write_file(dpo(), json{{"state_dir", "state"}, {"hosts", hosts}}.dump(2));
  }

  /** `maildsar -c DPO --json ARGS` with the test's `ssh` first in PATH. */
  RunResult dpo_run(const std::vector<std::string> &args) const {
    const char *path = std::getenv("PATH");
    return ds(dpo(), args, {"PATH=" + (ssh_dir() / "bin").string() + ":" + (path != nullptr ? path : "/usr/bin:/bin")});
  }

  /** `find` on the host itself: "id path" of each hit. */
  static std::set<std::string> local_find(const fs::path &config) {
    auto r = ds(config, {"find", "--email", k_email});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::set<std::string> ids;
    for (const json &h : json_lines(r.out)) {
      ids.insert(h.at("id").get<std::string>() + " " + h.at("path").get<std::string>());
    }
    return ids;
  }

  void start_sshd() {
    if (::geteuid() == 0) {
      // sshd's privilege separation directory: the package's service creates it when it starts
      // (it has not started here); root-owned, not group- or world-writable. The package's
      // postinst created the unprivileged `sshd` user that sshd uses with it.
      std::error_code ec;
      fs::create_directories("/run/sshd", ec);
      ::chmod("/run/sshd", 0755);
    }
    // sshd runs a forced command through the account's shell, and Debian's bash reads ~/.bashrc
    // for a command started by sshd unless SHLVL says it is not the top-level shell: the
    // machine's own ~/.bashrc (pyenv init on the build machines: ~1 s per connection, and
    // anything it prints on stdout would break the protocol) stays out of the test.
    std::string set_env = " SHLVL=1";
    for (const char *name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
      // Agents of a sanitizer build get the test's options (the transport's environment would
      // pass them; sshd starts its sessions with a fresh one).
      if (const char *v = std::getenv(name); v != nullptr && std::string_view(v).find_first_of("\" \n") == std::string_view::npos) {
        set_env += fmt::format(" \"{}={}\"", name, v);
      }
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
      m_port = free_loopback_port();
      ASSERT_GT(m_port, 0);
      write_file(ssh_dir() / "sshd_config",
                 fmt::format("ListenAddress 127.0.0.1:{}\n"
                             "HostKey {}\n"
                             "PidFile {}\n"
                             "AuthorizedKeysFile {}\n"
                             "AuthorizedPrincipalsFile none\n"
                             "StrictModes no\n"
                             "PubkeyAuthentication yes\n"
                             "PasswordAuthentication no\n"
                             "KbdInteractiveAuthentication no\n"
                             "HostbasedAuthentication no\n"
                             "UsePAM no\n"
                             "PermitRootLogin forced-commands-only\n"
                             "AllowUsers {}\n"
                             "PermitUserEnvironment no\n"
                             "UseDNS no\n"
                             "PrintMotd no\n"
                             "PrintLastLog no\n"
                             "LoginGraceTime 30\n"
                             "LogLevel VERBOSE\n"
                             "SetEnv{}\n",
                             m_port, (ssh_dir() / "ssh_host_ed25519_key").string(), (ssh_dir() / "sshd.pid").string(),
                             (ssh_dir() / "authorized_keys").string(), m_user,
                             set_env));
      const std::string log = (ssh_dir() / "sshd.log").string();
      const std::string config = (ssh_dir() / "sshd_config").string();
      std::vector<std::string> args{k_sshd, "-D", "-e", "-f", config};
      std::vector<char *> argv;
      for (std::string &a : args) {
        argv.push_back(a.data());
      }
      argv.push_back(nullptr);
      const pid_t parent = ::getpid();
      const pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        // Its own process group, and ended with the test process whatever way that ends.
        ::setpgid(0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) {
          ::_exit(127);
        }
        const int in = ::open("/dev/null", O_RDONLY);
        const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
        if (in < 0 || out < 0) {
          ::_exit(127);
        }
        ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(out, 2);
        ::execve(argv[0], argv.data(), environ);
        ::_exit(127);
      }
      m_sshd = pid;
      // Bounded wait for "Server listening on 127.0.0.1 port N." (or for sshd to give up).
      const std::string listening = fmt::format("Server listening on 127.0.0.1 port {}.", m_port);
      const auto deadline = Clock::now() + std::chrono::seconds(10);
      bool exited = false;
      while (Clock::now() < deadline) {
        if (read_file(log).find(listening) != std::string::npos) {
          return;
        }
        int status = 0;
        if (::waitpid(m_sshd, &status, WNOHANG) == m_sshd) {
          m_sshd = -1;
          exited = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (!exited) {
        stop_sshd();
        FAIL() << "sshd did not listen within 10 s:\n" << read_file(log);
      }
      if (read_file(log).find("Address already in use") == std::string::npos) {
        FAIL() << "sshd ended at start:\n" << read_file(log);
      }
      // Another process took the port between our probe and sshd's bind: another port.
    }
    FAIL() << "no free loopback port for sshd in 5 tries";
  }

  void stop_sshd() {
    if (m_sshd <= 0) {
      return;
    }
    ::kill(m_sshd, SIGTERM);
    int status = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (::waitpid(m_sshd, &status, WNOHANG) == 0) {
      if (Clock::now() >= deadline) {
        ::kill(m_sshd, SIGKILL);
        ::waitpid(m_sshd, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    m_sshd = -1;
  }

  struct Alias {
    std::string name;
    fs::path key;
    fs::path known_hosts;
  };

  ScratchDir m_dir;
  fs::path m_ssh = find_program("ssh");
  fs::path m_keygen = find_program("ssh-keygen");
  std::string m_user;
  pid_t m_sshd = -1;
  int m_port = -1;
  std::vector<Alias> m_aliases;
  std::map<std::string, fs::path> m_hosts;
  fs::path m_approver_key;
  fs::path m_subject;
  std::vector<std::unique_ptr<ListeningAgent>> m_listeners; // stopped before sshd (declared after m_dir)
};

TEST_F(HostsSshE2e, FindStatusAndExportReachEveryHostThroughSshd) {
  auto f = dpo_run({"find", "--email", k_email});
  ASSERT_EQ(f.exit_code, 0) << f.out << f.err;
  std::map<std::string, std::set<std::string>> got;
  json summary;
  for (const json &j : json_lines(f.out)) {
    if (j.contains("schema")) {
      summary = j;
      continue;
    }
    ASSERT_TRUE(j.contains("host")) << j.dump();
    got[j["host"].get<std::string>()].insert(j.at("id").get<std::string>() + " " + j.at("path").get<std::string>());
  }
  EXPECT_EQ(got.size(), 3U) << f.out;
  for (const auto &[name, config] : m_hosts) {
    EXPECT_FALSE(got[name].empty()) << name;
    EXPECT_EQ(got[name], local_find(config)) << name;
    // The agent the forced command ran recorded the search in that host's own audit log.
    const std::vector<json> audit = audit_records(config.parent_path() / "state", "find");
    ASSERT_FALSE(audit.empty()) << name;
    EXPECT_NE(audit.front().dump().find("\"via\":\"agent\""), std::string::npos) << audit.front().dump();
  }
  EXPECT_EQ(summary["schema"], "maildsar.hosts") << f.out;
  EXPECT_EQ(summary["complete"], true);
  EXPECT_EQ(summary["not_searched"], json::array());
  // ... and it went through this sshd: one accepted key per host.
  EXPECT_EQ(count_of(sshd_log(), fmt::format("Accepted publickey for {} from 127.0.0.1", m_user)), 3U) << sshd_log();

  auto st = dpo_run({"status"});
  ASSERT_EQ(st.exit_code, 0) << st.out << st.err;
  const json status = json_lines(st.out).at(0);
  ASSERT_EQ(status["hosts"].size(), 3U) << st.out;
  for (const json &h : status["hosts"]) {
    EXPECT_EQ(h["reachable"], true) << h.dump();
    EXPECT_EQ(h["ok"], true) << h.dump();
    EXPECT_EQ(h["agent_host"], h["name"]) << h.dump();
    EXPECT_EQ(h["error"], "") << h.dump();
  }

  const fs::path out = m_dir.path() / "package";
  auto e = dpo_run({"export", "--email", k_email, "--out", out.string()});
  ASSERT_EQ(e.exit_code, 0) << e.out << e.err;
  const json doc = json_lines(e.out).back();
  EXPECT_EQ(doc["complete"], true) << doc.dump();
  ASSERT_EQ(doc["hosts"].size(), 3U) << doc.dump();
  for (const json &row : doc["hosts"]) {
    const std::string name = row["name"].get<std::string>();
    EXPECT_EQ(row["exported"], true) << row.dump();
    EXPECT_EQ(row["folder"], "hosts/" + name);
    EXPECT_EQ(row["items"], got[name].size()) << row.dump();
    const json host_manifest = json::parse(read_file(out / "hosts" / name / "manifest.json"));
    EXPECT_EQ(host_manifest["items"].size(), got[name].size()) << name;
    EXPECT_TRUE(fs::exists(out / "hosts" / name / "report.html")) << name;
  }
  EXPECT_EQ(json::parse(read_file(out / "hosts.json"))["complete"], true);
}

TEST_F(HostsSshE2e, AKeyForcedToFalseAChattyLoginOrAWrongHostKeyFailsFindNamingTheHost) {
  // A key sshd accepts only to run /bin/false: ssh ends with its exit status before hello.
  add_login("refused", "/bin/false");
  set_hosts({"imap", "refused"});
  auto r = dpo_run({"find", "--email", k_email});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("maildsar: error: host refused: the agent ended the connection without answering hello "
                       "(exit status 1)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("find gives no answer while a host of the estate could not be searched"), std::string::npos)
      << r.err;
  for (const json &j : json_lines(r.out)) {
    EXPECT_TRUE(j.contains("schema")) << "no hit printed as if complete: " << j.dump();
  }

  // A login that prints something before the agent (a shell start-up file saying hello, say):
  // the first line is not the protocol, and find says so naming the host.
  add_login("chatty", fmt::format("echo Welcome to imap; exec {} -c {} agent", MAILDSAR_BINARY, m_hosts["imap"].string()));
  set_hosts({"imap", "chatty"});
  auto c = dpo_run({"find", "--email", k_email});
  EXPECT_EQ(c.exit_code, 1) << c.out << c.err;
  EXPECT_NE(c.err.find("maildsar: error: host chatty: the answer to hello is not the agent protocol: 'Welcome to imap'"),
            std::string::npos)
      << c.err;

  // The right sshd, a valid key, but a known_hosts holding another host key: ssh (BatchMode,
  // StrictHostKeyChecking) refuses before authenticating; find and status name the host.
  add_login("forged", fmt::format("{} -c {} agent", MAILDSAR_BINARY, m_hosts["imap"].string()), "known_hosts.forged");
  const std::string forged_known = read_file(ssh_dir() / "known_hosts.forged");
  set_hosts({"forged"});
  const std::size_t accepted = count_of(sshd_log(), "Accepted publickey");
  auto h = dpo_run({"find", "--email", k_email});
  EXPECT_EQ(h.exit_code, 1) << h.out << h.err;
  EXPECT_NE(h.err.find("maildsar: error: host forged: the agent ended the connection without answering hello "
                       "(exit status 255): Host key verification failed."),
            std::string::npos)
      << h.err;
  auto st = dpo_run({"status"});
  EXPECT_EQ(st.exit_code, 1) << st.out << st.err;
  EXPECT_EQ(json_lines(st.out).at(0)["hosts"][0]["reachable"], false) << st.out;
  EXPECT_EQ(count_of(sshd_log(), "Accepted publickey"), accepted) << "no login with a wrong host key";
  EXPECT_EQ(read_file(ssh_dir() / "known_hosts.forged"), forged_known) << "ssh learnt no host key";
}

TEST_F(HostsSshE2e, PlanApproveSignedEraseAndVerifyAcrossHostsThroughSshd) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "approve must run as another OS login than plan: the harness does that with setpriv --ruid, "
                    "as root only (e2e_support.hpp, k_e2e_approver_uid)";
  }
  std::map<std::string, std::size_t> before;
  for (const auto &[name, config] : m_hosts) {
    before[name] = local_find(config).size();
    ASSERT_GE(before[name], 1U) << name;
  }
  auto p = dpo_run({"plan", "--subject", m_subject.string(), "--out", manifest().string(), "--operator", "dpo-anna"});
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  const json planned = json_lines(p.out).at(0);
  EXPECT_EQ(planned["estate"], true);
  ASSERT_EQ(planned["hosts"].size(), 3U);
  const json m = json::parse(read_file(manifest()));
  for (const auto &[name, config] : m_hosts) {
    EXPECT_EQ(m["slices"].at(name)["items"].size(), before[name]) << name;
    EXPECT_EQ(audit_records(config.parent_path() / "state", "plan").size(), 1U) << name;
  }

  approve_and_erase();
  if (HasFatalFailure()) {
    return;
  }
  for (const auto &[name, config] : m_hosts) {
    const std::vector<json> erased = audit_records(config.parent_path() / "state", "erase");
    ASSERT_EQ(erased.size(), 1U) << name;
    EXPECT_EQ(erased[0]["details"]["approvers"], json::array({"admin-ben"})) << name;
  }
  EXPECT_EQ(audit_records(dpo_state(), "erase-host").size(), 3U);

  auto v = dpo_run({"verify", "--subject", m_subject.string(), "--operator", "dpo-anna"});
  EXPECT_EQ(v.exit_code, 0) << v.err << v.out;
  EXPECT_EQ(json_lines(v.out).at(0)["clean"], true) << v.out;
}

TEST_F(HostsSshE2e, ListeningAgentsBehindTheConnectorAnswerFindAndEraseThroughSshd) {
  listen_everywhere();
  if (HasFatalFailure()) {
    return;
  }
  std::map<std::string, std::set<std::string>> want;
  for (const auto &[name, config] : m_hosts) {
    want[name] = local_find(config);
    ASSERT_FALSE(want[name].empty()) << name;
  }
  for (int round = 0; round < 2; ++round) { // a fresh session each time
    auto f = dpo_run({"find", "--email", k_email});
    ASSERT_EQ(f.exit_code, 0) << f.out << f.err;
    std::map<std::string, std::set<std::string>> got;
    for (const json &j : json_lines(f.out)) {
      if (!j.contains("schema")) {
        got[j.at("host").get<std::string>()].insert(j.at("id").get<std::string>() + " " + j.at("path").get<std::string>());
      }
    }
    EXPECT_EQ(got, want) << f.out;
  }
  EXPECT_EQ(count_of(sshd_log(), fmt::format("Accepted publickey for {} from 127.0.0.1", m_user)), 6U) << sshd_log();
  for (const auto &[name, config] : m_hosts) {
    EXPECT_EQ(audit_records(config.parent_path() / "state", "find").size(), 2U) << name;
  }
  auto st = dpo_run({"status"});
  EXPECT_EQ(st.exit_code, 0) << st.out << st.err;

  if (::geteuid() != 0) {
    return; // approve needs another OS login than plan (see the test above)
  }
  // Erasure through the listening agents: planned, approved with a signature, carried out.
  auto p = dpo_run({"plan", "--subject", m_subject.string(), "--out", manifest().string(), "--operator", "dpo-anna"});
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  approve_and_erase();
  if (HasFatalFailure()) {
    return;
  }
  auto v = dpo_run({"verify", "--subject", m_subject.string(), "--operator", "dpo-anna"});
  EXPECT_EQ(v.exit_code, 0) << v.err << v.out;

  // A host whose listener is gone: find fails naming it.
  m_listeners.front()->stop();
  auto gone = dpo_run({"find", "--email", k_email});
  EXPECT_EQ(gone.exit_code, 1) << gone.out << gone.err;
  EXPECT_NE(gone.err.find(fmt::format("maildsar: error: host {}: ", m_hosts.begin()->first)), std::string::npos)
      << gone.err;
}

} // namespace
} // namespace maildsar::test
