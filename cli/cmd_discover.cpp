// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar discover: identifiers probably the subject's too, with evidence, for a person to
// confirm at intake (issue 16 item 4). Read-only unless --add names the confirmed ones.
#include "casework/register.hpp"
#include "cli/commands.hpp"
#include "cli/subject_args.hpp"
#include "core/audit.hpp"
#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "query/discover.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cmath>

namespace maildsar::cli {

using nlohmann::json;

void discover_options(po::options_description &desc, po::positional_options_description &) {
  add_subject_options(desc);
  desc.add_options()                                                                  //
      ("add", po::value<std::vector<std::string>>()->multitoken()->composing(),
       "add these proposed identifiers (as listed) to the --request, or to the --subject FILE")
      ("min-score", po::value<double>()->default_value(0.0, "0"), "list only candidates scoring at least this (0..1)");
}

namespace {

json locator_json(const connectors::Locator &loc) {
  query::Hit h;
  h.locator = loc;
  json j = hit_json(h);
  j.erase("id");
  return j;
}

json candidate_json(const query::Candidate &c) {
  json evidence = json::array();
  for (const query::DiscoveryEvidence &e : c.evidence) {
    evidence.push_back({{"rule", e.rule}, {"items", e.items}, {"score", e.score}});
  }
  json examples = json::array();
  for (const connectors::Locator &l : c.examples) {
    examples.push_back(locator_json(l));
  }
  return json{{"kind", c.kind},
              {"identifier", c.identifier},
              {"score", c.score},
              {"evidence", evidence},
              {"items", c.items},
              {"first", c.first ? json(iso_date(*c.first)) : json(nullptr)},
              {"last", c.last ? json(iso_date(*c.last)) : json(nullptr)},
              {"examples", examples}};
}

/** Adds `more` to the subject file at `path` (its other keys kept), written atomically. */
core::Status add_to_subject_file(const std::string &path, const query::SubjectProfile &more) {
  MAILDSAR_TRY_ASSIGN(std::string text, core::read_file(path, 1U << 20));
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: not a subject file (JSON object)", path));
  }
  const auto merge = [&j](const char *key, const std::vector<std::string> &values) {
    json &list = j[key];
    if (!list.is_array()) {
      list = json::array();
    }
    for (const std::string &v : values) {
      if (std::ranges::find(list, json(v)) == list.end()) {
        list.push_back(v);
      }
    }
  };
  merge("emails", more.emails);
  merge("phones", more.phones);
  MAILDSAR_TRY(query::parse_subject(j.dump(), path)); // still a subject file
  return core::write_file_atomic(path, j.dump(2) + "\n");
}

} // namespace

