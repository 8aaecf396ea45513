// SPDX-License-Identifier: GPL-3.0-or-later
// Text helpers of the PST reader: see text.hpp.
#include "connectors/pst/text.hpp"

#include "connectors/mime/gobject.hpp"

#include <glib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <set>
#include <utility>
#include <vector>

namespace maildsar::connectors::pst {

std::string ensure_utf8(std::string bytes, const char *charset) {
  if (g_utf8_validate(bytes.data(), static_cast<gssize>(bytes.size()), nullptr) != FALSE) {
    return bytes;
  }
  gsize written = 0;
  mime::GCharPtr converted(g_convert(bytes.data(), static_cast<gssize>(bytes.size()), "UTF-8",
                                     charset, nullptr, &written, nullptr));
  if (converted) {
    return std::string(converted.get(), written);
  }
  mime::GCharPtr valid(g_utf8_make_valid(bytes.data(), static_cast<gssize>(bytes.size())));
  return valid ? std::string(valid.get()) : std::string();
}

std::string trim(std::string_view text) {
  const auto *ws = " \t\r\n";
  auto start = text.find_first_not_of(ws);
  if (start == std::string_view::npos) {
    return {};
  }
  auto end = text.find_last_not_of(ws);
  return std::string(text.substr(start, end - start + 1));
}

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (g_ascii_tolower(text[i]) != g_ascii_tolower(prefix[i])) {
      return false;
    }
  }
  return true;
}

std::string lower_ascii(std::string_view text) {
  std::string out(text);
  for (auto &c : out) {
    c = g_ascii_tolower(c);
  }
  return out;
}

namespace {

void append_utf8(std::string &out, std::uint32_t code_point) {
  if (code_point == 0 || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    return;
  }
  std::array<char, 8> buffer{};
  auto len = g_unichar_to_utf8(static_cast<gunichar>(code_point), buffer.data());
  out.append(buffer.data(), static_cast<std::size_t>(len));
}

} // namespace

std::string html_to_text(std::string_view html) {
  std::string out;
  out.reserve(html.size() / 2);
  std::size_t i = 0;
  auto skip_element = [&](std::string_view name) {
    // i is just after "<name"; skip to the matching "</name>"
    std::string close = "</" + std::string(name);
    while (i < html.size()) {
      auto lt = html.find('<', i);
      if (lt == std::string_view::npos) {
        i = html.size();
        return;
      }
      if (iequals_prefix(html.substr(lt), close)) {
        auto gt = html.find('>', lt);
        i = gt == std::string_view::npos ? html.size() : gt + 1;
        return;
      }
      i = lt + 1;
    }
  };
  while (i < html.size()) {
    char c = html[i];
    if (c == '<') {
      auto rest = html.substr(i);
      if (rest.starts_with("<!--")) {
        auto end = html.find("-->", i + 4);
        i = end == std::string_view::npos ? html.size() : end + 3;
        continue;
      }
      bool skip = false;
      for (std::string_view name : {"style", "script", "head"}) {
        // Built by appending, not "<" + std::string(name): GCC 12 -O3 reports a false -Wrestrict
        // in operator+(const char *, std::string &&) (GCC PR 105329).
        std::string tag(1, '<');
        tag += name;
        if (iequals_prefix(rest, tag) && rest.size() > tag.size() &&
            (rest[tag.size()] == '>' || g_ascii_isspace(rest[tag.size()]) != FALSE)) {
          i += tag.size();
          skip_element(name);
          skip = true;
          break;
        }
      }
      if (skip) {
        out += ' ';
        continue;
      }
      auto gt = html.find('>', i);
      bool block = iequals_prefix(rest, "<br") || iequals_prefix(rest, "<p") ||
                   iequals_prefix(rest, "</p") || iequals_prefix(rest, "<div") ||
                   iequals_prefix(rest, "</div") || iequals_prefix(rest, "<tr") ||
                   iequals_prefix(rest, "<li") || iequals_prefix(rest, "</td");
      out += block ? '\n' : ' ';
      i = gt == std::string_view::npos ? html.size() : gt + 1;
      continue;
    }
    if (c == '&') {
      auto semi = html.find(';', i);
      if (semi != std::string_view::npos && semi - i <= 10) {
        auto entity = html.substr(i + 1, semi - i - 1);
        std::uint32_t cp = 0;
        bool known = true;
        if (!entity.empty() && entity[0] == '#') {
          bool hex = entity.size() > 1 && (entity[1] == 'x' || entity[1] == 'X');
          auto digits = std::string(entity.substr(hex ? 2 : 1));
          char *end = nullptr;
          auto value = std::strtoul(digits.c_str(), &end, hex ? 16 : 10);
          known = !digits.empty() && end != nullptr && *end == '\0';
          cp = static_cast<std::uint32_t>(std::min<unsigned long>(value, 0x110000UL));
        } else if (entity == "amp") {
          cp = '&';
        } else if (entity == "lt") {
          cp = '<';
        } else if (entity == "gt") {
          cp = '>';
        } else if (entity == "quot") {
          cp = '"';
        } else if (entity == "apos") {
          cp = '\'';
        } else if (entity == "nbsp") {
          cp = ' ';
        } else {
          known = false;
        }
        if (known) {
          append_utf8(out, cp);
          i = semi + 1;
          continue;
        }
      }
    }
    out += c;
    ++i;
  }
  return out;
}

