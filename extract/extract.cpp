// SPDX-License-Identifier: GPL-3.0-or-later
// Format detection, the bounded output, the recursion over archives (zip members, gzip) and the
// dispatch to the format readers (pdf.cpp, office.cpp, rtf.cpp, tnef.cpp). See extract.hpp.
#include "extract/extract.hpp"

#include "extract/text_sink.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace maildsar::extract {

namespace {

bool looks_binary(std::string_view bytes) {
  const std::string_view head = bytes.substr(0, 4096);
  return head.find('\0') != std::string_view::npos;
}

core::Status extract_gzip(detail::Context &ctx, std::string_view bytes, std::uint32_t depth) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
    return core::fail(core::ErrorCode::data, "gzip: cannot initialise zlib");
  }
  std::string inflated;
  std::array<char, 65536> buffer{};
  z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(bytes.data()));
  z.avail_in = static_cast<uInt>(std::min<std::size_t>(bytes.size(), UINT32_MAX));
  int rc = Z_OK;
  bool capped = false;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef *>(buffer.data());
    z.avail_out = static_cast<uInt>(buffer.size());
    rc = inflate(&z, Z_NO_FLUSH);
    const std::size_t got = buffer.size() - z.avail_out;
    if (got > ctx.inflated_left) {
      inflated.append(buffer.data(), static_cast<std::size_t>(ctx.inflated_left));
      ctx.inflated_left = 0;
      capped = true;
      break;
    }
    ctx.inflated_left -= got;
    inflated.append(buffer.data(), got);
    if (rc == Z_BUF_ERROR && z.avail_in == 0) {
      break; // truncated input: keep what was inflated
    }
  }
  inflateEnd(&z);
  if (capped) {
    ctx.warn(fmt::format("gzip: decompressed data exceeds the limit of {} bytes; the rest is not read",
                         ctx.limits.max_inflated_bytes));
    ctx.out.truncated = true;
  } else if (rc != Z_STREAM_END && inflated.empty()) {
    return core::fail(core::ErrorCode::data, "gzip: not a gzip stream or corrupt");
  } else if (rc != Z_STREAM_END) {
    ctx.warn("gzip: truncated or corrupt; the part decompressed is read");
  }
  Format inner = detect(inflated, "", "");
  if (inner == Format::none && !looks_binary(inflated)) {
    inner = Format::text;
  }
  if (inner == Format::none) {
    ctx.warn("gzip: the decompressed file is of no format text is extracted from");
    return {};
  }
  return detail::extract_into(ctx, inner, inflated, depth + 1);
}

} // namespace

namespace {
MessageDecoder g_message_decoder = nullptr;
} // namespace

void set_message_decoder(MessageDecoder decoder) { g_message_decoder = decoder; }

namespace detail {

std::string to_utf8(std::string_view bytes) {
  // Valid UTF-8 is kept; anything else is read as windows-1252 (Latin-1 for C1 bytes).
  std::size_t i = 0;
  bool valid = true;
  while (i < bytes.size() && valid) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > bytes.size()) {
      valid = false;
      break;
    }
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(bytes[i + k]) & 0xC0U) != 0x80U) {
        valid = false;
      }
    }
    i += n;
  }
  if (valid) {
    return std::string(bytes);
  }
  static constexpr std::array<char16_t, 32> k_cp1252{
      0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
      0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 4);
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    const unsigned cp = c >= 0x80 && c < 0xA0 ? k_cp1252[c - 0x80] : c;
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

bool append_bounded(std::string &out, std::string_view s, std::uint64_t max) {
  if (out.size() >= max) {
    return s.empty();
  }
  const std::uint64_t room = max - out.size();
  if (s.size() <= room) {
    out.append(s);
    return true;
  }
  auto keep = static_cast<std::size_t>(room);
  while (keep > 0 && (static_cast<unsigned char>(s[keep]) & 0xC0U) == 0x80U) {
    --keep; // do not cut a UTF-8 sequence
  }
  out.append(s.substr(0, keep));
  return false;
}

void Context::add(std::string_view text) {
  if (full) {
    return;
  }
  if (!append_bounded(out.text, text, limits.max_text_bytes)) {
    full = true;
    out.truncated = true;
    warn(fmt::format("text cut at the limit of {} bytes", limits.max_text_bytes));
  }
}

void Context::warn(std::string message) {
  if (out.warnings.size() < 20) {
    out.warnings.push_back(std::move(message));
  }
}

core::Status extract_into(Context &ctx, Format format, std::string_view bytes, std::uint32_t depth) {
  if (ctx.full) {
    return {};
  }
  switch (format) {
  case Format::pdf:
    return extract_pdf(ctx, bytes);
  case Format::ooxml:
  case Format::odf:
  case Format::zip:
    if (depth > ctx.limits.max_depth) {
      ctx.warn(fmt::format("archives nested deeper than {} levels; the inner one is not read", ctx.limits.max_depth));
      ctx.out.truncated = true;
      return {};
    }
    return format == Format::zip ? extract_zip(ctx, bytes, depth) : extract_office(ctx, format, bytes);
  case Format::gzip:
  case Format::tnef:
    if (depth > ctx.limits.max_depth) {
      ctx.warn(fmt::format("archives nested deeper than {} levels; the inner one is not read", ctx.limits.max_depth));
      ctx.out.truncated = true;
      return {};
    }
    return format == Format::gzip ? extract_gzip(ctx, bytes, depth) : extract_tnef(ctx, bytes, depth);
  case Format::message: {
    if (depth > ctx.limits.max_depth) {
      ctx.warn(fmt::format("archives nested deeper than {} levels; the inner one is not read", ctx.limits.max_depth));
      ctx.out.truncated = true;
      return {};
    }
    if (g_message_decoder == nullptr) {
      return extract_into(ctx, Format::text, bytes, depth);
    }
    auto text = g_message_decoder(bytes, ctx.limits.max_text_bytes + 1);
    if (!text) {
      // Not a message after all: its text as written, as for any text file.
      return extract_into(ctx, Format::text, bytes, depth);
    }
    ctx.add(*text);
    ctx.add("\n");
    return {};
  }
  case Format::rtf: {
    std::string text = rtf_to_text(bytes, ctx.limits.max_text_bytes + 1);
    ctx.add(text);
    return {};
  }
  case Format::text:
    if (looks_binary(bytes)) {
      return core::fail(core::ErrorCode::data, "binary data in a text file");
    }
    ctx.add(to_utf8(bytes));
    return {};
  case Format::none:
    break;
  }
  return core::fail(core::ErrorCode::data, "no text is extracted from this kind of file");
}

} // namespace detail

core::Result<Extracted> extract_text(Format format, std::string_view bytes, const Limits &limits) {
  detail::Context ctx(limits);
  MAILDSAR_TRY(detail::extract_into(ctx, format, bytes, 0));
  return std::move(ctx.out);
}

core::Result<Extracted> extract_any(std::string_view bytes, std::string_view mime_type, std::string_view name,
                                    const Limits &limits) {
  return extract_text(detect(bytes, mime_type, name), bytes, limits);
}

} // namespace maildsar::extract
