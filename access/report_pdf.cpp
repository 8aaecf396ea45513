// SPDX-License-Identifier: GPL-3.0-or-later
// The access report as PDF: the same document as report.html, laid out with Pango (UTF-8 text,
// line breaking, DejaVu Sans through fontconfig) on A4 pages drawn by cairo's PDF surface.
// The blocks are placed line by line onto pages (a paragraph may continue on the next page, a
// table row never splits, a table's header row is repeated) twice: once to count the pages, then
// again drawing each page, with "Page N of M" under it, as soon as it is full.
// Built as the PDF module (libmaildsar-pdf.so, access/pdf_module.hpp), loaded on first use.
#include "access/pdf_module.hpp"

#include "connectors/mime/gobject.hpp"

#include <cairo-pdf.h>
#include <cairo.h>
#include <pango/pangocairo.h>

#include <functional>
#include <memory>
#include <numeric>
#include <variant>

namespace maildsar::access::report {

namespace {

using connectors::mime::adopt;
using connectors::mime::FreeFn;
using connectors::mime::GObjectPtr;
using connectors::mime::GObjectUnref;

using CairoSurfacePtr = std::unique_ptr<cairo_surface_t, FreeFn<cairo_surface_destroy>>;
using CairoPtr = std::unique_ptr<cairo_t, FreeFn<cairo_destroy>>;
using FontPtr = std::unique_ptr<PangoFontDescription, FreeFn<pango_font_description_free>>;
using FontOptionsPtr = std::unique_ptr<cairo_font_options_t, FreeFn<cairo_font_options_destroy>>;
using IterPtr = std::unique_ptr<PangoLayoutIter, FreeFn<pango_layout_iter_free>>;
/** A layout drawn by several operations (its lines may lie on two pages). */
using LayoutRef = std::shared_ptr<PangoLayout>;

constexpr double k_page_width = 595.276; // A4 in points
constexpr double k_page_height = 841.89;
constexpr double k_margin = 50;
constexpr double k_top = 50;
constexpr double k_bottom = k_page_height - 62; // the footer lies below
constexpr double k_width = k_page_width - 2 * k_margin;
constexpr int k_max_cell_lines = 40; // a cell longer than this is cut with "…" (a row fits a page)

struct Colour {
  double r = 0;
  double g = 0;
  double b = 0;
};
constexpr Colour k_ink{0.10, 0.10, 0.10};
constexpr Colour k_blue{0.07, 0.235, 0.41};
constexpr Colour k_grey{0.33, 0.33, 0.33};
constexpr Colour k_rule{0.79, 0.82, 0.85};
constexpr Colour k_head_fill{0.91, 0.93, 0.96};
constexpr Colour k_box_fill{0.953, 0.965, 0.98};
constexpr Colour k_box_rule{0.79, 0.84, 0.90};
constexpr Colour k_warn_fill{1.0, 0.965, 0.88};
constexpr Colour k_warn_rule{0.90, 0.76, 0.42};

/** One line of a layout, drawn with its baseline at (x, baseline). */
struct LineOp {
  LayoutRef layout;
  int line = 0;
  double x = 0;
  double baseline = 0;
  Colour colour;
};
struct RectOp {
  double x = 0;
  double y = 0;
  double w = 0;
  double h = 0;
  std::optional<Colour> fill;
  std::optional<Colour> stroke;
};
using Op = std::variant<LineOp, RectOp>;


/** Pango markup of a text. */
std::string markup(const Text &text) {
  std::string out;
  for (const Span &s : text) {
    if (s.line_break) {
      out += "\n";
    }
    const std::string t = html_escape(s.text);
    switch (s.style) {
    case Style::plain: out += t; break;
    case Style::strong: out += "<b>" + t + "</b>"; break;
    case Style::code: out += "<tt>" + t + "</tt>"; break;
    case Style::small: out += "<span size=\"smaller\" foreground=\"#555555\">" + t + "</span>"; break;
    case Style::link: out += "<span foreground=\"#0b57a4\" underline=\"single\">" + t + "</span>"; break;
    }
  }
  return out;
}

class Pager {
public:
  /** `emit` receives each page's operations once the page is full (and the last at finish()). */
  Pager(PangoContext *context, std::function<void(std::vector<Op> &&)> emit)
      : m_context(context), m_emit(std::move(emit)) {}

