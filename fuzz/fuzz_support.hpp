// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Shared by the libFuzzer harnesses: a scratch directory for the readers whose API takes a path
// (the connectors open files with O_NOFOLLOW, so /proc/self/fd links of a memfd do not do), and a
// check that aborts with a message when an invariant of the code under test is broken.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <unistd.h>

namespace maildsar::fuzz {

/** Aborts (a libFuzzer crash) when `ok` is false: an invariant the API documents was broken. */
inline void require(bool ok, const char *what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

/**
 * One directory per process under /dev/shm (memory, fast) or $TMPDIR, removed at exit. Files
 * written into it are overwritten by the next input.
 */
class ScratchDir {
public:
  ScratchDir() {
    std::error_code ec;
    std::string base = std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : "";
    if (base.empty()) {
      const char *tmp = std::getenv("TMPDIR");
      base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
    }
    std::string templ = base + "/maildsar-fuzz-XXXXXX";
    require(::mkdtemp(templ.data()) != nullptr, "mkdtemp of the scratch directory");
    m_path = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
  }
  ScratchDir(const ScratchDir &) = delete;
  ScratchDir &operator=(const ScratchDir &) = delete;

  [[nodiscard]] const std::string &path() const { return m_path; }

  /** Writes `bytes` to `relative` (creating its folders) and returns the absolute path. */
  std::string write(const std::string &relative, std::string_view bytes) const {
    std::filesystem::path file = std::filesystem::path(m_path) / relative;
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    std::FILE *out = std::fopen(file.c_str(), "wb");
    require(out != nullptr, "open of a scratch file");
    require(bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), out) == bytes.size(),
            "write of a scratch file");
    require(std::fclose(out) == 0, "close of a scratch file");
    return file.string();
  }

  /** Removes everything below the directory (not the directory itself). */
  void clear() const {
    std::error_code ec;
    for (const auto &entry : std::filesystem::directory_iterator(m_path, ec)) {
      std::filesystem::remove_all(entry.path(), ec);
    }
  }

private:
  std::string m_path;
};

/** The fuzzer's bytes as a string_view. */
inline std::string_view as_view(const std::uint8_t *data, std::size_t size) {
  return size == 0 ? std::string_view() : std::string_view(reinterpret_cast<const char *>(data), size);
}

} // namespace maildsar::fuzz
