// SPDX-License-Identifier: GPL-3.0-or-later
// redact_html: the HTML module (html_libxml2.cpp), opened on the first HTML part redacted.
#include "redaction/html.hpp"

#include "core/module.hpp"
#include "redaction/html_module.hpp"


#ifndef MAILDSAR_HTML_MODULE_BUILD_PATH
#error "MAILDSAR_HTML_MODULE_BUILD_PATH must name the module in the build tree"
#endif
#ifndef MAILDSAR_HTML_MODULE_INSTALL_RELATIVE
#error "MAILDSAR_HTML_MODULE_INSTALL_RELATIVE must name the installed module relative to the program"
#endif
#ifndef MAILDSAR_HTML_MODULE_INSTALL_PATH
#error "MAILDSAR_HTML_MODULE_INSTALL_PATH must name the installed module"
#endif

#ifdef MAILDSAR_HTML_LINKED
extern "C" int maildsar_html_redact(const maildsar::redaction::HtmlRequest *request) noexcept;
#endif

namespace maildsar::redaction {

namespace {

core::Result<maildsar_html_redact_fn> module_redact() {
#ifdef MAILDSAR_HTML_LINKED
  return &maildsar_html_redact;
#else
  static const core::Result<void *> loaded = core::module_function(
      {"the HTML module (libxml2)", "MAILDSAR_HTML_MODULE", MAILDSAR_HTML_MODULE_INSTALL_RELATIVE,
       MAILDSAR_HTML_MODULE_BUILD_PATH, MAILDSAR_HTML_MODULE_INSTALL_PATH},
      "maildsar_html_abi", MAILDSAR_HTML_ABI, "maildsar_html_redact");
  MAILDSAR_TRY_ASSIGN(void *fn, loaded);
  return reinterpret_cast<maildsar_html_redact_fn>(fn);
#endif
}

} // namespace

core::Result<std::optional<std::string>> redact_html(const std::string &html,
                                                     const std::function<std::string(std::string_view)> &redact) {
  MAILDSAR_TRY_ASSIGN(maildsar_html_redact_fn fn, module_redact());
  std::optional<std::string> out;
  std::exception_ptr thrown;
  const HtmlRequest request{&html, &redact, &out, &thrown};
  if (fn(&request) != 0) {
    std::rethrow_exception(thrown);
  }
  return out;
}

} // namespace maildsar::redaction
