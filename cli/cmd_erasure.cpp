// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar plan / approve / erase / verify: Art. 17 erasure (DESIGN §5).
#include "cli/commands.hpp"
#include "cli/hosts.hpp"
#include "cli/hosts_erasure.hpp"
#include "cli/subject_args.hpp"
#include "core/audit.hpp"
#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "erasure/approval.hpp"
#include "erasure/erasure.hpp"
#include "erasure/estate.hpp"
#include "erasure/policy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace maildsar::cli {

using nlohmann::json;

void plan_options(po::options_description &desc, po::positional_options_description &) {
  add_subject_options(desc);
  desc.add_options()                                                                    //
      ("out,o", po::value<std::string>(), "write the manifest to this file (required; never overwritten)")
      ("policy", po::value<std::string>(), "policy file: per-request exemptions (Art. 17(3))")
      ("pst", po::value<std::string>()->default_value("manual"),
       "PST items: 'manual' (instructions for Outlook) or 'convert' (replace each PST by an mbox "
       "archive without the subject's items; needs erasure.pst_convert in the config)")
      ("today", po::value<std::string>(), "evaluate holds as of this date YYYY-MM-DD (default: today)")
      ("resurrected", "plan the items of --request ID's completed erasure that came back (flagged "
                      "suppressed by index: a restore from backup); needs no identifier");
  add_host_options(desc);
}

void approve_options(po::options_description &desc, po::positional_options_description &pos) {
  desc.add_options()                                                                    //
      ("manifest", po::value<std::string>(), "the manifest file")                         //
      ("sign-key", po::value<std::string>(), "sign the approval with this Ed25519 private key (PEM)")
      ("request", po::value<std::string>(), "check that the manifest is that of this registered request")
      ("show", "print what the manifest does (items, dates, correspondents, subject lines, holds) and "
               "approve nothing");
  pos.add("manifest", 1);
}

void erase_options(po::options_description &desc, po::positional_options_description &pos) {
  desc.add_options()                                                                    //
      ("manifest", po::value<std::string>(), "the approved manifest file")              //
      ("dry-run", "check approvals and every item's bytes; change nothing")
      ("request", po::value<std::string>(), "check that the manifest is that of this registered request");
  pos.add("manifest", 1);
}

void verify_options(po::options_description &desc, po::positional_options_description &) {
  add_subject_options(desc);
  desc.add_options()("out,o", po::value<std::string>(),
                     "write the erasure certificate here (default: <state>/certificates/)");
}

namespace {

core::Result<std::string> required(const po::variables_map &vm, const char *name, std::string_view what) {
  if (vm.count(name) == 0) {
    return core::fail(core::ErrorCode::usage, fmt::format("{} is required", what));
  }
  return vm[name].as<std::string>();
}

} // namespace

