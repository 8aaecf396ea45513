// SPDX-License-Identifier: GPL-3.0-or-later
#include "erasure/approval.hpp"

#include "core/time.hpp"
#include "access/export.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

namespace maildsar::erasure {

namespace {

using access::html_escape;
using nlohmann::json;

// Limits of the details a host sends (details_json, add_details).
constexpr std::size_t k_max_subject = 512;
constexpr std::size_t k_max_role = 32;
constexpr std::size_t k_max_address = 320;
constexpr std::size_t k_max_people = 32;

/** At most `max` bytes of `s`, cut at a UTF-8 character boundary. */
std::string clip(const std::string &s, std::size_t max) {
  if (s.size() <= max) {
    return s;
  }
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0U) == 0x80U) {
    --n;
  }
  return s.substr(0, n);
}

constexpr std::string_view k_actions[] = {"delete", "redact", "convert", "manual", "retain"};

std::string when(const query::Hit *hit) {
  return hit != nullptr && hit->date ? core::format_utc(*hit->date, "%Y-%m-%d %H:%M") : std::string("-");
}

/** Where the item lies, as an administrator finds it. */
std::string where(const ManifestItem &item) {
  const connectors::Locator &l = item.locator;
  switch (l.store) {
  case connectors::StoreKind::mbox:
    return fmt::format("{} (bytes {}-{})", l.path, l.offset, l.offset + l.length);
  case connectors::StoreKind::pst:
    return fmt::format("{} (PST node {})", l.path, l.node_id);
  case connectors::StoreKind::maillog:
    return l.lines.empty() ? fmt::format("{} {}", l.path, l.queue_id)
                           : fmt::format("{} {} (lines {}-{})", l.path, l.queue_id, l.lines.front(), l.lines.back());
  case connectors::StoreKind::postfix_queue:
  case connectors::StoreKind::exim_spool:
    return fmt::format("{} (queue id {})", l.path, l.queue_id);
  case connectors::StoreKind::archive:
    if (l.node_id != 0) {
      return fmt::format("{} member {} (PST node {})", l.path, l.member, l.node_id);
    }
    return l.length > 0 ? fmt::format("{} member {} (bytes {}-{})", l.path, l.member, l.offset, l.offset + l.length)
                        : fmt::format("{} member {}", l.path, l.member);
  default:
    if (l.length > 0) {
      return fmt::format("{} (bytes {}-{})", l.path, l.offset, l.offset + l.length);
    }
    return l.mark.empty() ? l.path : fmt::format("{} [{}]", l.path, l.mark);
  }
}

std::string people(const query::Hit *hit) {
  if (hit == nullptr) {
    return {};
  }
  std::string out;
  std::string role;
  for (const auto &[r, address] : hit->correspondents) {
    if (r != role) {
      out += fmt::format("{}{} ", out.empty() ? "" : "; ", r);
      role = r;
    } else {
      out += ", ";
    }
    out += address;
  }
  return out;
}

std::string subject_line(const ManifestItem &item, const query::Hit *hit) {
  if (hit != nullptr) {
    return hit->subject;
  }
  return item.locator.store == connectors::StoreKind::maillog ? "(delivery-log transaction)" : "(not in the index)";
}

/** Items grouped by source and folder, in that order; each group's item indices in manifest order. */
using Group = std::pair<std::string, std::string>; // source, folder
std::map<Group, std::vector<std::size_t>> groups_of(const Manifest &m) {
  std::map<Group, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < m.items.size(); ++i) {
    groups[{m.items[i].locator.source, m.items[i].locator.folder}].push_back(i);
  }
  return groups;
}

/** source -> action -> count, with the store kind of each source. */
struct Counts {
  std::map<std::string, std::map<std::string, std::uint64_t>> by_source;
  std::map<std::string, std::string> store;
  std::map<std::string, std::uint64_t> total;
};
Counts counts_of(const Manifest &m) {
  Counts c;
  for (const ManifestItem &item : m.items) {
    const std::string action(to_string(item.action));
    ++c.by_source[item.locator.source][action];
    ++c.total[action];
    c.store[item.locator.source] = std::string(connectors::to_string(item.locator.store));
  }
  return c;
}

/** The manifest's message policy as the planner wrote it ({"default": "delete"} when absent). */
std::string message_policy_text(const Manifest &m) {
  if (m.policy.is_object()) {
    if (auto it = m.policy.find("messages"); it != m.policy.end()) {
      return it->dump();
    }
  }
  return R"({"default":"delete"})";
}

