// SPDX-License-Identifier: GPL-3.0-or-later
// MIME decoding with GMime 3.2: one RFC 5322 message -> the raw evidence of an Item.
#include "connectors/mime/mime_parser.hpp"

#include "connectors/attachment_text.hpp"
#include "connectors/mime/bounded_input.hpp"
#include "connectors/mime/gobject.hpp"
#include "extract/extract.hpp"

#include <gmime/gmime.h>

#include <arpa/inet.h>

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

namespace maildsar::connectors::mime {

MimeLibrary::MimeLibrary() { g_mime_init(); }
MimeLibrary::~MimeLibrary() { g_mime_shutdown(); }

namespace {

constexpr int k_max_depth = 32;                          // MIME / attached-message nesting
constexpr std::size_t k_max_text_bytes = 16U << 20U;     // extracted text per item
constexpr std::size_t k_max_warnings = 32;               // distinct warnings per item
constexpr std::size_t k_binary_sniff_bytes = 64U << 10U; // how much we look at for NULs

// ---------------------------------------------------------------------------------------------
// Small string helpers

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(),
                    [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

bool istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

bool iends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && iequals(text.substr(text.size() - suffix.size()), suffix);
}

std::size_t ifind(std::string_view haystack, std::string_view needle, std::size_t from = 0) {
  if (needle.empty() || haystack.size() < needle.size()) {
    return std::string_view::npos;
  }
  for (std::size_t i = from; i + needle.size() <= haystack.size(); ++i) {
    if (iequals(haystack.substr(i, needle.size()), needle)) {
      return i;
    }
  }
  return std::string_view::npos;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_space(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

void append_code_point(std::string &out, std::uint32_t code_point) {
  if (code_point == 0 || code_point > 0x10FFFFU || (code_point >= 0xD800U && code_point <= 0xDFFFU)) {
    code_point = 0xFFFDU;
  }
  std::array<gchar, 8> buffer{};
  const gint length = g_unichar_to_utf8(static_cast<gunichar>(code_point), buffer.data());
  out.append(buffer.data(), static_cast<std::size_t>(length));
}

/** True when the bytes look like binary data rather than text (NULs near the start). */
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

/** `text` as valid UTF-8: NULs become spaces, invalid sequences U+FFFD. */
std::string valid_utf8(std::string_view text) {
  std::string out(text);
  std::replace(out.begin(), out.end(), '\0', ' ');
  if (g_utf8_validate(out.data(), static_cast<gssize>(out.size()), nullptr) == TRUE) {
    return out;
  }
  const GCharPtr fixed{g_utf8_make_valid(out.data(), static_cast<gssize>(out.size()))};
  return to_std_string(fixed.get());
}

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

/** Bytes of unknown charset: UTF-8 when they are valid UTF-8, else windows-1252. */
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

/**
 * Converts `bytes` in `charset` (a MIME charset name; empty = unknown) to valid UTF-8. Never
 * fails: unknown charsets and invalid sequences fall back as in fallback_to_utf8. `problem` is
 * set to a short description when the conversion was lossy or guessed.
 */
std::string to_utf8(std::string_view bytes, std::string_view charset, std::string *problem = nullptr) {
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

/** Unfolds a raw header value: line breaks go, the whitespace after them stays. */
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

/** Decodes an unstructured header value (Subject, ...) to UTF-8, RFC 2047 included. */
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

/**
 * Rewrites each run of adjacent encoded words in an address header as one UTF-8 base64 word
 * that GMime decodes correctly (works around GMime #133 without re-implementing RFC 5322
 * address parsing). Everything else is left as written.
 */
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

// ---------------------------------------------------------------------------------------------
// IP literals in Received and similar headers

bool is_ip_token_char(char c) { return is_hex(c) || c == ':' || c == '.'; }

std::optional<std::string> ip_from_token(std::string_view token) {
  while (!token.empty() && token.back() == '.') {
    token.remove_suffix(1);
  }
  if (token.size() < 2 || token.size() > 45) {
    return std::nullopt;
  }
  const std::string candidate(token);
  std::array<unsigned char, 16> buffer{};
  if (candidate.find(':') != std::string::npos) {
    if (std::count(candidate.begin(), candidate.end(), ':') < 2 ||
        std::none_of(candidate.begin(), candidate.end(), [](char c) { return is_hex(c); })) {
      return std::nullopt;
    }
    if (inet_pton(AF_INET6, candidate.c_str(), buffer.data()) == 1) {
      return candidate;
    }
    return std::nullopt;
  }
  if (std::count(candidate.begin(), candidate.end(), '.') != 3 ||
      !std::all_of(candidate.begin(), candidate.end(),
                   [](char c) { return c == '.' || (c >= '0' && c <= '9'); })) {
    return std::nullopt;
  }
  if (inet_pton(AF_INET, candidate.c_str(), buffer.data()) == 1) {
    return candidate;
  }
  return std::nullopt;
}

/** Every IPv4/IPv6 literal in `text` ("[203.0.113.45]", "[IPv6:2001:db8::1]", bare ones). */
std::vector<std::string> scan_ips(std::string_view text) {
  std::vector<std::string> ips;
  std::size_t i = 0;
  while (i < text.size()) {
    if (istarts_with(text.substr(i), "ipv6:") && (i == 0 || !is_alnum(text[i - 1]))) {
      i += 5;
    } else if (!is_ip_token_char(text[i]) || (i > 0 && is_alnum(text[i - 1]))) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && is_ip_token_char(text[j])) {
      ++j;
    }
    const bool bounded = j >= text.size() || !is_alnum(text[j]);
    if (bounded && j > i) {
      if (std::optional<std::string> ip = ip_from_token(text.substr(i, j - i))) {
        if (std::find(ips.begin(), ips.end(), *ip) == ips.end()) {
          ips.push_back(std::move(*ip));
        }
      }
    }
    i = std::max(j, i + 1);
  }
  return ips;
}

// ---------------------------------------------------------------------------------------------
// HTML to text

struct NamedEntity {
  std::string_view name;
  std::uint32_t code_point;
};

// ISO-8859-1 entities, U+00A0 .. U+00FF, in order.
constexpr std::array<std::string_view, 96> k_latin1_entities{
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",
    "uml",    "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",
    "deg",    "plusmn", "sup2",   "sup3",   "acute",  "micro",  "para",   "middot",
    "cedil",  "sup1",   "ordm",   "raquo",  "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc",  "Atilde", "Auml",   "Aring",  "AElig",  "Ccedil",
    "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave", "Iacute", "Icirc",  "Iuml",
    "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde", "Ouml",   "times",
    "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",  "szlig",
    "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",
    "eth",    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide",
    "oslash", "ugrave", "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml",
};

constexpr std::array k_other_entities{
    NamedEntity{"amp", 38},       NamedEntity{"lt", 60},        NamedEntity{"gt", 62},
    NamedEntity{"quot", 34},      NamedEntity{"apos", 39},      NamedEntity{"commat", 64},
    NamedEntity{"OElig", 338},    NamedEntity{"oelig", 339},    NamedEntity{"Scaron", 352},
    NamedEntity{"scaron", 353},   NamedEntity{"Yuml", 376},     NamedEntity{"fnof", 402},
    NamedEntity{"circ", 710},     NamedEntity{"tilde", 732},    NamedEntity{"ensp", 8194},
    NamedEntity{"emsp", 8195},    NamedEntity{"thinsp", 8201},  NamedEntity{"zwnj", 8204},
    NamedEntity{"zwj", 8205},     NamedEntity{"lrm", 8206},     NamedEntity{"rlm", 8207},
    NamedEntity{"ndash", 8211},   NamedEntity{"mdash", 8212},   NamedEntity{"lsquo", 8216},
    NamedEntity{"rsquo", 8217},   NamedEntity{"sbquo", 8218},   NamedEntity{"ldquo", 8220},
    NamedEntity{"rdquo", 8221},   NamedEntity{"bdquo", 8222},   NamedEntity{"dagger", 8224},
    NamedEntity{"Dagger", 8225},  NamedEntity{"bull", 8226},    NamedEntity{"hellip", 8230},
    NamedEntity{"permil", 8240},  NamedEntity{"lsaquo", 8249},  NamedEntity{"rsaquo", 8250},
    NamedEntity{"euro", 8364},    NamedEntity{"trade", 8482},   NamedEntity{"AMP", 38},
    NamedEntity{"LT", 60},        NamedEntity{"GT", 62},        NamedEntity{"QUOT", 34},
};

std::optional<std::uint32_t> named_entity(std::string_view name) {
  for (std::size_t i = 0; i < k_latin1_entities.size(); ++i) {
    if (k_latin1_entities[i] == name) {
      return static_cast<std::uint32_t>(0xA0U + i);
    }
  }
  for (const NamedEntity &entity : k_other_entities) {
    if (entity.name == name) {
      return entity.code_point;
    }
  }
  return std::nullopt;
}

/**
 * Decodes the character reference at `text[pos]` ('&'). Appends the character to `out` and
 * returns the number of bytes consumed, or 0 when it is not a reference.
 */
std::size_t decode_entity(std::string_view text, std::size_t pos, std::string &out) {
  std::size_t i = pos + 1;
  if (i < text.size() && text[i] == '#') {
    ++i;
    const bool hex = i < text.size() && (text[i] == 'x' || text[i] == 'X');
    if (hex) {
      ++i;
    }
    const std::size_t digits_begin = i;
    std::uint32_t value = 0;
    while (i < text.size() && (hex ? is_hex(text[i]) : (text[i] >= '0' && text[i] <= '9')) &&
           i - digits_begin < 8) {
      value = value * (hex ? 16U : 10U) + static_cast<std::uint32_t>(hex_value(text[i]));
      ++i;
    }
    if (i == digits_begin) {
      return 0;
    }
    if (i < text.size() && text[i] == ';') {
      ++i;
    }
    append_code_point(out, value == 0xA0U ? 0x20U : value);
    return i - pos;
  }
  const std::size_t name_begin = i;
  while (i < text.size() && is_alnum(text[i]) && i - name_begin < 32) {
    ++i;
  }
  if (i == name_begin) {
    return 0;
  }
  const std::optional<std::uint32_t> code_point = named_entity(text.substr(name_begin, i - name_begin));
  if (!code_point) {
    return 0;
  }
  if (i < text.size() && text[i] == ';') {
    ++i;
  }
  append_code_point(out, *code_point == 0xA0U ? 0x20U : *code_point);
  return i - pos;
}

std::string decode_entities(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '&') {
      if (const std::size_t used = decode_entity(text, i, out); used > 0) {
        i += used - 1;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

constexpr std::array<std::string_view, 22> k_inline_tags{
    "a",    "abbr", "b",     "big",  "cite", "code", "em",     "font", "i",   "label", "mark",
    "q",    "s",    "small", "span", "strike", "strong", "sub", "sup", "tt",  "u",     "wbr"};

constexpr std::array<std::string_view, 5> k_skipped_tags{"script", "style", "head", "noscript",
                                                          "template"};

/** The value of attribute `name` in a tag's text (entities decoded), if present. */
std::optional<std::string> attribute(std::string_view tag, std::string_view name) {
  std::size_t pos = 0;
  while ((pos = ifind(tag, name, pos)) != std::string_view::npos) {
    const bool starts = pos > 0 && (is_space(tag[pos - 1]) || tag[pos - 1] == '"' || tag[pos - 1] == '\'');
    std::size_t i = pos + name.size();
    while (i < tag.size() && is_space(tag[i])) {
      ++i;
    }
    if (!starts || i >= tag.size() || tag[i] != '=') {
      pos += name.size();
      continue;
    }
    ++i;
    while (i < tag.size() && is_space(tag[i])) {
      ++i;
    }
    if (i >= tag.size()) {
      return std::nullopt;
    }
    std::size_t end = 0;
    if (tag[i] == '"' || tag[i] == '\'') {
      end = tag.find(tag[i], i + 1);
      ++i;
    } else {
      end = i;
      while (end < tag.size() && !is_space(tag[end]) && tag[end] != '>') {
        ++end;
      }
    }
    if (end == std::string_view::npos) {
      end = tag.size();
    }
    return decode_entities(tag.substr(i, end - i));
  }
  return std::nullopt;
}

/** Finds the '>' closing a tag that starts at `pos`, skipping quoted attribute values. */
std::size_t tag_end(std::string_view html, std::size_t pos) {
  char quote = 0;
  for (std::size_t i = pos + 1; i < html.size(); ++i) {
    const char c = html[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      }
    } else if (c == '"' || c == '\'') {
      // Only a quote right after '=' opens a value; stray quotes in broken HTML do not.
      std::size_t k = i;
      while (k > pos && is_space(html[k - 1])) {
        --k;
      }
      if (k > pos && html[k - 1] == '=') {
        quote = c;
      }
    } else if (c == '>') {
      return i;
    }
  }
  return std::string_view::npos;
}

/** Collapses whitespace: runs with a newline become one newline, others one space. */
std::string collapse_whitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_space(text[i])) {
      out.push_back(text[i]);
      ++i;
      continue;
    }
    bool newline = false;
    while (i < text.size() && is_space(text[i])) {
      newline = newline || text[i] == '\n';
      ++i;
    }
    if (!out.empty() && i < text.size()) {
      out.push_back(newline ? '\n' : ' ');
    }
  }
  return out;
}

/**
 * HTML to plain text: tags dropped (block tags become line breaks), script/style/head content
 * dropped, comments dropped, character references decoded, and mailto:/tel: link targets kept
 * as text (they are identities even when the link text is not).
 */
std::string html_to_text(std::string_view html) {
  std::string out;
  out.reserve(html.size() / 2);
  std::size_t i = 0;
  while (i < html.size()) {
    const char c = html[i];
    if (c == '&') {
      if (const std::size_t used = decode_entity(html, i, out); used > 0) {
        i += used;
        continue;
      }
      out.push_back(c);
      ++i;
      continue;
    }
    if (c != '<') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (html.substr(i, 4) == "<!--") {
      const std::size_t close = html.find("-->", i + 4);
      i = close == std::string_view::npos ? html.size() : close + 3;
      continue;
    }
    std::size_t name_begin = i + 1;
    const bool closing = name_begin < html.size() && html[name_begin] == '/';
    if (closing) {
      ++name_begin;
    }
    std::size_t name_end = name_begin;
    while (name_end < html.size() && (is_alnum(html[name_end]) || html[name_end] == '-' ||
                                      html[name_end] == ':')) {
      ++name_end;
    }
    const bool markup = name_end > name_begin || (name_begin < html.size() &&
                                                   (html[name_begin] == '!' || html[name_begin] == '?'));
    if (!markup) {
      out.push_back(c); // a lone '<' in text
      ++i;
      continue;
    }
    const std::size_t end = tag_end(html, i);
    if (end == std::string_view::npos) {
      break; // unterminated tag at the end of the document
    }
    const std::string name = lower(html.substr(name_begin, name_end - name_begin));
    const std::string_view tag = html.substr(i, end - i + 1);
    i = end + 1;
    if (!closing && std::find(k_skipped_tags.begin(), k_skipped_tags.end(), name) != k_skipped_tags.end()) {
      const std::string close_tag = "</" + name;
      const std::size_t close = ifind(html, close_tag, i);
      if (close == std::string_view::npos) {
        i = html.size();
      } else {
        const std::size_t close_end = html.find('>', close);
        i = close_end == std::string_view::npos ? html.size() : close_end + 1;
      }
      out.push_back('\n');
      continue;
    }
    if (!closing && (name == "a" || name == "area")) {
      if (std::optional<std::string> href = attribute(tag, "href")) {
        const std::string_view target = trim(*href);
        for (const std::string_view scheme : {std::string_view("mailto:"), std::string_view("tel:")}) {
          if (istarts_with(target, scheme)) {
            std::string_view value = target.substr(scheme.size());
            value = value.substr(0, value.find('?'));
            const GCharPtr unescaped{
                g_uri_unescape_segment(value.data(), value.data() + value.size(), nullptr)};
            out += ' ';
            out += unescaped ? to_std_string(unescaped.get()) : std::string(value);
            out += ' ';
          }
        }
      }
    }
    if (std::find(k_inline_tags.begin(), k_inline_tags.end(), name) == k_inline_tags.end()) {
      out.push_back(name == "td" || name == "th" || name == "img" ? ' ' : '\n');
    }
  }
  return collapse_whitespace(out);
}

/** The charset named by <meta charset=...> or <meta http-equiv content="...; charset=...">. */
std::string html_meta_charset(std::string_view html) {
  const std::string_view head = html.substr(0, std::min<std::size_t>(html.size(), 4096));
  std::size_t pos = ifind(head, "charset=");
  if (pos == std::string_view::npos) {
    return {};
  }
  pos += 8;
  while (pos < head.size() && (head[pos] == '"' || head[pos] == '\'' || is_space(head[pos]))) {
    ++pos;
  }
  std::size_t end = pos;
  while (end < head.size() && (is_alnum(head[end]) || head[end] == '-' || head[end] == '_' ||
                               head[end] == ':' || head[end] == '.')) {
    ++end;
  }
  return std::string(head.substr(pos, end - pos));
}

// ---------------------------------------------------------------------------------------------
// Addr-specs a reader sees in an address field, whatever GMime made of them

/**
 * The addr-spec tokens of a decoded address-field value: maximal runs without white space,
 * separators ,;<>()[] or quotes (a quoted local part "john doe"@x stays one token), with
 * exactly one '@', a non-empty local part and a dotted domain (or an address literal).
 * Obsolete forms (d..x@, john.@) are kept as written; the indexer normalises and validates.
 */
std::vector<std::string> addr_spec_tokens(std::string_view text) {
  constexpr std::string_view k_separators = " \t\r\n,;<>()[]\"'`";
  std::vector<std::string> tokens;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t begin = pos;
    std::size_t end = pos;
    if (text[pos] == '"') {
      const std::size_t close = text.find('"', pos + 1);
      if (close != std::string_view::npos && close + 1 < text.size() && text[close + 1] == '@') {
        end = close + 1; // a quoted local part: the token goes on with its domain
      } else {
        ++pos;
        continue;
      }
    } else if (k_separators.find(text[pos]) != std::string_view::npos) {
      ++pos;
      continue;
    }
    while (end < text.size() && k_separators.find(text[end]) == std::string_view::npos) {
      ++end;
    }
    if (end < text.size() && text[end] == '[' && end > begin && text[end - 1] == '@') {
      const std::size_t close = text.find(']', end);
      end = close == std::string_view::npos ? end : close + 1; // user@[192.0.2.1]
    }
    pos = std::max(end, pos + 1);
    std::string_view token = text.substr(begin, end - begin);
    while (!token.empty() && (token.back() == '.' || token.back() == ':')) {
      token.remove_suffix(1); // end of a sentence
    }
    const std::size_t at = token.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 >= token.size() ||
        token.substr(0, at).find('@') != std::string_view::npos) {
      continue;
    }
    const std::string_view domain = token.substr(at + 1);
    if (domain.find('.') == std::string_view::npos && domain.front() != '[') {
      continue;
    }
    tokens.emplace_back(token);
  }
  return tokens;
}