core::Result<int> run_plan(Context &ctx) {
  MAILDSAR_TRY_ASSIGN(std::string out_path, required(ctx.vm, "out", "--out MANIFEST"));
  MAILDSAR_TRY_ASSIGN(query::SubjectProfile given, subject_from_args(ctx.vm));
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  const bool resurrected = ctx.vm.count("resurrected") != 0;
  if (resurrected && (given.request.empty() || !given.empty())) {
    return core::fail(core::ErrorCode::usage, "--resurrected takes --request ID and no identifier",
                      "the suppression list keeps the erased subject's identifiers (keyed)");
  }
  // The erased request's subject is in the suppression list (its register entry may be purged).
  MAILDSAR_TRY_ASSIGN(StepSubject step, resurrected ? core::Result<StepSubject>(StepSubject{given, false})
                                                    : resolve_request(config, std::move(given), ctx.operator_name));
  const query::SubjectProfile &subject = step.subject;
  if (!config.hosts.empty()) {
    // Across hosts (issue 15): each host plans its own slice; the DPO host binds them.
    const std::string pst = ctx.vm["pst"].as<std::string>();
    const std::string today = ctx.vm.count("today") != 0 ? ctx.vm["today"].as<std::string>() : "";
    if ((pst != "manual" && pst != "convert") || (!today.empty() && !core::is_calendar_date(today))) {
      return core::fail(core::ErrorCode::usage, "plan: --pst must be 'manual' or 'convert' and --today a date YYYY-MM-DD");
    }
    nlohmann::json options{{"pst", pst}};
    if (!today.empty()) {
      options["today"] = today;
    }
    if (resurrected) {
      options["resurrected"] = true; // each host plans what its own suppression list flagged
    }
    if (ctx.vm.count("policy") != 0) {
      // Read and checked here, sent to every host: each plans its slice under the same policy.
      MAILDSAR_TRY_ASSIGN(erasure::Policy policy, erasure::load_policy(ctx.vm["policy"].as<std::string>()));
      options["policy"] = policy.raw;
    }
    return plan_across_hosts(ctx, config, subject, out_path, options);
  }
  MAILDSAR_TRY(require_indexed(config));
  MAILDSAR_TRY(warn_partially_indexed(config, *ctx.out));
  erasure::PlanOptions options;
  options.resurrected = resurrected;
  options.planner = ctx.operator_name;
  options.planner_os = ctx.os_user;
  options.policy_path = ctx.vm.count("policy") != 0 ? ctx.vm["policy"].as<std::string>() : "";
  options.today = ctx.vm.count("today") != 0 ? ctx.vm["today"].as<std::string>() : "";
  if (!options.today.empty() && !core::is_calendar_date(options.today)) {
    return core::fail(core::ErrorCode::usage,
                      fmt::format("plan: --today '{}' is not a calendar date YYYY-MM-DD", options.today));
  }
  if (const std::string pst = ctx.vm["pst"].as<std::string>(); pst == "convert") {
    options.pst = erasure::PstMode::convert;
  } else if (pst != "manual") {
    return core::fail(core::ErrorCode::usage, fmt::format("--pst '{}': use 'manual' or 'convert'", pst));
  }
  // Beside the manifest, what an approver must read: whom, what, where, what stays (issue 16
  // item 2). Neither file is ever written over.
  const std::string summary_path = erasure::approval_html_path(out_path);
  if (std::error_code ec; std::filesystem::exists(std::filesystem::symlink_status(summary_path, ec))) {
    return core::fail(core::ErrorCode::cant_create, summary_path + ": exists; will not overwrite a summary",
                      "choose another --out file");
  }
  Progress progress(ctx.progress, "plan", *ctx.out);
  options.on_progress = progress.callback("items");
  auto planned = erasure::plan(config, subject, options);
  progress.end();
  MAILDSAR_TRY_ASSIGN(erasure::PlanResult result, std::move(planned));
  MAILDSAR_TRY(erasure::save_manifest(result.manifest, out_path));
  const erasure::Manifest &m = result.manifest;
  {
    MAILDSAR_TRY_ASSIGN(erasure::ApprovalView view,
                        erasure::approval_view(config, m,
                                               resurrected ? std::vector<std::string>{} : erasure::subject_lines(subject),
                                               std::move(result.hits)));
    MAILDSAR_TRY_ASSIGN(core::NewFile html, core::NewFile::create(summary_path, 0600));
    MAILDSAR_TRY(html.write(erasure::approval_html(view)));
    MAILDSAR_TRY(html.commit());
  }
  std::map<std::string, std::uint64_t> actions;
  for (const erasure::ManifestItem &item : m.items) {
    ++actions[std::string(erasure::to_string(item.action))];
  }
  Output &out = *ctx.out;
  if (out.json()) {
    out.json_line(json{{"manifest", out_path},
                       {"summary", summary_path},
                       {"manifest_sha256", m.hash},
                       {"request", m.request},
                       {"planner", m.planner},
                       {"planner_os_user", ctx.os_user.name},
                       {"items", m.items.size()},
                       {"actions", actions},
                       {"stale", result.stale}});
  } else {
    for (const erasure::ManifestItem &item : m.items) {
      out.line(fmt::format("{:<7} {:<10} {}  ({})", erasure::to_string(item.action), item.locator.source,
                           item.locator.path, item.reason));
      if (!item.instructions.empty()) {
        out.line("        " + item.instructions);
      }
    }
    std::string summary;
    for (const auto &[action, n] : actions) {
      summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", n, action);
    }
    out.line(fmt::format("manifest {} for {}: {} item(s){}{}", out_path, m.request, m.items.size(),
                         summary.empty() ? "" : ": ", summary));
    out.line(fmt::format("manifest sha256 {}; summary for the approver: {}", m.hash, summary_path));
    out.line(fmt::format("next: another operator reads it (or 'maildsar approve --show {}') and runs "
                         "'maildsar approve {}'",
                         out_path, out_path));
  }
  if (result.stale > 0) {
    out.diag("warning", fmt::format("{} item(s) changed since they were indexed and will be skipped by erase; "
                                    "run 'maildsar index' and plan again",
                                    result.stale));
    return core::k_exit_problem;
  }
  return core::k_exit_ok;
}

