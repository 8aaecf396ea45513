// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * The contract between redaction/html.cpp and the HTML module (html_libxml2.cpp,
 * libmaildsar-html.so), loaded the first time an HTML part is redacted: libxml2 brings ICU
 * (libicuuc and its 30 MB of data), about 1.4 ms of every start of the program, and only the
 * redaction of an HTML part uses it (core/module.hpp). Both sides are built from the same tree,
 * so the request may hold C++ types; bump MAILDSAR_HTML_ABI whenever it changes: the loader
 * refuses a module of another ABI.
 */
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#define MAILDSAR_HTML_ABI 1

namespace maildsar::redaction {

/** One HTML text to redact (see redact_html in html.hpp). */
struct HtmlRequest {
  const std::string *html = nullptr;
  const std::function<std::string(std::string_view)> *redact = nullptr;
  std::optional<std::string> *out = nullptr; // the result: nullopt when libxml2 cannot parse it
  std::exception_ptr *thrown = nullptr;      // what `redact` threw, rethrown by the caller
};

} // namespace maildsar::redaction

extern "C" {
typedef int (*maildsar_html_abi_fn)();
/** Sets *request->out and returns 0; -1 with *request->thrown set when it threw. Never throws. */
typedef int (*maildsar_html_redact_fn)(const maildsar::redaction::HtmlRequest *request);
}
