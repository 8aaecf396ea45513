// SPDX-License-Identifier: GPL-3.0-or-later
// The PST tasks of maildsar-worker and their parent side (scan_pst_file, for_each_pst_rendering):
// libpst never runs in the calling process. See isolate.hpp for the process and the framing.
//
//   pst-scan    request: source, path, documents?, max attachment bytes, max item bytes
//               answer:  'A' attachment … 'I' item … / 'P' problem …, then 'D' with the
//                        PstScanStats counts; the 'A' frames before an 'I' frame are the
//                        attachments that item set aside (PstAttachment: the parent extracts
//                        their text, merge_pst_attachments)
//   pst-render  request: path, node ids
//               answer:  'R' node id, 0 + extension + bytes | 1 + error code + message …, then 'D'
#include "connectors/pst_worker.hpp"

#include "connectors/attachment_text.hpp"
#include "connectors/limits.hpp"
#include "connectors/pst.hpp"
#include "connectors/pst_export.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include <unistd.h>

namespace maildsar::connectors {

namespace {

std::mutex g_limits_mutex;
isolate::Limits g_limits{.cpu_seconds = 600, .memory_mib = 1024, .wall_seconds = 3600};

/**
 * Test-only fault injection (docs/reliability.md): MAILDSAR_WORKER_TEST_FAULT=spin:NAME makes
 * the pst-scan worker of the file named NAME burn CPU, sleep:NAME makes it block, so that the
 * CPU and wall-clock limits can be tested without a PST that makes libpst loop.
 */
void test_fault(const std::string &path) {
  const char *fault = std::getenv("MAILDSAR_WORKER_TEST_FAULT");
  if (fault == nullptr) {
    return;
  }
  std::string_view spec(fault);
  auto colon = spec.find(':');
  if (colon == std::string_view::npos ||
      std::filesystem::path(path).filename().string() != spec.substr(colon + 1)) {
    return;
  }
  auto mode = spec.substr(0, colon);
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
}

void encode_scan_error(isolate::Encoder &out, const ScanError &error) {
  out.str(error.path).str(error.position).str(error.cause);
}

core::Result<ScanError> decode_scan_error(isolate::Decoder &in) {
  ScanError error;
  MAILDSAR_TRY_ASSIGN(error.path, in.str());
  MAILDSAR_TRY_ASSIGN(error.position, in.str());
  MAILDSAR_TRY_ASSIGN(error.cause, in.str());
  MAILDSAR_TRY(in.finish());
  return error;
}

core::Result<Role> decode_role(isolate::Decoder &in) {
  MAILDSAR_TRY_ASSIGN(std::uint8_t role, in.u8());
  if (role >= k_role_count) {
    return core::fail(core::ErrorCode::internal, fmt::format("worker protocol error: role {} out of range", role));
  }
  return static_cast<Role>(role);
}

/** The worker's sink: every item and problem becomes a frame, sent at once. */
class FrameSink final : public ItemSink {
public:
  explicit FrameSink(isolate::Channel &channel) : m_channel(channel) {}

  void item(Item &&item) override {
    isolate::Encoder out(k_frame_item);
    encode_item(out, item);
    auto payload = out.take();
    if (payload.size() > k_pst_max_frame) {
      error(ScanError{item.locator.path, fmt::format("node {:#x}", item.locator.node_id),
                      fmt::format("item of {} bytes of text is too large to index; skipped", payload.size())});
      return;
    }
    send(payload);
  }

  void error(ScanError &&error) override {
    isolate::Encoder out(k_frame_problem);
    encode_scan_error(out, error);
    send(out.take());
  }

