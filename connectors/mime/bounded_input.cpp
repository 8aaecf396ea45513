// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/mime/bounded_input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

namespace maildsar::connectors::mime {

namespace {

constexpr std::size_t k_max_boundaries = 256; // distinct boundary strings remembered
constexpr std::uint64_t k_max_fields = 10000;  // header fields of one header block

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::size_t ifind(std::string_view haystack, std::string_view needle) {
  if (haystack.size() < needle.size()) {
    return std::string_view::npos;
  }
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    bool same = true;
    for (std::size_t j = 0; j < needle.size() && same; ++j) {
      same = lower(haystack[i + j]) == needle[j];
    }
    if (same) {
      return i;
    }
  }
  return std::string_view::npos;
}

/** The value of a `boundary=` parameter in a header line ("" if none). */
std::string_view boundary_in(std::string_view line) {
  const std::size_t at = ifind(line, "boundary=");
  if (at == std::string_view::npos) {
    return {};
  }
  std::string_view v = line.substr(at + 9);
  if (!v.empty() && v.front() == '"') {
    v.remove_prefix(1);
    return v.substr(0, v.find('"'));
  }
  return v.substr(0, std::min(v.find_first_of("; \t\r\n"), v.size()));
}

/** Copies `input` lazily: nothing until the first change, then everything kept. */
class Writer {
public:
  Writer(std::string_view input, std::string &storage) : m_in(input), m_out(storage) {}
  void keep(std::size_t begin, std::size_t end) {
    if (m_copying) {
      m_out.append(m_in.substr(begin, end - begin));
    }
  }
  /** From here on the output differs from the input: copy what came before `at`. */
  void change(std::size_t at) {
    if (!m_copying) {
      m_out.assign(m_in.substr(0, at));
      m_copying = true;
    }
  }
  void add(std::string_view text) { m_out.append(text); }
  [[nodiscard]] std::string_view result() const { return m_copying ? std::string_view(m_out) : m_in; }

private:
  std::string_view m_in;
  std::string &m_out;
  bool m_copying = false;
};

struct Cuts {
  std::uint64_t n = 0;
  std::size_t first = 0;
  void add(std::size_t at) {
    if (n++ == 0) {
      first = at;
    }
  }
};

} // namespace

std::string_view bound_input(std::string_view input, const ItemLimits &limits, std::string &storage,
                             std::vector<std::string> &notes) {
  const std::size_t max_line = static_cast<std::size_t>(limits.max_header_bytes);
  if (input.size() > limits.max_item_bytes) {
    notes.push_back(fmt::format("item cut at limits.max_item_mib: {} of {} bytes decoded",
                                limits.max_item_bytes, input.size()));
    input = input.substr(0, static_cast<std::size_t>(limits.max_item_bytes));
  }
  Writer out(input, storage);
  std::vector<std::string> boundaries;
  bool in_header = true;
  std::size_t field_bytes = 0;
  bool dropping = false;
  std::uint64_t parts = 0;
  Cuts long_lines;
  Cuts long_fields;
  Cuts many_fields;
  std::uint64_t fields = 0; // in the current header block
  std::size_t pos = 0;
  while (pos < input.size()) {
    const std::size_t nl = input.find('\n', pos);
    const std::size_t end = nl == std::string_view::npos ? input.size() : nl + 1;
    std::string_view line = input.substr(pos, end - pos);
    std::string_view text = line;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
      text.remove_suffix(1);
    }
    if (in_header) {
      if (text.empty()) {
        in_header = false;
        out.keep(pos, end);
        pos = end;
        continue;
      }
      const bool continuation = text.front() == ' ' || text.front() == '\t';
      if (!continuation) {
        field_bytes = 0;
        dropping = false;
        if (++fields > k_max_fields) {
          many_fields.add(pos);
          dropping = true; // this field and its folded lines
          out.change(pos);
          pos = end;
          continue;
        }
      }
      field_bytes += text.size();
      if (continuation && (dropping || field_bytes > max_line)) {
        if (!dropping) {
          long_fields.add(pos);
        }
        dropping = true;
        out.change(pos);
        pos = end; // the rest of this field is dropped
        continue;
      }
      if (std::string_view b = boundary_in(text.substr(0, std::min(text.size(), max_line)));
          !b.empty() && boundaries.size() < k_max_boundaries &&
          std::find(boundaries.begin(), boundaries.end(), b) == boundaries.end()) {
        boundaries.emplace_back(b);
      }
    } else if (text.starts_with("--")) {
      const std::string_view rest = text.substr(2);
      const bool boundary = std::any_of(boundaries.begin(), boundaries.end(), [&](const std::string &b) {
        return rest.starts_with(b);
      });
      if (boundary) {
        const bool closing = std::any_of(boundaries.begin(), boundaries.end(), [&](const std::string &b) {
          return rest.starts_with(b) && rest.substr(b.size()).starts_with("--");
        });
        if (!closing) {
          if (++parts > limits.max_mime_parts) {
            notes.push_back(fmt::format("MIME parts beyond limits.max_mime_parts ({}) not decoded "
                                        "(message cut at byte {} of {})",
                                        limits.max_mime_parts, pos, input.size()));
            out.change(pos);
            break;
          }
          in_header = true; // the part's own header block follows
          fields = 0;
          field_bytes = 0;
          dropping = false;
        }
      }
    }
    if (text.size() > max_line) {
      long_lines.add(pos);
      out.change(pos);
      out.add(text.substr(0, max_line));
      out.add(line.substr(text.size())); // its line ending
      pos = end;
      continue;
    }
    out.keep(pos, end);
    pos = end;
  }
  if (long_lines.n > 0) {
    notes.push_back(fmt::format("{} line(s) cut at limits.max_header_kib ({} bytes), the first at byte {}",
                                long_lines.n, max_line, long_lines.first));
  }
  if (long_fields.n > 0) {
    notes.push_back(fmt::format("{} header field(s) cut at limits.max_header_kib ({} bytes), the first at byte {}",
                                long_fields.n, max_line, long_fields.first));
  }
  if (many_fields.n > 0) {
    notes.push_back(fmt::format("{} header field(s) beyond {} in one header block not decoded, the first at byte {}",
                                many_fields.n, k_max_fields, many_fields.first));
  }
  return out.result();
}

} // namespace maildsar::connectors::mime
