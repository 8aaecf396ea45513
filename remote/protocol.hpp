// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/result.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace maildsar::remote {

/** The agent protocol's version (docs/schemata.md "maildsar agent protocol"). */
inline constexpr int k_protocol_version = 1;
/** Longest request line the agent reads (64 MiB, as a response: an `erase` request carries back
    the slice the agent sent in its answer to `plan`): a longer one is an error and ends the session. */
inline constexpr std::size_t k_max_request_bytes = std::size_t{64} << 20U;
/** Longest response line the client reads from a host (64 MiB: a find's hits, ~100,000 of them;
    parsed, such a line takes several times its size, so this bounds the client's memory). */
inline constexpr std::size_t k_max_response_bytes = std::size_t{64} << 20U;

/** How one read of a line ended. */
enum class ReadStatus { line, eof, too_long, timeout, io_error };

/**
 * Reads newline-terminated lines from a file descriptor (not owned), never holding more than
 * `max_bytes` of one line. Bytes after a line stay buffered for the next call.
 */
class LineReader {
public:
  LineReader(int fd, std::size_t max_bytes) : m_fd(fd), m_max(max_bytes) {}

  /**
   * The next line without its '\n' in `line`. `deadline` bounds the wait (steady clock);
   * `other_fd` (>= 0), if given, is drained into `other` (its last `other_max` bytes kept) while
   * waiting: a child's stderr. A final line without '\n' before EOF counts as a line.
   */
  [[nodiscard]] ReadStatus read(std::string &line, std::chrono::steady_clock::time_point deadline,
                                int other_fd = -1, std::string *other = nullptr, std::size_t other_max = 4096);

  /** The errno of the last io_error. */
  [[nodiscard]] int last_errno() const { return m_errno; }

private:
  int m_fd;
  std::size_t m_max;
  std::string m_buffer;
  bool m_eof = false;
  int m_errno = 0;
};

/** Writes all of `text` and a '\n' (MSG_NOSIGNAL on sockets: a closed peer is EPIPE, not a signal). */
[[nodiscard]] core::Status write_line(int fd, std::string_view text);

/** An error response: {"ok": false, "op": OP, "error": {"code", "message", "hint"}}. */
[[nodiscard]] nlohmann::json error_response(std::string_view op, const core::Error &error);

/**
 * One operation of the agent: gets the request object, returns the response's fields (the
 * agent adds "ok": true and "op"), or an error that becomes an error response.
 */
using OpHandler = std::function<core::Result<nlohmann::json>(const nlohmann::json &request)>;

/** What the agent says about itself in its answer to hello. */
struct AgentIdentity {
  std::string host;    // the config's host_name or gethostname()
  std::string program; // "maildsar VERSION"
};

/**
 * The agent's side: reads requests from `in_fd`, answers on `out_fd`, until EOF. The first
 * request must be {"op": "hello", "version": 1}; a version it does not speak, a first request
 * that is not hello, or a line longer than k_max_request_bytes gets an error response and ends
 * the session. Garbage JSON, a request that is not an object and an unknown op get an error
 * response and the session goes on. `ops` are the operations besides hello.
 * @return 0 after EOF, 1 when the session was ended by a protocol error, 74 on an I/O error.
 */
/** Raw bytes of one export_read chunk (512 KiB; base64 makes a response line of ~700 KiB). */
inline constexpr std::size_t k_export_chunk_bytes = std::size_t{512} << 10U;

/** Standard base64 (RFC 4648, with '=' padding) of `bytes`. */
[[nodiscard]] std::string base64_encode(std::string_view bytes);

/**
 * Decodes standard base64 strictly: only the alphabet, '=' padding only at the end and only as
 * required, length a multiple of 4, no whitespace, unused bits zero.
 * @return std::nullopt for anything else.
 */
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

/**
 * Whether `path` is a file path an agent may name inside its part of an access package (and the
 * DPO host may then create under the package's hosts/NAME/ folder): relative, '/'-separated
 * components of 1..255 bytes, none "." or "..", none starting with '.', no NUL, no control
 * character, no backslash, at most 1024 bytes in all.
 */
[[nodiscard]] bool is_package_path(std::string_view path);

[[nodiscard]] int serve(int in_fd, int out_fd, const AgentIdentity &self, const std::map<std::string, OpHandler> &ops,
                        std::size_t max_request_bytes = k_max_request_bytes);

} // namespace maildsar::remote
