// SPDX-License-Identifier: GPL-3.0-or-later
// The agent's erasure operations (issue 15): `plan` of this host's slice of an estate manifest,
// kept in this host's own state, and `erase` of exactly that slice, with approvals this host
// verifies itself (erasure/estate.hpp; docs/schemata.md "maildsar agent protocol").
#include "cli/commands.hpp"
#include "erasure/approval.hpp"
#include "erasure/erasure.hpp"
#include "erasure/estate.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace maildsar::cli {

using nlohmann::json;

void apply_erase_test_hooks(erasure::EraseOptions &options) {
  // Fault injection for the crash tests: MAILDSAR_FAULT_AT names the step to die at.
  if (const char *fault = std::getenv("MAILDSAR_FAULT_AT"); fault != nullptr && *fault != '\0') {
    std::string wanted = fault;
    options.fault_at = [wanted](std::string_view step) { return step == wanted; };
  }
  // Tests only: MAILDSAR_TEST_PAUSE_AT=STEP:MS sleeps at a step (a race made reproducible), and
  // MAILDSAR_TEST_LOCK_WAIT_MS shortens the 30 s wait for a busy mbox lock.
  if (const char *pause = std::getenv("MAILDSAR_TEST_PAUSE_AT"); pause != nullptr && *pause != '\0') {
    std::string spec = pause;
    const std::size_t colon = spec.rfind(':');
    const std::string wanted = spec.substr(0, colon);
    const long ms = colon == std::string::npos ? 1000 : std::strtol(spec.c_str() + colon + 1, nullptr, 10);
    auto kill = std::move(options.fault_at);
    options.fault_at = [wanted, ms, kill](std::string_view step) {
      if (step == wanted) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      }
      return kill ? kill(step) : false;
    };
  }
  if (const char *wait = std::getenv("MAILDSAR_TEST_LOCK_WAIT_MS"); wait != nullptr && *wait != '\0') {
    options.lock_wait = std::chrono::milliseconds(std::strtol(wait, nullptr, 10));
  }
}

json erase_report_json(const erasure::EraseReport &report, erasure::DryRun dry_run) {
  json conversions = json::array();
  for (const erasure::EraseReport::Conversion &c : report.conversions) {
    conversions.push_back({{"pst", c.pst}, {"mbox", c.mbox}, {"original", c.original}, {"kept", c.kept}});
  }
  json items = json::array();
  for (const erasure::ItemOutcome &o : report.items) {
    json item{{"id", o.id}, {"action", erasure::to_string(o.action)}, {"result", o.result}, {"detail", o.detail}};
    if (o.transient) {
      item["transient"] = true;
    }
    if (o.attempt > 1) {
      item["attempt"] = o.attempt;
    }
    items.push_back(std::move(item));
  }
  json counts = json::object();
  for (const auto &[store, by] : report.counts) {
    counts[store] = by;
  }
  return json{{"schema", "maildsar.erase-report"},
              {"version", 1},
              {"manifest_sha256", report.manifest_hash},
              {"request", report.request},
              {"dry_run", dry_run == erasure::DryRun::yes},
              {"counts", counts},
              {"extra_copies", report.extra_copies},
              {"retried", report.retried},
              {"conversions", conversions},
              {"index_updated", report.index_updated},
              {"log_blocks_rebuilt", report.log_blocks_rebuilt},
              {"seconds", {{"stores", report.stores_seconds}, {"index", report.index_seconds}}},
              {"items", items}};
}

namespace {

/** The client's operator name: required, 1..64 bytes (it becomes the slice's planner). */
core::Result<std::string> client_operator(const json &request, std::string_view op) {
  const auto it = request.find("operator");
  if (it == request.end() || !it->is_string() || it->get_ref<const std::string &>().empty() ||
      it->get_ref<const std::string &>().size() > 64) {
    return core::fail(core::ErrorCode::usage, fmt::format(R"({}: "operator" must be the DPO host's operator name)", op));
  }
  return it->get<std::string>();
}

/** The approvals of an erase request: [{"operator", "time", "signature"}], at most 100. */
core::Result<std::vector<erasure::Approval>> carried_approvals(const json &request) {
  const auto list = request.find("approvals");
  if (list == request.end() || !list->is_array() || list->size() > 100) {
    return core::fail(core::ErrorCode::usage, R"(erase: "approvals" must be a list of approvals)");
  }
  std::vector<erasure::Approval> out;
  for (const json &a : *list) {
    if (!a.is_object()) {
      return core::fail(core::ErrorCode::usage, R"(erase: an approval must be {"operator", "time", "signature"})");
    }
    erasure::Approval approval;
    for (const auto &[key, field] : {std::pair<const char *, std::string *>{"operator", &approval.operator_name},
                                     {"time", &approval.time},
                                     {"signature", &approval.signature}}) {
      const auto it = a.find(key);
      if (it == a.end() || !it->is_string() || it->get_ref<const std::string &>().size() > 1024) {
        return core::fail(core::ErrorCode::usage, fmt::format(R"(erase: an approval's "{}" must be a string)", key));
      }
      *field = it->get<std::string>();
    }
    out.push_back(std::move(approval));
  }
  return out;
}

} // namespace

