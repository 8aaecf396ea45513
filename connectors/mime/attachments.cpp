// SPDX-License-Identifier: GPL-3.0-or-later
// Attachments of the MIME decoder whose text comes from the extraction worker: uuencoded files
// found in text parts, and the extraction of all that the part walk set aside.
#include "connectors/mime/mime_internal.hpp"

#include "extract/extract.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::connectors::mime::detail {

/**
 * Files uuencoded in a text part ("begin 644 payslip.pdf" ... "end", as old mailers and some
 * scanners send them): those of a format with text are set aside like attachments.
 */
void Decoder::set_aside_uuencoded(std::string_view text) {
  std::size_t pos = 0;
  int found = 0;
  while (found < 16 && (pos = text.find("begin ", pos)) != std::string_view::npos) {
    if (pos > 0 && text[pos - 1] != '\n') {
      pos += 6;
      continue;
    }
    const std::size_t eol = std::min(text.find('\n', pos), text.size());
    const std::string_view header = text.substr(pos + 6, eol - pos - 6);
    const std::size_t space = header.find(' ');
    if (space == std::string_view::npos || space < 3 || space > 4 ||
        header.substr(0, space).find_first_not_of("01234567") != std::string_view::npos) {
      pos = eol;
      continue;
    }
    const std::string name = valid_utf8(trim(header.substr(space + 1)));
    std::string bytes;
    std::size_t line_start = eol + 1;
    bool ended = false;
    while (line_start < text.size()) {
      std::size_t line_end = std::min(text.find('\n', line_start), text.size());
      std::string_view line = text.substr(line_start, line_end - line_start);
      if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
      }
      line_start = line_end + 1;
      if (line == "end") {
        ended = true;
        break;
      }
      if (line.empty()) {
        continue;
      }
      const auto count = static_cast<std::size_t>((line[0] - ' ') & 0x3F);
      std::string chunk;
      for (std::size_t i = 1; i < line.size(); i += 4) {
        std::array<unsigned, 4> v{};
        for (std::size_t k = 0; k < 4; ++k) {
          v[k] = i + k < line.size() ? static_cast<unsigned>((line[i + k] - ' ') & 0x3F) : 0U;
        }
        chunk.push_back(static_cast<char>((v[0] << 2) | (v[1] >> 4)));
        chunk.push_back(static_cast<char>(((v[1] & 0xFU) << 4) | (v[2] >> 2)));
        chunk.push_back(static_cast<char>(((v[2] & 0x3U) << 6) | v[3]));
      }
      chunk.resize(std::min(chunk.size(), count)); // the last group's padding
      bytes += chunk;
      if (bytes.size() > (64U << 20)) {
        break; // beyond any attachment extracted (limits.extract_max_attachment_mib)
      }
    }
    pos = line_start;
    ++found;
    if (!ended || bytes.empty()) {
      continue;
    }
    const extract::Format format = extract::detect(bytes, "application/octet-stream", name);
    if (format != extract::Format::none && format != extract::Format::text) {
      add_text(Role::attachment_name, name);
      m_attachments.push_back(Attachment{name, "application/octet-stream",
                                         std::to_string(m_leaf_parts) + " (uuencoded)", std::move(bytes)});
    }
  }
}

/** Extracts the text of the attachments the walk set aside (cache, then worker). */
void Decoder::finish() {
  if (m_attachments.empty()) {
    return;
  }
  std::vector<AttachmentText> texts = extract_attachments(m_attachments);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const Attachment &a = m_attachments[i];
    AttachmentText &t = texts[i];
    m_item.attachment_hashes.push_back(t.sha256);
    for (const std::string &w : t.warnings) {
      m_warnings.add(fmt_attachment(a) + ": " + w);
    }
    if (t.truncated) {
      // Never silent: the text past the cut was not indexed (docs/reliability.md).
      m_item.truncated.push_back(fmt_attachment(a) + ": text indexed in part" +
                                 (t.warnings.empty() ? std::string() : " (" + t.warnings.front() + ")"));
    }
    if (!t.problem.empty()) {
      m_item.problems.push_back(std::move(t.problem));
    }
    add_text(Role::attachment_body, valid_utf8(t.text), a.name.empty() ? "part " + a.part : a.name);
  }
  m_attachments.clear();
}

std::string Decoder::fmt_attachment(const Attachment &a) {
  return "attachment \"" + valid_utf8(a.name) + "\" (MIME part " + a.part + ")";
}

} // namespace maildsar::connectors::mime::detail
