// SPDX-License-Identifier: GPL-3.0-or-later
// The PST/OST connector: lists a source's PST/OST files and scans each whole with scan_pst_file
// (pst_worker.cpp: libpst runs in the maildsar-worker process). The reader the worker runs is in
// connectors/pst/: scan.cpp walks the file's folders, extractor.cpp and attachments.cpp turn an
// item into an Item, text.cpp makes its strings plain UTF-8; pst_export.cpp renders items.
#include "connectors/pst.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace maildsar::connectors {

namespace {

class PstConnector final : public Connector {
public:
  explicit PstConnector(core::SourceConfig source) : m_source(std::move(source)) {}

  [[nodiscard]] StoreKind kind() const override { return StoreKind::pst; }

  [[nodiscard]] core::Result<std::vector<FileEntry>> list_files(ItemSink &errors) const override {
    auto matches = core::expand_glob(m_source.path);
    if (!matches) {
      return std::unexpected(matches.error().with_context("source " + m_source.name + ": "));
    }
    std::vector<FileEntry> files;
    for (auto &match : *matches) {
      auto st = core::lstat_file(match.path);
      if (!st) {
        errors.error(ScanError{match.path, "", st.error().message});
        continue;
      }
      auto mode = static_cast<mode_t>(st->mode);
      if (S_ISLNK(mode)) {
        errors.error(ScanError{match.path, "", "symbolic link; skipped (not followed)"});
        continue;
      }
      if (S_ISDIR(mode)) {
        continue; // a directory matched the pattern: not a store file
      }
      if (!S_ISREG(mode)) {
        errors.error(ScanError{match.path, "", "not a regular file; skipped"});
        continue;
      }
      if (!m_source.root.empty() && !inside_root(match.path)) {
        errors.error(ScanError{match.path, "",
                               fmt::format("outside the source root {}; skipped", m_source.root)});
        continue;
      }
      FileEntry entry;
      entry.path = match.path;
      if (!m_source.owner.empty()) {
        entry.owner = core::expand_owner(m_source.owner, match.captures);
      }
      entry.stat = *st;
      files.push_back(std::move(entry));
    }
    return files;
  }

  [[nodiscard]] core::Status scan(const FileEntry &file, std::uint64_t from_offset,
                                  ItemSink &sink) const override {
    if (from_offset != 0) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("pst {}: PST files are always scanned whole", file.path));
    }
    auto stats = scan_pst_file(m_source.name, file.path, sink);
    if (!stats) {
      return std::unexpected(stats.error());
    }
    return {};
  }

private:
  [[nodiscard]] bool inside_root(const std::string &path) const {
    std::error_code ec;
    auto parent = std::filesystem::weakly_canonical(std::filesystem::path(path).parent_path(), ec);
    auto root = std::filesystem::weakly_canonical(m_source.root, ec);
    if (ec) {
      return false;
    }
    auto rel = parent.lexically_relative(root);
    return !rel.empty() && *rel.begin() != "..";
  }

  core::SourceConfig m_source;
};

} // namespace

core::Result<std::unique_ptr<Connector>> make_pst_connector(const core::SourceConfig &source) {
  if (source.path.empty()) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': pst needs a path", source.name));
  }
  return std::unique_ptr<Connector>(std::make_unique<PstConnector>(source));
}

} // namespace maildsar::connectors
