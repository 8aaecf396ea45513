// SPDX-License-Identifier: GPL-3.0-or-later
// PLACEHOLDER: replaced by the GMime decoder.
#include "connectors/mime/mime_parser.hpp"

#include <gmime/gmime.h>

namespace maildsar::connectors::mime {

MimeLibrary::MimeLibrary() { g_mime_init(); }
MimeLibrary::~MimeLibrary() { g_mime_shutdown(); }

core::Status decode_message(std::string_view, Item &) {
  return core::fail(core::ErrorCode::internal, "decoder not built yet");
}

} // namespace maildsar::connectors::mime
