// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/config.hpp"
#include "core/result.hpp"
#include "remote/protocol.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <sys/types.h>
#include <vector>

namespace maildsar::remote {

/** What a host's agent said in its answer to hello. */
struct HostHello {
  int version = 0;
  std::string host;    // the agent's own name for its host
  std::string program; // "maildsar VERSION"
  std::vector<std::string> ops;
};

/**
 * A session with one remote host's `maildsar agent` (issue 15): the host's transport runs as a
 * child process (posix_spawn of an argv, never a shell) whose stdin and stdout are one end of a
 * socketpair and whose stderr is kept (its last 4 KiB) for messages. Every wait is bounded by the
 * host's timeout; a timeout, a protocol error or an oversized answer kills and reaps the child.
 * Every error names the host ("host mx1: ...").
 */
class HostClient {
public:
  /**
   * Starts the transport of `host` and says hello. `first`, when given, is sent in the same
   * write as hello, so that its answer costs no round trip of its own (between sites, one
   * network RTT; on loopback it is not measurable); read it with answer(). Only a request that may run before the agent's version is known
   * belongs there (a status): an agent of another version answers hello with an error and ends
   * the session without reading further, and then connect() fails.
   * @errors temp_fail: the program could not be started, ended, or did not answer in time;
   *         data: the answer is not the protocol (garbage, too long, another version).
   */
  [[nodiscard]] static core::Result<HostClient> connect(const core::HostConfig &host,
                                                        const nlohmann::json *first = nullptr);

  HostClient(HostClient &&other) noexcept;
  HostClient &operator=(HostClient &&other) noexcept;
  HostClient(const HostClient &) = delete;
  HostClient &operator=(const HostClient &) = delete;
  /** close(). */
  ~HostClient();

  [[nodiscard]] const std::string &name() const { return m_name; }
  [[nodiscard]] const HostHello &hello() const { return m_hello; }

  /**
   * Sends one request object and returns its response when "ok" is true. An error response
   * becomes an Error with the agent's code and message; the session stays usable. Anything
   * else (timeout, EOF, garbage, a response longer than k_max_response_bytes) ends the session.
   */
  [[nodiscard]] core::Result<nlohmann::json> request(const nlohmann::json &request);

  /** The answer to connect()'s `first` request, as request() returns it. */
  [[nodiscard]] core::Result<nlohmann::json> answer();

  /** Ends the session: EOF to the agent, then waits up to 2 s for it to exit, else kills it; reaps it. */
  void close();

private:
  explicit HostClient(const core::HostConfig &host);
  /** Kills and reaps the child; the session is unusable afterwards. */
  void abort();
  /** "exit status 1" / "killed by signal 9" once the child ended (waits up to `grace_ms`). */
  std::string reap_status(int grace_ms);
  /** Builds the error of a session that ended, with the agent's last stderr line. */
  core::Error broken(core::ErrorCode code, const std::string &what);
  /** Writes `lines` (a request; in connect(), hello and its first request); a failure names `op`. */
  core::Status send(const std::string &lines, const std::string &op);
  /** Reads and checks the answer to a request for `op` already sent. */
  core::Result<nlohmann::json> receive(const std::string &op);

  std::string m_name;
  std::int64_t m_timeout_seconds = 60;
  pid_t m_pid = -1;
  int m_sock = -1;
  int m_err = -1;
  LineReader m_reader{-1, k_max_response_bytes};
  std::string m_stderr;
  HostHello m_hello;
  std::string m_pending; // the op of connect()'s `first`, until answer() reads its answer
};

} // namespace maildsar::remote
