// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Internal to extract/: the bounded text output and the shared budget of one extraction.

#include "extract/extract.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace maildsar::extract::detail {

/** UTF-8 as is when valid; else every byte as windows-1252 / Latin-1. */
[[nodiscard]] std::string to_utf8(std::string_view bytes);

/** Appends `s` to `out`, cut to at most `max` bytes in total at a UTF-8 boundary; false if cut. */
bool append_bounded(std::string &out, std::string_view s, std::uint64_t max);

/** One extraction: its limits, its output and what is left of its decompression budget. */
struct Context {
  Limits limits;
  Extracted out;
  std::uint64_t inflated_left = 0;
  bool full = false; // the text limit was reached: nothing more is read

  explicit Context(const Limits &l) : limits(l), inflated_left(l.max_inflated_bytes) {}

  /** Appends text; at the limit sets `truncated` with one warning. */
  void add(std::string_view text);
  void warn(std::string message);
};

/** Recursion entry: extracts `bytes` of `format` into `ctx` (depth = archive nesting). */
[[nodiscard]] core::Status extract_into(Context &ctx, Format format, std::string_view bytes, std::uint32_t depth);

[[nodiscard]] core::Status extract_pdf(Context &ctx, std::string_view bytes);
[[nodiscard]] core::Status extract_office(Context &ctx, Format format, std::string_view bytes);
[[nodiscard]] core::Status extract_zip(Context &ctx, std::string_view bytes, std::uint32_t depth);
[[nodiscard]] core::Status extract_tnef(Context &ctx, std::string_view bytes, std::uint32_t depth);

} // namespace maildsar::extract::detail
