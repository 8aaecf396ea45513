// SPDX-License-Identifier: GPL-3.0-or-later
#include "redaction/spans.hpp"

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>

namespace maildsar::redaction {

namespace {


constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }
constexpr bool is_high(char c) { return static_cast<unsigned char>(c) >= 0x80U; }
/** A byte of a word: ASCII letter or digit, or part of a multi-byte character. */
constexpr bool is_word_byte(char c) { return is_alnum(c) || is_high(c); }
constexpr bool in(char c, std::string_view set) { return set.find(c) != std::string_view::npos; }
constexpr bool is_phone_char(char c) { return is_digit(c) || in(c, " -.()+"); }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (is_alpha(x) ? static_cast<char>(x | 0x20) : x) ==
                  (is_alpha(y) ? static_cast<char>(y | 0x20) : y);
         });
}

/** Which bytes of a line are taken. */
class Mask {
public:
  explicit Mask(std::size_t n) : m_bits(n, 0) {}
  [[nodiscard]] bool free(std::size_t begin, std::size_t end) const {
    return std::none_of(m_bits.begin() + static_cast<std::ptrdiff_t>(begin),
                        m_bits.begin() + static_cast<std::ptrdiff_t>(end),
                        [](char b) { return b != 0; });
  }
  void mark(std::size_t begin, std::size_t end) {
    std::fill(m_bits.begin() + static_cast<std::ptrdiff_t>(begin),
              m_bits.begin() + static_cast<std::ptrdiff_t>(end), 1);
  }

private:
  std::vector<char> m_bits;
};

struct Range {
  std::size_t begin = 0;
  std::size_t end = 0;
};

/** IPs, versions ("2.0.0") and dates ("2023-11-14") are never part of a phone number. */
bool ip_or_date_shaped(std::string_view token) {
  while (!token.empty() && !is_digit(token.back())) {
    token.remove_suffix(1);
  }
  std::vector<std::size_t> groups;
  char separator = 0;
  std::size_t length = 0;
  for (const char c : token) {
    if (is_digit(c)) {
      ++length;
      continue;
    }
    if (length == 0 || (separator != 0 && c != separator) || !in(c, ".-/")) {
      return false;
    }
    separator = c;
    groups.push_back(length);
    length = 0;
  }
  if (length == 0) {
    return false;
  }
  groups.push_back(length);
  if (groups.size() < 3) {
    return false;
  }
  if (separator == '.' && std::all_of(groups.begin(), groups.end(),
                                      [](std::size_t g) { return g <= 3; })) {
    return true;
  }
  return groups.size() == 3 && ((groups[0] == 4 && groups[1] <= 2 && groups[2] <= 2) ||
                                (groups[0] <= 2 && groups[1] <= 2 && groups[2] == 4));
}

/** A Message-ID ("message-id=<x@y>", "Message-ID: <x@y>"): not an address of anyone. */
bool is_message_id(std::string_view line, std::size_t begin) {
  if (begin == 0 || line[begin - 1] != '<') {
    return false;
  }
  std::size_t end = begin - 1;
  while (end > 0 && in(line[end - 1], " =:")) {
    --end;
  }
  constexpr std::string_view k_key = "message-id";
  return end >= k_key.size() && iequals(line.substr(end - k_key.size(), k_key.size()), k_key);
}

struct PhoneToken {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::size_t digits = 0;
  bool barrier = false;
};


constexpr std::size_t k_phone_min_digits = 7;
constexpr std::size_t k_phone_max_digits = 17;
constexpr std::size_t k_phone_max_token = 24;
constexpr std::size_t k_name_max_words = 4;

/** White space, or ", " between the words of a name. */
bool is_name_gap(std::string_view gap) {
  if (gap.empty() || gap.size() > 4) {
    return false;
  }
  std::size_t commas = 0;
  for (std::size_t i = 0; i < gap.size(); ++i) {
    if (gap[i] == ',') {
      if (i != 0) {
        return false;
      }
      ++commas;
    } else if (gap[i] != ' ' && gap[i] != '\t') {
      return false;
    }
  }
  return commas <= 1;
}

} // namespace

std::string name_value(std::vector<std::string> tokens) {
  std::sort(tokens.begin(), tokens.end());
  std::string joined;
  for (const std::string &t : tokens) {
    if (!joined.empty()) {
      joined.push_back(' ');
    }
    joined += t;
  }
  return joined;
}

