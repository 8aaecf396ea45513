// SPDX-License-Identifier: GPL-3.0-or-later
// The listening agent's socket side (remote/listener.hpp): a session per connection in its own
// process, the socket's mode and life, what it refuses, sessions at once, systemd's socket.
#include "remote/listener.hpp"

#include "core/fs.hpp"
#include "tests/child_process.hpp"
#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace maildsar::remote {
namespace {

namespace fs = std::filesystem;

/** A session that answers each line with "PID:LINE" until EOF. */
int echo_session(int fd) {
  std::string buf;
  char c = 0;
  for (;;) {
    const ssize_t n = ::read(fd, &c, 1);
    if (n <= 0) {
      return 0;
    }
    if (c != '\n') {
      buf += c;
      continue;
    }
    const std::string reply = std::to_string(::getpid()) + ":" + buf + "\n";
    if (::write(fd, reply.data(), reply.size()) != static_cast<ssize_t>(reply.size())) {
      return 1;
    }
    buf.clear();
  }
}

/** A listener in a child process of the test; stopped (SIGTERM) and reaped by the destructor. */
class Listener {
public:
  explicit Listener(ListenOptions options) {
    m_pid = ::fork();
    if (m_pid == 0) {
      auto r = listen_and_fork(options, echo_session);
      ::_exit(r ? *r : 100 + static_cast<int>(r.error().code));
    }
    for (int i = 0; i < 200 && !socket_is_live(options.path); ++i) {
      ::usleep(10'000);
    }
  }
  ~Listener() { (void)stop(); }
  /** SIGKILL: no chance to clean up. */
  void kill_hard() { (void)test::end_child(m_pid, SIGKILL); }
  Listener(const Listener &) = delete;
  Listener &operator=(const Listener &) = delete;

  /** SIGTERM, then the listener's exit status (-1 if it was already reaped). */
  int stop() { return test::end_child(m_pid, SIGTERM); }

private:
  pid_t m_pid = -1;
};

core::Fd connect_to(const fs::path &path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  core::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0) {
    return core::Fd();
  }
  return fd;
}

/** The next line read from `fd` (empty on EOF or after `timeout_ms` without one). */
std::string read_answer(int fd, int timeout_ms = 5000) {
  std::string answer;
  char c = 0;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0 || ::read(fd, &c, 1) != 1 || c == '\n') {
      return answer;
    }
    answer += c;
  }
}

/** Sends `line`, returns the answer line (empty on EOF or after `timeout_ms` without one). */
std::string ask(int fd, const std::string &line, int timeout_ms = 5000) {
  const std::string out = line + "\n";
  if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
    return {};
  }
  return read_answer(fd, timeout_ms);
}

std::string pid_of(const std::string &answer) { return answer.substr(0, answer.find(':')); }

