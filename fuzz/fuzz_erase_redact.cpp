// SPDX-License-Identifier: GPL-3.0-or-later
// Erasure by redaction (erasure/message_redaction.hpp): any bytes as a stored message — a
// Maildir file, an mbox entry with its "From " line, a gzip quarantine file — with Alice Smith
// masked by keyed hashes as `erase` does. It must never crash, hang or grow without bound; and
// what it returns must be usable as the store's bytes: an mbox entry that still splits as
// exactly one message starting with the same "From " line, a gzip file that decompresses, and
// the same input always giving the same bytes (a resumed erase relies on it).
#include "connectors/item.hpp"
#include "connectors/mbox.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "connectors/quarantine.hpp"
#include "core/secret.hpp"
#include "erasure/message_redaction.hpp"
#include "fuzz/fuzz_support.hpp"
#include "indexer/identity.hpp"

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace erasure = maildsar::erasure;
namespace connectors = maildsar::connectors;
using maildsar::fuzz::as_view;
using maildsar::fuzz::require;

namespace {

const std::string k_key = "fuzz-key-0123456789abcdef0123456";

std::vector<erasure::KeyedIdentifier> alice() {
  return {{"email", maildsar::core::keyed_hash(k_key, "email", "alice.smith@example.com")},
          {"name", maildsar::core::keyed_hash(k_key, "name", "alice smith")},
          {"phone", maildsar::core::keyed_hash(k_key, "phone", "+442079460123")}};
}

/** The messages split_mbox finds in `bytes` (through a memfd: it reads a descriptor). */
std::vector<std::pair<std::uint64_t, std::uint64_t>> split(const std::string &bytes) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  std::FILE *f = std::tmpfile();
  if (f == nullptr) {
    return out;
  }
  if (std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fflush(f) == 0) {
    (void)connectors::split_mbox(
        fileno(f), "fuzz.mbox", 0, bytes.size(),
        [&](const connectors::MboxMessage &m) { out.emplace_back(m.offset, m.length); },
        [](connectors::ScanError &&) {});
  }
  std::fclose(f);
  return out;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int * /*argc*/, char *** /*argv*/) {
  static connectors::mime::MimeLibrary library;
  (void)maildsar::index::Normalizer::load_phone_module();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view bytes = as_view(data, size);
  static const maildsar::index::Normalizer normalizer{maildsar::index::NormalizeOptions{{"+"}, "GB"}};
  erasure::KeyedMasks masks(k_key, alice());
  connectors::Locator file;
  file.store = connectors::StoreKind::maildir;
  if (auto r = erasure::redact_stored_item(file, bytes, masks, normalizer)) {
    auto again = erasure::redact_stored_item(file, bytes, masks, normalizer);
    require(again && again->stored == r->stored, "the same message gives the same redaction");
    require(r->report.changed() || r->stored == bytes, "an unchanged message is returned as it was");
  }
  // As an mbox entry: a "From " line, the message mboxrd-quoted as the store holds it.
  std::string entry = "From bob@example.com Mon Oct  2 09:00:00 2023\n" + connectors::quote_mboxrd(bytes);
  if (!entry.ends_with('\n')) {
    entry += '\n';
  }
  entry += '\n';
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> before = split(entry);
  if (before.size() == 1 && before.front().second == entry.size()) {
    connectors::Locator range;
    range.store = connectors::StoreKind::mbox;
    range.offset = 0;
    range.length = entry.size();
    if (auto r = erasure::redact_stored_item(range, entry, masks, normalizer); r && r->report.changed()) {
      const std::vector<std::pair<std::uint64_t, std::uint64_t>> after = split(r->stored);
      require(after.size() == 1 && after.front().second == r->stored.size(),
              "a redacted mbox entry is still exactly one message");
      require(r->stored.starts_with("From bob@example.com Mon Oct  2 09:00:00 2023\n"), "the From line stays");
    }
  }
  // As a gzip quarantine file.
  if (size < 16384) {
    if (auto packed = connectors::gzip_compress(bytes)) {
      connectors::Locator gz;
      gz.store = connectors::StoreKind::quarantine;
      gz.path = "/q/spam-x.gz";
      if (auto r = erasure::redact_stored_item(gz, *packed, masks, normalizer); r && r->report.changed()) {
        require(static_cast<bool>(connectors::gunzip(r->stored)), "a redacted gzip file decompresses");
      }
    }
  }
  return 0;
}