  /** A layout of `markup_text` in `font` ("DejaVu Sans Bold 13"), wrapped at `width` points. */
  LayoutRef layout(const std::string &markup_text, const char *font, double width,
                   PangoAlignment align = PANGO_ALIGN_LEFT, int max_lines = 0) const {
    GObjectPtr<PangoLayout> owned = adopt(pango_layout_new(m_context));
    FontPtr desc(pango_font_description_from_string(font));
    pango_layout_set_font_description(owned.get(), desc.get());
    pango_layout_set_width(owned.get(), pango_units_from_double(width));
    pango_layout_set_wrap(owned.get(), PANGO_WRAP_WORD_CHAR);
    pango_layout_set_alignment(owned.get(), align);
    if (max_lines > 0) {
      pango_layout_set_height(owned.get(), -max_lines);
      pango_layout_set_ellipsize(owned.get(), PANGO_ELLIPSIZE_END);
    }
    // No hyphen where a word is broken: an address must read as it is ("e-xample.com" would not).
    const std::string whole = "<span insert_hyphens=\"false\">" + markup_text + "</span>";
    pango_layout_set_markup(owned.get(), whole.c_str(), -1);
    return LayoutRef(owned.release(), GObjectUnref{});
  }

  static double height(const LayoutRef &l) {
    int w = 0;
    int h = 0;
    pango_layout_get_size(l.get(), &w, &h);
    return pango_units_to_double(h);
  }

  /** Places a layout's lines from the cursor on, continuing on a new page where one is full. */
  void flow(const LayoutRef &l, double x, Colour colour) {
    IterPtr it(pango_layout_get_iter(l.get()));
    int index = 0;
    do {
      int y0 = 0;
      int y1 = 0;
      pango_layout_iter_get_line_yrange(it.get(), &y0, &y1);
      const double h = pango_units_to_double(y1 - y0);
      if (m_y + h > k_bottom && m_y > k_top) {
        new_page();
      }
      PangoRectangle logical{};
      pango_layout_iter_get_line_extents(it.get(), nullptr, &logical);
      const double baseline = m_y + pango_units_to_double(pango_layout_iter_get_baseline(it.get()) - y0);
      m_page.push_back(LineOp{l, index, x + pango_units_to_double(logical.x), baseline, colour});
      m_y += h;
      ++index;
    } while (pango_layout_iter_next_line(it.get()) != 0);
  }

  /** Places all lines of a layout with its top at `top` (no page break: the caller made room). */
  void place(const LayoutRef &l, double x, double top, Colour colour) {
    IterPtr it(pango_layout_get_iter(l.get()));
    int index = 0;
    do {
      PangoRectangle logical{};
      pango_layout_iter_get_line_extents(it.get(), nullptr, &logical);
      m_page.push_back(LineOp{l, index, x + pango_units_to_double(logical.x),
                                      top + pango_units_to_double(pango_layout_iter_get_baseline(it.get())), colour});
      ++index;
    } while (pango_layout_iter_next_line(it.get()) != 0);
  }

  void rect(double x, double y, double w, double h, std::optional<Colour> fill, std::optional<Colour> stroke) {
    m_page.push_back(RectOp{x, y, w, h, fill, stroke});
  }

