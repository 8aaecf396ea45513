// SPDX-License-Identifier: GPL-3.0-or-later
// The public functions of the store writer, each guarding its implementation against
// exceptions; the code is in connectors/store_writer/ (internal.hpp lists its files).
#include "connectors/store_writer.hpp"

#include "connectors/store_writer/internal.hpp"

#include "core/result.hpp"

namespace maildsar::connectors {
namespace {

using store_writer_detail::maildir_copies_impl;
using store_writer_detail::maildir_current_path_impl;
using store_writer_detail::remove_message_file_impl;
using store_writer_detail::replace_maildir_message_impl;
using store_writer_detail::replace_message_file_impl;
using store_writer_detail::rewrite_log_impl;
using store_writer_detail::rewrite_mbox_impl;

template <class F> auto guarded(const std::string &context, F &&f) -> decltype(f()) {
  try {
    return f();
  } catch (...) {
    return std::unexpected(core::error_from_current_exception(context));
  }
}

} // namespace

bool is_stale(const core::Error &error) {
  return error.code == core::ErrorCode::data && error.hint == k_stale_hint;
}

core::Result<MboxRewrite> rewrite_mbox(const std::string &path, std::span<const MboxCut> cuts,
                                       const StepHook &hook) {
  return rewrite_mbox(path, cuts, hook, MboxLockOptions{});
}

core::Result<MboxRewrite> rewrite_mbox(const std::string &path, std::span<const MboxCut> cuts,
                                       const StepHook &hook, const MboxLockOptions &options) {
  return guarded("mbox " + path + ": ",
                 [&] { return rewrite_mbox_impl(path, cuts, hook, options); });
}

core::Result<LogRewrite> rewrite_log_lines(const std::string &path, std::span<const LineEdit> edits,
                                           const std::string &expected_lines_sha256,
                                           const StepHook &hook) {
  return guarded("log " + path + ": ",
                 [&] { return rewrite_log_impl(path, edits, expected_lines_sha256, hook); });
}

core::Status remove_message_file(const std::string &path, const std::string &sha256,
                                 const StepHook &hook) {
  return guarded(path + ": ", [&] { return remove_message_file_impl(path, sha256, hook); });
}

core::Result<std::string> replace_maildir_message(const std::string &path, const std::string &sha256,
                                                  std::string_view bytes, const std::string &new_unique,
                                                  const StepHook &hook) {
  return guarded(path + ": ", [&] { return replace_maildir_message_impl(path, sha256, bytes, new_unique, hook); });
}

core::Status replace_message_file(const std::string &path, const std::string &sha256, std::string_view bytes,
                                  const StepHook &hook) {
  return guarded(path + ": ", [&] { return replace_message_file_impl(path, sha256, bytes, hook); });
}

core::Result<std::string> maildir_current_path(const std::string &path) {
  return guarded(path + ": ", [&] { return maildir_current_path_impl(path); });
}

core::Result<std::vector<std::string>> maildir_copies(const std::string &maildir_root,
                                                      const std::string &sha256,
                                                      std::uint64_t size) {
  return guarded(maildir_root + ": ",
                 [&] { return maildir_copies_impl(maildir_root, sha256, size); });
}

} // namespace maildsar::connectors
