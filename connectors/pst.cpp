// SPDX-License-Identifier: GPL-3.0-or-later
// PLACEHOLDER: replaced by the pst connector implementation.
#include "connectors/pst.hpp"

namespace maildsar::connectors {

core::Result<std::unique_ptr<Connector>> make_pst_connector(const core::SourceConfig &source) {
  return core::fail(core::ErrorCode::config, "source " + source.name + ": pst is not built yet");
}

} // namespace maildsar::connectors
