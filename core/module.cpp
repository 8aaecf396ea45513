// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/module.hpp"

#include <fmt/format.h>

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

namespace maildsar::core {

Result<void *> open_module(const ModulePaths &paths, const char *abi_symbol, int abi) {
  std::vector<std::string> candidates;
  if (const char *env = paths.env.empty() ? nullptr : std::getenv(paths.env.c_str()); env != nullptr && *env != '\0') {
    candidates.emplace_back(env);
  }
  // The program's own install tree first (a package installs it under another prefix than the
  // build was configured with), then the build tree, then the configured prefix.
  std::error_code ec;
  if (auto self = std::filesystem::read_symlink("/proc/self/exe", ec); !ec) {
    candidates.push_back((self.parent_path() / paths.install_relative).lexically_normal().string());
  }
  candidates.push_back(paths.build_path);
  candidates.push_back(paths.install_path);
  std::string tried;
  for (const std::string &path : candidates) {
    void *handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (handle == nullptr) {
      const char *why = ::dlerror();
      tried += "\n  " + (why != nullptr ? std::string(why) : path + ": cannot load");
      continue;
    }
    auto abi_of = reinterpret_cast<int (*)()>(::dlsym(handle, abi_symbol));
    if (abi_of == nullptr || abi_of() != abi) {
      tried += "\n  " + path + ": not a maildsar module of ABI " + std::to_string(abi);
      ::dlclose(handle);
      continue;
    }
    return handle;
  }
  return fail(ErrorCode::internal, "cannot load " + paths.what + "; tried:" + tried,
              "reinstall maildsar" + (paths.env.empty() ? std::string() : ", or point " + paths.env + " at the module"));
}

void *module_symbol(void *module, const char *name) { return ::dlsym(module, name); }

Result<void *> module_function(const ModulePaths &paths, const char *abi_symbol, int abi, const char *name) {
  MAILDSAR_TRY_ASSIGN(void *handle, open_module(paths, abi_symbol, abi));
  if (void *fn = module_symbol(handle, name); fn != nullptr) {
    return fn;
  }
  return fail(ErrorCode::internal, fmt::format("{} lacks {}", paths.what, name), "reinstall maildsar");
}

} // namespace maildsar::core
