// SPDX-License-Identifier: GPL-3.0-or-later
// plan / approve / erase on a DPO host with `hosts` (issue 15): each host plans its own slice
// through its agent; the DPO host writes the estate manifest that binds the slices; approvers
// sign its hash; each host's agent checks the signatures against its own approver keys and
// carries out its own slice with its own journal (erasure/estate.hpp, docs/deployment.md).
#include "cli/hosts_erasure.hpp"

#include "core/audit.hpp"
#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "core/time.hpp"
#include "erasure/approval.hpp"
#include "erasure/policy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <functional>

namespace maildsar::cli {

using nlohmann::json;

namespace {

/** An agent of an older release lacks the op: say so, not "unknown op". */
core::Status require_op(const remote::HostClient &client, std::string_view op) {
  if (std::ranges::find(client.hello().ops, op) == client.hello().ops.end()) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("host {}: its agent ({}) does not offer `{}`", client.name(), client.hello().program, op),
                      fmt::format("upgrade maildsar on {}", client.name()));
  }
  return {};
}

/** The DPO host's own sources, when its config has any beside `hosts`: a slice named "local". */
constexpr std::string_view k_local = "local";

/** The DPO config without its hosts: what the local slice is planned and erased against. */
core::Config local_part(const core::Config &config) {
  core::Config local = config;
  local.hosts.clear();
  return local;
}

/**
 * Sends `request` to the host the estate manifest names `name`: its agent (which must offer the
 * request's op), or, for the slice of this host's own sources ("local"), `local` on the config
 * without its hosts. A name this config cannot reach is ErrorCode::config naming it.
 */
core::Result<json> ask_slice_host(const core::Config &config, const std::string &name, const json &request,
                                  const std::function<core::Result<json>(const core::Config &)> &local) {
  const auto host = std::ranges::find_if(config.hosts, [&](const core::HostConfig &c) { return c.name == name; });
  if (host == config.hosts.end()) {
    if (name == k_local && !config.sources.empty()) {
      return local(local_part(config));
    }
    return core::fail(core::ErrorCode::config,
                      name == k_local ? fmt::format("host {}: the manifest has a slice of this host's own sources, "
                                                    "but this config has no sources",
                                                    name)
                                      : fmt::format("host {}: in the manifest but not in this config's hosts", name));
  }
  MAILDSAR_TRY_ASSIGN(remote::HostClient client, remote::HostClient::connect(*host));
  MAILDSAR_TRY(require_op(client, request.value("op", std::string())));
  MAILDSAR_TRY_ASSIGN(json answer, client.request(request));
  client.close();
  return answer;
}

/** What one host answered to `plan`. */
struct HostPlan {
  HostOutcome outcome;
  std::optional<erasure::Manifest> slice;
  std::uint64_t stale = 0;
  json details; // its items' dates, subject lines, correspondents (erasure::details_json)
};

/**
 * Reads a host's answer to `plan`: its slice, for this request, with the policy it was sent
 * (an agent that ignored the policy would drop its exemptions: refused, naming the host).
 */
core::Status accept_slice(const std::string &name, const json &request, const json &answer, HostPlan &out) {
  const auto manifest = answer.find("manifest");
  const auto hash = answer.find("manifest_sha256");
  if (manifest == answer.end() || !manifest->is_object() || hash == answer.end() || !hash->is_string()) {
    return core::fail(core::ErrorCode::data, fmt::format("host {}: the answer to plan has no manifest", name));
  }
  auto slice = erasure::parse_manifest(manifest->dump(), fmt::format("host {}: its slice", name));
  if (!slice) {
    return std::unexpected(slice.error());
  }
  const std::string request_id = request["subject"].value("request", std::string());
  if (slice->hash != hash->get<std::string>() || slice->request != request_id) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("host {}: the slice it planned is not for request {} or not the hash it names", name,
                                  request_id));
  }
  if (const auto policy = request.find("policy"); policy != request.end()) {
    for (const auto &[key, value] : policy->items()) {
      if (!slice->policy.contains(key) || slice->policy[key] != value) {
        return core::fail(core::ErrorCode::data,
                          fmt::format("host {}: its slice was not planned with the policy given (its \"{}\" differs)",
                                      name, key),
                          fmt::format("upgrade maildsar on {}", name));
      }
    }
  }
  if (auto stale = answer.find("stale"); stale != answer.end() && stale->is_number_unsigned()) {
    out.stale = stale->get<std::uint64_t>();
  }
  if (auto details = answer.find("details"); details != answer.end()) {
    out.details = *details;
  }
  out.slice = std::move(*slice);
  return {};
}

