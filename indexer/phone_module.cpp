// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/phone_module.hpp"

#include "core/module.hpp"

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
    const core::ModulePaths paths{"the phone-number module (libphonenumber)", "MAILDSAR_PHONE_MODULE",
                                  MAILDSAR_PHONE_MODULE_INSTALL_RELATIVE, MAILDSAR_PHONE_MODULE_BUILD_PATH,
                                  MAILDSAR_PHONE_MODULE_INSTALL_PATH};
    auto handle = core::open_module(paths, "maildsar_phone_abi", MAILDSAR_PHONE_ABI);
    if (!handle) {
      loaded = std::unexpected(handle.error());
      return;
    }
    module.m_parse = reinterpret_cast<maildsar_phone_parse_fn>(core::module_symbol(*handle, "maildsar_phone_parse"));
    module.m_match = reinterpret_cast<maildsar_phone_match_fn>(core::module_symbol(*handle, "maildsar_phone_match"));
    loaded = module.m_parse != nullptr && module.m_match != nullptr
                 ? core::Result<const PhoneModule *>(&module)
                 : core::Result<const PhoneModule *>(core::fail(core::ErrorCode::internal,
                                                                "the phone-number module lacks its functions"));
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
