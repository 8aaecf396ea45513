// SPDX-License-Identifier: GPL-3.0-or-later
// Text decoding for the MIME decoder: bytes of any charset to valid UTF-8 (iconv, with
// fallbacks) and header values to text (unfolding, RFC 2047 encoded words).
#include "connectors/mime/mime_internal.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace maildsar::connectors::mime::detail {

void append_code_point(std::string &out, std::uint32_t code_point) {
  if (code_point == 0 || code_point > 0x10FFFFU || (code_point >= 0xD800U && code_point <= 0xDFFFU)) {
    code_point = 0xFFFDU;
  }
  std::array<gchar, 8> buffer{};
  const gint length = g_unichar_to_utf8(static_cast<gunichar>(code_point), buffer.data());
  out.append(buffer.data(), static_cast<std::size_t>(length));
}

bool looks_binary(std::string_view bytes) {
  const std::string_view head = bytes.substr(0, std::min(bytes.size(), k_binary_sniff_bytes));
  std::size_t control = 0;
  for (const char c : head) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == 0) {
      return true;
    }
    if (byte < 0x20 && byte != '\t' && byte != '\n' && byte != '\r' && byte != '\f' &&
        byte != 0x1B) {
      ++control;
    }
  }
  return !head.empty() && control * 10 > head.size();
}

// ---------------------------------------------------------------------------------------------
// UTF-8 and charsets

std::string valid_utf8(std::string_view text) {
  std::string out(text);
  std::replace(out.begin(), out.end(), '\0', ' ');
  if (g_utf8_validate(out.data(), static_cast<gssize>(out.size()), nullptr) == TRUE) {
    return out;
  }
  const GCharPtr fixed{g_utf8_make_valid(out.data(), static_cast<gssize>(out.size()))};
  return to_std_string(fixed.get());
}

namespace {

/** Every byte as its ISO-8859-1 code point: cannot fail. */
std::string latin1_to_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 4);
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x80) {
      out.push_back(byte == 0 ? ' ' : c);
    } else {
      append_code_point(out, byte);
    }
  }
  return out;
}

/** RAII for a GIConv descriptor. */
class IconvHandle {
public:
  explicit IconvHandle(const char *from) : m_cd(g_iconv_open("UTF-8", from)) {}
  ~IconvHandle() {
    if (valid()) {
      g_iconv_close(m_cd);
    }
  }
  IconvHandle(const IconvHandle &) = delete;
  IconvHandle &operator=(const IconvHandle &) = delete;
  [[nodiscard]] bool valid() const { return m_cd != reinterpret_cast<GIConv>(-1); }
  [[nodiscard]] GIConv get() const { return m_cd; }

private:
  GIConv m_cd;
};

struct Converted {
  std::string text;
  std::size_t replaced = 0; // input bytes that could not be converted
};

/** Converts with iconv, replacing each invalid input byte by U+FFFD. */
Converted iconv_lossy(GIConv cd, std::string_view bytes) {
  Converted result;
  std::string &out = result.text;
  out.resize(bytes.size() * 2 + 16);
  gchar *in = const_cast<gchar *>(bytes.data());
  gsize in_left = bytes.size();
  gchar *out_ptr = out.data();
  gsize out_left = out.size();
  const auto grow = [&](std::size_t at_least) {
    const auto used = static_cast<std::size_t>(out_ptr - out.data());
    out.resize(std::max(out.size() * 2, used + at_least + 16));
    out_ptr = out.data() + used;
    out_left = out.size() - used;
  };
  const auto put_replacement = [&] {
    if (out_left < 3) {
      grow(3);
    }
    const std::string_view fffd = "\xEF\xBF\xBD";
    std::copy(fffd.begin(), fffd.end(), out_ptr);
    out_ptr += 3;
    out_left -= 3;
    ++result.replaced;
  };
  const gsize failure = static_cast<gsize>(-1);
  while (in_left > 0) {
    if (g_iconv(cd, &in, &in_left, &out_ptr, &out_left) != failure) {
      break;
    }
    const int error = errno;
    if (error == E2BIG) {
      grow(in_left * 2);
    } else if (error == EILSEQ) {
      put_replacement();
      ++in;
      --in_left;
    } else { // EINVAL: incomplete sequence at the end
      put_replacement();
      in_left = 0;
    }
  }
  // Flush stateful encodings (ISO-2022-JP returns to ASCII).
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (g_iconv(cd, nullptr, nullptr, &out_ptr, &out_left) != failure || errno != E2BIG) {
      break;
    }
    grow(16);
  }
  out.resize(static_cast<std::size_t>(out_ptr - out.data()));
  return result;
}

bool is_utf8_name(std::string_view charset) {
  return charset.empty() || iequals(charset, "utf-8") || iequals(charset, "utf8") ||
         iequals(charset, "us-ascii") || iequals(charset, "ascii") || iequals(charset, "unicode-1-1-utf-8");
}

} // namespace