  /** A set-aside attachment, sent at once (the worker keeps no attachment bytes). */
  void attachment(PstAttachment &&attachment) {
    isolate::Encoder out(k_frame_attachment);
    encode_pst_attachment(out, attachment);
    auto payload = out.take();
    if (payload.size() > k_pst_max_frame) {
      // Only absurd names get here (the bytes are bounded below the frame size): no bytes, no name.
      attachment.bytes.clear();
      attachment.withheld = true;
      attachment.name.resize(std::min<std::size_t>(attachment.name.size(), 4096));
      attachment.mime_type.resize(std::min<std::size_t>(attachment.mime_type.size(), 4096));
      isolate::Encoder small(k_frame_attachment);
      encode_pst_attachment(small, attachment);
      payload = small.take();
    }
    send(payload);
  }

  [[nodiscard]] core::Status status() const { return m_status; }

private:
  void send(const std::string &payload) {
    if (m_status) {
      m_status = m_channel.send(payload);
    }
  }

  isolate::Channel &m_channel;
  core::Status m_status;
};

} // namespace

// ---------------------------------------------------------------------------------------------
// Items on the wire

void encode_item(isolate::Encoder &out, const Item &item) {
  const Locator &l = item.locator;
  out.str(l.source).u8(static_cast<std::uint8_t>(l.store)).str(l.path).str(l.folder);
  out.u64(l.offset).u64(l.length).u64(l.node_id).str(l.queue_id).u64(l.lines.size());
  for (auto line : l.lines) {
    out.u64(line);
  }
  out.str(item.sha256).str(item.message_id).u8(item.date ? 1 : 0).i64(item.date.value_or(0)).str(item.subject);
  out.u64(item.addresses.size());
  for (const auto &a : item.addresses) {
    out.u8(static_cast<std::uint8_t>(a.role)).str(a.name).str(a.addr).str(a.field);
  }
  out.u64(item.ips.size());
  for (const auto &ip : item.ips) {
    out.u8(static_cast<std::uint8_t>(ip.role)).str(ip.value);
  }
  out.u64(item.texts.size());
  for (const auto &t : item.texts) {
    out.u8(static_cast<std::uint8_t>(t.role)).str(t.text).str(t.field).u8(static_cast<std::uint8_t>(t.scan));
  }
  out.u64(item.warnings.size());
  for (const auto &w : item.warnings) {
    out.str(w);
  }
}

core::Result<Item> decode_item(isolate::Decoder &in) {
  // Each element takes at least one byte, so a lying count ends at the payload's end.
  Item item;
  Locator &l = item.locator;
  MAILDSAR_TRY_ASSIGN(l.source, in.str());
  MAILDSAR_TRY_ASSIGN(std::uint8_t store, in.u8());
  if (store > static_cast<std::uint8_t>(StoreKind::maillog)) {
    return core::fail(core::ErrorCode::internal, fmt::format("worker protocol error: store kind {} out of range", store));
  }
  l.store = static_cast<StoreKind>(store);
  MAILDSAR_TRY_ASSIGN(l.path, in.str());
  MAILDSAR_TRY_ASSIGN(l.folder, in.str());
  MAILDSAR_TRY_ASSIGN(l.offset, in.u64());
  MAILDSAR_TRY_ASSIGN(l.length, in.u64());
  MAILDSAR_TRY_ASSIGN(l.node_id, in.u64());
  MAILDSAR_TRY_ASSIGN(l.queue_id, in.str());
  MAILDSAR_TRY_ASSIGN(std::uint64_t lines, in.u64());
  for (std::uint64_t i = 0; i < lines; ++i) {
    MAILDSAR_TRY_ASSIGN(std::uint64_t line, in.u64());
    l.lines.push_back(line);
  }
  MAILDSAR_TRY_ASSIGN(item.sha256, in.str());
  MAILDSAR_TRY_ASSIGN(item.message_id, in.str());
  MAILDSAR_TRY_ASSIGN(std::uint8_t has_date, in.u8());
  MAILDSAR_TRY_ASSIGN(std::int64_t date, in.i64());
  if (has_date > 1) {
    return core::fail(core::ErrorCode::internal, "worker protocol error: bad date flag");
  }
  if (has_date == 1) {
    item.date = date;
  }
  MAILDSAR_TRY_ASSIGN(item.subject, in.str());
  MAILDSAR_TRY_ASSIGN(std::uint64_t addresses, in.u64());
  for (std::uint64_t i = 0; i < addresses; ++i) {
    RawAddress a;
    MAILDSAR_TRY_ASSIGN(a.role, decode_role(in));
    MAILDSAR_TRY_ASSIGN(a.name, in.str());
    MAILDSAR_TRY_ASSIGN(a.addr, in.str());
    MAILDSAR_TRY_ASSIGN(a.field, in.str());
    item.addresses.push_back(std::move(a));
  }
  MAILDSAR_TRY_ASSIGN(std::uint64_t ips, in.u64());
  for (std::uint64_t i = 0; i < ips; ++i) {
    RawValue v;
    MAILDSAR_TRY_ASSIGN(v.role, decode_role(in));
    MAILDSAR_TRY_ASSIGN(v.value, in.str());
    item.ips.push_back(std::move(v));
  }
  MAILDSAR_TRY_ASSIGN(std::uint64_t texts, in.u64());
  for (std::uint64_t i = 0; i < texts; ++i) {
    RawText t;
    MAILDSAR_TRY_ASSIGN(t.role, decode_role(in));
    MAILDSAR_TRY_ASSIGN(t.text, in.str());
    MAILDSAR_TRY_ASSIGN(t.field, in.str());
    MAILDSAR_TRY_ASSIGN(std::uint8_t scan, in.u8());
    if (scan > static_cast<std::uint8_t>(TextScan::addresses)) {
      return core::fail(core::ErrorCode::internal, fmt::format("worker protocol error: text scan {} out of range", scan));
    }
    t.scan = static_cast<TextScan>(scan);
    item.texts.push_back(std::move(t));
  }
  MAILDSAR_TRY_ASSIGN(std::uint64_t warnings, in.u64());
  for (std::uint64_t i = 0; i < warnings; ++i) {
    MAILDSAR_TRY_ASSIGN(std::string w, in.str());
    item.warnings.push_back(std::move(w));
  }
  MAILDSAR_TRY(in.finish());
  return item;
}

void encode_pst_attachment(isolate::Encoder &out, const PstAttachment &a) {
  out.u64(a.node_id).str(a.position).str(a.name).str(a.mime_type).u64(a.size);
  out.u8(static_cast<std::uint8_t>((a.message ? 1U : 0U) | (a.withheld ? 2U : 0U))).str(a.bytes);
}

core::Result<PstAttachment> decode_pst_attachment(isolate::Decoder &in) {
  PstAttachment a;
  MAILDSAR_TRY_ASSIGN(a.node_id, in.u64());
  MAILDSAR_TRY_ASSIGN(a.position, in.str());
  MAILDSAR_TRY_ASSIGN(a.name, in.str());
  MAILDSAR_TRY_ASSIGN(a.mime_type, in.str());
  MAILDSAR_TRY_ASSIGN(a.size, in.u64());
  MAILDSAR_TRY_ASSIGN(std::uint8_t flags, in.u8());
  MAILDSAR_TRY_ASSIGN(a.bytes, in.str());
  MAILDSAR_TRY(in.finish());
  if (flags > 3 || ((flags & 2U) != 0) != a.bytes.empty()) {
    return core::fail(core::ErrorCode::internal, "worker protocol error: a malformed attachment frame");
  }
  a.message = (flags & 1U) != 0;
  a.withheld = (flags & 2U) != 0;
  return a;
}

// ---------------------------------------------------------------------------------------------
// Limits

void set_pst_limits(const isolate::Limits &limits) {
  std::lock_guard lock(g_limits_mutex);
  g_limits = limits;
}

isolate::Limits pst_limits() {
  std::lock_guard lock(g_limits_mutex);
  return g_limits;
}

// ---------------------------------------------------------------------------------------------
// pst-scan

core::Result<PstScanStats> scan_pst_file(const std::string &source, const std::string &path, ItemSink &sink) {
  // Documents are set aside only when their text is extracted here; attached messages always.
  const AttachmentTextSettings text = attachment_text_settings();
  const std::uint64_t max_item = item_limits().max_item_bytes;
  isolate::Task task;
  task.name = "pst-scan";
  task.subject = "pst " + path;
  task.request = isolate::Encoder(k_frame_request)
                     .str(source)
                     .str(path)
                     .u8(text.enabled ? 1 : 0)
                     .u64(text.max_attachment_bytes)
                     .u64(max_item)
                     .take();
  task.limits = pst_limits();
  task.max_frame = k_pst_max_frame;
  PstScanStats stats;
  std::vector<PstAttachment> pending; // set aside by the item the next 'I' frame brings
  std::uint64_t pending_bytes = 0;
  MAILDSAR_TRY(isolate::run(task, [&](std::uint8_t type, isolate::Decoder &in) -> core::Status {
    switch (type) {
    case k_frame_attachment: {
      MAILDSAR_TRY_ASSIGN(PstAttachment attachment, decode_pst_attachment(in));
      pending_bytes += attachment.bytes.size();
      if (pending_bytes > max_item + (8U << 20)) {
        return core::fail(core::ErrorCode::internal, "worker protocol error: attachments beyond the item's bound");
      }
      pending.push_back(std::move(attachment));
      return {};
    }
    case k_frame_item: {
      MAILDSAR_TRY_ASSIGN(Item item, decode_item(in));
      if (std::any_of(pending.begin(), pending.end(),
                      [&](const PstAttachment &a) { return a.node_id != item.locator.node_id; })) {
        return core::fail(core::ErrorCode::internal, "worker protocol error: attachments of another item");
      }
      merge_pst_attachments(item, pending);
      pending.clear();
      pending_bytes = 0;
      sink.item(std::move(item));
      return {};
    }
    case k_frame_problem: {
      MAILDSAR_TRY_ASSIGN(ScanError error, decode_scan_error(in));
      pending.clear(); // an item the worker could not send: its attachments go with it
      pending_bytes = 0;
      sink.error(std::move(error));
      return {};
    }
    case isolate::k_frame_done: {
      for (std::uint64_t *count : {&stats.folders, &stats.emails, &stats.contacts, &stats.appointments,
                                   &stats.journals, &stats.others, &stats.unreadable}) {
        MAILDSAR_TRY_ASSIGN(*count, in.u64());
      }
      return in.finish();
    }
    default:
      return core::fail(core::ErrorCode::internal, fmt::format("worker protocol error: frame type {} in pst-scan", type));
    }
  }));
  return stats;
}

core::Status serve_pst_scan(std::string_view request, isolate::Channel &channel) {
  isolate::Decoder in(request.substr(request.empty() ? 0 : 1));
  if (request.empty() || static_cast<std::uint8_t>(request[0]) != k_frame_request) {
    return core::fail(core::ErrorCode::internal, "worker protocol error: not a pst-scan request");
  }
  MAILDSAR_TRY_ASSIGN(std::string source, in.str());
  MAILDSAR_TRY_ASSIGN(std::string path, in.str());
  MAILDSAR_TRY_ASSIGN(std::uint8_t documents, in.u8());
  PstAttachmentOptions attachments;
  attachments.documents = documents != 0;
  MAILDSAR_TRY_ASSIGN(attachments.max_attachment_bytes, in.u64());
  MAILDSAR_TRY_ASSIGN(attachments.max_item_bytes, in.u64());
  MAILDSAR_TRY(in.finish());
  test_fault(path);
  FrameSink sink(channel);
  attachments.sink = [&sink](PstAttachment &&attachment) { sink.attachment(std::move(attachment)); };
  MAILDSAR_TRY_ASSIGN(PstScanStats stats, scan_pst_file_in_process(source, path, sink, &attachments));
  MAILDSAR_TRY(sink.status());
  isolate::Encoder done(isolate::k_frame_done);
  for (std::uint64_t count : {stats.folders, stats.emails, stats.contacts, stats.appointments, stats.journals,
                              stats.others, stats.unreadable}) {
    done.u64(count);
  }
  return channel.send(done.take());
}

// ---------------------------------------------------------------------------------------------
// pst-render

core::Status for_each_pst_rendering(const std::string &path, const std::vector<std::uint64_t> &node_ids,
                                    const PstRenderSink &sink) {
  isolate::Encoder request(k_frame_request);
  request.str(path).u64(node_ids.size());
  for (auto id : node_ids) {
    request.u64(id);
  }
  isolate::Task task;
  task.name = "pst-render";
  task.subject = "pst " + path;
  task.request = request.take();
  task.limits = pst_limits();
  task.max_frame = k_pst_max_frame;
  return isolate::run(task, [&](std::uint8_t type, isolate::Decoder &in) -> core::Status {
    if (type == isolate::k_frame_done) {
      return in.finish();
    }
    if (type != k_frame_rendering) {
      return core::fail(core::ErrorCode::internal, fmt::format("worker protocol error: frame type {} in pst-render", type));
    }
    MAILDSAR_TRY_ASSIGN(std::uint64_t id, in.u64());
    MAILDSAR_TRY_ASSIGN(std::uint8_t failed, in.u8());
    if (failed == 0) {
      PstRendering rendering;
      MAILDSAR_TRY_ASSIGN(rendering.extension, in.str());
      MAILDSAR_TRY_ASSIGN(rendering.bytes, in.str());
      MAILDSAR_TRY(in.finish());
      return sink(id, std::move(rendering));
    }
    MAILDSAR_TRY_ASSIGN(std::uint8_t code, in.u8());
    MAILDSAR_TRY_ASSIGN(std::string message, in.str());
    MAILDSAR_TRY(in.finish());
    if (failed != 1 || code > static_cast<std::uint8_t>(core::ErrorCode::config)) {
      return core::fail(core::ErrorCode::internal, "worker protocol error: a malformed rendering frame");
    }
    return sink(id, core::fail(static_cast<core::ErrorCode>(code), std::move(message)));
  });
}

core::Status serve_pst_render(std::string_view request, isolate::Channel &channel) {
  isolate::Decoder in(request.substr(request.empty() ? 0 : 1));
  if (request.empty() || static_cast<std::uint8_t>(request[0]) != k_frame_request) {
    return core::fail(core::ErrorCode::internal, "worker protocol error: not a pst-render request");
  }
  MAILDSAR_TRY_ASSIGN(std::string path, in.str());
  MAILDSAR_TRY_ASSIGN(std::uint64_t count, in.u64());
  std::vector<std::uint64_t> ids;
  for (std::uint64_t i = 0; i < count; ++i) {
    MAILDSAR_TRY_ASSIGN(std::uint64_t id, in.u64());
    ids.push_back(id);
  }
  MAILDSAR_TRY(in.finish());
  MAILDSAR_TRY(for_each_pst_rendering_in_process(
      path, ids, [&](std::uint64_t id, core::Result<PstRendering> rendering) -> core::Status {
        isolate::Encoder out(k_frame_rendering);
        out.u64(id);
        if (rendering) {
          out.u8(0).str(rendering->extension).str(rendering->bytes);
        } else {
          out.u8(1).u8(static_cast<std::uint8_t>(rendering.error().code)).str(rendering.error().message);
        }
        auto payload = out.take();
        if (payload.size() > k_pst_max_frame) {
          isolate::Encoder too_large(k_frame_rendering);
          too_large.u64(id).u8(1).u8(static_cast<std::uint8_t>(core::ErrorCode::data))
              .str(fmt::format("pst {}: node {}: rendering of {} bytes is too large", path, id, payload.size()));
          payload = too_large.take();
        }
        return channel.send(payload);
      }));
  return channel.send(isolate::Encoder(isolate::k_frame_done).take());
}

} // namespace maildsar::connectors
