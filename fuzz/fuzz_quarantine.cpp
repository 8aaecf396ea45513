// SPDX-License-Identifier: GPL-3.0-or-later
// The quarantine readers (amavis, MailScanner, PMG, plain). The first byte picks the format and
// where in the layout the file lies (its name and folder decide what a reader makes of it); the
// rest is the file's content. A MailScanner `.header` + `.body` pair is split at the first
// "\n--body--\n".
#include "connectors/connector.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "connectors/quarantine.hpp"
#include "core/config.hpp"
#include "core/fs.hpp"
#include "fuzz/fuzz_support.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace conn = maildsar::connectors;
using maildsar::fuzz::require;

namespace {

struct Layout {
  std::string_view format;
  std::string_view folder; // FileEntry.folder, relative to the root ("" = the root)
  std::string_view name;
  bool pair = false; // MailScanner X.header + X.body
};

constexpr std::array<Layout, 10> k_layouts{{
    {"amavis", "", "spam-AbCdEf123456", false},
    {"amavis", "A", "virus-AbCdEf123456.gz", false},
    {"mailscanner", "20241201/4XyZ1h2kQ9z3", "message", false},
    {"mailscanner", "20241201/spam", "4XyZ1h2kQ9z3", false},
    {"mailscanner", "20241201/4XyZ1h2kQ9z3", "invoice.txt", false},
    {"mailscanner", "20241201/nonspam", "4XyZ1h2kQ9z3.header", true},
    {"pmg", "spam/3F", "5E6A1B2C0000000A", false},
    {"pmg", "cluster/1/virus/0A", "5E6A1B2C0000000B", false},
    {"plain", "", "held.eml", false},
    {"plain", "sub", "message.gz", false},
}};

} // namespace

extern "C" int LLVMFuzzerInitialize(int * /*argc*/, char *** /*argv*/) {
  static conn::mime::MimeLibrary library;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  static const maildsar::fuzz::ScratchDir scratch;
  if (size == 0) {
    return 0;
  }
  const Layout &layout = k_layouts[data[0] % k_layouts.size()];
  std::string_view bytes = maildsar::fuzz::as_view(data + 1, size - 1);

  maildsar::core::SourceConfig source;
  source.name = "quarantine";
  source.type = "quarantine";
  source.format = std::string(layout.format);
  source.path = scratch.path();
  source.root = scratch.path();
  auto connector = conn::make_quarantine_connector(source);
  require(connector.has_value(), "the quarantine formats are known");

  scratch.clear();
  std::string relative = layout.folder.empty()
                             ? std::string(layout.name)
                             : std::string(layout.folder) + "/" + std::string(layout.name);
  conn::FileEntry file;
  file.folder = std::string(layout.folder);
  if (layout.pair) {
    constexpr std::string_view k_split = "\n--body--\n";
    std::size_t at = bytes.find(k_split);
    std::string_view header = bytes.substr(0, at);
    std::string_view body =
        at == std::string_view::npos ? std::string_view() : bytes.substr(at + k_split.size());
    file.path = scratch.write(relative, header);
    std::string body_relative = relative.substr(0, relative.size() - 7) + ".body";
    (void)scratch.write(body_relative, body);
  } else {
    file.path = scratch.write(relative, bytes);
  }
  auto st = maildsar::core::lstat_file(file.path);
  require(st.has_value(), "lstat of the scratch file");
  file.stat = *st;

  conn::ItemCollector sink;
  (void)(*connector)->scan(file, 0, sink);
  for (const conn::Item &item : sink.items) {
    require(item.sha256.size() == 64, "every quarantine item is hashed");
  }
  return 0;
}
