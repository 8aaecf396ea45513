// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// The access report (internal to access/): what export found, as a document of blocks that is
// written once (report.cpp: build_report, build_review, in the report's language) and rendered
// twice, as HTML (report.cpp) and as PDF (report_pdf.cpp, Pango + cairo), so report.html and
// report.pdf say the same.

#include "access/export.hpp"
#include "access/i18n.hpp"
#include "indexer/catalog.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace maildsar::access {

/** Addresses of an item: who sent it, who it went to (to, cc, bcc). */
struct Correspondents {
  std::vector<std::string> from;
  std::vector<std::string> to;
};

/** One exported item. */
struct Entry {
  const Hit *hit = nullptr;
  std::string copy;     // package-relative path ("" = no copy)
  std::string category; // English msgid ("message", "calendar entry", ...): manifest and CSV as is
  std::string problem;  // why there is no (faithful) copy
  std::string problem_shown; // the same in the report's language where it is our text ("" = problem as is)
  std::string folder;   // where it lies in its source, as in the package ("alice/Entwürfe"), UTF-8
  Correspondents people;
  std::string subject;                // as shown (masked when redacting)
  redaction::MessageReport redaction; // what redacting the message copy did (--redact-others)
};

/** A file the catalog marks as unreadable. */
struct SourceProblem {
  std::string source;
  std::string path;
  std::string error;
};

/** "2023-11-14T10:00:00Z". */
[[nodiscard]] std::string iso(std::int64_t t);
[[nodiscard]] std::string join(const std::vector<std::string> &v, std::string_view sep);
/** A package-relative path as a URL path (bytes outside [A-Za-z0-9/._-] percent-encoded). */
[[nodiscard]] std::string href(std::string_view rel);

namespace report {

enum class Style { plain, strong, code, small, link };

/** A run of text; `line_break` starts it on a new line of its paragraph or cell. */
struct Span {
  Span(std::string text_, Style style_ = Style::plain, std::string href_ = {}, bool line_break_ = false)
      : text(std::move(text_)), style(style_), href(std::move(href_)), line_break(line_break_) {}
  std::string text;
  Style style = Style::plain;
  std::string href; // Style::link
  bool line_break = false;
};
using Text = std::vector<Span>;

/** A definition (term, then text or a bulleted list). */
struct Definition {
  std::string term;
  Text text;
  std::vector<Text> list; // shown instead of `text` when not empty
};

enum class CellKind { text, num, date, subj, people };
struct Cell {
  Text text;
  CellKind kind = CellKind::text;
  std::vector<Text> list; // a bulleted list after the text
};

enum class BlockKind { banner, title, lead, heading, paragraph, warning, definitions, bullets, table, note };

struct Block {
  BlockKind kind = BlockKind::paragraph;
  Text text;                               // banner, title, lead, heading, paragraph, warning, note
  bool boxed = false;                      // definitions
  std::vector<Definition> definitions;     // definitions
  std::vector<Text> items;                 // bullets
  std::vector<std::string> head;           // table
  std::vector<std::vector<Cell>> rows;     // table
  std::vector<double> widths;              // table: relative column widths (PDF); empty = equal
};

struct Document {
  std::string language; // "en", "de"
  std::string title;
  std::vector<Block> blocks;
};

/** The whole document as self-contained HTML (inline CSS, no scripts). */
[[nodiscard]] std::string render_html(const Document &doc);

/**
 * The document as PDF: A4 pages, text laid out by Pango (UTF-8, DejaVu Sans), headings, tables
 * with their header row repeated on each page, "Page N of M" under every page.
 * @errors ErrorCode::internal when cairo fails.
 */
[[nodiscard]] core::Result<std::string> render_pdf(const Document &doc, const i18n::Catalog &cat);

} // namespace report

/** What build_report reads. */
struct ReportInput {
  const core::Config &config;
  const SubjectProfile &subject;
  const ExportOptions &options;
  const std::vector<Entry> &entries;
  const ExportSummary &summary;
  const std::set<std::string> &external_domains;
  std::uint64_t masked_addresses = 0; // in log excerpts and the report (OthersMasker)
  std::uint64_t masked_ips = 0;
  bool redact = false;
  std::int64_t now = 0;
  const std::vector<SourceProblem> &unreadable;
  const std::vector<index::SourceStatus> &statuses;
};

/** The report for the data subject, in cat's language. */
[[nodiscard]] report::Document build_report(const ReportInput &in, const i18n::Catalog &cat);

/** The DPO's review page of a draft: who each placeholder stands for, what was done per item. */
[[nodiscard]] report::Document build_review(const std::vector<Entry> &entries, const redaction::PersonLabels &people,
                                            const ExportSummary &summary, bool redact, const i18n::Catalog &cat);

/** One line of what redacting a message copy did, "" when nothing. */
[[nodiscard]] std::string redaction_note(const redaction::MessageReport &r, const i18n::Catalog &cat);

/** The plural noun of a category msgid ("message" -> "messages"), translated. */
[[nodiscard]] std::string category_plural(const std::string &category, const i18n::Catalog &cat);

} // namespace maildsar::access
