// SPDX-License-Identifier: GPL-3.0-or-later
// Building blocks of the access package: safe names, escaping, masking, ZIP.
#include "access/export.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <ctime>

namespace maildsar::access {

namespace {

constexpr std::array<std::string_view, 22> k_reserved{
    "CON",  "PRN",  "AUX",  "NUL",  "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
    "COM8", "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9"};

bool is_reserved(std::string_view name) {
  auto dot = name.find('.');
  std::string stem(name.substr(0, dot));
  std::transform(stem.begin(), stem.end(), stem.begin(),
                 [](char c) { return static_cast<char>(std::toupper(static_cast<unsigned char>(c))); });
  return std::find(k_reserved.begin(), k_reserved.end(), stem) != k_reserved.end();
}

bool local_char(char c) {
  auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) != 0 || std::string_view("._%+-!#$&'*^`{|}~").find(c) != std::string_view::npos;
}

bool domain_char(char c) {
  auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) != 0 || c == '.' || c == '-' || u >= 0x80;
}

struct Span {
  std::size_t begin;
  std::size_t end;
  bool ip;
};

/** Candidate addresses and IPs in text, in order, not overlapping. */
std::vector<Span> candidates(std::string_view text) {
  std::vector<Span> out;
  std::size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '@' && i > 0) {
      std::size_t b = i;
      while (b > 0 && local_char(text[b - 1])) {
        --b;
      }
      std::size_t e = i + 1;
      while (e < text.size() && domain_char(text[e])) {
        ++e;
      }
      while (e > i + 1 && (text[e - 1] == '.' || text[e - 1] == '-')) {
        --e;
      }
      while (b < i && (text[b] == '.' || text[b] == '\'' || text[b] == '/')) {
        ++b;
      }
      std::string_view domain = text.substr(i + 1, e - i - 1);
      if (b < i && domain.find('.') != std::string_view::npos) {
        while (!out.empty() && out.back().end > b) {
          out.pop_back(); // e.g. a digit run taken for an IP inside the local part
        }
        out.push_back(Span{b, e, false});
        i = e;
        continue;
      }
    }
    if (std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':') {
      bool boundary = i == 0 || (std::isalnum(static_cast<unsigned char>(text[i - 1])) == 0 &&
                                 text[i - 1] != '.' && text[i - 1] != ':');
      if (boundary) {
        std::size_t e = i;
        while (e < text.size() && (std::isxdigit(static_cast<unsigned char>(text[e])) != 0 ||
                                   text[e] == '.' || text[e] == ':')) {
          ++e;
        }
        while (e > i && (text[e - 1] == '.' || (text[e - 1] == ':' && (e < 2 || text[e - 2] != ':')))) {
          --e;
        }
        bool next_ok = e >= text.size() || (std::isalnum(static_cast<unsigned char>(text[e])) == 0 &&
                                             text[e] != '@');
        std::string_view tok = text.substr(i, e - i);
        auto colons = std::count(tok.begin(), tok.end(), ':');
        auto dots = std::count(tok.begin(), tok.end(), '.');
        if (next_ok && (colons >= 2 || dots == 3)) {
          out.push_back(Span{i, e, true});
          i = e;
          continue;
        }
        std::size_t start = i;
        while (i < text.size() && std::isalnum(static_cast<unsigned char>(text[i])) != 0) {
          ++i;
        }
        if (i == start) {
          ++i;
        }
        continue;
      }
    }
    ++i;
  }
  return out;
}

void put16(std::string &out, std::uint32_t v) {
  out.push_back(static_cast<char>(v & 0xFF));
  out.push_back(static_cast<char>((v >> 8) & 0xFF));
}
void put32(std::string &out, std::uint32_t v) {
  put16(out, v & 0xFFFF);
  put16(out, v >> 16);
}