/** One host's slice for the approvers' summary, with the details it sent (checked, clipped). */
erasure::EstateApprovalView::Host summary_host(const erasure::EstateHost &h, const erasure::Manifest &slice,
                                               const json &details, std::string note) {
  erasure::EstateApprovalView::Host host{h.name, h.agent_host, std::move(note), {}};
  host.view.manifest = slice;
  const std::size_t skipped = erasure::add_details(host.view, details);
  if (host.note.empty() && skipped > 0) {
    host.note = fmt::format("{} of the details its agent sent were malformed and are not shown", skipped);
  }
  if (host.note.empty() && host.view.details.empty() &&
      std::ranges::any_of(slice.items, [](const erasure::ManifestItem &i) {
        return i.locator.store != connectors::StoreKind::maillog;
      })) {
    host.note = "its agent sent no dates, subject lines or correspondents of its items";
  }
  return host;
}

/** The approvers' summary of an estate manifest: the binding, then each slice with its details. */
erasure::EstateApprovalView summary_of(const erasure::EstateManifest &m, std::vector<std::string> subject,
                                       const std::map<std::string, std::pair<json, std::string>> &details) {
  erasure::EstateApprovalView e;
  e.request = m.binding.request;
  e.created = m.binding.created;
  e.planner = m.binding.planner;
  e.hash = m.hash;
  e.subject = std::move(subject);
  for (const erasure::EstateHost &h : m.binding.hosts) {
    const auto d = details.find(h.name);
    e.hosts.push_back(summary_host(h, m.slices.at(h.name), d == details.end() ? json() : d->second.first,
                                   d == details.end() ? std::string() : d->second.second));
  }
  for (const erasure::NotSearched &n : m.binding.not_searched) {
    e.not_searched.emplace_back(n.name, n.error);
  }
  return e;
}

core::Status plan_on_host(const core::HostConfig &host, const json &request, HostPlan &out) {
  MAILDSAR_TRY_ASSIGN(remote::HostClient client, open_host(host, out.outcome));
  MAILDSAR_TRY(require_op(client, "plan"));
  MAILDSAR_TRY_ASSIGN(json answer, client.request(request));
  client.close();
  return accept_slice(host.name, request, answer, out);
}

/** The local slice, planned in this process exactly as a host's agent plans its own. */
core::Status plan_locally(const Context &ctx, const core::Config &config, const json &request, HostPlan &out) {
  const core::Config local = local_part(config);
  out.outcome.agent_host = agent_host_name(config);
  MAILDSAR_TRY_ASSIGN(json answer, agent_plan(local, ctx, request));
  return accept_slice(std::string(k_local), request, answer, out);
}

std::map<std::string, std::uint64_t> actions_of(const erasure::Manifest &m) {
  std::map<std::string, std::uint64_t> actions;
  for (const erasure::ManifestItem &item : m.items) {
    ++actions[std::string(erasure::to_string(item.action))];
  }
  return actions;
}

std::string actions_text(const std::map<std::string, std::uint64_t> &actions) {
  std::string text;
  for (const auto &[action, n] : actions) {
    text += fmt::format("{}{} {}", text.empty() ? "" : ", ", n, action);
  }
  return text.empty() ? "nothing" : text;
}