// plan: this host's slice, planned here by the local planner (this host's holds, exemptions,
// message policy), kept in this host's state as planned by its agent, and returned whole.
core::Result<json> agent_plan(const core::Config &config, const Context &ctx, const json &request) {
  const auto subject_it = request.find("subject");
  if (subject_it == request.end() || !subject_it->is_object()) {
    return core::fail(core::ErrorCode::usage, R"(plan: "subject" must be a subject object)");
  }
  MAILDSAR_TRY_ASSIGN(query::SubjectProfile subject, query::parse_subject(subject_it->dump(), "plan: subject"));
  erasure::PlanOptions options;
  if (auto resurrected = request.find("resurrected"); resurrected != request.end()) {
    if (!resurrected->is_boolean()) {
      return core::fail(core::ErrorCode::usage, R"(plan: "resurrected" must be true or false)");
    }
    options.resurrected = resurrected->get<bool>();
  }
  // --resurrected: the erased subject as this host's suppression list keeps it, by request id.
  if (subject.request.empty() || (!options.resurrected && subject.empty())) {
    return core::fail(core::ErrorCode::usage, "plan: the subject needs an identifier and its request id");
  }
  if (options.resurrected && !subject.empty()) {
    return core::fail(core::ErrorCode::usage, "plan: a resurrected plan takes the request id and no identifier");
  }
  if (auto policy = request.find("policy"); policy != request.end()) {
    if (!policy->is_object()) {
      return core::fail(core::ErrorCode::usage, R"(plan: "policy" must be a policy object)");
    }
    options.policy = *policy; // checked by the planner as a policy file is
  }
  MAILDSAR_TRY_ASSIGN(std::string planner, client_operator(request, "plan"));
  options.planner = planner;
  options.planner_os = ctx.os_user; // the agent's account; approvals come signed (erase)
  if (auto today = request.find("today"); today != request.end()) {
    if (!today->is_string() || !core::is_calendar_date(today->get<std::string>())) {
      return core::fail(core::ErrorCode::usage, R"(plan: "today" must be a date YYYY-MM-DD)");
    }
    options.today = today->get<std::string>();
  }
  if (auto pst = request.find("pst"); pst != request.end()) {
    if (!pst->is_string() || (*pst != "manual" && *pst != "convert")) {
      return core::fail(core::ErrorCode::usage, R"(plan: "pst" must be "manual" or "convert")");
    }
    options.pst = *pst == "convert" ? erasure::PstMode::convert : erasure::PstMode::manual;
  }
  MAILDSAR_TRY(require_indexed(config));
  MAILDSAR_TRY_ASSIGN(erasure::PlanResult planned, erasure::plan(config, subject, options));
  MAILDSAR_TRY(erasure::remember_agent_slice(config, planned.manifest, planner));
  // What the DPO host's summary shows of each item (dates, subject lines, correspondents): only
  // this host's index has it.
  MAILDSAR_TRY_ASSIGN(erasure::ApprovalView view,
                      erasure::approval_view(config, planned.manifest, {}, std::move(planned.hits)));
  return json{{"manifest", planned.manifest.to_json()},
              {"manifest_sha256", planned.manifest.hash},
              {"items", planned.manifest.items.size()},
              {"stale", planned.stale},
              {"details", erasure::details_json(view)}};
}

// show: the details of a slice this host's agent planned, read from its index now (the DPO
// host's `approve --show`), as plan sent them.
core::Result<json> agent_show(const core::Config &config, const json &request) {
  const auto slice = request.find("slice");
  if (slice == request.end() || !slice->is_string() || slice->get_ref<const std::string &>().size() != 64) {
    return core::fail(core::ErrorCode::usage, R"(show: "slice" must be the hash of a slice this host planned)");
  }
  MAILDSAR_TRY_ASSIGN(erasure::Manifest manifest, erasure::agent_slice(config, slice->get<std::string>()));
  MAILDSAR_TRY_ASSIGN(erasure::ApprovalView view, erasure::approval_view(config, manifest));
  return json{{"slice", manifest.hash}, {"details", erasure::details_json(view)}};
}

// erase: the slice this host planned, with the estate manifest's binding and the approvals;
// this host checks all of it itself (erasure::erase_slice) before anything changes.
core::Result<json> agent_erase(const core::Config &config, const Context &ctx, const json &request) {
  const auto estate = request.find("estate");
  const auto slice_it = request.find("slice");
  if (estate == request.end() || !estate->is_object() || slice_it == request.end() || !slice_it->is_object()) {
    return core::fail(core::ErrorCode::usage,
                      R"(erase: "estate" (the estate manifest's binding) and "slice" (a manifest) must be objects)");
  }
  MAILDSAR_TRY_ASSIGN(erasure::EstateBinding binding, erasure::parse_estate_binding(*estate, "erase: estate"));
  MAILDSAR_TRY_ASSIGN(erasure::Manifest slice, erasure::parse_manifest(slice_it->dump(), "erase: slice"));
  MAILDSAR_TRY_ASSIGN(std::vector<erasure::Approval> approvals, carried_approvals(request));
  MAILDSAR_TRY_ASSIGN(std::string client, client_operator(request, "erase"));
  erasure::EraseOptions options;
  options.operator_name = ctx.operator_name;
  if (auto dry = request.find("dry_run"); dry != request.end()) {
    if (!dry->is_boolean()) {
      return core::fail(core::ErrorCode::usage, R"(erase: "dry_run" must be true or false)");
    }
    options.dry_run = dry->get<bool>() ? erasure::DryRun::yes : erasure::DryRun::no;
  }
  apply_erase_test_hooks(options);
  MAILDSAR_TRY_ASSIGN(erasure::EraseReport report, erasure::erase_slice(config, binding, slice, approvals, client, options));
  return erase_report_json(report, options.dry_run);
}

void add_agent_erasure_ops(std::map<std::string, remote::OpHandler> &ops, const core::Config &config,
                           const Context &ctx) {
  ops["plan"] = [&config, &ctx](const json &request) { return agent_plan(config, ctx, request); };
  ops["erase"] = [&config, &ctx](const json &request) { return agent_erase(config, ctx, request); };
  ops["show"] = [&config](const json &request) { return agent_show(config, request); };
}

} // namespace maildsar::cli
