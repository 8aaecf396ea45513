// SPDX-License-Identifier: GPL-3.0-or-later
// The report's catalogues: a PO parser, the plural-rule evaluator and the lookups.
#include "access/i18n.hpp"

#include "core/config.hpp"
#include "core/time.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>

namespace maildsar::access::i18n {

namespace {

constexpr std::array<std::string_view, 12> k_months{
    MAILDSAR_N_("January"), MAILDSAR_N_("February"), MAILDSAR_N_("March"),     MAILDSAR_N_("April"),
    MAILDSAR_N_("May"),     MAILDSAR_N_("June"),     MAILDSAR_N_("July"),      MAILDSAR_N_("August"),
    MAILDSAR_N_("September"), MAILDSAR_N_("October"), MAILDSAR_N_("November"), MAILDSAR_N_("December")};

/** Recursive-descent evaluator of a plural expression (the grammar of gettext's plural.y). */
class PluralParser {
public:
  PluralParser(std::string_view text, std::uint64_t n) : m_text(text), m_n(n) {}

  std::optional<std::uint64_t> run() {
    auto v = ternary(0);
    skip();
    if (!v || m_pos != m_text.size()) {
      return std::nullopt;
    }
    return v;
  }

private:
  static constexpr int k_max_depth = 64;

  void skip() {
    while (m_pos < m_text.size() && std::isspace(static_cast<unsigned char>(m_text[m_pos])) != 0) {
      ++m_pos;
    }
  }
  bool eat(std::string_view op) {
    skip();
    if (m_text.substr(m_pos, op.size()) == op) {
      // "<" must not take the first half of "<=", "!" not of "!=", "=" alone is no operator.
      if (op.size() == 1 && m_pos + 1 < m_text.size() && m_text[m_pos + 1] == '=' &&
          (op == "<" || op == ">" || op == "!")) {
        return false;
      }
      m_pos += op.size();
      return true;
    }
    return false;
  }

  std::optional<std::uint64_t> ternary(int depth) {
    if (depth > k_max_depth) {
      return std::nullopt;
    }
    auto cond = logical_or(depth + 1);
    if (!cond || !eat("?")) {
      return cond;
    }
    auto yes = ternary(depth + 1);
    if (!yes || !eat(":")) {
      return std::nullopt;
    }
    auto no = ternary(depth + 1);
    if (!no) {
      return std::nullopt;
    }
    return *cond != 0 ? yes : no;
  }
  std::optional<std::uint64_t> logical_or(int depth) {
    auto l = logical_and(depth);
    while (l && eat("||")) {
      auto r = logical_and(depth);
      if (!r) {
        return std::nullopt;
      }
      l = (*l != 0 || *r != 0) ? 1U : 0U;
    }
    return l;
  }
  std::optional<std::uint64_t> logical_and(int depth) {
    auto l = equality(depth);
    while (l && eat("&&")) {
      auto r = equality(depth);
      if (!r) {
        return std::nullopt;
      }
      l = (*l != 0 && *r != 0) ? 1U : 0U;
    }
    return l;
  }
  std::optional<std::uint64_t> equality(int depth) {
    auto l = relational(depth);
    while (l) {
      if (eat("==")) {
        auto r = relational(depth);
        if (!r) {
          return std::nullopt;
        }
        l = *l == *r ? 1U : 0U;
      } else if (eat("!=")) {
        auto r = relational(depth);
        if (!r) {
          return std::nullopt;
        }
        l = *l != *r ? 1U : 0U;
      } else {
        break;
      }
    }
    return l;
  }
  std::optional<std::uint64_t> relational(int depth) {
    auto l = additive(depth);
    while (l) {
      int op = eat("<=") ? 1 : eat(">=") ? 2 : eat("<") ? 3 : eat(">") ? 4 : 0;
      if (op == 0) {
        break;
      }
      auto r = additive(depth);
      if (!r) {
        return std::nullopt;
      }
      const bool v = op == 1 ? *l <= *r : op == 2 ? *l >= *r : op == 3 ? *l < *r : *l > *r;
      l = v ? 1U : 0U;
    }
    return l;
  }
  std::optional<std::uint64_t> additive(int depth) {
    auto l = multiplicative(depth);
    while (l) {
      int op = eat("+") ? 1 : eat("-") ? 2 : 0;
      if (op == 0) {
        break;
      }
      auto r = multiplicative(depth);
      if (!r) {
        return std::nullopt;
      }
      l = op == 1 ? *l + *r : *l - *r;
    }
    return l;
  }
  std::optional<std::uint64_t> multiplicative(int depth) {
    auto l = unary(depth);
    while (l) {
      int op = eat("*") ? 1 : eat("/") ? 2 : eat("%") ? 3 : 0;
      if (op == 0) {
        break;
      }
      auto r = unary(depth);
      if (!r) {
        return std::nullopt;
      }
      if (op == 1) {
        l = *l * *r;
      } else {
        l = *r == 0 ? 0U : op == 2 ? *l / *r : *l % *r; // no trap on a hostile "n % 0"
      }
    }
    return l;
  }
  std::optional<std::uint64_t> unary(int depth) {
    if (depth > k_max_depth) {
      return std::nullopt;
    }
    if (eat("!")) {
      auto v = unary(depth + 1);
      return v ? std::optional<std::uint64_t>(*v == 0 ? 1U : 0U) : std::nullopt;
    }
    skip();
    if (m_pos >= m_text.size()) {
      return std::nullopt;
    }
    if (eat("(")) {
      auto v = ternary(depth + 1);
      if (!v || !eat(")")) {
        return std::nullopt;
      }
      return v;
    }
    if (m_text[m_pos] == 'n') {
      ++m_pos;
      return m_n;
    }
    if (std::isdigit(static_cast<unsigned char>(m_text[m_pos])) == 0) {
      return std::nullopt;
    }
    std::uint64_t v = 0;
    std::size_t digits = 0;
    while (m_pos < m_text.size() && std::isdigit(static_cast<unsigned char>(m_text[m_pos])) != 0) {
      if (++digits > 18) {
        return std::nullopt;
      }
      v = v * 10 + static_cast<std::uint64_t>(m_text[m_pos] - '0');
      ++m_pos;
    }
    return v;
  }