/** Prints every item of every slice (plan's listing). */
void list_items(Output &out, const erasure::EstateManifest &m) {
  for (const erasure::EstateHost &h : m.binding.hosts) {
    const erasure::Manifest &slice = m.slices.at(h.name);
    for (const erasure::ManifestItem &item : slice.items) {
      out.line(fmt::format("{}:{:<7} {:<10} {}  ({})", h.name, erasure::to_string(item.action), item.locator.source,
                           item.locator.path, item.reason));
      if (!item.instructions.empty()) {
        out.line("        " + item.instructions);
      }
    }
  }
  for (const erasure::EstateHost &h : m.binding.hosts) {
    out.line(fmt::format("host {} ({}): slice {}: {} item(s): {}", h.name, h.agent_host, h.slice_sha256.substr(0, 16),
                         h.items, actions_text(actions_of(m.slices.at(h.name)))));
  }
  for (const erasure::NotSearched &n : m.binding.not_searched) {
    out.line(fmt::format("host {}: NOT SEARCHED, nothing of it is planned ({})", n.name, n.error));
  }
}

/** What one host did with its slice. */
struct HostErase {
  std::string name;
  std::string result; // done | problems | refused | failed | not-searched
  std::string error;
  core::ErrorCode code = core::ErrorCode::internal;
  json report; // the agent's erase report
};

/**
 * Whether an agent's erase report has the shape this file reads (a host's answer is untrusted:
 * json::value would throw on a field of another type): "manifest_sha256" a string, "counts"
 * {store: {result: count}}, "items" [{"id", "result", "detail" strings, "transient" bool}].
 */
bool well_formed_report(const json &report) {
  const auto is_string_at = [](const json &j, const char *key) { return j.contains(key) && j[key].is_string(); };
  if (!report.is_object() || !is_string_at(report, "manifest_sha256") || !report.contains("counts") ||
      !report["counts"].is_object() || !report.contains("items") || !report["items"].is_array()) {
    return false;
  }
  for (const auto &[store, by] : report["counts"].items()) {
    if (!by.is_object() || !std::ranges::all_of(by, [](const json &n) { return n.is_number_unsigned(); })) {
      return false;
    }
  }
  return std::ranges::all_of(report["items"], [&](const json &o) {
    return o.is_object() && is_string_at(o, "id") && is_string_at(o, "result") && is_string_at(o, "detail") &&
           (!o.contains("transient") || o["transient"].is_boolean());
  });
}

std::uint64_t count_results(const json &report, std::string_view result) {
  std::uint64_t n = 0;
  if (auto counts = report.find("counts"); counts != report.end() && counts->is_object()) {
    for (const auto &[store, by] : counts->items()) {
      if (by.is_object() && by.contains(result) && by[std::string(result)].is_number_unsigned()) {
        n += by[std::string(result)].get<std::uint64_t>();
      }
    }
  }
  return n;
}

} // namespace

