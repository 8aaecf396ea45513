// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar export: the Art. 15 access package.
#include "access/export.hpp"
#include "cli/commands.hpp"
#include "cli/hosts.hpp"
#include "cli/subject_args.hpp"
#include "core/audit.hpp"
#include "core/exit_codes.hpp"
#include "core/fs.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <sys/stat.h>

namespace maildsar::cli {

void export_options(po::options_description &desc, po::positional_options_description &) {
  add_subject_options(desc);
  add_host_options(desc);
  desc.add_options()("out", po::value<std::string>(), "package directory (new or empty)")
      ("zip", po::bool_switch(), "also write DIR.zip")
      ("redact-others", po::bool_switch(), "mask other people inside the message copies, log excerpts and the report (Art. 15(4); default: access.redact_others)")
      ("no-redact-others", po::bool_switch(), "copies as they are, even when the config's access.redact_others is true")
      ("keep-originals", po::bool_switch(), "with redaction: keep the unredacted copies in DIR.originals/ (internal, never to be sent)")
      ("draft", po::bool_switch(), "a draft for review: the package marked DRAFT and DIR.review.html (who each placeholder is, what was redacted)")
      ("mask", po::value<std::vector<std::string>>()->composing(), "with redaction: also mask this address, phone or name (repeatable)")
      ("unmask", po::value<std::vector<std::string>>()->composing(), "with redaction: never mask this address, phone or name (repeatable)")
      ("language", po::value<std::string>(), "language of report.html, report.pdf and the review page: en or de (default: access.language, else en)")
      ("force", po::bool_switch(), "write into a non-empty DIR");
}

namespace {

/** A package directory of its own (0700): new, or an existing empty directory (never a link). */
core::Status new_package_dir(const std::string &dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) {
    return {};
  }
  const int err = errno;
  struct stat st {};
  std::error_code ec;
  if (err == EEXIST && ::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && std::filesystem::is_empty(dir, ec) && !ec) {
    return {};
  }
  if (err == EEXIST) {
    return core::fail(core::ErrorCode::cant_create, fmt::format("export: {} exists and is not an empty directory", dir),
                      "choose a new directory");
  }
  return std::unexpected(core::errno_error("export: " + dir, err));
}

} // namespace

