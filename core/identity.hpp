// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace maildsar::core {

/** An OS account: what the kernel says runs a process, not what the environment claims. */
struct OsUser {
  std::uint32_t uid = 0;
  std::string name; // the passwd name of uid; "uid<N>" when it has none
};

/**
 * The OS account running this process: the real uid (getuid) and its passwd name. Never $USER
 * or $LOGNAME, which anyone can set.
 */
[[nodiscard]] OsUser current_os_user();

/** True when the process runs with effective uid 0: it could become any account anyway. */
[[nodiscard]] bool effective_root();

/** Whether the OS account may name another person with `--operator`. */
enum class MayActForOthers { no, yes };

/** Who runs a command: the operator's name (as the audit log and four-eyes check compare it)
    and the OS account that really ran it. */
struct OperatorIdentity {
  std::string name; // normalise_operator(): trimmed, ASCII case-folded
  OsUser os;
  bool acting_for_other = false; // name is not the OS account's own name
};

/**
 * Resolves `--operator` (nullopt when not given) against the OS account. Without it the
 * operator is the OS account. With it, it may only restate the OS account's name (case and
 * outer spaces aside) unless `may` is yes (config `erasure.act_for_others` names the account,
 * or the process runs as root, which could become any account anyway).
 * @errors ErrorCode::usage for an empty name or another person's name without the right.
 */
[[nodiscard]] Result<OperatorIdentity> resolve_operator(const std::optional<std::string> &requested,
                                                        const OsUser &os, MayActForOthers may);

/** True when `os` is named in `act_for_others` (exact OS account names). */
[[nodiscard]] bool named_to_act_for_others(const OsUser &os, const std::vector<std::string> &act_for_others);

} // namespace maildsar::core
