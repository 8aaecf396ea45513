// SPDX-License-Identifier: GPL-3.0-or-later
// Random access into gzip logs (connectors/maillog/gz_access.*). The input's first byte picks
// what is untrusted: odd, the rest is a serialised restart-point index (state that may be
// damaged), parsed and then used on a small valid gzip file; even, the rest is a compressed log
// (prefixed with the gzip magic), read in full while recording points every 4 KiB, after which
// every point must resume at exactly the bytes the full read gave from there.
#include "connectors/maillog/gz_access.hpp"
#include "core/fs.hpp"
#include "fuzz/fuzz_support.hpp"

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gz = maildsar::connectors::gz;
using maildsar::fuzz::require;

namespace {

constexpr std::size_t k_limit = std::size_t{64} << 20U;

/** Reads everything `r` gives (bounded: a bomb stops at k_limit); false on a data error. */
bool drain(gz::Reader &r, std::string &out) {
  std::string buf(16384, '\0');
  while (out.size() < k_limit) {
    auto got = r.read(buf.data(), buf.size());
    if (!got) {
      return false;
    }
    if (*got == 0) {
      return true;
    }
    out.append(buf, 0, *got);
  }
  return true;
}

gz::Reader open(const std::string &path) {
  auto fd = maildsar::core::open_read(path);
  require(fd.has_value(), "open of the scratch file");
  auto r = gz::Reader::open(std::move(*fd), path);
  require(r.has_value(), "gz::Reader::open");
  return std::move(*r);
}

std::string gzip_of(std::string_view text) {
  uLongf size = compressBound(static_cast<uLong>(text.size())) + 32;
  std::string out(size, '\0');
  z_stream s{};
  require(deflateInit2(&s, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK, "deflateInit2");
  s.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(text.data()));
  s.avail_in = static_cast<uInt>(text.size());
  s.next_out = reinterpret_cast<Bytef *>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  require(deflate(&s, Z_FINISH) == Z_STREAM_END, "deflate");
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  static maildsar::fuzz::ScratchDir dir;
  if (size == 0) {
    return 0;
  }
  const std::string_view rest(reinterpret_cast<const char *>(data) + 1, size - 1);
  if ((data[0] & 1U) != 0) {
    auto index = gz::Index::parse(rest);
    if (!index) {
      return 0;
    }
    static const std::string text = [] {
      std::string t;
      for (int i = 0; i < 4000; ++i) {
        t += "Nov 14 10:00:00 mx postfix/smtp[" + std::to_string(i * 7919 % 10007) + "]: line\n";
      }
      return t;
    }();
    const std::string path = dir.write("known.gz", gzip_of(text));
    for (const gz::Point &p : index->points) {
      gz::Reader r = open(path);
      if (r.restart_at(p)) {
        std::string out;
        (void)drain(r, out); // anything or a data error; never a crash or a hang
      }
    }
    return 0;
  }
  const std::string path = dir.write("log.gz", std::string("\x1f\x8b", 2) + std::string(rest));
  gz::Reader whole = open(path);
  whole.record_points(4096);
  std::string all;
  const bool ok = drain(whole, all);
  const gz::Index index = whole.take_index();
  // Read again without recording: ISA-L instead of zlib. Both inflaters must see the same
  // content and agree on whether it is damaged (the indexer's probe reads with one, its scans
  // and find with the other).
  {
    gz::Reader plain = open(path);
    std::string again;
    const bool plain_ok = drain(plain, again);
    if (all.size() < k_limit && again.size() < k_limit) {
      require(plain_ok == ok, "zlib and ISA-L agree whether the file is damaged");
      require(!ok || again == all, "zlib and ISA-L give the same content");
    }
  }
  auto back = gz::Index::parse(index.serialise());
  require(back.has_value() && back->points.size() == index.points.size(), "points round-trip");
  for (const gz::Point &p : index.points) {
    require(p.out <= all.size(), "a point within what was read");
    gz::Reader r = open(path);
    require(r.restart_at(p).has_value(), "restart at a recorded point");
    std::string out;
    const bool again = drain(r, out);
    if (ok && again && all.size() < k_limit) {
      require(out == std::string_view(all).substr(p.out), "the same bytes from a point");
    }
  }
  return 0;
}