core::Result<int> run_export(Context &ctx) {
  if (!ctx.vm.count("out")) {
    return core::fail(core::ErrorCode::usage, "export: --out DIR is required",
                      "maildsar export --subject FILE --out DIR");
  }
  auto flag = [&](const char *name) { return ctx.vm.count(name) != 0 && ctx.vm[name].as<bool>(); };
  if (flag("redact-others") && flag("no-redact-others")) {
    return core::fail(core::ErrorCode::usage, "export: --redact-others and --no-redact-others contradict each other");
  }
  MAILDSAR_TRY_ASSIGN(query::SubjectProfile given, subject_from_args(ctx.vm));
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  const bool redact = flag("redact-others") || (config.access.redact_others && !flag("no-redact-others"));
  if (flag("keep-originals") && !redact) {
    return core::fail(core::ErrorCode::usage, "export: --keep-originals needs --redact-others (or access.redact_others)");
  }
  const auto list = [&](const char *name) {
    return ctx.vm.count(name) != 0 ? ctx.vm[name].as<std::vector<std::string>>() : std::vector<std::string>{};
  };
  if ((ctx.vm.count("mask") != 0 || ctx.vm.count("unmask") != 0) && !redact) {
    return core::fail(core::ErrorCode::usage, "export: --mask and --unmask need --redact-others (or access.redact_others)");
  }
  MAILDSAR_TRY_ASSIGN(StepSubject step, resolve_request(config, std::move(given), ctx.operator_name));
  const query::SubjectProfile &subject = step.subject;
  MAILDSAR_TRY_ASSIGN(std::vector<std::string> allowed_missing, allowed_missing_hosts(ctx.vm, config));
  Output &out = *ctx.out;
  // The other hosts of the estate (issue 15): each builds its part of the package from its own
  // index; first all are asked whether they can answer at all, so that a host that cannot makes
  // export write nothing (unless the DPO knowingly goes on without it).
  std::vector<HostOutcome> reachable;
  if (!config.hosts.empty()) {
    for (const char *name : {"zip", "force", "draft", "keep-originals"}) {
      if (flag(name)) {
        return core::fail(core::ErrorCode::usage, fmt::format("export: --{} is not supported across hosts (config \"hosts\") yet", name),
                          "docs/cli.md \"export\" across hosts");
      }
    }
    reachable = query_hosts(config, nullptr, allowed_missing, ctx.operator_name);
    if (refuse_missing_hosts(out, reachable, "EXPORTED",
                             "export writes no package while a host of the estate cannot be reached")) {
      return core::k_exit_problem;
    }
  }
  const bool local = !config.sources.empty() || config.hosts.empty();
  if (local) {
    MAILDSAR_TRY(require_indexed(config));
    MAILDSAR_TRY(warn_partially_indexed(config, *ctx.out));
  }
  // The Art. 15(1) texts are the controller's: never generic text without saying so.
  if (std::vector<std::string> missing = access::missing_access_information(config.access); local && !missing.empty()) {
    ctx.out->diag("warning", fmt::format("the config's \"access\" section does not state {}: the report says "
                                         "\"not stated\" or uses generic text there (docs/cli.md \"export\")",
                                         fmt::join(missing, ", ")));
  }
  access::ExportOptions options;
  options.out_dir = ctx.vm["out"].as<std::string>();
  // The package (and DIR.zip, DIR.originals) never goes into a mail store, nor a store into it.
  std::string base = options.out_dir;
  while (base.size() > 1 && base.back() == '/') {
    base.pop_back();
  }
  for (const char *suffix : {"", ".zip", ".originals"}) {
    MAILDSAR_TRY(core::check_outside_stores(config, base + suffix, "export --out"));
  }
  options.operator_name = ctx.operator_name;
  options.tool_version = MAILDSAR_VERSION;
  options.zip = flag("zip") ? access::ZipPackage::yes : access::ZipPackage::no;
  options.redact_others = redact ? access::RedactOthers::yes : access::RedactOthers::no;
  options.keep_originals = flag("keep-originals") ? access::KeepOriginals::yes : access::KeepOriginals::no;
  options.force = flag("force") ? access::Overwrite::yes : access::Overwrite::no;
  options.draft = flag("draft");
  options.mask = list("mask");
  options.language = config.access.language;
  if (ctx.vm.count("language") != 0) {
    options.language = ctx.vm["language"].as<std::string>();
    if (std::ranges::find(core::k_report_languages, options.language) == core::k_report_languages.end()) {
      return core::fail(core::ErrorCode::usage,
                        fmt::format("export: --language '{}' is not a report language (allowed: {})", options.language,
                                    fmt::join(core::k_report_languages, ", ")));
    }
  }
  options.unmask = list("unmask");
  if (options.draft) {
    MAILDSAR_TRY(core::check_outside_stores(config, base + ".review.html", "export --out"));
  }
  access::ExportSummary s;
  if (local) {
    Progress progress(ctx.progress, "export", *ctx.out);
    options.on_progress = progress.callback("items");
    auto exported = access::export_package(config, subject, options);
    progress.end();
    MAILDSAR_TRY_ASSIGN(s, std::move(exported));
  } else {
    // Only hosts: the package is their folders and hosts.json (a local report would say
    // "nothing held", which is not true of the estate).
    MAILDSAR_TRY(new_package_dir(base));
    s.out_dir = std::filesystem::absolute(base).lexically_normal().string();
  }
  bool hosts_failed = false;
  std::uint64_t host_items = 0;
  nlohmann::json host_not_searched = nlohmann::json::array();
  nlohmann::json host_rows = nlohmann::json::array();
  if (!config.hosts.empty()) {
    core::Config asked = config;
    std::erase_if(asked.hosts, [&](const core::HostConfig &h) {
      return std::ranges::any_of(reachable, [&](const HostOutcome &o) { return o.name == h.name && !o.searched; });
    });
    const std::string hosts_dir = s.out_dir + "/hosts";
    if (::mkdir(hosts_dir.c_str(), 0700) != 0) {
      return std::unexpected(core::errno_error("export: " + hosts_dir, errno));
    }
    HostExportOptions host_options{redact, options.language, options.mask, options.unmask};
    const std::vector<HostExport> exported =
        export_from_hosts(asked, subject, host_options, allowed_missing, hosts_dir);
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    nlohmann::json not_searched = nlohmann::json::array();
    for (const core::HostConfig &host : config.hosts) {
      nlohmann::json row{{"name", host.name}, {"exported", false}, {"folder", "hosts/" + host.name}};
      const auto e = std::ranges::find(exported, host.name, &HostExport::name);
      if (e != exported.end() && e->exported) {
        row.update({{"exported", true}, {"items", e->items}, {"copied", e->copied}, {"files", e->files},
                    {"bytes", e->bytes}, {"problems", e->problems.size()}, {"package_sha256", e->package_sha256}});
        for (const std::string &p : e->problems) {
          s.problems.push_back(p);
        }
        host_items += e->items;
      } else {
        const auto pre = std::ranges::find(reachable, host.name, &HostOutcome::name);
        const std::string error = e != exported.end() ? e->error : pre->error;
        const bool allowed = std::ranges::find(allowed_missing, host.name) != allowed_missing.end();
        if (e != exported.end()) { // failed after it answered status: never said yet
          out.diag(allowed ? "warning" : "error",
                   allowed ? fmt::format("{}; NOT EXPORTED (--allow-missing-host {})", error, host.name) : error);
        }
        hosts_failed = hosts_failed || !allowed;
        not_searched.push_back(host.name);
        row.update({{"error", error}, {"allowed_missing", allowed}});
      }
      // One record per host's part on the DPO host's timeline (the host recorded its own export).
      MAILDSAR_TRY(audit.append("export-host", ctx.operator_name, subject.request,
                                nlohmann::json{{"host", host.name},
                                               {"exported", row["exported"]},
                                               {"items", row.value("items", std::uint64_t{0})},
                                               {"files", row.value("files", std::uint64_t{0})},
                                               {"package_sha256", row.value("package_sha256", std::string())}}));
      host_rows.push_back(std::move(row));
    }
    const nlohmann::json index{{"schema", "maildsar.export-hosts"},
                               {"version", 1},
                               {"request", subject.request},
                               {"complete", not_searched.empty()},
                               {"not_searched", not_searched},
                               {"local_part", local},
                               {"hosts", host_rows}};
    MAILDSAR_TRY(core::write_file_atomic(s.out_dir + "/hosts.json", index.dump(2) + "\n", 0600));
    host_not_searched = not_searched;
    if (hosts_failed) {
      out.diag("error", "the package is INCOMPLETE: a host's part is missing (hosts.json says which)");
    }
  }
  for (const auto &p : s.problems) {
    out.diag("warning", p);
  }
  if (out.json()) {
    nlohmann::json per_source = nlohmann::json::object();
    for (const auto &[k, v] : s.per_source) {
      per_source[k] = v;
    }
    nlohmann::json doc{{"out", s.out_dir},
                                 {"zip", s.zip_path.empty() ? nlohmann::json() : nlohmann::json(s.zip_path)},
                                 {"items", s.items},
                                 {"copied", s.copied},
                                 {"files", s.files},
                                 {"masked", s.masked},
                                 {"withheld_attachments", s.withheld},
                                 {"review", s.review_path.empty() ? nlohmann::json() : nlohmann::json(s.review_path)},
                                 {"report_pdf", s.out_dir + "/report.pdf"},
                                 {"language", options.language},
                                 {"problems", s.problems.size()},
                                 {"per_source", per_source},
                                 {"package_sha256", s.package_hash.empty() ? nlohmann::json() : nlohmann::json(s.package_hash)}};
    if (!local) {
      doc["report_pdf"] = nullptr;
    }
    if (!config.hosts.empty()) {
      // Across hosts: the fields above are the local part's; each host's part is a row here.
      doc["hosts"] = host_rows;
      doc["complete"] = host_not_searched.empty();
      doc["not_searched"] = host_not_searched;
      doc["items_total"] = s.items + host_items;
      doc["local_part"] = local;
    }
    out.json_line(doc);
  } else {
    out.line(fmt::format("{} item(s) exported to {} ({} copied, {} problem(s))", s.items, s.out_dir,
                         s.copied, s.problems.size()));
    if (!s.zip_path.empty()) {
      out.line(fmt::format("zip: {}", s.zip_path));
    }
    if (s.masked > 0 || s.withheld > 0) {
      out.line(fmt::format("{} mention(s) of other people masked, {} attachment(s) withheld", s.masked, s.withheld));
    }
    if (!s.review_path.empty()) {
      out.line(fmt::format("DRAFT: review {} (names the people the package hides: for you only), then export "
                           "again without --draft",
                           s.review_path));
    }
    if (local) {
      out.line(fmt::format("package sha256: {}", s.package_hash));
    }
    for (const nlohmann::json &h : host_rows) {
      out.line(h["exported"].get<bool>()
                   ? fmt::format("host {}: {} item(s) in {}/{} ({} file(s), package sha256 {})",
                                 h["name"].get<std::string>(), h["items"].get<std::uint64_t>(), s.out_dir,
                                 h["folder"].get<std::string>(), h["files"].get<std::uint64_t>(),
                                 h["package_sha256"].get<std::string>())
                   : fmt::format("host {}: NOT EXPORTED", h["name"].get<std::string>()));
    }
  }
  return s.problems.empty() && !hosts_failed ? core::k_exit_ok : core::k_exit_problem;
}

} // namespace maildsar::cli
