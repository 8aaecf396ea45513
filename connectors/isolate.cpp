// SPDX-License-Identifier: GPL-3.0-or-later
// Process isolation: see isolate.hpp and docs/reliability.md.
//
// Why posix_spawn of a separate executable: the callers are multithreaded (the indexer's parse
// threads), where fork() without exec is unsafe (locks held by other threads stay locked in the
// child). posix_spawn (vfork + exec in glibc) is cheap and safe from any thread. The limits are
// set on the spawned process with prlimit() before the request is sent, so the worker does not
// touch untrusted bytes before it is limited, and any executable can be a worker (the tests use
// a fault-injecting one).
#include "connectors/isolate.hpp"

#include "core/fs.hpp"
#include "core/sanitizers.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <thread>

extern char **environ;

#ifndef MAILDSAR_WORKER_BUILD_PATH
#error "MAILDSAR_WORKER_BUILD_PATH must name maildsar-worker in the build tree"
#endif
#ifndef MAILDSAR_WORKER_INSTALL_RELATIVE
#error "MAILDSAR_WORKER_INSTALL_RELATIVE must name maildsar-worker relative to the installed program"
#endif

namespace maildsar::connectors::isolate {

namespace {

using Clock = std::chrono::steady_clock;

void put_le(std::string &out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFU));
  }
}

std::uint64_t get_le(std::string_view in, std::size_t pos, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[pos + static_cast<std::size_t>(i)]))
             << (8 * i);
  }
  return value;
}

std::unexpected<core::Error> protocol_error(std::string message) {
  return core::fail(core::ErrorCode::internal, "worker protocol error: " + std::move(message));
}

std::string signal_name(int sig) {
  const char *abbrev = sigabbrev_np(sig);
  const char *description = sigdescr_np(sig);
  return fmt::format("SIG{} ({})", abbrev != nullptr ? abbrev : std::to_string(sig).c_str(),
                     description != nullptr ? description : "unknown signal");
}

/** A spawned worker; killed and reaped unless reaped already. */
class Child {
public:
  explicit Child(pid_t pid) : m_pid(pid) {}
  ~Child() {
    if (!m_reaped) {
      ::kill(m_pid, SIGKILL);
      static_cast<void>(wait(nullptr));
    }
  }
  Child(const Child &) = delete;
  Child &operator=(const Child &) = delete;

  [[nodiscard]] pid_t pid() const { return m_pid; }
  void kill() const { ::kill(m_pid, SIGKILL); }
  /** Forgets the process without killing or reaping it (it is not ours: see Worker::stop). */
  pid_t release() {
    m_reaped = true;
    return m_pid;
  }

  /** Blocks until the child ended. */
  int wait(rusage *usage) {
    int status = 0;
    while (wait4(m_pid, &status, 0, usage) < 0) {
      if (errno != EINTR) {
        break; // ECHILD: SIGCHLD ignored elsewhere; nothing left to reap
      }
    }
    m_reaped = true;
    return status;
  }