std::pair<std::uint32_t, std::uint32_t> dos_time(std::int64_t t) {
  auto tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  if (tm.tm_year < 80) {
    return {0, (1U << 5) | 1U}; // 1980-01-01
  }
  auto time = static_cast<std::uint32_t>((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
  auto date = static_cast<std::uint32_t>(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
  return {time, date};
}

} // namespace

std::string safe_file_name(std::string_view raw, std::size_t max_bytes) {
  // Readable names (issue 18 item 4): UTF-8 letters and spaces are kept ("Gesendete Objekte",
  // "Entwürfe", "Входящие"); what is unsafe on some system becomes '_'.
  const std::string text = clean_utf8(raw); // invalid bytes and control characters -> U+FFFD
  std::string out;
  const auto put = [&](std::string_view piece) {
    if (piece == "_" && !out.empty() && out.back() == '_') {
      return;
    }
    if (piece == "." && !out.empty() && out.back() == '.') {
      return; // no ".." anywhere
    }
    if (piece == " " && (out.empty() || out.back() == ' ')) {
      return; // no leading or repeated spaces
    }
    out += piece;
  };
  std::size_t i = 0;
  while (i < text.size()) {
    const auto u = static_cast<unsigned char>(text[i]);
    const std::size_t n = u < 0x80 ? 1 : (u >> 5) == 6 ? 2 : (u >> 4) == 14 ? 3 : 4;
    const std::string_view ch = std::string_view(text).substr(i, n);
    i += n;
    if (n == 1) {
      const char c = ch.front();
      const bool unsafe = u < 0x20 || u == 0x7F || std::string_view("/\\:*?\"<>|").find(c) != std::string_view::npos;
      put(unsafe ? std::string_view("_") : ch);
      continue;
    }
    // U+FFFD (what clean_utf8 made of bad bytes), C1 controls, bidirectional overrides and
    // isolates (names that display reversed), zero-width no-break space: '_'.
    const std::uint32_t cp = n == 2 ? ((u & 0x1FU) << 6) | (static_cast<unsigned char>(ch[1]) & 0x3FU)
                             : n == 3 ? ((u & 0x0FU) << 12) | ((static_cast<unsigned char>(ch[1]) & 0x3FU) << 6) |
                                            (static_cast<unsigned char>(ch[2]) & 0x3FU)
                                      : 0x10000U;
    const bool unsafe = cp == 0xFFFD || (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
                        (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF || cp == 0x200E || cp == 0x200F;
    put(unsafe ? std::string_view("_") : ch);
  }
  const auto trim = [](std::string &s) {
    while (!s.empty() && (s.front() == '.' || s.front() == '_' || s.front() == '-' || s.front() == ' ')) {
      s.erase(s.begin());
    }
    while (!s.empty() && (s.back() == '.' || s.back() == '_' || s.back() == ' ')) {
      s.pop_back(); // Windows drops trailing dots and spaces
    }
  };
  trim(out);
  if (out.size() > max_bytes) {
    std::size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0U) == 0x80U) {
      --cut; // never inside a UTF-8 sequence
    }
    out.resize(cut);
    trim(out);
  }
  if (out.empty()) {
    out = "item";
  }
  if (is_reserved(out)) {
    out.insert(out.begin(), '_');
  }
  return out;
}

std::vector<std::string> find_addresses(std::string_view text) {
  std::vector<std::string> out;
  for (const auto &span : candidates(text)) {
    if (!span.ip) {
      out.emplace_back(text.substr(span.begin, span.end - span.begin));
    }
  }
  return out;
}

OthersMasker::OthersMasker(const index::Normalizer &normalizer, const SubjectProfile &subject,
                           redaction::PersonLabels *people)
    : m_normalizer(normalizer), m_people(people) {
  for (const auto &e : subject.emails) {
    if (auto n = normalizer.email(e)) {
      m_emails.push_back(*n);
    }
  }
  for (const auto &ip : subject.ips) {
    if (auto n = normalizer.ip(ip)) {
      m_ips_subject.push_back(*n);
    }
  }
}

bool OthersMasker::is_subject_address(std::string_view address) const {
  auto n = m_normalizer.email(address);
  return n && std::find(m_emails.begin(), m_emails.end(), *n) != m_emails.end();
}

std::string OthersMasker::mask(std::string_view text) {
  std::string out;
  std::size_t at = 0;
  for (const auto &span : candidates(text)) {
    std::string_view tok = text.substr(span.begin, span.end - span.begin);
    std::string replacement;
    if (span.ip) {
      auto n = m_normalizer.ip(tok);
      if (!n) {
        continue; // not an IP after all (a time, a hex id)
      }
      if (std::find(m_ips_subject.begin(), m_ips_subject.end(), *n) == m_ips_subject.end()) {
        replacement = "[other IP]";
        ++m_ips;
      }
    } else if (!is_subject_address(tok)) {
      std::optional<std::string> n = m_normalizer.email(tok);
      if (n && redaction::is_placeholder_address(*n)) {
        continue; // already a placeholder of the message copies
      }
      std::optional<std::string> label = m_people != nullptr && n ? m_people->identifier("email", *n) : std::nullopt;
      if (m_people != nullptr && n && !label) {
        continue; // kept (access.unmasked)
      }
      replacement = label ? *label : std::string("[other person]");
      ++m_addresses;
    }
    if (!replacement.empty()) {
      out.append(text.substr(at, span.begin - at));
      out.append(replacement);
      at = span.end;
    }
  }
  out.append(text.substr(at));
  return out;
}

std::vector<std::string> missing_access_information(const core::AccessInfo &a) {
  std::vector<std::string> missing;
  const auto need = [&](bool unset, const char *key) {
    if (unset) {
      missing.emplace_back(key);
    }
  };
  need(a.controller.empty(), "controller");
  need(a.contact.empty(), "contact");
  need(a.purposes.empty(), "purposes");
  need(a.categories.empty(), "categories");
  need(a.recipients.empty(), "recipients");
  need(a.source_of_data.empty(), "source_of_data");
  need(a.supervisory_authority.empty(), "supervisory_authority");
  need(a.automated_decisions.empty(), "automated_decisions");
  need(a.transfers.empty(), "transfers");
  return missing;
}

std::set<std::pair<std::string, std::string>> kept_identities(const core::Config &config, const SubjectProfile &subject,
                                                              const index::Normalizer &normalizer) {
  std::set<std::pair<std::string, std::string>> kept;
  for (const auto &e : subject.emails) {
    if (auto n = normalizer.email(e)) {
      kept.emplace("email", *n);
    }
  }
  for (const auto &e : config.access.unmasked) {
    if (auto n = normalizer.email(e)) {
      kept.emplace("email", *n);
    }
  }
  for (const auto &name : subject.names) {
    if (std::vector<std::string> tokens = normalizer.name_tokens(name); !tokens.empty()) {
      kept.emplace("name", redaction::name_value(std::move(tokens)));
    }
  }
  for (const auto &phone : subject.phones) {
    try {
      if (auto n = normalizer.phone(phone)) {
        kept.emplace("phone", *n);
      }
    } catch (...) { // the phone module could not be loaded: then no phone is masked either
    }
  }
  return kept;
}

core::Result<std::pair<std::string, std::string>> typed_identity(std::string_view raw,
                                                                const index::Normalizer &normalizer) {
  if (raw.find('@') != std::string_view::npos) {
    if (auto n = normalizer.email(raw)) {
      return std::pair<std::string, std::string>{"email", *n};
    }
    return core::fail(core::ErrorCode::usage, fmt::format("export: '{}' is not an e-mail address", raw));
  }
  if (std::ranges::any_of(raw, [](char c) { return c >= '0' && c <= '9'; })) {
    try {
      if (auto n = normalizer.phone(raw)) {
        return std::pair<std::string, std::string>{"phone", *n};
      }
    } catch (const std::exception &e) {
      return core::fail(core::ErrorCode::internal, fmt::format("export: phone numbers: {}", e.what()));
    }
    return core::fail(core::ErrorCode::usage, fmt::format("export: '{}' is not a telephone number", raw));
  }
  std::vector<std::string> tokens = normalizer.name_tokens(raw);
  if (tokens.size() < 2) {
    return core::fail(core::ErrorCode::usage,
                      fmt::format("export: '{}': a name needs two words or more (names in text are matched "
                                  "as 2-4 words)",
                                  raw));
  }
  return std::pair<std::string, std::string>{"name", redaction::name_value(std::move(tokens))};
}

core::Result<std::string> make_zip(const std::vector<ZipEntry> &entries) {
  if (entries.size() > 0xFFFF) {
    return core::fail(core::ErrorCode::data, "zip: more than 65535 files (ZIP64 not supported)");
  }
  std::string out;
  std::string central;
  for (const auto &e : entries) {
    if (e.data.size() > 0xFFFFFFF0ULL || out.size() > 0xFFFFFFF0ULL || e.name.size() > 0xFFFF) {
      return core::fail(core::ErrorCode::data, "zip: package larger than 4 GiB (ZIP64 not supported)");
    }
    auto crc = static_cast<std::uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef *>(e.data.data()), static_cast<uInt>(e.data.size())));
    std::string deflated;
    z_stream zs{};
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      return core::fail(core::ErrorCode::internal, "zip: deflateInit2 failed");
    }
    deflated.resize(deflateBound(&zs, static_cast<uLong>(e.data.size())));
    zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(e.data.data()));
    zs.avail_in = static_cast<uInt>(e.data.size());
    zs.next_out = reinterpret_cast<Bytef *>(deflated.data());
    zs.avail_out = static_cast<uInt>(deflated.size());
    int rc = deflate(&zs, Z_FINISH);
    deflated.resize(zs.total_out);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
      return core::fail(core::ErrorCode::internal, "zip: deflate failed");
    }
    bool store = deflated.size() >= e.data.size();
    const std::string &body = store ? e.data : deflated;
    auto [dtime, ddate] = dos_time(e.mtime);
    auto offset = static_cast<std::uint32_t>(out.size());
    auto header = [&](std::string &h, bool central_dir) {
      put32(h, central_dir ? 0x02014b50U : 0x04034b50U);
      if (central_dir) {
        put16(h, (3U << 8) | 20U); // made by: Unix, 2.0
      }
      put16(h, 20);      // version needed
      put16(h, 0x0800);  // UTF-8 names
      put16(h, store ? 0U : 8U);
      put16(h, dtime);
      put16(h, ddate);
      put32(h, crc);
      put32(h, static_cast<std::uint32_t>(body.size()));
      put32(h, static_cast<std::uint32_t>(e.data.size()));
      put16(h, static_cast<std::uint32_t>(e.name.size()));
      put16(h, 0); // extra
      if (central_dir) {
        put16(h, 0);                    // comment
        put16(h, 0);                    // disk
        put16(h, 0);                    // internal attributes
        put32(h, 0100644U << 16);       // external: Unix mode
        put32(h, offset);
      }
      h += e.name;
    };
    header(out, false);
    out += body;
    header(central, true);
  }
  if (out.size() + central.size() > 0xFFFFFFF0ULL) {
    return core::fail(core::ErrorCode::data, "zip: package larger than 4 GiB (ZIP64 not supported)");
  }
  auto cd_offset = static_cast<std::uint32_t>(out.size());
  out += central;
  put32(out, 0x06054b50U);
  put16(out, 0);
  put16(out, 0);
  put16(out, static_cast<std::uint32_t>(entries.size()));
  put16(out, static_cast<std::uint32_t>(entries.size()));
  put32(out, static_cast<std::uint32_t>(central.size()));
  put32(out, cd_offset);
  put16(out, 0);
  return out;
}

} // namespace maildsar::access
