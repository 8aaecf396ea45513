// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "cli/output.hpp"
#include "core/result.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace maildsar::cli {

/** How a long command shows how far it is (global option --progress, docs/cli.md). */
enum class ProgressMode {
  none,     // nothing
  terminal, // one updating line on stderr: "index mailboxes: 120/450 files, 35/s, ETA 9s"
  json,     // JSON lines on stderr (docs/schemata.md "maildsar.progress")
};

/**
 * The mode for `--progress VALUE` ("auto", the default; "json"; "none"): auto is the terminal
 * line when stderr is a terminal and not -q (verbosity < 0), else none; json is JSON lines
 * whatever stderr is (a wrapper asked for them), also with -q. Anything else: ErrorCode::usage.
 */
[[nodiscard]] core::Result<ProgressMode> progress_mode(std::string_view value, int verbosity, bool stderr_is_terminal);

/**
 * The one progress reporter of the long commands (index, export, plan, erase, verify,
 * retention): phases (a source, "items", "files") of a known or unknown size, each with done
 * counts that only grow; rate and ETA from the phase's start. Terminal updates are limited to
 * ten a second and JSON `progress` events to four, while `begin` and `end` are always written.
 * Not thread-safe: call it from one thread (the indexer's writer thread, the executor's loop).
 */
class Progress {
public:
  using Clock = std::chrono::steady_clock;

  /** `command` names the command in every JSON event; `out` clears the terminal line. */
  Progress(ProgressMode mode, std::string command, Output &out);
  Progress(const Progress &) = delete;
  Progress &operator=(const Progress &) = delete;
  ~Progress();

  [[nodiscard]] ProgressMode mode() const { return m_mode; }

  /** Starts a phase (ending the one before): `total` 0 = unknown. */
  void begin(std::string phase, std::string unit, std::uint64_t total);
  /** `done` of the current phase's total (a smaller value than before is ignored). */
  void update(std::uint64_t done);
  /** update() for one more. */
  void step() { update(m_done + 1); }
  /** Ends the current phase, if any: the last event with the final count; clears the line. */
  void end();

  /** A callback for a library's (phase, done, total) progress in `unit`s: a new phase name
      begins that phase. */
  [[nodiscard]] std::function<void(std::string_view, std::uint64_t, std::uint64_t)> callback(std::string unit);

  /** For tests: a clock that is not the steady clock. */
  void set_clock(std::function<Clock::time_point()> now) { m_now = std::move(now); }

private:
  void emit(std::string_view event);
  [[nodiscard]] std::string line() const;

  ProgressMode m_mode;
  std::string m_command;
  Output &m_out;
  std::function<Clock::time_point()> m_now = [] { return Clock::now(); };
  bool m_active = false;
  std::string m_phase;
  std::string m_unit;
  std::uint64_t m_total = 0;
  std::uint64_t m_done = 0;
  Clock::time_point m_started{};
  Clock::time_point m_last_shown{};
};

} // namespace maildsar::cli
