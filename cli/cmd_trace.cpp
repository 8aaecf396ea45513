// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar trace: every stored copy and log transaction of one message, and its path.
#include "cli/commands.hpp"
#include "cli/hosts.hpp"
#include "core/exit_codes.hpp"
#include "query/trace.hpp"

#include <fmt/format.h>

namespace maildsar::cli {

void trace_options(po::options_description &desc, po::positional_options_description &pos) {
  desc.add_options()("message-id", po::value<std::string>(),
                     "the Message-ID to trace (angle brackets optional)");
  add_host_options(desc);
  pos.add("message-id", 1);
}

namespace {

nlohmann::json optional_text(const std::string &s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

nlohmann::json hop_json(const query::Hop &h) {
  return {{"kind", "hop"},
          {"index", h.index},
          {"from", optional_text(h.from)},
          {"by", optional_text(h.by)},
          {"ip", optional_text(h.ip)},
          {"protocol", optional_text(h.protocol)},
          {"tls", optional_text(h.tls)},
          {"date", h.date ? nlohmann::json(iso_date(*h.date)) : nlohmann::json(nullptr)}};
}

nlohmann::json copy_json(const query::TraceCopy &c) {
  nlohmann::json j{{"kind", "copy"}};
  j.update(hit_json(c.hit));
  j["arrived"] = c.arrived ? nlohmann::json(iso_date(*c.arrived)) : nlohmann::json(nullptr);
  if (c.hit.locator.store == connectors::StoreKind::postfix_queue ||
      c.hit.locator.store == connectors::StoreKind::exim_spool) {
    j["same_queue_id"] = c.same_queue_id; // ids of the log transactions of this queue id
  }
  return j;
}


/** "HOST:" before a remote copy's source in human output, "" for a local one. */
std::string host_prefix(const nlohmann::json &copy) {
  return copy.contains("host") && copy["host"].is_string() ? copy["host"].get<std::string>() + ":" : std::string();
}

std::string text_of(const nlohmann::json &j, const char *key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/** A hop object (local or from a host) for humans, as hop_line shows a local hop. */
std::string hop_json_line(const nlohmann::json &h) {
  const std::string date = text_of(h, "date");
  std::string s = fmt::format("  {:>2}. {}  {} -> {}", h.value("index", 0), date.empty() ? std::string(20, '-') : date,
                              text_of(h, "from").empty() ? std::string("?") : text_of(h, "from"),
                              text_of(h, "by").empty() ? std::string("?") : text_of(h, "by"));
  for (const auto &[key, word] : {std::pair{"ip", "ip"}, std::pair{"protocol", "with"}, std::pair{"tls", "tls"}}) {
    if (!text_of(h, key).empty()) {
      s += fmt::format("  {} {}", word, text_of(h, key));
    }
  }
  return s;
}

} // namespace

nlohmann::json trace_json(const query::Trace &t) {
  nlohmann::json hops = nlohmann::json::array();
  for (const auto &h : t.hops) {
    hops.push_back(hop_json(h));
  }
  nlohmann::json copies = nlohmann::json::array();
  for (const auto &c : t.copies) {
    copies.push_back(copy_json(c));
  }
  return nlohmann::json{{"message_id", t.message_id}, {"hops", hops}, {"copies", copies}, {"problems", t.problems}};
}

core::Result<int> run_trace(Context &ctx) {
  if (ctx.vm.count("message-id") == 0) {
    return core::fail(core::ErrorCode::usage, "trace: no MESSAGE-ID given",
                      "maildsar trace '<20231114100000.1234@mx1.example.com>'");
  }
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  MAILDSAR_TRY_ASSIGN(std::vector<std::string> allowed_missing, allowed_missing_hosts(ctx.vm, config));
  const std::string wanted = ctx.vm["message-id"].as<std::string>();
  const bool local = !config.sources.empty() || config.hosts.empty();
  query::Trace t;
  t.message_id = query::normalise_message_id(wanted);
  if (local) {
    MAILDSAR_TRY(require_indexed(config));
    MAILDSAR_TRY_ASSIGN(t, query::trace(config, wanted));
  } else if (t.message_id.empty()) {
    return core::fail(core::ErrorCode::usage, "trace: the MESSAGE-ID is empty");
  }
  Output &out = *ctx.out;
  // The other hosts of the estate (issue 15): a message's path crosses them (MX, then IMAP);
  // all are asked, or no answer is given, unless the DPO names the missing one.
  const std::vector<HostOutcome> hosts = trace_hosts(config, t.message_id, allowed_missing, ctx.operator_name);
  if (refuse_missing_hosts(out, hosts, "SEARCHED", "trace gives no answer while a host of the estate could not be searched")) {
    return core::k_exit_problem;
  }
  for (const std::string &p : t.problems) {
    out.diag("warning", fmt::format("cannot read a copy: {}", p));
  }
  // Every copy of the estate, in time order (undated last); the path from the copy with the
  // most Received fields, wherever it is.
  nlohmann::json trace = trace_json(t);
  nlohmann::json copies = trace["copies"];
  if (!out.json()) {
    // Humans see a local copy's place as everywhere else (hit_location).
    for (std::size_t i = 0; i < copies.size(); ++i) {
      copies[i]["_where"] = hit_location(t.copies[i].hit);
    }
  }
  nlohmann::json hops = trace["hops"];
  bool complete = true;
  for (const HostOutcome &h : hosts) {
    complete = complete && h.searched;
    for (const std::string &p : h.problems) {
      out.diag("warning", fmt::format("host {}: cannot read a copy: {}", h.name, p));
    }
    copies.insert(copies.end(), h.hits.begin(), h.hits.end());
    if (h.hops.size() > hops.size()) {
      hops = h.hops;
    }
  }
  std::stable_sort(copies.begin(), copies.end(), [](const nlohmann::json &a, const nlohmann::json &b) {
    const std::string x = text_of(a, "arrived");
    const std::string y = text_of(b, "arrived");
    return !x.empty() && (y.empty() || x < y);
  });
  if (out.json()) {
    for (const auto &h : hops) {
      out.json_line(h);
    }
    for (const auto &c : copies) {
      out.json_line(c);
    }
    if (!config.hosts.empty()) {
      out.json_line(hosts_summary_json(hosts, complete));
    }
    return core::k_exit_ok;
  }
  if (copies.empty()) {
    out.line(fmt::format("no copy found of <{}>", t.message_id));
    return core::k_exit_ok;
  }
  if (!hops.empty()) {
    out.line(fmt::format("path of <{}> ({} hop(s), origin first{}):", t.message_id, hops.size(),
                         hops[0].contains("host") ? ", from a copy on host " + text_of(hops[0], "host") : ""));
    for (const auto &h : hops) {
      out.line(hop_json_line(h));
    }
  }
  out.line(fmt::format("{} copy(ies) and log transaction(s), in time order:", copies.size()));
  for (const auto &c : copies) {
    const std::string arrived = text_of(c, "arrived");
    out.line(fmt::format("  {}  {:<10} {:<10} {}", arrived.empty() ? std::string(20, '-') : arrived,
                         host_prefix(c) + text_of(c, "source"), text_of(c, "store"),
                         c.contains("_where") ? text_of(c, "_where") : remote_hit_location(c)));
    if (const auto same = c.find("same_queue_id"); same != c.end() && same->is_array() && !same->empty()) {
      out.line(fmt::format("      still in the queue; joined with {} log transaction(s) of queue id {} listed here",
                           same->size(), text_of(c, "queue_id")));
    }
  }
  return core::k_exit_ok;
}

} // namespace maildsar::cli