namespace {

/** An estate manifest (across hosts) at `path`, or nullopt for an ordinary one. */
core::Result<std::optional<erasure::EstateManifest>> load_estate(const std::string &path) {
  MAILDSAR_TRY_ASSIGN(std::string text, core::read_file(path, 1ULL << 30));
  if (!erasure::looks_like_estate_manifest(text)) {
    return std::optional<erasure::EstateManifest>();
  }
  MAILDSAR_TRY_ASSIGN(erasure::EstateManifest m, erasure::parse_estate_manifest(text, path));
  return std::optional<erasure::EstateManifest>(std::move(m));
}

} // namespace

core::Result<int> run_approve(Context &ctx) {
  MAILDSAR_TRY_ASSIGN(std::string path, required(ctx.vm, "manifest", "MANIFEST"));
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  MAILDSAR_TRY_ASSIGN(std::optional<erasure::EstateManifest> estate, load_estate(path));
  if (estate) {
    if (ctx.vm.count("request") != 0) {
      MAILDSAR_TRY(check_manifest_request(config, ctx.vm["request"].as<std::string>(), estate->binding.request,
                                          ctx.operator_name));
    }
    return approve_across_hosts(ctx, config, *estate);
  }
  MAILDSAR_TRY_ASSIGN(erasure::Manifest manifest, erasure::load_manifest(path));
  if (ctx.vm.count("request") != 0) {
    MAILDSAR_TRY(check_manifest_request(config, ctx.vm["request"].as<std::string>(), manifest.request,
                                        ctx.operator_name));
  }
  if (ctx.vm.count("show") != 0) {
    // Read-only: what the approver is asked to approve, in words (the manifest holds the
    // subject keyed; the planner's HTML summary beside it names them).
    MAILDSAR_TRY_ASSIGN(erasure::ApprovalView view, erasure::approval_view(config, manifest));
    if (ctx.out->json()) {
      return core::fail(core::ErrorCode::usage, "approve --show prints text; the manifest itself is the JSON");
    }
    ctx.out->lines(erasure::approval_text(view));
    return core::k_exit_ok;
  }
  MAILDSAR_TRY_ASSIGN(std::vector<erasure::Approval> approvals,
                      erasure::approve(config, manifest, ctx.operator_name,
                                       ctx.vm.count("sign-key") != 0 ? ctx.vm["sign-key"].as<std::string>() : "",
                                       ctx.os_user));
  Output &out = *ctx.out;
  const std::uint64_t required_n = config.erasure.approvals_required;
  if (out.json()) {
    json names = json::array();
    for (const erasure::Approval &a : approvals) {
      names.push_back({{"operator", a.operator_name},
                       {"os_user", a.os ? json(a.os->name) : json(nullptr)},
                       {"time", a.time}});
    }
    out.json_line(json{{"manifest_sha256", manifest.hash},
                       {"request", manifest.request},
                       {"approvals", names},
                       {"required", required_n},
                       {"ready", approvals.size() >= required_n}});
  } else {
    out.line(fmt::format("{} approved manifest {} ({}): {} of {} approval(s){}", ctx.operator_name,
                         manifest.hash.substr(0, 16), manifest.request, approvals.size(), required_n,
                         approvals.size() >= required_n ? "; ready to erase" : ""));
  }
  return core::k_exit_ok;
}