  /** Waits until `deadline`; false when the child still runs then. */
  template <class Drain> bool wait_until(Clock::time_point deadline, int &status, rusage &usage, Drain &drain) {
    auto pause = std::chrono::microseconds(200);
    for (;;) {
      drain.drain(); // a worker blocked writing to a full stderr pipe would never end
      pid_t r = wait4(m_pid, &status, WNOHANG, &usage);
      if (r == m_pid || (r < 0 && errno != EINTR)) {
        m_reaped = true;
        return true;
      }
      if (Clock::now() >= deadline) {
        return false;
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(50'000));
    }
  }

private:
  pid_t m_pid;
  bool m_reaped = false;
};

class SpawnActions {
public:
  SpawnActions() { posix_spawn_file_actions_init(&m_actions); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&m_actions); }
  SpawnActions(const SpawnActions &) = delete;
  SpawnActions &operator=(const SpawnActions &) = delete;
  posix_spawn_file_actions_t *get() { return &m_actions; }

private:
  posix_spawn_file_actions_t m_actions{};
};

class SpawnAttr {
public:
  SpawnAttr() { posix_spawnattr_init(&m_attr); }
  ~SpawnAttr() { posix_spawnattr_destroy(&m_attr); }
  SpawnAttr(const SpawnAttr &) = delete;
  SpawnAttr &operator=(const SpawnAttr &) = delete;
  posix_spawnattr_t *get() { return &m_attr; }

private:
  posix_spawnattr_t m_attr{};
};

core::Result<pid_t> spawn(const std::string &exe, const std::string &task, bool serve, int child_fd,
                          int stderr_fd) {
  SpawnActions actions;
  int rc = posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null", O_RDONLY, 0);
  if (rc == 0) {
    rc = posix_spawn_file_actions_addopen(actions.get(), 1, "/dev/null", O_WRONLY, 0);
  }
  if (rc == 0) {
    rc = posix_spawn_file_actions_adddup2(actions.get(), stderr_fd, 2);
  }
  if (rc == 0) {
    rc = posix_spawn_file_actions_adddup2(actions.get(), child_fd, k_worker_fd);
  }
  if (rc == 0) {
    // Whatever this process holds without O_CLOEXEC (index lock, databases) stays here.
    rc = posix_spawn_file_actions_addclosefrom_np(actions.get(), k_worker_fd + 1);
  }
  SpawnAttr attr;
  sigset_t none;
  sigset_t all;
  sigemptyset(&none);
  sigfillset(&all);
  if (rc == 0) {
    rc = posix_spawnattr_setflags(attr.get(), POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  if (rc == 0) {
    rc = posix_spawnattr_setsigmask(attr.get(), &none);
  }
  if (rc == 0) {
    rc = posix_spawnattr_setsigdefault(attr.get(), &all);
  }
  if (rc != 0) {
    return core::fail(core::ErrorCode::internal, fmt::format("cannot prepare a worker: {}", std::strerror(rc)));
  }
  std::string serve_flag(k_worker_serve_flag);
  std::array<char *, 4> argv{const_cast<char *>(exe.c_str()), const_cast<char *>(task.c_str()),
                             serve ? serve_flag.data() : nullptr, nullptr};
  pid_t pid = -1;
  rc = posix_spawn(&pid, exe.c_str(), actions.get(), attr.get(), argv.data(), environ);
  if (rc != 0) {
    return core::fail(core::ErrorCode::internal, fmt::format("cannot start the worker {}: {}", exe, std::strerror(rc)),
                      "reinstall maildsar, or point MAILDSAR_WORKER at maildsar-worker");
  }
  return pid;
}

/**
 * A crash is reported, not dumped: a core file would hold the mail. Only the soft limit goes to 0;
 * the hard one stays as inherited, because the worker may be setting its own core limit at the
 * same moment (a sanitizer build does at start-up: it reads the limits and sets the soft one to 0
 * keeping the hard one it read), and a hard limit lowered in between makes that call fail with
 * EPERM and the worker die before it reads its request.
 */
void no_core_dump(pid_t pid) {
  rlimit old{};
  if (prlimit(pid, RLIMIT_CORE, nullptr, &old) != 0) {
    return; // the worker is gone already; waiting for it reports that
  }
  rlimit core_size{};
  core_size.rlim_max = old.rlim_max;
  static_cast<void>(prlimit(pid, RLIMIT_CORE, &core_size, nullptr));
}

/** The limits of a one-shot worker (run()): CPU time (SIGXCPU, then SIGKILL a second later), memory, no core. */
void apply_limits(pid_t pid, const Limits &limits) {
  rlimit cpu{};
  cpu.rlim_cur = static_cast<rlim_t>(limits.cpu_seconds);
  cpu.rlim_max = static_cast<rlim_t>(limits.cpu_seconds + 1);
  static_cast<void>(prlimit(pid, RLIMIT_CPU, &cpu, nullptr));
  if (memory_limit_supported()) {
    rlimit as{};
    as.rlim_cur = static_cast<rlim_t>(limits.memory_mib) << 20;
    as.rlim_max = as.rlim_cur;
    static_cast<void>(prlimit(pid, RLIMIT_AS, &as, nullptr));
  }
  no_core_dump(pid);
}

/**
 * The limits of a long-lived worker at its start: memory and no core; the CPU limit is set per
 * request (apply_cpu_limit), so its hard limit stays as inherited (raising it back needs
 * privileges a per-request limit must not depend on).
 */
void apply_lasting_limits(pid_t pid, const Limits &limits) {
  if (memory_limit_supported()) {
    rlimit as{};
    as.rlim_cur = static_cast<rlim_t>(limits.memory_mib) << 20;
    as.rlim_max = as.rlim_cur;
    static_cast<void>(prlimit(pid, RLIMIT_AS, &as, nullptr));
  }
  no_core_dump(pid);
}

/** The soft CPU limit of one request of a long-lived worker: what it used so far plus the limit. */
void apply_cpu_limit(pid_t pid, const Limits &limits, std::uint64_t cpu_base) {
  rlimit old{};
  if (prlimit(pid, RLIMIT_CPU, nullptr, &old) != 0) {
    return;
  }
  rlimit cpu{};
  cpu.rlim_cur = static_cast<rlim_t>(cpu_base + limits.cpu_seconds);
  cpu.rlim_max = old.rlim_max;
  if (old.rlim_max != RLIM_INFINITY && cpu.rlim_cur > old.rlim_max) {
    cpu.rlim_cur = old.rlim_max;
  }
  static_cast<void>(prlimit(pid, RLIMIT_CPU, &cpu, nullptr));
}

std::uint64_t cpu_seconds(const rusage &usage) {
  return static_cast<std::uint64_t>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec);
}

/**
 * What the worker wrote to stderr (libpst's "pst_malloc: Out Of memory", a sanitizer's report):
 * kept, the last 4 KiB, to name in an error; never passed to our stderr, which may be JSON lines.
 */
class StderrTail {
public:
  explicit StderrTail(core::Fd fd) : m_fd(std::move(fd)) {}
  [[nodiscard]] int fd() const { return m_fd.get(); }
  /** Reads what is there without blocking. */
  void drain() {
    std::array<char, 4096> buffer{};
    while (m_fd) {
      ssize_t n = ::read(m_fd.get(), buffer.data(), buffer.size());
      if (n > 0) {
        m_tail.append(buffer.data(), static_cast<std::size_t>(n));
        if (m_tail.size() > 4096) {
          m_tail.erase(0, m_tail.size() - 4096);
        }
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n == 0) {
        m_fd.close();
      }
      return;
    }
  }
  /** Forgets what was read (a long-lived worker's next request starts with nothing said). */
  void clear() { m_tail.clear(); }
  /** `; it said: "<last line>"` or "". */
  [[nodiscard]] std::string last_line() const {
    std::string_view tail(m_tail);
    while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r' || tail.back() == ' ')) {
      tail.remove_suffix(1);
    }
    auto nl = tail.rfind('\n');
    if (nl != std::string_view::npos) {
      tail.remove_prefix(nl + 1);
    }
    if (tail.empty()) {
      return {};
    }
    std::string line;
    for (char c : tail.substr(0, 200)) {
      line.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
    }
    return fmt::format("; it said: \"{}\"", line);
  }

private:
  core::Fd m_fd;
  std::string m_tail;
};

/** The error for a worker that ended without a (valid) final frame. */
core::Error abnormal_end(const Task &task, int status, const rusage &usage, bool timed_out, bool truncated,
                         std::uint64_t cpu_base) {
  auto what = fmt::format("{}: the {} worker", task.subject, task.name);
  auto make = [](std::string message) { return core::Error{core::ErrorCode::data, std::move(message), {}, {}}; };
  if (timed_out) {
    return make(fmt::format("{} exceeded the wall-clock limit of {} s and was killed", what, task.limits.wall_seconds));
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    if (sig == SIGXCPU || (sig == SIGKILL && cpu_seconds(usage) >= cpu_base + task.limits.cpu_seconds)) {
      return make(fmt::format("{} exceeded the CPU-time limit of {} s and was killed", what, task.limits.cpu_seconds));
    }
    return make(fmt::format("{} crashed: killed by signal {}", what, signal_name(sig)));
  }
  if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    if (code == k_worker_exit_out_of_memory) {
      return make(fmt::format("{} exceeded the memory limit of {} MiB", what, task.limits.memory_mib));
    }
    if (code != 0) {
      return make(fmt::format("{} exited with status {} without finishing", what, code));
    }
    if (truncated) {
      return make(fmt::format("{} ended in the middle of a frame (truncated answer)", what));
    }
    return make(fmt::format("{} ended without a final answer", what));
  }
  return make(fmt::format("{} ended with wait status {}", what, status));
}

} // namespace

