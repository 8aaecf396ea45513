// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// The language of the access report (issue 18 item 4): a gettext-style catalogue keyed by the
// English msgid. The catalogues are PO files in access/i18n/ (de.po), compiled into the library
// at build time (access/i18n/embed.cmake), so the build tree and an installed program read the
// same texts and nothing is looked up at run time. English needs no catalogue.

#include "core/result.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/** Marks an English msgid that is looked up later (through a variable): for the msgid scan of
    the tests (tests/unit/access/test_report.cpp), like xgettext's N_(). */
#define MAILDSAR_N_(text) text

namespace maildsar::access::i18n {

/** One msgid's translations: [0] for a msgid without plural, else one per plural form. */
struct Message {
  std::string plural_id; // msgid_plural, "" when none
  std::vector<std::string> forms;
};

class Catalog {
public:
  /** English (no catalogue): every lookup gives the msgid. */
  Catalog() = default;

  /**
   * The catalogue of `language` (core::k_report_languages).
   * @errors ErrorCode::usage for a language without a catalogue (the message lists the allowed
   *         ones); ErrorCode::internal when the compiled-in catalogue does not parse.
   */
  [[nodiscard]] static core::Result<Catalog> load(std::string_view language);

  /**
   * Parses PO text (msgid, msgid_plural, msgstr, msgstr[N], continued strings, C escapes,
   * comments; entries marked "#, fuzzy" are left out, as msgfmt does) and its header's
   * Plural-Forms. @errors ErrorCode::data with the line of a syntax error.
   */
  [[nodiscard]] static core::Result<Catalog> parse_po(std::string_view po, std::string language);

  [[nodiscard]] const std::string &language() const { return m_language; }

  /** The translation of `msgid`, else `msgid` itself. */
  [[nodiscard]] std::string tr(std::string_view msgid) const;

  /** The form for `n` of a msgid with plural (gettext's ngettext): the catalogue's plural rule
      picks the form; without a translation English's (n == 1 ? singular : plural). */
  [[nodiscard]] std::string trn(std::string_view singular, std::string_view plural, std::uint64_t n) const;

  /** tr() with fmt arguments; a translation whose placeholders do not fit the arguments falls
      back to the English msgid (never throws). */
  template <class... Args> [[nodiscard]] std::string trf(std::string_view msgid, const Args &...args) const {
    return format(tr(msgid), msgid, args...);
  }
  /** trn() with fmt arguments, as trf(). */
  template <class... Args>
  [[nodiscard]] std::string trnf(std::string_view singular, std::string_view plural, std::uint64_t n,
                               const Args &...args) const {
    return format(trn(singular, plural, n), n == 1 ? singular : plural, args...);
  }

  /** A date and time for a person, in this language: "14 November 2023, 10:00 UTC",
      "14. November 2023, 10:00 UTC". */
  [[nodiscard]] std::string date_time(std::int64_t seconds) const;

  /** The plural form index for `n` by the catalogue's Plural-Forms (English's rule without one). */
  [[nodiscard]] std::size_t plural_index(std::uint64_t n) const;

  [[nodiscard]] const std::map<std::string, Message, std::less<>> &messages() const { return m_messages; }
  [[nodiscard]] std::size_t plural_count() const { return m_nplurals; }

private:
  template <class... Args>
  static std::string format(const std::string &pattern, std::string_view fallback, const Args &...args) {
    try {
      return fmt::format(fmt::runtime(pattern), args...);
    } catch (const fmt::format_error &) {
      try {
        return fmt::format(fmt::runtime(fallback), args...);
      } catch (const fmt::format_error &) {
        return std::string(fallback);
      }
    }
  }

  std::string m_language = "en";
  std::map<std::string, Message, std::less<>> m_messages;
  std::string m_plural_rule = "n != 1";
  std::size_t m_nplurals = 2;
};

/**
 * Evaluates a gettext plural expression (C syntax: n, integers, ! * / % + - < > <= >= == != &&
 * || ?: and parentheses) for `n`. nullopt for a malformed expression or one nested too deeply.
 */
[[nodiscard]] std::optional<std::uint64_t> eval_plural(std::string_view expression, std::uint64_t n);

/** The compiled-in PO text of `language` ("" when there is none). Generated at build time. */
[[nodiscard]] std::string_view embedded_catalogue(std::string_view language);

} // namespace maildsar::access::i18n