std::string fallback_to_utf8(std::string_view bytes) {
  if (g_utf8_validate(bytes.data(), static_cast<gssize>(bytes.size()), nullptr) == TRUE) {
    return std::string(bytes);
  }
  const IconvHandle cd("WINDOWS-1252");
  if (cd.valid()) {
    return valid_utf8(iconv_lossy(cd.get(), bytes).text);
  }
  return latin1_to_utf8(bytes);
}

std::string to_utf8(std::string_view bytes, std::string_view charset, std::string *problem) {
  const std::string name(trim(charset));
  if (is_utf8_name(name)) {
    if (g_utf8_validate(bytes.data(), static_cast<gssize>(bytes.size()), nullptr) == TRUE) {
      return valid_utf8(bytes);
    }
    if (problem != nullptr && !name.empty() && !iequals(name, "us-ascii") && !iequals(name, "ascii")) {
      *problem = "invalid UTF-8 in a part declared " + name + ", decoded as windows-1252";
    }
    return valid_utf8(fallback_to_utf8(bytes));
  }
  const char *iconv_name = g_mime_charset_iconv_name(name.c_str());
  const IconvHandle cd(iconv_name != nullptr ? iconv_name : name.c_str());
  if (!cd.valid()) {
    if (problem != nullptr) {
      *problem = "unknown charset \"" + valid_utf8(name.substr(0, 64)) + "\", text guessed";
    }
    return valid_utf8(fallback_to_utf8(bytes));
  }
  Converted converted = iconv_lossy(cd.get(), bytes);
  if (converted.replaced > 0 && problem != nullptr) {
    *problem = "invalid bytes for charset " + valid_utf8(name.substr(0, 64)) + " replaced";
  }
  return valid_utf8(converted.text);
}

// ---------------------------------------------------------------------------------------------
// RFC 2047 encoded words. GMime 3.2 joins adjacent encoded words before decoding them, which
// loses text when a base64 word ends in padding (GMime #133): "=?UTF-8?B?QWxpY2U=?=
// =?UTF-8?B?IFNtaXRo?=" decodes to "Alice". We decode each word on its own and join the bytes
// of adjacent words of one charset (so a character split across words survives).

namespace {

std::string decode_q(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '_') {
      out.push_back(' ');
    } else if (c == '=' && i + 2 < text.size() && is_hex(text[i + 1]) && is_hex(text[i + 2])) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

} // namespace

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+' || c == '-') {
    return 62;
  }
  if (c == '/' || c == '_') {
    return 63;
  }
  return -1;
}

namespace {

/** Lenient base64: skips padding and anything that is not in the alphabet. */
std::string decode_b(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 3 / 4 + 3);
  std::uint32_t bits = 0;
  int count = 0;
  for (const char c : text) {
    if (c == '=') {
      break;
    }
    const int value = base64_value(c);
    if (value < 0) {
      continue;
    }
    bits = (bits << 6U) | static_cast<std::uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> static_cast<unsigned>(count)) & 0xFFU));
    }
  }
  return out;
}

struct EncodedWord {
  std::size_t begin = 0; // offset of "=?"
  std::size_t end = 0;   // one past "?="
  std::string charset;
  std::string bytes; // decoded, still in `charset`
};

/** Parses an encoded word starting at `pos` (which points at "=?"). */
std::optional<EncodedWord> parse_encoded_word(std::string_view text, std::size_t pos) {
  const std::size_t charset_end = text.find('?', pos + 2);
  if (charset_end == std::string_view::npos || charset_end == pos + 2 || charset_end - pos > 80) {
    return std::nullopt;
  }
  if (charset_end + 3 > text.size() || text[charset_end + 2] != '?') {
    return std::nullopt;
  }
  const char encoding = ascii_lower(text[charset_end + 1]);
  if (encoding != 'q' && encoding != 'b') {
    return std::nullopt;
  }
  const std::size_t payload = charset_end + 3;
  std::size_t close = text.find("?=", payload);
  std::size_t word_end = close == std::string_view::npos ? close : close + 2;
  // A word without "?=", or one that runs into the next word or over a line break, was not
  // terminated ("=?utf-8?Q?J=C3=B6rg <jb@example.de>"): a tolerant reader ends it at the next
  // white space (Q and B text hold none). A terminated word that holds specials ('<', ',': a
  // whole address list in one word) is decoded as it is.
  const std::string_view span =
      text.substr(payload, close == std::string_view::npos ? std::string_view::npos : close - payload);
  if (close == std::string_view::npos || span.find("=?") != std::string_view::npos ||
      span.find_first_of("\r\n") != std::string_view::npos) {
    close = std::min(text.find_first_of(" \t\r\n", payload), text.size());
    word_end = close;
    if (close == payload) {
      return std::nullopt;
    }
  }
  const std::string_view encoded = text.substr(payload, close - payload);
  std::string_view charset = text.substr(pos + 2, charset_end - pos - 2);
  if (const std::size_t star = charset.find('*'); star != std::string_view::npos) {
    charset = charset.substr(0, star); // RFC 2231 language suffix
  }
  if (charset.find_first_of(" \t\"<>,;") != std::string_view::npos) {
    return std::nullopt;
  }
  EncodedWord word;
  word.begin = pos;
  word.end = word_end;
  word.charset = std::string(charset);
  word.bytes = encoding == 'q' ? decode_q(encoded) : decode_b(encoded);
  return word;
}

} // namespace