bool memory_limit_supported() {
#if MAILDSAR_ASAN
  return false; // AddressSanitizer reserves terabytes of shadow address space
#else
  return true;
#endif
}

// ---------------------------------------------------------------------------------------------
// Framing

std::string frame(std::string_view payload) {
  std::string out;
  out.reserve(k_frame_header + payload.size());
  put_le(out, payload.size(), 4);
  out.append(payload);
  return out;
}

void FrameReader::feed(std::string_view bytes) {
  if (m_pos > 0 && m_pos >= m_buffer.size() / 2) {
    m_buffer.erase(0, m_pos);
    m_pos = 0;
  }
  m_buffer.append(bytes);
}

core::Result<std::optional<std::string>> FrameReader::next() {
  std::string_view rest(m_buffer);
  rest.remove_prefix(m_pos);
  if (rest.size() < k_frame_header) {
    return std::optional<std::string>();
  }
  auto length = get_le(rest, 0, 4);
  if (length > m_max) {
    return protocol_error(fmt::format("oversized frame: {} bytes announced, at most {} allowed", length, m_max));
  }
  if (rest.size() - k_frame_header < length) {
    return std::optional<std::string>();
  }
  std::string payload(rest.substr(k_frame_header, length));
  m_pos += k_frame_header + length;
  return std::optional<std::string>(std::move(payload));
}

