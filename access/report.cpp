// SPDX-License-Identifier: GPL-3.0-or-later
// The access report: its content in the report's language (build_report, build_review) and its
// HTML rendering. Every text a person reads goes through the catalogue (access/i18n.hpp).
#include "access/report.hpp"

#include "core/time.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <utility>

namespace maildsar::access {

namespace fs = std::filesystem;
using report::Block;
using report::BlockKind;
using report::Cell;
using report::CellKind;
using report::Definition;
using report::Span;
using report::Style;
using report::Text;

std::string iso(std::int64_t t) { return core::iso8601_utc(t); }

std::string join(const std::vector<std::string> &v, std::string_view sep) {
  std::string out;
  for (const auto &s : v) {
    if (!out.empty()) {
      out += sep;
    }
    out += s;
  }
  return out;
}

std::string href(std::string_view rel) {
  std::string out;
  for (char c : rel) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '/' || c == '.' || c == '-' || c == '_') {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

namespace {

/** Category msgid -> its plural msgid (the table of what a person calls items). */
constexpr std::array<std::pair<std::string_view, std::string_view>, 8> k_category_plurals{{
    {"message", MAILDSAR_N_("messages")},
    {"delivery log record", MAILDSAR_N_("delivery log records")},
    {"quarantined message", MAILDSAR_N_("quarantined messages")},
    {"message in a backup archive", MAILDSAR_N_("messages in backup archives")},
    {"message waiting in a mail server queue", MAILDSAR_N_("messages waiting in a mail server queue")},
    {"contact", MAILDSAR_N_("contacts")},
    {"calendar entry", MAILDSAR_N_("calendar entries")},
    {"other Outlook item", MAILDSAR_N_("other Outlook items")},
}};

Text plain(std::string s) { return Text{Span{std::move(s)}}; }

/**
 * A translated text with <b>...</b> and <code>...</code> marks as spans. Only for texts whose
 * arguments are numbers or our own words: mail data is never read as marks.
 */
Text rich(std::string_view marked) {
  Text out;
  Style style = Style::plain;
  std::string current;
  const auto flush = [&] {
    if (!current.empty()) {
      out.push_back(Span{std::move(current), style});
      current.clear();
    }
  };
  std::size_t i = 0;
  while (i < marked.size()) {
    bool tag = false;
    for (const auto &[mark, next] : {std::pair<std::string_view, Style>{"<b>", Style::strong},
                                     {"</b>", Style::plain},
                                     {"<code>", Style::code},
                                     {"</code>", Style::plain}}) {
      if (marked.substr(i, mark.size()) == mark) {
        flush();
        style = next;
        i += mark.size();
        tag = true;
        break;
      }
    }
    if (!tag) {
      current.push_back(marked[i++]);
    }
  }
  flush();
  return out;
}

Block block(BlockKind kind, Text text) {
  Block b;
  b.kind = kind;
  b.text = std::move(text);
  return b;
}

Cell cell(std::string text, CellKind kind = CellKind::text) { return Cell{plain(std::move(text)), kind, {}}; }

std::string source_kind(const std::string &type, const i18n::Catalog &cat) {
  return type == "maildir"                                   ? cat.tr("mailboxes")
         : type == "mbox"                                    ? cat.tr("mail archive")
         : type == "pst"                                     ? cat.tr("Outlook data files")
         : type == "quarantine"                              ? cat.tr("spam/virus quarantine")
         : type == "emlfolder"                               ? cat.tr("folder of message files")
         : type == "archive"                                 ? cat.tr("backup archives")
         : type == "postfix-queue" || type == "exim-spool"   ? cat.tr("mail server queue")
                                                             : cat.tr("mail server delivery logs");
}

/** An item's problem in the report: ours translated, a lower layer's message as it is. */
const std::string &shown_problem(const Entry &e) { return e.problem_shown.empty() ? e.problem : e.problem_shown; }

std::string join_labels(const std::set<std::string> &labels) {
  return join(std::vector<std::string>(labels.begin(), labels.end()), ", ");
}

} // namespace

std::string category_plural(const std::string &category, const i18n::Catalog &cat) {
  for (const auto &[one, many] : k_category_plurals) {
    if (one == category) {
      return cat.tr(many);
    }
  }
  return cat.tr(category);
}

std::string redaction_note(const redaction::MessageReport &r, const i18n::Catalog &cat) {
  std::vector<std::string> parts;
  if (const std::size_t n = r.header_replacements + r.text_replacements; n > 0) {
    parts.push_back(cat.trnf("{0} mention of other people replaced ({1})", "{0} mentions of other people replaced ({1})",
                             n, n, join_labels(r.labels)));
  }
  for (const std::string &w : r.withheld) {
    parts.push_back(cat.trf("attachment withheld: {}", w));
  }
  if (!r.removed_headers.empty()) {
    parts.push_back(cat.tr("signature fields removed (no longer valid after redaction)"));
  }
  return join(parts, "; ");
}

report::Document build_report(const ReportInput &in, const i18n::Catalog &cat) {
  const core::Config &config = in.config;
  const core::AccessInfo &access = config.access;
  const auto &entries = in.entries;
  report::Document doc;
  doc.language = cat.language();
  auto &out = doc.blocks;
  // Sources in the controller's plain words where the config gives them (issue 18 item 4).
  const auto shown = [&](const std::string &source) {
    auto it = std::ranges::find_if(config.sources, [&](const core::SourceConfig &c) { return c.name == source; });
    return it != config.sources.end() && !it->description.empty() ? it->description : source;
  };
  const std::string request =
      in.subject.request.empty() ? cat.tr("(no request id given)") : in.subject.request;
  doc.title = cat.trf("Copy of your personal data - {}", request);
  if (in.options.draft) {
    out.push_back(block(BlockKind::banner, rich(cat.tr("<b>DRAFT for review — not to be sent.</b> Build the package "
                                                       "again without --draft once the redactions are right."))));
  }
  out.push_back(block(BlockKind::title, plain(cat.tr("Copy of your personal data held in our e-mail systems"))));
  out.push_back(block(BlockKind::lead, plain(cat.tr("This is our answer to your request for access to your personal "
                                                    "data (Article 15 of the General Data Protection Regulation)."))));
  {
    Block facts;
    facts.kind = BlockKind::definitions;
    facts.boxed = true;
    facts.definitions.push_back(Definition{cat.tr("Request"), plain(request), {}});
    std::vector<std::string> who;
    for (const auto *list : {&in.subject.names, &in.subject.emails, &in.subject.phones, &in.subject.ips}) {
      who.insert(who.end(), list->begin(), list->end());
    }
    facts.definitions.push_back(
        Definition{cat.tr("Who asked"), plain(cat.trf("The person identified by: {}", join(who, ", "))), {}});
    const std::string by = in.options.operator_name.empty() ? cat.tr("our data protection team") : in.options.operator_name;
    facts.definitions.push_back(
        Definition{cat.tr("Prepared on"), plain(cat.trf("{0} by {1}", cat.date_time(in.now), by)), {}});
    if (!access.controller.empty()) {
      facts.definitions.push_back(Definition{cat.tr("Who holds your data (the controller)"), plain(access.controller), {}});
    }
    if (!access.contact.empty()) {
      facts.definitions.push_back(Definition{cat.tr("How to contact us"), plain(access.contact), {}});
    }
    out.push_back(std::move(facts));
  }

  // ---- In short: counts per source and category
  std::map<std::string, std::map<std::string, std::uint64_t>> counts; // source -> category -> n
  std::set<std::string> categories;
  for (const auto &e : entries) {
    ++counts[e.hit->locator.source][e.category];
    categories.insert(e.category);
  }
  out.push_back(block(BlockKind::heading, plain(cat.tr("In short"))));
  const std::uint64_t places = in.summary.per_source.size();
  Text found = rich(cat.trnf("We found <b>{0}</b> item about you in {1} where we keep e-mail.",
                             "We found <b>{0}</b> items about you in {1} where we keep e-mail.", entries.size(),
                             entries.size(), cat.trnf("{} place", "{} places", places, places)));
  found.push_back(Span{" "});
  for (Span &s : rich(cat.tr("A copy of each one is included in this package (folder <code>items</code>)."))) {
    found.push_back(std::move(s));
  }
  out.push_back(block(BlockKind::paragraph, std::move(found)));
  if (!entries.empty()) {
    Block t;
    t.kind = BlockKind::table;
    t.head.push_back(cat.tr("Where"));
    t.widths.push_back(3);
    for (const auto &c : categories) {
      t.head.push_back(category_plural(c, cat));
      t.widths.push_back(1.5);
    }
    t.head.push_back(cat.tr("Total"));
    t.widths.push_back(1.2);
    for (const auto &[src, cats] : counts) {
      std::vector<Cell> row{cell(shown(src))};
      std::uint64_t total = 0;
      for (const auto &c : categories) {
        auto it = cats.find(c);
        const std::uint64_t n = it == cats.end() ? 0 : it->second;
        total += n;
        row.push_back(cell(std::to_string(n), CellKind::num));
      }
      row.push_back(Cell{Text{Span{std::to_string(total), Style::strong}}, CellKind::num, {}});
      t.rows.push_back(std::move(row));
    }
    out.push_back(std::move(t));
  }

  // ---- What we searched
  out.push_back(block(BlockKind::heading, plain(cat.tr("What we searched"))));
  out.push_back(block(BlockKind::paragraph,
                      plain(cat.tr("We searched every place our e-mail system keeps messages and delivery records:"))));
  {
    Block t;
    t.kind = BlockKind::table;
    t.head = {cat.tr("Place"), cat.tr("Kind"), cat.tr("Last brought up to date"), cat.tr("Items about you"),
              cat.tr("Could not be read")};
    t.widths = {2.2, 1.8, 1.8, 1.1, 3};
    for (const auto &src : config.sources) {
      std::string last = cat.tr("never indexed");
      for (const auto &st : in.statuses) {
        if (st.name == src.name && st.last_success) {
          last = cat.date_time(*st.last_success);
        }
      }
      Cell bad;
      for (const auto &u : in.unreadable) {
        if (u.source == src.name) {
          bad.list.push_back(plain(fs::path(u.path).filename().string() + ": " + u.error));
        }
      }
      for (const auto &e : entries) {
        if (e.hit->locator.source == src.name && !e.problem.empty()) {
          bad.list.push_back(plain(fs::path(e.hit->locator.path).filename().string() + ": " + shown_problem(e)));
        }
      }
      if (bad.list.empty()) {
        bad.text = plain(cat.tr("nothing"));
      }
      auto it = in.summary.per_source.find(src.name);
      t.rows.push_back({cell(shown(src.name)), cell(source_kind(src.type, cat)), cell(last, CellKind::date),
                        cell(std::to_string(it == in.summary.per_source.end() ? 0 : it->second), CellKind::num),
                        std::move(bad)});
    }
    out.push_back(std::move(t));
  }

  // ---- Art. 15(1) and (2)
  out.push_back(block(BlockKind::heading, plain(cat.tr("Why we hold this data and what we do with it"))));
  {
    Block d;
    d.kind = BlockKind::definitions;
    const auto list = [&](std::string term, const std::vector<std::string> &items, std::string none) {
      Definition def{std::move(term), {}, {}};
      if (items.empty()) {
        def.text = plain(std::move(none));
      }
      for (const auto &i : items) {
        def.list.push_back(plain(i));
      }
      d.definitions.push_back(std::move(def));
    };
    list(cat.tr("Purposes"), access.purposes, cat.tr("Running our e-mail service."));
    list(cat.tr("Categories of personal data"), access.categories,
         cat.tr("E-mail addresses, names, the content of messages and attachments, and delivery records."));
    list(cat.tr("Who receives it"), access.recipients, cat.tr("The people the messages were addressed to."));
    d.definitions.push_back(Definition{
        cat.tr("External domains your messages were sent to"),
        plain(in.external_domains.empty()
                  ? cat.tr("none found")
                  : join(std::vector<std::string>(in.external_domains.begin(), in.external_domains.end()), ", ")),
        {}});
    Definition keep{cat.tr("How long we keep it"), {}, {}};
    for (const auto &src : config.sources) {
      std::string text;
      if (auto it = access.retention.find(src.name); it != access.retention.end()) {
        text = it->second;
      } else {
        auto r = std::find_if(config.retention.begin(), config.retention.end(),
                              [&](const auto &x) { return x.source == src.name; });
        const auto days = r == config.retention.end() ? 0 : static_cast<std::uint64_t>(r->max_age_seconds / 86400);
        text = r == config.retention.end() ? cat.tr("no fixed period set") : cat.trnf("{} day", "{} days", days, days);
      }
      keep.list.push_back(plain(shown(src.name) + ": " + text));
    }
    d.definitions.push_back(std::move(keep));
    d.definitions.push_back(Definition{
        cat.tr("Where the data came from"),
        plain(access.source_of_data.empty()
                  ? cat.tr("From the messages sent to or from our mail system and our mail servers' records.")
                  : access.source_of_data),
        {}});
    d.definitions.push_back(Definition{
        cat.tr("Automated decision-making"),
        plain(access.automated_decisions.empty()
                  ? cat.tr("Not stated in this report. Ask us (see the contact above) whether we make automated "
                           "decisions about you from this data.")
                  : access.automated_decisions),
        {}});
    list(cat.tr("Transfers to other countries"), access.transfers,
         cat.tr("Not stated in this report. Ask us (see the contact above) whether this data goes to countries "
                "outside the EU/EEA or to international organisations, and with which safeguards (Article 15(2))."));
    out.push_back(std::move(d));
  }

  // ---- Rights
  out.push_back(block(BlockKind::heading, plain(cat.tr("Your rights"))));
  {
    Block b;
    b.kind = BlockKind::bullets;
    b.items.push_back(rich(cat.tr("<b>Correction</b> (Article 16): you can ask us to correct data about you that is wrong.")));
    b.items.push_back(rich(cat.tr("<b>Erasure</b> (Article 17): you can ask us to delete data about you; we will unless "
                                  "the law requires us to keep it.")));
    b.items.push_back(rich(cat.tr("<b>Restriction and objection</b> (Articles 18 and 21): you can ask us to stop or "
                                  "limit using it.")));
    Text complaint = rich(cat.tr("<b>Complaint</b> (Article 77): you can complain to a data protection supervisory "
                                 "authority"));
    complaint.push_back(Span{access.supervisory_authority.empty() ? std::string(".")
                                                                   : ": " + access.supervisory_authority});
    b.items.push_back(std::move(complaint));
    out.push_back(std::move(b));
  }

  // ---- Art. 15(4)
  out.push_back(block(BlockKind::heading, plain(cat.tr("Other people's data"))));
  if (in.redact) {
    const std::uint64_t in_copies = in.summary.masked - in.masked_addresses - in.masked_ips;
    const std::string withheld =
        in.summary.withheld == 0
            ? std::string()
            : cat.trnf(", and withheld {} attachment that names other people (each is listed below with the reason)",
                       ", and withheld {} attachments that name other people (each is listed below with the reason)",
                       in.summary.withheld, in.summary.withheld);
    Text box = rich(cat.tr(
        "To protect other people (Article 15(4)), the other people in these copies are shown as <code>[person "
        "1]</code>, <code>[person 2]</code>, ... (the same number for the same person throughout this package), "
        "their telephone numbers as <code>[phone 1]</code>, ... and other people's IP addresses in the delivery "
        "log records as <code>[other IP]</code>."));
    box.push_back(Span{" "});
    for (Span &s :
         rich(cat.trf("We replaced {0} in the message copies, {1} and {2} in the delivery log records and in this "
                      "report{3}.",
                      cat.trnf("{} mention of other people", "{} mentions of other people", in_copies, in_copies),
                      cat.trnf("{} e-mail address", "{} e-mail addresses", in.masked_addresses, in.masked_addresses),
                      cat.trnf("{} IP address", "{} IP addresses", in.masked_ips, in.masked_ips), withheld))) {
      box.push_back(std::move(s));
    }
    box.push_back(Span{" " + cat.tr("Your own addresses, name and telephone numbers are shown as they are. The line "
                                    "under each copy below says what was changed in it.")});
    out.push_back(block(BlockKind::warning, std::move(box)));
  } else {
    out.push_back(block(BlockKind::paragraph,
                        plain(cat.tr("The copies contain the other people's addresses as they appear in the messages."))));
  }

  // ---- Every item
  out.push_back(block(BlockKind::heading, plain(cat.tr("Every item"))));
  {
    Block t;
    t.kind = BlockKind::table;
    t.head = {"#", cat.tr("Date"), cat.tr("What"), cat.tr("From"), cat.tr("To"), cat.tr("Subject"), cat.tr("Copy")};
    t.widths = {0.45, 1.2, 1.6, 2.0, 2.0, 2.2, 1.9};
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const Entry &e = entries[i];
      std::string date = cat.tr("unknown");
      if (e.hit->date) {
        date = iso(*e.hit->date).substr(0, 16);
        date[10] = ' ';
      }
      Cell what{plain(cat.tr(e.category)), CellKind::text, {}};
      what.text.push_back(Span{shown(e.hit->locator.source), Style::small, {}, true});
      if (!e.folder.empty()) {
        what.text.push_back(Span{e.folder, Style::small, {}, true});
      }
      Cell copy;
      if (!e.copy.empty()) {
        copy.text.push_back(Span{cat.tr("open copy"), Style::link, href(e.copy)});
      }
      if (!e.problem.empty()) {
        copy.text.push_back(Span{shown_problem(e), Style::small, {}, true});
      }
      if (const std::string note = redaction_note(e.redaction, cat); !note.empty()) {
        copy.text.push_back(Span{cat.trf("Redacted: {}", note), Style::small, {}, true});
      }
      t.rows.push_back({cell(std::to_string(i + 1), CellKind::num), cell(date, CellKind::date), std::move(what),
                        cell(join(e.people.from, ", "), CellKind::people), cell(join(e.people.to, ", "), CellKind::people),
                        cell(e.subject, CellKind::subj), std::move(copy)});
    }
    out.push_back(std::move(t));
  }
  out.push_back(block(BlockKind::note,
                      plain(cat.tr("Files with the ending .eml open in any e-mail program; .txt in any text editor; "
                                   ".vcf (contacts) and .ics (calendar entries) in address-book and calendar programs. "
                                   "The file manifest.json lists every file of this package with its SHA-256 checksum, "
                                   "so you can check that nothing was changed."))));
  return doc;
}

report::Document build_review(const std::vector<Entry> &entries, const redaction::PersonLabels &people,
                              const ExportSummary &summary, bool redact, const i18n::Catalog &cat) {
  report::Document doc;
  doc.language = cat.language();
  doc.title = cat.tr("Review of the redactions (draft)");
  auto &out = doc.blocks;
  out.push_back(block(BlockKind::title, plain(doc.title)));
  out.push_back(block(BlockKind::warning,
                      plain(cat.tr("For the data protection officer only: this page names the people the package "
                                   "hides. It is not part of the package; do not send it."))));
  if (!redact) {
    out.push_back(block(BlockKind::paragraph, plain(cat.tr("This draft was built without --redact-others: nothing was "
                                                           "redacted."))));
  }
  out.push_back(block(
      BlockKind::paragraph,
      plain(cat.trf("{0}, {1} copied; {2} replaced; {3} withheld.",
                    cat.trnf("{} item", "{} items", summary.items, summary.items), summary.copied,
                    cat.trnf("{} mention of other people", "{} mentions of other people", summary.masked, summary.masked),
                    cat.trnf("{} attachment", "{} attachments", summary.withheld, summary.withheld)))));
  out.push_back(block(BlockKind::paragraph,
                      rich(cat.tr("To correct the package, export again with the same options and without "
                                  "<code>--draft</code>, adding <code>--unmask ADDRESS</code> for someone who should "
                                  "stay readable (for example a colleague who agreed) or <code>--mask \"FIRST "
                                  "LAST\"</code> (or an address or telephone number) for someone left readable in a "
                                  "text."))));
  out.push_back(block(BlockKind::heading, plain(cat.tr("Who the placeholders stand for"))));
  Block legend;
  legend.kind = BlockKind::table;
  legend.head = {cat.tr("Placeholder"), cat.tr("Stands for")};
  legend.widths = {1, 3};
  for (const auto &[label, who] : people.legend()) {
    legend.rows.push_back(
        {cell(label), cell(who.starts_with("name:") ? cat.trf("{} (a name)", who.substr(5)) : who)});
  }
  out.push_back(std::move(legend));
  out.push_back(block(BlockKind::heading, plain(cat.tr("Every item"))));
  Block items;
  items.kind = BlockKind::table;
  items.head = {"#", cat.tr("Copy"), cat.tr("What was done")};
  items.widths = {0.4, 3, 3};
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry &e = entries[i];
    std::string done = redaction_note(e.redaction, cat);
    if (!e.redaction.unchecked.empty()) {
      done += (done.empty() ? "" : "; ") +
              cat.trf("attachments kept without their text checked: {}", join(e.redaction.unchecked, ", "));
    }
    if (!e.problem.empty()) {
      done += (done.empty() ? "" : "; ") + shown_problem(e);
    }
    items.rows.push_back({cell(std::to_string(i + 1), CellKind::num),
                          cell(e.copy.empty() ? cat.tr("(no copy)") : e.copy),
                          cell(done.empty() ? cat.tr("nothing") : done)});
  }
  out.push_back(std::move(items));
  return doc;
}

