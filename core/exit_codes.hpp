// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

namespace maildsar::core {

/** Exit codes of the maildsar program (sysexits for fatal errors). docs/exit-codes.md. */
inline constexpr int k_exit_ok = 0;
/** The command ran and found a problem: items failed, verify found residue, tampering. */
inline constexpr int k_exit_problem = 1;
inline constexpr int k_exit_usage = 64;
inline constexpr int k_exit_data = 65;
inline constexpr int k_exit_no_input = 66;
/** EX_UNAVAILABLE: the index does not cover a configured source, so no answer can be given. */
inline constexpr int k_exit_unavailable = 69;
inline constexpr int k_exit_software = 70;
inline constexpr int k_exit_cant_create = 73;
inline constexpr int k_exit_io = 74;
inline constexpr int k_exit_temp_fail = 75;
inline constexpr int k_exit_permission = 77;
inline constexpr int k_exit_config = 78;

} // namespace maildsar::core
