// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/item.hpp"
#include "core/config.hpp"
#include "core/fs.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace maildsar::connectors {

/** One file a source covers. */
struct FileEntry {
  std::string path;   // absolute
  std::string folder; // store-specific grouping (maildir sub-folder), may be empty
  std::string owner;  // owner address from the source's owner template, may be empty
  core::FileStat stat;
  std::string mark = {}; // maildir: "" (cur/, new/), "stray" or "tmp" (see Locator::mark)
};

/** Why a file under a source is not an item (counted in the index summary, not an error). */
enum class SkipReason {
  dotfile,     // a hidden file: .keep, .gitkeep, .uidvalidity, .mbsyncstate, ...
  mua_file,    // state of a mail server or client: dovecot-uidlist, dovecot.index*,
               // courierimapuiddb, maildirsize, maildirfolder, subscriptions, .notmuch/ ...
  not_message, // a loose or tmp/ file that is no mail message (empty, binary, no header)
  directory,   // a directory inside cur/, new/ or tmp/
  in_delivery, // a tmp/ file younger than 36 hours: a delivery in progress
  outside_folder, // a file in a folder that is no Maildir folder (no cur/, new/, tmp/)
};
inline constexpr std::size_t k_skip_reason_count =
    static_cast<std::size_t>(SkipReason::outside_folder) + 1;

/** "dotfile", "mua-file", "not-message", "directory", "in-delivery", "outside-folder". */
[[nodiscard]] std::string_view to_string(SkipReason reason);
[[nodiscard]] std::optional<SkipReason> skip_reason_from_string(std::string_view name);

/** A problem with one file or one item: reported, counted, and the scan goes on. */
struct ScanError {
  std::string path;
  std::string position; // "offset 1234", "line 17", "" if the whole file
  std::string cause;
};

/** See Connector::layout_fingerprint. */
struct LayoutDigest {
  std::string digest;
  bool settled = false;
};

/** Receives what a scan finds. Implementations used from worker threads must be thread-safe. */
class ItemSink {
public:
  virtual ~ItemSink() = default;
  virtual void item(Item &&item) = 0;
  virtual void error(ScanError &&error) = 0;
  /** A file met while listing that is deliberately not an item (see SkipReason). Sinks that
      do not count them ignore it. */
  virtual void skipped(const std::string & /*path*/, SkipReason /*reason*/) {}
};

/** A thread-safe sink that keeps every item and error (rescans, checks and tests). */
class ItemCollector : public ItemSink {
public:
  void item(Item &&item) override {
    std::lock_guard lock(m_mutex);
    items.push_back(std::move(item));
  }
  void error(ScanError &&error) override {
    std::lock_guard lock(m_mutex);
    errors.push_back(std::move(error));
  }
  void skipped(const std::string &path, SkipReason reason) override {
    std::lock_guard lock(m_mutex);
    skips.emplace_back(path, reason);
  }
  std::vector<Item> items;
  std::vector<ScanError> errors;
  std::vector<std::pair<std::string, SkipReason>> skips;

private:
  std::mutex m_mutex;
};

/** Reads one store kind into Items. Every method may be called from several threads at once. */
class Connector {
public:
  virtual ~Connector() = default;

  [[nodiscard]] virtual StoreKind kind() const = 0;

  /**
   * Lists the files the source covers. Files that are skipped on purpose (symlinks, files that
   * escape the source root, unreadable directories) are reported through `errors`.
   */
  [[nodiscard]] virtual core::Result<std::vector<FileEntry>> list_files(ItemSink &errors) const = 0;

  /**
   * The files list_files() returns, handed to `each` one by one as they are found, so that a
   * caller need not hold a listing of hundreds of thousands of files (the indexer's first index
   * of a large Maildir: docs/performance.md "A million items"). `each` runs on the calling
   * thread. A returned error means the listing as a whole failed; `each` may have seen files
   * before it. The default lists them all first.
   */
  [[nodiscard]] virtual core::Status each_file(ItemSink &errors,
                                               const std::function<void(FileEntry &&)> &each) const {
    MAILDSAR_TRY_ASSIGN(std::vector<FileEntry> files, list_files(errors));
    for (FileEntry &file : files) {
      each(std::move(file));
    }
    return {};
  }

  /**
   * Scans one file into items. `from_offset` > 0 asks for the part appended since an earlier
   * scan that ended there (only when supports_append() is true); a connector that finds that
   * the offset is not an item boundary returns ErrorCode::data so the caller rescans from 0.
   * Problems inside the file go to sink.error and the scan continues; a returned error means the
   * file as a whole could not be read.
   */
  [[nodiscard]] virtual core::Status scan(const FileEntry &file, std::uint64_t from_offset,
                                          ItemSink &sink) const = 0;

  /** True when a file of this store only grows (mbox, logs) and can be scanned from an offset. */
  [[nodiscard]] virtual bool supports_append() const { return false; }

  /**
   * A digest of the source's directory layout — every folder's identity and mtime — for stores
   * whose files are never changed in place, only added, removed or renamed (Maildir). Two equal
   * digests mean no file was added, removed or renamed in between, so a re-index may skip the
   * per-file stat() calls (as notmuch and mu do). `settled` is false when a folder was modified
   * so recently (2 s) that a change within the same clock tick could still go unseen. An empty
   * optional means "cannot tell" (not supported, a symlink or unreadable folder in the tree):
   * the caller then lists the files.
   */
  [[nodiscard]] virtual core::Result<std::optional<LayoutDigest>> layout_fingerprint() const {
    return std::optional<LayoutDigest>();
  }
};

/** Creates the connector for a configured source; ErrorCode::config for an unknown type/format. */
[[nodiscard]] core::Result<std::unique_ptr<Connector>> make_connector(const core::SourceConfig &source);

/** "GMime 3.2.13, libpst 0.6.76" — the decoding libraries this build uses (for --version). */
[[nodiscard]] std::string library_versions();

} // namespace maildsar::connectors
