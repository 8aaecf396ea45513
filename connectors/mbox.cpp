// SPDX-License-Identifier: GPL-3.0-or-later
// PLACEHOLDER: replaced by the mbox connector implementation.
#include "connectors/mbox.hpp"

namespace maildsar::connectors {

core::Result<std::unique_ptr<Connector>> make_mbox_connector(const core::SourceConfig &source) {
  return core::fail(core::ErrorCode::config, "source " + source.name + ": mbox is not built yet");
}

} // namespace maildsar::connectors
