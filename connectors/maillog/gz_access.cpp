// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/maillog/gz_access.hpp"

#include "connectors/maillog/text.hpp"

#include <fmt/format.h>
#include <isa-l/igzip_lib.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <unistd.h>

namespace maildsar::connectors::gz {

namespace {

constexpr std::size_t k_in_chunk = std::size_t{1} << 17U;
constexpr std::uint8_t k_format_version = 1;
constexpr std::size_t k_max_points = std::size_t{1} << 24U; // a serialised index never claims more

void put_varint(std::string &out, std::uint64_t v) {
  while (v >= 0x80U) {
    out += static_cast<char>((v & 0x7fU) | 0x80U);
    v >>= 7U;
  }
  out += static_cast<char>(v);
}

/** Reads a varint from `in`; false when it is truncated or longer than 64 bits. */
bool get_varint(std::string_view &in, std::uint64_t &v) {
  v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (in.empty()) {
      return false;
    }
    const auto b = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<std::uint64_t>(b & 0x7fU) << shift;
    if ((b & 0x80U) == 0) {
      return shift < 63 || b <= 1;
    }
  }
  return false;
}

core::Result<std::string> deflate_window(std::string_view window) {
  uLongf size = compressBound(static_cast<uLong>(window.size()));
  std::string out(size, '\0');
  const int rc = compress2(reinterpret_cast<Bytef *>(out.data()), &size,
                           reinterpret_cast<const Bytef *>(window.data()),
                           static_cast<uLong>(window.size()), Z_DEFAULT_COMPRESSION);
  if (rc != Z_OK) {
    return core::fail(core::ErrorCode::internal, fmt::format("gzip index: compress2 failed ({})", rc));
  }
  out.resize(size);
  return out;
}

/** The window of `point` (a zlib stream, deflate_window), inflated into `out` by `state`. */
core::Status inflate_window(const Point &point, inflate_state &state, std::string &out) {
  out.assign(point.window_size, '\0');
  isal_inflate_init(&state);
  state.crc_flag = ISAL_ZLIB;
  state.next_in = reinterpret_cast<std::uint8_t *>(const_cast<char *>(point.window.data()));
  state.avail_in = static_cast<std::uint32_t>(point.window.size());
  state.next_out = reinterpret_cast<std::uint8_t *>(out.data());
  state.avail_out = point.window_size;
  const int rc = isal_inflate_stateless(&state);
  if (rc != ISAL_DECOMP_OK || state.avail_out != 0 || state.total_out != point.window_size) {
    return core::fail(core::ErrorCode::data, "gzip index: a restart point's window is damaged");
  }
  return {};
}

/** What an ISA-L inflate error says. */
const char *isal_message(int rc) {
  switch (rc) {
  case ISAL_INVALID_BLOCK:
    return "invalid deflate block";
  case ISAL_INVALID_SYMBOL:
    return "invalid deflate symbol";
  case ISAL_INVALID_LOOKBACK:
    return "invalid distance too far back";
  case ISAL_INVALID_WRAPPER:
    return "invalid gzip header";
  case ISAL_UNSUPPORTED_METHOD:
    return "unknown compression method";
  case ISAL_INCORRECT_CHECKSUM:
    return "incorrect data check";
  case ISAL_NEED_DICT:
    return "a dictionary is needed";
  default:
    return "inflate error";
  }
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Index

std::string Index::serialise() const {
  if (points.empty()) {
    return {};
  }
  std::string out = "MDGZ";
  out += static_cast<char>(k_format_version);
  put_varint(out, compressed_size);
  put_varint(out, points.size());
  std::uint64_t last_in = 0;
  std::uint64_t last_out = 0;
  std::uint64_t last_lines = 0;
  for (const Point &p : points) { // offsets as deltas: a few bytes each
    put_varint(out, p.in - last_in);
    out += static_cast<char>(p.bits);
    put_varint(out, p.out - last_out);
    put_varint(out, p.lines - last_lines);
    put_varint(out, p.window_size);
    put_varint(out, p.window.size());
    out += p.window;
    last_in = p.in;
    last_out = p.out;
    last_lines = p.lines;
  }
  return out;
}

core::Result<Index> Index::parse(std::string_view blob) {
  auto bad = [](std::string_view what) {
    return core::fail(core::ErrorCode::data, fmt::format("gzip index: {}", what));
  };
  Index index;
  if (blob.empty()) {
    return index;
  }
  if (blob.size() < 5 || blob.substr(0, 4) != "MDGZ" ||
      static_cast<std::uint8_t>(blob[4]) != k_format_version) {
    return bad("not a gzip index of this version");
  }
  blob.remove_prefix(5);
  std::uint64_t count = 0;
  if (!get_varint(blob, index.compressed_size) || !get_varint(blob, count) || count > k_max_points ||
      count > blob.size()) {
    return bad("truncated header");
  }
  index.points.reserve(static_cast<std::size_t>(count));
  Point last;
  for (std::uint64_t i = 0; i < count; ++i) {
    Point p;
    std::uint64_t d_in = 0;
    std::uint64_t d_out = 0;
    std::uint64_t d_lines = 0;
    std::uint64_t wsize = 0;
    std::uint64_t zsize = 0;
    if (!get_varint(blob, d_in) || blob.empty()) {
      return bad("truncated point");
    }
    p.bits = static_cast<unsigned char>(blob.front());
    blob.remove_prefix(1);
    if (!get_varint(blob, d_out) || !get_varint(blob, d_lines) || !get_varint(blob, wsize) ||
        !get_varint(blob, zsize) || zsize > blob.size()) {
      return bad("truncated point");
    }
    const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    if (p.bits > 7 || wsize > k_gz_window || d_in > max - last.in || d_out > max - last.out ||
        d_lines > max - last.lines || (i > 0 && d_out == 0) || d_lines > d_out ||
        (wsize > 0 && zsize == 0)) {
      return bad("inconsistent point");
    }
    p.in = last.in + d_in;
    p.out = last.out + d_out;
    p.lines = last.lines + d_lines;
    p.window_size = static_cast<std::uint32_t>(wsize);
    p.window.assign(blob.substr(0, static_cast<std::size_t>(zsize)));
    blob.remove_prefix(static_cast<std::size_t>(zsize));
    if (p.in > index.compressed_size || (p.bits > 0 && p.in == 0) ||
        p.window_size != std::min<std::uint64_t>(p.out, k_gz_window)) {
      return bad("inconsistent point");
    }
    last.in = p.in;
    last.out = p.out;
    last.lines = p.lines;
    index.points.push_back(std::move(p));
  }
  if (!blob.empty()) {
    return bad("trailing bytes");
  }
  return index;
}

const Point *Index::before(std::uint64_t offset) const {
  auto it = std::upper_bound(points.begin(), points.end(), offset,
                             [](std::uint64_t o, const Point &p) { return o < p.out; });
  return it == points.begin() ? nullptr : &*std::prev(it);
}

// ---------------------------------------------------------------------------------------------
// Reader

// Two inflaters: zlib while recording points (its Z_BLOCK stops at every deflate block boundary,
// where a point can be), ISA-L's igzip otherwise (several times faster; docs/performance.md),
// also after a restart point, whose bit offset and window it is given the way zlib is.
struct Reader::State {
  core::Fd fd;
  std::string path;
  z_stream strm{};
  bool initialised = false;
  enum class Engine { unchosen, zlib, isal } engine = Engine::unchosen; // chosen by the first read
  inflate_state isal{};
  std::string dict; // a restart point's window, inflated
  std::string in = std::string(k_in_chunk, '\0');
  std::uint64_t file_pos = 0; // file offset of the byte after those in `in`
  bool file_end = false;
  enum class Mode { between, gzip, raw } mode = Mode::between; // raw: resumed at a point
  std::uint64_t trailer_left = 0; // raw mode after the deflate stream: gzip trailer bytes to skip
  bool done = false;
  std::uint64_t out = 0;   // decompressed bytes so far (from the start of the content)
  std::uint64_t lines = 0; // '\n' among them (counted only while recording)
  // Recording
  std::uint64_t spacing = 0; // 0: not recording
  std::uint64_t per_window_byte = 0;
  std::uint64_t last_point = 0;
  std::uint64_t next_gap = 0; // decompressed bytes from last_point to the next point
  std::string ring = std::string(k_gz_window, '\0');
  std::size_t ring_at = 0;   // next write position
  std::uint64_t ring_fill = 0;
  std::optional<Point> pending; // recorded, its window not yet made sparse (finish_point)
  std::string pending_window;   // its window, inflated
  Index index;
  std::optional<core::Error> failed;

  ~State() {
    if (initialised) {
      inflateEnd(&strm);
    }
  }

  core::Error data_error(std::string_view what) const {
    return core::Error{core::ErrorCode::data,
                       fmt::format("compressed data truncated or corrupt ({})", what), {}, {}};
  }

  /** Refills `in` when it is used up (`next_in`, `avail_in`: the inflater's); false at the end
      of the file. */
  core::Result<bool> fill(std::uint8_t *&next_in, std::uint32_t &avail_in) {
    if (avail_in > 0) {
      return true;
    }
    if (file_end) {
      return false;
    }
    for (;;) {
      const ssize_t got = ::pread(fd.get(), in.data(), in.size(), static_cast<off_t>(file_pos));
      if (got < 0) {
        if (errno == EINTR) {
          continue;
        }
        return std::unexpected(core::errno_error("maillog " + path, errno));
      }
      if (got == 0) {
        file_end = true;
        return false;
      }
      file_pos += static_cast<std::uint64_t>(got);
      next_in = reinterpret_cast<std::uint8_t *>(in.data());
      avail_in = static_cast<std::uint32_t>(got);
      return true;
    }
  }
  core::Result<bool> fill() { return fill(strm.next_in, strm.avail_in); }

  /**
   * Between members: true when a gzip member starts at `next_in` (the magic may straddle the
   * buffer: the byte is moved to its front and the rest read after it); false at the end of the
   * content (end of file, or bytes that are not gzip: ignored, as gzread does).
   */
  core::Result<bool> member_starts(std::uint8_t *&next_in, std::uint32_t &avail_in) {
    MAILDSAR_TRY_ASSIGN(bool have, fill(next_in, avail_in));
    if (!have) {
      return false;
    }
    if (avail_in < 2 && !file_end) {
      in[0] = static_cast<char>(*next_in);
      const ssize_t got = ::pread(fd.get(), in.data() + 1, in.size() - 1, static_cast<off_t>(file_pos));
      if (got < 0) {
        return std::unexpected(core::errno_error("maillog " + path, errno));
      }
      if (got == 0) {
        file_end = true;
      }
      file_pos += static_cast<std::uint64_t>(got);
      next_in = reinterpret_cast<std::uint8_t *>(in.data());
      avail_in = static_cast<std::uint32_t>(got + 1);
    }
    return avail_in >= 2 && next_in[0] == 0x1fU && next_in[1] == 0x8bU;
  }

  /** Skips the 8-byte trailer of a member read raw (from a restart point); false: truncated. */
  core::Result<bool> skip_trailer(std::uint8_t *&next_in, std::uint32_t &avail_in) {
    while (trailer_left > 0) {
      MAILDSAR_TRY_ASSIGN(bool have, fill(next_in, avail_in));
      if (!have) {
        return false;
      }
      const auto skip = static_cast<std::uint32_t>(std::min<std::uint64_t>(trailer_left, avail_in));
      next_in += skip;
      avail_in -= skip;
      trailer_left -= skip;
    }
    mode = Mode::between;
    return true;
  }

  /** A read that fails with `error` after `produced` bytes: those first, the error next time. */
  core::Result<std::size_t> fail_after(std::size_t produced, core::Error error) {
    failed = std::move(error);
    return produced > 0 ? core::Result<std::size_t>(produced) : std::unexpected(*failed);
  }

  void remember(const char *data, std::size_t n) {
    if (n >= k_gz_window) {
      std::memcpy(ring.data(), data + n - k_gz_window, k_gz_window);
      ring_at = 0;
    } else {
      const std::size_t first = std::min(n, k_gz_window - ring_at);
      std::memcpy(ring.data() + ring_at, data, first);
      std::memcpy(ring.data(), data + first, n - first);
      ring_at = (ring_at + n) % k_gz_window;
    }
    ring_fill += n;
    lines += maillog::count_newlines(std::string_view(data, n));
  }

  core::Status add_point() {
    Point p;
    p.in = file_pos - strm.avail_in;
    p.bits = static_cast<unsigned>(strm.data_type) & 7U;
    p.out = out;
    p.lines = lines;
    const std::size_t have = static_cast<std::size_t>(std::min<std::uint64_t>(ring_fill, k_gz_window));
    std::string window;
    window.reserve(have);
    const std::size_t start = (ring_at + k_gz_window - have) % k_gz_window;
    const std::size_t first = std::min(have, k_gz_window - start);
    window.append(ring, start, first);
    window.append(ring, 0, have - first);
    p.window_size = static_cast<std::uint32_t>(have);
    // Kept until the bytes after it are read (finish_point): which of the window's bytes they
    // copy decides what is kept, and the kept window's size where the next point may be.
    pending = std::move(p);
    pending_window = std::move(window);
    last_point = out;
    next_gap = std::numeric_limits<std::uint64_t>::max();
    return {};
  }

  /** Resumes at `point` with its window `window` (inflated): the next read gives point.out on. */
  core::Status restart(const Point &point, std::string window) {
    dict = std::move(window);
    failed.reset();
    done = false;
    file_end = false;
    trailer_left = 0;
    engine = Engine::isal;
    isal_inflate_init(&isal);
    isal.crc_flag = ISAL_DEFLATE; // raw: the rest of the member's deflate stream
    if (!dict.empty() &&
        isal_inflate_set_dict(&isal, reinterpret_cast<std::uint8_t *>(dict.data()),
                              static_cast<std::uint32_t>(dict.size())) != COMP_OK) {
      return core::fail(core::ErrorCode::data, "maillog " + path + ": restart point rejected");
    }
    isal.avail_in = 0;
    file_pos = point.bits > 0 ? point.in - 1 : point.in;
    if (point.bits > 0) {
      // The next block begins in the byte before `in`: its last `bits` bits, the inflater's first.
      MAILDSAR_TRY_ASSIGN(bool have, fill(isal.next_in, isal.avail_in));
      if (!have) {
        return core::fail(core::ErrorCode::data, "maillog " + path + ": restart point past the end");
      }
      const unsigned byte = *isal.next_in;
      ++isal.next_in;
      --isal.avail_in;
      isal.read_in = byte >> (8U - point.bits);
      isal.read_in_length = static_cast<std::int32_t>(point.bits);
    }
    mode = Mode::raw;
    out = point.out;
    lines = point.lines;
    spacing = 0;
    return {};
  }

  /**
   * The bytes of `window` (the point's, inflated) that the data after `point` copies: the rest
   * zeroed, so that the window deflates to a fraction of its size (about a fifth of a log's
   * window is ever copied). Only a match that begins in the first window-size bytes after the
   * point can reach back into the window; everything after it is copied from bytes inflated
   * after the point. Which window bytes those matches copy, three inflations with marker windows
   * tell (their output's bytes that came from the window carry the window position in their
   * value: low byte, high byte, low byte xor 0x55; bytes that came from the stream itself are
   * the same in all three). The sparse window is then checked to inflate what the whole one
   * does; the whole window is returned when it does not, or when anything fails.
   */
  std::string sparse_window(const Point &point, const std::string &window) const {
    const std::size_t look = window.size() + 258; // the longest match that begins in the span
    State t;
    t.path = path;
    t.in.resize(std::size_t{1} << 14U); // a few KiB of compressed data inflate to `look`
    const auto inflate = [&](std::string dict_bytes) -> std::optional<std::string> {
      if (!t.fd) {
        t.fd = core::Fd(::dup(fd.get()));
        if (!t.fd) {
          return std::nullopt;
        }
      }
      if (!t.restart(point, std::move(dict_bytes))) {
        return std::nullopt;
      }
      std::string got(look, '\0');
      std::size_t have = 0;
      while (have < look) {
        auto n = t.read_isal(got.data() + have, look - have);
        if (!n) {
          return std::nullopt;
        }
        if (*n == 0) {
          break;
        }
        have += *n;
      }
      got.resize(have);
      return got;
    };
    std::string low(window.size(), '\0');
    std::string high(window.size(), '\0');
    std::string check(window.size(), '\0');
    for (std::size_t i = 0; i < window.size(); ++i) {
      low[i] = static_cast<char>(i & 0xFFU);
      high[i] = static_cast<char>((i >> 8U) & 0xFFU);
      check[i] = static_cast<char>((i & 0xFFU) ^ 0x55U);
    }
    const auto real = inflate(window);
    const auto by_low = inflate(std::move(low));
    const auto by_high = inflate(std::move(high));
    const auto by_check = inflate(std::move(check));
    if (!real || !by_low || !by_high || !by_check || by_low->size() != real->size() ||
        by_high->size() != real->size() || by_check->size() != real->size()) {
      return window;
    }
    std::string sparse(window.size(), '\0');
    for (std::size_t j = 0; j < real->size(); ++j) {
      const auto a = static_cast<unsigned char>((*by_low)[j]);
      if ((a ^ static_cast<unsigned char>((*by_check)[j])) != 0x55U) {
        continue; // not from the window
      }
      const std::size_t at = a | (static_cast<std::size_t>(static_cast<unsigned char>((*by_high)[j])) << 8U);
      if (at < window.size()) {
        sparse[at] = window[at];
      }
    }
    const auto again = inflate(sparse);
    return again && *again == *real ? sparse : window;
  }

  /** The point waiting for the bytes after it (sparse_window): its window deflated, kept. */
  core::Status finish_point() {
    Point p = std::move(*pending);
    pending.reset();
    const std::string window = sparse_window(p, pending_window);
    MAILDSAR_TRY_ASSIGN(p.window, deflate_window(window));
    index.points.push_back(std::move(p));
    next_gap = std::max(spacing, per_window_byte * index.points.back().window.size());
    return {};
  }

  core::Result<std::size_t> read(char *buf, std::size_t n) {
    if (failed) {
      return std::unexpected(*failed);
    }
    if (engine == Engine::unchosen) {
      engine = spacing > 0 ? Engine::zlib : Engine::isal;
    }
    return engine == Engine::zlib ? read_zlib(buf, n) : read_isal(buf, n);
  }

  core::Result<std::size_t> read_zlib(char *buf, std::size_t n) {
    std::size_t produced = 0;
    while (produced < n && !done) {
      if (mode == Mode::between) {
        MAILDSAR_TRY_ASSIGN(bool member, member_starts(strm.next_in, strm.avail_in));
        if (!member) {
          done = true;
          break;
        }
        if (inflateReset2(&strm, 15 + 16) != Z_OK) {
          return std::unexpected(data_error("inflateReset2"));
        }
        mode = Mode::gzip;
        continue;
      }
      if (trailer_left > 0) {
        MAILDSAR_TRY_ASSIGN(bool whole, skip_trailer(strm.next_in, strm.avail_in));
        if (!whole) {
          return fail_after(produced, data_error("unexpected end of file"));
        }
        continue;
      }
      MAILDSAR_TRY_ASSIGN(bool have, fill());
      if (!have) {
        failed = data_error("unexpected end of file");
        return produced > 0 ? core::Result<std::size_t>(produced) : std::unexpected(*failed);
      }
      strm.next_out = reinterpret_cast<Bytef *>(buf + produced);
      strm.avail_out = static_cast<uInt>(std::min<std::size_t>(n - produced, std::numeric_limits<uInt>::max()));
      const uInt before = strm.avail_out;
      const uInt in_before = strm.avail_in;
      const int rc = inflate(&strm, spacing > 0 ? Z_BLOCK : Z_NO_FLUSH);
      const std::size_t got = before - strm.avail_out;
      if (rc == Z_BUF_ERROR && got == 0 && strm.avail_in == in_before) {
        failed = data_error("no progress"); // never loop on a stream inflate cannot go on with
        return produced > 0 ? core::Result<std::size_t>(produced) : std::unexpected(*failed);
      }
      if (spacing > 0 && got > 0) {
        remember(buf + produced, got);
      }
      produced += got;
      out += got;
      if (pending && out - pending->out >= pending_window.size() + 258) {
        MAILDSAR_TRY(finish_point());
      }
      if (rc == Z_NEED_DICT || rc == Z_DATA_ERROR || rc == Z_MEM_ERROR || rc == Z_STREAM_ERROR) {
        failed = data_error(strm.msg != nullptr ? strm.msg : "zlib error");
        return produced > 0 ? core::Result<std::size_t>(produced) : std::unexpected(*failed);
      }
      if (rc == Z_STREAM_END) {
        if (mode == Mode::raw) {
          trailer_left = 8; // CRC-32 and size of the member, which raw inflation does not read
        } else {
          mode = Mode::between;
        }
        continue;
      }
      if (spacing > 0 && (static_cast<unsigned>(strm.data_type) & 128U) != 0 &&
          (static_cast<unsigned>(strm.data_type) & 64U) == 0 && out - last_point >= next_gap) {
        MAILDSAR_TRY(add_point());
      }
    }
    return produced;
  }

  core::Result<std::size_t> read_isal(char *buf, std::size_t n) {
    std::size_t produced = 0;
    while (produced < n && !done) {
      if (mode == Mode::between) {
        MAILDSAR_TRY_ASSIGN(bool member, member_starts(isal.next_in, isal.avail_in));
        if (!member) {
          done = true;
          break;
        }
        if (isal.avail_in >= 4 && (isal.next_in[3] & 0xE0U) != 0) {
          // Reserved FLG bits: zlib refuses such a member (RFC 1952 2.3.1), ISA-L reads on.
          return fail_after(produced, data_error("unknown gzip header flags set"));
        }
        isal_inflate_reset(&isal);
        isal.crc_flag = ISAL_GZIP; // it reads the header and checks the trailer
        mode = Mode::gzip;
        continue;
      }
      if (trailer_left > 0) {
        MAILDSAR_TRY_ASSIGN(bool whole, skip_trailer(isal.next_in, isal.avail_in));
        if (!whole) {
          return fail_after(produced, data_error("unexpected end of file"));
        }
        continue;
      }
      MAILDSAR_TRY_ASSIGN(bool have, fill(isal.next_in, isal.avail_in));
      isal.next_out = reinterpret_cast<std::uint8_t *>(buf + produced);
      isal.avail_out = static_cast<std::uint32_t>(std::min<std::size_t>(n - produced, std::numeric_limits<std::uint32_t>::max()));
      const std::uint32_t out_before = isal.avail_out;
      const std::uint32_t in_before = isal.avail_in;
      const int rc = isal_inflate(&isal);
      const std::size_t got = out_before - isal.avail_out;
      produced += got;
      out += got;
      if (rc != ISAL_DECOMP_OK) {
        return fail_after(produced, data_error(isal_message(rc)));
      }
      if (isal.block_state == ISAL_BLOCK_FINISH) {
        // The stream ended: what follows it starts at the first byte neither in the unread
        // input nor in the inflater's bit buffer (read again from there).
        const std::uint64_t buffered = static_cast<std::uint64_t>(std::max(isal.read_in_length, 0)) / 8U;
        file_pos -= std::min<std::uint64_t>(file_pos, isal.avail_in + buffered);
        isal.avail_in = 0;
        file_end = false;
        if (mode == Mode::raw) {
          trailer_left = 8; // CRC-32 and size of the member, which raw inflation does not read
        } else {
          mode = Mode::between;
        }
        continue;
      }
      if (got == 0 && isal.avail_in == in_before) {
        // never loop on a stream the inflater cannot go on with
        return fail_after(produced, data_error(have ? "no progress" : "unexpected end of file"));
      }
    }
    return produced;
  }
};

Reader::Reader(std::unique_ptr<State> state) : m_state(std::move(state)) {}
Reader::Reader(Reader &&) noexcept = default;
Reader &Reader::operator=(Reader &&) noexcept = default;
Reader::~Reader() = default;

core::Result<Reader> Reader::open(core::Fd fd, std::string path) {
  auto s = std::make_unique<State>();
  s->fd = std::move(fd);
  s->path = std::move(path);
  if (inflateInit2(&s->strm, 15 + 16) != Z_OK) {
    return core::fail(core::ErrorCode::internal, "maillog " + s->path + ": inflateInit2 failed");
  }
  s->initialised = true;
  return Reader(std::move(s));
}

core::Result<std::size_t> Reader::read(char *buf, std::size_t n) { return m_state->read(buf, n); }

void Reader::record_points(std::uint64_t spacing, std::uint64_t per_window_byte) {
  m_state->spacing = spacing;
  m_state->per_window_byte = per_window_byte;
  m_state->next_gap = spacing;
  m_state->last_point = m_state->out;
}

Index Reader::take_index() {
  if (m_state->pending && !m_state->finish_point()) {
    m_state->pending.reset(); // its window could not be deflated: the point is left out
  }
  Index index = std::move(m_state->index);
  m_state->index = Index{};
  if (auto st = core::fstat_fd(m_state->fd.get(), m_state->path)) {
    index.compressed_size = st->size;
  } else {
    index.points.clear(); // cannot say which file they are of: none
  }
  return index;
}

core::Status Reader::restart_at(const Point &point) {
  State &s = *m_state;
  std::string dict;
  MAILDSAR_TRY(inflate_window(point, s.isal, dict));
  return s.restart(point, std::move(dict));
}

std::uint64_t Reader::position() const { return m_state->out; }
int Reader::fd() const { return m_state->fd.get(); }

} // namespace maildsar::connectors::gz
