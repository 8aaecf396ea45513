// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar-worker: runs one PST task on an untrusted file in its own process, under the limits
// its parent set, and streams the result back on fd 3 (connectors/isolate.hpp). Not for direct
// use. Attachment text runs in maildsar-extract-worker (extract_worker_main.cpp), PST attachments
// included (their bytes go to the parent, which hands them to that worker): this program
// does not reference extract/'s readers, so --as-needed keeps poppler, libzip, libxml2 and
// libytnef out of every PST worker's start.
#include "connectors/isolate.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "connectors/pst_worker.hpp"

int main(int argc, char **argv) {
  // GMime stays initialised: pst.cpp links the MIME parser (an in-process scan decodes attached
  // messages itself; the pst-scan task sends them to the parent, which decodes them).
  maildsar::connectors::mime::MimeLibrary mime;
  namespace c = maildsar::connectors;
  return c::isolate::worker_main(argc, argv, {{"pst-scan", c::serve_pst_scan}, {"pst-render", c::serve_pst_render}});
}
