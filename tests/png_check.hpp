// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// How many colours a PNG screenshot or page rendering holds (a blank page has one): enough of a
// PNG reader for what pdftoppm and Chromium write (8-bit greyscale, RGB or RGBA, not
// interlaced), with zlib. For the tests only.

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace maildsar::test {

struct PngColours {
  std::uint32_t width = 0;
  std::uint32_t height = 0;
  std::size_t distinct = 0; // distinct pixel values (counting stops at 1000)
};

inline std::uint32_t png_be32(std::string_view b, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

/** nullopt when `png` is not a PNG this reader understands. */
inline std::optional<PngColours> png_colours(std::string_view png) {
  if (png.size() < 33 || png.substr(0, 8) != std::string_view("\x89PNG\r\n\x1a\n", 8)) {
    return std::nullopt;
  }
  PngColours out;
  std::size_t channels = 0;
  std::string idat;
  std::size_t at = 8;
  while (at + 12 <= png.size()) {
    const std::uint32_t length = png_be32(png, at);
    const std::string_view type = png.substr(at + 4, 4);
    if (at + 12 + length > png.size()) {
      return std::nullopt;
    }
    const std::string_view data = png.substr(at + 8, length);
    if (type == "IHDR") {
      out.width = png_be32(data, 0);
      out.height = png_be32(data, 4);
      const int depth = static_cast<unsigned char>(data[8]);
      const int colour = static_cast<unsigned char>(data[9]);
      const int interlace = static_cast<unsigned char>(data[12]);
      channels = colour == 0 ? 1 : colour == 2 ? 3 : colour == 4 ? 2 : colour == 6 ? 4 : 0;
      if (depth != 8 || channels == 0 || interlace != 0) {
        return std::nullopt;
      }
    } else if (type == "IDAT") {
      idat.append(data);
    }
    at += 12 + length;
  }
  const std::size_t stride = out.width * channels;
  std::string raw((stride + 1) * out.height, '\0');
  uLongf raw_size = static_cast<uLongf>(raw.size());
  if (channels == 0 || uncompress(reinterpret_cast<Bytef *>(raw.data()), &raw_size,
                                  reinterpret_cast<const Bytef *>(idat.data()), static_cast<uLong>(idat.size())) != Z_OK ||
      raw_size != raw.size()) {
    return std::nullopt;
  }
  std::string prev(stride, '\0');
  std::string row(stride, '\0');
  std::set<std::string> seen;
  for (std::uint32_t y = 0; y < out.height; ++y) {
    const char *line = raw.data() + y * (stride + 1);
    const int filter = static_cast<unsigned char>(line[0]);
    for (std::size_t x = 0; x < stride; ++x) {
      const int a = x >= channels ? static_cast<unsigned char>(row[x - channels]) : 0;
      const int b = static_cast<unsigned char>(prev[x]);
      const int c = x >= channels ? static_cast<unsigned char>(prev[x - channels]) : 0;
      int predictor = 0;
      switch (filter) {
      case 1: predictor = a; break;
      case 2: predictor = b; break;
      case 3: predictor = (a + b) / 2; break;
      case 4: {
        const int p = a + b - c;
        const int pa = std::abs(p - a);
        const int pb = std::abs(p - b);
        const int pc = std::abs(p - c);
        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        break;
      }
      default: break;
      }
      row[x] = static_cast<char>((static_cast<unsigned char>(line[1 + x]) + predictor) & 0xFF);
    }
    for (std::size_t x = 0; x + channels <= stride && seen.size() < 1000; x += channels) {
      seen.insert(row.substr(x, channels));
    }
    prev = row;
  }
  out.distinct = seen.size();
  return out;
}

} // namespace maildsar::test
