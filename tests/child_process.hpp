// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// A child process a test started in the background (a listener, an agent): ended and reaped.
#include <csignal>
#include <sys/types.h>
#include <sys/wait.h>

namespace maildsar::test {

/** Sends `sig` to the child `pid` (if > 0), reaps it and sets `pid` to -1: its exit status, or
    128 + the signal that ended it; -1 when there was no child. */
inline int end_child(pid_t &pid, int sig) {
  if (pid <= 0) {
    return -1;
  }
  ::kill(pid, sig);
  int status = 0;
  ::waitpid(pid, &status, 0);
  pid = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

} // namespace maildsar::test