core::Result<int> run_erase(Context &ctx) {
  MAILDSAR_TRY_ASSIGN(std::string path, required(ctx.vm, "manifest", "MANIFEST"));
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  MAILDSAR_TRY_ASSIGN(std::optional<erasure::EstateManifest> estate, load_estate(path));
  if (estate) {
    if (ctx.vm.count("request") != 0) {
      MAILDSAR_TRY(check_manifest_request(config, ctx.vm["request"].as<std::string>(), estate->binding.request,
                                          ctx.operator_name));
    }
    return erase_across_hosts(ctx, config, *estate);
  }
  MAILDSAR_TRY_ASSIGN(erasure::Manifest manifest, erasure::load_manifest(path));
  if (ctx.vm.count("request") != 0) {
    MAILDSAR_TRY(check_manifest_request(config, ctx.vm["request"].as<std::string>(), manifest.request,
                                        ctx.operator_name));
  }
  erasure::EraseOptions options;
  options.operator_name = ctx.operator_name;
  options.dry_run = ctx.vm.count("dry-run") != 0 ? erasure::DryRun::yes : erasure::DryRun::no;
  apply_erase_test_hooks(options);
  Progress progress(ctx.progress, "erase", *ctx.out);
  options.on_progress = progress.callback("files");
  auto erased = erasure::erase(config, manifest, options);
  progress.end();
  MAILDSAR_TRY_ASSIGN(erasure::EraseReport report, std::move(erased));
  const std::uint64_t failed = report.count("failed");
  const std::uint64_t stale = report.count("stale");
  Output &out = *ctx.out;
  if (out.json()) {
    out.json_line(erase_report_json(report, options.dry_run));
  } else {
    for (const erasure::ItemOutcome &o : report.items) {
      if (o.result != "done" && !o.detail.empty()) {
        out.line(fmt::format("{:<12} {}  {}", o.result, o.id.substr(0, 12), o.detail));
      }
    }
    for (const auto &[store, by] : report.counts) {
      std::string line;
      for (const auto &[result, n] : by) {
        line += fmt::format("{}{} {}", line.empty() ? "" : ", ", n, result);
      }
      out.line(fmt::format("{:<11} {}", store, line));
    }
    if (report.extra_copies > 0) {
      out.line(fmt::format("{} other copies of erased messages removed from their Maildirs", report.extra_copies));
    }
    if (report.retried > 0) {
      out.line(fmt::format("{} item(s) that failed in an earlier run were tried again", report.retried));
    }
    for (const erasure::EraseReport::Conversion &c : report.conversions) {
      out.line(fmt::format("{} -> {} ({} item(s) kept); the original is now {} — destroy it once the archive "
                           "is checked",
                           c.pst, c.mbox, c.kept, c.original));
    }
    out.line(options.dry_run == erasure::DryRun::yes
                 ? "dry run: nothing was changed"
                 : fmt::format("erasure of {} done; next: maildsar verify --subject ...", report.request));
  }
  const auto transient = static_cast<std::uint64_t>(std::ranges::count_if(
      report.items, [](const erasure::ItemOutcome &o) { return o.result == "failed" && o.transient; }));
  if (failed > 0 && failed == transient && stale == 0) {
    // Only temporary failures (a mailbox locked by another program, a read-only file system):
    // EX_TEMPFAIL, and the next run of the same manifest tries them again.
    out.diag("warning", fmt::format("{} item(s) failed temporarily (see above); run the same erase again later",
                                    failed));
    return core::exit_code(core::ErrorCode::temp_fail);
  }
  if (failed > 0 || stale > 0) {
    out.diag("warning", fmt::format("{} item(s) failed and {} were stale (changed since planning); see above",
                                    failed, stale));
    return core::k_exit_problem;
  }
  return core::k_exit_ok;
}

