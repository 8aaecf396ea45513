// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/limits.hpp"

#include "core/fs.hpp"
#include "core/hash.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <array>
#include <mutex>

namespace maildsar::connectors {

namespace {

std::mutex g_limits_mutex;
ItemLimits g_limits;
std::recursive_mutex g_big_item;
constexpr std::uint64_t k_chunk = 1ULL << 20;

} // namespace

void set_item_limits(const ItemLimits &limits) {
  std::lock_guard lock(g_limits_mutex);
  g_limits = limits;
}

ItemLimits item_limits() {
  std::lock_guard lock(g_limits_mutex);
  return g_limits;
}

BigItemGate::BigItemGate(std::uint64_t bytes) {
  if (bytes > k_big_item_bytes) {
    g_big_item.lock();
    m_held = true;
  }
}

BigItemGate::~BigItemGate() {
  if (m_held) {
    g_big_item.unlock();
  }
}

void bound_item(Item &item) {
  const std::uint64_t cap = item_limits().max_addresses_per_role;
  std::array<std::uint64_t, k_role_count> addresses{};
  std::array<std::uint64_t, k_role_count> dropped{};
  std::erase_if(item.addresses, [&](const RawAddress &a) {
    const auto r = static_cast<std::size_t>(a.role);
    if (++addresses[r] > cap) {
      ++dropped[r];
      return true;
    }
    return false;
  });
  std::array<std::uint64_t, k_role_count> ips{};
  std::array<std::uint64_t, k_role_count> dropped_ips{};
  std::erase_if(item.ips, [&](const RawValue &v) {
    const auto r = static_cast<std::size_t>(v.role);
    if (++ips[r] > cap) {
      ++dropped_ips[r];
      return true;
    }
    return false;
  });
  for (std::size_t r = 0; r < k_role_count; ++r) {
    if (dropped[r] > 0) {
      item.truncated.push_back(fmt::format("{} address(es) of role {} beyond limits.max_addresses_per_role ({}) not indexed",
                                           dropped[r], to_string(static_cast<Role>(r)), cap));
    }
    if (dropped_ips[r] > 0) {
      item.truncated.push_back(fmt::format("{} IP address(es) of role {} beyond limits.max_addresses_per_role ({}) not indexed",
                                           dropped_ips[r], to_string(static_cast<Role>(r)), cap));
    }
  }
}

core::Result<FileHead> read_head(int fd, std::uint64_t size, std::uint64_t max, const std::string &path) {
  FileHead head;
  core::Sha256 hash;
  while (head.size < size) {
    const std::uint64_t chunk = std::min(k_chunk, size - head.size);
    MAILDSAR_TRY_ASSIGN(std::string part, core::read_range(fd, head.size, chunk, path));
    if (part.empty()) {
      break; // shrank under us: what was read is the item
    }
    hash.update(part);
    if (head.bytes.size() < max) {
      head.bytes.append(part, 0, static_cast<std::size_t>(std::min<std::uint64_t>(part.size(), max - head.bytes.size())));
    }
    head.size += part.size();
  }
  head.sha256 = hash.hex_digest();
  return head;
}

core::Result<InflatedHead> inflate_head(int fd, std::uint64_t size, std::uint64_t max, const std::string &path) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) {
    return core::fail(core::ErrorCode::internal, "gzip: cannot initialise zlib");
  }
  struct Guard {
    z_stream *zs;
    ~Guard() { inflateEnd(zs); }
  } guard{&zs};
  InflatedHead out;
  std::array<char, 65536> buf{};
  std::uint64_t offset = 0; // compressed bytes read
  std::string in;
  std::size_t in_pos = 0;
  bool member_ended = false;
  while (true) {
    if (in_pos >= in.size()) {
      if (offset >= size) {
        if (member_ended) {
          return out;
        }
        return core::fail(core::ErrorCode::data, fmt::format("gzip: truncated stream (ends at offset {})", offset));
      }
      MAILDSAR_TRY_ASSIGN(in, core::read_range(fd, offset, std::min(k_chunk, size - offset), path));
      if (in.empty()) {
        size = offset; // shrank under us
        continue;
      }
      offset += in.size();
      in_pos = 0;
    }
    if (member_ended) {
      // Another gzip member follows (concatenated .gz); anything else is trailing junk.
      if (static_cast<unsigned char>(in[in_pos]) != 0x1f) {
        return core::fail(core::ErrorCode::data,
                          fmt::format("gzip: trailing garbage at offset {}", offset - (in.size() - in_pos)));
      }
      if (inflateReset(&zs) != Z_OK) {
        return core::fail(core::ErrorCode::internal, "gzip: cannot reset zlib");
      }
      member_ended = false;
    }
    zs.next_in = reinterpret_cast<Bytef *>(in.data() + in_pos);
    zs.avail_in = static_cast<uInt>(in.size() - in_pos);
    zs.next_out = reinterpret_cast<Bytef *>(buf.data());
    zs.avail_out = static_cast<uInt>(buf.size());
    const int rc = inflate(&zs, Z_NO_FLUSH);
    in_pos = in.size() - zs.avail_in;
    const std::size_t got = buf.size() - zs.avail_out;
    const std::uint64_t room = max - out.bytes.size();
    out.bytes.append(buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(got, room)));
    if (got > room) {
      out.cut = true;
      return out;
    }
    if (rc == Z_STREAM_END) {
      member_ended = true;
      continue;
    }
    if (rc == Z_OK || rc == Z_BUF_ERROR) {
      continue;
    }
    return core::fail(core::ErrorCode::data,
                      fmt::format("gzip: corrupt data near offset {}: {}", offset - (in.size() - in_pos),
                                  zs.msg != nullptr ? zs.msg : zError(rc)));
  }
}

} // namespace maildsar::connectors
