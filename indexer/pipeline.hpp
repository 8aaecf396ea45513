// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// The indexer's pipeline (internal to indexer/): the jobs, the messages the scanning workers send
// to the single writer, and the bounded queue between them. Used by indexer.cpp (mail stores),
// writer.* and rotation.* (the writer) and log_index.cpp (delivery logs in blocks).

#include "connectors/connector.hpp"
#include "core/result.hpp"
#include "indexer/catalog.hpp"
#include "indexer/document.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace maildsar::index::pipeline {

using connectors::FileEntry;
using connectors::ScanError;

enum class ScanMode { full, append };

// Memory bounds of the pipeline (docs/reliability.md "Bounded memory"): documents waiting for
// the writer, and documents Xapian holds before a commit.
inline constexpr std::size_t k_queue_bytes = 32U << 20U;
inline constexpr std::uint64_t k_batch_bytes = 64U << 20U;
/** A first index of a source is read in parts of this many files while it is listed
    (Connector::each_file), so a million-file listing is never held whole. */
inline constexpr std::size_t k_stream_jobs = 8192;
/** A log block document counts this many times its approx_bytes against k_batch_bytes. */
inline constexpr std::uint64_t k_block_bytes_factor = 8;

struct Job {
  FileEntry entry;
  /** The catalog record, if any. Behind a pointer: a first index of a large Maildir holds a job
      per file, and most have none (docs/performance.md "A million items"). */
  std::unique_ptr<FileRecord> old;
  Transition transition = Transition::new_file;
};

// ---- messages from the workers to the writer ----

struct MsgDoc {
  std::size_t job;
  BuiltDocument doc;
  /** A log block: the first line of each of its transactions (which identify them in the file:
      new, changed and removed are counted by transaction). Empty for other documents. */
  std::vector<std::uint64_t> log_lines = {};
  /** Items of the document that show an erased subject (a log block: its transactions that
      do; else 0 or 1, as doc.suppressed says). */
  std::uint64_t suppressed = 0;
};
struct MsgError {
  std::size_t job;
  ScanError error;
  /** Bytes of the file that no indexed item holds (an item the connector could not read, or
      whose document could not be built): not searched, so the file is marked (see finish()). */
  bool unsearched = false;
};
/** An item indexed only in part, or split, at a limit (connectors/limits.hpp). */
struct MsgWarning {
  std::size_t job;
  ScanError warning;
};
/** An item indexed only in part (Item::truncated, or an attachment whose text failed). */
struct MsgPartial {
  std::size_t job;
};
struct MsgBegin {
  std::size_t job;
  ScanMode mode;
  std::uint64_t from_offset;
};
/** Content marks of a completely scanned log (see rotation.cpp); empty for other stores. */
struct ContentMarks {
  std::string head_fingerprint;
  std::uint64_t content_size = 0;
  std::string content_tail;
  std::string gz_points; // compressed: restart points for the query side (gz_access.hpp)
};

struct MsgEnd {
  std::size_t job;
  std::optional<core::Error> failure; // the file as a whole could not be read
  std::string fingerprint;
  ContentMarks marks;
  /** mbox: the number the next message of the file gets (FileRecord::next_seq). */
  std::uint64_t next_seq = 0;
};
struct MsgWorkerDone {};
using Msg = std::variant<MsgDoc, MsgError, MsgWarning, MsgPartial, MsgBegin, MsgEnd, MsgWorkerDone>;

inline std::size_t bytes_of(const Msg &msg) {
  const auto *doc = std::get_if<MsgDoc>(&msg);
  return doc != nullptr ? doc->doc.doc.approx_bytes() : 0;
}

/**
 * A bounded multi-producer, single-consumer queue: at most `capacity` messages and `max_bytes`
 * of documents (one document always fits). close() makes push() drop.
 */
class Queue {
public:
  Queue(std::size_t capacity, std::size_t max_bytes) : m_capacity(capacity), m_max_bytes(max_bytes) {}

  void push(Msg &&msg) {
    const std::size_t bytes = bytes_of(msg);
    std::unique_lock lock(m_mutex);
    m_not_full.wait(lock, [&] {
      return m_closed || m_items.empty() || (m_items.size() < m_capacity && m_bytes + bytes <= m_max_bytes);
    });
    if (m_closed) {
      return;
    }
    m_bytes += bytes;
    m_items.push_back(std::move(msg));
    m_not_empty.notify_one();
  }

  Msg pop() {
    std::unique_lock lock(m_mutex);
    m_not_empty.wait(lock, [&] { return !m_items.empty(); });
    Msg msg = std::move(m_items.front());
    m_items.pop_front();
    m_bytes -= std::min(m_bytes, bytes_of(msg));
    m_not_full.notify_all();
    return msg;
  }

  /** Writer gave up: producers stop blocking; their messages are dropped. */
  void close() {
    std::lock_guard lock(m_mutex);
    m_closed = true;
    // Drop the work, but not the workers' "done" sentinels the writer still waits for.
    std::erase_if(m_items, [](const Msg &m) { return !std::holds_alternative<MsgWorkerDone>(m); });
    m_bytes = 0;
    m_not_full.notify_all();
  }
  [[nodiscard]] bool closed() {
    std::lock_guard lock(m_mutex);
    return m_closed;
  }
  /** For the final sentinel after close(): always enqueued. */
  void push_always(Msg &&msg) {
    std::lock_guard lock(m_mutex);
    m_items.push_back(std::move(msg));
    m_not_empty.notify_one();
  }

private:
  std::size_t m_capacity;
  std::size_t m_max_bytes;
  std::size_t m_bytes = 0;
  std::mutex m_mutex;
  std::condition_variable m_not_full;
  std::condition_variable m_not_empty;
  std::deque<Msg> m_items;
  bool m_closed = false;
};

} // namespace maildsar::index::pipeline
