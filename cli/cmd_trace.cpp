// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar trace: every stored copy and log transaction of one message, and its path.
#include "cli/commands.hpp"
#include "core/exit_codes.hpp"
#include "query/trace.hpp"

#include <fmt/format.h>

namespace maildsar::cli {

void trace_options(po::options_description &desc, po::positional_options_description &pos) {
  desc.add_options()("message-id", po::value<std::string>(),
                     "the Message-ID to trace (angle brackets optional)");
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

std::string hop_line(const query::Hop &h) {
  std::string s = fmt::format("  {:>2}. {}  {} -> {}", h.index,
                              h.date ? iso_date(*h.date) : std::string(20, '-'),
                              h.from.empty() ? std::string("?") : h.from,
                              h.by.empty() ? std::string("?") : h.by);
  if (!h.ip.empty()) {
    s += fmt::format("  ip {}", h.ip);
  }
  if (!h.protocol.empty()) {
    s += fmt::format("  with {}", h.protocol);
  }
  if (!h.tls.empty()) {
    s += fmt::format("  tls {}", h.tls);
  }
  return s;
}

} // namespace

core::Result<int> run_trace(Context &ctx) {
  if (ctx.vm.count("message-id") == 0) {
    return core::fail(core::ErrorCode::usage, "trace: no MESSAGE-ID given",
                      "maildsar trace '<20231114100000.1234@mx1.example.com>'");
  }
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  MAILDSAR_TRY(require_indexed(config));
  MAILDSAR_TRY_ASSIGN(query::Trace t, query::trace(config, ctx.vm["message-id"].as<std::string>()));
  Output &out = *ctx.out;
  for (const std::string &p : t.problems) {
    out.diag("warning", fmt::format("cannot read a copy: {}", p));
  }
  if (out.json()) {
    for (const auto &h : t.hops) {
      out.json_line(hop_json(h));
    }
    for (const auto &c : t.copies) {
      out.json_line(copy_json(c));
    }
    return core::k_exit_ok;
  }
  if (t.copies.empty()) {
    out.line(fmt::format("no copy found of <{}>", t.message_id));
    return core::k_exit_ok;
  }
  if (!t.hops.empty()) {
    out.line(fmt::format("path of <{}> ({} hop(s), origin first):", t.message_id, t.hops.size()));
    for (const auto &h : t.hops) {
      out.line(hop_line(h));
    }
  }
  out.line(fmt::format("{} copy(ies) and log transaction(s), in time order:", t.copies.size()));
  for (const auto &c : t.copies) {
    const auto &l = c.hit.locator;
    out.line(fmt::format("  {}  {:<10} {:<10} {}", c.arrived ? iso_date(*c.arrived) : std::string(20, '-'),
                         l.source, connectors::to_string(l.store), hit_location(c.hit)));
    if (!c.same_queue_id.empty()) {
      out.line(fmt::format("      still in the queue; joined with {} log transaction(s) of queue id {} listed here",
                           c.same_queue_id.size(), l.queue_id));
    }
  }
  return core::k_exit_ok;
}

} // namespace maildsar::cli
