// SPDX-License-Identifier: GPL-3.0-or-later
// The HTML module (libmaildsar-html.so): HTML parts redacted with libxml2's HTML parser,
// behind the request of redaction/html_module.hpp. Loaded by redaction/html.cpp.
#include "redaction/html_module.hpp"

#include <libxml/HTMLparser.h>
#include <libxml/HTMLtree.h>
#include <libxml/tree.h>

#include <limits>
#include <memory>
#include <vector>

namespace maildsar::redaction {

namespace {

struct DocFree {
  void operator()(xmlDoc *doc) const noexcept { xmlFreeDoc(doc); }
};
struct CtxtFree {
  void operator()(htmlParserCtxt *ctxt) const noexcept { htmlFreeParserCtxt(ctxt); }
};
struct XmlFree {
  void operator()(xmlChar *p) const noexcept { xmlFree(p); }
};
using XmlString = std::unique_ptr<xmlChar, XmlFree>;

std::string_view view(const xmlChar *s) {
  return s == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char *>(s));
}
const xmlChar *xml(const std::string &s) { return reinterpret_cast<const xmlChar *>(s.c_str()); }

/** redact_html() of html.hpp. */
std::optional<std::string> redact_with_libxml2(const std::string &html,
                                               const std::function<std::string(std::string_view)> &redact) {
  if (html.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return std::nullopt;
  }
  const int flags = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                    HTML_PARSE_NOIMPLIED | HTML_PARSE_NODEFDTD; // no DOCTYPE the part did not have;
  // not HTML_PARSE_COMPACT: text nodes are rewritten in place
  const std::unique_ptr<htmlParserCtxt, CtxtFree> ctxt(htmlNewParserCtxt());
  if (!ctxt) {
    return std::nullopt;
  }
  const std::unique_ptr<xmlDoc, DocFree> doc(
      htmlCtxtReadMemory(ctxt.get(), html.data(), static_cast<int>(html.size()), nullptr, "UTF-8", flags));
  // Recovery keeps going over bad markup, but a limit (nesting deeper than libxml2 follows, no
  // memory) stops the parse: what lies after it would be missing from the tree, so unredacted.
  if (!doc || ctxt->errNo == XML_ERR_INTERNAL_ERROR || ctxt->errNo == XML_ERR_NO_MEMORY) {
    return std::nullopt;
  }
  bool changed = false;
  // Depth-first without recursion: hostile HTML nests deeply.
  std::vector<xmlNode *> stack;
  for (xmlNode *n = doc->children; n != nullptr; n = n->next) {
    stack.push_back(n);
  }
  while (!stack.empty()) {
    xmlNode *node = stack.back();
    stack.pop_back();
    if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE || node->type == XML_COMMENT_NODE) {
      const std::string_view before = view(node->content);
      if (!before.empty()) {
        const std::string after = redact(before);
        if (after != before) {
          xmlNodeSetContent(node, nullptr);
          xmlNodeAddContentLen(node, xml(after), static_cast<int>(after.size()));
          changed = true;
        }
      }
      continue;
    }
    if (node->type == XML_ELEMENT_NODE) {
      for (xmlAttr *attr = node->properties; attr != nullptr; attr = attr->next) {
        const XmlString value(xmlNodeListGetString(doc.get(), attr->children, 1));
        const std::string_view before = view(value.get());
        if (before.empty()) {
          continue;
        }
        const std::string after = redact(before);
        if (after != before) {
          xmlSetProp(node, attr->name, xml(after));
          changed = true;
        }
      }
    }
    for (xmlNode *child = node->children; child != nullptr; child = child->next) {
      stack.push_back(child);
    }
  }
  if (!changed) {
    return html;
  }
  xmlChar *out = nullptr;
  int size = 0;
  htmlDocDumpMemoryFormat(doc.get(), &out, &size, 0);
  const XmlString owned(out);
  if (out == nullptr || size < 0) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char *>(out), static_cast<std::size_t>(size));
}

} // namespace

} // namespace maildsar::redaction

extern "C" {

__attribute__((visibility("default"))) int maildsar_html_abi() { return MAILDSAR_HTML_ABI; }

__attribute__((visibility("default"))) int maildsar_html_redact(const maildsar::redaction::HtmlRequest *request) noexcept {
  try {
    *request->out = maildsar::redaction::redact_with_libxml2(*request->html, *request->redact);
    return 0;
  } catch (...) {
    *request->thrown = std::current_exception();
  }
  return -1;
}

} // extern "C"