/**
 * Unfolds a raw address-field value, joining the two sides of a fold that split an address
 * ("alice@exam" CRLF " ple.com", "alice.smith@" CRLF " example.com"): a fold is dropped with
 * its white space when the character before or after it is '@' or '.', or when the word
 * before it holds an '@' whose domain has no dot yet. Other folds keep their white space.
 */
std::string join_split_folds(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  std::size_t i = 0;
  while (i < raw.size()) {
    const char c = raw[i];
    if (c != '\r' && c != '\n') {
      out.push_back(c);
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < raw.size() && (raw[j] == '\r' || raw[j] == '\n')) {
      ++j;
    }
    std::size_t next = j;
    while (next < raw.size() && (raw[next] == ' ' || raw[next] == '\t')) {
      ++next;
    }
    const char before = out.empty() ? ' ' : out.back();
    const char after = next < raw.size() ? raw[next] : ' ';
    const std::size_t word_begin = out.find_last_of(" \t,;<>\"");
    const std::string_view word =
        std::string_view(out).substr(word_begin == std::string::npos ? 0 : word_begin + 1);
    const std::size_t at = word.find('@');
    const bool open_domain = at != std::string_view::npos && word.find('.', at) == std::string_view::npos;
    const bool split = !is_space(before) && next > j && !is_space(after) && after != ',' &&
                       after != '<' && after != '(' && after != '"' &&
                       (before == '@' || before == '.' || after == '@' || after == '.' || open_domain);
    if (split) {
      i = next;
    } else {
      i = j;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Header roles

struct HeaderRole {
  std::string_view header; // lower case
  Role role;
};

constexpr std::array k_address_headers{
    HeaderRole{"from", Role::from},
    HeaderRole{"to", Role::to},
    HeaderRole{"cc", Role::cc},
    HeaderRole{"bcc", Role::bcc},
    HeaderRole{"reply-to", Role::reply_to},
    HeaderRole{"sender", Role::sender},
    HeaderRole{"delivered-to", Role::delivered_to},
    HeaderRole{"return-path", Role::return_path},
    HeaderRole{"resent-from", Role::resent_from},
    HeaderRole{"resent-to", Role::resent_to},
    HeaderRole{"resent-cc", Role::resent_cc},
    HeaderRole{"resent-bcc", Role::resent_bcc},
    HeaderRole{"resent-reply-to", Role::header},
    HeaderRole{"resent-sender", Role::resent_sender},
    HeaderRole{"apparently-to", Role::to},
    HeaderRole{"x-original-from", Role::from},
    HeaderRole{"x-original-sender", Role::sender},
    HeaderRole{"mail-reply-to", Role::reply_to},
    HeaderRole{"mail-followup-to", Role::reply_to},
    HeaderRole{"disposition-notification-to", Role::notification},
    HeaderRole{"return-receipt-to", Role::notification},
    HeaderRole{"errors-to", Role::notification},
    HeaderRole{"envelope-to", Role::envelope_to}, // Exim
    HeaderRole{"x-original-to", Role::envelope_to}, // Postfix
    HeaderRole{"x-envelope-to", Role::envelope_to},
    HeaderRole{"x-delivered-to", Role::envelope_to},
    HeaderRole{"x-forwarded-to", Role::envelope_to},
    HeaderRole{"x-envelope-to-blocked", Role::envelope_to},
    HeaderRole{"x-envelope-from", Role::envelope_from},
};

std::optional<Role> address_role(std::string_view header) {
  for (const HeaderRole &entry : k_address_headers) {
    if (iequals(entry.header, header)) {
      return entry.role;
    }
  }
  return std::nullopt;
}

/** True for the roles whose evidence names the header field it came from. */
bool role_keeps_field(Role role) {
  switch (role) {
  case Role::received:
  case Role::envelope_from:
  case Role::envelope_to:
  case Role::resent_from:
  case Role::resent_to:
  case Role::resent_cc:
  case Role::resent_bcc:
  case Role::resent_sender:
  case Role::notification:
  case Role::header:
    return true;
  default:
    return false;
  }
}

/** Display-name lists written by archives and exporters (Enron, Outlook exports). */
constexpr std::array<std::string_view, 4> k_display_name_headers{"x-from", "x-to", "x-cc", "x-bcc"};

bool is_display_name_header(std::string_view header) {
  return std::any_of(k_display_name_headers.begin(), k_display_name_headers.end(),
                     [&](std::string_view name) { return iequals(name, header); });
}

/**
 * Fields whose values are identifiers or signatures, not addresses (a Message-ID looks like
 * one): never scanned. DKIM-Signature is handled apart (only its i= tag names a mailbox).
 */
bool is_identifier_header(std::string_view header) {
  constexpr std::array<std::string_view, 12> k_skipped{
      "message-id",     "references",          "in-reply-to",       "content-id",
      "resent-message-id", "arc-seal",         "arc-message-signature", "x-forwarded-encrypted",
      "supersedes",     "content-type",        "content-transfer-encoding", "mime-version"};
  return iends_with(header, "-id") || iends_with(header, "-signature") ||
         iends_with(header, "-seal") ||
         std::any_of(k_skipped.begin(), k_skipped.end(),
                     [&](std::string_view name) { return iequals(name, header); });
}

bool is_dkim_signature(std::string_view header) {
  return iequals(header, "dkim-signature") || iequals(header, "x-google-dkim-signature") ||
         iequals(header, "domainkey-signature");
}

/** The role of an address found by scanning the value of a field that is not structured. */
Role scanned_role(std::string_view header) {
  if (iequals(header, "received") || iequals(header, "x-received") ||
      istarts_with(header, "arc-") || iequals(header, "authentication-results") ||
      iends_with(header, "-authentication-results")) {
    return Role::received;
  }
  return Role::header;
}

constexpr std::array<std::string_view, 6> k_ip_headers{
    "received",          "x-originating-ip", "x-sender-ip",
    "x-client-ip",       "x-remote-ip",      "x-forwarded-for"};

bool is_ip_header(std::string_view header) {
  return std::any_of(k_ip_headers.begin(), k_ip_headers.end(),
                     [&](std::string_view name) { return iequals(name, header); });
}

// ---------------------------------------------------------------------------------------------
// The decoding pass

std::string_view gmime_warning_text(GMimeParserWarning code) {
  switch (code) {
  case GMIME_WARN_DUPLICATED_HEADER: return "duplicated header";
  case GMIME_WARN_DUPLICATED_PARAMETER: return "duplicated header parameter";
  case GMIME_WARN_UNENCODED_8BIT_HEADER: return "unencoded 8-bit header";
  case GMIME_WARN_INVALID_CONTENT_TYPE: return "invalid Content-Type";
  case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE: return "invalid RFC 2047 header value";
  case GMIME_WARN_MALFORMED_MULTIPART: return "malformed multipart";
  case GMIME_WARN_TRUNCATED_MESSAGE: return "truncated message";
  case GMIME_WARN_MALFORMED_MESSAGE: return "malformed message";
  case GMIME_CRIT_INVALID_HEADER_NAME: return "invalid header name";
  case GMIME_CRIT_CONFLICTING_HEADER: return "conflicting header";
  case GMIME_CRIT_CONFLICTING_PARAMETER: return "conflicting header parameter";
  case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY: return "multipart without boundary";
  case GMIME_WARN_INVALID_PARAMETER: return "invalid header parameter";
  case GMIME_WARN_INVALID_ADDRESS_LIST: return "invalid address list";
  case GMIME_CRIT_NESTING_OVERFLOW: return "MIME nesting too deep";
  case GMIME_WARN_PART_WITHOUT_CONTENT: return "MIME part without content";
  case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT: return "MIME part without headers or content";
  }
  return "parser problem";
}

/** Collects the problems of one decode_message call (GMime's and ours), de-duplicated. */
class Warnings {
public:
  void add(std::string message) {
    if (std::find(m_messages.begin(), m_messages.end(), message) != m_messages.end()) {
      return;
    }
    if (m_messages.size() < k_max_warnings) {
      m_messages.push_back(std::move(message));
    } else {
      ++m_dropped;
    }
  }

  void add_gmime(gint64 offset, GMimeParserWarning code) {
    const auto index = static_cast<std::size_t>(code);
    if (index >= m_gmime.size()) {
      return;
    }
    GmimeCount &entry = m_gmime[index];
    if (entry.count++ == 0) {
      entry.first_offset = offset;
    }
  }

  /** Moves everything into `item.warnings`. */
  void flush(Item &item) {
    for (std::size_t i = 0; i < m_gmime.size(); ++i) {
      const GmimeCount &entry = m_gmime[i];
      if (entry.count == 0) {
        continue;
      }
      std::string message = "MIME: " + std::string(gmime_warning_text(static_cast<GMimeParserWarning>(i)));
      if (entry.first_offset >= 0) {
        message += " at byte " + std::to_string(entry.first_offset);
      }
      if (entry.count > 1) {
        message += " (" + std::to_string(entry.count) + " times)";
      }
      add(std::move(message));
    }
    for (std::string &message : m_messages) {
      item.warnings.push_back(std::move(message));
    }
    if (m_dropped > 0) {
      item.warnings.push_back("MIME: " + std::to_string(m_dropped) + " further warnings not shown");
    }
    m_messages.clear();
    m_gmime = {};
    m_dropped = 0;
  }

private:
  struct GmimeCount {
    std::size_t count = 0;
    gint64 first_offset = -1;
  };
  std::vector<std::string> m_messages;
  std::array<GmimeCount, 32> m_gmime{};
  std::size_t m_dropped = 0;
};

void on_gmime_warning(gint64 offset, GMimeParserWarning code, const gchar * /*item*/,
                      gpointer user_data) {
  // The offending value may be personal data: only the kind and the offset are kept.
  static_cast<Warnings *>(user_data)->add_gmime(offset, code);
}

ParserOptionsPtr make_parser_options(Warnings &warnings) {
  ParserOptionsPtr options{g_mime_parser_options_new()};
  g_mime_parser_options_set_address_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_parameter_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_rfc2047_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_allow_addresses_without_domain(options.get(), TRUE);
  std::array<const char *, 3> fallback{"UTF-8", "windows-1252", nullptr};
  g_mime_parser_options_set_fallback_charsets(options.get(), fallback.data());
  g_mime_parser_options_set_warning_callback(options.get(), on_gmime_warning, &warnings);
  return options;
}

/** Parses one message from memory. Null when GMime finds no message at all. */
GObjectPtr<GMimeMessage> parse_message(std::string_view bytes, GMimeParserOptions *options) {
  const GObjectPtr<GMimeStream> stream =
      adopt(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
  const GObjectPtr<GMimeParser> parser = adopt(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  return adopt(g_mime_parser_construct_message(parser.get(), options));
}

/** Where a part sits: in the message itself or inside an attached message. */
enum class Origin { message, attached };

GMimeObject *as_object(GMimeMessage *message) { return &message->parent_object; }
GMimeObject *as_object(GMimePart *part) { return &part->parent_object; }

class Decoder {
public:
  Decoder(Item &item, Warnings &warnings, GMimeParserOptions *options)
      : m_item(item), m_warnings(warnings), m_options(options),
        m_max_addresses(item_limits().max_addresses_per_role) {}

  /** The top-level message: header roles, IPs, subject and the body. */
  void decode_top(GMimeMessage *message) {
    if (const char *id = g_mime_message_get_message_id(message); id != nullptr) {
      m_item.message_id = valid_utf8(trim(id));
    }
    if (GDateTime *date = g_mime_message_get_date(message); date != nullptr) {
      m_item.date = static_cast<std::int64_t>(g_date_time_to_unix(date));
    }
    GMimeHeaderList *headers = g_mime_object_get_header_list(as_object(message));
    const int count = headers != nullptr ? g_mime_header_list_get_count(headers) : 0;
    bool have_subject = false;
    for (int i = 0; i < count; ++i) {
      GMimeHeader *header = g_mime_header_list_get_header_at(headers, i);
      const std::string_view name = header_name(header);
      const std::string_view raw = header_raw_value(header);
      if (std::optional<Role> role = address_role(name)) {
        const std::string field = role_keeps_field(*role) ? valid_utf8(name) : std::string();
        for (auto &[display, addr] : addresses(name, raw)) {
          m_item.addresses.push_back(RawAddress{*role, std::move(display), std::move(addr), field});
        }
        continue;
      }
      if (is_ip_header(name)) {
        for (std::string &ip : scan_ips(raw)) {
          if (std::none_of(m_item.ips.begin(), m_item.ips.end(),
                           [&](const RawValue &seen) { return seen.value == ip; })) {
            m_item.ips.push_back(RawValue{Role::received, std::move(ip)});
          }
        }
      }
      if (iequals(name, "subject")) {
        if (!have_subject) {
          have_subject = true;
          m_item.subject = decode_header_text(raw);
          if (!m_item.subject.empty()) {
            add_text(Role::subject, m_item.subject);
          }
        }
        continue;
      }
      if (is_display_name_header(name)) {
        for (std::string &display : display_names(decode_header_text(raw))) {
          m_item.addresses.push_back(
              RawAddress{Role::header, std::move(display), std::string(), valid_utf8(name)});
        }
      }
      scan_header(name, raw);
    }
    if (GMimeObject *body = g_mime_message_get_mime_part(message); body != nullptr) {
      walk(body, Origin::message, 1);
    }
  }

  /** Number of headers in a message and its top MIME part. */
  static int header_count(GMimeMessage *message) {
    int count = 0;
    if (GMimeHeaderList *headers = g_mime_object_get_header_list(as_object(message))) {
      count += g_mime_header_list_get_count(headers);
    }
    if (GMimeObject *body = g_mime_message_get_mime_part(message)) {
      if (GMimeHeaderList *headers = g_mime_object_get_header_list(body)) {
        count += g_mime_header_list_get_count(headers);
      }
    }
    return count;
  }

  /** A headerless text: the whole input is body text. */
  void decode_headerless(std::string_view bytes) { add_text(Role::body, fallback_to_utf8(bytes)); }

private:
  static std::string_view header_name(GMimeHeader *header) {
    const char *name = g_mime_header_get_name(header);
    return name != nullptr ? std::string_view(name) : std::string_view();
  }

  static std::string_view header_raw_value(GMimeHeader *header) {
    const char *raw = g_mime_header_get_raw_value(header);
    return raw != nullptr ? std::string_view(raw) : std::string_view();
  }

  /**
   * The value of a field that is not parsed as an address list, scanned for addresses by the
   * indexer (whole addresses only, DESIGN §3). Identifier and signature fields are skipped; of
   * a DKIM signature only the i= tag (the signing identity) is kept.
   */
  void scan_header(std::string_view name, std::string_view raw) {
    if (raw.find('@') == std::string_view::npos && raw.find("=?") == std::string_view::npos) {
      return; // no address can be in it
    }
    std::string field = valid_utf8(name);
    if (is_dkim_signature(name)) {
      const std::string value = unfold(raw);
      std::size_t begin = 0;
      while (begin < value.size()) {
        const std::size_t end = std::min(value.find(';', begin), value.size());
        const std::string_view tag = trim(std::string_view(value).substr(begin, end - begin));
        if (tag.starts_with("i=") || tag.starts_with("i ")) {
          add_header_text(Role::header, std::string(tag.substr(tag.find('=') + 1)), field);
        }
        begin = end + 1;
      }
      return;
    }
    if (is_identifier_header(name)) {
      return;
    }
    const Role role = scanned_role(name);
    std::string decoded = decode_header_text(raw);
    if (raw.find("=?") != std::string_view::npos) {
      std::string unfolded = valid_utf8(trim(unfold(raw)));
      if (unfolded != decoded) {
        add_header_text(role, std::move(unfolded), field);
      }
    }
    add_header_text(role, std::move(decoded), field);
  }

  void add_header_text(Role role, std::string text, const std::string &field) {
    if (text.find('@') == std::string::npos || m_header_text_bytes + text.size() > k_max_text_bytes) {
      return;
    }
    m_header_text_bytes += text.size();
    m_item.texts.push_back(RawText{role, std::move(text), field, TextScan::addresses});
  }

  /**
   * The display names of an X-From/X-To/X-cc/X-bcc list ("Steffes, James D. </O=ENRON/...>,
   * Jeff Dasovich, Kean, Steven J."): split at top-level commas and semicolons; a piece of one
   * word without <...> is a last name and joins the next piece ("Last, First").
   */
  static std::vector<std::string> display_names(const std::string &value) {
    struct Piece {
      std::string name;
      bool bracketed = false;
    };
    std::vector<Piece> pieces(1);
    bool quoted = false;
    int angle = 0;
    for (const char c : value) {
      if (c == '"' && angle == 0) {
        quoted = !quoted;
        continue;
      }
      if (!quoted && c == '<') {
        ++angle;
        pieces.back().bracketed = true;
        continue;
      }
      if (!quoted && c == '>' && angle > 0) {
        --angle;
        continue;
      }
      if (angle > 0) {
        continue;
      }
      if (!quoted && (c == ',' || c == ';')) {
        pieces.emplace_back();
        continue;
      }
      pieces.back().name.push_back(c);
    }
    std::vector<std::string> names;
    std::string pending;
    for (Piece &piece : pieces) {
      std::string name = collapse_whitespace(trim(piece.name));
      if (name.find('@') != std::string::npos) {
        name.clear(); // an address, not a name: the address scan takes it
      }
      const bool one_word = !name.empty() && name.find(' ') == std::string::npos;
      if (!pending.empty()) {
        name = name.empty() ? pending : pending + ", " + name;
        pending.clear();
      } else if (one_word && !piece.bracketed) {
        pending = std::move(name);
        continue;
      }
      if (!name.empty()) {
        names.push_back(std::move(name));
      }
    }
    if (!pending.empty()) {
      names.push_back(std::move(pending));
    }
    return names;
  }

  /** The (display name, addr-spec) pairs of one address header, decoded. */
  std::vector<std::pair<std::string, std::string>> addresses(std::string_view header,
                                                             std::string_view raw) {
    std::vector<std::pair<std::string, std::string>> found;
    // At most limits.max_addresses_per_role per field (a 500,000-address To: is not kept whole).
    std::uint64_t dropped = 0;
    struct NoteDropped {
      Item &item;
      std::string_view header;
      const std::uint64_t &dropped;
      std::uint64_t cap;
      ~NoteDropped() {
        if (dropped > 0) {
          item.truncated.push_back("at least " + std::to_string(dropped) + " address(es) of a " + valid_utf8(header) +
                                   " field beyond limits.max_addresses_per_role (" + std::to_string(cap) +
                                   ") not indexed");
        }
      }
    } note{m_item, header, dropped, m_max_addresses};
    const std::string prepared = merge_encoded_words(raw);
    const GObjectPtr<InternetAddressList> list =
        adopt(internet_address_list_parse(m_options, prepared.c_str()));
    for_each_mailbox(list.get(), [&](InternetAddressMailbox *mailbox) {
      if (found.size() >= m_max_addresses) {
        ++dropped;
        return;
      }
      const char *name = internet_address_get_name(&mailbox->parent_object);
      std::string display = name != nullptr ? valid_utf8(collapse_whitespace(trim(name))) : std::string();
      std::string addr = valid_utf8(trim(to_std_string(internet_address_mailbox_get_addr(mailbox))));
      if (addr.find("=?") != std::string::npos) {
        addr = decode_header_text(addr); // a bare encoded word GMime took for an addr-spec
      }
      if (!display.empty() || !addr.empty()) {
        found.emplace_back(std::move(display), std::move(addr));
      }
    });
    const std::string_view value = trim(raw);
    if (found.empty() && !value.empty() && value != "<>" && !is_empty_group(value)) {
      recover_addresses(header, decode_header_text(value), found);
      return found;
    }
    if (value.find('@') == std::string_view::npos && value.find("=?") == std::string_view::npos) {
      return found;
    }
    // An encoded word that wraps a whole address list ("=?utf-8?Q?Alice_<a@x>,_Bob_<b@y>?="):
    // GMime sees one name; the decoded value parsed again gives the mailboxes.
    const std::string decoded = decode_header_text(value);
    const bool wrapped = std::any_of(found.begin(), found.end(), [](const auto &entry) {
      return entry.first.find('@') != std::string::npos ||
             entry.second.find_first_of("<>, ") != std::string::npos;
    });
    if (wrapped) {
      std::vector<std::pair<std::string, std::string>> again;
      const GObjectPtr<InternetAddressList> reparsed =
          adopt(internet_address_list_parse(m_options, decoded.c_str()));
      for_each_mailbox(reparsed.get(), [&](InternetAddressMailbox *mailbox) {
        const char *name = internet_address_get_name(&mailbox->parent_object);
        std::string display = name != nullptr ? valid_utf8(collapse_whitespace(trim(name))) : std::string();
        std::string addr = valid_utf8(trim(to_std_string(internet_address_mailbox_get_addr(mailbox))));
        if (!addr.empty()) {
          again.emplace_back(std::move(display), std::move(addr));
        }
      });
      if (!again.empty()) {
        found = std::move(again);
      }
    }
    // Addresses GMime dropped or changed (obsolete "d..x@", "john.@", an address inside a
    // comment, one split by folding): every addr-spec a reader sees in the value is kept.
    std::vector<std::string> seen;
    seen.reserve(found.size());
    for (const auto &entry : found) {
      seen.push_back(lower(entry.second));
    }
    const auto keep = [&](std::string token) {
      if (found.size() >= m_max_addresses) {
        dropped = std::max<std::uint64_t>(dropped, 1); // an addr-spec GMime may have counted already
        return;
      }
      const std::string key = lower(token);
      if (std::find(seen.begin(), seen.end(), key) == seen.end()) {
        seen.push_back(key);
        found.emplace_back(std::string(), std::move(token));
      }
    };
    for (std::string &token : addr_spec_tokens(decoded)) {
      keep(std::move(token));
    }
    if (value.find('\n') != std::string_view::npos) {
      for (std::string &token : addr_spec_tokens(decode_header_text(join_split_folds(raw)))) {
        keep(std::move(token));
      }
    }
    return found;
  }

  /** "undisclosed-recipients:;" (an empty group, maybe followed by a comment). */
  static bool is_empty_group(std::string_view value) {
    const std::size_t colon = value.find(':');
    if (colon == std::string_view::npos || value.substr(0, colon).find_first_of("<@\"") != std::string_view::npos) {
      return false;
    }
    const std::string_view rest = trim(value.substr(colon + 1));
    return !rest.empty() && rest.front() == ';';
  }

  /**
   * A header GMime found no mailbox in ("mailing list x@y", "Alice Smith, Bob Jones"): keeps
   * every addr-spec-like token as an address, or else every comma-separated name, so no data is
   * lost.
   */
  void recover_addresses(std::string_view header, const std::string &text,
                         std::vector<std::pair<std::string, std::string>> &found) {
    constexpr std::string_view k_separators = " \t,;<>\"'()[]";
    std::size_t pos = 0;
    while (pos < text.size()) {
      const std::size_t begin = text.find_first_not_of(k_separators, pos);
      if (begin == std::string::npos) {
        break;
      }
      const std::size_t end = std::min(text.find_first_of(k_separators, begin), text.size());
      const std::string_view token = std::string_view(text).substr(begin, end - begin);
      const std::size_t at = token.find('@');
      if (at != std::string_view::npos && at > 0 && at + 1 < token.size()) {
        found.emplace_back(std::string(), std::string(token));
      }
      pos = end;
    }
    if (!found.empty()) {
      return;
    }
    m_warnings.add("MIME: " + valid_utf8(header) + " header holds no address; kept as names");
    std::size_t begin = 0;
    while (begin <= text.size()) {
      const std::size_t end = std::min(text.find_first_of(",;", begin), text.size());
      std::string name = collapse_whitespace(trim(std::string_view(text).substr(begin, end - begin)));
      if (!name.empty()) {
        found.emplace_back(std::move(name), std::string());
      }
      begin = end + 1;
    }
  }

  /** Adds text, keeping the item under k_max_text_bytes; `field` names an attachment. */
  void add_text(Role role, std::string text, std::string field = {}) {
    if (m_capped || trim(text).empty()) {
      return;
    }
    if (m_text_bytes + text.size() > k_max_text_bytes) {
      std::size_t keep = k_max_text_bytes - m_text_bytes;
      while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0U) == 0x80U) {
        --keep; // do not cut a UTF-8 sequence
      }
      text.resize(keep);
      m_capped = true;
      m_warnings.add("MIME: extracted text exceeds 16 MiB; the rest of the message is not indexed");
    }
    m_text_bytes += text.size();
    if (!text.empty()) {
      m_item.texts.push_back(RawText{role, std::move(text), std::move(field)});
    }
  }

  void walk(GMimeObject *object, Origin origin, int depth) {
    if (object == nullptr || m_capped) {
      return;
    }
    if (depth > k_max_depth) {
      m_warnings.add("MIME: nesting deeper than " + std::to_string(k_max_depth) +
                     " levels; deeper parts not decoded");
      return;
    }
    if (auto *multipart = gobject_cast<GMimeMultipart>(object, g_mime_multipart_get_type())) {
      const int count = g_mime_multipart_get_count(multipart);
      for (int i = 0; i < count; ++i) {
        walk(g_mime_multipart_get_part(multipart, i), origin, depth + 1);
      }
    } else if (auto *message_part =
                   gobject_cast<GMimeMessagePart>(object, g_mime_message_part_get_type())) {
      if (GMimeMessage *attached = g_mime_message_part_get_message(message_part)) {
        walk_attached(attached, depth + 1);
      }
    } else if (auto *part = gobject_cast<GMimePart>(object, g_mime_part_get_type())) {
      walk_part(part, origin, depth);
    }
  }

  /** An attached message: its headers and texts are attachment_body evidence. */
  void walk_attached(GMimeMessage *message, int depth) {
    if (depth > k_max_depth) {
      m_warnings.add("MIME: nesting deeper than " + std::to_string(k_max_depth) +
                     " levels; deeper parts not decoded");
      return;
    }
    std::string summary;
    GMimeHeaderList *headers = g_mime_object_get_header_list(as_object(message));
    const int count = headers != nullptr ? g_mime_header_list_get_count(headers) : 0;
    for (int i = 0; i < count; ++i) {
      GMimeHeader *header = g_mime_header_list_get_header_at(headers, i);
      const std::string_view name = header_name(header);
      const std::string_view raw = header_raw_value(header);
      std::string line;
      if (address_role(name)) {
        for (const auto &[display, addr] : addresses(name, raw)) {
          if (!line.empty()) {
            line += ", ";
          }
          line += display.empty() ? addr : (addr.empty() ? display : display + " <" + addr + ">");
        }
      } else if (is_ip_header(name) || iequals(name, "subject") ||
                 (!is_identifier_header(name) && !is_dkim_signature(name) &&
                  raw.find('@') != std::string_view::npos)) {
        // Every field that may name someone (Received, X-Original-To, List-*, ...), as for
        // the message itself; Message-ID and signatures are left out on purpose: they look
        // like addresses but name no person.
        line = decode_header_text(raw);
      }
      if (!line.empty()) {
        summary += valid_utf8(name);
        summary += ": ";
        summary += line;
        summary += '\n';
      }
    }
    add_text(Role::attachment_body, std::move(summary));
    if (GMimeObject *body = g_mime_message_get_mime_part(message)) {
      walk(body, Origin::attached, depth + 1);
    }
  }

  /** The transfer-decoded bytes of a leaf part. */
  std::string content_bytes(GMimePart *part) {
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    if (content == nullptr) {
      return {};
    }
    const GObjectPtr<GMimeStream> sink = adopt(g_mime_stream_mem_new());
    if (g_mime_data_wrapper_write_to_stream(content, sink.get()) < 0) {
      m_warnings.add("MIME: a part's content could not be decoded");
    }
    auto *memory = gobject_cast<GMimeStreamMem>(sink.get(), g_mime_stream_mem_get_type());
    GByteArray *array = memory != nullptr ? g_mime_stream_mem_get_byte_array(memory) : nullptr;
    if (array == nullptr || array->len == 0) {
      return {};
    }
    return std::string(reinterpret_cast<const char *>(array->data), array->len);
  }

  /** The decoded file names of a part (Content-Disposition filename, Content-Type name). */
  static std::vector<std::string> file_names(GMimePart *part) {
    std::vector<std::string> names;
    const std::array<const char *, 2> values{
        g_mime_object_get_content_disposition_parameter(as_object(part), "filename"),
        g_mime_object_get_content_type_parameter(as_object(part), "name")};
    for (const char *value : values) {
      if (value == nullptr) {
        continue;
      }
      std::string name = std::string(value).find("=?") != std::string::npos
                             ? decode_header_text(value)
                             : valid_utf8(trim(value));
      if (!trim(name).empty() && std::find(names.begin(), names.end(), name) == names.end()) {
        names.push_back(std::move(name));
      }
    }
    return names;
  }

  static bool is_text_like(std::string_view type, std::string_view subtype,
                           const std::vector<std::string> &names) {
    if (type == "text") {
      return true;
    }
    if (type == "message") {
      return subtype == "delivery-status" || subtype == "disposition-notification" ||
             subtype == "feedback-report" || subtype == "global-delivery-status" ||
             subtype == "global-disposition-notification" || subtype == "global-headers" ||
             subtype == "partial" || subtype == "external-body";
    }
    if (type == "application") {
      constexpr std::array<std::string_view, 14> k_text_apps{
          "json",    "xml",        "javascript", "x-javascript", "ecmascript", "csv",
          "x-csv",   "yaml",       "x-yaml",     "ics",          "rtf",        "x-vcard",
          "vcard",   "x-sh"};
      if (std::find(k_text_apps.begin(), k_text_apps.end(), subtype) != k_text_apps.end() ||
          iends_with(subtype, "+xml") || iends_with(subtype, "+json")) {
        return true;
      }
      if (subtype == "octet-stream") {
        constexpr std::array<std::string_view, 10> k_text_extensions{
            ".txt", ".csv", ".log", ".ics", ".vcf", ".json", ".xml", ".htm", ".html", ".md"};
        return std::any_of(names.begin(), names.end(), [&](const std::string &name) {
          return std::any_of(k_text_extensions.begin(), k_text_extensions.end(),
                             [&](std::string_view ext) { return iends_with(name, ext); });
        });
      }
    }
    return false;
  }

  static bool is_message_type(std::string_view type, std::string_view subtype,
                              const std::vector<std::string> &names) {
    if (type == "message" && (subtype == "rfc822" || subtype == "global")) {
      return true;
    }
    return type == "application" && subtype == "octet-stream" &&
           std::any_of(names.begin(), names.end(),
                       [](const std::string &name) { return iends_with(name, ".eml"); });
  }

  /** True when the part's own Content-Type field says just "text" (no subtype), which a
      mail reader shows as text/plain. */
  static bool is_bare_text_type(GMimeObject *object) {
    const char *value = g_mime_object_get_header(object, "Content-Type");
    if (value == nullptr) {
      return false;
    }
    std::string_view type = trim(value);
    type = trim(type.substr(0, type.find(';')));
    return iequals(type, "text");
  }

  void walk_part(GMimePart *part, Origin origin, int depth) {
    GMimeObject *object = as_object(part);
    GMimeContentType *content_type = g_mime_object_get_content_type(object);
    std::string type =
        lower(to_std_string(content_type != nullptr ? g_mime_content_type_get_media_type(content_type) : nullptr));
    std::string subtype = lower(
        to_std_string(content_type != nullptr ? g_mime_content_type_get_media_subtype(content_type) : nullptr));
    if (type == "application" && subtype == "octet-stream" && is_bare_text_type(object)) {
      type = "text"; // "Content-Type: text" without a subtype: GMime's fallback hides it
      subtype = "plain";
    }
    const std::vector<std::string> names = file_names(part);
    for (const std::string &name : names) {
      add_text(Role::attachment_name, name);
    }
    ++m_leaf_parts;
    const std::string disposition = lower(to_std_string(g_mime_object_get_disposition(object)));
    const bool body_type = type.empty() || (type == "text" && (subtype == "plain" || subtype == "html" ||
                                                               subtype == "enriched" ||
                                                               subtype == "richtext"));
    const bool attachment = origin == Origin::attached || disposition == "attachment" ||
                            (!names.empty() && disposition != "inline") || !body_type;

    if (is_message_type(type, subtype, names)) {
      // A message GMime left as a leaf (e.g. base64-encoded message/rfc822): parse it here.
      const std::string bytes = content_bytes(part);
      if (trim(bytes).empty()) {
        return;
      }
      if (GObjectPtr<GMimeMessage> attached = parse_message(bytes, m_options);
          attached && header_count(attached.get()) > 0) {
        walk_attached(attached.get(), depth + 1);
        return;
      }
      if (looks_binary(bytes)) {
        return;
      }
      add_text(Role::attachment_body, fallback_to_utf8(bytes));
      return;
    }
    if (attachment && m_extract && (type != "text" || subtype == "rtf") && type != "message") {
      // PDF, Office, OpenDocument, RTF, archives: their text comes from the worker (finish()).
      const std::string name = names.empty() ? std::string() : names.front();
      std::string bytes = content_bytes(part);
      const extract::Format format = extract::detect(bytes, type + "/" + subtype, name);
      if (format != extract::Format::none && format != extract::Format::text) {
        m_attachments.push_back(Attachment{name, type + "/" + subtype, std::to_string(m_leaf_parts), std::move(bytes)});
        return;
      }
    }
    if (!is_text_like(type, subtype, names)) {
      return; // binary: its names only
    }
    std::string charset = to_std_string(g_mime_object_get_content_type_parameter(object, "charset"));
    const bool wide_charset = istarts_with(charset, "utf-16") || istarts_with(charset, "utf-32") ||
                              istarts_with(charset, "ucs-") || iequals(charset, "unicode");
    const std::string bytes = content_bytes(part);
    if (bytes.empty() || (!wide_charset && looks_binary(bytes))) {
      return;
    }
    const bool html = subtype == "html" || subtype == "xhtml+xml" ||
                      (type == "application" && subtype == "octet-stream" &&
                       std::any_of(names.begin(), names.end(), [](const std::string &name) {
                         return iends_with(name, ".htm") || iends_with(name, ".html");
                       }));
    if (charset.empty() && html) {
      charset = html_meta_charset(bytes);
    }
    std::string problem;
    std::string text = to_utf8(bytes, charset, &problem);
    if (!problem.empty()) {
      m_warnings.add("MIME: " + problem);
    }
    if (html) {
      text = html_to_text(text);
    } else {
      text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
    }
    if (m_extract && !html) {
      set_aside_uuencoded(text);
    }
    add_text(attachment ? Role::attachment_body : Role::body, std::move(text),
             attachment && !names.empty() ? names.front() : std::string());
  }

  /**
   * Files uuencoded in a text part ("begin 644 payslip.pdf" ... "end", as old mailers and some
   * scanners send them): those of a format with text are set aside like attachments.
   */
  void set_aside_uuencoded(std::string_view text) {
    std::size_t pos = 0;
    int found = 0;
    while (found < 16 && (pos = text.find("begin ", pos)) != std::string_view::npos) {
      if (pos > 0 && text[pos - 1] != '\n') {
        pos += 6;
        continue;
      }
      const std::size_t eol = std::min(text.find('\n', pos), text.size());
      const std::string_view header = text.substr(pos + 6, eol - pos - 6);
      const std::size_t space = header.find(' ');
      if (space == std::string_view::npos || space < 3 || space > 4 ||
          header.substr(0, space).find_first_not_of("01234567") != std::string_view::npos) {
        pos = eol;
        continue;
      }
      const std::string name = valid_utf8(trim(header.substr(space + 1)));
      std::string bytes;
      std::size_t line_start = eol + 1;
      bool ended = false;
      while (line_start < text.size()) {
        std::size_t line_end = std::min(text.find('\n', line_start), text.size());
        std::string_view line = text.substr(line_start, line_end - line_start);
        if (!line.empty() && line.back() == '\r') {
          line.remove_suffix(1);
        }
        line_start = line_end + 1;
        if (line == "end") {
          ended = true;
          break;
        }
        if (line.empty()) {
          continue;
        }
        const auto count = static_cast<std::size_t>((line[0] - ' ') & 0x3F);
        std::string chunk;
        for (std::size_t i = 1; i < line.size(); i += 4) {
          std::array<unsigned, 4> v{};
          for (std::size_t k = 0; k < 4; ++k) {
            v[k] = i + k < line.size() ? static_cast<unsigned>((line[i + k] - ' ') & 0x3F) : 0U;
          }
          chunk.push_back(static_cast<char>((v[0] << 2) | (v[1] >> 4)));
          chunk.push_back(static_cast<char>(((v[1] & 0xFU) << 4) | (v[2] >> 2)));
          chunk.push_back(static_cast<char>(((v[2] & 0x3U) << 6) | v[3]));
        }
        chunk.resize(std::min(chunk.size(), count)); // the last group's padding
        bytes += chunk;
        if (bytes.size() > (64U << 20)) {
          break; // beyond any attachment extracted (limits.extract_max_attachment_mib)
        }
      }
      pos = line_start;
      ++found;
      if (!ended || bytes.empty()) {
        continue;
      }
      const extract::Format format = extract::detect(bytes, "application/octet-stream", name);
      if (format != extract::Format::none && format != extract::Format::text) {
        add_text(Role::attachment_name, name);
        m_attachments.push_back(Attachment{name, "application/octet-stream",
                                           std::to_string(m_leaf_parts) + " (uuencoded)", std::move(bytes)});
      }
    }
  }

public:
  /** Extracts the text of the attachments the walk set aside (cache, then worker). */
  void finish() {
    if (m_attachments.empty()) {
      return;
    }
    std::vector<AttachmentText> texts = extract_attachments(m_attachments);
    for (std::size_t i = 0; i < texts.size(); ++i) {
      const Attachment &a = m_attachments[i];
      AttachmentText &t = texts[i];
      m_item.attachment_hashes.push_back(t.sha256);
      for (const std::string &w : t.warnings) {
        m_warnings.add(fmt_attachment(a) + ": " + w);
      }
      if (t.truncated) {
        // Never silent: the text past the cut was not indexed (docs/reliability.md).
        m_item.truncated.push_back(fmt_attachment(a) + ": text indexed in part" +
                                   (t.warnings.empty() ? std::string() : " (" + t.warnings.front() + ")"));
      }
      if (!t.problem.empty()) {
        m_item.problems.push_back(std::move(t.problem));
      }
      add_text(Role::attachment_body, valid_utf8(t.text), a.name.empty() ? "part " + a.part : a.name);
    }
    m_attachments.clear();
  }

private:
  static std::string fmt_attachment(const Attachment &a) {
    return "attachment \"" + valid_utf8(a.name) + "\" (MIME part " + a.part + ")";
  }

  Item &m_item;
  Warnings &m_warnings;
  GMimeParserOptions *m_options;
  std::uint64_t m_max_addresses;
  std::size_t m_text_bytes = 0;
  std::size_t m_header_text_bytes = 0;
  bool m_capped = false;
  const bool m_extract = attachment_text_enabled();
  std::size_t m_leaf_parts = 0;
  std::vector<Attachment> m_attachments; // set aside for extraction
};

} // namespace

core::Status decode_message(std::string_view bytes, Item &item) {
  Warnings warnings;
  std::string_view input = bytes;
  if (input.substr(0, 3) == "\xEF\xBB\xBF") {
    input.remove_prefix(3); // UTF-8 byte order mark
  }
  bool skipped_blank = false;
  while (!input.empty() && (input.front() == '\n' || input.substr(0, 2) == "\r\n")) {
    input.remove_prefix(input.front() == '\n' ? 1 : 2);
    skipped_blank = true;
  }
  if (trim(input).empty()) {
    return core::fail(core::ErrorCode::data, "empty input: not a message");
  }
  if (skipped_blank) {
    warnings.add("MIME: blank lines before the header skipped");
  }
  // Bounded before GMime sees it (limits.*; connectors/mime/bounded_input.hpp).
  const ItemLimits limits = item_limits();
  std::string bounded;
  input = bound_input(input, limits, bounded, item.truncated);
  const ParserOptionsPtr options = make_parser_options(warnings); // outlives every GMime object
  Decoder decoder(item, warnings, options.get());
  const GObjectPtr<GMimeMessage> message = parse_message(input, options.get());
  const bool has_headers = message && Decoder::header_count(message.get()) > 0;
  if (!has_headers && looks_binary(input)) {
    return core::fail(core::ErrorCode::data,
                      "not a message: binary data without any RFC 5322 header",
                      "is this file in the right source (PST, TNEF, compressed)?");
  }
  if (!has_headers) {
    warnings.add("MIME: no RFC 5322 header found; the whole input is treated as body text");
  }
  if (message) {
    decoder.decode_top(message.get());
    decoder.finish();
  } else {
    decoder.decode_headerless(input);
  }
  warnings.flush(item);
  return {};
}

bool is_header_field_line(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size()) {
    auto c = static_cast<unsigned char>(line[i]);
    if (c == ':' || c < 33 || c > 126) {
      break;
    }
    ++i;
  }
  if (i == 0) {
    return false;
  }
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
    ++i;
  }
  return i < line.size() && line[i] == ':';
}