core::Result<int> run_verify(Context &ctx) {
  MAILDSAR_TRY_ASSIGN(query::SubjectProfile given, subject_from_args(ctx.vm));
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  MAILDSAR_TRY_ASSIGN(StepSubject step, resolve_request(config, std::move(given), ctx.operator_name));
  const query::SubjectProfile &subject = step.subject;
  // With hosts and no local source, there is no local part to certify (an empty estate's
  // certificate would say nothing remains "here", which is no statement about the subject).
  const bool local = !config.sources.empty() || config.hosts.empty();
  erasure::VerifyReport report;
  if (local) {
    MAILDSAR_TRY(require_indexed(config));
    const std::string cert = ctx.vm.count("out") != 0 ? ctx.vm["out"].as<std::string>() : "";
    Progress progress(ctx.progress, "verify", *ctx.out);
    auto verified = erasure::verify(config, subject, ctx.operator_name, cert, progress.callback("files"));
    progress.end();
    MAILDSAR_TRY_ASSIGN(report, std::move(verified));
  } else if (ctx.vm.count("out") != 0) {
    return core::fail(core::ErrorCode::usage, "verify --out: no local source to certify; each host writes its own certificate");
  }
  // Every host rescans its own stores (issue 15); one that cannot is named, never skipped.
  const std::vector<HostVerify> hosts = verify_hosts(config, subject);
  Output &out = *ctx.out;
  bool host_failed = false;
  bool remains = !report.remaining.empty();
  bool unsearched_any = !report.unsearched.empty();
  if (!hosts.empty()) {
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    for (const HostVerify &h : hosts) {
      host_failed = host_failed || !h.verified;
      remains = remains || !h.remaining.empty();
      unsearched_any = unsearched_any || !h.unsearched.empty();
      // One record per host's result on the DPO host's timeline (the host keeps its own).
      MAILDSAR_TRY(audit.append("verify-host", ctx.operator_name, subject.request,
                                json{{"host", h.name},
                                     {"verified", h.verified},
                                     {"clean", h.clean},
                                     {"remaining", h.remaining.size()},
                                     {"unsearched", h.unsearched.size()},
                                     {"certificate_sha256", h.certificate_sha256}}));
    }
  }
  if (out.json()) {
    json remaining = json::array();
    for (const erasure::Remaining &r : report.remaining) {
      remaining.push_back({{"where", r.where}, {"source", r.locator.source},
                           {"store", connectors::to_string(r.locator.store)}, {"path", r.locator.path},
                           {"detail", r.detail}});
    }
    json unsearched = json::array();
    for (const erasure::Remaining &r : report.unsearched) {
      unsearched.push_back({{"source", r.locator.source}, {"store", connectors::to_string(r.locator.store)},
                            {"path", r.locator.path}, {"detail", r.detail}});
    }
    json host_list = json::array();
    for (const HostVerify &h : hosts) {
      remaining.insert(remaining.end(), h.remaining.begin(), h.remaining.end());
      unsearched.insert(unsearched.end(), h.unsearched.begin(), h.unsearched.end());
      json row{{"name", h.name}, {"verified", h.verified}, {"clean", h.clean}};
      if (h.verified) {
        row.update({{"files_rescanned", h.files_rescanned}, {"retained", h.retained},
                    {"remaining", h.remaining.size()}, {"unsearched", h.unsearched.size()},
                    {"manifests", h.manifests},
                    {"certificate", h.certificate.empty() ? json() : json(h.certificate)},
                    {"certificate_sha256", h.certificate_sha256.empty() ? json() : json(h.certificate_sha256)}});
      } else {
        row["error"] = h.error;
      }
      host_list.push_back(std::move(row));
    }
    json doc{{"clean", !remains && !unsearched_any && !host_failed},
             {"pst_originals", report.certificate.is_object() ? report.certificate.value("pst_originals", json::array()) : json::array()},
             {"manifests", report.manifests},
             {"files_rescanned", report.files_rescanned},
             {"retained", report.retained},
             {"remaining", remaining},
             {"unsearched", unsearched},
             {"certificate", report.certificate_path}};
    if (!hosts.empty()) {
      doc["hosts"] = host_list;
      doc["local_part"] = local;
    }
    out.json_line(doc);
  } else {
    for (const erasure::Remaining &r : report.remaining) {
      out.line(fmt::format("REMAINS  {:<10} {}  {}", r.locator.source, r.locator.path, r.detail));
    }
    for (const erasure::Remaining &r : report.unsearched) {
      out.line(fmt::format("UNSEARCHED  {:<10} {}  {}", r.locator.source, r.locator.path, r.detail));
    }
    const auto text = [](const json &row, const char *key) { return row.value(key, std::string()); };
    for (const HostVerify &h : hosts) {
      for (const json &r : h.remaining) {
        out.line(fmt::format("REMAINS  {}:{:<10} {}  {}", h.name, text(r, "source"), text(r, "path"), text(r, "detail")));
      }
      for (const json &r : h.unsearched) {
        out.line(fmt::format("UNSEARCHED  {}:{:<10} {}  {}", h.name, text(r, "source"), text(r, "path"), text(r, "detail")));
      }
    }
    if (local && report.remaining.empty() && report.unsearched.empty()) {
      out.line(fmt::format("nothing of the subject remains ({} file(s) rescanned, {} item(s) retained); "
                           "certificate: {}",
                           report.files_rescanned, report.retained, report.certificate_path));
    }
    for (const HostVerify &h : hosts) {
      if (h.verified && h.clean) {
        out.line(fmt::format("host {}: nothing of the subject remains ({} file(s) rescanned, {} item(s) retained); "
                             "certificate on {}: {}",
                             h.name, h.files_rescanned, h.retained, h.name, h.certificate));
      } else if (h.verified) {
        out.line(fmt::format("host {}: {} place(s) remain, {} not searched completely", h.name, h.remaining.size(),
                             h.unsearched.size()));
      }
    }
  }
  for (const HostVerify &h : hosts) {
    if (!h.verified) {
      out.diag("error", h.error);
    }
  }
  if (host_failed) {
    out.diag("error", "verify cannot say nothing remains while a host of the estate could not be verified");
    return core::k_exit_problem;
  }
  if (remains) {
    return core::k_exit_problem; // something of the subject remains
  }
  if (unsearched_any) {
    // No answer, as for a source never indexed (exit 69): what was not searched may hold the
    // subject, so neither "nothing remains" nor a certificate.
    std::size_t unsearched_n = report.unsearched.size();
    for (const HostVerify &h : hosts) {
      unsearched_n += h.unsearched.size();
    }
    out.diag("error", fmt::format("no certificate: {} item(s) or file(s) were not searched completely and "
                                  "may hold the subject (listed above); raise the limit and run `maildsar "
                                  "index --full`, fix the unreadable files, or erase or check them by hand",
                                  unsearched_n));
    return core::k_exit_unavailable;
  }
  return core::k_exit_ok;
}

} // namespace maildsar::cli
