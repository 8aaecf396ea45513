// SPDX-License-Identifier: GPL-3.0-or-later
// Holds and exemptions: what protects an item from erasure (plan decides, erase re-checks).
#include "erasure/policy.hpp"

#include "connectors/item.hpp"
#include "core/fs.hpp"
#include "core/time.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <ctime>

namespace maildsar::erasure {

using nlohmann::json;

bool valid_date(const std::string &d) {
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') {
    return false;
  }
  for (std::size_t i : {0U, 1U, 2U, 3U, 5U, 6U, 8U, 9U}) {
    if (d[i] < '0' || d[i] > '9') {
      return false;
    }
  }
  return true;
}

std::string today_utc() { return core::format_utc(std::time(nullptr), "%Y-%m-%d"); }

core::Result<Policy> parse_policy(const json &raw, const std::string &where_file) {
  Policy p;
  p.raw = raw;
  if (!p.raw.is_object()) {
    return core::fail(core::ErrorCode::data, fmt::format("policy {}: must be a JSON object", where_file));
  }
  for (const auto &[key, value] : p.raw.items()) {
    if (key != "exemptions" && key != "messages") {
      return core::fail(core::ErrorCode::data, fmt::format("policy {}: unknown key '{}'", where_file, key),
                        "allowed keys: exemptions, messages");
    }
  }
  if (auto messages = p.raw.find("messages"); messages != p.raw.end()) {
    MAILDSAR_TRY(parse_message_policy(*messages, fmt::format("policy {}: messages", where_file)));
  }
  auto it = p.raw.find("exemptions");
  if (it == p.raw.end()) {
    return p;
  }
  if (!it->is_array()) {
    return core::fail(core::ErrorCode::data, fmt::format("policy {}: 'exemptions' must be an array", where_file));
  }
  std::size_t i = 0;
  for (const json &e : *it) {
    std::string where = fmt::format("policy {}: exemptions[{}]", where_file, i++);
    if (!e.is_object()) {
      return core::fail(core::ErrorCode::data, where + " must be an object");
    }
    Exemption ex;
    for (const auto &[key, value] : e.items()) {
      if (!value.is_string()) {
        return core::fail(core::ErrorCode::data, fmt::format("{}: '{}' must be a string", where, key));
      }
      const std::string v = value.get<std::string>();
      if (key == "source") {
        ex.source = v;
      } else if (key == "id") {
        ex.id = v;
      } else if (key == "path_prefix") {
        ex.path_prefix = v;
      } else if (key == "reason") {
        ex.reason = v;
      } else if (key == "until") {
        ex.until = v;
      } else {
        return core::fail(core::ErrorCode::data, fmt::format("{}: unknown key '{}'", where, key),
                          "allowed keys: source, id, path_prefix, reason, until");
      }
    }
    if (ex.reason.empty()) {
      return core::fail(core::ErrorCode::data,
                        where + ": 'reason' is required (e.g. \"Art. 17(3)(e) legal claims\")");
    }
    if (!ex.until.empty() && !valid_date(ex.until)) {
      return core::fail(core::ErrorCode::data, fmt::format("{}: until '{}' must be YYYY-MM-DD", where, ex.until));
    }
    if (ex.source.empty() && ex.id.empty() && ex.path_prefix.empty()) {
      return core::fail(core::ErrorCode::data, where + ": name a source, an id or a path_prefix");
    }
    p.exemptions.push_back(std::move(ex));
  }
  return p;
}

core::Result<MessagePolicy> parse_message_policy(const json &raw, const std::string &where) {
  if (!raw.is_object() || raw.empty()) {
    return core::fail(core::ErrorCode::data, where + ": must be an object of rules, e.g. "
                                                     "{\"owner|from\": \"delete\", \"default\": \"redact\"}");
  }
  MessagePolicy policy;
  policy.raw = raw;
  policy.by_key.clear();
  for (const auto &[key, value] : raw.items()) {
    if (!value.is_string() || (value.get<std::string>() != "delete" && value.get<std::string>() != "redact")) {
      return core::fail(core::ErrorCode::data, fmt::format("{}: '{}' must be \"delete\" or \"redact\"", where, key));
    }
    const MessageRule rule = value.get<std::string>() == "delete" ? MessageRule::erase : MessageRule::redact;
    std::size_t begin = 0;
    while (begin <= key.size()) {
      std::size_t end = key.find('|', begin);
      if (end == std::string::npos) {
        end = key.size();
      }
      std::string role = key.substr(begin, end - begin);
      while (!role.empty() && role.front() == ' ') {
        role.erase(0, 1);
      }
      while (!role.empty() && role.back() == ' ') {
        role.pop_back();
      }
      if (role != "default" && !connectors::role_from_string(role)) {
        return core::fail(core::ErrorCode::data, fmt::format("{}: '{}' is not a role", where, role),
                          "use owner, default, or a role of `find` (from, to, cc, bcc, body, attachment-body, "
                          "attachment-name, subject, received, reply-to, sender, header, ...)");
      }
      if (!policy.by_key.emplace(role, rule).second) {
        return core::fail(core::ErrorCode::data, fmt::format("{}: '{}' is named twice", where, role));
      }
      begin = end + 1;
    }
  }
  if (!policy.by_key.contains("default")) {
    policy.by_key.emplace("default", MessageRule::erase); // unnamed roles keep today's behaviour
  }
  return policy;
}

