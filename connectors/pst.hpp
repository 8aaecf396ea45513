// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"

#include <memory>

namespace maildsar::connectors {

/** Creates the pst connector for a configured source (type "pst"). */
[[nodiscard]] core::Result<std::unique_ptr<Connector>>
make_pst_connector(const core::SourceConfig &source);

} // namespace maildsar::connectors
