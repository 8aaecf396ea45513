// SPDX-License-Identifier: GPL-3.0-or-later
// The backup-archive reader (connectors/archive.cpp): the connector's scan of the archive file
// (libarchive's tar — plain, gzip, bzip2, xz, zstd — and zip readers as the connector drives them), then the member classification, the mbox
// splitter on an mbox member and the MIME parser on messages. The input is the archive file.
// Every item found is read back by its locator (read_archive_item_bytes, as export and verify
// do), which must give exactly the bytes the scan hashed; then the archive is rewritten without the
// first item (rewrite_archive), after which that member must be gone. The bounds are narrowed so that a
// bomb costs milliseconds: it must be stopped and reported, not read.
#include "connectors/archive.hpp"
#include "connectors/connector.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "core/config.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "fuzz/fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace conn = maildsar::connectors;
using maildsar::fuzz::require;

extern "C" int LLVMFuzzerInitialize(int * /*argc*/, char *** /*argv*/) {
  static conn::mime::MimeLibrary library;
  conn::set_archive_limits({.max_member_bytes = 4ULL << 20,
                            .max_total_bytes = 48ULL << 20,
                            .max_ratio = 200,
                            .max_members = 2000,
                            .timeout_seconds = 5});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  static const maildsar::fuzz::ScratchDir scratch;
  const std::string path = scratch.write("backup.tar", maildsar::fuzz::as_view(data, size));
  // the file through the connector, as `index` reads it (the reader below reads it the same way)
  maildsar::core::SourceConfig source;
  source.name = "backups";
  source.type = "archive";
  source.path = path;
  auto connector = conn::make_archive_connector(source);
  require(connector.has_value(), "the archive connector is made");
  conn::FileEntry file;
  file.path = path;
  auto st = maildsar::core::lstat_file(path);
  require(st.has_value(), "lstat of the scratch file");
  file.stat = *st;
  conn::ItemCollector sink;
  require((*connector)->scan(file, 0, sink).has_value(), "an archive's problems are reported, not returned");
  for (const conn::ScanError &e : sink.errors) {
    require(e.path == path, "every problem names the archive");
  }
  for (const conn::Item &item : sink.items) {
    require(item.locator.store == conn::StoreKind::archive && !item.locator.member.empty(),
            "every item names its member");
    require(item.sha256.size() == 64, "every archive item is hashed");
    auto bytes = conn::read_archive_item_bytes(item.locator);
    if (!bytes) {
      std::fprintf(stderr, "read back of %s: %s\n", item.locator.key().c_str(), bytes.error().message.c_str());
    }
    require(bytes.has_value(), "an item found is read back");
    require(maildsar::core::sha256_hex(*bytes) == item.sha256, "read back as hashed");
  }
  // The rewrite ("rewrite": true) without the first item: it either leaves the file as it was
  // (an error, or nothing matched) or gives an archive in which that item is gone.
  if (!sink.items.empty()) {
    const conn::Item &first = sink.items.front();
    std::vector<conn::ArchiveCut> cuts{{first.locator.member, first.locator.offset, first.locator.length, first.sha256}};
    auto rewritten = conn::rewrite_archive(path, cuts, {});
    if (rewritten && rewritten->rewritten) {
      auto again = maildsar::core::lstat_file(path);
      require(again.has_value(), "the rewritten archive is there");
      file.stat = *again;
      conn::ItemCollector after;
      require((*connector)->scan(file, 0, after).has_value(), "the rewritten archive is scanned");
      for (const conn::Item &item : after.items) {
        require(!(item.locator.member == first.locator.member && item.sha256 == first.sha256 &&
                  first.locator.length == 0),
                "a removed member is gone");
      }
    }
  }
  return 0;
}
