// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// The files of MTA queues (issue 17 item 1), read-only: Postfix queue files (the record format
// that `postcat` reads) and Exim spool messages (an `-H` file with envelope and headers, a `-D`
// file with the body). One parser per format behind this one small interface; the connector
// (connectors/mta_queue.cpp) lists the queues and turns a parsed file into an Item, whose
// message content goes to the MIME parser like any message. docs/reliability.md ("MTA queue
// files") lists what is read and what is not.
//
// The input is untrusted: every length is checked against the bytes there are, pointer records
// are followed at most once per byte of the file, and a file that breaks the format is one
// ErrorCode::data error that names the byte offset ("offset 123: ..."), never a crash or a hang.

#include "connectors/item.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::connectors::queue {

/** An envelope address with the record or line it came from (for the evidence's field). */
struct EnvelopeAddress {
  Role role = Role::envelope_to; // envelope_from, envelope_to or notification
  std::string addr;              // as written, without angle brackets; may be empty ("<>")
  std::string name = {};         // the sender's full name (Postfix 'F' record), else empty
  std::string field = {};        // what it came from: "sender", "recipient", "original recipient",
                                 // "done recipient", "errors-to", ...
};

/** One queued message as its queue file(s) hold it. */
struct QueuedMessage {
  std::optional<std::int64_t> arrival; // seconds since the epoch, from the queue file
  std::vector<EnvelopeAddress> envelope;
  std::vector<RawValue> ips;           // the client's address (role log_client)
  std::vector<RawText> texts;          // other envelope data that may name someone (SASL login,
                                       // submitting user, removed header fields, ACL variables)
  std::string content;                 // the message (header and body) as it will be sent
  /** True when the content was cut at `max_content` bytes (the rest was not searched). */
  bool content_cut = false;
};

/**
 * Parses one Postfix queue file (the output of cleanup: incoming, active, deferred, hold,
 * corrupt). `bytes` is the file or its first bytes; `file_cut` says that the file is longer
 * (a record running past the end is then the cut, not corruption, and `content_cut` is set).
 * @errors ErrorCode::data "offset N: cause" for a file that is no queue file or breaks the
 *         record format (truncated record, bad length, pointer outside the file or into a loop,
 *         no end record).
 */
[[nodiscard]] core::Result<QueuedMessage> parse_postfix_queue_file(std::string_view bytes, std::uint64_t max_content,
                                                                   bool file_cut);

/**
 * Parses one Exim spool message: `header_file` is the whole `-H` file, `data_file` the `-D`
 * file or its first bytes (`data_cut`: it is longer). `id` is the message id both files' first
 * lines must name.
 * @errors ErrorCode::data "-H offset N: cause" / "-D offset N: cause" for files that break the
 *         spool format.
 */
[[nodiscard]] core::Result<QueuedMessage> parse_exim_spool(std::string_view id, std::string_view header_file,
                                                           std::string_view data_file, std::uint64_t max_content,
                                                           bool data_cut);

/** True for a string that can be a Postfix queue id (file name): 5 to 32 of [0-9A-Za-z]. */
[[nodiscard]] bool is_postfix_queue_id(std::string_view id);
/** True for an Exim message id: 16 (1xZ7Gp-0001nB-03, 4.96) or 23 characters (4.97+). */
[[nodiscard]] bool is_exim_message_id(std::string_view id);

} // namespace maildsar::connectors::queue
