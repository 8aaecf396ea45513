// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// A listening agent (`maildsar agent --listen`, issue 15) run in the background by a test, and
// the connector that reaches it.
#include "remote/listener.hpp"
#include "tests/child_process.hpp"
#include "tests/e2e/e2e_support.hpp"

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace maildsar::test {

/** maildsar-connect, built beside the program. */
inline std::filesystem::path connect_binary() {
  return std::filesystem::path(MAILDSAR_BINARY).parent_path() / "maildsar-connect";
}

/** `maildsar -c CONFIG agent --listen SOCKET` in the background; SIGTERM and reaped at the end. */
class ListeningAgent {
public:
  ListeningAgent(const std::filesystem::path &config, const std::filesystem::path &socket, const std::filesystem::path &log) {
    const pid_t parent = ::getpid();
    m_pid = ::fork();
    if (m_pid == 0) {
      // Ended with the test process whatever way that ends (a failed ASSERT, a sanitizer abort):
      // a listener left behind would hold the test's output open and its socket.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) {
        ::_exit(127);
      }
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(fd, STDERR_FILENO);
      ::execl(MAILDSAR_BINARY, MAILDSAR_BINARY, "-c", config.c_str(), "agent", "--listen", socket.c_str(),
              static_cast<char *>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 500 && !remote::socket_is_live(socket.string()); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~ListeningAgent() { (void)stop(); }
  ListeningAgent(const ListeningAgent &) = delete;
  ListeningAgent &operator=(const ListeningAgent &) = delete;
  /** SIGTERM; the listener's exit status (-1 if it was already stopped). */
  int stop() { return end_child(m_pid, SIGTERM); }

private:
  pid_t m_pid = -1;
};

} // namespace maildsar::test
