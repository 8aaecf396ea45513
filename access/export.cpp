// SPDX-License-Identifier: GPL-3.0-or-later
// The Art. 15 access package: copies, report.html, manifest.json, summary.csv, audit entry.
#include "access/export.hpp"

#include "access/report.hpp"

#include "connectors/archive.hpp"
#include "connectors/folder_name.hpp"
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

/** What a person calls an item. */
std::string category_of(const Hit &h, std::string_view extension) {
  switch (h.locator.store) {
  case connectors::StoreKind::maillog: return MAILDSAR_N_("delivery log record");
  case connectors::StoreKind::quarantine: return MAILDSAR_N_("quarantined message");
  case connectors::StoreKind::archive: return MAILDSAR_N_("message in a backup archive");
  case connectors::StoreKind::postfix_queue:
  case connectors::StoreKind::exim_spool: return MAILDSAR_N_("message waiting in a mail server queue");
  case connectors::StoreKind::pst:
    return extension == "vcf" ? MAILDSAR_N_("contact") : extension == "ics" ? MAILDSAR_N_("calendar entry")
           : extension == "txt" ? MAILDSAR_N_("other Outlook item") : MAILDSAR_N_("message");
  default: return MAILDSAR_N_("message");
  }
}

/** The folder path of an item's copy: source / store-specific folders, each sanitised. */
std::string folder_of(const Hit &h) {
  const auto &loc = h.locator;
  std::string out = safe_file_name(loc.source, 40);
  auto base = safe_file_name(fs::path(loc.path).filename().string(), 40);
  switch (loc.store) {
  case connectors::StoreKind::maildir: {
    // ".Entw&APw-rfe" (modified UTF-7 of IMAP servers) -> "Entwürfe": UTF-8 on disk.
    const std::string folder = connectors::maildir_folder_display_name(loc.folder);
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

} // namespace

core::Result<ExportSummary> export_package(const core::Config &config, const SubjectProfile &subject,
                                           const ExportOptions &options) {
  if (options.out_dir.empty()) {
    return core::fail(core::ErrorCode::usage, "export: --out DIR is required");
  }
  // The report's language first: an unknown one is refused before anything is written.
  MAILDSAR_TRY_ASSIGN(const i18n::Catalog cat, i18n::Catalog::load(options.language));
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
    core::report_progress(options.on_progress, "items", seq, hits.size());
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
        entry.problem_shown = it == file->end() ? cat.tr("not rendered") : entry.problem;
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
          entry.problem_shown = cat.tr("the item changed since it was indexed; this copy is its current content");
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
        entry.problem_shown = cat.trf("withheld: this message could not be redacted safely ({}); the data protection "
                                      "officer reviews it by hand",
                                      redacted.error().message);
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
    const std::string folder = folder_of(h);
    const std::size_t slash = folder.find('/');
    entry.folder = slash == std::string::npos ? std::string() : folder.substr(slash + 1); // without the source
    if (got) {
      entry.copy = pkg.unique("items/" + folder, stem, ext);
      MAILDSAR_TRY(pkg.write(entry.copy, bytes));
      ++summary.copied;
      if (keep && original != bytes) {
        MAILDSAR_TRY(keep_original(entry.copy));
      }
    } else if (keep) {
      MAILDSAR_TRY(keep_original("withheld/" + folder + "/" + stem + "." + ext)); // withheld from the package
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
  core::report_progress(options.on_progress, "items", hits.size(), hits.size());
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

  // ---- report.html and report.pdf: one document in the report's language, rendered twice.
  auto statuses = index::read_source_status(index::catalog_path(config));
  const std::vector<SourceProblem> unreadable = unreadable_files(config);
  const std::vector<index::SourceStatus> no_statuses;
  const report::Document doc = build_report(ReportInput{config, subject, options, entries, summary, external_domains,
                                                        masker.masked_addresses(), masker.masked_ips(), redact, now,
                                                        unreadable, statuses ? *statuses : no_statuses},
                                            cat);
  MAILDSAR_TRY_ASSIGN(const std::string pdf, report::render_pdf(doc, cat));
  MAILDSAR_TRY(pkg.write("report.html", report::render_html(doc)));
  MAILDSAR_TRY(pkg.write("report.pdf", pdf));
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
      {"language", cat.language()},
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
    MAILDSAR_TRY(core::write_file_atomic(out_dir + ".review.html",
                                         report::render_html(build_review(entries, people, summary, redact, cat)),
                                         0600));
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
