// SPDX-License-Identifier: GPL-3.0-or-later
#include "cli/hosts.hpp"

#include "remote/host_client.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace maildsar::cli {

namespace {

nlohmann::json subject_json(const query::SubjectProfile &s) {
  nlohmann::json j{{"emails", s.emails}, {"names", s.names}, {"phones", s.phones}, {"ips", s.ips}};
  if (!s.request.empty()) {
    j["request"] = s.request;
  }
  return j;
}

std::string age_words(std::int64_t seconds) {
  return seconds >= 2 * 86400 ? fmt::format("{}d", seconds / 86400)
         : seconds >= 7200    ? fmt::format("{}h", seconds / 3600)
                              : fmt::format("{}s", seconds);
}

/** One host: hello, status (stale is a failure), then find. Errors name the host. */
core::Status ask_host(const core::HostConfig &host, const query::SubjectProfile *subject, std::string_view operator_name,
                      HostOutcome &out) {
  MAILDSAR_TRY_ASSIGN(remote::HostClient client, remote::HostClient::connect(host));
  out.agent_host = client.hello().host;
  MAILDSAR_TRY_ASSIGN(nlohmann::json status, client.request({{"op", "status"}}));
  if (auto m = status.find("max_index_age_seconds"); m != status.end() && m->is_number_integer()) {
    out.max_index_age_seconds = m->get<std::int64_t>();
  }
  if (auto a = status.find("index_age_seconds"); a != status.end() && a->is_number_integer()) {
    out.index_age_seconds = a->get<std::int64_t>();
  }
  const auto stale = status.find("stale");
  if (stale == status.end() || !stale->is_boolean()) {
    return core::fail(core::ErrorCode::data, fmt::format("host {}: its status has no \"stale\" flag", host.name));
  }
  out.reachable = true;
  out.stale = stale->get<bool>();
  if (out.stale) {
    std::string which;
    if (auto sources = status.find("sources"); sources != status.end() && sources->is_array()) {
      for (const auto &s : *sources) {
        if (s.is_object() && s.value("stale", false) && s.contains("name") && s["name"].is_string()) {
          which += fmt::format("{}{}", which.empty() ? "" : ", ", s["name"].get<std::string>().substr(0, 64));
        }
      }
    }
    return core::fail(core::ErrorCode::temp_fail,
                      fmt::format("host {}: its index is stale (sources {}; {} max_index_age {})", host.name,
                                  which.empty() ? "?" : which,
                                  out.index_age_seconds ? "oldest indexed " + age_words(*out.index_age_seconds) + " ago,"
                                                        : "never indexed,",
                                  age_words(out.max_index_age_seconds)),
                      fmt::format("run `maildsar index` on {} (its timer?), or name it with --allow-missing-host", host.name));
  }
  if (subject != nullptr) {
    MAILDSAR_TRY_ASSIGN(nlohmann::json found, client.request({{"op", "find"},
                                                              {"subject", subject_json(*subject)},
                                                              {"operator", std::string(operator_name)}}));
    const auto hits = found.find("hits");
    if (hits == found.end() || !hits->is_array() ||
        !std::ranges::all_of(*hits, [](const nlohmann::json &h) {
          return h.is_object() && h.contains("source") && h["source"].is_string() && h.contains("path") &&
                 h["path"].is_string();
        })) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("host {}: the answer to find has no list of hit objects", host.name));
    }
    if (auto p = found.find("partially_indexed"); p != found.end() && p->is_number_unsigned()) {
      out.partially_indexed = p->get<std::uint64_t>();
    }
    for (nlohmann::json &h : *hits) {
      h["host"] = host.name;
    }
    out.hits = std::move(*hits);
  }
  client.close();
  return {};
}

} // namespace

void add_host_options(boost::program_options::options_description &desc) {
  desc.add_options()("allow-missing-host", boost::program_options::value<std::vector<std::string>>()->composing(),
                     "go on without this configured host if it cannot be searched (repeatable); the output "
                     "says it was not searched");
}

core::Result<std::vector<std::string>> allowed_missing_hosts(const boost::program_options::variables_map &vm,
                                                            const core::Config &config) {
  std::vector<std::string> names;
  if (vm.count("allow-missing-host") != 0) {
    names = vm["allow-missing-host"].as<std::vector<std::string>>();
  }
  for (const std::string &n : names) {
    if (std::ranges::none_of(config.hosts, [&](const core::HostConfig &h) { return h.name == n; })) {
      return core::fail(core::ErrorCode::usage, fmt::format("--allow-missing-host {}: no such host in the config", n),
                        "the config's \"hosts\" names the hosts");
    }
  }
  return names;
}

std::vector<HostOutcome> query_hosts(const core::Config &config, const query::SubjectProfile *subject,
                                     const std::vector<std::string> &allowed_missing, std::string_view operator_name) {
  std::vector<HostOutcome> outcomes;
  for (const core::HostConfig &host : config.hosts) {
    HostOutcome o;
    o.name = host.name;
    if (auto r = ask_host(host, subject, operator_name, o); r) {
      o.searched = true;
    } else {
      o.error = r.error().message;
      o.hits = nlohmann::json::array();
      o.allowed_missing = std::ranges::find(allowed_missing, host.name) != allowed_missing.end();
    }
    outcomes.push_back(std::move(o));
  }
  return outcomes;
}

nlohmann::json hosts_summary_json(const std::vector<HostOutcome> &outcomes, bool complete) {
  nlohmann::json hosts = nlohmann::json::array();
  nlohmann::json not_searched = nlohmann::json::array();
  for (const HostOutcome &o : outcomes) {
    nlohmann::json h{{"name", o.name},
                     {"searched", o.searched},
                     {"reachable", o.reachable},
                     {"stale", o.stale},
                     {"items", o.hits.size()},
                     {"index_age_seconds", o.index_age_seconds ? nlohmann::json(*o.index_age_seconds) : nlohmann::json(nullptr)}};
    if (!o.searched) {
      h["error"] = o.error;
      h["allowed_missing"] = o.allowed_missing;
      not_searched.push_back(o.name);
    }
    hosts.push_back(std::move(h));
  }
  return nlohmann::json{{"schema", "maildsar.hosts"},
                        {"version", 1},
                        {"complete", complete},
                        {"not_searched", not_searched},
                        {"hosts", hosts}};
}

} // namespace maildsar::cli
