// SPDX-License-Identifier: GPL-3.0-or-later
// PDF text with poppler-cpp: the document information (Title, Author, Subject, Keywords) and the
// text of each page, up to Limits::max_pages pages and the text limit. Runs in the worker only.
#include "extract/text_sink.hpp"

#include <fmt/format.h>
#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-page.h>

#include <array>
#include <climits>
#include <memory>

namespace maildsar::extract::detail {

namespace {

void quiet(const std::string & /*message*/, void * /*closure*/) {
  // poppler's diagnostics name objects of the file; the error we return says enough.
}

std::string utf8(const poppler::ustring &s) {
  const poppler::byte_array bytes = s.to_utf8();
  return std::string(bytes.begin(), bytes.end());
}

} // namespace

core::Status extract_pdf(Context &ctx, std::string_view bytes) {
  poppler::set_debug_error_function(quiet, nullptr);
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
    return core::fail(core::ErrorCode::data, "pdf: larger than 2 GiB");
  }
  const std::unique_ptr<poppler::document> doc(
      poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
  if (!doc) {
    return core::fail(core::ErrorCode::data, "pdf: not a PDF or damaged beyond repair");
  }
  if (doc->is_locked()) {
    return core::fail(core::ErrorCode::data, "pdf: encrypted (a password is needed to read it)");
  }
  constexpr std::array<const char *, 4> k_info{"Title", "Author", "Subject", "Keywords"};
  for (const char *key : k_info) {
    std::string value = utf8(doc->info_key(key));
    if (!value.empty()) {
      ctx.add(value);
      ctx.add("\n");
    }
  }
  const int pages = doc->pages();
  const int read = std::min<long long>(pages, ctx.limits.max_pages) == pages ? pages
                                                                             : static_cast<int>(ctx.limits.max_pages);
  for (int i = 0; i < read && !ctx.full; ++i) {
    const std::unique_ptr<poppler::page> page(doc->create_page(i));
    if (!page) {
      continue;
    }
    ctx.add(utf8(page->text()));
    ctx.add("\n\n");
  }
  if (read < pages) {
    ctx.out.truncated = true;
    ctx.warn(fmt::format("pdf: {} pages; only the first {} are read", pages, read));
  }
  return {};
}

} // namespace maildsar::extract::detail
