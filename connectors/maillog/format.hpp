// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// The interface between the maillog connector and the log formats it reads.
//
// Two kinds of format:
//  * a SyslogProgram (postfix, exim, sendmail, dovecot): lines of a syslog-style file, recognised
//    by their prefix (program tag, or a native timestamp). The syslog reader (syslog.cpp) hands
//    each line to the first registered program that claims it, else to the generic parser
//    (generic.cpp: amavis, MailScanner, any key=value line);
//  * a FileFormat (exchange): a file with its own layout, read by its own FileParser.
// Each format lives in one file (postfix.cpp, exim.cpp, ...) and is listed once in registry.cpp:
// a new format is one new file plus one registration line there.
//
// A parser turns a line into a LineInfo (grouping key, "closes the transaction", identities) and
// reports it to a LineSink; the transaction assembler (scanner.hpp) implements the sink.

#include "connectors/maillog/prefix.hpp"
#include "connectors/maillog/transaction.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace maildsar::connectors::maillog {

/** What a format's parser makes of each line of a file. */
class LineSink {
public:
  LineSink() = default;
  LineSink(const LineSink &) = delete;
  LineSink &operator=(const LineSink &) = delete;

  /**
   * The line is an entry: it joins the transaction `info.key`, or, with an empty key, is an item
   * of its own when it names someone (info.found) or `personal` says it shows an address or IP.
   */
  virtual void entry(LineInfo &&info, std::optional<std::int64_t> date, bool personal) = 0;
  /** The line continues the entry before it (exim rejectlog header dumps); false if none. */
  virtual bool continuation(std::string_view line) = 0;
  /** A header line (Exchange "#Fields:"): ends a stand-alone entry before it. */
  virtual void header() = 0;
  /** The line is not understood in the file's format (counted, one ScanError per file). */
  virtual void unparsed() = 0;

protected:
  ~LineSink() = default;
};

/** Reads the lines of one file; holds the file's state (Exchange's #Fields: header). */
class FileParser {
public:
  FileParser() = default;
  FileParser(const FileParser &) = delete;
  FileParser &operator=(const FileParser &) = delete;
  virtual ~FileParser() = default;
  /** One line: not empty or blank, without its trailing CR and the file's BOM, not binary. */
  virtual void line(std::string_view line, LineSink &sink) = 0;
};

/** A program whose lines the syslog reader dispatches by their prefix. */
struct SyslogProgram {
  std::string_view name;   // the source `format` value (when selectable) and diagnostics
  bool selectable = false; // a source may be configured with `format: NAME`
  /** In a source of this format, a line without a prefix continues the entry before it. */
  bool continuation_lines = false;
  /** This program wrote the line (its tag, or a prefix only it writes). */
  bool (*claims)(const Prefix &pre) = nullptr;
  /** Parses a claimed line; `line` is the whole line, `pre` its split prefix. */
  void (*parse)(const Prefix &pre, std::string_view line, LineInfo &info) = nullptr;
};

/** A format with a file layout of its own. */
struct FileFormat {
  std::string_view name; // the source `format` value
  /** Under format "auto": the first line shows that the file has this format. */
  bool (*recognises)(std::string_view first_line) = nullptr;
  std::unique_ptr<FileParser> (*open)() = nullptr;
};

/** The registered formats, in dispatch order (registry.cpp). */
[[nodiscard]] std::span<const SyslogProgram *const> syslog_programs();
[[nodiscard]] std::span<const FileFormat *const> file_formats();
/** The parser of lines no registered program claims (generic.cpp). */
[[nodiscard]] const SyslogProgram &generic_program();

/**
 * The syslog reader: a line goes to the first program that claims it, else to the generic one.
 * `mtime` (Unix seconds) dates RFC 3164 lines; `continuation_lines` as SyslogProgram's.
 */
[[nodiscard]] std::unique_ptr<FileParser> open_syslog(std::int64_t mtime, bool continuation_lines);

/** A source's `format` setting, resolved. */
class SourceFormat {
public:
  /** "postfix", "exim", "sendmail", "exchange", "syslog", "auto" or "" (= auto). */
  [[nodiscard]] static std::optional<SourceFormat> from_name(std::string_view name);
  /** The names from_name() accepts, for an error hint: "postfix, ..., syslog and auto". */
  [[nodiscard]] static std::string names();

  /** The name in diagnostics: the format's, "syslog" for syslog and auto. */
  [[nodiscard]] std::string_view name() const { return m_name; }
  /** The parser of a file of this format. */
  [[nodiscard]] std::unique_ptr<FileParser> open(std::int64_t mtime) const;
  /** True when every line of a file of this format is parsed on its own and joins its transaction
      by a key written in the line (syslog programs without continuation lines, not auto): the
      lines of one transaction are then those that hold its key (RangeScanner). */
  [[nodiscard]] bool keyed_lines() const;
  /** Format auto: the file format that the file's first line shows, or nullptr. */
  [[nodiscard]] const FileFormat *recognise(std::string_view first_line) const;

private:
  std::string_view m_name;
  const SyslogProgram *m_program = nullptr; // set: a syslog-style source mainly of this program
  const FileFormat *m_file = nullptr;       // set: a file format
  bool m_auto = false;
};

} // namespace maildsar::connectors::maillog