/** The reasons that protected items (retain), with their counts and until-dates. */
std::map<std::pair<std::string, std::string>, std::uint64_t> protections_of(const Manifest &m) {
  std::map<std::pair<std::string, std::string>, std::uint64_t> out;
  for (const ManifestItem &item : m.items) {
    if (item.action == Action::retain) {
      ++out[{item.reason, item.until}];
    }
  }
  return out;
}

std::map<std::string, std::uint64_t> manual_reasons(const Manifest &m) {
  std::map<std::string, std::uint64_t> out;
  for (const ManifestItem &item : m.items) {
    if (item.action == Action::manual) {
      ++out[item.reason];
    }
  }
  return out;
}

/** Files erase changes, and how many of the subject's items in each. */
std::map<std::string, std::uint64_t> changed_files(const Manifest &m) {
  std::map<std::string, std::uint64_t> out;
  for (const ManifestItem &item : m.items) {
    if (item.action == Action::erase || item.action == Action::redact || item.action == Action::convert) {
      ++out[item.locator.path];
    }
  }
  return out;
}

/** " (OS user NAME)" when the planner's OS account is known and is not the operator's name. */
std::string planner_os_text(const Manifest &m) {
  if (!m.planner_os || core::normalise_operator(m.planner_os->name) == m.planner) {
    return {};
  }
  return fmt::format(" (OS user {})", m.planner_os->name);
}

std::string approvals_text(const ApprovalView &v) {
  std::string names;
  for (const Approval &a : v.approvals) {
    const bool other_os = a.os && core::normalise_operator(a.os->name) != a.operator_name;
    names += fmt::format("{}{}{}{}", names.empty() ? "" : ", ", a.operator_name,
                         other_os ? fmt::format(" (OS user {})", a.os->name) : std::string(),
                         a.signature.empty() ? "" : " (signed)");
  }
  return fmt::format("{} of {} required{}{}", v.approvals.size(), v.approvals_required, names.empty() ? "" : ": ",
                     names);
}

const query::Hit *detail(const ApprovalView &v, const ManifestItem &item) {
  auto it = v.details.find(item.id);
  return it == v.details.end() ? nullptr : &it->second;
}

} // namespace

std::vector<std::string> subject_lines(const query::SubjectProfile &subject) {
  std::vector<std::string> out;
  for (const std::string &e : subject.emails) {
    out.push_back("email: " + e);
  }
  for (const std::string &n : subject.names) {
    out.push_back("name: " + n);
  }
  for (const std::string &p : subject.phones) {
    out.push_back("phone: " + p);
  }
  for (const std::string &ip : subject.ips) {
    out.push_back("ip: " + ip);
  }
  return out;
}

core::Result<ApprovalView> approval_view(const core::Config &config, const Manifest &manifest,
                                         std::vector<std::string> subject, std::vector<query::Hit> known) {
  ApprovalView v;
  v.manifest = manifest;
  v.subject = std::move(subject);
  v.approvals_required = config.erasure.approvals_required;
  for (query::Hit &h : known) {
    std::string id = h.id;
    v.details.emplace(std::move(id), std::move(h));
  }
  std::vector<std::pair<std::string, std::string>> ids;
  for (const ManifestItem &item : manifest.items) {
    if (item.locator.store != connectors::StoreKind::maillog && !v.details.contains(item.id)) {
      ids.emplace_back(item.locator.source, item.id);
    }
  }
  MAILDSAR_TRY_ASSIGN(std::vector<query::Hit> hits, query::items_by_id(config, ids));
  for (query::Hit &h : hits) {
    std::string id = h.id;
    v.details.emplace(std::move(id), std::move(h));
  }
  MAILDSAR_TRY_ASSIGN(v.approvals, approvals(config, manifest.hash));
  return v;
}

std::string approval_html_path(const std::string &manifest_path) {
  if (manifest_path.size() > 5 && manifest_path.ends_with(".json")) {
    return manifest_path.substr(0, manifest_path.size() - 5) + ".html";
  }
  return manifest_path + ".html";
}