  /** Starts a new page unless `needed` points fit below the cursor (or the page is empty). */
  void need(double needed) {
    if (m_y + needed > k_bottom && m_y > k_top) {
      new_page();
    }
  }
  void new_page() {
    m_emit(std::move(m_page));
    m_page.clear();
    ++m_count;
    m_y = k_top;
  }
  void skip(double dy) { m_y = std::min(m_y + dy, k_bottom); }
  [[nodiscard]] double y() const { return m_y; }
  void set_y(double y) { m_y = y; }
  /** Emits the last page; the number of pages. */
  std::size_t finish() {
    m_emit(std::move(m_page));
    m_page.clear();
    return ++m_count;
  }

private:
  PangoContext *m_context;
  std::function<void(std::vector<Op> &&)> m_emit;
  std::vector<Op> m_page; // the page being filled; earlier ones are emitted (bounded memory)
  std::size_t m_count = 0;
  double m_y = k_top;
};

constexpr const char *k_body = "DejaVu Sans 9.5";
constexpr const char *k_bold = "DejaVu Sans Bold 9.5";
constexpr const char *k_small = "DejaVu Sans 8";
constexpr const char *k_cell = "DejaVu Sans 7.5";
constexpr const char *k_cell_bold = "DejaVu Sans Bold 7.5";

/** A box around content of known height, or none when it would not fit on one page. */
void boxed(Pager &p, double content_height, const Colour &fill, const Colour &stroke) {
  const double h = content_height + 14;
  if (h < k_bottom - k_top) {
    p.need(h);
    p.rect(k_margin, p.y(), k_width, h, fill, stroke);
  }
  p.skip(7);
}

void definitions(Pager &p, const Block &b) {
  const double x = b.boxed ? k_margin + 10 : k_margin;
  const double width = b.boxed ? k_width - 20 : k_width;
  struct Laid {
    LayoutRef term;
    std::vector<LayoutRef> body;
  };
  std::vector<Laid> laid;
  double total = 0;
  for (const Definition &d : b.definitions) {
    Laid l{p.layout(html_escape(d.term), k_bold, width), {}};
    total += Pager::height(l.term) + 4;
    if (d.list.empty()) {
      l.body.push_back(p.layout(markup(d.text), k_body, width - 14));
    }
    for (const Text &item : d.list) {
      l.body.push_back(p.layout(markup(item), k_body, width - 28));
    }
    for (const auto &body : l.body) {
      total += Pager::height(body) + 1;
    }
    laid.push_back(std::move(l));
  }
  if (b.boxed) {
    boxed(p, total, k_box_fill, k_box_rule);
  }
  for (std::size_t i = 0; i < laid.size(); ++i) {
    p.need(Pager::height(laid[i].term) + 14);
    p.skip(4);
    p.flow(laid[i].term, x, k_ink);
    const bool list = !b.definitions[i].list.empty();
    for (const auto &body : laid[i].body) {
      if (list) {
        p.need(12);
        p.place(p.layout("•", k_body, 10), x + 16, p.y(), k_ink);
      }
      p.flow(body, x + (list ? 28 : 14), k_ink);
      p.skip(1);
    }
  }
  p.skip(b.boxed ? 12 : 6);
}

void table(Pager &p, const Block &b) {
  const std::size_t columns = b.head.size();
  if (columns == 0) {
    return;
  }
  std::vector<double> weights = b.widths.size() == columns ? b.widths : std::vector<double>(columns, 1.0);
  const double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<double> widths;
  for (double w : weights) {
    widths.push_back(k_width * w / sum);
  }
  constexpr double k_pad = 3;
  const auto row = [&](const std::vector<LayoutRef> &cells, bool header) {
    double h = 0;
    for (const auto &c : cells) {
      h = std::max(h, Pager::height(c));
    }
    h += 2 * k_pad;
    double x = k_margin;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      p.rect(x, p.y(), widths[i], h, header ? std::optional<Colour>(k_head_fill) : std::nullopt, k_rule);
      p.place(cells[i], x + k_pad, p.y() + k_pad, k_ink);
      x += widths[i];
    }
    p.set_y(p.y() + h);
  };
  std::vector<LayoutRef> head;
  double head_height = 0;
  for (std::size_t i = 0; i < columns; ++i) {
    head.push_back(p.layout(html_escape(b.head[i]), k_cell_bold, widths[i] - 2 * k_pad));
    head_height = std::max(head_height, Pager::height(head.back()) + 2 * k_pad);
  }
  p.skip(4);
  p.need(head_height + 24);
  row(head, true);
  for (const auto &cells : b.rows) {
    std::vector<LayoutRef> laid;
    double h = 0;
    for (std::size_t i = 0; i < columns; ++i) {
      std::string m;
      PangoAlignment align = PANGO_ALIGN_LEFT;
      if (i < cells.size()) {
        m = markup(cells[i].text);
        for (const Text &item : cells[i].list) {
          m += (m.empty() ? "" : "\n") + std::string("• ") + markup(item);
        }
        align = cells[i].kind == CellKind::num ? PANGO_ALIGN_RIGHT : PANGO_ALIGN_LEFT;
      }
      laid.push_back(p.layout(m, k_cell, widths[i] - 2 * k_pad, align, k_max_cell_lines));
      h = std::max(h, Pager::height(laid.back()) + 2 * k_pad);
    }
    if (p.y() + h > k_bottom) {
      p.new_page();
      row(head, true); // the header again on each page
    }
    row(laid, false);
  }
  p.skip(10);
}

void lay_out(Pager &p, const Document &doc) {
  for (const Block &b : doc.blocks) {
    switch (b.kind) {
    case BlockKind::title:
      p.flow(p.layout(markup(b.text), "DejaVu Sans Bold 17", k_width), k_margin, k_blue);
      p.skip(4);
      break;
    case BlockKind::lead:
      p.flow(p.layout(markup(b.text), "DejaVu Sans 10", k_width), k_margin, k_grey);
      p.skip(8);
      break;
    case BlockKind::heading: {
      p.skip(12);
      LayoutRef l = p.layout(markup(b.text), "DejaVu Sans Bold 13", k_width);
      p.need(Pager::height(l) + 50); // never alone at the foot of a page
      p.flow(l, k_margin, k_blue);
      p.skip(2);
      p.rect(k_margin, p.y(), k_width, 1.4, k_blue, std::nullopt);
      p.skip(7);
      break;
    }
    case BlockKind::paragraph:
      p.flow(p.layout(markup(b.text), k_body, k_width), k_margin, k_ink);
      p.skip(6);
      break;
    case BlockKind::note:
      p.flow(p.layout(markup(b.text), k_small, k_width), k_margin, k_grey);
      p.skip(6);
      break;
    case BlockKind::banner:
    case BlockKind::warning: {
      LayoutRef l = p.layout(markup(b.text), k_body, k_width - 20);
      boxed(p, Pager::height(l), k_warn_fill, k_warn_rule);
      p.flow(l, k_margin + 10, k_ink);
      p.skip(14);
      break;
    }
    case BlockKind::bullets:
      for (const Text &item : b.items) {
        LayoutRef l = p.layout(markup(item), k_body, k_width - 18);
        p.need(14);
        p.place(p.layout("•", k_body, 10), k_margin + 4, p.y(), k_ink);
        p.flow(l, k_margin + 18, k_ink);
        p.skip(3);
      }
      p.skip(4);
      break;
    case BlockKind::definitions: definitions(p, b); break;
    case BlockKind::table: table(p, b); break;
    }
  }
}

void set_colour(cairo_t *cr, Colour c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }

cairo_status_t append(void *closure, const unsigned char *data, unsigned int length) {
  static_cast<std::string *>(closure)->append(reinterpret_cast<const char *>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

/** Renders the document; false with `error` set when cairo fails. */
bool render(const PdfRequest &request, std::string &pdf, std::string &error) {
  const Document &doc = *request.doc;
  CairoSurfacePtr surface(cairo_pdf_surface_create_for_stream(append, &pdf, k_page_width, k_page_height));
  cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_TITLE, clean_utf8(doc.title).c_str());
  cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_CREATOR, "maildsar");
  CairoPtr cr(cairo_create(surface.get()));
  if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS) {
    error = std::string("report.pdf: cairo: ") + cairo_status_to_string(cairo_status(cr.get()));
    return false;
  }
  GObjectPtr<PangoContext> context = adopt(pango_cairo_create_context(cr.get()));
  pango_cairo_context_set_resolution(context.get(), 72); // font sizes in points, as the page
  FontOptionsPtr options(cairo_font_options_create());
  cairo_font_options_set_hint_metrics(options.get(), CAIRO_HINT_METRICS_OFF); // print metrics
  pango_cairo_context_set_font_options(context.get(), options.get());
  PangoLanguage *language = pango_language_from_string(doc.language.c_str());
  pango_context_set_language(context.get(), language);

