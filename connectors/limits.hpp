// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Bounds on what one item may cost while it is read and indexed (issue 13 item 12; config
// "limits", docs/reliability.md "Bounded memory"). Beyond a bound the item is still indexed,
// from what was read up to the bound, and carries a note in Item::truncated that `index`
// reports as a warning and `verify` refuses to certify.

#include "connectors/item.hpp"
#include "core/result.hpp"

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

namespace maildsar::connectors {

struct ItemLimits {
  /** Bytes of one item that are decoded (a message file, an mbox message, the decompressed
      bytes of a quarantine file). Hashing always covers the whole item. */
  std::uint64_t max_item_bytes = 64ULL << 20;
  /** Bytes of one header field (all its folded lines) and of any one line of a message. */
  std::uint64_t max_header_bytes = 1ULL << 20;
  /** MIME parts (boundary lines) of one message, attached messages included. */
  std::uint64_t max_mime_parts = 1000;
  /** Addresses kept per role (To, Cc, a header field, a log's to=, ...) of one item. */
  std::uint64_t max_addresses_per_role = 1000;
  /** Lines of one log transaction; a longer transaction is indexed as several parts. */
  std::uint64_t max_transaction_lines = 10000;
  /** Bytes of one log transaction; a longer transaction is indexed as several parts. */
  std::uint64_t max_transaction_bytes = 4ULL << 20;
};

/** Sets the limits every connector applies from now on (the config's, when it is loaded). */
void set_item_limits(const ItemLimits &limits);
/** The limits in force (defaults until set_item_limits). */
[[nodiscard]] ItemLimits item_limits();

/** Items whose bytes exceed this take the big-item gate (below) while they are decoded. */
inline constexpr std::uint64_t k_big_item_bytes = 4ULL << 20;

/**
 * One big item at a time: decoding costs a few times an item's size, so parser threads take
 * this (recursive) gate around any item larger than k_big_item_bytes. Peak memory is then
 * threads x (small item) + one big item, whatever the input. Does nothing for small items.
 */
class BigItemGate {
public:
  explicit BigItemGate(std::uint64_t bytes);
  ~BigItemGate();
  BigItemGate(const BigItemGate &) = delete;
  BigItemGate &operator=(const BigItemGate &) = delete;

private:
  bool m_held = false;
};

/**
 * Applies the per-role address and IP caps to an item that is complete (the indexer calls it
 * for every item): beyond max_addresses_per_role the rest of a role is dropped and a note added
 * to item.truncated.
 */
void bound_item(Item &item);

/** The first bytes of a file and the SHA-256 of all of it. */
struct FileHead {
  std::string bytes;    // at most `max` bytes from offset 0
  std::string sha256;   // hex, of the whole file (streamed)
  std::uint64_t size = 0; // bytes hashed
};

/** Reads the first `max` bytes of the open file `fd` (of `size` bytes) and hashes all of it. */
[[nodiscard]] core::Result<FileHead> read_head(int fd, std::uint64_t size, std::uint64_t max,
                                               const std::string &path);

/** The first decompressed bytes of a gzip stream. */
struct InflatedHead {
  std::string bytes;  // at most `max` bytes
  bool cut = false;   // the stream holds more than `max` bytes (not decompressed further)
};

/**
 * Decompresses the gzip file `fd` (concatenated members allowed) streaming, up to `max` bytes:
 * never holds more than that plus one buffer. ErrorCode::data for a corrupt or truncated stream.
 */
[[nodiscard]] core::Result<InflatedHead> inflate_head(int fd, std::uint64_t size, std::uint64_t max,
                                                      const std::string &path);

} // namespace maildsar::connectors
