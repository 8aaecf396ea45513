// SPDX-License-Identifier: GPL-3.0-or-later
#include "cli/output.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <ctime>
#include <exception>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace maildsar::cli {

namespace {

void write_all(std::FILE *f, std::string_view s) {
  std::fwrite(s.data(), 1, s.size(), f);
}

} // namespace

void Output::line(std::string_view text) {
  // Human output shows untrusted text (Subjects, file names): never raw control sequences.
  write_all(stdout, core::log::printable(text));
  write_all(stdout, "\n");
}

void Output::lines(std::string_view text) {
  for (std::size_t begin = 0; begin < text.size();) {
    std::size_t end = text.find('\n', begin);
    end = end == std::string_view::npos ? text.size() : end;
    line(text.substr(begin, end - begin));
    begin = end + 1;
  }
}

void Output::json_line(const nlohmann::json &value) {
  write_all(stdout, value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  write_all(stdout, "\n");
}

void Output::hit_lines(std::span<const query::Hit> hits) {
  const auto text = [](const query::Hit &h) {
    return hit_json(h).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  constexpr std::size_t k_lines_per_thread = 256; // below: one thread (starting one costs more)
  std::vector<std::string> second; // the lines of the second half, formatted on the helper
  const std::size_t half = hits.size() / 2;
  std::exception_ptr failed; // the helper's
  std::thread helper;
  if (hits.size() >= 2 * k_lines_per_thread && std::thread::hardware_concurrency() > 1) {
    try {
      helper = std::thread([&] {
        try {
          second.reserve(hits.size() - half);
          for (const query::Hit &h : hits.subspan(half)) {
            second.push_back(text(h));
          }
        } catch (...) {
          failed = std::current_exception();
        }
      });
    } catch (const std::system_error &) {
      // no thread to be had: all on this one
    }
  }
  const std::size_t mine = helper.joinable() ? half : hits.size();
  try {
    for (const query::Hit &h : hits.first(mine)) {
      write_all(stdout, text(h));
      write_all(stdout, "\n");
    }
  } catch (...) {
    helper.join();
    throw;
  }
  if (!helper.joinable()) {
    return;
  }
  helper.join();
  if (failed) {
    std::rethrow_exception(failed);
  }
  for (const std::string &line : second) {
    write_all(stdout, line);
    write_all(stdout, "\n");
  }
}

void Output::diag(std::string_view level, std::string_view text) {
  progress_done();
  std::fflush(stdout);
  write_all(stderr, fmt::format("maildsar: {}: {}\n", level, core::log::printable(text)));
}

void Output::error(const core::Error &error) {
  diag("error", error.message);
  if (!error.hint.empty()) {
    diag("hint", error.hint);
  }
  if (json()) {
    nlohmann::json j{{"error",
                      {{"code", core::to_string(error.code)},
                       {"exit_code", core::exit_code(error.code)},
                       {"message", error.message},
                       {"hint", error.hint}}}};
    json_line(j);
  }
  std::fflush(stdout);
}

bool Output::stderr_is_terminal() const { return ::isatty(2) == 1; }

void Output::progress(std::string_view text) {
  if (!stderr_is_terminal()) {
    return;
  }
  write_all(stderr, fmt::format("\r\033[K{}", text));
  std::fflush(stderr);
  m_progress_shown = true;
}

void Output::progress_done() {
  if (m_progress_shown) {
    write_all(stderr, "\r\033[K");
    std::fflush(stderr);
    m_progress_shown = false;
  }
}

std::string iso_date(std::int64_t t) { return core::iso8601_utc(t); }

nlohmann::json hit_json(const query::Hit &h) {
  const auto &l = h.locator;
  nlohmann::json j{{"id", h.id},
                   {"source", l.source},
                   {"store", connectors::to_string(l.store)},
                   {"path", l.path}};
  if (!h.message_id.empty()) {
    j["message_id"] = h.message_id;
  }
  if (l.store == connectors::StoreKind::mbox || l.length > 0) {
    j["offset"] = l.offset;
    j["length"] = l.length;
  }
  if (!l.folder.empty() || l.store == connectors::StoreKind::pst) {
    j["folder"] = l.folder;
  }
  nlohmann::json marks = nlohmann::json::array();
  if (!l.mark.empty()) {
    marks.push_back(l.mark); // "stray", "tmp" (docs/schemata.md)
  }
  if (!h.suppressed.empty()) {
    marks.push_back("suppressed"); // shows an erased subject again (indexer/suppression.hpp)
    j["suppressed_by"] = h.suppressed;
  }
  if (!marks.empty()) {
    j["marks"] = std::move(marks);
  }
  if (l.store == connectors::StoreKind::pst) {
    j["node_id"] = l.node_id;
  }
  if (!l.queue_id.empty()) {
    j["queue_id"] = l.queue_id;
  }
  if (l.store == connectors::StoreKind::archive) {
    j["member"] = l.member; // the member's path inside the archive (docs/schemata.md)
    if (l.node_id != 0) {
      j["node_id"] = l.node_id; // an item of a PST member
    }
  }
  if (l.store == connectors::StoreKind::maillog) {
    j["lines"] = l.lines;
  }
  j["date"] = h.date ? nlohmann::json(iso_date(*h.date)) : nlohmann::json(nullptr);
  j["subject"] = h.subject;
  j["sha256"] = h.sha256;
  nlohmann::json matched = nlohmann::json::array();
  for (const auto &m : h.matched) {
    nlohmann::json one{{"identifier", m.identifier}, {"kind", m.kind}, {"roles", m.roles}};
    if (!m.fields.empty()) {
      one["fields"] = m.fields;
    }
    matched.push_back(std::move(one));
  }
  j["matched"] = matched;
  if (!h.truncated.empty()) {
    j["truncated"] = h.truncated; // indexed only in part (docs/reliability.md)
  }
  if (h.evidence_capped > 0) {
    j["evidence_capped"] = h.evidence_capped;
  }
  return j;
}

std::string hit_location(const query::Hit &h) {
  const auto &l = h.locator;
  switch (l.store) {
  case connectors::StoreKind::mbox:
    return fmt::format("{} @{}+{}", l.path, l.offset, l.length);
  case connectors::StoreKind::pst:
    return fmt::format("{} [{}] #{}", l.path, l.folder, l.node_id);
  case connectors::StoreKind::postfix_queue:
  case connectors::StoreKind::exim_spool:
    return fmt::format("{} [{}] queue id {}", l.path, l.folder, l.queue_id);
  case connectors::StoreKind::archive:
    return l.length > 0 ? fmt::format("{} member {} @{}+{}", l.path, l.member, l.offset, l.length)
                        : fmt::format("{} member {}", l.path, l.member);
  case connectors::StoreKind::maillog:
    return fmt::format("{} {} lines {}", l.path, l.queue_id,
                       l.lines.empty() ? std::string("?")
                                       : fmt::format("{}-{}", l.lines.front(), l.lines.back()));
  default:
    return l.mark.empty() ? l.path : fmt::format("{} [{}]", l.path, l.mark);
  }
}

std::string remote_hit_location(const nlohmann::json &h) {
  auto text = [&](const char *key) {
    auto it = h.find(key);
    return it != h.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string where = text("path");
  if (auto o = h.find("offset"); o != h.end() && o->is_number()) {
    where += fmt::format(" @{}+{}", o->dump(), h.value("length", nlohmann::json(0)).dump());
  }
  if (auto m = h.find("member"); m != h.end() && m->is_string()) {
    where += " member " + m->get<std::string>();
  }
  if (auto l = h.find("lines"); l != h.end() && l->is_array() && !l->empty()) {
    where += fmt::format(" {} lines {}-{}", text("queue_id"), l->front().dump(), l->back().dump());
  }
  return where;
}

} // namespace maildsar::cli
