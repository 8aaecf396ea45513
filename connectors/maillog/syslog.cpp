// SPDX-License-Identifier: GPL-3.0-or-later
// The syslog-style file reader: each line's prefix (time, host, program tag) is split off and
// the line goes to the first registered program that claims it, else to the generic parser.
// Lines without a prefix are counted as not understood; in a source whose format continues
// entries on such lines (exim's reject log) they join the entry before them.
#include "connectors/maillog/format.hpp"

#include <memory>
#include <string_view>
#include <utility>

namespace maildsar::connectors::maillog {

namespace {

const SyslogProgram &program_for(const Prefix &pre) {
  for (const SyslogProgram *p : syslog_programs()) {
    if (p->claims(pre)) {
      return *p;
    }
  }
  return generic_program();
}

class SyslogParser final : public FileParser {
public:
  SyslogParser(std::int64_t mtime, bool continuation_lines)
      : m_mtime(mtime), m_continuation_lines(continuation_lines) {}

  void line(std::string_view view, LineSink &sink) override {
    if (view.front() == '#') {
      return; // comments (fail2ban test files: "# failJSON: ...")
    }
    Prefix pre = parse_prefix(view, m_mtime);
    // only a line without a transaction key needs this test (it decides whether it is an item)
    auto personal = [view] { return mentions_identity(view); };
    LineInfo info;
    if (pre.kind == Prefix::Kind::none) {
      // Exim rejectlog entries continue with a header dump; any log may hold wrapped lines.
      if (m_continuation_lines && sink.continuation(view)) {
        return;
      }
      sink.unparsed();
      extract_common(view, info.found);
      sink.entry(std::move(info), std::nullopt, personal());
      return;
    }
    program_for(pre).parse(pre, view, info);
    const bool alone = info.key.empty();
    sink.entry(std::move(info), pre.date, alone && personal());
  }

private:
  std::int64_t m_mtime;
  bool m_continuation_lines;
};

} // namespace

std::unique_ptr<FileParser> open_syslog(std::int64_t mtime, bool continuation_lines) {
  return std::make_unique<SyslogParser>(mtime, continuation_lines);
}

} // namespace maildsar::connectors::maillog