// ---- HTML ------------------------------------------------------------------------------------

namespace report {

namespace {

constexpr std::string_view k_css = R"(
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;font-size:15px;line-height:1.45;color:#1a1a1a;max-width:1100px;margin:24px auto;padding:0 24px;background:#fff}
h1{font-size:26px;margin:0 0 4px;color:#123c69}
h2{font-size:20px;margin:28px 0 8px;padding-bottom:4px;border-bottom:2px solid #123c69;color:#123c69}
h3{font-size:16px;margin:18px 0 6px}
.lead{color:#444;margin:0 0 16px}
.box{background:#f3f6fa;border:1px solid #c9d6e6;border-radius:6px;padding:12px 16px;margin:12px 0}
.warn{background:#fff6e0;border-color:#e6c36a}
table{border-collapse:collapse;width:100%;margin:8px 0 12px;font-size:13.5px}
th,td{border:1px solid #c9d1da;padding:5px 7px;text-align:left;vertical-align:top}
th{background:#e8eef5}
tr:nth-child(even) td{background:#fafbfc}
td.num{text-align:right;white-space:nowrap}
td.date{white-space:nowrap}
td.subj{word-break:break-word;max-width:340px}
td.people{word-break:break-all;max-width:260px;font-size:12.5px}
dl{margin:0}dt{font-weight:bold;margin-top:8px}dd{margin:2px 0 0 18px}
a{color:#0b57a4}
.small{font-size:12.5px;color:#555}
@media print{body{margin:0;max-width:none;font-size:11pt}h2{page-break-after:avoid}tr{page-break-inside:avoid}a{color:#000;text-decoration:none}}
)";

std::string html(const Text &text) {
  std::string out;
  for (const Span &s : text) {
    if (s.line_break) {
      out += "<br>";
    }
    const std::string t = html_escape(s.text);
    switch (s.style) {
    case Style::plain: out += t; break;
    case Style::strong: out += "<strong>" + t + "</strong>"; break;
    case Style::code: out += "<code>" + t + "</code>"; break;
    case Style::small: out += "<span class=\"small\">" + t + "</span>"; break;
    case Style::link: out += "<a href=\"" + html_escape(s.href) + "\">" + t + "</a>"; break;
    }
  }
  return out;
}

std::string html_list(const std::vector<Text> &items, std::string_view sep = "") {
  std::string out = "<ul>" + std::string(sep);
  for (const Text &i : items) {
    out += "<li>" + html(i) + "</li>" + std::string(sep);
  }
  return out + "</ul>";
}

std::string_view cell_class(CellKind kind) {
  switch (kind) {
  case CellKind::num: return " class=\"num\"";
  case CellKind::date: return " class=\"date\"";
  case CellKind::subj: return " class=\"subj\"";
  case CellKind::people: return " class=\"people\"";
  case CellKind::text: break;
  }
  return "";
}

} // namespace

std::string render_html(const Document &doc) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"" + html_escape(doc.language) +
                  "\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + html_escape(doc.title) + "</title>\n";
  h += "<style>" + std::string(k_css) + "</style>\n</head>\n<body>\n";
  for (const Block &b : doc.blocks) {
    switch (b.kind) {
    case BlockKind::banner:
    case BlockKind::warning: h += "<div class=\"box warn\">" + html(b.text) + "</div>\n"; break;
    case BlockKind::title: h += "<h1>" + html(b.text) + "</h1>\n"; break;
    case BlockKind::lead: h += "<p class=\"lead\">" + html(b.text) + "</p>\n"; break;
    case BlockKind::heading: h += "<h2>" + html(b.text) + "</h2>\n"; break;
    case BlockKind::paragraph: h += "<p>" + html(b.text) + "</p>\n"; break;
    case BlockKind::note: h += "<p class=\"small\">" + html(b.text) + "</p>\n"; break;
    case BlockKind::bullets: h += html_list(b.items, "\n") + "\n"; break;
    case BlockKind::definitions:
      h += b.boxed ? "<div class=\"box\"><dl>\n" : "<dl>\n";
      for (const Definition &d : b.definitions) {
        h += "<dt>" + html_escape(d.term) + "</dt><dd>" + (d.list.empty() ? html(d.text) : html_list(d.list)) +
             "</dd>\n";
      }
      h += b.boxed ? "</dl></div>\n" : "</dl>\n";
      break;
    case BlockKind::table:
      h += "<table><tr>";
      for (const std::string &c : b.head) {
        h += "<th>" + html_escape(c) + "</th>";
      }
      h += "</tr>\n";
      for (const auto &row : b.rows) {
        h += "<tr>";
        for (const Cell &c : row) {
          h += "<td" + std::string(cell_class(c.kind)) + ">" + html(c.text) +
               (c.list.empty() ? std::string() : html_list(c.list)) + "</td>";
        }
        h += "</tr>\n";
      }
      h += "</table>\n";
      break;
    }
  }
  h += "</body>\n</html>\n";
  return h;
}

} // namespace report

} // namespace maildsar::access
