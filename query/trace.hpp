// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// `maildsar trace MESSAGE-ID`: every stored copy of one message and every delivery-log
// transaction that carried it (from the index's XMID: terms), plus the relays its Received
// header fields name — the path it took and the systems it touched.

#include "connectors/item.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "core/config.hpp"
#include "core/result.hpp"
#include "query/query.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::query {

/** One relay the message passed, read from one Received header field. */
struct Hop {
  std::size_t index = 0; // 1 = the first relay after the origin
  std::string from;      // the sending host as it named itself ("from" clause), "" if none
  std::string by;        // the receiving host ("by" clause), "" if none
  std::string ip;        // the sending client's IP literal, "" if none stated
  std::string protocol;  // the "with" clause (ESMTPS, LMTP, ...), "" if none
  std::string tls;       // TLS as stated ("TLSv1.3 TLS_AES_256_GCM_SHA384", "ESMTPS"), "" if none
  std::optional<std::int64_t> date; // after the ';', seconds since the epoch
  std::string raw;       // the unfolded field
};

/** One stored copy or log transaction of the traced message. */
struct TraceCopy {
  Hit hit; // `matched` stays empty
  /**
   * When the copy reached its store: the date of its newest Received field (messages) or the
   * first log line (log transactions); the message date when neither is known.
   */
  std::optional<std::int64_t> arrived;
  std::vector<Hop> hops; // from this copy's Received fields, origin first (messages only)
  /**
   * A message waiting in an MTA queue (postfix-queue, exim-spool): the ids of the delivery-log
   * transactions among the copies that carry the same queue id (the MTA logged what it did with
   * this queue file). Empty for other copies.
   */
  std::vector<std::string> same_queue_id = {};
};

struct Trace {
  std::string message_id;           // as searched: without angle brackets
  std::vector<TraceCopy> copies;    // by `arrived` (undated last), then source and path
  /** Of the copy with the most Received fields (the earliest arrived of those), origin first. */
  std::vector<Hop> hops;
  std::vector<std::string> problems; // copies that could not be read ("path: cause")
};

/** "<X@Y>" or " X@Y " -> "X@Y". Empty when nothing is left. */
[[nodiscard]] std::string normalise_message_id(std::string_view text);

/** Reads one Received field into a hop (index left 0). Never fails: unknown parts stay empty. */
[[nodiscard]] Hop parse_received(const connectors::mime::ReceivedField &field);

/**
 * Joins MTA queue copies with the log transactions of the same queue id (fills
 * TraceCopy::same_queue_id). Postfix and Exim log every transaction under the id the queue file
 * is named by, so equal ids on the same day's logs are the same message.
 */
void join_queue_ids(std::vector<TraceCopy> &copies);

/** The hops of Received fields in header order (newest first): origin first, numbered from 1. */
[[nodiscard]] std::vector<Hop> hops_from(const std::vector<connectors::mime::ReceivedField> &fields);

/** Reads the bytes of the message at a locator (tests inject fakes). */
using MessageReader = std::function<core::Result<std::string>(const connectors::Locator &)>;

/**
 * Every item the index holds with this Message-ID (angle brackets optional, case-insensitive),
 * read from the last committed state (no lock). Copies that cannot be read are kept and named in
 * `problems`. ErrorCode::usage for an empty id; no index yet is zero copies.
 */
[[nodiscard]] core::Result<Trace> trace(const core::Config &config, std::string_view message_id);
[[nodiscard]] core::Result<Trace> trace(const core::Config &config, std::string_view message_id,
                                        const MessageReader &reader);

} // namespace maildsar::query
