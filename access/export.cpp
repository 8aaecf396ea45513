// SPDX-License-Identifier: GPL-3.0-or-later
// The Art. 15 access package: copies, report.html, manifest.json, summary.csv, audit entry.
#include "access/export.hpp"
#include "core/time.hpp"

#include "connectors/archive.hpp"
#include "connectors/item_reader.hpp"
#include "connectors/maildir.hpp"
#include "connectors/mta_queue.hpp"
#include "connectors/pst_export.hpp"
#include "core/audit.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/sqlite.hpp"
#include "indexer/catalog.hpp"
#include "indexer/indexer.hpp"
#include "indexer/schema.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <set>
#include <sys/stat.h>

namespace maildsar::access {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string iso(std::int64_t t) { return core::iso8601_utc(t); }

std::string plain_date(std::int64_t t) { return core::format_utc(t, "%d %B %Y, %H:%M UTC"); }

/** What a person calls an item. */
std::string category_of(const Hit &h, std::string_view extension) {
  switch (h.locator.store) {
  case connectors::StoreKind::maillog: return "delivery log record";
  case connectors::StoreKind::quarantine: return "quarantined message";
  case connectors::StoreKind::archive: return "message in a backup archive";
  case connectors::StoreKind::postfix_queue:
  case connectors::StoreKind::exim_spool: return "message waiting in a mail server queue";
  case connectors::StoreKind::pst:
    return extension == "vcf" ? "contact" : extension == "ics" ? "calendar entry"
           : extension == "txt" ? "other Outlook item" : "message";
  default: return "message";
  }
}

/** The folder path of an item's copy: source / store-specific folders, each sanitised. */
std::string folder_of(const Hit &h) {
  const auto &loc = h.locator;
  std::string out = safe_file_name(loc.source, 40);
  auto base = safe_file_name(fs::path(loc.path).filename().string(), 40);
  switch (loc.store) {
  case connectors::StoreKind::maildir: {
    std::string folder = loc.folder;
    while (!folder.empty() && folder.front() == '.') {
      folder.erase(folder.begin());
    }
    // the mailbox: the directory above "Maildir" (or the Maildir itself)
    fs::path dir(connectors::maildir_root(loc));
    std::string box = dir.filename() == "Maildir" ? dir.parent_path().filename().string()
                                                  : dir.filename().string();
    out += "/" + safe_file_name(box, 40) + "/" +
           (folder.empty() ? std::string("Inbox") : safe_file_name(folder, 40));
    break;
  }
  case connectors::StoreKind::pst: {
    out += "/" + base;
    std::size_t depth = 0;
    std::size_t pos = 0;
    while (pos <= loc.folder.size() && depth < 8) {
      auto slash = loc.folder.find('/', pos);
      std::string part = loc.folder.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
      if (!part.empty()) {
        out += "/" + safe_file_name(part, 40);
        ++depth;
      }
      if (slash == std::string::npos) {
        break;
      }
      pos = slash + 1;
    }
    break;
  }
  case connectors::StoreKind::quarantine:
    break;
  default:
    out += "/" + base;
  }
  return out;
}

/** Header fields (unfolded) of an RFC 5322 message: name (lower case) -> values. */
std::vector<std::pair<std::string, std::string>> header_fields(std::string_view msg) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos < msg.size()) {
    auto eol = msg.find('\n', pos);
    std::string_view line = msg.substr(pos, eol == std::string_view::npos ? msg.size() - pos : eol - pos);
    pos = eol == std::string_view::npos ? msg.size() : eol + 1;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      break;
    }
    if ((line.front() == ' ' || line.front() == '\t') && !out.empty()) {
      out.back().second += " ";
      out.back().second += line;
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      continue;
    }
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    out.emplace_back(std::move(name), std::string(line.substr(colon + 1)));
  }
  return out;
}

struct Correspondents {
  std::vector<std::string> from;
  std::vector<std::string> to; // to, cc, bcc
};

Correspondents correspondents_of_message(std::string_view msg) {
  Correspondents c;
  for (const auto &[name, value] : header_fields(msg)) {
    if (name == "from" || name == "sender") {
      for (auto &a : find_addresses(value)) {
        c.from.push_back(a);
      }
    } else if (name == "to" || name == "cc" || name == "bcc") {
      for (auto &a : find_addresses(value)) {
        c.to.push_back(a);
      }
    }
  }
  return c;
}

Correspondents correspondents_of_log(std::string_view lines) {
  Correspondents c;
  for (std::string_view key : {"from=<", "to=<", "orig_to=<"}) {
    std::size_t pos = 0;
    while ((pos = lines.find(key, pos)) != std::string_view::npos) {
      pos += key.size();
      auto end = lines.find('>', pos);
      if (end == std::string_view::npos) {
        break;
      }
      std::string addr(lines.substr(pos, end - pos));
      if (!addr.empty()) {
        (key == "from=<" ? c.from : c.to).push_back(addr);
      }
    }
  }
  return c;
}

void dedupe(std::vector<std::string> &v) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (auto &s : v) {
    std::string lower = s;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char ch) { return static_cast<char>(std::tolower(static_cast<unsigned char>(ch))); });
    if (seen.insert(lower).second) {
      out.push_back(s);
    }
  }
  v = std::move(out);
}

/** "message" -> "messages", "calendar entry" -> "calendar entries". */
std::string plural(const std::string &noun) {
  if (noun.size() > 1 && noun.back() == 'y' && std::string_view("aeiou").find(noun[noun.size() - 2]) == std::string_view::npos) {
    return noun.substr(0, noun.size() - 1) + "ies";
  }
  return noun + "s";
}