Encoder &Encoder::u8(std::uint8_t value) {
  m_out.push_back(static_cast<char>(value));
  return *this;
}

Encoder &Encoder::u64(std::uint64_t value) {
  put_le(m_out, value, 8);
  return *this;
}

Encoder &Encoder::str(std::string_view value) {
  u64(value.size());
  m_out.append(value);
  return *this;
}

core::Result<std::uint8_t> Decoder::u8() {
  if (m_in.size() - m_pos < 1) {
    return protocol_error("payload too short");
  }
  return static_cast<std::uint8_t>(m_in[m_pos++]);
}

core::Result<std::uint64_t> Decoder::u64() {
  if (m_in.size() - m_pos < 8) {
    return protocol_error("payload too short");
  }
  auto value = get_le(m_in, m_pos, 8);
  m_pos += 8;
  return value;
}

core::Result<std::int64_t> Decoder::i64() {
  MAILDSAR_TRY_ASSIGN(std::uint64_t value, u64());
  return static_cast<std::int64_t>(value);
}

core::Result<std::string> Decoder::str() {
  MAILDSAR_TRY_ASSIGN(std::uint64_t length, u64());
  if (length > m_in.size() - m_pos) {
    return protocol_error(fmt::format("string of {} bytes announced, {} left", length, m_in.size() - m_pos));
  }
  std::string value(m_in.substr(m_pos, length));
  m_pos += length;
  return value;
}

