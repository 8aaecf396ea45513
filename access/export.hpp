// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// The Art. 15 access package (`maildsar export`): copies of every item held for a data subject,
// report.html and report.pdf (in the language asked for), manifest.json and summary.csv. See docs/cli.md "export" and docs/schemata.md
// "maildsar.export-manifest".

#include "access/text.hpp"
#include "core/config.hpp"
#include "core/progress.hpp"
#include "core/result.hpp"
#include "indexer/identity.hpp"
#include "query/query.hpp"
#include "redaction/message.hpp"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace maildsar::access {

using query::Hit;
using query::SubjectProfile;

enum class RedactOthers { no, yes };
enum class KeepOriginals { no, yes };
enum class ZipPackage { no, yes };
enum class Overwrite { no, yes };

struct ExportOptions {
  std::string out_dir;
  std::string operator_name;
  std::string tool_version;
  RedactOthers redact_others = RedactOthers::no;
  KeepOriginals keep_originals = KeepOriginals::no; // unmasked excerpts in <out>.originals/
  ZipPackage zip = ZipPackage::no;                  // also <out>.zip
  Overwrite force = Overwrite::no;                  // write into a non-empty out_dir
  /** A draft for the DPO's review: the package as it would be, marked DRAFT, and DIR.review.html
      beside it listing every redaction with who each placeholder stands for (never sent). */
  bool draft = false;
  /** The DPO's corrections after a draft: identifiers (addresses, names, phone numbers) that are
      never masked / always masked (a name written in text that no address field tied to anyone). */
  std::vector<std::string> unmask;
  std::vector<std::string> mask;
  std::int64_t now = 0;                             // seconds since the epoch; 0 = the clock
  /** The report's language (core::k_report_languages): access.language or export --language. */
  std::string language = "en";
  /** Progress: phase "items" (each item copied into the package). */
  core::ProgressFn on_progress = {};
};

/**
 * Who is kept unmasked when the copies are redacted: the subject's addresses, names and phone
 * numbers (normalised) and the config's access.unmasked addresses.
 */
[[nodiscard]] std::set<std::pair<std::string, std::string>> kept_identities(const core::Config &config,
                                                                            const SubjectProfile &subject,
                                                                            const index::Normalizer &normalizer);

/** An identifier as the DPO typed it (--mask/--unmask): ("email"|"phone"|"name", normalised). */
[[nodiscard]] core::Result<std::pair<std::string, std::string>> typed_identity(std::string_view raw,
                                                                              const index::Normalizer &normalizer);

/**
 * What the config's `access` section leaves unstated that the report must then call "not
 * stated" or fill with generic text (export warns about each): empty when all is there.
 */
[[nodiscard]] std::vector<std::string> missing_access_information(const core::AccessInfo &access);

struct ExportSummary {
  std::string out_dir;
  std::string zip_path;      // empty without --zip
  std::string package_hash;  // SHA-256 of the zip, else of manifest.json
  std::uint64_t items = 0;   // hits
  std::uint64_t copied = 0;  // items with a copy in the package
  std::uint64_t files = 0;   // files in the package (manifest.json included)
  std::uint64_t masked = 0;  // third-party identifiers masked (--redact-others)
  std::uint64_t withheld = 0; // attachments withheld from message copies (--redact-others)
  std::string review_path;    // DIR.review.html of a draft, else empty
  std::map<std::string, std::uint64_t> per_source; // source -> items
  std::vector<std::string> problems;               // items that could not be copied, and why
};

/**
 * Builds the access package for `subject` in options.out_dir (created 0700 when missing) and
 * records an "export" audit entry (request, operator, counts, package hash; no identities).
 * Items that cannot be read are listed in the report and in `problems`; the export goes on.
 *
 * @errors ErrorCode::cant_create when out_dir exists and is not empty (without Overwrite::yes)
 *         or cannot be created; errors of query::find; io errors writing the package.
 */
[[nodiscard]] core::Result<ExportSummary> export_package(const core::Config &config,
                                                         const SubjectProfile &subject,
                                                         const ExportOptions &options);

// ---- Building blocks (public for the tests) --------------------------------------------------

/**
 * A file or folder name safe on Windows, macOS and Linux made from untrusted text, readable in
 * any script: UTF-8 kept ("Entwürfe", "Входящие"; invalid bytes replaced); '_' for what some
 * system refuses or misreads: '/', '\\', control characters (NUL, C0, C1), ':*?"<>|', bidirectional
 * overrides and isolates, U+FEFF (runs of '_' collapsed); no ".." anywhere, no leading dots,
 * dashes, underscores or spaces, no trailing dots, underscores or spaces, no repeated spaces;
 * Windows reserved device names (CON, NUL, COM1, ...) prefixed with '_'; at most `max_bytes`
 * bytes, cut between characters; "item" when nothing is left.
 */
[[nodiscard]] std::string safe_file_name(std::string_view raw, std::size_t max_bytes = 60);

/** Addresses (addr-specs) found in text, as written, in order. */
[[nodiscard]] std::vector<std::string> find_addresses(std::string_view text);

/**
 * Masks the e-mail addresses and IP addresses of everyone except the subject in text
 * (Art. 15(4)): each is replaced by "[other person]" / "[other IP]".
 */
class OthersMasker {
public:
  /** With `people`, another person's address is shown as the label the message copies use
      ("[person 3]"), so that one person has one number across the package. */
  OthersMasker(const index::Normalizer &normalizer, const SubjectProfile &subject,
               redaction::PersonLabels *people = nullptr);
  [[nodiscard]] std::string mask(std::string_view text);
  /** Is `address` one of the subject's (after normalisation)? */
  [[nodiscard]] bool is_subject_address(std::string_view address) const;
  [[nodiscard]] std::uint64_t masked_addresses() const { return m_addresses; }
  [[nodiscard]] std::uint64_t masked_ips() const { return m_ips; }

private:
  const index::Normalizer &m_normalizer;
  redaction::PersonLabels *m_people = nullptr;
  std::vector<std::string> m_emails;
  std::vector<std::string> m_ips_subject;
  std::uint64_t m_addresses = 0;
  std::uint64_t m_ips = 0;
};

/** One ZIP entry. */
struct ZipEntry {
  std::string name; // '/'-separated, relative
  std::string data;
  std::int64_t mtime = 0;
};

/** A ZIP archive (deflate, UTF-8 names). ErrorCode::data beyond ZIP32 limits. */
[[nodiscard]] core::Result<std::string> make_zip(const std::vector<ZipEntry> &entries);

} // namespace maildsar::access
