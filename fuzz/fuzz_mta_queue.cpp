// SPDX-License-Identifier: GPL-3.0-or-later
// The MTA queue readers (connectors/mta_queue.cpp, connectors/queue/): Postfix queue files and
// Exim spool messages, through the connector (listing, bounded read, parse, MIME decoding of the
// content). The first byte picks the format, the queue folder and the content bound; the rest
// is the Postfix queue file, or the Exim -H file and -D file split at the first "\n--data--\n".
#include "connectors/connector.hpp"
#include "connectors/limits.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "connectors/mta_queue.hpp"
#include "connectors/queue/queue_file.hpp"
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

constexpr std::string_view k_exim_id = "1xZ7OB-0002Tj-30";
constexpr std::array<std::string_view, 4> k_postfix_folders{"deferred/A", "hold", "active", "incoming"};
constexpr std::array<std::uint64_t, 2> k_bounds{64, 1U << 20};

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
  const bool exim = (data[0] & 1U) != 0;
  const std::uint64_t bound = k_bounds[(data[0] >> 1U) & 1U];
  std::string_view bytes = maildsar::fuzz::as_view(data + 1, size - 1);

  // The parsers on their own: the content never exceeds its bound.
  if (exim) {
    constexpr std::string_view k_split = "\n--data--\n";
    std::size_t at = bytes.find(k_split);
    std::string_view header = bytes.substr(0, at);
    std::string_view body = at == std::string_view::npos ? std::string_view() : bytes.substr(at + k_split.size());
    auto parsed = conn::queue::parse_exim_spool(k_exim_id, header, body, bound, false);
    require(!parsed || parsed->content.size() <= bound, "exim content within its bound");
    scratch.clear();
    (void)scratch.write("input/" + std::string(k_exim_id) + "-H", header);
    (void)scratch.write("input/" + std::string(k_exim_id) + "-D", body);
  } else {
    auto parsed = conn::queue::parse_postfix_queue_file(bytes, bound, false);
    require(!parsed || parsed->content.size() <= bound, "postfix content within its bound");
    auto cut = conn::queue::parse_postfix_queue_file(bytes, bound, true);
    require(!cut || cut->content.size() <= bound, "postfix content of a cut file within its bound");
    scratch.clear();
    (void)scratch.write(std::string(k_postfix_folders[(data[0] >> 2U) % k_postfix_folders.size()]) + "/A1B2C3D4E5",
                        bytes);
  }

  // The connector over the scratch queue.
  maildsar::core::SourceConfig source;
  source.name = "queue";
  source.type = exim ? "exim-spool" : "postfix-queue";
  source.path = scratch.path();
  source.root = scratch.path();
  auto connector = conn::make_connector(source);
  require(connector.has_value(), "the MTA queue types are known");
  conn::ItemCollector sink;
  auto files = (*connector)->list_files(sink);
  if (files) {
    for (const conn::FileEntry &file : *files) {
      (void)(*connector)->scan(file, 0, sink);
    }
  }
  for (const conn::Item &item : sink.items) {
    require(item.sha256.size() == 64, "every queued message is hashed");
    require(!item.locator.queue_id.empty(), "every queued message carries its queue id");
  }
  return 0;
}
