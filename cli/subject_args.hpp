// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/config.hpp"
#include "core/result.hpp"
#include "query/query.hpp"

#include <boost/program_options.hpp>

namespace maildsar::cli {

/**
 * The SUBJECT of a command from --subject FILE and/or --email/--name/--phone/--ip/--request.
 * ErrorCode::usage when nothing identifies the subject. With --request alone the identifiers
 * are left empty: resolve_request() takes them from the register.
 */
[[nodiscard]] core::Result<query::SubjectProfile>
subject_from_args(const boost::program_options::variables_map &vm);

/** The subject of a casework step once the register was consulted. */
struct StepSubject {
  query::SubjectProfile subject;
  bool registered = false; // the request is in the register (and the subject came from it)
};

/**
 * Takes the subject of `--request ID` from the register (issue 16): an open request becomes
 * in-progress. Without --request, or with an id the register does not know but identifiers on
 * the command line (a free-text request id, as before the register), `given` is returned.
 * @errors no_input: --request names no registered request and no identifier is given;
 *         usage: identifiers given as well as a registered request (the register holds the
 *         subject); data: the request's identifiers were purged.
 */
[[nodiscard]] core::Result<StepSubject> resolve_request(const core::Config &config, query::SubjectProfile given,
                                                        std::string_view operator_name);

/**
 * approve/erase --request ID: the id must be in the register and be the manifest's request.
 * @errors no_input (unknown id), data (the manifest belongs to another request).
 */
[[nodiscard]] core::Status check_manifest_request(const core::Config &config, std::string_view id,
                                                  std::string_view manifest_request, std::string_view operator_name);

} // namespace maildsar::cli
