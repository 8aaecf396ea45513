// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar request open|list|show|extend|update|close: the request register (issue 16).
#include "casework/register.hpp"
#include "cli/commands.hpp"
#include "cli/request_output.hpp"
#include "cli/subject_args.hpp"
#include "core/audit.hpp"
#include "core/exit_codes.hpp"

#include <fmt/format.h>

#include <charconv>

namespace maildsar::cli {

using nlohmann::json;

void request_options(po::options_description &desc, po::positional_options_description &pos) {
  desc.add_options()                                                                         //
      ("action", po::value<std::string>(), "open | list | show | extend | update | close")    //
      ("id", po::value<std::string>(), "the request id (open: optional, generated when absent)")
      ("type", po::value<std::string>(), "open: access | erasure | rectification | restriction | objection")
      ("received", po::value<std::string>(), "open: the date the request was received, YYYY-MM-DD (default: today)")
      ("subject", po::value<std::string>(), "open: subject file (JSON: emails, names, phones, ips)")
      ("email", po::value<std::vector<std::string>>()->composing(), "open: an e-mail address of the subject (repeatable)")
      ("name", po::value<std::vector<std::string>>()->composing(), "open: a name of the subject (repeatable)")
      ("phone", po::value<std::vector<std::string>>()->composing(), "open: a phone number of the subject (repeatable)")
      ("ip", po::value<std::vector<std::string>>()->composing(), "open: an IP address of the subject (repeatable)")
      ("months", po::value<int>(), "extend: further months (at most 2 in total, Art. 12(3))")
      ("reason", po::value<std::string>(), "extend: why (required); update --status refused: why (required)")
      ("status", po::value<std::string>(),
       "update: waiting-for-identity | in-progress | answered | refused | open")
      ("note", po::value<std::string>(), "open, update, close: add a note (kept in the register only)")
      ("due-within", po::value<std::string>(), "list: only requests due within this period (7d, 2w) or overdue")
      ("all", "list: closed requests too")
      ("today", po::value<std::string>(), "judge dates as of YYYY-MM-DD (default: today, UTC)");
  pos.add("action", 1).add("id", 1);
}

/** The request object (docs/schemata.md "maildsar.request"). */
json request_json(const casework::Request &r, casework::Date today, bool with_subject) {
  json j{{"schema", "maildsar.request"},
         {"version", 1},
         {"id", r.id},
         {"type", casework::to_string(r.type)},
         {"status", casework::to_string(r.status)},
         {"received", casework::to_string(r.received)},
         {"due", casework::to_string(r.due())},
         {"extension_months", r.extension_months},
         {"deadline_running", r.deadline_running()},
         {"days_left", r.days_left(today)},
         {"overdue", r.overdue(today)},
         {"opened", r.opened},
         {"opened_by", r.opened_by},
         {"closed", r.closed ? json(casework::to_string(*r.closed)) : json(nullptr)},
         {"purged", r.purged.empty() ? json(nullptr) : json(r.purged)}};
  if (!r.reason.empty()) {
    j["reason"] = r.reason;
  }
  if (!r.extension_reason.empty()) {
    j["extension_reason"] = r.extension_reason;
  }
  if (!r.outcome.empty()) {
    j["outcome"] = r.outcome;
  }
  if (with_subject) {
    if (r.purged.empty()) {
      j["subject"] = json{{"emails", r.subject.emails},
                          {"names", r.subject.names},
                          {"phones", r.subject.phones},
                          {"ips", r.subject.ips}};
    } else {
      json keyed = json::array();
      for (const erasure::KeyedIdentifier &k : r.keyed_subject) {
        keyed.push_back({{"kind", k.kind}, {"hash", k.hash}});
      }
      j["keyed_subject"] = keyed;
    }
    json notes = json::array();
    for (const casework::Note &n : r.notes) {
      notes.push_back({{"time", n.time}, {"operator", n.operator_name}, {"text", n.text}});
    }
    j["notes"] = notes;
  }
  return j;
}

core::Result<casework::Date> today_option(const po::variables_map &vm) {
  if (vm.count("today") != 0) {
    return casework::parse_date(vm["today"].as<std::string>(), "--today");
  }
  return casework::today_utc();
}

core::Result<std::int64_t> due_within_days(const po::variables_map &vm, std::int64_t fallback) {
  if (vm.count("due-within") == 0) {
    return fallback;
  }
  const std::string text = vm["due-within"].as<std::string>();
  auto seconds = core::parse_duration(text);
  if (!seconds || *seconds % 86400 != 0) {
    return core::fail(core::ErrorCode::usage, fmt::format("--due-within '{}' is not a number of days or weeks", text),
                      "e.g. 7d or 2w");
  }
  return *seconds / 86400;
}

namespace {

std::string describe(const casework::Request &r, casework::Date today) {
  std::string state = std::string(casework::to_string(r.status));
  if (r.status == casework::Status::closed) {
    state += fmt::format(" {} ({})", casework::to_string(*r.closed), r.outcome);
  } else if (r.overdue(today)) {
    state += fmt::format(", OVERDUE by {} day(s)", -r.days_left(today));
  } else if (r.deadline_running()) {
    state += fmt::format(", {} day(s) left", r.days_left(today));
  }
  return fmt::format("{:<20} {:<13} received {}  due {}  {}", r.id, casework::to_string(r.type),
                     casework::to_string(r.received), casework::to_string(r.due()), state);
}

core::Result<std::string> need_id(const po::variables_map &vm, std::string_view action) {
  if (vm.count("id") == 0) {
    return core::fail(core::ErrorCode::usage, fmt::format("request {}: the request id is required", action),
                      fmt::format("maildsar request {} ID", action));
  }
  return vm["id"].as<std::string>();
}

std::string opt(const po::variables_map &vm, const char *name) {
  return vm.count(name) != 0 ? vm[name].as<std::string>() : std::string();
}

/** Options that belong to other actions are a usage error, not silently ignored. */
core::Status only(const po::variables_map &vm, std::string_view action, std::initializer_list<std::string_view> allowed) {
  for (const char *name : {"type", "received", "subject", "email", "name", "phone", "ip", "months", "reason", "status",
                           "note", "due-within", "all"}) {
    if (vm.count(name) != 0 && std::ranges::find(allowed, std::string_view(name)) == allowed.end()) {
      return core::fail(core::ErrorCode::usage, fmt::format("request {}: --{} does not apply", action, name),
                        "run 'maildsar request --help'");
    }
  }
  return {};
}

int print_one(Output &out, const casework::Request &r, casework::Date today, std::string_view done) {
  if (out.json()) {
    out.json_line(request_json(r, today, false));
  } else {
    out.line(fmt::format("{}: {}", done, describe(r, today)));
  }
  return core::k_exit_ok;
}

core::Result<int> run_open(Context &ctx, const core::Config &config, casework::Date today) {
  MAILDSAR_TRY(only(ctx.vm, "open", {"type", "received", "subject", "email", "name", "phone", "ip", "note"}));
  casework::NewRequest n;
  n.id = opt(ctx.vm, "id");
  const std::string type = opt(ctx.vm, "type");
  auto t = casework::request_type_from_string(type);
  if (!t) {
    return core::fail(core::ErrorCode::usage,
                      type.empty() ? std::string("request open: --type is required")
                                   : fmt::format("request open: --type '{}' is not a request type", type),
                      "access, erasure, rectification, restriction or objection");
  }
  n.type = *t;
  n.received = today;
  if (ctx.vm.count("received") != 0) {
    MAILDSAR_TRY_ASSIGN(n.received, casework::parse_date(opt(ctx.vm, "received"), "--received"));
  }
  if (ctx.vm.count("subject") + ctx.vm.count("email") + ctx.vm.count("name") + ctx.vm.count("phone") +
          ctx.vm.count("ip") ==
      0) {
    return core::fail(core::ErrorCode::usage, "request open: no identifier of the subject",
                      "name the person with --email/--name/--phone/--ip or --subject FILE");
  }
  MAILDSAR_TRY_ASSIGN(n.subject, subject_from_args(ctx.vm));
  if (!n.subject.request.empty() && n.id.empty()) {
    n.id = n.subject.request; // a subject file's "request"
  }
  n.note = opt(ctx.vm, "note");
  MAILDSAR_TRY_ASSIGN(casework::Register reg, casework::Register::open(config));
  MAILDSAR_TRY_ASSIGN(casework::Request r, reg.open_request(n, today, ctx.operator_name));
  return print_one(*ctx.out, r, today, "opened");
}

core::Result<int> run_list(Context &ctx, const core::Config &config, casework::Date today) {
  MAILDSAR_TRY(only(ctx.vm, "list", {"due-within", "all"}));
  if (ctx.vm.count("id") != 0) {
    return core::fail(core::ErrorCode::usage, "request list takes no id", "maildsar request show ID");
  }
  const bool all = ctx.vm.count("all") != 0;
  const bool due_filter = ctx.vm.count("due-within") != 0;
  MAILDSAR_TRY_ASSIGN(std::int64_t days, due_within_days(ctx.vm, 0));
  MAILDSAR_TRY_ASSIGN(std::optional<casework::Register> reg, casework::Register::open_existing(config));
  std::vector<casework::Request> requests;
  if (reg) {
    MAILDSAR_TRY_ASSIGN(requests, reg->list());
  }
  Output &out = *ctx.out;
  std::uint64_t shown = 0;
  std::uint64_t overdue = 0;
  for (const casework::Request &r : requests) {
    if (due_filter ? !(r.deadline_running() && r.days_left(today) <= days)
                   : (!all && r.status == casework::Status::closed)) {
      continue;
    }
    ++shown;
    overdue += r.overdue(today) ? 1U : 0U;
    if (out.json()) {
      out.json_line(request_json(r, today, false));
    } else {
      out.line(describe(r, today));
    }
  }
  if (out.json()) {
    out.json_line(json{{"summary", {{"today", casework::to_string(today)}, {"requests", shown}, {"overdue", overdue}}}});
  } else {
    out.line(fmt::format("{} request(s){}", shown, overdue > 0 ? fmt::format(", {} OVERDUE", overdue) : ""));
  }
  return core::k_exit_ok;
}

core::Result<int> run_show(Context &ctx, const core::Config &config, casework::Date today) {
  MAILDSAR_TRY(only(ctx.vm, "show", {}));
  MAILDSAR_TRY_ASSIGN(std::string id, need_id(ctx.vm, "show"));
  MAILDSAR_TRY_ASSIGN(std::optional<casework::Register> reg, casework::Register::open_existing(config));
  if (!reg) {
    return core::fail(core::ErrorCode::no_input,
                      fmt::format("no request {}: the register {} does not exist yet", id, casework::register_path(config)));
  }
  MAILDSAR_TRY_ASSIGN(casework::Request r, reg->get(id));
  // The timeline: every audit record of this request, in order.
  MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
  MAILDSAR_TRY_ASSIGN(std::vector<core::AuditRecord> records, audit.records());
  json timeline = json::array();
  for (const core::AuditRecord &rec : records) {
    if (rec.request == id) {
      json entry{{"seq", rec.seq},
                 {"time", rec.time},
                 {"operator", rec.operator_name},
                 {"action", rec.action},
                 {"details", rec.details}};
      if (!rec.os_user.empty()) {
        entry["os_user"] = rec.os_user; // an OS login acted for the operator
      }
      timeline.push_back(std::move(entry));
    }
  }
  Output &out = *ctx.out;
  if (out.json()) {
    json j = request_json(r, today, true);
    j["timeline"] = timeline;
    out.json_line(j);
    return core::k_exit_ok;
  }
  out.line(describe(r, today));
  out.line(fmt::format("  opened {} by {}", r.opened, r.opened_by));
  if (!r.reason.empty()) {
    out.line(fmt::format("  refused: {}", r.reason));
  }
  if (r.extension_months > 0) {
    out.line(fmt::format("  extended by {} month(s): {}", r.extension_months, r.extension_reason));
  }
  if (r.purged.empty()) {
    auto list = [&](std::string_view what, const std::vector<std::string> &v) {
      for (const std::string &x : v) {
        out.line(fmt::format("  {:<6} {}", what, x));
      }
    };
    list("email", r.subject.emails);
    list("name", r.subject.names);
    list("phone", r.subject.phones);
    list("ip", r.subject.ips);
  } else {
    out.line(fmt::format("  identifiers purged {} ({} keyed hashes kept)", r.purged, r.keyed_subject.size()));
  }
  for (const casework::Note &n : r.notes) {
    out.line(fmt::format("  note {} {}: {}", n.time, n.operator_name, n.text));
  }
  out.line("  timeline (audit log):");
  for (const json &t : timeline) {
    std::string who = t["operator"].get<std::string>();
    if (t.contains("os_user")) {
      who += fmt::format(" (OS user {})", t["os_user"].get<std::string>());
    }
    out.line(fmt::format("    {}  {:<16} {:<10} {}", t["time"].get<std::string>(), t["action"].get<std::string>(), who,
                         t["details"].dump()));
  }
  return core::k_exit_ok;
}

core::Result<int> run_extend(Context &ctx, const core::Config &config, casework::Date today) {
  MAILDSAR_TRY(only(ctx.vm, "extend", {"months", "reason"}));
  MAILDSAR_TRY_ASSIGN(std::string id, need_id(ctx.vm, "extend"));
  if (ctx.vm.count("months") == 0) {
    return core::fail(core::ErrorCode::usage, "request extend: --months N is required");
  }
  MAILDSAR_TRY_ASSIGN(casework::Register reg, casework::Register::open(config));
  MAILDSAR_TRY_ASSIGN(casework::Request r,
                      reg.extend(id, ctx.vm["months"].as<int>(), opt(ctx.vm, "reason"), today, ctx.operator_name));
  return print_one(*ctx.out, r, today, "extended");
}

core::Result<int> run_update(Context &ctx, const core::Config &config, casework::Date today) {
  MAILDSAR_TRY(only(ctx.vm, "update", {"status", "reason", "note"}));
  MAILDSAR_TRY_ASSIGN(std::string id, need_id(ctx.vm, "update"));
  if (ctx.vm.count("status") == 0 && ctx.vm.count("note") == 0) {
    return core::fail(core::ErrorCode::usage, "request update: give --status and/or --note");
  }
  if (ctx.vm.count("reason") != 0 && opt(ctx.vm, "status") != "refused") {
    return core::fail(core::ErrorCode::usage, "request update: --reason goes with --status refused");
  }
  MAILDSAR_TRY_ASSIGN(casework::Register reg, casework::Register::open(config));
  MAILDSAR_TRY_ASSIGN(casework::Request r, reg.get(id)); // unknown id: 66 before anything changes
  if (ctx.vm.count("status") != 0) {
    const std::string name = opt(ctx.vm, "status");
    auto status = casework::status_from_string(name);
    if (!status) {
      return core::fail(core::ErrorCode::usage, fmt::format("request update: --status '{}' is not a status", name),
                        "open, waiting-for-identity, in-progress, answered, refused (close: `request close`)");
    }
    MAILDSAR_TRY_ASSIGN(r, reg.set_status(id, *status, opt(ctx.vm, "reason"), ctx.operator_name));
  }
  if (ctx.vm.count("note") != 0) {
    MAILDSAR_TRY(reg.add_note(id, opt(ctx.vm, "note"), ctx.operator_name));
  }
  return print_one(*ctx.out, r, today, "updated");
}

core::Result<int> run_close(Context &ctx, const core::Config &config, casework::Date today) {
  MAILDSAR_TRY(only(ctx.vm, "close", {"note"}));
  MAILDSAR_TRY_ASSIGN(std::string id, need_id(ctx.vm, "close"));
  MAILDSAR_TRY_ASSIGN(casework::Register reg, casework::Register::open(config));
  MAILDSAR_TRY_ASSIGN(casework::Request before, reg.get(id));
  if (ctx.vm.count("note") != 0 && before.status != casework::Status::closed) {
    MAILDSAR_TRY(reg.add_note(id, opt(ctx.vm, "note"), ctx.operator_name));
  }
  MAILDSAR_TRY_ASSIGN(casework::Request r, reg.close(id, today, ctx.operator_name));
  return print_one(*ctx.out, r, today, "closed");
}

} // namespace

core::Result<int> run_request(Context &ctx) {
  const std::string action = opt(ctx.vm, "action");
  MAILDSAR_TRY_ASSIGN(casework::Date today, today_option(ctx.vm));
  using Handler = core::Result<int> (*)(Context &, const core::Config &, casework::Date);
  Handler handler = nullptr;
  if (action == "open") {
    handler = run_open;
  } else if (action == "list") {
    handler = run_list;
  } else if (action == "show") {
    handler = run_show;
  } else if (action == "extend") {
    handler = run_extend;
  } else if (action == "update") {
    handler = run_update;
  } else if (action == "close") {
    handler = run_close;
  } else {
    return core::fail(core::ErrorCode::usage,
                      action.empty() ? std::string("request: which action?")
                                     : fmt::format("request: unknown action '{}'", action),
                      "open, list, show, extend, update or close");
  }
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  return handler(ctx, config, today);
}

} // namespace maildsar::cli
