// SPDX-License-Identifier: GPL-3.0-or-later
#include "remote/host_client.hpp"

#include "core/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <cstdint>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>

extern char **environ;

namespace maildsar::remote {

namespace {

using Clock = std::chrono::steady_clock;

/** The environment a transport gets: what ssh and maildsar need, nothing else (STYLE 35). */
std::vector<std::string> scrubbed_environment() {
  static constexpr std::array<std::string_view, 13> k_keep{
      "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSH_AUTH_SOCK",
      "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "MAILDSAR_FAULT_AT"};
  std::vector<std::string> env;
  for (char **e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    for (std::string_view k : k_keep) {
      if (entry.substr(0, eq) == k) {
        env.emplace_back(entry);
      }
    }
  }
  return env;
}

/** The last non-empty line of a child's stderr, printable, for an error message. */
std::string last_line(const std::string &text) {
  std::string_view t(text);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) {
    t.remove_suffix(1);
  }
  if (const auto nl = t.rfind('\n'); nl != std::string_view::npos) {
    t.remove_prefix(nl + 1);
  }
  if (t.size() > 300) {
    t = t.substr(t.size() - 300);
  }
  return core::log::printable(t);
}

core::ErrorCode code_named(std::string_view name) {
  for (const core::ErrorInfo &i : core::k_error_table) {
    if (i.name == name) {
      return i.code;
    }
  }
  return core::ErrorCode::data;
}

} // namespace

HostClient::HostClient(const core::HostConfig &host) : m_name(host.name), m_timeout_seconds(host.timeout_seconds) {}

HostClient::HostClient(HostClient &&other) noexcept
    : m_name(std::move(other.m_name)), m_timeout_seconds(other.m_timeout_seconds),
      m_pid(std::exchange(other.m_pid, -1)), m_sock(std::exchange(other.m_sock, -1)),
      m_err(std::exchange(other.m_err, -1)), m_reader(std::move(other.m_reader)),
      m_stderr(std::move(other.m_stderr)), m_hello(std::move(other.m_hello)),
      m_pending(std::move(other.m_pending)) {}

HostClient &HostClient::operator=(HostClient &&other) noexcept {
  if (this != &other) {
    close();
    m_name = std::move(other.m_name);
    m_timeout_seconds = other.m_timeout_seconds;
    m_pid = std::exchange(other.m_pid, -1);
    m_sock = std::exchange(other.m_sock, -1);
    m_err = std::exchange(other.m_err, -1);
    m_reader = std::move(other.m_reader);
    m_stderr = std::move(other.m_stderr);
    m_hello = std::move(other.m_hello);
    m_pending = std::move(other.m_pending);
  }
  return *this;
}

HostClient::~HostClient() { close(); }

core::Result<HostClient> HostClient::connect(const core::HostConfig &host, const nlohmann::json *first) {
  HostClient c(host);
  const std::vector<std::string> args = host.argv();
  int sv[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return core::fail(core::ErrorCode::io, fmt::format("host {}: socketpair: {}", host.name, std::strerror(errno)));
  }
  int err[2] = {-1, -1};
  if (::pipe2(err, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    return core::fail(core::ErrorCode::io, fmt::format("host {}: pipe: {}", host.name, std::strerror(e)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, sv[1], 0);
  posix_spawn_file_actions_adddup2(&actions, sv[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  std::vector<char *> argv;
  for (const std::string &a : args) {
    argv.push_back(const_cast<char *>(a.c_str())); // NOLINT: posix_spawn's signature
  }
  argv.push_back(nullptr);
  std::vector<std::string> env = scrubbed_environment();
  std::vector<char *> envp;
  for (std::string &e : env) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  pid_t pid = -1;
  // posix_spawnp: "ssh" is looked up in $PATH; a program transport's command[0] is absolute.
  const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(sv[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(sv[0]);
    ::close(err[0]);
    return core::fail(core::ErrorCode::temp_fail,
                      fmt::format("host {}: cannot start {}: {}", host.name, args.front(), std::strerror(rc)),
                      "check the host's transport in the config (docs/cli.md \"Hosts\")");
  }
  c.m_pid = pid;
  c.m_sock = sv[0];
  c.m_err = err[0];
  c.m_reader = LineReader(c.m_sock, k_max_response_bytes);
  std::string lines = nlohmann::json{{"op", "hello"}, {"version", k_protocol_version}}.dump();
  if (first != nullptr) {
    lines += '\n' + first->dump();
  }
  if (auto sent = c.send(lines, "hello"); !sent) {
    return std::unexpected(sent.error());
  }
  auto answer = c.receive("hello");
  if (!answer) {
    return std::unexpected(answer.error());
  }
  const nlohmann::json &a = *answer;
  const auto version = a.find("version");
  if (version == a.end() || !version->is_number_integer() || version->get<std::int64_t>() != k_protocol_version) {
    const std::string theirs = version == a.end() ? std::string("none") : version->dump();
    c.abort();
    return core::fail(core::ErrorCode::data,
                      fmt::format("host {}: protocol version mismatch: this maildsar speaks version {}, the agent "
                                  "answered version {}",
                                  host.name, k_protocol_version, theirs.substr(0, 32)),
                      "run the same maildsar release on the DPO host and on every agent host");
  }
  c.m_hello.version = k_protocol_version;
  if (auto h = a.find("host"); h != a.end() && h->is_string()) {
    c.m_hello.host = h->get<std::string>();
  }
  if (auto p = a.find("program"); p != a.end() && p->is_string()) {
    c.m_hello.program = p->get<std::string>();
  }
  if (auto ops = a.find("ops"); ops != a.end() && ops->is_array()) {
    for (const auto &o : *ops) {
      if (o.is_string()) {
        c.m_hello.ops.push_back(o.get<std::string>());
      }
    }
  }
  if (first != nullptr) {
    c.m_pending = first->value("op", std::string());
  }
  return c;
}

core::Result<nlohmann::json> HostClient::answer() {
  if (m_pending.empty()) {
    return core::fail(core::ErrorCode::internal, fmt::format("host {}: no request is waiting for its answer", m_name));
  }
  return receive(std::exchange(m_pending, std::string()));
}

core::Result<nlohmann::json> HostClient::request(const nlohmann::json &request) {
  const std::string op = request.value("op", std::string());
  if (!m_pending.empty()) {
    // The answer to connect()'s first request comes first: read it (unused) to keep the order.
    if (auto a = receive(std::exchange(m_pending, std::string())); !a && m_pid < 0) {
      return std::unexpected(a.error());
    }
  }
  MAILDSAR_TRY(send(request.dump(), op));
  return receive(op);
}

core::Status HostClient::send(const std::string &lines, const std::string &op) {
  if (m_pid < 0) {
    return core::fail(core::ErrorCode::temp_fail, fmt::format("host {}: the session has ended", m_name));
  }
  if (auto w = write_line(m_sock, lines); !w) {
    // EPIPE: the agent ended without reading all of it. What it answered first is still in the
    // socket (a session that cannot read its config answers hello with the reason and ends):
    // the failure is that answer, or the EOF's failure without one, whatever the timing.
    if (auto said = receive(op); !said) {
      return std::unexpected(said.error());
    }
    return std::unexpected(
        broken(core::ErrorCode::temp_fail, fmt::format("the agent ended the connection without answering {}", op)));
  }
  return {};
}

core::Result<nlohmann::json> HostClient::receive(const std::string &op) {
  if (m_pid < 0) {
    return core::fail(core::ErrorCode::temp_fail, fmt::format("host {}: the session has ended", m_name));
  }
  std::string line;
  const auto deadline = Clock::now() + std::chrono::seconds(m_timeout_seconds);
  switch (m_reader.read(line, deadline, m_err, &m_stderr)) {
  case ReadStatus::line:
    break;
  case ReadStatus::eof:
    return std::unexpected(
        broken(core::ErrorCode::temp_fail, fmt::format("the agent ended the connection without answering {}", op)));
  case ReadStatus::timeout:
    abort();
    return core::fail(core::ErrorCode::temp_fail,
                      fmt::format("host {}: no answer to {} within {}s; the agent was stopped", m_name, op,
                                  m_timeout_seconds),
                      "is the host reachable? raise the host's \"timeout\" for a large estate");
  case ReadStatus::too_long:
    abort();
    return core::fail(core::ErrorCode::data, fmt::format("host {}: the answer to {} is longer than {} MiB; the "
                                                         "agent was stopped",
                                                         m_name, op, k_max_response_bytes >> 20U));
  case ReadStatus::io_error:
    return std::unexpected(broken(core::ErrorCode::io, fmt::format("reading the answer to {}: {}", op,
                                                                   std::strerror(m_reader.last_errno()))));
  }
  nlohmann::json response = nlohmann::json::parse(line, nullptr, false);
  const bool shaped = !response.is_discarded() && response.is_object() && response.contains("ok") &&
                      response["ok"].is_boolean();
  if (!shaped) {
    abort();
    return core::fail(core::ErrorCode::data,
                      fmt::format("host {}: the answer to {} is not the agent protocol: '{}'", m_name, op,
                                  core::log::printable(line.substr(0, 80))),
                      "is `maildsar agent` what the transport runs (no banner, no shell output)?");
  }
  if (!response["ok"].get<bool>()) {
    std::string message = "the agent refused the request";
    std::string hint;
    core::ErrorCode code = core::ErrorCode::data;
    if (auto e = response.find("error"); e != response.end() && e->is_object()) {
      if (auto m = e->find("message"); m != e->end() && m->is_string()) {
        message = m->get<std::string>();
      }
      if (auto h = e->find("hint"); h != e->end() && h->is_string()) {
        hint = h->get<std::string>();
      }
      if (auto k = e->find("code"); k != e->end() && k->is_string()) {
        code = code_named(k->get<std::string>());
      }
    }
    return core::fail(code, fmt::format("host {}: {}: {}", m_name, op, core::log::printable(message.substr(0, 2000))),
                      core::log::printable(hint.substr(0, 500)));
  }
  if (response.value("op", std::string()) != op) {
    abort();
    return core::fail(core::ErrorCode::data,
                      fmt::format("host {}: the answer to {} is for another request", m_name, op));
  }
  return response;
}

std::string HostClient::reap_status(int grace_ms) {
  if (m_pid < 0) {
    return "ended";
  }
  int status = 0;
  pid_t r = ::waitpid(m_pid, &status, WNOHANG);
  if (r == 0) {
    // Wait for the exit itself (a pidfd becomes readable then), not in steps of a sleep: the
    // agent usually ends within a millisecond of its last answer, and a 10 ms step was most
    // of a remote search's cost over its local one.
    // (syscall(2): Debian 12's <sys/pidfd.h> declares pidfd_open without C linkage for C++.)
    if (const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, m_pid, 0)); pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
      for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        const int n = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
        if (n >= 0 || errno != EINTR) {
          break;
        }
      }
      ::close(pidfd);
      r = ::waitpid(m_pid, &status, WNOHANG);
    } else {
      // No pidfd (a kernel before 5.3, or a seccomp filter): poll the exit in short steps.
      for (int waited = 0; r == 0 && waited < grace_ms; ++waited) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        r = ::waitpid(m_pid, &status, WNOHANG);
      }
    }
  }
  if (r == 0) {
    ::kill(m_pid, SIGKILL);
    r = ::waitpid(m_pid, &status, 0);
  }
  m_pid = -1;
  if (r < 0) {
    return "ended";
  }
  if (WIFEXITED(status)) {
    return fmt::format("exit status {}", WEXITSTATUS(status));
  }
  return WIFSIGNALED(status) ? fmt::format("killed by signal {}", WTERMSIG(status)) : std::string("ended");
}

core::Error HostClient::broken(core::ErrorCode code, const std::string &what) {
  // Whatever the agent still wrote to stderr before it ended.
  if (m_err >= 0) {
    pollfd p{m_err, POLLIN, 0};
    while (::poll(&p, 1, 200) > 0) {
      char buf[4096];
      const ssize_t n = ::read(m_err, buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      m_stderr.append(buf, static_cast<std::size_t>(n));
      if (m_stderr.size() > 4096) {
        m_stderr.erase(0, m_stderr.size() - 4096);
      }
    }
  }
  const std::string status = reap_status(2000);
  const std::string said = last_line(m_stderr);
  abort();
  return core::Error{code,
                     fmt::format("host {}: {} ({}){}", m_name, what, status, said.empty() ? "" : ": " + said),
                     "check the host's transport and run `maildsar status` there"};
}

void HostClient::abort() {
  if (m_pid >= 0) {
    ::kill(m_pid, SIGKILL);
    int status = 0;
    while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
    }
    m_pid = -1;
  }
  if (m_sock >= 0) {
    ::close(m_sock);
    m_sock = -1;
  }
  if (m_err >= 0) {
    ::close(m_err);
    m_err = -1;
  }
}

void HostClient::close() {
  if (m_pid >= 0 && m_sock >= 0) {
    ::shutdown(m_sock, SHUT_WR); // EOF ends the agent
    (void)reap_status(2000);
  }
  abort();
}

} // namespace maildsar::remote