core::Result<int> plan_across_hosts(Context &ctx, const core::Config &config, query::SubjectProfile subject,
                                    const std::string &out_path, const nlohmann::json &options) {
  Output &out = *ctx.out;
  MAILDSAR_TRY_ASSIGN(std::vector<std::string> allowed_missing, allowed_missing_hosts(ctx.vm, config));
  // Before any host plans (each keeps its slice and audits it): neither the manifest nor the
  // approvers' summary beside it is ever overwritten.
  const std::string summary_path = erasure::approval_html_path(out_path);
  for (const std::string &path : {out_path, summary_path}) {
    if (std::error_code ec; std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
      return core::fail(core::ErrorCode::cant_create,
                        path + (path == out_path ? ": exists; will not overwrite a manifest"
                                                 : ": exists; will not overwrite a summary"),
                        "choose another --out file");
    }
  }
  if (subject.request.empty()) {
    // Every slice carries the same request id, so the DPO host names it (as a local plan would).
    const std::string today = options.value("today", std::string());
    subject.request = "DSAR-" + (today.empty() ? erasure::today_utc() : today);
  }
  json request = options;
  request["op"] = "plan";
  request["subject"] = subject_json(subject);
  request["operator"] = ctx.operator_name;
  // The local sources first (a slice named "local"), then every host, all planned in parallel.
  const bool local = !config.sources.empty();
  const std::size_t first_host = local ? 1 : 0;
  std::vector<HostPlan> plans(first_host + config.hosts.size());
  core::Status local_planned;
  for_each_host(plans.size(), [&](std::size_t i) {
    HostPlan &p = plans[i];
    p.outcome.name = i < first_host ? std::string(k_local) : config.hosts[i - first_host].name;
    auto r = i < first_host ? plan_locally(ctx, config, request, p)
                            : plan_on_host(config.hosts[i - first_host], request, p);
    if (r) {
      p.outcome.searched = true;
    } else if (i < first_host) {
      local_planned = std::move(r); // this host's own error, with its own exit code, as a local plan
    } else {
      p.outcome.error = r.error().message;
      p.slice.reset();
      p.outcome.allowed_missing = std::ranges::find(allowed_missing, p.outcome.name) != allowed_missing.end();
    }
  });
  if (!local_planned) {
    return std::unexpected(local_planned.error().with_context("plan of this host's own sources: "));
  }
  std::vector<HostOutcome> outcomes;
  for (const HostPlan &p : plans) {
    outcomes.push_back(p.outcome);
  }
  if (refuse_missing_hosts(out, outcomes, "planned",
                           "no manifest was written: a host of the estate was not searched")) {
    return core::k_exit_problem;
  }
  erasure::EstateManifest m;
  m.binding.request = subject.request;
  m.binding.created = core::iso8601_now();
  m.binding.planner = ctx.operator_name;
  m.binding.planner_os = ctx.os_user;
  std::uint64_t stale = 0;
  for (HostPlan &p : plans) {
    if (!p.slice) {
      m.binding.not_searched.push_back(erasure::NotSearched{p.outcome.name, p.outcome.error});
      continue;
    }
    m.binding.hosts.push_back(
        erasure::EstateHost{p.outcome.name, p.outcome.agent_host, p.slice->hash, p.slice->items.size()});
    stale += p.stale;
    m.slices.emplace(p.outcome.name, std::move(*p.slice));
  }
  m.hash = m.binding.compute_hash();
  MAILDSAR_TRY(erasure::save_estate_manifest(m, out_path));
  {
    // What an approver reads: whom, and per host what, where, when, with whom, what stays.
    std::map<std::string, std::pair<json, std::string>> details;
    for (HostPlan &p : plans) {
      details[p.outcome.name] = {std::move(p.details), std::string()};
    }
    const bool keyed_only = options.value("resurrected", false);
    const erasure::EstateApprovalView view =
        summary_of(m, keyed_only ? std::vector<std::string>{} : erasure::subject_lines(subject), details);
    MAILDSAR_TRY_ASSIGN(core::NewFile html, core::NewFile::create(summary_path, 0600));
    MAILDSAR_TRY(html.write(erasure::estate_approval_html(view)));
    MAILDSAR_TRY(html.commit());
  }
  json host_rows = json::array();
  json audit_hosts = json::array();
  for (const erasure::EstateHost &h : m.binding.hosts) {
    const auto p = std::ranges::find_if(plans, [&](const HostPlan &x) { return x.outcome.name == h.name; });
    host_rows.push_back({{"name", h.name},
                         {"agent_host", h.agent_host},
                         {"slice_sha256", h.slice_sha256},
                         {"items", h.items},
                         {"actions", actions_of(m.slices.at(h.name))},
                         {"stale", p->stale}});
    audit_hosts.push_back({{"host", h.name}, {"slice_sha256", h.slice_sha256}, {"items", h.items}});
  }
  json not_searched = json::array();
  for (const erasure::NotSearched &n : m.binding.not_searched) {
    not_searched.push_back({{"name", n.name}, {"error", n.error}});
  }
  {
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    MAILDSAR_TRY(audit.append("plan", ctx.operator_name, m.binding.request,
                              json{{"manifest_sha256", m.hash},
                                   {"estate", true},
                                   {"hosts", audit_hosts},
                                   {"not_searched", not_searched}}));
  }
  if (out.json()) {
    out.json_line(json{{"manifest", out_path},
                       {"summary", summary_path},
                       {"manifest_sha256", m.hash},
                       {"estate", true},
                       {"request", m.binding.request},
                       {"planner", m.binding.planner},
                       {"planner_os_user", ctx.os_user.name},
                       {"hosts", host_rows},
                       {"not_searched", not_searched},
                       {"stale", stale}});
  } else {
    list_items(out, m);
    out.line(fmt::format("manifest {} for {} across {} host(s); sha256 {}", out_path, m.binding.request,
                         m.binding.hosts.size(), m.hash));
    out.line("summary for the approvers: " + summary_path);
    out.line(fmt::format("next: another operator reads it ('maildsar approve --show {}') and runs 'maildsar approve "
                         "{} --sign-key KEY' (the hosts accept signed approvals only)",
                         out_path, out_path));
  }
  for (const HostPlan &p : plans) {
    if (p.stale > 0) {
      out.diag("warning", fmt::format("host {}: {} item(s) changed since they were indexed and will be skipped by "
                                      "erase; run 'maildsar index' there and plan again",
                                      p.outcome.name, p.stale));
    }
  }
  return stale > 0 ? core::k_exit_problem : core::k_exit_ok;
}