core::Status Decoder::finish() const {
  if (m_pos != m_in.size()) {
    return protocol_error(fmt::format("{} unexpected bytes at the end of a payload", m_in.size() - m_pos));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Parent side

core::Result<std::string> worker_path(std::string_view program) {
  // Every worker program sits beside maildsar-worker: in the build tree, installed, or where
  // $MAILDSAR_WORKER points.
  const auto beside = [program](const std::string &worker) {
    return program == k_worker_program ? worker
                                       : (std::filesystem::path(worker).parent_path() / program).string();
  };
  std::vector<std::string> candidates;
  if (const char *env = std::getenv("MAILDSAR_WORKER"); env != nullptr && *env != '\0') {
    candidates.push_back(beside(env));
  } else {
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
      auto dir = self.parent_path();
      candidates.push_back((dir / program).string());
      candidates.push_back(beside((dir / MAILDSAR_WORKER_INSTALL_RELATIVE).lexically_normal().string()));
    }
    candidates.push_back(beside(MAILDSAR_WORKER_BUILD_PATH));
  }
  for (const auto &candidate : candidates) {
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return core::fail(core::ErrorCode::internal,
                    fmt::format("{} not found (looked at {})", program, fmt::join(candidates, ", ")),
                    fmt::format("reinstall maildsar, or point MAILDSAR_WORKER at maildsar-worker (with {} beside it)",
                                program));
}

namespace {

/** A spawned worker process with its socket and the tail of its stderr. */
struct Spawned {
  Child child;
  core::Fd socket; // non-blocking
  StderrTail err;
  pid_t owner;     // the process that spawned it (a fork()ed copy of ours must not touch it)
};

core::Result<std::unique_ptr<Spawned>> start_worker(const std::string &exe, const std::string &task_name,
                                                    bool serve) {
  std::array<int, 2> sv{-1, -1};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv.data()) != 0) {
    return core::fail(core::ErrorCode::io, fmt::format("socketpair: {}", std::strerror(errno)));
  }
  core::Fd parent(sv[0]);
  core::Fd child_end(sv[1]);
  if (child_end.get() <= k_worker_fd) {
    // dup2(3, 3) would keep O_CLOEXEC: move it out of the way first.
    core::Fd moved(fcntl(child_end.get(), F_DUPFD_CLOEXEC, k_worker_fd + 1));
    if (!moved) {
      return core::fail(core::ErrorCode::io, fmt::format("fcntl: {}", std::strerror(errno)));
    }
    child_end = std::move(moved);
  }
  std::array<int, 2> err_pipe{-1, -1};
  if (pipe2(err_pipe.data(), O_CLOEXEC | O_NONBLOCK) != 0) {
    return core::fail(core::ErrorCode::io, fmt::format("pipe: {}", std::strerror(errno)));
  }
  core::Fd err_read(err_pipe[0]);
  core::Fd err_write(err_pipe[1]);
  MAILDSAR_TRY_ASSIGN(pid_t pid, spawn(exe, task_name, serve, child_end.get(), err_write.get()));
  std::unique_ptr<Spawned> spawned(
      new Spawned{Child(pid), std::move(parent), StderrTail(std::move(err_read)), ::getpid()});
  if (fcntl(spawned->socket.get(), F_SETFL, fcntl(spawned->socket.get(), F_GETFL) | O_NONBLOCK) != 0) {
    return core::fail(core::ErrorCode::io, fmt::format("fcntl: {}", std::strerror(errno)));
  }
  return spawned;
}

/** CPU seconds the live process `pid` has used (rounded up), from /proc; 0 when unreadable. */
std::uint64_t live_cpu_seconds(pid_t pid) {
  std::string stat;
  {
    core::Fd fd(::open(fmt::format("/proc/{}/stat", pid).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      return 0;
    }
    std::array<char, 1024> buffer{};
    ssize_t n = ::read(fd.get(), buffer.data(), buffer.size() - 1);
    if (n <= 0) {
      return 0;
    }
    stat.assign(buffer.data(), static_cast<std::size_t>(n));
  }
  // pid (comm) state ppid ... : utime and stime are fields 14 and 15, counted after the ')'.
  auto paren = stat.rfind(')');
  if (paren == std::string::npos) {
    return 0;
  }
  std::size_t pos = paren + 1;
  std::uint64_t ticks = 0;
  for (int field = 3; field <= 15 && pos < stat.size(); ++field) {
    while (pos < stat.size() && stat[pos] == ' ') {
      ++pos;
    }
    std::size_t end = stat.find(' ', pos);
    if (end == std::string::npos) {
      end = stat.size();
    }
    if (field == 14 || field == 15) {
      ticks += std::strtoull(stat.substr(pos, end - pos).c_str(), nullptr, 10);
    }
    pos = end;
  }
  const long hz = sysconf(_SC_CLK_TCK);
  const auto per_second = static_cast<std::uint64_t>(hz > 0 ? hz : 100);
  return (ticks + per_second - 1) / per_second;
}

/** How one request went, up to the end of its answer (or of the worker). */
struct Exchange {
  std::optional<core::Error> failure; // a protocol error, a handler's error, an error frame
  bool final_seen = false;
  bool error_frame = false; // the worker reported the task's own error
  bool timed_out = false;
  bool eof = false;         // the worker closed its end
  bool partial = false;     // bytes of an incomplete frame were left
  bool cpu_exceeded = false; // killed by the parent's CPU check (long-lived worker)
};

/**
 * Sends `task.request` and hands the answer's frames to `on_frame` until the worker closes its
 * end (one-shot: frames after the final one are a protocol error) or, with `stop_at_final`, until
 * the final frame (a persistent worker then waits for its next request; bytes after the final
 * frame are a protocol error).
 */
Exchange exchange(Spawned &w, const Task &task, const FrameHandler &on_frame, Clock::time_point deadline,
                  bool stop_at_final, std::optional<std::uint64_t> cpu_base = std::nullopt) {
  Exchange x;
  const std::string request = frame(task.request);
  std::size_t sent = 0;
  FrameReader reader(task.max_frame);
  std::array<char, 65536> buffer{};
  while (!x.eof && !x.failure && !(stop_at_final && x.final_seen)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      x.timed_out = true;
      break;
    }
    std::array<pollfd, 2> fds{
        pollfd{w.socket.get(), static_cast<short>(POLLIN | (sent < request.size() ? POLLOUT : 0)), 0},
        pollfd{w.err.fd(), POLLIN, 0}};
    // A long-lived worker has no hard CPU limit of its own: checked here, every second, too.
    const long long wake = cpu_base ? 1'000 : 60'000;
    int ready = poll(fds.data(), w.err.fd() >= 0 ? 2 : 1, static_cast<int>(std::min<long long>(left, wake)));
    if (cpu_base && ready == 0 && live_cpu_seconds(w.child.pid()) > *cpu_base + task.limits.cpu_seconds + 1) {
      x.cpu_exceeded = true;
      break;
    }
    pollfd &pfd = fds[0];
    if (ready > 0 && fds[1].revents != 0) {
      w.err.drain();
    }
    if (ready < 0 && errno != EINTR) {
      x.failure = core::Error{core::ErrorCode::io, fmt::format("poll: {}", std::strerror(errno)), {}, {}};
      break;
    }
    if (ready <= 0) {
      continue;
    }
    if ((pfd.revents & POLLOUT) != 0 && sent < request.size()) {
      ssize_t n = send(w.socket.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        sent = request.size(); // the worker is gone; its end tells why
      }
    }
    if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
      continue;
    }
    ssize_t n = recv(w.socket.get(), buffer.data(), buffer.size(), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      x.eof = true;
      continue;
    }
    if (n < 0) {
      continue;
    }
    reader.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    for (;;) {
      auto next = reader.next();
      if (!next) {
        x.failure = next.error();
        break;
      }
      if (!*next) {
        if (stop_at_final && x.final_seen && reader.partial()) {
          x.failure = protocol_error("bytes after the final frame").error();
        }
        break;
      }
      const std::string &payload = **next;
      if (x.final_seen) {
        x.failure = protocol_error("a frame after the final frame").error();
        break;
      }
      if (payload.empty()) {
        x.failure = protocol_error("an empty frame").error();
        break;
      }
      auto type = static_cast<std::uint8_t>(payload[0]);
      Decoder decoder(std::string_view(payload).substr(1));
      if (type == k_frame_error) {
        x.final_seen = true;
        x.error_frame = true;
        auto code = decoder.u8();
        auto message = code ? decoder.str() : core::Result<std::string>(std::unexpected(code.error()));
        if (!message || !decoder.finish() || *code > static_cast<std::uint8_t>(core::ErrorCode::config)) {
          x.failure = protocol_error("a malformed error frame").error();
          x.error_frame = false;
        } else {
          x.failure = core::Error{static_cast<core::ErrorCode>(*code), std::move(*message), {}, {}};
          if (stop_at_final && reader.partial()) {
            x.failure = protocol_error("bytes after the final frame").error();
            x.error_frame = false;
          }
        }
        break;
      }
      const auto handler_start = Clock::now();
      auto st = on_frame(type, decoder);
      // The time the parent spends on a frame (a PST item whose attachments it extracts in
      // another worker meanwhile) is not the worker's: its wall-clock limit is moved on by it.
      deadline += Clock::now() - handler_start;
      if (!st) {
        x.failure = st.error();
        break;
      }
      x.final_seen = type == k_frame_done;
    }
  }
  x.partial = reader.partial();
  return x;
}