  // Pass 1 counts the pages ("Page N of M"); pass 2 lays them out again and draws each page as
  // soon as it is full, so a report of many thousand items never holds all its layouts at once.
  Pager counter(context.get(), [](std::vector<Op> &&) {});
  lay_out(counter, doc);
  const std::size_t total = counter.finish();
  std::size_t n = 0;
  cairo_t *c = cr.get();
  const auto draw = [&](std::vector<Op> &&ops) {
    for (const Op &op : ops) {
      if (const auto *line = std::get_if<LineOp>(&op)) {
        set_colour(c, line->colour);
        cairo_move_to(c, line->x, line->baseline);
        pango_cairo_show_layout_line(c, pango_layout_get_line_readonly(line->layout.get(), line->line));
      } else {
        const auto &r = std::get<RectOp>(op);
        cairo_rectangle(c, r.x, r.y, r.w, r.h);
        if (r.fill) {
          set_colour(c, *r.fill);
          r.stroke ? cairo_fill_preserve(c) : cairo_fill(c);
        }
        if (r.stroke) {
          set_colour(c, *r.stroke);
          cairo_set_line_width(c, 0.6);
          cairo_stroke(c);
        }
      }
    }
    // The footer: the title on the left, "Page N of M" on the right.
    ++n;
    Pager footer(context.get(), [](std::vector<Op> &&) {});
    LayoutRef title = footer.layout(html_escape(doc.title), "DejaVu Sans 7.5", k_width * 0.7);
    pango_layout_set_ellipsize(title.get(), PANGO_ELLIPSIZE_END);
    LayoutRef number = footer.layout(html_escape(request.page_label(request.label_context, n, total)), "DejaVu Sans 7.5",
                                     k_width * 0.3, PANGO_ALIGN_RIGHT);
    set_colour(c, k_grey);
    cairo_move_to(c, k_margin, k_page_height - 42);
    pango_cairo_show_layout(c, title.get());
    cairo_move_to(c, k_margin + k_width * 0.7, k_page_height - 42);
    pango_cairo_show_layout(c, number.get());
    cairo_show_page(c);
  };
  Pager pager(context.get(), draw);
  lay_out(pager, doc);
  (void)pager.finish();
  cr.reset();
  cairo_surface_finish(surface.get());
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
    error = std::string("report.pdf: cairo: ") + cairo_status_to_string(cairo_surface_status(surface.get()));
    return false;
  }
  surface.reset();
  return true;
}

} // namespace

} // namespace maildsar::access::report

extern "C" {

__attribute__((visibility("default"))) int maildsar_pdf_abi() { return MAILDSAR_PDF_ABI; }

__attribute__((visibility("default"))) int
maildsar_pdf_render(const maildsar::access::report::PdfRequest *request) noexcept {
  try {
    return maildsar::access::report::render(*request, *request->pdf, *request->error) ? 0 : -1;
  } catch (const std::exception &e) {
    *request->error = std::string("report.pdf: ") + e.what();
  } catch (...) {
    *request->error = "report.pdf: unknown error";
  }
  return -1;
}

} // extern "C"
