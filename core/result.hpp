// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include <array>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace maildsar::core {

/** The closed set of error kinds. Each maps to one sysexits exit code (see k_error_table). */
enum class ErrorCode {
  usage,        // bad command line                      -> 64
  data,         // bad input data, bad manifest          -> 65
  no_input,     // a named input does not exist          -> 66
  internal,     // a bug or an unexpected library error  -> 70
  cant_create,  // cannot create an output file          -> 73
  io,           // read/write error                      -> 74
  index_locked, // another writer holds the index        -> 75
  temp_fail,    // temporary failure, try again          -> 75
  permission,   // permission denied                     -> 77
  config,       // configuration error                   -> 78
  not_indexed,  // a configured source was never indexed -> 69 (nothing searched: no answer)
};

struct ErrorInfo {
  ErrorCode code;
  std::string_view name;
  int exit_code;
  bool retryable;
};

inline constexpr std::array k_error_table{
    ErrorInfo{ErrorCode::usage, "usage", 64, false},
    ErrorInfo{ErrorCode::data, "data", 65, false},
    ErrorInfo{ErrorCode::no_input, "no_input", 66, false},
    ErrorInfo{ErrorCode::internal, "internal", 70, false},
    ErrorInfo{ErrorCode::cant_create, "cant_create", 73, false},
    ErrorInfo{ErrorCode::io, "io", 74, true},
    ErrorInfo{ErrorCode::index_locked, "index_locked", 75, true},
    ErrorInfo{ErrorCode::temp_fail, "temp_fail", 75, true},
    ErrorInfo{ErrorCode::permission, "permission", 77, false},
    ErrorInfo{ErrorCode::config, "config", 78, false},
    ErrorInfo{ErrorCode::not_indexed, "not_indexed", 69, false},
};

constexpr bool error_table_is_ordered() {
  for (std::size_t i = 0; i < k_error_table.size(); ++i) {
    if (static_cast<std::size_t>(k_error_table[i].code) != i) {
      return false;
    }
  }
  return true;
}
static_assert(error_table_is_ordered(), "k_error_table must list ErrorCode in order");
static_assert(k_error_table.size() == static_cast<std::size_t>(ErrorCode::not_indexed) + 1);

constexpr const ErrorInfo &info(ErrorCode code) {
  return k_error_table[static_cast<std::size_t>(code)];
}
constexpr std::string_view to_string(ErrorCode code) { return info(code).name; }
constexpr int exit_code(ErrorCode code) { return info(code).exit_code; }

/** One error type for the whole program. `message` names the file and the cause. */
struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;
  std::string hint = {};
  std::optional<std::string> subject = {};

  /** Returns a copy with `context` prepended to the message ("mbox /a/b: " + message). */
  [[nodiscard]] Error with_context(std::string_view context) const {
    Error e = *this;
    e.message = std::string(context) + e.message;
    return e;
  }
};

template <class T> using Result = std::expected<T, Error>;
using Status = Result<void>;

inline std::unexpected<Error> fail(ErrorCode code, std::string message, std::string hint = {}) {
  return std::unexpected<Error>(Error{code, std::move(message), std::move(hint), std::nullopt});
}

/**
 * Maps the exception in flight (Xapian, Boost, std::filesystem, nlohmann, std) to an Error.
 * Call only from inside a catch block. `context` is prepended to the message.
 */
Error error_from_current_exception(std::string_view context = {});

} // namespace maildsar::core

/** Propagate an error from an expression yielding Result<void>. */
#define MAILDSAR_TRY(expr)                                                                      \
  do {                                                                                         \
    auto maildsar_try_result_ = (expr);                                                        \
    if (!maildsar_try_result_) {                                                               \
      return std::unexpected(std::move(maildsar_try_result_).error());                         \
    }                                                                                          \
  } while (false)

#define MAILDSAR_CONCAT_INNER_(a, b) a##b
#define MAILDSAR_CONCAT_(a, b) MAILDSAR_CONCAT_INNER_(a, b)

/** Declare `var` from an expression yielding Result<T>, or propagate its error. */
#define MAILDSAR_TRY_ASSIGN(var, expr)                                                          \
  auto MAILDSAR_CONCAT_(maildsar_tmp_, __LINE__) = (expr);                                     \
  if (!MAILDSAR_CONCAT_(maildsar_tmp_, __LINE__)) {                                            \
    return std::unexpected(std::move(MAILDSAR_CONCAT_(maildsar_tmp_, __LINE__)).error());      \
  }                                                                                            \
  var = std::move(*MAILDSAR_CONCAT_(maildsar_tmp_, __LINE__))
