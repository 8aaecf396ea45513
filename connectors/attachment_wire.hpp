// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Frame types of the worker task "extract-text" (attachment_text.cpp, attachment_worker.cpp).

#include <cstdint>

namespace maildsar::connectors {

inline constexpr std::uint8_t k_extract_frame_request = 'Q'; // the request
inline constexpr std::uint8_t k_extract_frame_text = 'X';    // one attachment's text or error

} // namespace maildsar::connectors