core::Result<int> run_discover(Context &ctx) {
  MAILDSAR_TRY_ASSIGN(query::SubjectProfile given, subject_from_args(ctx.vm));
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  const double min_score = ctx.vm["min-score"].as<double>();
  if (!(min_score >= 0 && min_score <= 1)) {
    return core::fail(core::ErrorCode::usage, "discover: --min-score must be from 0 to 1");
  }
  // The subject of a registered request comes from the register; discovery does not start the
  // request's work (its status stays as it is): it is part of intake.
  query::SubjectProfile subject = given;
  bool registered = false;
  if (!given.request.empty()) {
    MAILDSAR_TRY_ASSIGN(std::optional<casework::Register> reg, casework::Register::open_existing(config));
    if (reg) {
      MAILDSAR_TRY_ASSIGN(std::optional<casework::Request> r, reg->find(given.request));
      if (r) {
        if (!given.empty()) {
          return core::fail(core::ErrorCode::usage,
                            fmt::format("discover: request {} is registered; its subject comes from the register",
                                        given.request),
                            "leave out --email/--name/--phone/--ip/--subject, or use `request show`");
        }
        if (!r->purged.empty()) {
          return core::fail(core::ErrorCode::data, fmt::format("request {}: its identifiers were purged", r->id));
        }
        subject = r->subject;
        registered = true;
      }
    }
    if (!registered && given.empty()) {
      return core::fail(core::ErrorCode::no_input, fmt::format("no request {} in the register", given.request),
                        "`maildsar request list --all` lists the requests");
    }
  }
  MAILDSAR_TRY(require_indexed(config));
  MAILDSAR_TRY_ASSIGN(query::DiscoveryReport report, query::discover(config, subject));
  std::vector<const query::Candidate *> listed;
  for (const query::Candidate &c : report.candidates) {
    if (c.score + 1e-9 >= min_score) {
      listed.push_back(&c);
    }
  }

  // --add: only identifiers discovery proposed (anything else: `request` or the subject file).
  query::SubjectProfile added;
  added.request = subject.request;
  if (ctx.vm.count("add") != 0) {
    for (const std::string &want : ctx.vm["add"].as<std::vector<std::string>>()) {
      auto found = std::ranges::find_if(report.candidates, [&](const query::Candidate &c) { return c.identifier == want; });
      if (found == report.candidates.end()) {
        return core::fail(core::ErrorCode::usage,
                          fmt::format("discover --add {}: not among the identifiers proposed", want),
                          "give an identifier exactly as `discover` lists it");
      }
      (found->kind == "phone" ? added.phones : added.emails).push_back(found->identifier);
    }
    if (registered) {
      MAILDSAR_TRY_ASSIGN(casework::Register reg, casework::Register::open(config));
      MAILDSAR_TRY(reg.add_identifiers(subject.request, added, ctx.operator_name));
    } else if (ctx.vm.count("subject") != 0) {
      MAILDSAR_TRY(add_to_subject_file(ctx.vm["subject"].as<std::string>(), added));
    } else {
      return core::fail(core::ErrorCode::usage, "discover --add: nowhere to add them",
                        "give --request ID (a registered request) or --subject FILE");
    }
  }
  const std::size_t n_added = added.emails.size() + added.phones.size();
  if (registered) {
    // On the request's timeline; counts only.
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    MAILDSAR_TRY(audit.append("discover", ctx.operator_name, subject.request,
                              json{{"candidates", report.candidates.size()}, {"added", n_added}}));
  }

  Output &out = *ctx.out;
  if (out.json()) {
    json candidates = json::array();
    for (const query::Candidate *c : listed) {
      candidates.push_back(candidate_json(*c));
    }
    json add_list = json::array();
    for (const std::string &v : added.emails) {
      add_list.push_back(v);
    }
    for (const std::string &v : added.phones) {
      add_list.push_back(v);
    }
    out.json_line(json{{"request", subject.request},
                       {"items_read", report.items_read},
                       {"candidates", candidates},
                       {"added", add_list}});
    return core::k_exit_ok;
  }
  for (const query::Candidate *c : listed) {
    std::vector<std::string> why;
    for (const query::DiscoveryEvidence &e : c->evidence) {
      why.push_back(fmt::format("{} x{}", e.rule, e.items));
    }
    out.line(fmt::format("{:.2f}  {:<5}  {}", c->score, c->kind, c->identifier));
    out.line(fmt::format("      evidence: {}; {} item(s), {} .. {}", fmt::join(why, ", "), c->items,
                         c->first ? iso_date(*c->first).substr(0, 10) : "?",
                         c->last ? iso_date(*c->last).substr(0, 10) : "?"));
    for (const connectors::Locator &l : c->examples) {
      query::Hit h;
      h.locator = l;
      out.line(fmt::format("      e.g. {}: {}", l.source, hit_location(h)));
    }
  }
  out.line(fmt::format("{} candidate(s) from {} item(s); {}", listed.size(), report.items_read,
                       n_added > 0 ? fmt::format("{} added to {}", n_added,
                                                 registered ? subject.request : std::string("the subject file"))
                                   : std::string("nothing was added: confirm with --add IDENTIFIER...")));
  return core::k_exit_ok;
}

} // namespace maildsar::cli
