// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Process isolation for parsers of untrusted files (docs/reliability.md, docs/ARCHITECTURE.md).
//
// A task (say "pst-scan") runs in a child process, the worker (`maildsar-worker`, started with
// posix_spawn, one per file), under CPU-time, address-space and wall-clock limits. Parent and
// worker talk over one socketpair with length-prefixed frames: the parent sends one request frame,
// the worker answers with a stream of frames and ends with one final frame (done or error). A
// crash, a hang, a bloat or a garbled answer becomes one core::Error naming the file and the
// signal or limit; the caller's process never runs the parser.

#include "core/result.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::connectors::isolate {

/**
 * False in AddressSanitizer builds, whose shadow memory needs terabytes of address space: there
 * RLIMIT_AS is not set (CPU and wall-clock limits still are).
 */
[[nodiscard]] bool memory_limit_supported();

/** Limits of one worker process. */
struct Limits {
  std::uint64_t cpu_seconds = 300;  // RLIMIT_CPU: SIGXCPU at this many seconds of CPU time
  std::uint64_t memory_mib = 2048;  // RLIMIT_AS: allocations beyond this fail
  std::uint64_t wall_seconds = 900; // then SIGKILL (a worker blocked or sleeping)
};

// ---------------------------------------------------------------------------------------------
// Framing: a frame is a 4-byte little-endian payload length, then the payload. A payload's first
// byte is its type.

inline constexpr std::size_t k_frame_header = 4;
/** The default largest payload a reader accepts; a longer length prefix is a protocol error. */
inline constexpr std::uint32_t k_max_frame = 64U << 20;

/** Frame types every task shares; task-specific types are other bytes. */
inline constexpr std::uint8_t k_frame_done = 'D';  // final: the task finished (task payload)
inline constexpr std::uint8_t k_frame_error = 'E'; // final: the task failed (code, message)

/** `payload` with its length prefix. */
[[nodiscard]] std::string frame(std::string_view payload);

/** Splits a byte stream into frames. */
class FrameReader {
public:
  explicit FrameReader(std::uint32_t max_frame = k_max_frame) : m_max(max_frame) {}
  /** Appends bytes received. */
  void feed(std::string_view bytes);
  /**
   * The next complete payload, or an empty optional when more bytes are needed.
   * @errors ErrorCode::internal ("oversized frame") when a length prefix exceeds the maximum.
   */
  [[nodiscard]] core::Result<std::optional<std::string>> next();
  /** True when bytes of an incomplete frame are buffered (a stream ending now is truncated). */
  [[nodiscard]] bool partial() const { return m_pos < m_buffer.size(); }

private:
  std::uint32_t m_max;
  std::string m_buffer;
  std::size_t m_pos = 0;
};

/** Builds a payload: fixed-width little-endian integers and length-prefixed strings. */
class Encoder {
public:
  explicit Encoder(std::uint8_t type) { m_out.push_back(static_cast<char>(type)); }
  Encoder &u8(std::uint8_t value);
  Encoder &u64(std::uint64_t value);
  Encoder &i64(std::int64_t value) { return u64(static_cast<std::uint64_t>(value)); }
  Encoder &str(std::string_view value); // u64 length, bytes
  [[nodiscard]] std::string take() { return std::move(m_out); }

private:
  std::string m_out;
};

/** Reads a payload built by Encoder; every read is bounds-checked (ErrorCode::internal). */
class Decoder {
public:
  explicit Decoder(std::string_view payload) : m_in(payload) {}
  [[nodiscard]] core::Result<std::uint8_t> u8();
  [[nodiscard]] core::Result<std::uint64_t> u64();
  [[nodiscard]] core::Result<std::int64_t> i64();
  [[nodiscard]] core::Result<std::string> str();
  /** ErrorCode::internal when bytes are left over. */
  [[nodiscard]] core::Status finish() const;

private:
  std::string_view m_in;
  std::size_t m_pos = 0;
};

// ---------------------------------------------------------------------------------------------
// The parent side

/**
 * The worker programs. maildsar-worker runs the PST tasks; maildsar-extract-worker runs
 * extract-text, the only one that needs poppler, libzip, libxml2 and libytnef, so that the PST
 * workers (one per PST file) do not map them at every start.
 */
inline constexpr std::string_view k_worker_program = "maildsar-worker";
inline constexpr std::string_view k_extract_worker_program = "maildsar-extract-worker";

/** One task to run isolated. */
struct Task {
  std::string name;       // the worker's task ("pst-scan")
  std::string subject;    // the file it reads, named in every error
  std::string request;    // the request payload (the worker's task decodes it)
  Limits limits;
  std::uint32_t max_frame = k_max_frame;
  std::string executable; // "" = `program` found by worker_path()
  std::string program = std::string(k_worker_program);
};

/**
 * Receives each frame of the answer, the final done frame included (an error frame is turned
 * into the returned error instead). Its type is the payload's first byte; `payload` reads the
 * rest. An error returned stops the worker (killed) and is returned by run().
 */
using FrameHandler = std::function<core::Status(std::uint8_t type, Decoder &payload)>;

