// SPDX-License-Identifier: GPL-3.0-or-later
#include "erasure/redact.hpp"

#include "core/hash.hpp"
#include "core/secret.hpp"
#include "redaction/spans.hpp"

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>

namespace maildsar::erasure {

namespace {
constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_high(char c) { return static_cast<unsigned char>(c) >= 0x80U; }
/** A byte of a word: ASCII letter or digit, or part of a multi-byte UTF-8 character. */
constexpr bool is_word_byte(char c) { return is_digit(c) || is_alpha(c) || is_high(c); }
} // namespace

std::string pseudonym(std::string_view key, std::string_view kind, std::string_view normalised,
                      std::string_view original) {
  std::string label = "maildsar-pseudonym";
  label.push_back('\0');
  label.append(kind);
  label.push_back('\0');
  label.append(normalised);
  label.push_back('\0');
  std::string stream;
  std::size_t block = 0;
  const auto stream_at = [&](std::size_t i) {
    while (stream.size() <= i) {
      stream += core::hmac_sha256_hex(key, label + std::to_string(block++));
    }
    return stream[i];
  };
  // Hex digit -> its value; the stream is lower-case hex.
  const auto nibble = [](char h) { return is_digit(h) ? h - '0' : h - 'a' + 10; };
  const std::size_t at = original.rfind('@');
  const std::size_t last_dot = original.rfind('.');
  const std::size_t tld_begin =
      at == std::string_view::npos ? original.size()
      : (last_dot != std::string_view::npos && last_dot > at) ? last_dot + 1
                                                              : at + 1;
  std::string out(original);
  for (std::size_t i = 0; i < original.size(); ++i) {
    const char c = original[i];
    const char h = stream_at(i);
    if (kind == "email") {
      if (at != std::string_view::npos && (i == at || (i > at && c == '.'))) {
        continue;
      }
      // The last label in digits: no real address looks like that (see email_candidates).
      out[i] = i >= tld_begin ? static_cast<char>('0' + nibble(h) % 10) : h;
    } else if (kind == "ip" || kind == "phone") {
      const bool keep = kind == "ip" ? (c == '.' || c == ':') : !is_digit(c);
      if (!keep) {
        // Letters g-v: never a valid IP address or phone number again.
        out[i] = static_cast<char>('g' + nibble(h));
      }
    } else if (kind != "name" || is_word_byte(c)) {
      out[i] = h;
    }
  }
  return out;
}

Redactor::Redactor(std::string key, std::vector<Target> targets,
                   const index::Normalizer &normalizer)
    : m_key(std::move(key)), m_normalizer(&normalizer) {
  for (const Target &t : targets) {
    m_targets.insert(t.kind + ":" + t.hash);
    m_has_email = m_has_email || t.kind == "email";
    m_has_ip = m_has_ip || t.kind == "ip";
    m_has_phone = m_has_phone || t.kind == "phone";
    m_has_name = m_has_name || t.kind == "name";
  }
}

Redactor::Redacted Redactor::redact(std::string_view line) const {
  return run(line, Mode::targets);
}

Redactor::Redacted Redactor::anonymize_all(std::string_view line) const {
  return run(line, Mode::everyone);
}

Redactor::Redacted Redactor::run(std::string_view line, Mode mode) const {
  redaction::Search search;
  search.email = m_has_email;
  search.ip = m_has_ip;
  search.phone = m_has_phone;
  search.name = m_has_name;
  search.everyone = mode == Mode::everyone;
  search.wanted = [&](std::string_view kind, const std::string &value) {
    return m_targets.contains(std::string(kind) + ":" + core::keyed_hash(m_key, kind, value));
  };
  const std::vector<redaction::Found> hits = redaction::find_identities(line, *m_normalizer, search);
  Redacted out{std::string(line), hits.size()};
  for (const redaction::Found &h : hits) {
    const std::string p =
        pseudonym(m_key, h.kind, h.normalised, line.substr(h.begin, h.end - h.begin));
    out.line.replace(h.begin, p.size(), p);
  }
  return out;
}

} // namespace maildsar::erasure
