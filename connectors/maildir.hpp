// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace maildsar::connectors {

/** A file in a Maildir's tmp/ older than this is an abandoned delivery (the Maildir spec's
    36 hours), and an item; a younger one is a delivery in progress and is not touched. */
inline constexpr std::int64_t k_maildir_tmp_age_seconds = 36 * 3600;

/** The folder of a Maildir item's file: the directory holding its cur/, new/ and tmp/ (for a
    stray file the directory it lies in). */
[[nodiscard]] std::string maildir_folder_dir(const Locator &locator);

/** The Maildir a Maildir item belongs to: maildir_folder_dir() without the item's folder
    (".Sent", "foo/baz"). */
[[nodiscard]] std::string maildir_root(const Locator &locator);

/** Creates the maildir connector for a configured source (type "maildir"). */
[[nodiscard]] core::Result<std::unique_ptr<Connector>>
make_maildir_connector(const core::SourceConfig &source);

} // namespace maildsar::connectors
