// SPDX-License-Identifier: GPL-3.0-or-later
#include "remote/listener.hpp"

#include "core/fs.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

namespace maildsar::remote {

namespace {

core::Result<sockaddr_un> unix_address(const std::string &path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return core::fail(core::ErrorCode::usage,
                      fmt::format("agent --listen: a socket path must be 1 to {} bytes", sizeof addr.sun_path - 1));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

/** The socket systemd passed (fd 3), when it was passed to this process and is bound to `path`. */
core::Result<int> systemd_socket(const std::string &path) {
  const char *pid = std::getenv("LISTEN_PID");
  const char *fds = std::getenv("LISTEN_FDS");
  if (pid == nullptr || fds == nullptr || std::strtol(pid, nullptr, 10) != ::getpid()) {
    return -1;
  }
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  if (std::strcmp(fds, "1") != 0) {
    return core::fail(core::ErrorCode::config, "agent --listen: systemd passed more than one socket",
                      "give the agent's .socket unit one ListenStream=");
  }
  constexpr int fd = 3;
  sockaddr_un bound{};
  socklen_t len = sizeof bound;
  int listening = 0;
  socklen_t optlen = sizeof listening;
  if (::getsockname(fd, reinterpret_cast<sockaddr *>(&bound), &len) != 0 || bound.sun_family != AF_UNIX ||
      ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || listening == 0) {
    return core::fail(core::ErrorCode::config, "agent --listen: the socket systemd passed is no listening Unix socket");
  }
  const std::string bound_path(bound.sun_path, ::strnlen(bound.sun_path, sizeof bound.sun_path));
  if (bound_path != path) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("agent --listen {}: systemd passed a socket bound to {}", path, bound_path),
                      "the .socket unit's ListenStream= and the service's --listen must name the same path");
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}

/** A new socket at `path`, mode 0600. */
core::Result<core::Fd> create_socket(const std::string &path) {
  MAILDSAR_TRY_ASSIGN(sockaddr_un addr, unix_address(path));
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return core::fail(core::ErrorCode::cant_create, fmt::format("agent --listen {}: exists and is not a socket", path));
    }
    if (socket_is_live(path)) {
      return core::fail(core::ErrorCode::temp_fail, fmt::format("agent --listen {}: another agent listens there", path));
    }
    // A socket left by an agent that was killed: nobody answers on it.
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return std::unexpected(core::errno_error("agent --listen " + path, errno));
    }
  }
  core::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return std::unexpected(core::errno_error("agent --listen: socket", errno));
  }
  // 0600 from the start: no moment in which another user could connect.
  const mode_t old = ::umask(0177);
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr);
  const int err = errno;
  ::umask(old);
  if (bound != 0) {
    return std::unexpected(core::errno_error("agent --listen " + path, err));
  }
  if (::listen(fd.get(), 64) != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    return std::unexpected(core::errno_error("agent --listen " + path, e));
  }
  return fd;
}

void log_line(const std::string &text) { std::fprintf(stderr, "maildsar agent: %s\n", text.c_str()); }

} // namespace

bool socket_is_live(const std::string &path) {
  auto addr = unix_address(path);
  if (!addr) {
    return false;
  }
  core::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return fd && ::connect(fd.get(), reinterpret_cast<const sockaddr *>(&*addr), sizeof *addr) == 0;
}

namespace {

/** Reads what spares wrote on the notify pipe: the pids of those that took a connection. */
void drain_notices(int fd, pid_t &spare, std::set<pid_t> &sessions, unsigned &spare_failures) {
  pid_t pid = 0;
  while (::read(fd, &pid, sizeof pid) == static_cast<ssize_t>(sizeof pid)) {
    if (pid == spare) {
      spare = -1;
      spare_failures = 0;
    }
    sessions.insert(pid);
  }
}

/**
 * The spare's life: warm up (unless a client already waits), wait for a connection, tell the
 * parent, check the peer, run the session. Never returns.
 */
[[noreturn]] void run_spare(int listener, int notify, pid_t parent, const sigset_t &old_mask,
                            const ListenOptions &options, bool warm, const std::function<int(int fd)> &session) {
  // A spare outliving its listener (killed by SIGKILL) would keep taking connections.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) {
    ::_exit(0);
  }
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  std::signal(SIGTERM, SIG_DFL);
  if (warm && options.warm_up) {
    options.warm_up();
  }
  int conn = -1;
  do {
    conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  } while (conn < 0 && (errno == EINTR || errno == ECONNABORTED));
  const int accept_errno = errno;
  const pid_t self = ::getpid();
  // Whatever happened, this process is no longer the spare: the parent starts another. A
  // session, once begun, runs to its end even if the listener stops meanwhile.
  ::prctl(PR_SET_PDEATHSIG, 0);
  (void)!::write(notify, &self, sizeof self);
  ::close(notify);
  ::close(listener);
  if (conn < 0) {
    log_line(fmt::format("accept: {}", std::strerror(accept_errno)));
    ::_exit(accept_errno == EMFILE || accept_errno == ENFILE ? 75 : 74);
  }
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || peer.uid != ::geteuid()) {
    log_line(fmt::format("refused a connection from uid {} (only uid {} may connect)", peer.uid, ::geteuid()));
    ::close(conn);
    ::_exit(0);
  }
  const int rc = session(conn);
  ::close(conn);
  std::fflush(nullptr);
  ::_exit(rc);
}

} // namespace