  std::string_view m_text;
  std::uint64_t m_n;
  std::size_t m_pos = 0;
};

/** The value of a PO string token ("..." with C escapes) starting at `pos`; false if malformed. */
bool po_string(std::string_view line, std::size_t pos, std::string &out) {
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) {
    ++pos;
  }
  if (pos >= line.size() || line[pos] != '"') {
    return false;
  }
  ++pos;
  while (pos < line.size() && line[pos] != '"') {
    char c = line[pos++];
    if (c == '\\') {
      if (pos >= line.size()) {
        return false;
      }
      const char e = line[pos++];
      switch (e) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case '"': c = '"'; break;
      case '\\': c = '\\'; break;
      default: return false;
      }
    }
    out.push_back(c);
  }
  if (pos >= line.size()) {
    return false; // unterminated
  }
  ++pos;
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t' || line[pos] == '\r')) {
    ++pos;
  }
  return pos == line.size();
}

} // namespace

std::optional<std::uint64_t> eval_plural(std::string_view expression, std::uint64_t n) {
  return PluralParser(expression, n).run();
}

core::Result<Catalog> Catalog::parse_po(std::string_view po, std::string language) {
  Catalog cat;
  cat.m_language = std::move(language);
  struct Pending {
    std::string id;
    std::string plural_id;
    std::map<std::size_t, std::string> forms;
    bool fuzzy = false;
    bool has_id = false;
  } entry;
  std::string *target = nullptr; // what a continuation line appends to
  bool next_fuzzy = false;
  std::size_t line_no = 0;
  const auto fail = [&](std::string_view what) {
    return core::fail(core::ErrorCode::data, fmt::format("catalogue {}: line {}: {}", cat.m_language, line_no, what));
  };
  const auto finish = [&]() -> core::Status {
    if (!entry.has_id) {
      return {};
    }
    if (entry.forms.empty()) {
      return fail("msgid without msgstr");
    }
    Message m;
    m.plural_id = entry.plural_id;
    for (std::size_t i = 0; i < entry.forms.size(); ++i) {
      auto it = entry.forms.find(i);
      if (it == entry.forms.end()) {
        return fail("msgstr[] indices are not 0, 1, ...");
      }
      m.forms.push_back(it->second);
    }
    if (entry.id.empty()) { // the header
      const std::string &h = m.forms.front();
      if (auto at = h.find("Plural-Forms:"); at != std::string::npos) {
        const std::string line = h.substr(at, h.find('\n', at) - at);
        const auto np = line.find("nplurals=");
        const auto pl = line.find("plural=", np == std::string::npos ? 0 : np + 9);
        if (np == std::string::npos || pl == std::string::npos) {
          return fail("Plural-Forms without nplurals= and plural=");
        }
        const std::size_t count = static_cast<std::size_t>(std::atoi(line.c_str() + np + 9));
        std::string rule = line.substr(pl + 7);
        while (!rule.empty() && (rule.back() == ';' || rule.back() == ' ')) {
          rule.pop_back();
        }
        if (count < 1 || count > 6 || !eval_plural(rule, 1)) {
          return fail(fmt::format("bad Plural-Forms '{}'", line));
        }
        cat.m_nplurals = count;
        cat.m_plural_rule = rule;
      }
    } else if (!entry.fuzzy) {
      cat.m_messages.insert_or_assign(entry.id, std::move(m));
    }
    entry = Pending{};
    target = nullptr;
    return {};
  };
  std::size_t pos = 0;
  while (pos < po.size()) {
    const std::size_t eol = po.find('\n', pos);
    std::string_view line = po.substr(pos, eol == std::string_view::npos ? po.size() - pos : eol - pos);
    pos = eol == std::string_view::npos ? po.size() : eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    std::string_view trimmed = line;
    while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\t')) {
      trimmed.remove_prefix(1);
    }
    if (trimmed.empty()) {
      continue;
    }
    if (trimmed.front() == '#') {
      if (trimmed.starts_with("#,") && trimmed.find("fuzzy") != std::string_view::npos) {
        MAILDSAR_TRY(finish());
        next_fuzzy = true;
      }
      continue;
    }
    if (trimmed.front() == '"') {
      if (target == nullptr || !po_string(trimmed, 0, *target)) {
        return fail("string outside an entry or malformed");
      }
      continue;
    }
    std::string value;
    if (trimmed.starts_with("msgid_plural")) {
      if (!entry.has_id || !po_string(trimmed, 12, value)) {
        return fail("malformed msgid_plural");
      }
      entry.plural_id = std::move(value);
      target = &entry.plural_id;
    } else if (trimmed.starts_with("msgid")) {
      MAILDSAR_TRY(finish());
      if (!po_string(trimmed, 5, value)) {
        return fail("malformed msgid");
      }
      entry.has_id = true;
      entry.fuzzy = next_fuzzy;
      next_fuzzy = false;
      entry.id = std::move(value);
      target = &entry.id;
    } else if (trimmed.starts_with("msgstr[")) {
      const auto close = trimmed.find(']');
      if (!entry.has_id || close == std::string_view::npos || close == 7 || close > 9) {
        return fail("malformed msgstr[N]");
      }
      std::size_t index = 0;
      for (char c : trimmed.substr(7, close - 7)) {
        if (c < '0' || c > '9') {
          return fail("malformed msgstr[N]");
        }
        index = index * 10 + static_cast<std::size_t>(c - '0');
      }
      if (!po_string(trimmed, close + 1, value) || entry.forms.contains(index)) {
        return fail("malformed or repeated msgstr[N]");
      }
      target = &(entry.forms[index] = std::move(value));
    } else if (trimmed.starts_with("msgstr")) {
      if (!entry.has_id || !entry.forms.empty() || !po_string(trimmed, 6, value)) {
        return fail("malformed msgstr");
      }
      target = &(entry.forms[0] = std::move(value));
    } else if (trimmed.starts_with("msgctxt")) {
      return fail("msgctxt is not used by maildsar's catalogues");
    } else {
      return fail("unknown keyword");
    }
  }
  MAILDSAR_TRY(finish());
  return cat;
}

