// SPDX-License-Identifier: GPL-3.0-or-later
// HTML parts to plain text for the MIME decoder.
#include "connectors/mime/mime_internal.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace maildsar::connectors::mime::detail {

// ---------------------------------------------------------------------------------------------
// HTML to text

namespace {

std::size_t ifind(std::string_view haystack, std::string_view needle, std::size_t from = 0) {
  if (needle.empty() || haystack.size() < needle.size()) {
    return std::string_view::npos;
  }
  for (std::size_t i = from; i + needle.size() <= haystack.size(); ++i) {
    if (iequals(haystack.substr(i, needle.size()), needle)) {
      return i;
    }
  }
  return std::string_view::npos;
}

struct NamedEntity {
  std::string_view name;
  std::uint32_t code_point;
};

// ISO-8859-1 entities, U+00A0 .. U+00FF, in order.
constexpr std::array<std::string_view, 96> k_latin1_entities{
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",
    "uml",    "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",
    "deg",    "plusmn", "sup2",   "sup3",   "acute",  "micro",  "para",   "middot",
    "cedil",  "sup1",   "ordm",   "raquo",  "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc",  "Atilde", "Auml",   "Aring",  "AElig",  "Ccedil",
    "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave", "Iacute", "Icirc",  "Iuml",
    "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde", "Ouml",   "times",
    "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",  "szlig",
    "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",
    "eth",    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide",
    "oslash", "ugrave", "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml",
};

constexpr std::array k_other_entities{
    NamedEntity{"amp", 38},       NamedEntity{"lt", 60},        NamedEntity{"gt", 62},
    NamedEntity{"quot", 34},      NamedEntity{"apos", 39},      NamedEntity{"commat", 64},
    NamedEntity{"OElig", 338},    NamedEntity{"oelig", 339},    NamedEntity{"Scaron", 352},
    NamedEntity{"scaron", 353},   NamedEntity{"Yuml", 376},     NamedEntity{"fnof", 402},
    NamedEntity{"circ", 710},     NamedEntity{"tilde", 732},    NamedEntity{"ensp", 8194},
    NamedEntity{"emsp", 8195},    NamedEntity{"thinsp", 8201},  NamedEntity{"zwnj", 8204},
    NamedEntity{"zwj", 8205},     NamedEntity{"lrm", 8206},     NamedEntity{"rlm", 8207},
    NamedEntity{"ndash", 8211},   NamedEntity{"mdash", 8212},   NamedEntity{"lsquo", 8216},
    NamedEntity{"rsquo", 8217},   NamedEntity{"sbquo", 8218},   NamedEntity{"ldquo", 8220},
    NamedEntity{"rdquo", 8221},   NamedEntity{"bdquo", 8222},   NamedEntity{"dagger", 8224},
    NamedEntity{"Dagger", 8225},  NamedEntity{"bull", 8226},    NamedEntity{"hellip", 8230},
    NamedEntity{"permil", 8240},  NamedEntity{"lsaquo", 8249},  NamedEntity{"rsaquo", 8250},
    NamedEntity{"euro", 8364},    NamedEntity{"trade", 8482},   NamedEntity{"AMP", 38},
    NamedEntity{"LT", 60},        NamedEntity{"GT", 62},        NamedEntity{"QUOT", 34},
};

std::optional<std::uint32_t> named_entity(std::string_view name) {
  for (std::size_t i = 0; i < k_latin1_entities.size(); ++i) {
    if (k_latin1_entities[i] == name) {
      return static_cast<std::uint32_t>(0xA0U + i);
    }
  }
  for (const NamedEntity &entity : k_other_entities) {
    if (entity.name == name) {
      return entity.code_point;
    }
  }
  return std::nullopt;
}

/**
 * Decodes the character reference at `text[pos]` ('&'). Appends the character to `out` and
 * returns the number of bytes consumed, or 0 when it is not a reference.
 */
std::size_t decode_entity(std::string_view text, std::size_t pos, std::string &out) {
  std::size_t i = pos + 1;
  if (i < text.size() && text[i] == '#') {
    ++i;
    const bool hex = i < text.size() && (text[i] == 'x' || text[i] == 'X');
    if (hex) {
      ++i;
    }
    const std::size_t digits_begin = i;
    std::uint32_t value = 0;
    while (i < text.size() && (hex ? is_hex(text[i]) : (text[i] >= '0' && text[i] <= '9')) &&
           i - digits_begin < 8) {
      value = value * (hex ? 16U : 10U) + static_cast<std::uint32_t>(hex_value(text[i]));
      ++i;
    }
    if (i == digits_begin) {
      return 0;
    }
    if (i < text.size() && text[i] == ';') {
      ++i;
    }
    append_code_point(out, value == 0xA0U ? 0x20U : value);
    return i - pos;
  }
  const std::size_t name_begin = i;
  while (i < text.size() && is_alnum(text[i]) && i - name_begin < 32) {
    ++i;
  }
  if (i == name_begin) {
    return 0;
  }
  const std::optional<std::uint32_t> code_point = named_entity(text.substr(name_begin, i - name_begin));
  if (!code_point) {
    return 0;
  }
  if (i < text.size() && text[i] == ';') {
    ++i;
  }
  append_code_point(out, *code_point == 0xA0U ? 0x20U : *code_point);
  return i - pos;
}

std::string decode_entities(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '&') {
      if (const std::size_t used = decode_entity(text, i, out); used > 0) {
        i += used - 1;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

constexpr std::array<std::string_view, 22> k_inline_tags{
    "a",    "abbr", "b",     "big",  "cite", "code", "em",     "font", "i",   "label", "mark",
    "q",    "s",    "small", "span", "strike", "strong", "sub", "sup", "tt",  "u",     "wbr"};

constexpr std::array<std::string_view, 5> k_skipped_tags{"script", "style", "head", "noscript",
                                                          "template"};

/** The value of attribute `name` in a tag's text (entities decoded), if present. */
std::optional<std::string> attribute(std::string_view tag, std::string_view name) {
  std::size_t pos = 0;
  while ((pos = ifind(tag, name, pos)) != std::string_view::npos) {
    const bool starts = pos > 0 && (is_space(tag[pos - 1]) || tag[pos - 1] == '"' || tag[pos - 1] == '\'');
    std::size_t i = pos + name.size();
    while (i < tag.size() && is_space(tag[i])) {
      ++i;
    }
    if (!starts || i >= tag.size() || tag[i] != '=') {
      pos += name.size();
      continue;
    }
    ++i;
    while (i < tag.size() && is_space(tag[i])) {
      ++i;
    }
    if (i >= tag.size()) {
      return std::nullopt;
    }
    std::size_t end = 0;
    if (tag[i] == '"' || tag[i] == '\'') {
      end = tag.find(tag[i], i + 1);
      ++i;
    } else {
      end = i;
      while (end < tag.size() && !is_space(tag[end]) && tag[end] != '>') {
        ++end;
      }
    }
    if (end == std::string_view::npos) {
      end = tag.size();
    }
    return decode_entities(tag.substr(i, end - i));
  }
  return std::nullopt;
}

/** Finds the '>' closing a tag that starts at `pos`, skipping quoted attribute values. */
std::size_t tag_end(std::string_view html, std::size_t pos) {
  char quote = 0;
  for (std::size_t i = pos + 1; i < html.size(); ++i) {
    const char c = html[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      }
    } else if (c == '"' || c == '\'') {
      // Only a quote right after '=' opens a value; stray quotes in broken HTML do not.
      std::size_t k = i;
      while (k > pos && is_space(html[k - 1])) {
        --k;
      }
      if (k > pos && html[k - 1] == '=') {
        quote = c;
      }
    } else if (c == '>') {
      return i;
    }
  }
  return std::string_view::npos;
}

} // namespace

std::string collapse_whitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_space(text[i])) {
      out.push_back(text[i]);
      ++i;
      continue;
    }
    bool newline = false;
    while (i < text.size() && is_space(text[i])) {
      newline = newline || text[i] == '\n';
      ++i;
    }
    if (!out.empty() && i < text.size()) {
      out.push_back(newline ? '\n' : ' ');
    }
  }
  return out;
}