/** The error to return for an exchange that failed or a worker that ended (after it was reaped). */
core::Error exchange_error(const Task &task, Exchange &x, int status, const rusage &usage, std::uint64_t cpu_base,
                           const StderrTail &err) {
  if (x.failure) {
    if (x.error_frame || x.failure->code != core::ErrorCode::internal) {
      return std::move(*x.failure);
    }
    // A protocol error: the file is named.
    return core::Error{core::ErrorCode::internal,
                       fmt::format("{}: the {} worker: {}", task.subject, task.name, x.failure->message), {}, {}};
  }
  if (x.final_seen && !x.timed_out) {
    auto end = abnormal_end(task, status, usage, false, false, cpu_base);
    end.message += " (after its complete answer)" + err.last_line();
    return end;
  }
  auto end = abnormal_end(task, status, usage, x.timed_out, x.partial, cpu_base);
  end.message += err.last_line();
  return end;
}

} // namespace

core::Status run(const Task &task, const FrameHandler &on_frame) {
  std::string exe = task.executable;
  if (exe.empty()) {
    MAILDSAR_TRY_ASSIGN(exe, worker_path(task.program));
  }
  MAILDSAR_TRY_ASSIGN(auto w, start_worker(exe, task.name, false));
  apply_limits(w->child.pid(), task.limits); // before the worker can read a byte of the request
  const auto deadline = Clock::now() + std::chrono::seconds(task.limits.wall_seconds);
  Exchange x = exchange(*w, task, on_frame, deadline, false);

  int status = 0;
  rusage usage{};
  bool task_error = x.failure && x.error_frame;
  if (x.timed_out || (x.failure && !task_error)) {
    w->child.kill();
    status = w->child.wait(&usage);
  } else if (!w->child.wait_until(deadline, status, usage, w->err)) {
    // Answer complete but the process does not end (stuck at exit).
    w->child.kill();
    status = w->child.wait(&usage);
    x.timed_out = !x.final_seen;
    if (x.final_seen) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("{}: the {} worker did not exit after its answer and was killed", task.subject,
                                    task.name));
    }
  }
  w->err.drain();
  if (!x.failure && !x.timed_out && x.final_seen && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    return {};
  }
  return std::unexpected(exchange_error(task, x, status, usage, 0, w->err));
}