MessageRule MessagePolicy::decide(const std::vector<std::string> &roles, std::string &why) const {
  const auto rule_name = [](MessageRule r) { return r == MessageRule::erase ? "delete" : "redact"; };
  if (std::ranges::find(roles, "owner") != roles.end()) {
    if (auto it = by_key.find("owner"); it != by_key.end()) {
      why = fmt::format("the mailbox is the subject's: policy owner = {}", rule_name(it->second));
      return it->second;
    }
  }
  const auto rule_of = [&](const std::string &role) {
    auto it = by_key.find(role);
    return it != by_key.end() ? it->second : by_key.at("default");
  };
  MessageRule rule = roles.empty() ? by_key.at("default") : MessageRule::redact;
  for (const std::string &role : roles) {
    if (rule_of(role) == MessageRule::erase) {
      rule = MessageRule::erase; // the strictest rule wins
    }
  }
  std::vector<std::string> deciding; // the roles that give the rule
  for (const std::string &role : roles) {
    std::string label = by_key.contains(role) ? role : role + " (default)";
    if (rule_of(role) == rule && std::ranges::find(deciding, label) == deciding.end()) {
      deciding.push_back(std::move(label));
    }
  }
  if (deciding.empty()) {
    deciding.emplace_back("no role (default)");
  }
  why = fmt::format("the subject is in {}: policy = {}", fmt::join(deciding, ", "), rule_name(rule));
  return rule;
}

core::Result<MessagePolicy> effective_message_policy(const core::Config &config, const json &request_policy) {
  if (request_policy.is_object()) {
    if (auto it = request_policy.find("messages"); it != request_policy.end()) {
      return parse_message_policy(*it, "the request's policy: messages");
    }
  }
  if (!config.erasure.message_policy.empty()) {
    json raw = json::object();
    for (const auto &[key, value] : config.erasure.message_policy) {
      raw[key] = value;
    }
    auto parsed = parse_message_policy(raw, config.file + ": erasure.message_policy");
    if (!parsed) {
      core::Error e = parsed.error();
      e.code = core::ErrorCode::config;
      return std::unexpected(e);
    }
    return parsed;
  }
  return MessagePolicy{};
}

core::Result<Policy> load_policy(const std::string &path) {
  if (path.empty()) {
    return Policy{};
  }
  MAILDSAR_TRY_ASSIGN(std::string text, core::read_file(path, 16ULL << 20));
  json raw;
  try {
    raw = json::parse(text, nullptr, true, true);
  } catch (const json::exception &e) {
    return core::fail(core::ErrorCode::data, fmt::format("policy {}: invalid JSON: {}", path, e.what()));
  }
  return parse_policy(raw, path);
}

std::optional<Protection> hold_for(const core::Config &config, const std::string &source, const std::string &today) {
  for (const core::Hold &h : config.holds) {
    if (h.source == source && (h.until.empty() || h.until >= today)) {
      return Protection{"hold: " + h.reason, h.until};
    }
  }
  return std::nullopt;
}

std::optional<Protection> protection_for(const core::Config &config, const Policy &policy, const std::string &source,
                                         const std::string &id, const std::string &path, const std::string &today) {
  if (auto hold = hold_for(config, source, today)) {
    return hold;
  }
  for (const Exemption &e : policy.exemptions) {
    if ((e.source.empty() || e.source == source) && (e.id.empty() || e.id == id) &&
        (e.path_prefix.empty() || path.starts_with(e.path_prefix)) && (e.until.empty() || e.until >= today)) {
      return Protection{"exemption: " + e.reason, e.until};
    }
  }
  return std::nullopt;
}

} // namespace maildsar::erasure