std::string join_labels(const std::set<std::string> &labels) {
  std::string out;
  for (const std::string &l : labels) {
    out += (out.empty() ? "" : ", ") + l;
  }
  return out;
}

/** One exported item. */
struct Entry {
  const Hit *hit = nullptr;
  std::string copy;      // package-relative path ("" = no copy)
  std::string category;
  std::string problem;   // why there is no (faithful) copy
  Correspondents people;
  std::string subject;   // as shown (masked when redacting)
  redaction::MessageReport redaction; // what redacting the message copy did (--redact-others)
};

/** One line for the report: what the redaction of a message copy did, "" when nothing. */
std::string redaction_note(const redaction::MessageReport &r) {
  std::vector<std::string> parts;
  if (const std::size_t n = r.header_replacements + r.text_replacements; n > 0) {
    parts.push_back(fmt::format("{} mention(s) of other people replaced ({})", n, join_labels(r.labels)));
  }
  for (const std::string &w : r.withheld) {
    parts.push_back("attachment withheld: " + w);
  }
  if (!r.removed_headers.empty()) {
    parts.push_back("signature fields removed (no longer valid after redaction)");
  }
  std::string out;
  for (const std::string &p : parts) {
    out += (out.empty() ? "" : "; ") + p;
  }
  return out;
}

struct SourceProblem {
  std::string source;
  std::string path;
  std::string error;
};

/** Files the catalog marks as unreadable (read-only query; a missing catalog gives none). */
std::vector<SourceProblem> unreadable_files(const core::Config &config) {
  std::vector<SourceProblem> out;
  std::string path = index::catalog_path(config);
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return out;
  }
  auto db = core::sqlite::Db::open(path, core::sqlite::Writable::no);
  if (!db) {
    return out;
  }
  auto stmt = db->prepare("SELECT s.name, f.path, f.last_error FROM files f JOIN sources s ON "
                          "f.source_id = s.id WHERE f.status = 'error' OR (f.status = 'done' AND f.last_error != '') "
                          "ORDER BY s.name, f.path");
  if (!stmt) {
    return out;
  }
  for (;;) {
    auto row = stmt->step();
    if (!row || !*row) {
      break;
    }
    out.push_back(SourceProblem{stmt->column_text(0), stmt->column_text(1), stmt->column_text(2)});
  }
  return out;
}

class Package {
public:
  Package(std::string dir, std::int64_t mtime) : m_dir(std::move(dir)), m_mtime(mtime) {}

  core::Status write(const std::string &rel, std::string_view data) {
    fs::path full = fs::path(m_dir) / rel;
    std::error_code ec;
    fs::create_directories(full.parent_path(), ec);
    if (ec) {
      return core::fail(core::ErrorCode::cant_create,
                        fmt::format("export: cannot create {}: {}", full.parent_path().string(), ec.message()));
    }
    MAILDSAR_TRY(core::write_file_atomic(full.string(), data, 0600));
    m_files.push_back(json{{"path", rel}, {"sha256", core::sha256_hex(data)}, {"size", data.size()}});
    m_zip.push_back(ZipEntry{rel, std::string(data), m_mtime});
    return {};
  }
  /** A name not used yet in the package (adds -2, -3 ... before the extension). */
  std::string unique(const std::string &folder, const std::string &stem, const std::string &ext) {
    std::string name = folder + "/" + stem + "." + ext;
    for (int n = 2; m_names.contains(name); ++n) {
      name = fmt::format("{}/{}-{}.{}", folder, stem, n, ext);
    }
    m_names.insert(name);
    return name;
  }
  [[nodiscard]] const json &files() const { return m_files; }
  [[nodiscard]] std::vector<ZipEntry> &zip_entries() { return m_zip; }

private:
  std::string m_dir;
  std::int64_t m_mtime;
  json m_files = json::array();
  std::vector<ZipEntry> m_zip;
  std::set<std::string> m_names;
};

std::string csv_field(std::string_view raw) {
  std::string s = clean_utf8(raw);
  for (char &c : s) {
    if (c == '\n' || c == '\t') {
      c = ' ';
    }
  }
  if (!s.empty() && std::string_view("=+-@").find(s.front()) != std::string_view::npos) {
    s.insert(s.begin(), '\''); // no spreadsheet formulas
  }
  if (s.find_first_of(",\"") != std::string::npos) {
    std::string q = "\"";
    for (char c : s) {
      q += c == '"' ? std::string("\"\"") : std::string(1, c);
    }
    return q + "\"";
  }
  return s;
}

std::string join(const std::vector<std::string> &v, std::string_view sep) {
  std::string out;
  for (const auto &s : v) {
    if (!out.empty()) {
      out += sep;
    }
    out += s;
  }
  return out;
}