TEST(Listener, EachConnectionIsASessionInItsOwnProcessAndTheSocketIsTheOwnersOnly) {
  test::ScratchDir dir;
  const fs::path sock = dir.path() / "agent.sock";
  Listener listener(ListenOptions{sock.string(), 4, {}});
  ASSERT_TRUE(socket_is_live(sock.string()));
  struct stat st {};
  ASSERT_EQ(::lstat(sock.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600U) << "no moment in which another user could connect";

  core::Fd a = connect_to(sock);
  ASSERT_TRUE(a);
  const std::string first = ask(a.get(), "one");
  ASSERT_NE(first.find(":one"), std::string::npos) << first;
  EXPECT_EQ(pid_of(ask(a.get(), "two")), pid_of(first)) << "a session keeps its process";
  a.close();
  core::Fd b = connect_to(sock);
  ASSERT_TRUE(b);
  const std::string other = ask(b.get(), "three");
  ASSERT_NE(other.find(":three"), std::string::npos) << other;
  EXPECT_NE(pid_of(other), pid_of(first)) << "each connection gets a process of its own";
  EXPECT_NE(pid_of(other), std::to_string(::getpid()));
  b.close();

  EXPECT_EQ(listener.stop(), 0);
  EXPECT_FALSE(fs::exists(fs::symlink_status(sock))) << "the listener removes the socket it created";
}

TEST(Listener, ASocketLeftByAKilledAgentIsReplacedALiveOneOrAFileIsNot) {
  test::ScratchDir dir;
  const fs::path sock = dir.path() / "agent.sock";
  {
    // What a killed agent leaves: a socket file nobody listens on.
    core::Fd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr), 0);
  }
  ASSERT_TRUE(fs::exists(fs::symlink_status(sock)));
  ASSERT_FALSE(socket_is_live(sock.string()));
  Listener listener(ListenOptions{sock.string(), 4, {}});
  ASSERT_TRUE(socket_is_live(sock.string()));
  core::Fd a = connect_to(sock);
  ASSERT_TRUE(a);
  EXPECT_NE(ask(a.get(), "x").find(":x"), std::string::npos);

  // A second agent on the same socket: refused, the first keeps it.
  auto second = listen_and_fork(ListenOptions{sock.string(), 4, {}}, echo_session);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, core::ErrorCode::temp_fail);
  EXPECT_NE(second.error().message.find("another agent listens"), std::string::npos) << second.error().message;
  EXPECT_TRUE(socket_is_live(sock.string()));

  // A path that is not a socket is never removed.
  const fs::path file = dir.path() / "not-a-socket";
  test::write_file(file, "data");
  auto on_file = listen_and_fork(ListenOptions{file.string(), 4, {}}, echo_session);
  ASSERT_FALSE(on_file.has_value());
  EXPECT_EQ(on_file.error().code, core::ErrorCode::cant_create);
  EXPECT_EQ(test::read_file(file), "data");

  // Nor is a path too long for a Unix socket taken.
  auto too_long = listen_and_fork(ListenOptions{(dir.path() / std::string(120, 'x')).string(), 4, {}}, echo_session);
  ASSERT_FALSE(too_long.has_value());
  EXPECT_EQ(too_long.error().code, core::ErrorCode::usage);
}

