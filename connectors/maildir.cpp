// SPDX-License-Identifier: GPL-3.0-or-later
// PLACEHOLDER: replaced by the maildir connector implementation.
#include "connectors/maildir.hpp"

namespace maildsar::connectors {

core::Result<std::unique_ptr<Connector>> make_maildir_connector(const core::SourceConfig &source) {
  return core::fail(core::ErrorCode::config, "source " + source.name + ": maildir is not built yet");
}

} // namespace maildsar::connectors
