// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// The PST tasks of the isolated worker (connectors/isolate.hpp): "pst-scan" (scan_pst_file) and
// "pst-render" (for_each_pst_rendering). The parent side is the public API in pst.hpp and
// pst_export.hpp; this header is for the worker program and the tests.

#include "connectors/isolate.hpp"
#include "connectors/item.hpp"
#include "connectors/pst.hpp"

#include <cstdint>
#include <string_view>

namespace maildsar::connectors {

/** The worker's task functions: libpst runs here, in the worker process. */
[[nodiscard]] core::Status serve_pst_scan(std::string_view request, isolate::Channel &channel);
[[nodiscard]] core::Status serve_pst_render(std::string_view request, isolate::Channel &channel);

/** An Item as payload bytes (after the frame type), and back (bounds- and range-checked). */
void encode_item(isolate::Encoder &out, const Item &item);
[[nodiscard]] core::Result<Item> decode_item(isolate::Decoder &in);

/** Frame types of the PST tasks. */
inline constexpr std::uint8_t k_frame_item = 'I';      // pst-scan: one Item
inline constexpr std::uint8_t k_frame_problem = 'P';   // pst-scan: one ScanError
inline constexpr std::uint8_t k_frame_rendering = 'R'; // pst-render: node id + rendering or error
inline constexpr std::uint8_t k_frame_request = 'Q';   // the request
inline constexpr std::uint8_t k_frame_attachment = 'A'; // pst-scan: one set-aside PstAttachment (before its item)

/** A set-aside attachment on the wire, and back (bounds-checked). */
void encode_pst_attachment(isolate::Encoder &out, const PstAttachment &attachment);
[[nodiscard]] core::Result<PstAttachment> decode_pst_attachment(isolate::Decoder &in);

/** Frames of the PST tasks may be this large (an item with many text attachments). */
inline constexpr std::uint32_t k_pst_max_frame = 256U << 20;

} // namespace maildsar::connectors
