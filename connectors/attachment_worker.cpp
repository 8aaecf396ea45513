// SPDX-License-Identifier: GPL-3.0-or-later
// The worker's task "extract-text": runs extract/ on each attachment of the request, in order,
// and answers one 'X' frame per attachment (see attachment_text.cpp for the wire format). Runs
// only in maildsar-extract-worker, under the limits the parent set.
#include "connectors/attachment_text.hpp"
#include "connectors/attachment_wire.hpp"
#include "connectors/mime/mime_parser.hpp"

#include <csignal>
#include <cstdlib>

#include <unistd.h>

namespace maildsar::connectors {

namespace {

/**
 * Test-only fault injection (docs/reliability.md): MAILDSAR_WORKER_TEST_FAULT=MODE:NAME makes the
 * extract-text worker misbehave on the attachment named NAME: spin (burn CPU), sleep (block),
 * crash (SIGSEGV) or bloat (allocate until the memory limit), so that every limit can be tested
 * without an input that makes poppler or libzip fail that way.
 */
void test_fault(const std::string &name) {
  const char *fault = std::getenv("MAILDSAR_WORKER_TEST_FAULT");
  if (fault == nullptr || name.empty()) {
    return;
  }
  const std::string_view spec(fault);
  const auto colon = spec.find(':');
  if (colon == std::string_view::npos || spec.substr(colon + 1) != name) {
    return;
  }
  const auto mode = spec.substr(0, colon);
  if (mode == "spin") {
    volatile std::uint64_t spins = 0;
    for (;;) {
      spins = spins + 1U;
    }
  }
  if (mode == "sleep") {
    for (;;) {
      pause();
    }
  }
  if (mode == "crash") {
    std::raise(SIGSEGV);
  }
  if (mode == "bloat") {
    std::vector<std::string> hog;
    for (;;) {
      hog.emplace_back(64U << 20, 'x');
    }
  }
}

/**
 * extract::MessageDecoder for messages inside archives and TNEF streams (.eml members of a zip):
 * the MIME parser of connectors/ gives their header addresses (with display names), subject and
 * text parts. Attachments inside such a message give their names only (this worker extracts no
 * attachments of its own: attachment text is off here), messages attached inside it are walked
 * within the MIME parser's own depth bound.
 */
core::Result<std::string> decode_embedded_message(std::string_view bytes, std::uint64_t max_bytes) {
  Item item;
  MAILDSAR_TRY(mime::decode_message(bytes, item));
  std::string out;
  auto add = [&](std::string_view text) {
    if (out.size() < max_bytes && !text.empty()) {
      out.append(text.substr(0, static_cast<std::size_t>(max_bytes - out.size())));
      out.push_back('\n');
    }
  };
  for (const RawAddress &a : item.addresses) {
    add(a.name.empty() ? a.addr : a.addr.empty() ? a.name : a.name + " <" + a.addr + ">");
  }
  add(item.subject);
  for (const RawText &t : item.texts) {
    add(t.text);
  }
  return out;
}

} // namespace

core::Status serve_extract_text(std::string_view request, isolate::Channel &channel) {
  extract::set_message_decoder(decode_embedded_message);
  isolate::Decoder in(request);
  MAILDSAR_TRY_ASSIGN(std::uint8_t type, in.u8());
  if (type != k_extract_frame_request) {
    return core::fail(core::ErrorCode::internal, "worker protocol error: not an extract-text request");
  }
  extract::Limits limits;
  MAILDSAR_TRY_ASSIGN(limits.max_text_bytes, in.u64());
  MAILDSAR_TRY_ASSIGN(limits.max_inflated_bytes, in.u64());
  MAILDSAR_TRY_ASSIGN(std::uint64_t depth, in.u64());
  MAILDSAR_TRY_ASSIGN(std::uint64_t pages, in.u64());
  limits.max_depth = static_cast<std::uint32_t>(std::min<std::uint64_t>(depth, 16));
  limits.max_pages = static_cast<std::uint32_t>(std::min<std::uint64_t>(pages, 1U << 20));
  MAILDSAR_TRY_ASSIGN(std::uint64_t count, in.u64());
  for (std::uint64_t i = 0; i < count; ++i) {
    MAILDSAR_TRY_ASSIGN(std::string name, in.str());
    MAILDSAR_TRY_ASSIGN(std::string mime_type, in.str());
    MAILDSAR_TRY_ASSIGN(std::string bytes, in.str());
    test_fault(name);
    auto result = extract::extract_any(bytes, mime_type, name, limits);
    isolate::Encoder answer(k_extract_frame_text);
    answer.u64(i);
    if (result) {
      answer.u8(1).str(result->text).u8(result->truncated ? 1 : 0).u64(result->warnings.size());
      for (const std::string &w : result->warnings) {
        answer.str(w);
      }
    } else {
      answer.u8(0).str(result.error().message).u8(0).u64(0);
    }
    MAILDSAR_TRY(channel.send(answer.take()));
  }
  MAILDSAR_TRY(in.finish());
  return channel.send(isolate::Encoder(isolate::k_frame_done).take());
}

} // namespace maildsar::connectors
