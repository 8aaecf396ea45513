// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"

#include <memory>

namespace maildsar::connectors {

/** Creates the maillog connector for a configured source (type "maillog"). */
[[nodiscard]] core::Result<std::unique_ptr<Connector>>
make_maillog_connector(const core::SourceConfig &source);

} // namespace maildsar::connectors
