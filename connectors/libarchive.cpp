// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/libarchive.hpp"

#include <fmt/format.h>

#include <dlfcn.h>

#include <mutex>
#include <stdexcept>
#include <string>

namespace maildsar::connectors {

namespace {

LibArchive load() {
  LibArchive api;
#ifdef MAILDSAR_LIBARCHIVE_LINKED
  // Sanitizer and fuzz builds link it: the same table, without the loader.
#define MAILDSAR_LIBARCHIVE_LINK(name) api.name = &::name;
  MAILDSAR_LIBARCHIVE_FUNCTIONS(MAILDSAR_LIBARCHIVE_LINK)
#undef MAILDSAR_LIBARCHIVE_LINK
#else
  // The soname of Debian 12's libarchive13 (ABI 13, the one <archive.h> describes).
  constexpr const char *k_soname = "libarchive.so.13";
  // RTLD_NODELETE: never unloaded, like a linked library; RTLD_LOCAL: its symbols stay its own.
  void *handle = ::dlopen(k_soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char *why = ::dlerror();
    throw std::runtime_error(fmt::format("{}: cannot load libarchive: {}", k_soname, why != nullptr ? why : "?"));
  }
#define MAILDSAR_LIBARCHIVE_LOAD(name)                                                                               \
  api.name = reinterpret_cast<decltype(&::name)>(::dlsym(handle, #name));                                          \
  if (api.name == nullptr) {                                                                                         \
    throw std::runtime_error(fmt::format("{}: has no {}", k_soname, #name));                                        \
  }
  MAILDSAR_LIBARCHIVE_FUNCTIONS(MAILDSAR_LIBARCHIVE_LOAD)
#undef MAILDSAR_LIBARCHIVE_LOAD
#endif
  return api;
}

} // namespace

const LibArchive &la() {
  // A function-local static: initialised once, by the first caller, while any other waits;
  // an exception leaves it uninitialised, so a later call tries again and throws again.
  static const LibArchive api = load();
  return api;
}

} // namespace maildsar::connectors