core::Result<std::vector<ReceivedField>> received_fields(std::string_view bytes) {
  std::string_view input = bytes;
  if (input.substr(0, 3) == "\xEF\xBB\xBF") {
    input.remove_prefix(3);
  }
  if (input.starts_with("From ")) { // mbox separator line
    const std::size_t eol = input.find('\n');
    input.remove_prefix(eol == std::string_view::npos ? input.size() : eol + 1);
  }
  Warnings warnings;
  const ParserOptionsPtr options = make_parser_options(warnings);
  const GObjectPtr<GMimeMessage> message = parse_message(input, options.get());
  GMimeHeaderList *headers =
      message ? g_mime_object_get_header_list(as_object(message.get())) : nullptr;
  const int count = headers != nullptr ? g_mime_header_list_get_count(headers) : 0;
  if (count == 0) {
    return core::fail(core::ErrorCode::data, "not a message: no RFC 5322 header");
  }
  std::vector<ReceivedField> fields;
  for (int i = 0; i < count; ++i) {
    GMimeHeader *header = g_mime_header_list_get_header_at(headers, i);
    const char *name = g_mime_header_get_name(header);
    if (name == nullptr || !iequals(name, "received")) {
      continue;
    }
    const char *raw = g_mime_header_get_raw_value(header);
    ReceivedField field;
    field.value = valid_utf8(trim(unfold(raw != nullptr ? std::string_view(raw) : std::string_view())));
    const std::size_t semicolon = field.value.rfind(';');
    std::string_view before = field.value;
    if (semicolon != std::string::npos) {
      const std::string when(trim(std::string_view(field.value).substr(semicolon + 1)));
      if (GDateTime *date = g_mime_utils_header_decode_date(when.c_str()); date != nullptr) {
        field.date = static_cast<std::int64_t>(g_date_time_to_unix(date));
        g_date_time_unref(date);
      }
      before = before.substr(0, semicolon);
    }
    field.ips = scan_ips(before);
    fields.push_back(std::move(field));
  }
  return fields;
}

} // namespace maildsar::connectors::mime
