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
#include "erasure/policy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <filesystem>

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

/** What one host answered to `plan`. */
struct HostPlan {
  HostOutcome outcome;
  std::optional<erasure::Manifest> slice;
  std::uint64_t stale = 0;
};

core::Status plan_on_host(const core::HostConfig &host, const query::SubjectProfile &subject,
                          const std::string &operator_name, const std::string &today, const std::string &pst,
                          HostPlan &out) {
  MAILDSAR_TRY_ASSIGN(remote::HostClient client, open_host(host, out.outcome));
  MAILDSAR_TRY(require_op(client, "plan"));
  json request{{"op", "plan"}, {"subject", subject_json(subject)}, {"operator", operator_name}, {"pst", pst}};
  if (!today.empty()) {
    request["today"] = today;
  }
  MAILDSAR_TRY_ASSIGN(json answer, client.request(request));
  client.close();
  const auto manifest = answer.find("manifest");
  const auto hash = answer.find("manifest_sha256");
  if (manifest == answer.end() || !manifest->is_object() || hash == answer.end() || !hash->is_string()) {
    return core::fail(core::ErrorCode::data, fmt::format("host {}: the answer to plan has no manifest", host.name));
  }
  auto slice = erasure::parse_manifest(manifest->dump(), fmt::format("host {}: its slice", host.name));
  if (!slice) {
    return std::unexpected(slice.error());
  }
  if (slice->hash != hash->get<std::string>() || slice->request != subject.request) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("host {}: the slice it planned is not for request {} or not the hash it names",
                                  host.name, subject.request));
  }
  if (auto stale = answer.find("stale"); stale != answer.end() && stale->is_number_unsigned()) {
    out.stale = stale->get<std::uint64_t>();
  }
  out.slice = std::move(*slice);
  return {};
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

/** Prints every item of every slice (plan's listing and approve --show). */
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
                                    const std::string &out_path, const std::string &today, const std::string &pst) {
  Output &out = *ctx.out;
  if (!config.sources.empty()) {
    return core::fail(core::ErrorCode::usage,
                      "plan across hosts: this config has local sources as well as hosts, which is not supported yet",
                      "plan the local sources with a config without `hosts`, or move them to a host of their own");
  }
  MAILDSAR_TRY_ASSIGN(std::vector<std::string> allowed_missing, allowed_missing_hosts(ctx.vm, config));
  if (std::error_code ec; std::filesystem::exists(std::filesystem::symlink_status(out_path, ec))) {
    // Before any host plans (each keeps its slice and audits it): a manifest is never overwritten.
    return core::fail(core::ErrorCode::cant_create, out_path + ": exists; will not overwrite a manifest",
                      "choose another --out file");
  }
  if (subject.request.empty()) {
    // Every slice carries the same request id, so the DPO host names it (as a local plan would).
    subject.request = "DSAR-" + (today.empty() ? erasure::today_utc() : today);
  }
  std::vector<HostPlan> plans(config.hosts.size());
  for_each_host(config.hosts.size(), [&](std::size_t i) {
    const core::HostConfig &host = config.hosts[i];
    HostPlan &p = plans[i];
    p.outcome.name = host.name;
    if (auto r = plan_on_host(host, subject, ctx.operator_name, today, pst, p); r) {
      p.outcome.searched = true;
    } else {
      p.outcome.error = r.error().message;
      p.slice.reset();
      p.outcome.allowed_missing = std::ranges::find(allowed_missing, host.name) != allowed_missing.end();
    }
  });
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
    out.line(fmt::format("request {}: planned by {} on {}; manifest sha256 {}", m.binding.request, m.binding.planner,
                         m.binding.created, m.hash));
    list_items(out, m);
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
    const auto host = std::ranges::find_if(config.hosts, [&](const core::HostConfig &c) { return c.name == h.name; });
    if (host == config.hosts.end()) {
      r.result = "failed";
      r.error = fmt::format("host {}: in the manifest but not in this config's hosts", h.name);
      return;
    }
    auto answer = [&]() -> core::Result<json> {
      MAILDSAR_TRY_ASSIGN(remote::HostClient client, remote::HostClient::connect(*host));
      MAILDSAR_TRY(require_op(client, "erase"));
      MAILDSAR_TRY_ASSIGN(json report, client.request(json{{"op", "erase"},
                                                            {"estate", binding},
                                                            {"slice", m.slices.at(h.name).to_json()},
                                                            {"approvals", approval_list},
                                                            {"operator", ctx.operator_name},
                                                            {"dry_run", dry_run}}));
      client.close();
      return report;
    }();
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
