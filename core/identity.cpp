// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/identity.hpp"

#include "core/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <pwd.h>
#include <unistd.h>
#include <vector>

namespace maildsar::core {

OsUser current_os_user() {
  OsUser u;
  u.uid = static_cast<std::uint32_t>(::getuid());
  // getpwuid_r: no shared static buffer.
  long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? static_cast<std::size_t>(hint) : 16384U);
  passwd pw{};
  passwd *found = nullptr;
  if (::getpwuid_r(static_cast<uid_t>(u.uid), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr &&
      found->pw_name != nullptr && *found->pw_name != '\0') {
    u.name = found->pw_name;
  } else {
    u.name = fmt::format("uid{}", u.uid);
  }
  return u;
}

bool effective_root() { return ::geteuid() == 0; }

bool named_to_act_for_others(const OsUser &os, const std::vector<std::string> &act_for_others) {
  return std::ranges::find(act_for_others, os.name) != act_for_others.end();
}

Result<OperatorIdentity> resolve_operator(const std::optional<std::string> &requested, const OsUser &os,
                                          MayActForOthers may) {
  OperatorIdentity id;
  id.os = os;
  id.name = normalise_operator(requested ? *requested : os.name);
  if (id.name.empty()) {
    return fail(ErrorCode::usage, "--operator: the operator's name is empty",
                "leave --operator out to act as your OS login, or name yourself: --operator NAME");
  }
  id.acting_for_other = id.name != normalise_operator(os.name);
  if (id.acting_for_other && may == MayActForOthers::no) {
    return fail(ErrorCode::usage,
                fmt::format("--operator {}: this command runs as OS user '{}', and --operator may only "
                            "restate who runs it",
                            id.name, os.name),
                fmt::format("log in as {} and run it there; or, for a service account that acts for "
                            "people, name it in the config: \"erasure\": {{\"act_for_others\": [\"{}\"]}}",
                            id.name, os.name));
  }
  return id;
}

} // namespace maildsar::core
