// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/result.hpp"

#include <functional>
#include <string>

namespace maildsar::remote {

/** How `listen_and_fork` listens. */
struct ListenOptions {
  std::string path;           // the Unix socket (at most 107 bytes)
  unsigned max_sessions = 16; // sessions at once; further connections wait in the backlog
  /** Run by each waiting process before it accepts (e.g. read the config once, so that the
      pages a session touches first are already its own); its results must not be kept. */
  std::function<void()> warm_up;
};

/**
 * An already-started agent (issue 15, "a few ms per host"): listens on the Unix socket
 * `options.path` and runs `session(fd)` in a child process per connection. The child is forked
 * ahead ("the spare") and waits in accept(), so that a connection costs neither a process start
 * (the dynamic loader, static initialisation) nor a fork. When the spare takes a connection it
 * tells this process, which forks the next spare when no session runs any more (its warm-up then
 * takes no CPU from a session), or at once, without the warm-up, when another client connects
 * meanwhile. With `max_sessions` running, further connections wait in the socket's backlog.
 *
 * - The socket is the one systemd passes (LISTEN_PID/LISTEN_FDS, fd 3) when it is bound to
 *   `options.path`; else it is created mode 0600. An existing socket nobody listens on is
 *   replaced; a live one, or a path that is not a socket, is an error.
 * - A connection whose peer (SO_PEERCRED) is not this process's effective uid is closed unread:
 *   only the store's owner (the ssh forced command runs as it) may talk to its agent.
 * - SIGTERM, SIGINT or SIGHUP stops listening (the spare is ended; the socket is removed if this
 *   call created it); sessions running then finish on their own.
 * - A spare that ends without a connection is replaced, after a second's pause from the third
 *   in a row on.
 *
 * The child returns `session`'s exit status with `_exit`; it gets the connection as `fd` and keeps
 * stdin, stdout and stderr of the listener (diagnostics go to its journal, not to the client).
 * @return 0 after a stop signal, or the error that kept it from listening.
 */
[[nodiscard]] core::Result<int> listen_and_fork(const ListenOptions &options, const std::function<int(int fd)> &session);

/** Whether something accepts connections on the Unix socket `path` right now. */
[[nodiscard]] bool socket_is_live(const std::string &path);

} // namespace maildsar::remote
