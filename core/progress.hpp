// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace maildsar::core {

/**
 * How far a long operation is, for the program's progress reporter (cli/progress.hpp): the
 * phase ("files", "items", a source's name), units done and the total (0 = unknown). Called
 * from one thread; done never decreases within a phase. Empty = nobody listens.
 */
using ProgressFn = std::function<void(std::string_view phase, std::uint64_t done, std::uint64_t total)>;

/** Calls `fn` when set. */
inline void report_progress(const ProgressFn &fn, std::string_view phase, std::uint64_t done, std::uint64_t total) {
  if (fn) {
    fn(phase, done, total);
  }
}

} // namespace maildsar::core
