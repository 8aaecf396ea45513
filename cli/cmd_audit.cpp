// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar audit [verify]: show or verify the tamper-evident audit log.
#include "cli/commands.hpp"
#include "core/audit.hpp"
#include "core/exit_codes.hpp"

#include <fmt/format.h>

namespace maildsar::cli {

void audit_options(po::options_description &desc, po::positional_options_description &pos) {
  desc.add_options() //
      ("audit-words", po::value<std::vector<std::string>>()->composing(),
       "'verify' checks the hash chain instead of listing the records");
  pos.add("audit-words", -1);
}

namespace {

constexpr std::size_t k_summary_width = 160;

/** "counts={\"deleted\":3} manifest_sha256=ab12…": details in one line, strings unquoted. */
std::string summary(const nlohmann::json &details) {
  std::string out;
  if (details.is_object()) {
    for (const auto &[key, value] : details.items()) {
      if (!out.empty()) {
        out += ' ';
      }
      out += key + "=" +
             (value.is_string() ? value.get<std::string>()
                                : value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
  } else if (!details.is_null()) {
    out = details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  if (out.size() > k_summary_width) {
    out.resize(k_summary_width - 3);
    out += "...";
  }
  return out;
}

std::string or_dash(const std::string &s) { return s.empty() ? std::string("-") : s; }

} // namespace

core::Result<int> run_audit(Context &ctx) {
  bool verify = false;
  if (ctx.vm.count("audit-words") != 0) {
    const auto &words = ctx.vm["audit-words"].as<std::vector<std::string>>();
    for (const std::string &word : words) {
      if (word != "verify" || words.size() > 1) {
        return core::fail(core::ErrorCode::usage,
                          fmt::format("audit: unexpected argument '{}'", word),
                          "usage: maildsar audit [verify]");
      }
    }
    verify = true;
  }
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  MAILDSAR_TRY_ASSIGN(core::AuditLog log, core::AuditLog::open(config.state_dir));
  Output &out = *ctx.out;

  if (verify) {
    MAILDSAR_TRY_ASSIGN(std::optional<core::AuditProblem> problem, log.verify());
    if (problem) {
      if (out.json()) {
        out.json_line({{"intact", false},
                       {"line", problem->line},
                       {"seq", problem->seq},
                       {"cause", problem->cause},
                       {"log", log.log_path()}});
      } else {
        out.line(fmt::format("audit log NOT intact: {} line {} (seq {}): {}", log.log_path(),
                             problem->line, problem->seq, problem->cause));
      }
      return core::k_exit_problem;
    }
    MAILDSAR_TRY_ASSIGN(std::vector<core::AuditRecord> records, log.records());
    if (out.json()) {
      out.json_line({{"intact", true}, {"records", records.size()}, {"log", log.log_path()}});
    } else {
      out.line(fmt::format("audit log intact: {} records", records.size()));
    }
    return core::k_exit_ok;
  }

  MAILDSAR_TRY_ASSIGN(std::vector<core::AuditRecord> records, log.records());
  for (const core::AuditRecord &r : records) {
    if (out.json()) {
      out.json_line(r.to_json());
    } else {
      const std::string who = r.os_user.empty() ? or_dash(r.operator_name)
                                                : fmt::format("{} (OS user {})", or_dash(r.operator_name), r.os_user);
      out.line(fmt::format("{:>4} {} {} {} {} {}", r.seq, r.time, who,
                           or_dash(r.action), or_dash(r.request), summary(r.details)));
    }
  }
  return core::k_exit_ok;
}

} // namespace maildsar::cli
