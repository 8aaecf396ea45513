// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::test {

/** The repository root (for samples/). */
std::filesystem::path source_dir();

/** ../shared/corpus (or $MAILDSAR_CORPUS); empty path when it is not there. */
std::filesystem::path corpus_dir();

/** A fresh temporary directory, removed when the object dies. */
class ScratchDir {
public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir &) = delete;
  ScratchDir &operator=(const ScratchDir &) = delete;
  [[nodiscard]] const std::filesystem::path &path() const { return m_path; }
  [[nodiscard]] std::filesystem::path operator/(std::string_view rel) const { return m_path / rel; }

private:
  std::filesystem::path m_path;
};

/** Writes `data` to `path`, creating parent folders. */
void write_file(const std::filesystem::path &path, std::string_view data);
/** Reads a whole file ("" if it does not exist). */
std::string read_file(const std::filesystem::path &path);
/** The inode number of `path` (0 if it cannot be stat()ed): a file or folder replaced by a new
    one at the same path (an index swapped for its compacted copy) has a new one. */
std::uint64_t inode_of(const std::filesystem::path &path);
/** `data` as one gzip member (concatenate two for a multi-member file). */
std::string gzip(std::string_view data);
/** Copies a tree (files and folders; symlinks as symlinks). */
void copy_tree(const std::filesystem::path &from, const std::filesystem::path &to);

/** Absolute path of a program found in $PATH (run() execs without a PATH search); empty when absent. */
std::filesystem::path find_program(const std::string &name);

/** Result of running a program. */
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
/** Runs `argv` (no shell), capturing stdout and stderr; `cwd` empty = current directory. */
RunResult run(const std::vector<std::string> &argv, const std::filesystem::path &cwd = {},
              const std::vector<std::string> &extra_env = {});

} // namespace maildsar::test
