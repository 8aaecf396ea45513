// SPDX-License-Identifier: GPL-3.0-or-later
// The mbox splitter (both dialects, from the start and from a message boundary) and the mboxrd
// unquoting, reading the bytes from a memory file (split_mbox takes a descriptor).
#include "connectors/connector.hpp"
#include "connectors/mbox.hpp"
#include "core/fs.hpp"
#include "fuzz/fuzz_support.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <sys/mman.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace conn = maildsar::connectors;
using maildsar::fuzz::as_view;
using maildsar::fuzz::require;

namespace {

std::vector<std::uint64_t> split(int fd, std::uint64_t from, std::uint64_t size,
                                 conn::MboxDialect dialect) {
  std::vector<std::uint64_t> offsets;
  std::uint64_t end = from;
  auto on_message = [&](const conn::MboxMessage &message) {
    require(message.offset >= end, "messages come in file order and do not overlap");
    require(message.offset + message.length <= size, "a message lies inside the file");
    require(message.from_line_length <= message.length, "the From line is part of the message");
    require(message.too_large || message.raw.size() == message.length,
            "raw holds exactly the message's bytes");
    require(message.sha256.size() == 64, "every message is hashed");
    end = message.offset + message.length;
    offsets.push_back(message.offset);
    (void)conn::mbox_message_content(message);
  };
  auto on_error = [](conn::ScanError && /*error*/) {};
  (void)conn::split_mbox(fd, "fuzz.mbox", from, size, on_message, on_error, dialect);
  return offsets;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view bytes = as_view(data, size);
  maildsar::core::Fd fd(::memfd_create("fuzz-mbox", MFD_CLOEXEC));
  require(static_cast<bool>(fd), "memfd_create");
  require(maildsar::core::write_all(fd.get(), bytes, "memfd").has_value(), "memfd write");

  for (conn::MboxDialect dialect :
       {conn::MboxDialect::separators, conn::MboxDialect::content_length}) {
    std::vector<std::uint64_t> offsets = split(fd.get(), 0, size, dialect);
    // erase's check of whole messages splits for the boundaries only: the same ones.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> bounds;
    (void)conn::split_mbox(
        fd.get(), "fuzz.mbox", 0, size,
        [&](const conn::MboxMessage &m) {
          require(m.raw.empty() && m.sha256.empty(), "a split for boundaries reads no message");
          bounds.emplace_back(m.offset, m.length);
        },
        [](conn::ScanError &&) {}, dialect, conn::MboxSplitContent::boundaries);
    require(bounds.size() == offsets.size(), "a split for boundaries finds the same messages");
    for (std::size_t i = 0; i < bounds.size(); ++i) {
      require(bounds[i].first == offsets[i], "a split for boundaries finds the same offsets");
    }
    if (dialect == conn::MboxDialect::separators) {
      // erase checks a cut where it lies: the split resumed at a message's offset and stopped
      // after one message gives that message or nothing (erase then splits the whole file:
      // after a BOM, a lenient first line, an over-long envelope line), and whatever it accepts
      // at any line start is a message of the whole split, never a range the split would not give.
      for (std::size_t i = 0; i < bounds.size() && i < 64; ++i) {
        auto length = conn::mbox_message_length_at(fd.get(), "fuzz.mbox", size, bounds[i].first);
        require(length && (!*length || **length == bounds[i].second),
                "a message's length where it lies is its length in the whole split");
      }
      std::size_t pos = 0;
      for (int tried = 0; tried < 64 && pos < bytes.size(); ++tried) {
        auto length = conn::mbox_message_length_at(fd.get(), "fuzz.mbox", size, pos);
        require(static_cast<bool>(length), "reading a memfd does not fail");
        if (*length) {
          const std::pair<std::uint64_t, std::uint64_t> found(pos, **length);
          require(std::find(bounds.begin(), bounds.end(), found) != bounds.end(),
                  "a message found where a cut lies is a message of the whole split");
        }
        const std::size_t nl = bytes.find('\n', pos);
        if (nl == std::string_view::npos) {
          break;
        }
        pos = nl + 1;
      }
    }
    if (offsets.size() > 1) {
      // An append scan from a boundary the first scan found must be accepted.
      std::vector<std::uint64_t> rest = split(fd.get(), offsets[1], size, dialect);
      require(!rest.empty() && rest.front() == offsets[1],
              "a rescan from a message boundary starts at that message");
    }
  }
  (void)conn::unquote_mboxrd(bytes);
  (void)conn::looks_like_mbox_from_line(bytes.substr(0, bytes.find('\n')));
  return 0;
}