TEST(Listener, AListenerKilledHardTakesItsWaitingProcessWithItButNotARunningSession) {
  test::ScratchDir dir;
  const fs::path sock = dir.path() / "agent.sock";
  Listener listener(ListenOptions{sock.string(), 4, {}});
  core::Fd running = connect_to(sock);
  ASSERT_TRUE(running);
  ASSERT_NE(ask(running.get(), "before").find(":before"), std::string::npos);
  listener.kill_hard();
  // The spare waiting in accept() must not go on taking connections for a dead listener.
  bool live = true;
  for (int i = 0; i < 200 && live; ++i) {
    ::usleep(10'000);
    live = socket_is_live(sock.string());
  }
  EXPECT_FALSE(live) << "an orphaned waiting process still accepts on the socket";
  // The session that had begun finishes its work.
  EXPECT_NE(ask(running.get(), "after").find(":after"), std::string::npos);
  running.close();
  // And a new listener takes the socket that was left.
  Listener again(ListenOptions{sock.string(), 4, {}});
  EXPECT_TRUE(socket_is_live(sock.string()));
}

TEST(Listener, BeyondMaxSessionsAConnectionWaitsUntilASessionEnds) {
  test::ScratchDir dir;
  const fs::path sock = dir.path() / "agent.sock";
  Listener listener(ListenOptions{sock.string(), 1, {}});
  core::Fd a = connect_to(sock);
  ASSERT_TRUE(a);
  ASSERT_NE(ask(a.get(), "first").find(":first"), std::string::npos);
  core::Fd b = connect_to(sock);
  ASSERT_TRUE(b) << "the connection is queued by the socket's backlog";
  EXPECT_EQ(ask(b.get(), "second", 300), "") << "no second session while one runs";
  a.close();
  // The queued line is answered once the first session has ended.
  const std::string answer = read_answer(b.get());
  EXPECT_NE(answer.find(":second"), std::string::npos) << answer;
}

TEST(Listener, TheWarmUpRunsInTheWaitingProcessNotInTheListener) {
  test::ScratchDir dir;
  const fs::path sock = dir.path() / "agent.sock";
  const fs::path marks = dir.path() / "marks";
  fs::create_directories(marks);
  const pid_t test_pid = ::getpid();
  ListenOptions options{sock.string(), 4, [&] {
                          test::write_file(marks / std::to_string(::getpid()), "warm");
                        }};
  Listener listener(options);
  // The first spare took the constructor's probe (socket_is_live connects); once that session
  // has ended, the next spare is forked and warms up before it accepts.
  auto marks_made = [&] { return std::distance(fs::directory_iterator(marks), fs::directory_iterator()); };
  for (int i = 0; i < 500 && marks_made() < 2; ++i) {
    ::usleep(10'000);
  }
  ASSERT_EQ(marks_made(), 2);
  core::Fd a = connect_to(sock);
  ASSERT_TRUE(a);
  const std::string answer = ask(a.get(), "x");
  ASSERT_NE(answer.find(":x"), std::string::npos);
  // The session's process is the one that warmed up (a spare forked ahead of the connection).
  EXPECT_TRUE(fs::exists(marks / pid_of(answer))) << answer;
  EXPECT_FALSE(fs::exists(marks / std::to_string(test_pid)));
}

TEST(Listener, TakesTheSocketSystemdPassesOnlyWhenItIsBoundToThePath) {
  test::ScratchDir dir;
  const fs::path bound = dir.path() / "bound.sock";
  const fs::path other = dir.path() / "other.sock";
  // In a child: fd 3 and the environment are process-wide.
  auto run_with_passed_socket = [&](const fs::path &listen_path) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", bound.c_str());
      if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0 || ::listen(fd, 8) != 0 ||
          ::dup2(fd, 3) != 3) {
        ::_exit(99);
      }
      ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
      ::setenv("LISTEN_FDS", "1", 1);
      auto r = listen_and_fork(ListenOptions{listen_path.string(), 4, {}}, echo_session);
      ::_exit(r ? 0 : 100 + static_cast<int>(r.error().code));
    }
    return pid;
  };
  // Bound elsewhere: a config error, and no socket created at the path asked for.
  const pid_t wrong = run_with_passed_socket(other);
  int status = 0;
  ASSERT_EQ(::waitpid(wrong, &status, 0), wrong);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 100 + static_cast<int>(core::ErrorCode::config));
  EXPECT_FALSE(fs::exists(fs::symlink_status(other)));
  fs::remove(bound);

  // Bound to the path: served, and left in place at the stop (systemd owns it).
  const pid_t right = run_with_passed_socket(bound);
  for (int i = 0; i < 200 && !socket_is_live(bound.string()); ++i) {
    ::usleep(10'000);
  }
  {
    core::Fd a = connect_to(bound);
    ASSERT_TRUE(a);
    EXPECT_NE(ask(a.get(), "sd").find(":sd"), std::string::npos);
  }
  ::kill(right, SIGTERM);
  ASSERT_EQ(::waitpid(right, &status, 0), right);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(fs::exists(fs::symlink_status(bound)));
}

TEST(Listener, AConnectionFromAnotherUserIsClosedUnread) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to connect as another user";
  }
  test::ScratchDir dir;
  ::chmod(dir.path().c_str(), 0755);
  const fs::path sock = dir.path() / "agent.sock";
  Listener listener(ListenOptions{sock.string(), 4, {}});
  ASSERT_EQ(::chmod(sock.c_str(), 0666), 0) << "only the peer check stands in the way now";
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
      ::_exit(99);
    }
    core::Fd a = connect_to(sock);
    if (!a) {
      ::_exit(98);
    }
    ::_exit(ask(a.get(), "intruder", 5000).empty() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "another uid's connection got an answer (or could not connect)";
  // The owner still gets served afterwards.
  core::Fd b = connect_to(sock);
  ASSERT_TRUE(b);
  EXPECT_NE(ask(b.get(), "owner").find(":owner"), std::string::npos);
}

} // namespace
} // namespace maildsar::remote
