// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Folders of loose messages (issue 17, source type "emlfolder"): exports, legal holds, ticket
// systems' message stores. Read like a quarantine of the plain layout (connectors/quarantine.cpp
// holds the reader): every regular file below the source's root, recursively and whatever its
// name (.eml, none, numbers), is one RFC 822 message; a file that begins with "From " is an mbox
// (one item per message, with offset and length); a gzip file is read decompressed. Dotfiles are
// skipped, symbolic links and special files reported and skipped, files larger than
// limits.max_item_mib read from their first bytes (the item says so). Items are of store kind
// "emlfolder"; erasure removes a message file (temp-free unlink after a SHA-256 check) and
// rewrites an mbox file without the erased ranges, as for a quarantine.

#include "connectors/connector.hpp"
#include "core/result.hpp"

#include <memory>

namespace maildsar::connectors {

/**
 * Creates the connector of a configured source of type "emlfolder" (no format).
 * @errors ErrorCode::config when the source names a format.
 */
[[nodiscard]] core::Result<std::unique_ptr<Connector>> make_emlfolder_connector(const core::SourceConfig &source);

} // namespace maildsar::connectors
