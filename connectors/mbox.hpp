// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"

#include <memory>

namespace maildsar::connectors {

/** Creates the mbox connector for a configured source (type "mbox"). */
[[nodiscard]] core::Result<std::unique_ptr<Connector>>
make_mbox_connector(const core::SourceConfig &source);

} // namespace maildsar::connectors