std::string href(std::string_view rel) {
  std::string out;
  for (char c : rel) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '/' || c == '.' || c == '-' || c == '_') {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

constexpr std::string_view k_css = R"(
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;font-size:15px;line-height:1.45;color:#1a1a1a;max-width:1100px;margin:24px auto;padding:0 24px;background:#fff}
h1{font-size:26px;margin:0 0 4px;color:#123c69}
h2{font-size:20px;margin:28px 0 8px;padding-bottom:4px;border-bottom:2px solid #123c69;color:#123c69}
h3{font-size:16px;margin:18px 0 6px}
.lead{color:#444;margin:0 0 16px}
.box{background:#f3f6fa;border:1px solid #c9d6e6;border-radius:6px;padding:12px 16px;margin:12px 0}
.warn{background:#fff6e0;border-color:#e6c36a}
table{border-collapse:collapse;width:100%;margin:8px 0 12px;font-size:13.5px}
th,td{border:1px solid #c9d1da;padding:5px 7px;text-align:left;vertical-align:top}
th{background:#e8eef5}
tr:nth-child(even) td{background:#fafbfc}
td.num{text-align:right;white-space:nowrap}
td.date{white-space:nowrap}
td.subj{word-break:break-word;max-width:340px}
td.people{word-break:break-all;max-width:260px;font-size:12.5px}
dl{margin:0}dt{font-weight:bold;margin-top:8px}dd{margin:2px 0 0 18px}
a{color:#0b57a4}
.small{font-size:12.5px;color:#555}
@media print{body{margin:0;max-width:none;font-size:11pt}h2{page-break-after:avoid}tr{page-break-inside:avoid}a{color:#000;text-decoration:none}}
)";

/**
 * Makes `dir` ready to receive a package, safely: a symbolic link is never followed (refused),
 * an existing directory is never chmod'ed (only one we create is made 0700), and a non-empty
 * directory is written into only with --force and only when it holds an earlier package of
 * ours (a manifest.json with our schema). `may_hold_package` false: the companion ".originals"
 * folder, whose contents the caller has vouched for.
 * @return true when `dir` holds an earlier package.
 */
core::Result<bool> prepare_out_dir(const std::string &dir, Overwrite force, bool may_hold_package = true) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    const int err = errno;
    if (err != ENOENT) {
      return std::unexpected(core::errno_error("export: " + dir, err));
    }
    std::error_code ec;
    fs::create_directories(fs::path(dir).parent_path(), ec);
    if (ec) {
      return core::fail(core::ErrorCode::cant_create, fmt::format("export: {}: {}", dir, ec.message()));
    }
    if (::mkdir(dir.c_str(), 0700) != 0 || ::chmod(dir.c_str(), 0700) != 0) {
      core::Error e = core::errno_error("export: " + dir, errno);
      e.code = e.code == core::ErrorCode::permission ? e.code : core::ErrorCode::cant_create;
      return std::unexpected(e);
    }
    return false;
  }
  if (S_ISLNK(st.st_mode)) {
    return core::fail(core::ErrorCode::cant_create,
                      fmt::format("export: {} is a symbolic link; it is not followed", dir),
                      "give --out the real path of a new directory");
  }
  if (!S_ISDIR(st.st_mode)) {
    return core::fail(core::ErrorCode::cant_create, fmt::format("export: {} exists and is not a directory", dir));
  }
  std::error_code ec;
  if (fs::is_empty(dir, ec) && !ec) {
    return false;
  }
  if (!may_hold_package) {
    return false;
  }
  if (force == Overwrite::no) {
    return core::fail(core::ErrorCode::cant_create, fmt::format("export: {} exists and is not empty", dir),
                      "choose a new directory, or add --force to replace an earlier package in it");
  }
  // --force replaces an earlier package of ours, and nothing else.
  const std::string manifest = (fs::path(dir) / "manifest.json").string();
  struct stat mst {};
  bool ours = false;
  if (::lstat(manifest.c_str(), &mst) == 0 && S_ISREG(mst.st_mode)) {
    auto text = core::read_file(manifest, 64ULL << 20);
    if (text) {
      nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
      ours = j.is_object() && j.value("schema", std::string()) == "maildsar.export-manifest";
    }
  }
  if (!ours) {
    return core::fail(core::ErrorCode::cant_create,
                      fmt::format("export: {} is not empty and holds no earlier maildsar package; not written "
                                  "into, even with --force",
                                  dir),
                      "choose a new directory");
  }
  return true;
}

/**
 * The DPO's review page of a draft (DIR.review.html, 0600, beside the package, never in it):
 * who each placeholder stands for, and per item what its copy had replaced or withheld, with
 * the options that correct it.
 */
core::Status write_review(const std::string &path, const std::vector<Entry> &entries,
                          const redaction::PersonLabels &people, const ExportSummary &summary, bool redact) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<title>Review of the redactions (draft)</title>\n";
  h += "<style>" + std::string(k_css) + "</style>\n</head>\n<body>\n";
  h += "<h1>Review of the redactions (draft)</h1>\n<div class=\"box warn\">For the data protection officer only: "
       "this page names the people the package hides. It is not part of the package; do not send it.</div>\n";
  if (!redact) {
    h += "<p>This draft was built without --redact-others: nothing was redacted.</p>\n";
  }
  h += fmt::format("<p>{} item(s), {} copied; {} mention(s) of other people replaced; {} attachment(s) "
                   "withheld.</p>\n",
                   summary.items, summary.copied, summary.masked, summary.withheld);
  h += "<p>To correct the package, export again with the same options and without <code>--draft</code>, adding "
       "<code>--unmask ADDRESS</code> for someone who should stay readable (for example a colleague who "
       "agreed) or <code>--mask \"FIRST LAST\"</code> (or an address or telephone number) for someone left "
       "readable in a text.</p>\n";
  h += "<h2>Who the placeholders stand for</h2>\n<table><tr><th>Placeholder</th><th>Stands for</th></tr>\n";
  for (const auto &[label, who] : people.legend()) {
    const std::string shown = who.starts_with("name:") ? who.substr(5) + " (a name)" : who;
    h += "<tr><td>" + html_escape(label) + "</td><td>" + html_escape(shown) + "</td></tr>\n";
  }
  h += "</table>\n<h2>Every item</h2>\n<table><tr><th>#</th><th>Copy</th><th>What was done</th></tr>\n";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry &e = entries[i];
    std::string done = redaction_note(e.redaction);
    if (!e.redaction.unchecked.empty()) {
      done += (done.empty() ? "" : "; ") + std::string("attachments kept without their text checked: ") +
              join(e.redaction.unchecked, ", ");
    }
    if (!e.problem.empty()) {
      done += (done.empty() ? "" : "; ") + e.problem;
    }
    h += fmt::format("<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>\n", i + 1,
                     html_escape(e.copy.empty() ? std::string("(no copy)") : e.copy),
                     html_escape(done.empty() ? std::string("nothing") : done));
  }
  h += "</table>\n</body>\n</html>\n";
  return core::write_file_atomic(path, h, 0600);
}

} // namespace

core::Result<ExportSummary> export_package(const core::Config &config, const SubjectProfile &subject,
                                           const ExportOptions &options) {
  if (options.out_dir.empty()) {
    return core::fail(core::ErrorCode::usage, "export: --out DIR is required");
  }
  const std::int64_t now = options.now != 0 ? options.now : static_cast<std::int64_t>(std::time(nullptr));
  const std::string out_dir = fs::absolute(options.out_dir).lexically_normal().string();
  std::error_code ec;
  MAILDSAR_TRY_ASSIGN(bool earlier_package, prepare_out_dir(out_dir, options.force));
  if (earlier_package) {
    fs::remove_all(fs::path(out_dir) / "items", ec); // the copies of a previous package (links not followed)
  }
  if (options.keep_originals == KeepOriginals::yes) {
    // The companion folder of the originals: the same rules (an earlier one of ours may be reused).
    const std::string originals = out_dir + ".originals";
    struct stat st {};
    if (::lstat(originals.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && !fs::is_empty(originals, ec) &&
        !earlier_package) {
      return core::fail(core::ErrorCode::cant_create,
                        fmt::format("export: {} exists and is not empty", originals),
                        "choose a new --out directory");
    }
    if (::lstat(originals.c_str(), &st) == 0) {
      MAILDSAR_TRY(prepare_out_dir(originals, Overwrite::yes, /*may_hold_package=*/false));
    }
  }

  MAILDSAR_TRY_ASSIGN(std::vector<Hit> hits, query::find(config, subject));

  index::Normalizer normalizer(index::NormalizeOptions{config.identity.subaddress_separators,
                                                       config.identity.phone_region});
  const bool redact = options.redact_others == RedactOthers::yes;
  if (redact) {
    MAILDSAR_TRY(index::Normalizer::load_phone_module()); // other people's phone numbers are masked too
  }
  // One numbering of other people for the whole package: message copies, log excerpts, report.
  // The DPO's corrections of a draft: --unmask keeps, --mask masks (and wins).
  std::set<std::pair<std::string, std::string>> kept = kept_identities(config, subject, normalizer);
  std::vector<std::pair<std::string, std::string>> forced;
  for (const std::string &raw : options.unmask) {
    MAILDSAR_TRY_ASSIGN(auto id, typed_identity(raw, normalizer));
    kept.insert(std::move(id));
  }
  for (const std::string &raw : options.mask) {
    MAILDSAR_TRY_ASSIGN(auto id, typed_identity(raw, normalizer));
    kept.erase(id);
    forced.push_back(std::move(id));
  }
  redaction::PersonLabels people(std::move(kept));
  for (const auto &[kind, value] : forced) {
    if (kind == "name") {
      people.mask_name(value);
    }
  }
  OthersMasker masker(normalizer, subject, redact ? &people : nullptr);
  const std::string originals_dir = out_dir + ".originals";

  Package pkg(out_dir, now);
  ExportSummary summary;
  summary.out_dir = out_dir;
  summary.items = hits.size();

  // PST renderings: one walk per file.
  // (A PST inside a backup archive: one copy of the member per archive and member.)
  const auto pst_key = [](const connectors::Locator &l) {
    return l.store == connectors::StoreKind::archive ? l.path + "#" + l.member : l.path;
  };
  const auto is_pst_item = [](const connectors::Locator &l) {
    return l.store == connectors::StoreKind::pst || (l.store == connectors::StoreKind::archive && l.node_id != 0);
  };
  std::map<std::string, std::pair<const connectors::Locator *, std::vector<std::uint64_t>>> pst_nodes;
  for (const auto &h : hits) {
    if (is_pst_item(h.locator)) {
      auto &entry = pst_nodes[pst_key(h.locator)];
      entry.first = &h.locator;
      entry.second.push_back(h.locator.node_id);
    }
  }
  std::map<std::string, core::Result<std::map<std::uint64_t, core::Result<connectors::PstRendering>>>> pst;
  for (const auto &[key, file] : pst_nodes) {
    const connectors::Locator &l = *file.first;
    pst.emplace(key, l.store == connectors::StoreKind::archive ? connectors::render_archive_pst_items(l, file.second)
                                                               : connectors::render_pst_items(l.path, file.second));
  }

  std::vector<Entry> entries;
  std::set<std::string> external_domains;
  std::set<std::string> internal(config.access.internal_domains.begin(), config.access.internal_domains.end());
  for (const auto &e : subject.emails) {
    if (auto at = e.rfind('@'); at != std::string::npos) {
      internal.insert(e.substr(at + 1));
    }
  }
  std::size_t seq = 0;
  for (const auto &h : hits) {
    ++seq;
    Entry entry;
    entry.hit = &h;
    ++summary.per_source[h.locator.source];
    std::string bytes;
    std::string ext = "eml";
    std::string original; // unmasked log excerpt (for --keep-originals)
    bool got = false;     // bytes hold the item's copy
    const auto &loc = h.locator;
    if (is_pst_item(loc)) {
      const auto &file = pst.at(pst_key(loc));
      if (!file) {
        entry.problem = file.error().message;
      } else if (auto it = file->find(loc.node_id); it == file->end() || !it->second) {
        entry.problem = it == file->end() ? "not rendered" : it->second.error().message;
      } else {
        ext = it->second->extension;
        bytes = it->second->bytes;
        got = true;
      }
    } else {
      auto stored = connectors::read_item_bytes(loc);
      if (!stored) {
        entry.problem = stored.error().message;
      } else {
        if (!h.sha256.empty() && core::sha256_hex(*stored) != h.sha256) {
          entry.problem = "the item changed since it was indexed; this copy is its current content";
        }
        if (loc.store == connectors::StoreKind::maillog) {
          ext = "txt";
          original = *stored + "\n";
          bytes = redact ? masker.mask(original) : original;
          got = true;
        } else if (loc.store == connectors::StoreKind::maildir ||
                   (loc.store == connectors::StoreKind::archive && loc.length == 0)) {
          bytes = std::move(*stored); // the message file (or archive member) as it is
          got = true;
        } else {
          auto msg = connectors::is_mta_queue(loc.store) ? connectors::read_queued_message_with_envelope(loc)
                                                         : connectors::read_message(loc);
          if (msg) {
            bytes = std::move(*msg);
            got = true;
          } else {
            entry.problem = msg.error().message;
          }
        }
      }
    }
    if (got && redact && ext == "eml") {
      // Art. 15(4): the copy of a message shows other people only as "[person N]"; a copy that
      // cannot be redacted safely is withheld, never sent whole.
      original = bytes;
      redaction::MessageOptions redaction_options;
      auto redacted = redaction::redact_message(bytes, people, normalizer, redaction_options);
      if (redacted) {
        bytes = std::move(redacted->bytes);
        entry.redaction = std::move(redacted->report);
        summary.masked += entry.redaction.header_replacements + entry.redaction.text_replacements;
        summary.withheld += entry.redaction.withheld.size();
      } else {
        got = false;
        entry.problem = "withheld: this message could not be redacted safely (" + redacted.error().message +
                        "); the data protection officer reviews it by hand";
      }
    } else if (got && redact && ext != "txt") {
      original = bytes; // PST contacts and calendar entries (.vcf, .ics): addresses masked as text
      bytes = masker.mask(original);
    }
    entry.category = category_of(h, ext);
    const std::string stem = fmt::format("{:04}-{}-{}", seq, h.date ? iso(*h.date).substr(0, 10) : std::string("undated"),
                                         safe_file_name(h.subject.empty() ? entry.category : h.subject, 50));
    // --keep-originals: the unredacted copy in DIR.originals/, for the DPO's review only.
    const auto keep_original = [&](const std::string &rel) -> core::Status {
      fs::path full = fs::path(originals_dir) / rel;
      MAILDSAR_TRY(prepare_out_dir(originals_dir, Overwrite::yes, /*may_hold_package=*/false));
      fs::create_directories(full.parent_path(), ec);
      return core::write_file_atomic(full.string(), original, 0600);
    };
    const bool keep = redact && options.keep_originals == KeepOriginals::yes && !original.empty();
    if (got) {
      entry.copy = pkg.unique("items/" + folder_of(h), stem, ext);
      MAILDSAR_TRY(pkg.write(entry.copy, bytes));
      ++summary.copied;
      if (keep && original != bytes) {
        MAILDSAR_TRY(keep_original(entry.copy));
      }
    } else if (keep) {
      MAILDSAR_TRY(keep_original("withheld/" + folder_of(h) + "/" + stem + "." + ext)); // withheld from the package
    }
    if (!entry.problem.empty()) {
      summary.problems.push_back(fmt::format("{} {}: {}", loc.source, loc.key(), entry.problem));
    }
    entry.people = loc.store == connectors::StoreKind::maillog
                       ? correspondents_of_log(original.empty() ? bytes : original)
                       : correspondents_of_message(original.empty() ? bytes : original);
    dedupe(entry.people.from);
    dedupe(entry.people.to);
    bool subject_sent = std::any_of(entry.people.from.begin(), entry.people.from.end(),
                                    [&](const std::string &a) { return masker.is_subject_address(a); });
    if (subject_sent) {
      for (const auto &a : entry.people.to) {
        auto n = normalizer.email(a);
        if (!n) {
          continue;
        }
        auto domain = n->substr(n->rfind('@') + 1);
        if (!internal.contains(domain)) {
          external_domains.insert(domain);
        }
      }
    }
    entry.subject = h.subject;
    if (redact) {
      entry.subject = masker.mask(entry.subject);
      for (auto *list : {&entry.people.from, &entry.people.to}) {
        for (auto &a : *list) {
          a = masker.mask(a);
        }
        dedupe(*list);
      }
    }
    entries.push_back(std::move(entry));
  }
  summary.masked += masker.masked_addresses() + masker.masked_ips();

  // ---- summary.csv
  std::string csv = "number,source,store,category,date,subject,from,to,copy,sha256_stored,problem\r\n";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto &e = entries[i];
    csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{}\r\n", i + 1, csv_field(e.hit->locator.source),
                       connectors::to_string(e.hit->locator.store), csv_field(e.category),
                       e.hit->date ? iso(*e.hit->date) : "", csv_field(e.subject),
                       csv_field(join(e.people.from, " ")), csv_field(join(e.people.to, " ")),
                       csv_field(e.copy), e.hit->sha256, csv_field(e.problem));
  }

  // ---- report.html
  auto statuses = index::read_source_status(index::catalog_path(config));
  auto unreadable = unreadable_files(config);
  std::map<std::string, std::map<std::string, std::uint64_t>> counts; // source -> category -> n
  std::set<std::string> categories;
  for (const auto &e : entries) {
    ++counts[e.hit->locator.source][e.category];
    categories.insert(e.category);
  }
  const auto &access = config.access;
  // Sources in the controller's plain words where the config gives them (issue 18 item 4).
  const auto shown = [&](const std::string &source) {
    auto it = std::ranges::find_if(config.sources, [&](const core::SourceConfig &c) { return c.name == source; });
    return it != config.sources.end() && !it->description.empty() ? it->description : source;
  };
  std::string request = subject.request.empty() ? std::string("(no request id given)") : subject.request;
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<title>Copy of your personal data - " + html_escape(request) + "</title>\n";
  h += "<style>" + std::string(k_css) + "</style>\n</head>\n<body>\n";
  if (options.draft) {
    h += "<div class=\"box warn\"><strong>DRAFT for review — not to be sent.</strong> Build the package again "
         "without --draft once the redactions are right.</div>\n";
  }
  h += "<h1>Copy of your personal data held in our e-mail systems</h1>\n";
  h += "<p class=\"lead\">This is our answer to your request for access to your personal data "
       "(Article 15 of the General Data Protection Regulation).</p>\n";
  h += "<div class=\"box\"><dl>\n";
  h += "<dt>Request</dt><dd>" + html_escape(request) + "</dd>\n";
  std::vector<std::string> who;
  for (const auto &n : subject.names) who.push_back(n);
  for (const auto &n : subject.emails) who.push_back(n);
  for (const auto &n : subject.phones) who.push_back(n);
  for (const auto &n : subject.ips) who.push_back(n);
  h += "<dt>Who asked</dt><dd>The person identified by: " + html_escape(join(who, ", ")) + "</dd>\n";
  h += "<dt>Prepared on</dt><dd>" + html_escape(plain_date(now)) + " by " +
       html_escape(options.operator_name.empty() ? std::string("our data protection team") : options.operator_name) +
       "</dd>\n";
  if (!access.controller.empty()) {
    h += "<dt>Who holds your data (the controller)</dt><dd>" + html_escape(access.controller) + "</dd>\n";
  }
  if (!access.contact.empty()) {
    h += "<dt>How to contact us</dt><dd>" + html_escape(access.contact) + "</dd>\n";
  }
  h += "</dl></div>\n";

  h += "<h2>In short</h2>\n";
  h += fmt::format("<p>We found <strong>{}</strong> item(s) about you in {} place(s) where we keep "
                   "e-mail. A copy of each one is included in this package (folder <code>items</code>).</p>\n",
                   entries.size(), summary.per_source.size());
  if (!entries.empty()) {
    h += "<table><tr><th>Where</th>";
    for (const auto &c : categories) h += "<th>" + html_escape(plural(c)) + "</th>";
    h += "<th>Total</th></tr>\n";
    for (const auto &[src, cats] : counts) {
      h += "<tr><td>" + html_escape(shown(src)) + "</td>";
      std::uint64_t total = 0;
      for (const auto &c : categories) {
        auto it = cats.find(c);
        std::uint64_t n = it == cats.end() ? 0 : it->second;
        total += n;
        h += fmt::format("<td class=\"num\">{}</td>", n);
      }
      h += fmt::format("<td class=\"num\"><strong>{}</strong></td></tr>\n", total);
    }
    h += "</table>\n";
  }

  h += "<h2>What we searched</h2>\n<p>We searched every place our e-mail system keeps messages and "
       "delivery records:</p>\n<table><tr><th>Place</th><th>Kind</th><th>Last brought up to date</th>"
       "<th>Items about you</th><th>Could not be read</th></tr>\n";
  for (const auto &src : config.sources) {
    std::string last = "never indexed";
    if (statuses) {
      for (const auto &st : *statuses) {
        if (st.name == src.name && st.last_success) {
          last = plain_date(*st.last_success);
        }
      }
    }
    std::vector<std::string> bad;
    for (const auto &u : unreadable) {
      if (u.source == src.name) {
        bad.push_back(fs::path(u.path).filename().string() + ": " + u.error);
      }
    }
    for (const auto &e : entries) {
      if (e.hit->locator.source == src.name && !e.problem.empty()) {
        bad.push_back(fs::path(e.hit->locator.path).filename().string() + ": " + e.problem);
      }
    }
    std::string kind = src.type == "maildir" ? "mailboxes" : src.type == "mbox" ? "mail archive"
                       : src.type == "pst" ? "Outlook data files" : src.type == "quarantine" ? "spam/virus quarantine"
                       : src.type == "emlfolder" ? "folder of message files"
                       : src.type == "postfix-queue" || src.type == "exim-spool" ? "mail server queue"
                       : "mail server delivery logs";
    auto it = summary.per_source.find(src.name);
    h += "<tr><td>" + html_escape(shown(src.name)) + "</td><td>" + html_escape(kind) + "</td><td class=\"date\">" +
         html_escape(last) + fmt::format("</td><td class=\"num\">{}</td><td>", it == summary.per_source.end() ? 0 : it->second);
    if (bad.empty()) {
      h += "nothing";
    } else {
      h += "<ul>";
      for (const auto &b : bad) h += "<li>" + html_escape(b) + "</li>";
      h += "</ul>";
    }
    h += "</td></tr>\n";
  }
  h += "</table>\n";

  h += "<h2>Why we hold this data and what we do with it</h2>\n<dl>\n";
  auto list = [&](std::string_view title, const std::vector<std::string> &items, std::string_view none) {
    h += "<dt>" + std::string(title) + "</dt><dd>";
    if (items.empty()) {
      h += std::string(none);
    } else {
      h += "<ul>";
      for (const auto &i : items) h += "<li>" + html_escape(i) + "</li>";
      h += "</ul>";
    }
    h += "</dd>\n";
  };
  list("Purposes", access.purposes, "Running our e-mail service.");
  list("Categories of personal data", access.categories,
       "E-mail addresses, names, the content of messages and attachments, and delivery records.");
  list("Who receives it", access.recipients, "The people the messages were addressed to.");
  h += "<dt>External domains your messages were sent to</dt><dd>";
  h += external_domains.empty() ? std::string("none found")
                                : html_escape(join(std::vector<std::string>(external_domains.begin(), external_domains.end()), ", "));
  h += "</dd>\n<dt>How long we keep it</dt><dd><ul>";
  for (const auto &src : config.sources) {
    std::string text;
    if (auto it = access.retention.find(src.name); it != access.retention.end()) {
      text = it->second;
    } else {
      auto r = std::find_if(config.retention.begin(), config.retention.end(),
                            [&](const auto &x) { return x.source == src.name; });
      text = r == config.retention.end() ? "no fixed period set"
                                         : fmt::format("{} days", r->max_age_seconds / 86400);
    }
    h += "<li>" + html_escape(shown(src.name)) + ": " + html_escape(text) + "</li>";
  }
  h += "</ul></dd>\n<dt>Where the data came from</dt><dd>" +
       html_escape(access.source_of_data.empty()
                       ? std::string("From the messages sent to or from our mail system and our mail servers' records.")
                       : access.source_of_data) +
       "</dd>\n<dt>Automated decision-making</dt><dd>" +
       (access.automated_decisions.empty()
            ? std::string("Not stated in this report. Ask us (see the contact above) whether we make automated "
                          "decisions about you from this data.")
            : html_escape(access.automated_decisions)) +
       "</dd>\n<dt>Transfers to other countries</dt><dd>";
  if (access.transfers.empty()) {
    h += "Not stated in this report. Ask us (see the contact above) whether this data goes to countries outside "
         "the EU/EEA or to international organisations, and with which safeguards (Article 15(2)).";
  } else {
    h += "<ul>";
    for (const auto &t : access.transfers) {
      h += "<li>" + html_escape(t) + "</li>";
    }
    h += "</ul>";
  }
  h += "</dd>\n</dl>\n";

  h += "<h2>Your rights</h2>\n<ul>\n"
       "<li><strong>Correction</strong> (Article 16): you can ask us to correct data about you that is wrong.</li>\n"
       "<li><strong>Erasure</strong> (Article 17): you can ask us to delete data about you; we will unless the law requires us to keep it.</li>\n"
       "<li><strong>Restriction and objection</strong> (Articles 18 and 21): you can ask us to stop or limit using it.</li>\n"
       "<li><strong>Complaint</strong> (Article 77): you can complain to a data protection supervisory authority";
  h += access.supervisory_authority.empty() ? std::string(".") : ": " + html_escape(access.supervisory_authority);
  h += "</li>\n</ul>\n";

  h += "<h2>Other people's data</h2>\n";
  if (redact) {
    h += fmt::format("<div class=\"box warn\">To protect other people (Article 15(4)), the other people "
                     "in these copies are shown as <code>[person 1]</code>, <code>[person 2]</code>, ... "
                     "(the same number for the same person throughout this package), their telephone "
                     "numbers as <code>[phone 1]</code>, ... and other people's IP addresses in the "
                     "delivery log records as <code>[other IP]</code>. We replaced {} mention(s) of other "
                     "people in the message copies, {} e-mail address(es) and {} IP address(es) in the "
                     "delivery log records and in this report{}. Your own addresses, name and telephone "
                     "numbers are shown as they are. The line under each copy below says what was "
                     "changed in it.</div>\n",
                     summary.masked - masker.masked_addresses() - masker.masked_ips(), masker.masked_addresses(),
                     masker.masked_ips(),
                     summary.withheld > 0 ? fmt::format(", and withheld {} attachment(s) that name other people "
                                                        "(each is listed below with the reason)",
                                                        summary.withheld)
                                          : std::string());
  } else {
    h += "<p>The copies contain the other people's addresses as they appear in the messages.</p>\n";
  }

  h += "<h2>Every item</h2>\n<table><tr><th>#</th><th>Date</th><th>What</th><th>From</th><th>To</th>"
       "<th>Subject</th><th>Copy</th></tr>\n";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto &e = entries[i];
    h += fmt::format("<tr><td class=\"num\">{}</td><td class=\"date\">{}</td><td>{}<br><span class=\"small\">{}</span></td>",
                     i + 1, e.hit->date ? html_escape(iso(*e.hit->date).substr(0, 16).replace(10, 1, " ")) : "unknown",
                     html_escape(e.category), html_escape(shown(e.hit->locator.source)));
    h += "<td class=\"people\">" + html_escape(join(e.people.from, ", ")) + "</td><td class=\"people\">" +
         html_escape(join(e.people.to, ", ")) + "</td><td class=\"subj\">" + html_escape(e.subject) + "</td><td>";
    if (!e.copy.empty()) {
      h += "<a href=\"" + html_escape(href(e.copy)) + "\">open copy</a>";
    }
    if (!e.problem.empty()) {
      h += "<br><span class=\"small\">" + html_escape(e.problem) + "</span>";
    }
    if (const std::string note = redaction_note(e.redaction); !note.empty()) {
      h += "<br><span class=\"small\">Redacted: " + html_escape(note) + "</span>";
    }
    h += "</td></tr>\n";
  }
  h += "</table>\n";
  h += "<p class=\"small\">Files with the ending .eml open in any e-mail program; .txt in any text editor; "
       ".vcf (contacts) and .ics (calendar entries) in address-book and calendar programs. The file "
       "manifest.json lists every file of this package with its SHA-256 checksum, so you can check "
       "that nothing was changed.</p>\n</body>\n</html>\n";

  MAILDSAR_TRY(pkg.write("report.html", h));
  MAILDSAR_TRY(pkg.write("summary.csv", csv));

  // ---- manifest.json
  json items = json::array();
  for (const auto &e : entries) {
    const auto &loc = e.hit->locator;
    json it{{"id", e.hit->id},       {"source", loc.source}, {"store", connectors::to_string(loc.store)},
            {"location", clean_utf8(loc.key())}, {"category", e.category}, {"sha256", e.hit->sha256},
            {"copy", e.copy}};
    if (!e.problem.empty()) {
      it["problem"] = clean_utf8(e.problem);
    }
    if (e.redaction.changed()) {
      it["redaction"] = json{{"replaced", e.redaction.header_replacements + e.redaction.text_replacements},
                             {"labels", e.redaction.labels},
                             {"withheld_attachments", e.redaction.withheld},
                             {"removed_fields", e.redaction.removed_headers}};
    }
    items.push_back(std::move(it));
  }
  json source_list = json::array();
  for (const auto &src : config.sources) {
    json entry{{"name", src.name}, {"type", src.type}};
    if (!src.description.empty()) {
      entry["description"] = src.description;
    }
    source_list.push_back(std::move(entry));
  }
  json manifest{
      {"schema", "maildsar.export-manifest"},
      {"version", 1},
      {"request", subject.request},
      {"created", iso(now)},
      {"operator", options.operator_name},
      {"tool_version", options.tool_version},
      {"index_version", std::string(index::schema::k_schema_version)},
      {"query", json{{"emails", subject.emails}, {"names", subject.names}, {"phones", subject.phones}, {"ips", subject.ips}}},
      {"options", json{{"redact_others", redact}, {"keep_originals", options.keep_originals == KeepOriginals::yes},
                       {"draft", options.draft}, {"masked_on_request", options.mask.size()},
                       {"unmasked_on_request", options.unmask.size()}}},
      {"sources", source_list},
      {"counts", json{{"items", summary.items}, {"copied", summary.copied}, {"masked", summary.masked},
                      {"withheld_attachments", summary.withheld}}},
      {"items", items},
      {"files", pkg.files()}};
  std::string manifest_text = manifest.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  MAILDSAR_TRY(core::write_file_atomic((fs::path(out_dir) / "manifest.json").string(), manifest_text, 0600));
  summary.files = pkg.files().size() + 1;
  if (options.draft) {
    MAILDSAR_TRY(write_review(out_dir + ".review.html", entries, people, summary, redact));
    summary.review_path = out_dir + ".review.html";
  }
  summary.package_hash = core::sha256_hex(manifest_text);
  if (options.zip == ZipPackage::yes) {
    auto &zip_entries = pkg.zip_entries();
    zip_entries.push_back(ZipEntry{"manifest.json", manifest_text, now});
    std::string top = fs::path(out_dir).filename().string();
    for (auto &z : zip_entries) {
      z.name = safe_file_name(top, 60) + "/" + z.name;
    }
    MAILDSAR_TRY_ASSIGN(std::string zip, make_zip(zip_entries));
    summary.zip_path = out_dir + ".zip";
    MAILDSAR_TRY(core::write_file_atomic(summary.zip_path, zip, 0600));
    summary.package_hash = core::sha256_hex(zip);
  }

  // ---- audit
  MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
  json per_source = json::object();
  for (const auto &[k, v] : summary.per_source) per_source[k] = v;
  MAILDSAR_TRY_ASSIGN(core::AuditRecord record, audit
                   .append("export", options.operator_name, subject.request,
                           json{{"items", summary.items}, {"copied", summary.copied},
                                {"problems", summary.problems.size()}, {"files", summary.files},
                                {"masked", summary.masked}, {"redact_others", redact},
                                {"per_source", per_source}, {"package_sha256", summary.package_hash},
                                {"zip", options.zip == ZipPackage::yes}}));
  (void)record;
  return summary;
}

} // namespace maildsar::access
