// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"

#include <memory>

namespace maildsar::connectors {

/** Creates the quarantine connector for a configured source (type "quarantine"). */
[[nodiscard]] core::Result<std::unique_ptr<Connector>>
make_quarantine_connector(const core::SourceConfig &source);

} // namespace maildsar::connectors
