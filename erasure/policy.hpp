// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * Holds (config) and exemptions (the per-request policy file, copied into the manifest): what
 * protects an item from erasure. Internal to erasure/: `plan` decides with it, and `erase`
 * checks it again at execution time (a hold added after approval, a copy of a message that an
 * exemption covers). Holds and exemptions always win.
 */
#include "core/config.hpp"
#include "core/result.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace maildsar::erasure {

/** A per-request exemption from the policy file (Art. 17(3)). */
struct Exemption {
  std::string source;      // "" = any
  std::string id;          // "" = any
  std::string path_prefix; // "" = any
  std::string reason;
  std::string until;
};

struct Policy {
  nlohmann::json raw = nlohmann::json::object();
  std::vector<Exemption> exemptions;
};

/** Why an item may not be changed: "hold: <reason>" or "exemption: <reason>", and until when. */
struct Protection {
  std::string reason;
  std::string until; // YYYY-MM-DD, "" = indefinite
};

/** Reads and checks a policy file; an empty path is the empty policy. ErrorCode::data when bad. */
[[nodiscard]] core::Result<Policy> load_policy(const std::string &path);
/** Checks a policy already parsed (the copy a manifest carries); `where` names it in errors. */
[[nodiscard]] core::Result<Policy> parse_policy(const nlohmann::json &raw, const std::string &where);

/** The hold of `config` that covers `source` on `today` (YYYY-MM-DD), if any. */
[[nodiscard]] std::optional<Protection> hold_for(const core::Config &config, const std::string &source,
                                                 const std::string &today);

/**
 * What protects the item (`id` may be empty when the file is not a planned item, e.g. another
 * copy of a message): a hold first, then an exemption. nullopt = nothing protects it.
 */
[[nodiscard]] std::optional<Protection> protection_for(const core::Config &config, const Policy &policy,
                                                       const std::string &source, const std::string &id,
                                                       const std::string &path, const std::string &today);

/** True for a YYYY-MM-DD shaped date. */
[[nodiscard]] bool valid_date(const std::string &date);
/** Today's date in UTC, YYYY-MM-DD. */
[[nodiscard]] std::string today_utc();

} // namespace maildsar::erasure
