// SPDX-License-Identifier: GPL-3.0-or-later
// Attachment text extraction (extract/): PDF (poppler-cpp), OOXML and ODF (libzip + libxml2),
// RTF, ZIP, gzip and TNEF (libytnef), recursively. In the program these run in the worker process under limits
// (docs/reliability.md); here they run in-process, so a crash in them is seen, and the harness
// checks the documented bounds of the output.
//
// Input: one selector byte, then the file. Selector 0 lets detect() choose from the bytes;
// 1..7 force a format; 8 feeds rtf_to_text() directly; 9 forces TNEF.
#include "extract/extract.hpp"
#include "fuzz/fuzz_support.hpp"

#include <array>
#include <cstddef>
#include <cstdint>

namespace ex = maildsar::extract;
using maildsar::fuzz::as_view;
using maildsar::fuzz::require;

namespace {

constexpr std::array<ex::Format, 8> k_formats = {ex::Format::none, ex::Format::pdf,  ex::Format::ooxml,
                                                 ex::Format::odf,  ex::Format::rtf,  ex::Format::zip,
                                                 ex::Format::gzip, ex::Format::text};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::uint8_t selector = data[0];
  const std::string_view bytes = as_view(data + 1, size - 1);
  ex::Limits limits;
  limits.max_text_bytes = 64U << 10;
  limits.max_inflated_bytes = 4U << 20;
  limits.max_depth = 3;
  limits.max_pages = 20;
  if (selector == 8) {
    const std::string text = ex::rtf_to_text(bytes, limits.max_text_bytes);
    require(text.size() <= limits.max_text_bytes, "rtf_to_text keeps to max_bytes");
    return 0;
  }
  const ex::Format format = selector == 9 ? ex::Format::tnef : k_formats[selector % k_formats.size()];
  auto result = format == ex::Format::none ? ex::extract_any(bytes, "", "", limits)
                                           : ex::extract_text(format, bytes, limits);
  if (result) {
    // A little slack: a cut may finish the UTF-8 sequence it is in.
    require(result->text.size() <= limits.max_text_bytes + 4, "extracted text keeps to max_text_bytes");
    require(!result->truncated || !result->warnings.empty(), "a truncation is named in a warning");
  }
  return 0;
}
