// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// plan / approve / erase on a DPO host with `hosts` (issue 15; docs/deployment.md).

#include "cli/commands.hpp"
#include "cli/hosts.hpp"
#include "erasure/estate.hpp"

#include <string>

namespace maildsar::cli {

/**
 * `plan` across hosts: every host plans its own slice through its agent (in parallel); a host
 * that cannot be asked (unreachable, another protocol version, a stale index) is an error
 * naming it and no manifest is written, unless --allow-missing-host names it (the manifest then
 * lists it under not_searched). The DPO host's own sources, if its config has any, are a slice
 * named "local", planned in this process exactly as an agent plans its host's. `options` are
 * the plan request's fields besides subject and operator ("pst", "today", "policy" the policy
 * object, "resurrected"), sent to every host as they are. Writes the estate manifest to
 * `out_path` and a DPO audit record.
 * @return 0, or 1 (a host not searched; a host found items changed since they were indexed).
 */
[[nodiscard]] core::Result<int> plan_across_hosts(Context &ctx, const core::Config &config,
                                                  query::SubjectProfile subject, const std::string &out_path,
                                                  const nlohmann::json &options);

/** `approve` of an estate manifest (--show lists it per host; --sign-key signs its hash). */
[[nodiscard]] core::Result<int> approve_across_hosts(Context &ctx, const core::Config &config,
                                                     const erasure::EstateManifest &manifest);

/**
 * `erase` of an estate manifest: each host's agent gets the binding, its slice and the DPO
 * host's approvals, checks them itself and erases its slice (in parallel). One `erase-host`
 * audit record per host's result.
 * @return 0; 65 when a host refused (its slice or the approvals); 1 when a host could not be
 *         reached or its session broke (run again: it resumes), or items failed or were stale;
 *         75 when only temporary item failures remain.
 */
[[nodiscard]] core::Result<int> erase_across_hosts(Context &ctx, const core::Config &config,
                                                   const erasure::EstateManifest &manifest);

} // namespace maildsar::cli
