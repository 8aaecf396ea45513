// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar-connect SOCKET: joins its stdin and stdout to a listening agent's Unix socket
// (`maildsar agent --listen SOCKET`), as the ssh forced command or the program transport's
// command. Deliberately tiny and linked with nothing but libc: it is what every remote session
// starts, so its start is the per-host cost a listening agent saves (docs/deployment.md).
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

constexpr int k_unavailable = 69; // EX_UNAVAILABLE: no agent listens
constexpr int k_io = 74;          // EX_IOERR

/** Writes all of buf[0, n) to fd (SIGPIPE is ignored: a closed peer is an error here). */
bool write_all(int fd, const char *buf, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, buf, n);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      return false;
    }
    buf += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '\0' || std::strcmp(argv[1], "--help") == 0) {
    std::fprintf(stderr, "usage: maildsar-connect SOCKET\n"
                         "joins stdin/stdout to a listening maildsar agent (maildsar agent --listen SOCKET)\n");
    return argc == 2 && std::strcmp(argv[1], "--help") == 0 ? 0 : 64;
  }
  std::signal(SIGPIPE, SIG_IGN);
  const char *path = argv[1];
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (std::strlen(path) >= sizeof addr.sun_path) {
    std::fprintf(stderr, "maildsar-connect: %s: socket path longer than %zu bytes\n", path, sizeof addr.sun_path - 1);
    return 64;
  }
  std::memcpy(addr.sun_path, path, std::strlen(path));
  const int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0 || ::connect(sock, reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "maildsar-connect: %s: %s (is `maildsar agent --listen %s` running?)\n", path,
                 std::strerror(errno), path);
    return k_unavailable;
  }
  // Both directions until the agent closes: the client's end of input is passed on as a
  // half-close, after which the agent finishes its answers and ends the session.
  // An agent may end a session before reading what was sent (a session whose config cannot be
  // read answers hello with the reason and ends): a write that fails then stops the forwarding
  // of input, and what the agent did send is still passed on before this ends.
  char buf[65536];
  bool in_open = true;
  bool refused = false;
  const auto finish = [&](int status) {
    if (refused) {
      std::fprintf(stderr, "maildsar-connect: %s: the agent closed the connection\n", path);
      return k_io;
    }
    return status;
  };
  for (;;) {
    pollfd fds[2] = {{sock, POLLIN, 0}, {in_open ? STDIN_FILENO : -1, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      std::fprintf(stderr, "maildsar-connect: poll: %s\n", std::strerror(errno));
      return k_io;
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::read(sock, buf, sizeof buf);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && refused) {
        return finish(k_io); // ECONNRESET: the agent ended with our input unread
      }
      if (n < 0) {
        std::fprintf(stderr, "maildsar-connect: %s: %s\n", path, std::strerror(errno));
        return k_io;
      }
      if (n == 0) {
        return finish(0); // the agent ended the session
      }
      if (!write_all(STDOUT_FILENO, buf, static_cast<std::size_t>(n))) {
        return 0; // the client went away; so does the session (the agent sees EOF)
      }
    }
    if (in_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        in_open = false;
        ::shutdown(sock, SHUT_WR);
        continue;
      }
      if (!write_all(sock, buf, static_cast<std::size_t>(n))) {
        in_open = false; // the rest of the input has nowhere to go; read what the agent said
        refused = true;
      }
    }
  }
}