namespace {

/** The page's head, styles and opening. */
std::string html_start(const std::string &title) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  h += fmt::format("<title>{}</title>\n", html_escape(title));
  h += "<style>body{font-family:sans-serif;margin:2em;max-width:80em;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:.25em .5em;"
       "text-align:left;vertical-align:top;font-size:.9em}th{background:#eee}"
       "code{word-break:break-all}.n{text-align:right}summary{cursor:pointer;font-weight:bold;margin:.4em 0}"
       ".warn{background:#fff3cd;padding:.5em;border:1px solid #e0c060}"
       ".a-delete,.a-redact,.a-convert{color:#a00}.a-retain{color:#060}.a-manual{color:#850}</style>\n";
  h += "</head><body>\n";
  return h;
}

const char *const k_html_end =
    "<p><small>Written by maildsar plan. This page is personal data (0600): it names the subject, "
    "correspondents and subject lines. The manifest file, not this page, is what is approved.</small></p>\n"
    "</body></html>\n";

/** "Whom it is about": the subject as given, or how many keyed identifiers. */
std::string html_whom(const std::vector<std::string> &subject, std::size_t keyed) {
  std::string h = "<h2>Whom it is about</h2>\n";
  if (subject.empty()) {
    h += fmt::format("<p>The subject's {} identifier(s) are known here only as keyed hashes (a plan of "
                     "items that came back after an erasure, or a view without the request's subject).</p>\n",
                     keyed);
  } else {
    h += "<ul>\n";
    for (const std::string &s : subject) {
      h += fmt::format("<li>{}</li>\n", html_escape(s));
    }
    h += "</ul>\n";
  }
  return h;
}

/** What erase does with a manifest's items, what it leaves, and every item; headings `hx`. */
std::string html_items(const ApprovalView &v, std::string_view hx) {
  const Manifest &m = v.manifest;
  const Counts counts = counts_of(m);
  std::string h;
  h.reserve(2048 + m.items.size() * 400);
  h += fmt::format("<{}>What erase will do, per source</{}>\n<table><tr><th>source</th><th>store</th>", hx, hx);
  for (std::string_view a : k_actions) {
    h += fmt::format("<th>{}</th>", a);
  }
  h += "<th>items</th></tr>\n";
  for (const auto &[source, by] : counts.by_source) {
    std::uint64_t n = 0;
    h += fmt::format("<tr><td>{}</td><td>{}</td>", html_escape(source), html_escape(counts.store.at(source)));
    for (std::string_view a : k_actions) {
      auto it = by.find(std::string(a));
      const std::uint64_t c = it == by.end() ? 0 : it->second;
      n += c;
      h += fmt::format("<td class=\"n\">{}</td>", c);
    }
    h += fmt::format("<td class=\"n\">{}</td></tr>\n", n);
  }
  h += "<tr><th colspan=\"2\">all</th>";
  for (std::string_view a : k_actions) {
    auto it = counts.total.find(std::string(a));
    h += fmt::format("<th class=\"n\">{}</th>", it == counts.total.end() ? 0 : it->second);
  }
  h += fmt::format("<th class=\"n\">{}</th></tr>\n</table>\n", m.items.size());
  h += "<p><code>delete</code>: the message is removed (a Maildir file unlinked, an mbox message cut out); "
       "<code>redact</code>: the item stays with the subject masked in it — in a delivery-log transaction "
       "the subject's identifiers are replaced by pseudonyms of the same length, every other byte stays; in a "
       "message (the message policy below) the subject becomes \"[erased person]\" in the fields listed as "
       "changing, attachments that name the subject are withheld, the rest of the message is kept; "
       "<code>convert</code>: a PST file is replaced "
       "by an mbox archive without the subject's items; <code>manual</code>: erase does nothing, an "
       "administrator must (instructions below); <code>retain</code>: a hold or exemption keeps it.</p>\n";
  h += "<p>Message policy (what happens to a message by the subject's role in it): <code>" +
       html_escape(message_policy_text(m)) + "</code></p>\n";

  h += fmt::format("<{}>What will not be touched, and why</{}>\n", hx, hx);
  const auto protections = protections_of(m);
  if (protections.empty()) {
    h += "<p>No hold or exemption applies to any item.</p>\n";
  } else {
    h += "<p>Holds and exemptions that win (erase checks holds again when it runs):</p>\n<ul>\n";
    for (const auto &[reason, n] : protections) {
      h += fmt::format("<li>{} item(s): {}{}</li>\n", n, html_escape(reason.first),
                       reason.second.empty() ? "" : " (until " + html_escape(reason.second) + ")");
    }
    h += "</ul>\n";
  }
  if (const auto manual = manual_reasons(m); !manual.empty()) {
    h += "<p class=\"warn\">Not changed by erase; an administrator must act (each item's instructions are "
         "in the list below):</p>\n<ul>\n";
    for (const auto &[reason, n] : manual) {
      h += fmt::format("<li>{} item(s): {}</li>\n", n, html_escape(reason));
    }
    h += "</ul>\n";
  }
  const auto files = changed_files(m);
  h += fmt::format("<p>Erase changes {} file(s). In each, everything that is not one of the listed items stays "
                   "byte for byte: the other messages of an mbox, the other lines of a log, every other "
                   "Maildir file. Other people's copies in other mailboxes are listed only if they are "
                   "the subject's data too.</p>\n",
                   files.size());

  h += fmt::format("<{}>Every item</{}>\n", hx, hx);
  for (const auto &[group, indices] : groups_of(m)) {
    std::map<std::string, std::uint64_t> by_action;
    for (std::size_t i : indices) {
      ++by_action[std::string(to_string(m.items[i].action))];
    }
    std::string summary;
    for (const auto &[a, n] : by_action) {
      summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", n, a);
    }
    h += fmt::format("<details{}><summary>{}{} — {} item(s): {}</summary>\n",
                     indices.size() <= k_open_group_items ? " open" : "", html_escape(group.first),
                     group.second.empty() ? "" : " / " + html_escape(group.second), indices.size(), summary);
    h += "<table><tr><th>date (UTC)</th><th>where</th><th>correspondents</th><th>subject line</th>"
         "<th>action</th><th>reason</th></tr>\n";
    for (std::size_t i : indices) {
      const ManifestItem &item = m.items[i];
      const query::Hit *d = detail(v, item);
      const std::string action(to_string(item.action));
      std::string reason = html_escape(item.reason);
      if (!item.until.empty()) {
        reason += " (until " + html_escape(item.until) + ")";
      }
      if (!item.instructions.empty()) {
        reason += "<br><small>" + html_escape(item.instructions) + "</small>";
      }
      if (!item.changes.empty()) {
        reason += "<br><small>changes: " + html_escape(fmt::format("{}", fmt::join(item.changes, "; "))) + "</small>";
      }
      h += fmt::format("<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"a-{}\">{}</td>"
                       "<td>{}</td></tr>\n",
                       when(d), html_escape(where(item)), html_escape(people(d)), html_escape(subject_line(item, d)),
                       action, action, reason);
    }
    h += "</table></details>\n";
  }
  return h;
}

