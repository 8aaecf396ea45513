// SPDX-License-Identifier: GPL-3.0-or-later
// PLACEHOLDER: replaced by the quarantine connector implementation.
#include "connectors/quarantine.hpp"

namespace maildsar::connectors {

core::Result<std::unique_ptr<Connector>> make_quarantine_connector(const core::SourceConfig &source) {
  return core::fail(core::ErrorCode::config, "source " + source.name + ": quarantine is not built yet");
}

} // namespace maildsar::connectors
