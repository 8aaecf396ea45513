// SPDX-License-Identifier: GPL-3.0-or-later
// MIME parsing and text extraction: decode_message (headers, addresses, body parts, HTML and
// RTF to text, attachment names and text bodies, attached messages) and received_fields.
#include "connectors/item.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "fuzz/fuzz_support.hpp"

#include <cstddef>
#include <cstdint>

namespace mime = maildsar::connectors::mime;
using maildsar::fuzz::as_view;
using maildsar::fuzz::require;

extern "C" int LLVMFuzzerInitialize(int * /*argc*/, char *** /*argv*/) {
  static mime::MimeLibrary library; // g_mime_init once, for the whole run
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view bytes = as_view(data, size);
  maildsar::connectors::Item item;
  (void)mime::decode_message(bytes, item);
  require(item.sha256.empty() && item.locator.path.empty(),
          "decode_message leaves locator and sha256 alone");
  if (auto received = mime::received_fields(bytes)) {
    for (const mime::ReceivedField &field : *received) {
      // Each byte that is not UTF-8 becomes U+FFFD (three bytes): at most three times the input.
      require(field.value.size() <= bytes.size() * 3 + 16, "a Received field is not made up");
    }
  }
  const std::string_view first_line = bytes.substr(0, bytes.find('\n'));
  (void)mime::is_header_field_line(first_line);
  return 0;
}
