// SPDX-License-Identifier: GPL-3.0-or-later
// PLACEHOLDER: replaced by the maillog connector implementation.
#include "connectors/maillog.hpp"

namespace maildsar::connectors {

core::Result<std::unique_ptr<Connector>> make_maillog_connector(const core::SourceConfig &source) {
  return core::fail(core::ErrorCode::config, "source " + source.name + ": maillog is not built yet");
}

} // namespace maildsar::connectors
