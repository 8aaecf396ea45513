// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/phone_module.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#ifndef MAILDSAR_PHONE_MODULE_BUILD_PATH
#error "MAILDSAR_PHONE_MODULE_BUILD_PATH must name the module in the build tree"
#endif
#ifndef MAILDSAR_PHONE_MODULE_INSTALL_RELATIVE
#error "MAILDSAR_PHONE_MODULE_INSTALL_RELATIVE must name the installed module relative to the program"
#endif
#ifndef MAILDSAR_PHONE_MODULE_INSTALL_PATH
#error "MAILDSAR_PHONE_MODULE_INSTALL_PATH must name the installed module"
#endif

namespace maildsar::index {

namespace {

/** libphonenumber's matcher gives up after this many failed candidates in one window. */
constexpr int k_max_tries = 16;

void append_number(void *context, const char *e164, std::size_t size) {
  static_cast<std::vector<std::string> *>(context)->emplace_back(e164, size);
}

std::vector<std::string> candidate_paths() {
  std::vector<std::string> paths;
  if (const char *env = std::getenv("MAILDSAR_PHONE_MODULE"); env != nullptr && *env != '\0') {
    paths.emplace_back(env);
  }
  // The program's own install tree first (a package installs it under another prefix than the
  // build was configured with), then the build tree, then the configured prefix.
  std::error_code ec;
  if (auto self = std::filesystem::read_symlink("/proc/self/exe", ec); !ec) {
    paths.push_back((self.parent_path() / MAILDSAR_PHONE_MODULE_INSTALL_RELATIVE).lexically_normal().string());
  }
  paths.emplace_back(MAILDSAR_PHONE_MODULE_BUILD_PATH);
  paths.emplace_back(MAILDSAR_PHONE_MODULE_INSTALL_PATH);
  return paths;
}

} // namespace

#ifdef MAILDSAR_PHONE_LINKED
extern "C" int maildsar_phone_abi();
extern "C" int maildsar_phone_parse(const char *, std::size_t, const char *, maildsar_phone_emit_fn, void *) noexcept;
extern "C" int maildsar_phone_match(const char *, std::size_t, const char *, int, maildsar_phone_emit_fn,
                                    void *) noexcept;
#endif

core::Result<const PhoneModule *> PhoneModule::get() {
  static std::once_flag once;
  static PhoneModule module;
  static core::Result<const PhoneModule *> loaded = core::fail(core::ErrorCode::internal, "not loaded");
#ifdef MAILDSAR_PHONE_LINKED
  std::call_once(once, [] {
    module.m_parse = maildsar_phone_parse;
    module.m_match = maildsar_phone_match;
    loaded = maildsar_phone_abi() == MAILDSAR_PHONE_ABI
                 ? core::Result<const PhoneModule *>(&module)
                 : core::Result<const PhoneModule *>(core::fail(core::ErrorCode::internal, "phone code of another ABI"));
  });
  return loaded;
#endif
  std::call_once(once, [] {
    std::string tried;
    for (const std::string &path : candidate_paths()) {
      // RTLD_NODELETE: the module's singletons live until exit, like a linked library's.
      void *handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
      if (handle == nullptr) {
        const char *why = ::dlerror();
        tried += "\n  " + (why != nullptr ? std::string(why) : path + ": cannot load");
        continue;
      }
      auto abi = reinterpret_cast<maildsar_phone_abi_fn>(::dlsym(handle, "maildsar_phone_abi"));
      module.m_parse = reinterpret_cast<maildsar_phone_parse_fn>(::dlsym(handle, "maildsar_phone_parse"));
      module.m_match = reinterpret_cast<maildsar_phone_match_fn>(::dlsym(handle, "maildsar_phone_match"));
      if (abi == nullptr || module.m_parse == nullptr || module.m_match == nullptr ||
          abi() != MAILDSAR_PHONE_ABI) {
        tried += "\n  " + path + ": not a maildsar phone module of ABI " +
                 std::to_string(MAILDSAR_PHONE_ABI);
        ::dlclose(handle);
        continue;
      }
      loaded = &module;
      return;
    }
    loaded = core::fail(core::ErrorCode::internal,
                        "cannot load the phone-number module (libphonenumber); tried:" + tried,
                        "reinstall maildsar, or point MAILDSAR_PHONE_MODULE at libmaildsar-phone.so");
  });
  return loaded;
}

std::optional<std::string> PhoneModule::parse(std::string_view text, const std::string &region) const {
  std::vector<std::string> out;
  if (m_parse(text.data(), text.size(), region.c_str(), append_number, &out) != 1 || out.empty()) {
    return std::nullopt;
  }
  return std::move(out.front());
}

std::vector<std::string> PhoneModule::match(std::string_view window, const std::string &region) const {
  std::vector<std::string> out;
  if (m_match(window.data(), window.size(), region.c_str(), k_max_tries, append_number, &out) < 0) {
    out.clear();
  }
  return out;
}

} // namespace maildsar::index