// ---------------------------------------------------------------------------------------------
// The persistent worker

struct Worker::Process {
  std::unique_ptr<Spawned> spawned;
  std::string exe;
  std::string task_name;
  Limits limits; // set at its start (memory) or per request (CPU time)
  std::uint64_t served = 0;
};

namespace {

bool same_limits(const Limits &a, const Limits &b) {
  return a.cpu_seconds == b.cpu_seconds && a.memory_mib == b.memory_mib && a.wall_seconds == b.wall_seconds;
}

/**
 * True when an idle worker has sent something or closed its end between requests: a frame
 * after its final frame, or an exit. It serves no more requests (the next one would be blamed).
 */
bool idle_worker_spoke(const Spawned &w) {
  pollfd pfd{w.socket.get(), POLLIN, 0};
  return poll(&pfd, 1, 0) != 0;
}

} // namespace

Worker::Worker() = default;

Worker::~Worker() { stop(); }

std::uint64_t Worker::served() const { return m_process ? m_process->served : 0; }

std::optional<pid_t> Worker::pid() const {
  if (!m_process) {
    return std::nullopt;
  }
  return m_process->spawned->child.pid();
}

void Worker::stop() {
  if (!m_process) {
    return;
  }
  std::unique_ptr<Process> process = std::move(m_process);
  Spawned &w = *process->spawned;
  if (w.owner != ::getpid()) {
    // A fork()ed copy of the owner: the worker is not this process's child. Leave it alone.
    static_cast<void>(w.child.release());
    return;
  }
  w.socket.close(); // the idle worker reads the end of its requests and exits
  int status = 0;
  rusage usage{};
  if (!w.child.wait_until(Clock::now() + std::chrono::seconds(2), status, usage, w.err)) {
    w.child.kill();
    static_cast<void>(w.child.wait(&usage));
  }
}