core::Result<int> approve_across_hosts(Context &ctx, const core::Config &config, const erasure::EstateManifest &m) {
  Output &out = *ctx.out;
  if (ctx.vm.count("show") != 0) {
    if (out.json()) {
      return core::fail(core::ErrorCode::usage, "approve --show prints text; the manifest itself is the JSON");
    }
    // Each host reads its items' dates, subject lines and correspondents from its own index now
    // (as a local approve --show reads the local index); a host that cannot be asked is said so.
    std::vector<std::pair<json, std::string>> asked(m.binding.hosts.size());
    for_each_host(asked.size(), [&](std::size_t i) {
      const erasure::EstateHost &h = m.binding.hosts[i];
      const json request{{"op", "show"}, {"slice", h.slice_sha256}};
      auto answer = ask_slice_host(config, h.name, request,
                                   [&](const core::Config &local) { return agent_show(local, request); });
      if (answer && answer->is_object() && answer->contains("details")) {
        asked[i].first = std::move((*answer)["details"]);
      } else {
        asked[i].second = fmt::format("its items' dates, subject lines and correspondents could not be read: {}",
                                      answer ? std::string("its answer has no details") : answer.error().message);
      }
    });
    std::map<std::string, std::pair<json, std::string>> details;
    for (std::size_t i = 0; i < asked.size(); ++i) {
      details[m.binding.hosts[i].name] = std::move(asked[i]);
    }
    erasure::EstateApprovalView view = summary_of(m, {}, details);
    MAILDSAR_TRY_ASSIGN(view.approvals, erasure::approvals(config, m.hash));
    out.lines(erasure::estate_approval_text(view));
    return core::k_exit_ok;
  }
  const std::string key = ctx.vm.count("sign-key") != 0 ? ctx.vm["sign-key"].as<std::string>() : "";
  MAILDSAR_TRY_ASSIGN(std::vector<erasure::Approval> approvals,
                      erasure::approve_estate(config, m, ctx.operator_name, key, ctx.os_user));
  const auto signed_n = std::ranges::count_if(approvals, [](const erasure::Approval &a) { return !a.signature.empty(); });
  if (key.empty()) {
    out.diag("warning", "this approval is not signed: the hosts accept only signed approvals (each checks them "
                        "against its own erasure.approver_keys); approve again with --sign-key");
  }
  if (out.json()) {
    json names = json::array();
    for (const erasure::Approval &a : approvals) {
      names.push_back({{"operator", a.operator_name},
                       {"os_user", a.os ? json(a.os->name) : json(nullptr)},
                       {"signed", !a.signature.empty()},
                       {"time", a.time}});
    }
    out.json_line(json{{"manifest_sha256", m.hash}, {"request", m.binding.request}, {"estate", true},
                       {"approvals", names}, {"signed", signed_n}});
  } else {
    out.line(fmt::format("{} approved manifest {} ({}) across {} host(s): {} approval(s), {} signed; each host "
                         "checks them against its own approver keys and approvals_required at erase",
                         ctx.operator_name, m.hash.substr(0, 16), m.binding.request, m.binding.hosts.size(),
                         approvals.size(), signed_n));
  }
  return core::k_exit_ok;
}

