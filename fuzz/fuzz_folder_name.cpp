// SPDX-License-Identifier: GPL-3.0-or-later
// Folder names as stores write them (connectors/folder_name.hpp): IMAP modified UTF-7 decoding
// of any bytes. Never a crash; a decoded name is valid UTF-8 with no NUL; a name that is plain
// printable ASCII without '&' decodes to itself.
#include "connectors/folder_name.hpp"
#include "fuzz/fuzz_support.hpp"

#include <glib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

using maildsar::fuzz::as_view;
using maildsar::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view name = as_view(data, size);
  if (auto decoded = maildsar::connectors::decode_imap_utf7(name)) {
    std::string text = *decoded;
    std::erase(text, '\0'); // (GLib's check takes NUL as invalid; a name on disk never has one)
    require(g_utf8_validate(text.data(), static_cast<gssize>(text.size()), nullptr) != FALSE,
            "a decoded folder name is valid UTF-8");
    require(std::ranges::count(*decoded, '\0') <= std::ranges::count(name, '\0'), "decoding adds no NUL");
    const bool plain = std::ranges::all_of(name, [](char c) { return c >= 0x20 && c < 0x7F && c != '&'; });
    require(!plain || *decoded == name, "plain ASCII decodes to itself");
  }
  (void)maildsar::connectors::maildir_folder_display_name(name);
  return 0;
}