std::string rtf_to_text(std::string_view rtf) {
  std::string out;
  std::string pending_8bit; // \'hh bytes, converted together
  auto flush_8bit = [&] {
    if (!pending_8bit.empty()) {
      out += ensure_utf8(std::move(pending_8bit));
      pending_8bit.clear();
    }
  };
  struct Group {
    bool skip = false;
    int uc = 1; // characters to skip after \uN
  };
  std::vector<Group> stack{Group{}};
  int skip_chars = 0; // fallback characters after \uN still to drop
  std::size_t i = 0;
  while (i < rtf.size()) {
    char c = rtf[i];
    if (c == '{') {
      flush_8bit();
      stack.push_back(stack.back());
      ++i;
      if (stack.size() > 512) {
        break; // nonsense nesting
      }
      continue;
    }
    if (c == '}') {
      flush_8bit();
      if (stack.size() > 1) {
        stack.pop_back();
      }
      ++i;
      continue;
    }
    if (c == '\\') {
      ++i;
      if (i >= rtf.size()) {
        break;
      }
      char d = rtf[i];
      if (d == '\\' || d == '{' || d == '}') {
        flush_8bit();
        if (!stack.back().skip) {
          out += d;
        }
        ++i;
        continue;
      }
      if (d == '*') {
        stack.back().skip = true;
        ++i;
        continue;
      }
      if (d == '\'') {
        if (i + 2 < rtf.size()) {
          auto hex = std::string(rtf.substr(i + 1, 2));
          char *end = nullptr;
          auto value = std::strtoul(hex.c_str(), &end, 16);
          i += 3;
          if (skip_chars > 0) {
            --skip_chars;
            continue;
          }
          if (!stack.back().skip && end != nullptr && *end == '\0') {
            pending_8bit += static_cast<char>(value);
          }
          continue;
        }
        break;
      }
      if (g_ascii_isalpha(d) == FALSE) {
        // control symbol: \~ non-breaking space, \- optional hyphen, \_ hyphen, others dropped
        flush_8bit();
        if (!stack.back().skip) {
          if (d == '~') {
            out += ' ';
          } else if (d == '_') {
            out += '-';
          } else if (d == '\n' || d == '\r') {
            out += '\n';
          }
        }
        ++i;
        continue;
      }
      std::size_t start = i;
      while (i < rtf.size() && g_ascii_isalpha(rtf[i]) != FALSE) {
        ++i;
      }
      std::string word(rtf.substr(start, i - start));
      bool has_param = false;
      long param = 0;
      std::size_t pstart = i;
      if (i < rtf.size() && (rtf[i] == '-' || g_ascii_isdigit(rtf[i]) != FALSE)) {
        ++i;
        while (i < rtf.size() && g_ascii_isdigit(rtf[i]) != FALSE) {
          ++i;
        }
        auto digits = std::string(rtf.substr(pstart, i - pstart));
        param = std::strtol(digits.c_str(), nullptr, 10);
        has_param = true;
      }
      if (i < rtf.size() && rtf[i] == ' ') {
        ++i; // the delimiter space belongs to the control word
      }
      flush_8bit();
      static const std::set<std::string, std::less<>> k_destinations{
          "fonttbl", "colortbl", "stylesheet", "info", "pict", "object", "header", "footer",
          "headerl", "headerr", "footerl", "footerr", "listtable", "listoverridetable",
          "rsidtbl", "generator", "themedata", "colorschememapping", "datastore", "latentstyles",
          "xmlnstbl", "mmathPr", "fldinst", "bkmkstart", "bkmkend", "filetbl", "revtbl"};
      if (k_destinations.contains(word)) {
        stack.back().skip = true;
        continue;
      }
      if (word == "uc" && has_param) {
        stack.back().uc = static_cast<int>(std::clamp(param, 0L, 10L));
        continue;
      }
      if (word == "u" && has_param) {
        if (!stack.back().skip) {
          long cp = param < 0 ? param + 65536 : param;
          append_utf8(out, static_cast<std::uint32_t>(cp));
        }
        skip_chars = stack.back().uc;
        continue;
      }
      if (stack.back().skip) {
        continue;
      }
      if (word == "par" || word == "line" || word == "row" || word == "sect" || word == "page") {
        out += '\n';
      } else if (word == "tab" || word == "cell") {
        out += '\t';
      } else if (word == "emdash" || word == "endash") {
        out += '-';
      } else if (word == "lquote" || word == "rquote") {
        out += '\'';
      } else if (word == "ldblquote" || word == "rdblquote") {
        out += '"';
      } else if (word == "bullet") {
        out += '*';
      }
      continue;
    }
    if (c == '\r' || c == '\n') {
      ++i;
      continue;
    }
    if (skip_chars > 0) {
      --skip_chars;
      ++i;
      continue;
    }
    if (!stack.back().skip) {
      pending_8bit += c;
    }
    ++i;
  }
  flush_8bit();
  return out;
}

} // namespace maildsar::connectors::pst
