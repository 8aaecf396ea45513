// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/result.hpp"
#include "query/query.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>

namespace maildsar::cli {

enum class OutputMode { human, json };

/**
 * The one writer for everything maildsar prints (notmuch's sprinter): data to stdout,
 * diagnostics to stderr, never mixed.
 */
class Output {
public:
  explicit Output(OutputMode mode) : m_mode(mode) {}

  [[nodiscard]] OutputMode mode() const { return m_mode; }
  [[nodiscard]] bool json() const { return m_mode == OutputMode::json; }

  /** A line of data (human mode) to stdout. */
  void line(std::string_view text);
  /** Text of several lines, each as line() writes it (a trailing newline adds no empty line). */
  void lines(std::string_view text);
  /** One JSON value as a single line to stdout. */
  void json_line(const nlohmann::json &value);
  /** hit_json() of each of `hits` as json_line() writes it, in order; formatted on two threads
      when there are many (a find of thousands of log transactions formats for as long as it
      searches). */
  void hit_lines(std::span<const query::Hit> hits);
  /** A diagnostic to stderr: "maildsar: <level>: <text>". */
  void diag(std::string_view level, std::string_view text);
  /** A fatal error: human line (+ hint) on stderr; under --json also {"error":{…}} on stdout. */
  void error(const core::Error &error);
  /** Progress on a terminal only ("\r…"); `done` clears the line. */
  void progress(std::string_view text);
  void progress_done();
  [[nodiscard]] bool stderr_is_terminal() const;

private:
  OutputMode m_mode;
  bool m_progress_shown = false;
};

/** "2023-11-14T10:00:00Z" (UTC) for seconds since the epoch. */
[[nodiscard]] std::string iso_date(std::int64_t t);

/** The hit object of DESIGN §4 (docs/schemata.md "maildsar.hit"), shared by find and trace. */
[[nodiscard]] nlohmann::json hit_json(const query::Hit &h);

/** Where a hit lives, for humans: path, mbox range, PST folder and node, log lines. */
[[nodiscard]] std::string hit_location(const query::Hit &h);
/** The same for a hit object from a host's agent (its JSON fields), for humans. */
[[nodiscard]] std::string remote_hit_location(const nlohmann::json &h);

} // namespace maildsar::cli
