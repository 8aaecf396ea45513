// SPDX-License-Identifier: GPL-3.0-or-later
// RTF to plain text: groups, control words, \'hh (windows-1252) and \uN escapes; destinations
// that hold no text (font and colour tables, pictures, objects, "\*" destinations) are skipped.
// A small state machine over the bytes; it never fails, and its output is bounded.
#include "extract/extract.hpp"

#include "extract/text_sink.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

namespace maildsar::extract {

namespace {

void put_code_point(std::string &out, std::uint32_t cp) {
  if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
    cp = 0xFFFD;
  }
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

constexpr std::array<std::string_view, 20> k_skipped_destinations{
    "fonttbl",  "colortbl",   "stylesheet", "listtable", "listoverridetable", "pict",       "objdata",
    "themedata", "colorschememapping", "datastore", "latentstyles", "xmlnstbl", "rsidtbl", "generator",
    "filetbl",  "revtbl",     "fldinst",    "bkmkstart", "bkmkend",           "mmathPr"};

struct Group {
  bool skip = false;
  int uc = 1;
};

} // namespace

std::string rtf_to_text(std::string_view rtf, std::uint64_t max_bytes) {
  std::string out;
  std::vector<Group> stack{Group{}};
  int pending_skip = 0; // characters still to drop after a \uN
  std::size_t i = 0;
  const auto emit = [&](std::string_view s) {
    if (!stack.back().skip) {
      out.append(s);
    }
  };
  while (i < rtf.size() && out.size() < max_bytes) {
    const char c = rtf[i];
    if (c == '{') {
      if (stack.size() < 256) {
        stack.push_back(stack.back());
      }
      ++i;
      continue;
    }
    if (c == '}') {
      if (stack.size() > 1) {
        stack.pop_back();
      }
      ++i;
      continue;
    }
    if (c == '\r' || c == '\n') {
      ++i;
      continue;
    }
    if (c != '\\') {
      if (pending_skip > 0) {
        --pending_skip;
      } else {
        emit(std::string_view(&rtf[i], 1));
      }
      ++i;
      continue;
    }
    // A control symbol or word.
    if (i + 1 >= rtf.size()) {
      break;
    }
    const char next = rtf[i + 1];
    if (next == '\\' || next == '{' || next == '}') {
      if (pending_skip > 0) {
        --pending_skip;
      } else {
        emit(std::string_view(&rtf[i + 1], 1));
      }
      i += 2;
      continue;
    }
    if (next == '\'') {
      unsigned value = 0;
      bool ok = i + 3 < rtf.size() && std::isxdigit(static_cast<unsigned char>(rtf[i + 2])) != 0 &&
                std::isxdigit(static_cast<unsigned char>(rtf[i + 3])) != 0;
      if (ok) {
        value = static_cast<unsigned>(std::stoul(std::string(rtf.substr(i + 2, 2)), nullptr, 16));
      }
      i += ok ? 4 : 2;
      if (pending_skip > 0) {
        --pending_skip;
      } else if (ok) {
        const char byte = static_cast<char>(value);
        emit(detail::to_utf8(std::string_view(&byte, 1)));
      }
      continue;
    }
    if (next == '*') {
      stack.back().skip = true;
      i += 2;
      continue;
    }
    if (next == '~') {
      emit(" ");
      i += 2;
      continue;
    }
    if (next == '-' || next == '_' || next == ':' || next == '|') {
      i += 2;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(next)) == 0) {
      i += 2;
      continue;
    }
    std::size_t j = i + 1;
    while (j < rtf.size() && j - i < 33 && std::isalpha(static_cast<unsigned char>(rtf[j])) != 0) {
      ++j;
    }
    const std::string_view word = rtf.substr(i + 1, j - i - 1);
    bool has_param = false;
    long long param = 0;
    bool negative = false;
    if (j < rtf.size() && rtf[j] == '-') {
      negative = true;
      ++j;
    }
    while (j < rtf.size() && std::isdigit(static_cast<unsigned char>(rtf[j])) != 0) {
      if (param < 100'000'000) {
        param = param * 10 + (rtf[j] - '0');
      }
      has_param = true;
      ++j;
    }
    if (negative) {
      param = -param;
    }
    if (j < rtf.size() && rtf[j] == ' ') {
      ++j; // the delimiter space belongs to the control word
    }
    i = j;
    if (word == "bin" && has_param && param > 0) {
      i += std::min<std::size_t>(static_cast<std::size_t>(param), rtf.size() - i);
      continue;
    }
    if (std::find(k_skipped_destinations.begin(), k_skipped_destinations.end(), word) !=
        k_skipped_destinations.end()) {
      stack.back().skip = true;
      continue;
    }
    if (word == "par" || word == "line" || word == "sect" || word == "page" || word == "row") {
      emit("\n");
    } else if (word == "tab" || word == "cell") {
      emit(" ");
    } else if (word == "uc" && has_param) {
      stack.back().uc = static_cast<int>(std::clamp<long long>(param, 0, 10));
    } else if (word == "u" && has_param) {
      long long cp = param < 0 ? param + 65536 : param;
      if (!stack.back().skip) {
        put_code_point(out, static_cast<std::uint32_t>(std::clamp<long long>(cp, 0, 0x10FFFF)));
      }
      pending_skip = stack.back().uc;
    } else if (word == "emdash") {
      emit("\xE2\x80\x94");
    } else if (word == "endash") {
      emit("\xE2\x80\x93");
    } else if (word == "lquote" || word == "rquote") {
      emit("'");
    } else if (word == "ldblquote" || word == "rdblquote") {
      emit("\"");
    }
  }
  if (out.size() > max_bytes) {
    std::string cut;
    static_cast<void>(detail::append_bounded(cut, out, max_bytes));
    return cut;
  }
  return out;
}

} // namespace maildsar::extract
