// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"

#include <memory>

namespace maildsar::connectors {

/** Creates the maildir connector for a configured source (type "maildir"). */
[[nodiscard]] core::Result<std::unique_ptr<Connector>>
make_maildir_connector(const core::SourceConfig &source);

} // namespace maildsar::connectors