std::vector<Found> find_identities(std::string_view line, const index::Normalizer &normalizer,
                                   const Search &search) {
  const bool everyone = search.everyone;
  Mask taken(line.size());   // bytes already replaced
  Mask address(line.size()); // bytes of address-like tokens, matched or not
  std::vector<Found> hits;
  const auto wanted = [&](std::string_view kind, const std::string &value) {
    return everyone || (search.wanted && search.wanted(kind, value));
  };
  const auto take = [&](std::size_t begin, std::size_t end, std::string_view kind,
                        std::string value) {
    taken.mark(begin, end);
    hits.push_back(Found{begin, end, kind, std::move(value)});
  };

  // E-mail and IP addresses: the very spans the indexer finds (index::address_spans), so that
  // whatever `find` reports is replaced here. The whole token must match, so near misses stay as
  // they are.
  std::vector<index::TextSpan> spans = index::address_spans(line);
  for (const index::TextSpan &s : spans) {
    if (s.kind != index::IdentityKind::email) {
      continue;
    }
    address.mark(s.begin, s.end);
    if ((!everyone && !search.email) || (everyone && is_message_id(line, s.begin))) {
      continue;
    }
    const std::string_view token = line.substr(s.begin, s.end - s.begin);
    const std::string_view word = index::batv_srs_word(line, s.begin, s.end);
    if (std::optional<std::string> n = normalizer.email(token); n && wanted("email", *n)) {
      take(s.begin, s.end, "email", std::move(*n));
    } else if (std::optional<std::string> w = normalizer.wrapped_email(word);
               n && w && wanted("email", *w)) {
      // A BATV/SRS address wrapping the subject's (the whole word, as the indexer reads it).
      const auto begin = static_cast<std::size_t>(word.data() - line.data());
      address.mark(begin, s.end);
      take(begin, s.end, "email", std::move(*w));
    }
  }
  if (search.email && !everyone) {
    // Addresses as list archives hide them ("alice at example.com"), as the indexer finds them
    // in the texts of messages.
    for (const index::TextSpan &s : index::obfuscated_email_spans(line)) {
      if (!address.free(s.begin, s.end)) {
        continue;
      }
      if (std::optional<std::string> n = normalizer.email(line.substr(s.begin, s.end - s.begin));
          n && wanted("email", *n)) {
        address.mark(s.begin, s.end);
        take(s.begin, s.end, "email", std::move(*n));
      }
    }
  }
  if (everyone || search.ip) {
    // Longest first: an IPv4-mapped IPv6 address holds a dotted quad.
    std::ranges::stable_sort(spans, std::ranges::greater{},
                             [](const index::TextSpan &s) { return s.end - s.begin; });
    for (const index::TextSpan &s : spans) {
      // Anonymisation keeps what lies inside address-like tokens (Message-IDs hold IPs); a
      // subject's IP is replaced wherever the indexer finds it.
      if (s.kind != index::IdentityKind::ip || !taken.free(s.begin, s.end) ||
          (everyone && !address.free(s.begin, s.end))) {
        continue;
      }
      if (std::optional<std::string> n = normalizer.ip(line.substr(s.begin, s.end - s.begin));
          n && wanted("ip", *n)) {
        take(s.begin, s.end, "ip", std::move(*n));
      }
    }
  }

  // Phone numbers.
  if (everyone || search.phone) {
    const auto phone = [&](std::string_view text) -> std::optional<std::string> {
      try {
        return normalizer.phone(text);
      } catch (...) {
        return std::nullopt; // phone module unavailable (see the class comment)
      }
    };
    std::size_t pos = 0;
    while (pos < line.size()) {
      const char c = line[pos];
      if (!is_phone_char(c) || c == ' ') {
        ++pos;
        continue;
      }
      // A maximal run of phone characters; its white-space separated pieces are the tokens.
      std::size_t end = pos;
      while (end < line.size() && is_phone_char(line[end])) {
        ++end;
      }
      const std::size_t run_begin = pos;
      pos = end;
      std::vector<PhoneToken> tokens;
      for (std::size_t i = run_begin; i < end;) {
        if (line[i] == ' ') {
          ++i;
          continue;
        }
        PhoneToken t{i, i, 0, false};
        while (t.end < end && line[t.end] != ' ') {
          t.digits += is_digit(line[t.end]) ? 1U : 0U;
          ++t.end;
        }
        i = t.end;
        const std::string_view piece = line.substr(t.begin, t.end - t.begin);
        const std::size_t plus = piece.find('+');
        const bool plus_misplaced =
            plus != std::string_view::npos &&
            ((plus != 0 && (plus != 1 || piece.front() != '(')) ||
             piece.find('+', plus + 1) != std::string_view::npos);
        t.barrier = t.digits == 0 || piece.size() > k_phone_max_token || plus_misplaced ||
                    ip_or_date_shaped(piece) || !address.free(t.begin, t.end);
        tokens.push_back(t);
      }
      if (tokens.empty()) {
        continue;
      }
      // Digits glued to a word, a key or an address are a field, not a number.
      const char before = run_begin > 0 ? line[run_begin - 1] : ' ';
      const std::string_view first = line.substr(tokens.front().begin);
      const bool international = first.starts_with('+') || first.starts_with("(+");
      if (is_word_byte(before) || in(before, "_@/.\\&#%$") ||
          (everyone && in(before, "=[:") && !international)) {
        tokens.front().barrier = true;
      }
      const char after = end < line.size() ? line[end] : ' ';
      const char after2 = end + 1 < line.size() ? line[end + 1] : ' ';
      if (tokens.back().end == end &&
          (is_word_byte(after) || in(after, "_@/\\&#%$") || (after == ':' && is_digit(after2)))) {
        tokens.back().barrier = true;
      }
      for (std::size_t i = 0; i < tokens.size();) {
        bool matched = false;
        for (std::size_t j = tokens.size(); j-- > i && !matched;) {
          std::size_t digits = 0;
          bool blocked = false;
          for (std::size_t k = i; k <= j; ++k) {
            digits += tokens[k].digits;
            blocked = blocked || tokens[k].barrier;
          }
          if (blocked || digits < k_phone_min_digits || digits > k_phone_max_digits) {
            continue;
          }
          std::size_t b = tokens[i].begin;
          std::size_t e = tokens[j].end;
          while (e > b && !is_digit(line[e - 1])) {
            --e;
          }
          const std::string_view text = line.substr(b, e - b);
          if (everyone && (digits < 9 || !(text.starts_with('+') || text.starts_with("(+") ||
                                           text.starts_with('0') || text.starts_with("(0")))) {
            continue;
          }
          if (!taken.free(b, e)) {
            continue;
          }
          if (std::optional<std::string> n = phone(text); n && wanted("phone", *n)) {
            take(b, e, "phone", std::move(*n));
            matched = true;
            i = j + 1;
          }
        }
        if (!matched) {
          ++i;
        }
      }
    }
  }

  // Names: windows of 2-4 words, in either order, never inside an address.
  if (!everyone && search.name) {
    std::vector<Range> words;
    for (std::size_t i = 0; i < line.size();) {
      if (!is_word_byte(line[i])) {
        ++i;
        continue;
      }
      std::size_t e = i;
      while (e < line.size() && is_word_byte(line[e])) {
        ++e;
      }
      words.push_back(Range{i, e});
      i = e;
    }
    for (std::size_t i = 0; i < words.size();) {
      bool matched = false;
      const std::size_t most = std::min(k_name_max_words, words.size() - i);
      for (std::size_t n = most; n >= 2 && !matched; --n) {
        const std::size_t b = words[i].begin;
        const std::size_t e = words[i + n - 1].end;
        bool ok = taken.free(b, e) && address.free(b, e);
        for (std::size_t k = i; ok && k + 1 < i + n; ++k) {
          ok = is_name_gap(line.substr(words[k].end, words[k + 1].begin - words[k].end));
        }
        if (!ok) {
          continue;
        }
        std::vector<std::string> tokens = normalizer.name_tokens(line.substr(b, e - b));
        if (tokens.size() < 2) {
          continue;
        }
        std::string value = name_value(std::move(tokens));
        if (wanted("name", value)) {
          take(b, e, "name", std::move(value));
          matched = true;
          i += n;
        }
      }
      if (!matched) {
        ++i;
      }
    }
  }

  return hits;
}

} // namespace maildsar::redaction