core::Result<Catalog> Catalog::load(std::string_view language) {
  if (language == "en") {
    return Catalog();
  }
  const std::string_view po = embedded_catalogue(language);
  if (po.empty()) {
    return core::fail(core::ErrorCode::usage,
                      fmt::format("'{}' is not a report language (allowed: {})", language,
                                  fmt::join(core::k_report_languages, ", ")));
  }
  auto cat = parse_po(po, std::string(language));
  if (!cat) {
    return core::fail(core::ErrorCode::internal, cat.error().message);
  }
  return cat;
}

std::size_t Catalog::plural_index(std::uint64_t n) const {
  const std::optional<std::uint64_t> v = eval_plural(m_plural_rule, n);
  if (!v) {
    return n == 1 ? 0 : 1;
  }
  return static_cast<std::size_t>(std::min<std::uint64_t>(*v, m_nplurals - 1));
}

std::string Catalog::tr(std::string_view msgid) const {
  if (auto it = m_messages.find(msgid); it != m_messages.end() && !it->second.forms.front().empty()) {
    return it->second.forms.front();
  }
  return std::string(msgid);
}

std::string Catalog::trn(std::string_view singular, std::string_view plural, std::uint64_t n) const {
  if (auto it = m_messages.find(singular); it != m_messages.end() && !it->second.plural_id.empty()) {
    const std::size_t index = plural_index(n);
    if (index < it->second.forms.size() && !it->second.forms[index].empty()) {
      return it->second.forms[index];
    }
  }
  return std::string(n == 1 ? singular : plural);
}

std::string Catalog::date_time(std::int64_t seconds) const {
  const std::string day = std::to_string(std::atoi(core::format_utc(seconds, "%d").c_str())); // "3", not "03"
  const std::string month_number = core::format_utc(seconds, "%m");
  const int month = std::clamp(std::atoi(month_number.c_str()), 1, 12);
  return trf("{day} {month} {year}, {time} UTC", fmt::arg("day", day),
           fmt::arg("month", tr(k_months[static_cast<std::size_t>(month - 1)])),
           fmt::arg("year", core::format_utc(seconds, "%Y")), fmt::arg("time", core::format_utc(seconds, "%H:%M")));
}

} // namespace maildsar::access::i18n