/**
 * Runs `task` in a new worker process and streams its answer to `on_frame`.
 *
 * @errors what the task reported in its error frame; ErrorCode::data when the worker died from a
 *         signal (crash), exceeded its CPU, memory or wall-clock limit, or exited without
 *         finishing (each message names task.subject and the signal or limit); ErrorCode::internal
 *         for a protocol error (garbage, an oversized or truncated frame) and when no worker
 *         can be started.
 * Thread-safe: each call has its own process and socket; no fd of ours other than the socket
 * reaches the worker (all are closed there at spawn), and the worker is always reaped.
 */
[[nodiscard]] core::Status run(const Task &task, const FrameHandler &on_frame);

/**
 * A long-lived worker: one process answers many requests of one task, one after the other, with
 * every guarantee of run() per request: the CPU-time limit counts from what the process had used
 * before the request, the memory limit is set anew, the wall-clock deadline runs from the request;
 * a crash, a limit or a protocol error ends the process (killed and reaped) and is the error of
 * the request it happened in; the next request starts a fresh process. Spawning (posix_spawn,
 * the dynamic loader, the libraries' initialisation) is paid once per process instead of once per
 * request. Started with `maildsar-worker TASK --serve`.
 *
 * A failure in a process that had answered earlier requests may come from what those left
 * behind (memory held, a corrupted heap): callers that blame an input for a failure retry it in
 * a fresh process first (served() == 0). A process is replaced after k_max_served requests.
 *
 * Not thread-safe: one Worker per thread (the indexer's parse threads keep one each). The
 * destructor ends the process (closes its socket: the idle worker exits; killed after 2 s) and
 * reaps it. The worker also dies with the thread that started it (PR_SET_PDEATHSIG).
 */
class Worker {
public:
  Worker();
  ~Worker();
  Worker(const Worker &) = delete;
  Worker &operator=(const Worker &) = delete;

  /**
   * Runs one request of `task` (task.request, task.limits, task.subject) in the running process,
   * or in a new one when none runs or it runs another executable or task. Errors as run().
   */
  [[nodiscard]] core::Status run(const Task &task, const FrameHandler &on_frame);
  /** Requests the running process has answered (0 when none runs: the next request gets a fresh one). */
  [[nodiscard]] std::uint64_t served() const;
  /** The running process, if any. */
  [[nodiscard]] std::optional<int> pid() const;
  /** Ends the running process, if any, and reaps it. */
  void stop();

  static constexpr std::uint64_t k_max_served = 1000;

private:
  struct Process;
  std::unique_ptr<Process> m_process;
};

/** The worker's command-line flag for a long-lived worker (Worker). */
inline constexpr std::string_view k_worker_serve_flag = "--serve";

/**
 * A worker program (`program`: maildsar-worker or maildsar-extract-worker). maildsar-worker is
 * $MAILDSAR_WORKER when set; else beside the running program, then in its installed libexec
 * directory (../libexec/maildsar/ from bin/), then in the build tree (tests). Other worker
 * programs are looked for beside each of those places.
 * @errors ErrorCode::internal naming the places looked at.
 */
[[nodiscard]] core::Result<std::string> worker_path(std::string_view program = k_worker_program);

// ---------------------------------------------------------------------------------------------
// The worker side

/** The worker's end of the socket: reads requests, sends frames. */
class Channel {
public:
  explicit Channel(int fd, std::uint32_t max_frame = k_max_frame) : m_fd(fd), m_reader(max_frame) {}
  /** The next request frame. @errors ErrorCode::internal when the stream ends early or is garbled. */
  [[nodiscard]] core::Result<std::string> read_request();
  /** The next request, or none when the parent closed its end between requests (--serve). */
  [[nodiscard]] core::Result<std::optional<std::string>> next_request();
  /** Sends one payload as a frame (blocking). @errors ErrorCode::io when the parent is gone. */
  [[nodiscard]] core::Status send(std::string_view payload);

private:
  int m_fd;
  FrameReader m_reader;
};

/** One task a worker can run: decodes `request`, streams frames, ends with done or error. */
using TaskFunction = std::function<core::Status(std::string_view request, Channel &channel)>;

/** Worker exit codes (besides 0). */
inline constexpr int k_worker_exit_usage = 2;         // unknown task / bad command line
inline constexpr int k_worker_exit_out_of_memory = 3; // an allocation failed
inline constexpr int k_worker_exit_protocol = 4;      // no or a bad request; parent gone

/**
 * The worker's main: `maildsar-worker TASK [--serve]` with the socket on fd 3. Reads the request,
 * runs tasks.at(TASK) and sends its final frame (done is sent by the task, an error returned by it
 * is sent here as the error frame). With --serve, it then waits for the next request, until the
 * parent closes the socket (exit 0). Allocation failures (std::bad_alloc, and libraries that exit()
 * when malloc fails) exit with k_worker_exit_out_of_memory.
 */
[[nodiscard]] int worker_main(int argc, char **argv, const std::map<std::string, TaskFunction, std::less<>> &tasks);

/** The worker's socket: fd 3. */
inline constexpr int k_worker_fd = 3;

} // namespace maildsar::connectors::isolate
