// SPDX-License-Identifier: GPL-3.0-or-later
// report::render_pdf: the PDF module (report_pdf.cpp), opened on the first report rendered.
#include "access/pdf_module.hpp"

#include "core/module.hpp"


#ifndef MAILDSAR_PDF_MODULE_BUILD_PATH
#error "MAILDSAR_PDF_MODULE_BUILD_PATH must name the module in the build tree"
#endif
#ifndef MAILDSAR_PDF_MODULE_INSTALL_RELATIVE
#error "MAILDSAR_PDF_MODULE_INSTALL_RELATIVE must name the installed module relative to the program"
#endif
#ifndef MAILDSAR_PDF_MODULE_INSTALL_PATH
#error "MAILDSAR_PDF_MODULE_INSTALL_PATH must name the installed module"
#endif

#ifdef MAILDSAR_PDF_LINKED
extern "C" int maildsar_pdf_render(const maildsar::access::report::PdfRequest *request) noexcept;
#endif

namespace maildsar::access::report {

namespace {

core::Result<maildsar_pdf_render_fn> renderer() {
#ifdef MAILDSAR_PDF_LINKED
  return &maildsar_pdf_render;
#else
  static const core::Result<void *> loaded = core::module_function(
      {"the PDF module (Pango, cairo)", "MAILDSAR_PDF_MODULE", MAILDSAR_PDF_MODULE_INSTALL_RELATIVE,
       MAILDSAR_PDF_MODULE_BUILD_PATH, MAILDSAR_PDF_MODULE_INSTALL_PATH},
      "maildsar_pdf_abi", MAILDSAR_PDF_ABI, "maildsar_pdf_render");
  MAILDSAR_TRY_ASSIGN(void *fn, loaded);
  return reinterpret_cast<maildsar_pdf_render_fn>(fn);
#endif
}

std::string page_label(const void *context, std::size_t page, std::size_t pages) {
  return static_cast<const i18n::Catalog *>(context)->trf("Page {0} of {1}", page, pages);
}

} // namespace

core::Result<std::string> render_pdf(const Document &doc, const i18n::Catalog &cat) {
  MAILDSAR_TRY_ASSIGN(maildsar_pdf_render_fn render, renderer());
  std::string pdf;
  std::string error;
  const PdfRequest request{&doc, page_label, &cat, &pdf, &error};
  if (render(&request) != 0) {
    return core::fail(core::ErrorCode::internal, error);
  }
  return pdf;
}

} // namespace maildsar::access::report