std::string unfold(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '\r' || c == '\n') {
      const bool continued = i + 1 < raw.size() && (raw[i + 1] == ' ' || raw[i + 1] == '\t');
      const bool crlf = c == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n';
      if (!continued && !crlf) {
        out.push_back(' ');
      }
      continue;
    }
    out.push_back(c);
  }
  return out;
}

namespace {

/** One run of encoded words separated only by whitespace, decoded to UTF-8. */
struct DecodedRun {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string utf8;
};

/**
 * An encoded word's bytes as UTF-8. A wrong label is common: words labelled ISO-8859-x,
 * windows-125x or US-ASCII that hold valid multi-byte UTF-8 are read as UTF-8, as mail readers do.
 */
std::string word_to_utf8(std::string_view bytes, std::string_view charset) {
  const bool single_byte_label = istarts_with(charset, "iso-8859") || istarts_with(charset, "iso8859") ||
                                 istarts_with(charset, "windows-125") || istarts_with(charset, "cp125") ||
                                 iequals(charset, "latin1") || iequals(charset, "us-ascii");
  const bool multibyte = std::any_of(bytes.begin(), bytes.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0x80U) != 0;
  });
  if (single_byte_label && multibyte &&
      g_utf8_validate(bytes.data(), static_cast<gssize>(bytes.size()), nullptr) == TRUE) {
    return valid_utf8(bytes);
  }
  return to_utf8(bytes, charset);
}

/** Finds the runs of adjacent encoded words in `text` and decodes each run. */
std::vector<DecodedRun> decode_runs(std::string_view text) {
  std::vector<DecodedRun> runs;
  std::size_t pos = 0;
  while ((pos = text.find("=?", pos)) != std::string_view::npos) {
    std::optional<EncodedWord> word = parse_encoded_word(text, pos);
    if (!word) {
      pos += 2;
      continue;
    }
    DecodedRun run;
    run.begin = word->begin;
    std::string charset = word->charset;
    std::string pending = std::move(word->bytes);
    std::size_t end = word->end;
    while (true) {
      std::size_t next = end;
      while (next < text.size() && is_space(text[next])) {
        ++next;
      }
      if (next + 1 >= text.size() || text[next] != '=' || text[next + 1] != '?') {
        break;
      }
      std::optional<EncodedWord> following = parse_encoded_word(text, next);
      if (!following) {
        break;
      }
      if (iequals(following->charset, charset)) {
        pending += following->bytes;
      } else {
        run.utf8 += word_to_utf8(pending, charset);
        charset = following->charset;
        pending = std::move(following->bytes);
      }
      end = following->end;
    }
    run.utf8 += word_to_utf8(pending, charset);
    run.end = end;
    pos = end;
    runs.push_back(std::move(run));
  }
  return runs;
}

} // namespace

std::string decode_header_text(std::string_view raw) {
  const std::string unfolded = unfold(raw);
  const std::string_view text = trim(unfolded);
  const std::vector<DecodedRun> runs = decode_runs(text);
  std::string out;
  std::size_t at = 0;
  for (const DecodedRun &run : runs) {
    out += fallback_to_utf8(text.substr(at, run.begin - at));
    out += run.utf8;
    at = run.end;
  }
  out += fallback_to_utf8(text.substr(at));
  return valid_utf8(out);
}

std::string merge_encoded_words(std::string_view raw) {
  if (raw.find("=?") == std::string_view::npos) {
    return std::string(raw);
  }
  const std::vector<DecodedRun> runs = decode_runs(raw);
  std::string out;
  out.reserve(raw.size() + 16);
  std::size_t at = 0;
  for (const DecodedRun &run : runs) {
    out.append(raw.substr(at, run.begin - at));
    const GCharPtr encoded{g_base64_encode(reinterpret_cast<const guchar *>(run.utf8.data()),
                                           run.utf8.size())};
    out += "=?UTF-8?B?";
    out += to_std_string(encoded.get());
    out += "?=";
    at = run.end;
  }
  out.append(raw.substr(at));
  return out;
}

} // namespace maildsar::connectors::mime::detail
