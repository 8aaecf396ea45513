// SPDX-License-Identifier: GPL-3.0-or-later
// The list of log formats. A new format: one file defining its SyslogProgram or FileFormat, and
// one line below. The order of the syslog programs is the dispatch order: a line goes to the
// first one that claims it.
#include "connectors/maillog/format.hpp"

#include <array>

namespace maildsar::connectors::maillog {

const SyslogProgram &postfix_program();  // postfix.cpp
const SyslogProgram &exim_program();     // exim.cpp
const SyslogProgram &sendmail_program(); // sendmail.cpp
const SyslogProgram &dovecot_program();  // dovecot.cpp
const FileFormat &exchange_format();     // exchange.cpp

std::span<const SyslogProgram *const> syslog_programs() {
  static const std::array<const SyslogProgram *, 4> k_programs{
      &postfix_program(),
      &exim_program(), // before dovecot: exim's native timestamp lines have no tag
      &sendmail_program(),
      &dovecot_program(),
  };
  return k_programs;
}

std::span<const FileFormat *const> file_formats() {
  static const std::array<const FileFormat *, 1> k_formats{
      &exchange_format(),
  };
  return k_formats;
}

std::optional<SourceFormat> SourceFormat::from_name(std::string_view name) {
  SourceFormat f;
  if (name == "syslog") {
    f.m_name = "syslog";
    return f;
  }
  if (name == "auto" || name.empty()) {
    f.m_name = "syslog";
    f.m_auto = true;
    return f;
  }
  for (const SyslogProgram *p : syslog_programs()) {
    if (p->selectable && p->name == name) {
      f.m_name = p->name;
      f.m_program = p;
      return f;
    }
  }
  for (const FileFormat *ff : file_formats()) {
    if (ff->name == name) {
      f.m_name = ff->name;
      f.m_file = ff;
      return f;
    }
  }
  return std::nullopt;
}

std::string SourceFormat::names() {
  std::string out;
  auto add = [&out](std::string_view n) {
    out += n;
    out += ", ";
  };
  for (const SyslogProgram *p : syslog_programs()) {
    if (p->selectable) {
      add(p->name);
    }
  }
  for (const FileFormat *ff : file_formats()) {
    add(ff->name);
  }
  return out + "syslog and auto";
}

std::unique_ptr<FileParser> SourceFormat::open(std::int64_t mtime) const {
  if (m_file != nullptr) {
    return m_file->open();
  }
  return open_syslog(mtime, m_program != nullptr && m_program->continuation_lines);
}

bool SourceFormat::keyed_lines() const {
  return m_file == nullptr && !m_auto && (m_program == nullptr || !m_program->continuation_lines);
}

const FileFormat *SourceFormat::recognise(std::string_view first_line) const {
  if (!m_auto) {
    return nullptr;
  }
  for (const FileFormat *ff : file_formats()) {
    if (ff->recognises(first_line)) {
      return ff;
    }
  }
  return nullptr;
}

} // namespace maildsar::connectors::maillog
