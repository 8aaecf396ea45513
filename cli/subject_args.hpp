// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/result.hpp"
#include "query/query.hpp"

#include <boost/program_options.hpp>

namespace maildsar::cli {

/**
 * The SUBJECT of a command from --subject FILE and/or --email/--name/--phone/--ip/--request.
 * ErrorCode::usage when nothing identifies the subject.
 */
[[nodiscard]] core::Result<query::SubjectProfile>
subject_from_args(const boost::program_options::variables_map &vm);

} // namespace maildsar::cli
