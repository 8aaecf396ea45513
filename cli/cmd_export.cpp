// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar export: the Art. 15 access package.
#include "access/export.hpp"
#include "cli/commands.hpp"
#include "cli/subject_args.hpp"
#include "core/exit_codes.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace maildsar::cli {

void export_options(po::options_description &desc, po::positional_options_description &) {
  add_subject_options(desc);
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
  MAILDSAR_TRY(require_indexed(config));
  MAILDSAR_TRY(warn_partially_indexed(config, *ctx.out));
  // The Art. 15(1) texts are the controller's: never generic text without saying so.
  if (std::vector<std::string> missing = access::missing_access_information(config.access); !missing.empty()) {
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
  Progress progress(ctx.progress, "export", *ctx.out);
  options.on_progress = progress.callback("items");
  auto exported = access::export_package(config, subject, options);
  progress.end();
  MAILDSAR_TRY_ASSIGN(access::ExportSummary s, std::move(exported));
  Output &out = *ctx.out;
  for (const auto &p : s.problems) {
    out.diag("warning", p);
  }
  if (out.json()) {
    nlohmann::json per_source = nlohmann::json::object();
    for (const auto &[k, v] : s.per_source) {
      per_source[k] = v;
    }
    out.json_line(nlohmann::json{{"out", s.out_dir},
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
                                 {"package_sha256", s.package_hash}});
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
    out.line(fmt::format("package sha256: {}", s.package_hash));
  }
  return s.problems.empty() ? core::k_exit_ok : core::k_exit_problem;
}

} // namespace maildsar::cli