core::Result<int> erase_across_hosts(Context &ctx, const core::Config &config, const erasure::EstateManifest &m) {
  Output &out = *ctx.out;
  const bool dry_run = ctx.vm.count("dry-run") != 0;
  MAILDSAR_TRY_ASSIGN(std::vector<erasure::Approval> approvals, erasure::approvals(config, m.hash));
  json approval_list = json::array();
  for (const erasure::Approval &a : approvals) {
    approval_list.push_back({{"operator", a.operator_name}, {"time", a.time}, {"signature", a.signature}});
  }
  const json binding = m.binding.to_json();
  std::vector<HostErase> results(m.binding.hosts.size());
  for_each_host(m.binding.hosts.size(), [&](std::size_t i) {
    const erasure::EstateHost &h = m.binding.hosts[i];
    HostErase &r = results[i];
    r.name = h.name;
    const json request{{"op", "erase"},
                       {"estate", binding},
                       {"slice", m.slices.at(h.name).to_json()},
                       {"approvals", approval_list},
                       {"operator", ctx.operator_name},
                       {"dry_run", dry_run}};
    // This host's own slice is checked and erased exactly as an agent does its host's.
    auto answer = ask_slice_host(config, h.name, request,
                                 [&](const core::Config &local) { return agent_erase(local, ctx, request); });
    if (!answer) {
      r.code = answer.error().code;
      // The agent refused the slice or its approvals (nothing changed there), or the session broke.
      const bool refused = r.code == core::ErrorCode::data || r.code == core::ErrorCode::permission ||
                           r.code == core::ErrorCode::usage;
      r.result = refused ? "refused" : "failed";
      r.error = answer.error().message.starts_with("host ") ? answer.error().message
                                                           : fmt::format("host {}: {}", h.name, answer.error().message);
      return;
    }
    r.report = std::move(*answer);
    if (!well_formed_report(r.report) || r.report["manifest_sha256"] != h.slice_sha256) {
      r.result = "failed";
      r.error = fmt::format("host {}: its answer is no erase report of slice {}", h.name, h.slice_sha256.substr(0, 16));
      r.report = json();
      return;
    }
    r.result = count_results(r.report, "failed") + count_results(r.report, "stale") > 0 ? "problems" : "done";
  });
  for (const erasure::NotSearched &n : m.binding.not_searched) {
    results.push_back(HostErase{n.name, "not-searched",
                                fmt::format("host {} was not searched when planning (--allow-missing-host): nothing "
                                            "of it was planned or erased",
                                            n.name),
                                core::ErrorCode::internal, json()});
  }
  if (!dry_run) {
    // One record per host's result on the DPO host's timeline (each host keeps its own).
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    for (const HostErase &r : results) {
      const auto h = std::ranges::find_if(m.binding.hosts, [&](const erasure::EstateHost &x) { return x.name == r.name; });
      MAILDSAR_TRY(audit.append("erase-host", ctx.operator_name, m.binding.request,
                                json{{"host", r.name},
                                     {"manifest_sha256", m.hash},
                                     {"slice_sha256", h != m.binding.hosts.end() ? json(h->slice_sha256) : json(nullptr)},
                                     {"result", r.result},
                                     {"error", r.error},
                                     {"counts", r.report.is_object() ? r.report.value("counts", json::object()) : json::object()}}));
    }
  }
  bool refused = false;
  bool failed = false;
  std::uint64_t item_failed = 0;
  std::uint64_t item_transient = 0;
  std::uint64_t item_stale = 0;
  for (const HostErase &r : results) {
    refused = refused || r.result == "refused";
    failed = failed || r.result == "failed";
    item_failed += count_results(r.report, "failed");
    item_stale += count_results(r.report, "stale");
    if (auto items = r.report.find("items"); r.report.is_object() && items != r.report.end() && items->is_array()) {
      item_transient += static_cast<std::uint64_t>(std::ranges::count_if(*items, [](const json &o) {
        return o.value("result", std::string()) == "failed" && o.value("transient", false);
      }));
    }
  }
  if (out.json()) {
    json rows = json::array();
    for (const HostErase &r : results) {
      json row{{"name", r.name}, {"result", r.result}};
      if (!r.error.empty()) {
        row["error"] = r.error;
      }
      if (r.report.is_object()) {
        row["report"] = r.report;
      }
      rows.push_back(std::move(row));
    }
    out.json_line(json{{"schema", "maildsar.estate-erase-report"},
                       {"version", 1},
                       {"manifest_sha256", m.hash},
                       {"request", m.binding.request},
                       {"dry_run", dry_run},
                       {"hosts", rows}});
  } else {
    for (const HostErase &r : results) {
      if (r.report.is_object()) {
        for (const json &o : r.report.value("items", json::array())) {
          if (o.value("result", std::string()) != "done" && !o.value("detail", std::string()).empty()) {
            out.line(fmt::format("{}:{:<12} {}  {}", r.name, o.value("result", std::string()),
                                 o.value("id", std::string()).substr(0, 12), o.value("detail", std::string())));
          }
        }
        std::string line;
        const json counts = r.report.value("counts", json::object());
        for (const auto &[store, by] : counts.items()) {
          for (const auto &[result, n] : by.items()) {
            line += fmt::format("{}{} {} {}", line.empty() ? "" : ", ", n.dump(), store, result);
          }
        }
        out.line(fmt::format("host {}: {}{}", r.name, r.result, line.empty() ? "" : " (" + line + ")"));
      }
    }
    out.line(dry_run ? "dry run: nothing was changed"
                     : fmt::format("erasure of {} across {} host(s) ran; next: maildsar verify --subject ...",
                                   m.binding.request, m.binding.hosts.size()));
  }
  for (const HostErase &r : results) {
    if (r.result == "refused" || r.result == "failed") {
      out.diag("error", r.error);
    } else if (r.result == "not-searched") {
      out.diag("warning", r.error);
    }
  }
  if (refused) {
    out.diag("hint", "a host refused its slice: nothing was changed there; approve on the DPO host with --sign-key "
                     "(keys in that host's erasure.approver_keys), or plan again if the manifest was altered");
    return core::exit_code(core::ErrorCode::data);
  }
  if (failed) {
    out.diag("hint", "run the same erase again when the host is back: each host resumes from its own journal");
    return core::k_exit_problem;
  }
  if (item_failed > 0 && item_failed == item_transient && item_stale == 0) {
    out.diag("warning", fmt::format("{} item(s) failed temporarily; run the same erase again later", item_failed));
    return core::exit_code(core::ErrorCode::temp_fail);
  }
  if (item_failed > 0 || item_stale > 0) {
    out.diag("warning", fmt::format("{} item(s) failed and {} were stale (changed since planning); see above",
                                    item_failed, item_stale));
    return core::k_exit_problem;
  }
  return core::k_exit_ok;
}

} // namespace maildsar::cli