std::string html_to_text(std::string_view html) {
  std::string out;
  out.reserve(html.size() / 2);
  std::size_t i = 0;
  while (i < html.size()) {
    const char c = html[i];
    if (c == '&') {
      if (const std::size_t used = decode_entity(html, i, out); used > 0) {
        i += used;
        continue;
      }
      out.push_back(c);
      ++i;
      continue;
    }
    if (c != '<') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (html.substr(i, 4) == "<!--") {
      const std::size_t close = html.find("-->", i + 4);
      i = close == std::string_view::npos ? html.size() : close + 3;
      continue;
    }
    std::size_t name_begin = i + 1;
    const bool closing = name_begin < html.size() && html[name_begin] == '/';
    if (closing) {
      ++name_begin;
    }
    std::size_t name_end = name_begin;
    while (name_end < html.size() && (is_alnum(html[name_end]) || html[name_end] == '-' ||
                                      html[name_end] == ':')) {
      ++name_end;
    }
    const bool markup = name_end > name_begin || (name_begin < html.size() &&
                                                   (html[name_begin] == '!' || html[name_begin] == '?'));
    if (!markup) {
      out.push_back(c); // a lone '<' in text
      ++i;
      continue;
    }
    const std::size_t end = tag_end(html, i);
    if (end == std::string_view::npos) {
      break; // unterminated tag at the end of the document
    }
    const std::string name = lower(html.substr(name_begin, name_end - name_begin));
    const std::string_view tag = html.substr(i, end - i + 1);
    i = end + 1;
    if (!closing && std::find(k_skipped_tags.begin(), k_skipped_tags.end(), name) != k_skipped_tags.end()) {
      const std::string close_tag = "</" + name;
      const std::size_t close = ifind(html, close_tag, i);
      if (close == std::string_view::npos) {
        i = html.size();
      } else {
        const std::size_t close_end = html.find('>', close);
        i = close_end == std::string_view::npos ? html.size() : close_end + 1;
      }
      out.push_back('\n');
      continue;
    }
    if (!closing && (name == "a" || name == "area")) {
      if (std::optional<std::string> href = attribute(tag, "href")) {
        const std::string_view target = trim(*href);
        for (const std::string_view scheme : {std::string_view("mailto:"), std::string_view("tel:")}) {
          if (istarts_with(target, scheme)) {
            std::string_view value = target.substr(scheme.size());
            value = value.substr(0, value.find('?'));
            const GCharPtr unescaped{
                g_uri_unescape_segment(value.data(), value.data() + value.size(), nullptr)};
            out += ' ';
            out += unescaped ? to_std_string(unescaped.get()) : std::string(value);
            out += ' ';
          }
        }
      }
    }
    if (std::find(k_inline_tags.begin(), k_inline_tags.end(), name) == k_inline_tags.end()) {
      out.push_back(name == "td" || name == "th" || name == "img" ? ' ' : '\n');
    }
  }
  return collapse_whitespace(out);
}

std::string html_meta_charset(std::string_view html) {
  const std::string_view head = html.substr(0, std::min<std::size_t>(html.size(), 4096));
  std::size_t pos = ifind(head, "charset=");
  if (pos == std::string_view::npos) {
    return {};
  }
  pos += 8;
  while (pos < head.size() && (head[pos] == '"' || head[pos] == '\'' || is_space(head[pos]))) {
    ++pos;
  }
  std::size_t end = pos;
  while (end < head.size() && (is_alnum(head[end]) || head[end] == '-' || head[end] == '_' ||
                               head[end] == ':' || head[end] == '.')) {
    ++end;
  }
  return std::string(head.substr(pos, end - pos));
}

} // namespace maildsar::connectors::mime::detail