/** The text of what erase does with a manifest's items, what it leaves, and every item. */
std::string text_items(const ApprovalView &v) {
  const Manifest &m = v.manifest;
  const Counts counts = counts_of(m);
  std::string t;
  t += "\nPer source:\n";
  for (const auto &[source, by] : counts.by_source) {
    std::string line;
    for (std::string_view a : k_actions) {
      if (auto it = by.find(std::string(a)); it != by.end()) {
        line += fmt::format("{}{} {}", line.empty() ? "" : ", ", it->second, a);
      }
    }
    t += fmt::format("  {:<16} {:<12} {}\n", source, counts.store.at(source), line);
  }
  t += fmt::format("  {} item(s) in all\n", m.items.size());
  t += "  message policy " + message_policy_text(m) + "\n";
  t += "\nNot touched by erase:\n";
  const auto protections = protections_of(m);
  const auto manual = manual_reasons(m);
  if (protections.empty() && manual.empty()) {
    t += "  (no hold, exemption or manual item)\n";
  }
  for (const auto &[reason, n] : protections) {
    t += fmt::format("  {} item(s) retained: {}{}\n", n, reason.first,
                     reason.second.empty() ? "" : " (until " + reason.second + ")");
  }
  for (const auto &[reason, n] : manual) {
    t += fmt::format("  {} item(s) manual: {}\n", n, reason);
  }
  t += fmt::format("  in the {} file(s) erase changes, every byte that is not a listed item stays\n",
                   changed_files(m).size());
  t += "\nItems:\n";
  for (const auto &[group, indices] : groups_of(m)) {
    t += fmt::format("  {}{} ({} item(s))\n", group.first, group.second.empty() ? "" : " / " + group.second,
                     indices.size());
    for (std::size_t i : indices) {
      const ManifestItem &item = m.items[i];
      const query::Hit *d = detail(v, item);
      t += fmt::format("    {:<7} {:<16} {}\n", to_string(item.action), when(d), where(item));
      const std::string who = people(d);
      t += fmt::format("            {}{}{}\n", subject_line(item, d), who.empty() ? "" : " | ", who);
      t += fmt::format("            {}{}\n", item.reason, item.until.empty() ? "" : " (until " + item.until + ")");
      if (!item.instructions.empty()) {
        t += "            " + item.instructions + "\n";
      }
      if (!item.changes.empty()) {
        t += fmt::format("            changes: {}\n", fmt::join(item.changes, "; "));
      }
    }
  }
  return t;
}

} // namespace

