// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * maildsar's own loadable modules (libmaildsar-phone.so, libmaildsar-pdf.so): code whose
 * libraries are large to load (libphonenumber with ICU and protobuf; Pango and cairo with
 * fontconfig, freetype and harfbuzz) lives in a module opened on first use, so that a run that
 * needs none of it — a no-op index, an agent answering a search — does not pay for loading them
 * (docs/performance.md "Start-up"). A module exports `<prefix>_abi()`; one of another ABI is
 * refused.
 */
#include "core/result.hpp"

#include <string>
#include <vector>

namespace maildsar::core {

/** Where a module may be: tried in order until one opens with the right ABI. */
struct ModulePaths {
  std::string what;             // "the phone-number module (libphonenumber)", for errors
  std::string env;              // environment variable naming the file ("" = none)
  std::string install_relative; // relative to the program's directory (an installed tree)
  std::string build_path;       // in the build tree
  std::string install_path;     // at the configured prefix
};

/**
 * dlopen()s the first of `paths` (the environment's, then relative to /proc/self/exe, then the
 * build tree, then the prefix) that opens and whose `abi_symbol` returns `abi`; the handle is
 * never closed (RTLD_NODELETE: its singletons live until exit, like a linked library's).
 * ErrorCode::internal naming every path tried, and why, when none does.
 */
[[nodiscard]] Result<void *> open_module(const ModulePaths &paths, const char *abi_symbol, int abi);

/** dlsym() of `name` in a module open_module() returned; nullptr when it has none. */
[[nodiscard]] void *module_symbol(void *module, const char *name);

/**
 * open_module() and the function `name` in it, for a module of one entry point. Keep the result
 * in a function-local static: it is loaded once, by the first caller.
 */
[[nodiscard]] Result<void *> module_function(const ModulePaths &paths, const char *abi_symbol, int abi,
                                             const char *name);

} // namespace maildsar::core
