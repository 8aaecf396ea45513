// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/connector.hpp"

#include "connectors/archive.hpp"
#include "connectors/emlfolder.hpp"
#include "connectors/libarchive.hpp"
#include "connectors/maildir.hpp"
#include "connectors/maillog.hpp"
#include "connectors/mbox.hpp"
#include "connectors/mta_queue.hpp"
#include "connectors/pst.hpp"
#include "connectors/quarantine.hpp"

#include <fmt/format.h>
#include <gmime/gmime.h>

#include <array>
#include <exception>

namespace maildsar::connectors {

namespace {
constexpr std::array<std::string_view, k_skip_reason_count> k_skip_names{
    "dotfile", "mua-file", "not-message", "directory", "in-delivery", "outside-folder"};
} // namespace

std::string_view to_string(SkipReason reason) {
  return k_skip_names.at(static_cast<std::size_t>(reason));
}

std::optional<SkipReason> skip_reason_from_string(std::string_view name) {
  for (std::size_t i = 0; i < k_skip_names.size(); ++i) {
    if (k_skip_names[i] == name) {
      return static_cast<SkipReason>(i);
    }
  }
  return std::nullopt;
}

core::Result<std::unique_ptr<Connector>> make_connector(const core::SourceConfig &source) {
  auto kind = store_kind_from_string(source.type);
  if (!kind) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': unknown type '{}'", source.name, source.type),
                      "types are maildir, mbox, pst, quarantine, maillog, emlfolder, postfix-queue, exim-spool and archive");
  }
  switch (*kind) {
  case StoreKind::maildir:
    return make_maildir_connector(source);
  case StoreKind::mbox:
    return make_mbox_connector(source);
  case StoreKind::pst:
    return make_pst_connector(source);
  case StoreKind::quarantine:
    return make_quarantine_connector(source);
  case StoreKind::maillog:
    return make_maillog_connector(source);
  case StoreKind::emlfolder:
    return make_emlfolder_connector(source);
  case StoreKind::postfix_queue:
  case StoreKind::exim_spool:
    return make_mta_queue_connector(source);
  case StoreKind::archive:
    return make_archive_connector(source);
  }
  return core::fail(core::ErrorCode::internal, "unreachable store kind");
}

std::string library_versions() {
  std::string archive;
  try {
    archive = la().archive_version_string();
  } catch (const std::exception &e) { // --version is where a broken installation is looked into
    archive = std::string("libarchive not loadable: ") + e.what();
  }
  return fmt::format("GMime {}.{}.{} (runtime), libpst {}, {}", gmime_major_version, gmime_minor_version,
                     gmime_micro_version, MAILDSAR_LIBPST_VERSION, archive);
}

} // namespace maildsar::connectors