std::string approval_html(const ApprovalView &v) {
  const Manifest &m = v.manifest;
  std::string h = html_start(fmt::format("Erasure {} for approval", m.request));
  h += fmt::format("<h1>Erasure for approval: {}</h1>\n", html_escape(m.request));
  h += "<table>\n";
  h += fmt::format("<tr><th>Request</th><td>{}</td></tr>\n", html_escape(m.request));
  h += fmt::format("<tr><th>Planned by</th><td>{}{} at {}</td></tr>\n", html_escape(m.planner),
                   html_escape(planner_os_text(m)), html_escape(m.created));
  h += fmt::format("<tr><th>Manifest SHA-256</th><td><code>{}</code> (what <code>maildsar approve</code> "
                   "records; compare it)</td></tr>\n",
                   html_escape(m.hash));
  h += fmt::format("<tr><th>Approvals</th><td>{}</td></tr>\n", html_escape(approvals_text(v)));
  h += fmt::format("<tr><th>Items</th><td>{}</td></tr>\n", m.items.size());
  h += "</table>\n";

  h += html_whom(v.subject, m.subject.size());
  h += html_items(v, "h2");
  h += k_html_end;
  return h;
}

std::string approval_text(const ApprovalView &v) {
  const Manifest &m = v.manifest;
  std::string t;
  t += fmt::format("Erasure for approval: {}\n", m.request);
  t += fmt::format("  planned by {}{} at {}\n", m.planner, planner_os_text(m), m.created);
  t += fmt::format("  manifest sha256 {}\n", m.hash);
  t += fmt::format("  approvals: {}\n", approvals_text(v));
  if (v.subject.empty()) {
    t += fmt::format("  subject: {} identifier(s), as keyed hashes (the planner's HTML summary names them)\n",
                     m.subject.size());
  } else {
    for (const std::string &s : v.subject) {
      t += "  subject " + s + "\n";
    }
  }
  t += text_items(v);
  return access::clean_utf8(t); // subject lines are untrusted: no control character reaches a terminal
}

json details_json(const ApprovalView &v) {
  json out = json::object();
  for (const ManifestItem &item : v.manifest.items) {
    if (out.size() >= k_max_carried_details) {
      break;
    }
    const query::Hit *d = detail(v, item);
    if (d == nullptr) {
      continue;
    }
    json people = json::array();
    for (const auto &[role, address] : d->correspondents) {
      if (people.size() >= k_max_people) {
        break;
      }
      people.push_back(json::array({clip(role, k_max_role), clip(address, k_max_address)}));
    }
    out[item.id] = json{{"date", d->date ? json(*d->date) : json(nullptr)},
                        {"subject", clip(d->subject, k_max_subject)},
                        {"correspondents", std::move(people)}};
  }
  return out;
}

std::size_t add_details(ApprovalView &v, const json &details) {
  if (!details.is_object()) {
    return details.is_null() ? 0 : 1;
  }
  std::set<std::string_view> ids;
  for (const ManifestItem &item : v.manifest.items) {
    ids.insert(item.id);
  }
  std::size_t skipped = 0;
  for (const auto &[id, d] : details.items()) {
    const auto date = d.is_object() ? d.find("date") : d.end();
    const auto subject = d.is_object() ? d.find("subject") : d.end();
    const auto people = d.is_object() ? d.find("correspondents") : d.end();
    if (!ids.contains(id) || v.details.size() >= k_max_carried_details || !d.is_object() || date == d.end() ||
        !(date->is_null() || date->is_number_integer()) || subject == d.end() || !subject->is_string() ||
        people == d.end() || !people->is_array()) {
      ++skipped;
      continue;
    }
    query::Hit h;
    h.id = id;
    if (date->is_number_integer()) {
      h.date = date->get<std::int64_t>();
    }
    h.subject = clip(subject->get<std::string>(), k_max_subject);
    for (const json &p : *people) {
      if (h.correspondents.size() < k_max_people && p.is_array() && p.size() == 2 && p[0].is_string() &&
          p[1].is_string()) {
        h.correspondents.emplace_back(clip(p[0].get<std::string>(), k_max_role),
                                      clip(p[1].get<std::string>(), k_max_address));
      }
    }
    v.details.insert_or_assign(id, std::move(h));
  }
  return skipped;
}

