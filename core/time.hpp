// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include <cstdint>
#include <string>

namespace maildsar::core {

/** strftime(3) of a UTC time given in seconds since the epoch. */
[[nodiscard]] std::string format_utc(std::int64_t seconds, const char *format);
/** "2026-11-28T20:00:00Z". */
[[nodiscard]] std::string iso8601_utc(std::int64_t seconds);
/** iso8601_utc of the current time. */
[[nodiscard]] std::string iso8601_now();
/** Days since 1970-01-01 of a proleptic Gregorian date (month 1-12, day 1-31). */
[[nodiscard]] std::int64_t days_from_civil(std::int64_t year, unsigned month, unsigned day);

} // namespace maildsar::core
