// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * The contract between the indexer and the phone-number module (phone_plugin.cpp), which is
 * loaded on first use. Bump MAILDSAR_PHONE_ABI whenever a signature or meaning changes: the
 * loader refuses a module of another ABI.
 */
#include <cstddef>

#define MAILDSAR_PHONE_ABI 1

extern "C" {
/** Receives one E.164 number ("+442079460123"); `size` excludes any terminator. */
typedef void (*maildsar_phone_emit_fn)(void *context, const char *e164, std::size_t size);

typedef int (*maildsar_phone_abi_fn)();
/** Parses one phone number as a person typed it; emits it when it is a possible number.
    Returns 1 (emitted), 0 (not a number) or -1 (internal error). */
typedef int (*maildsar_phone_parse_fn)(const char *text, std::size_t size, const char *region,
                                       maildsar_phone_emit_fn emit, void *context);
/** Emits every valid number found in a short text window; returns how many, or -1. */
typedef int (*maildsar_phone_match_fn)(const char *text, std::size_t size, const char *region,
                                       int max_tries, maildsar_phone_emit_fn emit, void *context);
}

#ifndef MAILDSAR_PHONE_PLUGIN_ONLY
#include "core/result.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::index {

/** The loaded phone-number module. Thread-safe; loaded once per process. */
class PhoneModule {
public:
  /**
   * Loads the module on first call ($MAILDSAR_PHONE_MODULE, else the build tree, else the
   * installed library directory). ErrorCode::internal naming every path tried when it cannot.
   */
  [[nodiscard]] static core::Result<const PhoneModule *> get();

  /** E.164 form of a number as typed, with `region` (ISO 3166, upper case) as default. */
  [[nodiscard]] std::optional<std::string> parse(std::string_view text, const std::string &region) const;
  /** Every valid number in a short window of text, in E.164 form. */
  [[nodiscard]] std::vector<std::string> match(std::string_view window, const std::string &region) const;

private:
  PhoneModule() = default;
  maildsar_phone_parse_fn m_parse = nullptr;
  maildsar_phone_match_fn m_match = nullptr;
};

} // namespace maildsar::index
#endif