std::string estate_approval_html(const EstateApprovalView &e) {
  std::string h = html_start(fmt::format("Erasure {} across hosts for approval", e.request));
  h += fmt::format("<h1>Erasure across hosts for approval: {}</h1>\n", html_escape(e.request));
  h += "<table>\n";
  h += fmt::format("<tr><th>Request</th><td>{}</td></tr>\n", html_escape(e.request));
  h += fmt::format("<tr><th>Planned by</th><td>{} at {}</td></tr>\n", html_escape(e.planner), html_escape(e.created));
  h += fmt::format("<tr><th>Estate manifest SHA-256</th><td><code>{}</code> (what <code>maildsar approve</code> "
                   "signs; compare it)</td></tr>\n",
                   html_escape(e.hash));
  h += fmt::format("<tr><th>Approvals</th><td>{} recorded here; each host checks the signed ones against its own "
                   "approver keys and <code>approvals_required</code></td></tr>\n",
                   e.approvals.size());
  std::size_t items = 0;
  for (const EstateApprovalView::Host &host : e.hosts) {
    items += host.view.manifest.items.size();
    h += fmt::format("<tr><th>Host {}</th><td>{} ({}): slice <code>{}</code>, {} item(s)</td></tr>\n",
                     html_escape(host.name), html_escape(host.name), html_escape(host.agent_host),
                     html_escape(host.view.manifest.hash), host.view.manifest.items.size());
  }
  h += fmt::format("<tr><th>Items</th><td>{}</td></tr>\n</table>\n", items);
  for (const auto &[name, why] : e.not_searched) {
    h += fmt::format("<p class=\"warn\">Host {} was NOT SEARCHED: nothing of it is planned or erased ({}).</p>\n",
                     html_escape(name), html_escape(why));
  }
  h += html_whom(e.subject, e.hosts.empty() ? 0 : e.hosts.front().view.manifest.subject.size());
  for (const EstateApprovalView::Host &host : e.hosts) {
    h += fmt::format("<h2>Host {} ({}): {} item(s)</h2>\n", html_escape(host.name), html_escape(host.agent_host),
                     host.view.manifest.items.size());
    if (!host.note.empty()) {
      h += fmt::format("<p class=\"warn\">{}</p>\n", html_escape(host.note));
    }
    h += html_items(host.view, "h3");
  }
  h += k_html_end;
  return h;
}

std::string estate_approval_text(const EstateApprovalView &e) {
  std::string t;
  t += fmt::format("Erasure across hosts for approval: {}\n", e.request);
  t += fmt::format("  planned by {} at {}\n", e.planner, e.created);
  t += fmt::format("  estate manifest sha256 {}\n", e.hash);
  t += fmt::format("  approvals recorded here: {} (each host checks the signed ones against its own keys)\n",
                   e.approvals.size());
  for (const std::string &s : e.subject) {
    t += "  subject " + s + "\n";
  }
  for (const EstateApprovalView::Host &host : e.hosts) {
    t += fmt::format("  host {} ({}): slice {}, {} item(s)\n", host.name, host.agent_host,
                     host.view.manifest.hash.substr(0, 16), host.view.manifest.items.size());
  }
  for (const auto &[name, why] : e.not_searched) {
    t += fmt::format("  host {}: NOT SEARCHED, nothing of it is planned or erased ({})\n", name, why);
  }
  for (const EstateApprovalView::Host &host : e.hosts) {
    t += fmt::format("\n== host {} ({}) ==\n", host.name, host.agent_host);
    if (!host.note.empty()) {
      t += "  " + host.note + "\n";
    }
    t += text_items(host.view);
  }
  return access::clean_utf8(t);
}

} // namespace maildsar::erasure