core::Status Worker::run(const Task &task, const FrameHandler &on_frame) {
  std::string exe = task.executable;
  if (exe.empty()) {
    auto found = worker_path(task.program);
    if (!found) {
      stop(); // every failed request leaves no process behind: the next one starts fresh
      return std::unexpected(std::move(found.error()));
    }
    exe = std::move(*found);
  }
  if (m_process && (m_process->exe != exe || m_process->task_name != task.name || m_process->served >= k_max_served ||
                    !same_limits(m_process->limits, task.limits) || m_process->spawned->owner != ::getpid() ||
                    idle_worker_spoke(*m_process->spawned))) {
    stop();
  }
  if (!m_process) {
    MAILDSAR_TRY_ASSIGN(auto spawned, start_worker(exe, task.name, true));
    apply_lasting_limits(spawned->child.pid(), task.limits); // before it can read a byte of a request
    m_process = std::make_unique<Process>(Process{std::move(spawned), exe, task.name, task.limits, 0});
  }
  Spawned &w = *m_process->spawned;
  w.err.drain(); // what it wrote while answering earlier requests is not this request's
  w.err.clear();
  // The CPU limit counts from what the process has used so far: this request gets its own.
  const std::uint64_t cpu_base = m_process->served == 0 ? 0 : live_cpu_seconds(w.child.pid());
  apply_cpu_limit(w.child.pid(), task.limits, cpu_base);
  const auto deadline = Clock::now() + std::chrono::seconds(task.limits.wall_seconds);
  Exchange x = exchange(w, task, on_frame, deadline, true, cpu_base);
  if (x.final_seen && !x.eof && !x.timed_out && (!x.failure || x.error_frame)) {
    ++m_process->served; // the worker waits for its next request
    if (x.failure) {
      return std::unexpected(std::move(*x.failure));
    }
    return {};
  }
  // Killed, crashed, ended, or misbehaved: this process serves no more requests.
  std::unique_ptr<Process> process = std::move(m_process);
  int status = 0;
  rusage usage{};
  if (x.eof && !x.timed_out && !x.failure) {
    if (!w.child.wait_until(deadline, status, usage, w.err)) {
      w.child.kill();
      status = w.child.wait(&usage);
    }
  } else {
    w.child.kill();
    status = w.child.wait(&usage);
  }
  w.err.drain();
  return std::unexpected(exchange_error(task, x, status, usage, cpu_base, w.err));
}

// ---------------------------------------------------------------------------------------------
// Worker side

core::Result<std::optional<std::string>> Channel::next_request() {
  std::array<char, 65536> buffer{};
  for (;;) {
    MAILDSAR_TRY_ASSIGN(auto next, m_reader.next());
    if (next) {
      return next;
    }
    ssize_t n = ::read(m_fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n == 0 && !m_reader.partial()) {
      return std::optional<std::string>(); // the parent is done with us
    }
    if (n <= 0) {
      return protocol_error(n == 0 ? "the request ended early" : std::strerror(errno));
    }
    m_reader.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
  }
}

core::Result<std::string> Channel::read_request() {
  MAILDSAR_TRY_ASSIGN(auto request, next_request());
  if (!request) {
    return protocol_error("the request ended early");
  }
  return std::move(*request);
}

core::Status Channel::send(std::string_view payload) {
  std::string bytes = frame(payload);
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(m_fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return core::fail(core::ErrorCode::io, fmt::format("the parent is gone: {}", std::strerror(errno)));
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

namespace {

bool g_task_finished = false;

/**
 * Libraries that exit() when malloc fails (libpst's pst_malloc prints "Out Of memory" and calls
 * exit(1)) leave errno at ENOMEM: such an exit becomes the out-of-memory exit code.
 */
void exit_hook() {
  if (!g_task_finished && errno == ENOMEM) {
    _exit(k_worker_exit_out_of_memory);
  }
}

[[noreturn]] void out_of_memory() { _exit(k_worker_exit_out_of_memory); }

} // namespace

int worker_main(int argc, char **argv, const std::map<std::string, TaskFunction, std::less<>> &tasks) {
  // Die with the parent: nothing of ours runs unsupervised.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  const bool serve = argc == 3 && std::string_view(argv[2]) == k_worker_serve_flag;
  if (argc != 2 && !serve) {
    return k_worker_exit_usage;
  }
  auto task = tasks.find(std::string_view(argv[1]));
  if (task == tasks.end()) {
    return k_worker_exit_usage;
  }
  std::set_new_handler(out_of_memory);
  std::atexit(exit_hook);
  Channel channel(k_worker_fd);
  try {
    for (bool first = true; first || serve; first = false) {
      g_task_finished = false;
      auto request = channel.next_request();
      if (!request || (!*request && first)) {
        g_task_finished = true;
        return k_worker_exit_protocol;
      }
      if (!*request) {
        break; // --serve: no more requests
      }
      auto st = task->second(**request, channel);
      if (!st) {
        auto sent = channel.send(Encoder(k_frame_error)
                                     .u8(static_cast<std::uint8_t>(st.error().code))
                                     .str(st.error().message)
                                     .take());
        if (!sent) {
          g_task_finished = true;
          return k_worker_exit_protocol;
        }
      }
    }
  } catch (const std::bad_alloc &) {
    out_of_memory();
  }
  g_task_finished = true;
  return 0;
}

} // namespace maildsar::connectors::isolate