core::Result<int> listen_and_fork(const ListenOptions &options, const std::function<int(int fd)> &session) {
  MAILDSAR_TRY_ASSIGN(int passed, systemd_socket(options.path));
  core::Fd listener;
  const bool created = passed < 0;
  if (created) {
    MAILDSAR_TRY_ASSIGN(listener, create_socket(options.path));
  } else {
    listener = core::Fd(passed);
  }
  // Signals arrive through a descriptor, so that the loop below is the only place that acts.
  sigset_t mask;
  sigset_t old_mask;
  sigemptyset(&mask);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) {
    sigaddset(&mask, sig);
  }
  if (::sigprocmask(SIG_BLOCK, &mask, &old_mask) != 0) {
    return std::unexpected(core::errno_error("agent --listen: sigprocmask", errno));
  }
  core::Fd signals(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  int pipe_fds[2] = {-1, -1};
  if (!signals || ::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    const int e = errno;
    ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    return std::unexpected(core::errno_error("agent --listen: signalfd/pipe", e));
  }
  core::Fd notices(pipe_fds[0]);
  const pid_t self = ::getpid();
  core::Fd notify(pipe_fds[1]);
  // One spare child, forked ahead and waiting in accept(): a connection costs neither a process
  // start nor a fork. The next spare is forked when no session runs (so that its warm-up does
  // not take CPU from the sessions), or at once, cold, when a connection waits and fewer than
  // max_sessions run (otherwise connections wait in the socket's backlog).
  pid_t spare = -1;
  std::set<pid_t> sessions;
  unsigned spare_failures = 0; // spares that ended without a connection, in a row
  bool pending = false;        // a connection waits and no spare takes it
  bool stop = false;
  while (!stop) {
    drain_notices(notices.get(), spare, sessions, spare_failures);
    const bool room = sessions.size() < options.max_sessions;
    if (spare < 0 && room && (sessions.empty() || pending)) {
      if (spare_failures >= 3) {
        ::poll(nullptr, 0, 1000); // a spare that dies at once must not become a fork loop
      }
      const bool warm = !pending;
      const pid_t pid = ::fork();
      if (pid == 0) {
        signals.close();
        notices.close();
        run_spare(listener.get(), notify.get(), self, old_mask, options, warm, session);
      }
      if (pid < 0) {
        log_line(fmt::format("fork: {}", std::strerror(errno)));
        ::poll(nullptr, 0, 1000);
      } else {
        spare = pid;
      }
    }
    // Without a spare, this process watches the socket itself, to fork one when a client comes.
    const bool watch = spare < 0 && room;
    pollfd fds[3] = {{notices.get(), POLLIN, 0}, {signals.get(), POLLIN, 0}, {watch ? listener.get() : -1, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0 && errno != EINTR) {
      log_line(fmt::format("poll: {}", std::strerror(errno)));
      break;
    }
    pending = watch && (fds[2].revents & POLLIN) != 0;
    drain_notices(notices.get(), spare, sessions, spare_failures);
    signalfd_siginfo info{};
    while (::read(signals.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      if (info.ssi_signo != SIGCHLD) {
        stop = true;
      }
    }
    int status = 0;
    pid_t pid = 0;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid == spare) {
        spare = -1;
        ++spare_failures;
        log_line(fmt::format("the waiting agent process {} ended before a connection (status {})", pid, status));
      } else {
        sessions.erase(pid);
      }
      if (WIFSIGNALED(status)) {
        log_line(fmt::format("session {} ended by signal {}", pid, WTERMSIG(status)));
      }
    }
  }
  drain_notices(notices.get(), spare, sessions, spare_failures); // a spare that just took a client runs on
  if (spare > 0) {
    ::kill(spare, SIGTERM);
    int status = 0;
    ::waitpid(spare, &status, 0);
  }
  if (created) {
    ::unlink(options.path.c_str());
  }
  listener.close();
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  return 0;
}

} // namespace maildsar::remote
