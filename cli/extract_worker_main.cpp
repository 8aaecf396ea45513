// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar-extract-worker: the task extract-text (connectors/attachment_worker.cpp, extract/),
// long-lived (`--serve`, isolate::Worker), one per parse thread of the program, under the limits
// its parent sets per request (connectors/isolate.hpp). Not for direct use. The only program
// that maps poppler, libzip, libxml2 and libytnef.
#include "connectors/attachment_text.hpp"
#include "connectors/isolate.hpp"
#include "connectors/mime/mime_parser.hpp"

int main(int argc, char **argv) {
  maildsar::connectors::mime::MimeLibrary mime; // messages inside archives are MIME-decoded
  namespace c = maildsar::connectors;
  return c::isolate::worker_main(argc, argv, {{"extract-text", c::serve_extract_text}});
}
