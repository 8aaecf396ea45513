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

#include <map>
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

/** What erase does with a whole message the subject appears in (issue 18 item 3). */
enum class MessageRule {
  erase, // "delete": the message goes
  redact // "redact": the message stays with the subject masked in it
};

/**
 * The message policy: a rule per role the subject has in a message — `owner` (the mailbox is
 * the subject's), the roles of `find` ("from", "to", "cc", "bcc", "body", "attachment-body",
 * "received", ...) and `default` for roles not named; keys may join roles with '|'
 * ("to|cc|bcc"). For one message: its mailbox is the subject's and `owner` is named -> that
 * rule; else the strictest rule over the subject's roles in it (delete before redact).
 * Today's behaviour, the built-in policy, is {"default": "delete"}.
 */
struct MessagePolicy {
  nlohmann::json raw = nlohmann::json{{"default", "delete"}};
  std::map<std::string, MessageRule> by_key{{"default", MessageRule::erase}}; // "owner", a role, "default"

  /** The rule for a message in which the subject has `roles`; `why` names the key(s) used. */
  [[nodiscard]] MessageRule decide(const std::vector<std::string> &roles, std::string &why) const;
};

/** Checks a message policy (an object of "role|role" -> "delete"|"redact"); `where` names it. */
[[nodiscard]] core::Result<MessagePolicy> parse_message_policy(const nlohmann::json &raw, const std::string &where);

/** The message policy a plan uses: the request's (`request_policy`, its "messages"), else the
    config's erasure.message_policy, else the built-in {"default": "delete"}. */
[[nodiscard]] core::Result<MessagePolicy> effective_message_policy(const core::Config &config,
                                                                   const nlohmann::json &request_policy);

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
