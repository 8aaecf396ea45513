// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * The contract between access/ and the PDF module (report_pdf.cpp, libmaildsar-pdf.so), which
 * is loaded on first use: Pango and cairo bring fontconfig, freetype, harfbuzz, pixman and the
 * X libraries, two dozen shared libraries that every run would otherwise load at start-up
 * (core/module.hpp). Both sides are built from the same tree, so the request may hold C++
 * types; bump MAILDSAR_PDF_ABI whenever it changes: the loader refuses a module of another ABI.
 */
#include "access/report.hpp"

#include <cstddef>
#include <string>

#define MAILDSAR_PDF_ABI 1

namespace maildsar::access::report {

/** One PDF to render. */
struct PdfRequest {
  const Document *doc = nullptr;
  /** "Page N of M" in the report's language (the catalogue stays on the caller's side). */
  std::string (*page_label)(const void *context, std::size_t page, std::size_t pages) = nullptr;
  const void *label_context = nullptr;
  std::string *pdf = nullptr;   // out: the file's bytes
  std::string *error = nullptr; // out: why not, when it returns nonzero
};

} // namespace maildsar::access::report

extern "C" {
typedef int (*maildsar_pdf_abi_fn)();
/** Renders request->doc; 0, or -1 with request->error set. Never throws. */
typedef int (*maildsar_pdf_render_fn)(const maildsar::access::report::PdfRequest *request);
}
