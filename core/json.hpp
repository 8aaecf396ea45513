// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/result.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace maildsar::core {

enum class JsonComments { no, yes };

/**
 * Parses a JSON document that a person wrote (config, subject file), strictly: a key given
 * twice in one object is an error (nlohmann would let the last one silently win, e.g. a subject
 * file with two "emails" lists would lose the first), and so is a number out of range (1e400).
 * Errors are `code` with "<path>:<line>:<column>: <cause>".
 */
[[nodiscard]] Result<nlohmann::json> parse_json_strictly(std::string_view text, const std::string &path,
                                                         ErrorCode code, JsonComments comments);

/** line:column (1-based) of byte `offset` in `text`. */
[[nodiscard]] std::string json_position(std::string_view text, std::size_t offset);

} // namespace maildsar::core
