// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// MTA queues as sources (issue 17 item 1), read-only: source type "postfix-queue" (a Postfix
// queue directory: the queue files below incoming/, active/, deferred/, hold/ and corrupt/,
// hashed sub-folders included) and "exim-spool" (an Exim spool directory: input/*-H with its
// -D, split_spool_directory sub-folders included). One item per queued message, its locator
// naming the queue file (Postfix) or the -H file (Exim), its folder the queue, its queue_id the
// MTA's id (the same id the delivery log names, so `trace` can join them). The envelope
// (sender, recipients, client address, SASL login) is evidence in the roles envelope-from,
// envelope-to, log-client and log-user; the message content goes to the MIME parser like any
// message. The formats are parsed in connectors/queue/.
//
// Erasure is not done by rewriting these files (the MTA owns them): `plan` gives the exact
// command (queue_removal_command) as a manual action, unless the source allows maildsar to
// run it itself (`"allow_remove": true`).

#include "connectors/connector.hpp"
#include "connectors/store_writer.hpp"
#include "core/config.hpp"
#include "core/result.hpp"

#include <memory>
#include <string>
#include <vector>

namespace maildsar::connectors {

/**
 * Creates the connector of a source of type "postfix-queue" or "exim-spool" (no format).
 * @errors ErrorCode::config for another type or a format.
 */
[[nodiscard]] core::Result<std::unique_ptr<Connector>> make_mta_queue_connector(const core::SourceConfig &source);

/** True for the store kinds of MTA queues (postfix_queue, exim_spool). */
[[nodiscard]] bool is_mta_queue(StoreKind kind);

/** The Exim -D file beside an -H file ("…/input/ID-H" -> "…/input/ID-D"). */
[[nodiscard]] std::string exim_data_path(const std::string &header_path);

/**
 * The bytes an MTA queue item's SHA-256 covers: the Postfix queue file; the Exim -H file
 * followed by the -D file.
 * @errors ErrorCode::no_input when a file is gone, I/O errors.
 */
[[nodiscard]] core::Result<std::string> read_queue_item_bytes(const Locator &locator);

/**
 * The queued message (header and body) as it will be sent, as the connector decodes it.
 * @errors as read_queue_item_bytes; ErrorCode::data for a file that breaks its format.
 */
[[nodiscard]] core::Result<std::string> read_queued_message(const Locator &locator);

/**
 * The queued message for an access package (Art. 15): its envelope as header fields first —
 * `X-Maildsar-Queue: postfix-queue deferred ID` (store, queue, id), `X-Maildsar-Arrival:` (ISO
 * 8601 UTC), `X-Maildsar-Envelope-From:` and one `X-Maildsar-Envelope-To:` per envelope
 * recipient (with what it is: "recipient", "original recipient", ...), `X-Maildsar-Client:` —
 * then the message as read_queued_message gives it. The envelope is what the queue holds about
 * a person beyond the message (a recipient named only there).
 * @errors as read_queued_message.
 */
[[nodiscard]] core::Result<std::string> read_queued_message_with_envelope(const Locator &locator);

/**
 * The command that removes a queued message with the MTA's own tool, as argv:
 * {program, "-d", QUEUEID, QUEUE} (postsuper) or {program, "-Mrm", ID} (exim). `program` is the
 * source's `command`, else "postsuper" / "exim". Empty when the locator's queue id does not
 * have the MTA's id grammar (never put an unchecked string into a command) and for a file of
 * Postfix's corrupt queue (postsuper does not act on it: it is removed by hand).
 */
[[nodiscard]] std::vector<std::string> queue_removal_command(const Locator &locator, const std::string &program);

/** The command as one shell-safe line for instructions ("postsuper -d 4QxY… deferred"). */
[[nodiscard]] std::string command_line(const std::vector<std::string> &argv);

/**
 * Removes a queued message with the MTA's own tool (`allow_remove`): checks that the item's
 * bytes still hash to `sha256` (else a stale error, nothing run), runs queue_removal_command
 * (`program` absolute; no shell, stdin and stdout /dev/null, the environment reduced to PATH and
 * LANG=C, 60 s at most) and then checks that the queue file (Exim: -H and -D) is gone. `hook`
 * is called with "queue:checked" before the command and "queue:ran" after it.
 * @errors no_input when the file is already gone (the caller decides whether that is done or
 *         stale); stale; ErrorCode::data when there is no command for the locator;
 *         ErrorCode::temp_fail when the command fails, times out or leaves the file in place
 *         (the error names the exit status and the command's first line of stderr).
 */
[[nodiscard]] core::Status remove_queued_message(const Locator &locator, const std::string &sha256,
                                                 const std::string &program, const StepHook &hook);

} // namespace maildsar::connectors
