// SPDX-License-Identifier: GPL-3.0-or-later
// Redaction inside messages (redaction/message.hpp): any bytes as a message, redacted for Alice
// Smith (listed) and for everyone but her (numbered people). It must never crash, hang or grow
// without bound, and whatever it returns must hold none of what it masked (redact_message checks
// that itself, as an error; the harness requires that a result it returns decodes again).
#include "connectors/item.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "fuzz/fuzz_support.hpp"
#include "indexer/identity.hpp"
#include "redaction/message.hpp"

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

namespace mime = maildsar::connectors::mime;
namespace redaction = maildsar::redaction;
using maildsar::fuzz::as_view;
using maildsar::fuzz::require;

extern "C" int LLVMFuzzerInitialize(int * /*argc*/, char *** /*argv*/) {
  static mime::MimeLibrary library;
  (void)maildsar::index::Normalizer::load_phone_module();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view bytes = as_view(data, size);
  static const maildsar::index::Normalizer normalizer{maildsar::index::NormalizeOptions{{"+"}, "GB"}};
  redaction::MessageOptions options;
  options.check_attachments = false; // no worker process per input; the raw-bytes check still runs
  {
    redaction::ListedMasks masks(std::set<std::pair<std::string, std::string>>{
        {"email", "alice.smith@example.com"}, {"name", "alice smith"}, {"phone", "+442079460123"}});
    if (auto r = redaction::redact_message(bytes, masks, normalizer, options)) {
      maildsar::connectors::Item item;
      require(static_cast<bool>(mime::decode_message(r->bytes, item)) || !r->report.changed(),
              "a redacted message decodes again");
      require(r->report.changed() || r->bytes == bytes, "an unchanged message is returned as it was");
    }
  }
  {
    redaction::PersonLabels people(
        std::set<std::pair<std::string, std::string>>{{"email", "alice.smith@example.com"}});
    (void)redaction::redact_message(bytes, people, normalizer, options);
  }
  return 0;
}
