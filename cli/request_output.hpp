// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Shared by `request`, `status` and `retention`: the request object and the date options.

#include "casework/register.hpp"
#include "core/result.hpp"

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>

namespace maildsar::cli {

/** The request object (docs/schemata.md "maildsar.request"); subject and notes only for `show`. */
[[nodiscard]] nlohmann::json request_json(const casework::Request &r, casework::Date today, bool with_subject);
/** --today YYYY-MM-DD, else today's UTC date; ErrorCode::usage for a bad date. */
[[nodiscard]] core::Result<casework::Date> today_option(const boost::program_options::variables_map &vm);
/** --due-within as whole days ("7d", "2w"), else `fallback`; ErrorCode::usage otherwise. */
[[nodiscard]] core::Result<std::int64_t> due_within_days(const boost::program_options::variables_map &vm,
                                                         std::int64_t fallback);

} // namespace maildsar::cli
