// SPDX-License-Identifier: GPL-3.0-or-later
// `verify`: prove that nothing of the subject remains, from the stores themselves and the index.
#include "connectors/connector.hpp"
#include "connectors/store_writer.hpp"
#include "core/audit.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/secret.hpp"
#include "erasure/erasure.hpp"
#include "erasure/policy.hpp"
#include "erasure/signing.hpp"
#include "erasure/state.hpp"
#include "indexer/catalog.hpp"
#include "indexer/identity.hpp"
#include "indexer/indexer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

namespace maildsar::erasure {

using nlohmann::json;
namespace fs = std::filesystem;

core::Result<VerifyReport> verify(const core::Config &config, const query::SubjectProfile &subject,
                                  const std::string &operator_name, const std::string &certificate_path,
                                  const core::ProgressFn &on_progress) {
  if (subject.empty()) {
    return core::fail(core::ErrorCode::usage, "no identifier given",
                      "use --email, --name, --phone, --ip or --subject FILE");
  }
  MAILDSAR_TRY_ASSIGN(std::string key, core::load_or_create_secret(config.state_dir));
  MAILDSAR_TRY_ASSIGN(std::vector<KeyedIdentifier> wanted, keyed_subject(config, subject, key));
  std::set<std::string> targets;
  for (const KeyedIdentifier &k : wanted) {
    targets.insert(k.kind + ":" + k.hash);
  }
  MAILDSAR_TRY_ASSIGN(ErasureDb db, ErasureDb::open(config));
  MAILDSAR_TRY_ASSIGN(std::vector<Manifest> all, db.manifests());

  VerifyReport report;
  std::set<std::string> excepted;                         // retained and manual item ids
  std::map<std::string, std::uint64_t> retained_by_reason; // for the certificate
  std::map<std::string, connectors::Locator> files;       // path -> where to rescan it
  std::map<std::string, connectors::Locator> redacted_files; // Maildir messages rewritten with the subject masked
  json originals = json::array();                          // converted PST files moved out of the stores
  std::map<std::string, std::map<std::string, std::uint64_t>> counts;
  json approvers = json::object();
  json approver_os_users = json::object(); // manifest -> the OS accounts of its approvers
  json planners = json::object();          // manifest -> planner's operator name and OS account
  std::vector<const Manifest *> used;
  for (const Manifest &m : all) {
    const bool about_subject = std::ranges::any_of(m.subject, [&](const KeyedIdentifier &k) {
      return targets.contains(k.kind + ":" + k.hash);
    });
    MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> done, db.journal(m.hash, "audit"));
    if (!about_subject || !done || done->state != "done") {
      continue; // not this subject's, or never (completely) executed
    }
    used.push_back(&m);
    report.manifests.push_back(m.hash);
    MAILDSAR_TRY_ASSIGN(std::vector<Approval> approved, db.approvals(m.hash));
    json names = json::array();
    json os_users = json::array();
    for (const Approval &a : approved) {
      names.push_back(a.operator_name);
      os_users.push_back(a.os ? json(a.os->name) : json(nullptr));
    }
    approvers[m.hash] = names;
    approver_os_users[m.hash] = os_users;
    if (m.planner_os) {
      planners[m.hash] = {{"operator", m.planner}, {"os_user", m.planner_os->name}};
    }
    for (const ManifestItem &item : m.items) {
      const std::string store(connectors::to_string(item.locator.store));
      if (item.action == Action::retain || item.action == Action::manual) {
        excepted.insert(item.id);
        ++retained_by_reason[item.action == Action::retain ? item.reason : "manual: " + item.reason];
        ++report.retained;
        ++counts[store][item.action == Action::retain ? "retained" : "manual"];
        continue;
      }
      ++counts[store][item.action == Action::erase ? "deleted" : item.action == Action::redact ? "redacted" : "converted"];
      files.emplace(item.locator.path, item.locator);
      if (item.action == Action::redact && item.locator.store == connectors::StoreKind::maildir) {
        // The redacted message lives under a new name (its journal outcome says which): read it too.
        MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> step, db.journal(m.hash, "file:" + item.locator.path));
        json outcomes = step ? json::parse(step->detail, nullptr, false) : json();
        for (const json &o : outcomes.is_array() ? outcomes : json::array()) {
          if (o.value("id", std::string()) == item.id && o.contains("path")) {
            connectors::Locator now = item.locator;
            now.path = o.value("path", std::string());
            redacted_files.emplace(now.path, now);
          }
        }
      }
      if (item.action == Action::convert) {
        // The archive that replaced the PST must hold nothing of the subject either.
        if (const core::SourceConfig *archive = mbox_source_for(config, item.convert_to)) {
          connectors::Locator loc;
          loc.source = archive->name;
          loc.store = connectors::StoreKind::mbox;
          loc.path = item.convert_to;
          files.emplace(item.convert_to, loc);
        }
      }
    }
    for (const ManifestItem &item : m.items) {
      if (item.action != Action::convert) {
        continue;
      }
      MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> step, db.journal(m.hash, "file:" + item.locator.path));
      json outcomes = step ? json::parse(step->detail, nullptr, false) : json();
      for (const json &o : outcomes.is_array() ? outcomes : json::array()) {
        if (o.value("id", std::string()) == "+conversion" &&
            std::ranges::none_of(originals, [&](const json &x) { return x.value("pst", "") == o.value("pst", ""); })) {
          originals.push_back({{"pst", o.value("pst", std::string())},
                               {"mbox", o.value("mbox", std::string())},
                               {"original_moved_to", o.value("original", std::string())}});
        }
      }
    }
  }

  // What protects an item the subject's search did not read completely: a hold of the config,
  // or an exemption of one of the subject's executed manifests (holds and exemptions always win;
  // such an item is retained whatever it holds, so it does not stop the certificate).
  std::vector<Policy> policies;
  for (const Manifest *m : used) {
    MAILDSAR_TRY_ASSIGN(Policy p, parse_policy(m->policy, "of manifest " + m->hash.substr(0, 16)));
    policies.push_back(std::move(p));
  }
  if (policies.empty()) {
    policies.emplace_back(); // the holds alone
  }
  const std::string today = today_utc();
  auto protected_by = [&](const connectors::Locator &loc, const std::string &id) -> std::optional<Protection> {
    for (const Policy &p : policies) {
      if (auto prot = protection_for(config, p, loc.source, id, loc.path, today)) {
        return prot;
      }
    }
    return std::nullopt;
  };
  // An item not searched completely: retained when protected, else it stops the certificate.
  std::set<std::string> unsearched_seen; // "source\npath\nkey": each item once
  auto not_searched = [&](const connectors::Locator &loc, const std::string &id, const std::string &why) {
    if (auto prot = protected_by(loc, id)) {
      if (unsearched_seen.insert(loc.source + "\n" + loc.key()).second) {
        ++retained_by_reason[prot->reason + " (not searched completely)"];
        ++report.retained;
      }
      return;
    }
    if (unsearched_seen.insert(loc.source + "\n" + loc.key()).second) {
      report.unsearched.push_back(Remaining{"index", loc, why});
    }
  };

  // 1. The index.
  MAILDSAR_TRY_ASSIGN(std::vector<query::Hit> hits, query::find(config, subject));
  for (const query::Hit &hit : hits) {
    if (!excepted.contains(hit.id)) {
      std::string how;
      for (const query::Match &m : hit.matched) {
        how += (how.empty() ? "" : ", ") + m.kind;
      }
      report.remaining.push_back(Remaining{"index", hit.locator, "the index still finds it (" + how + ")"});
    }
  }

  // 1b. Items indexed only in part (cut at a limit, an attachment whose text was not extracted):
  // the part that was not read may hold the subject. The subject's own retained and manual
  // items are reported as such above; any other item stops the certificate unless a hold or an
  // exemption covers it (docs/reliability.md "Bounded memory").
  MAILDSAR_TRY_ASSIGN(std::vector<query::Hit> partial, query::truncated_items(config));
  for (const query::Hit &hit : partial) {
    if (excepted.contains(hit.id)) {
      continue;
    }
    not_searched(hit.locator, hit.id,
                 fmt::format("indexed only in part ({}): the rest was not searched; raise the limit "
                             "(limits.max_item_mib, limits.extract_*) and run `maildsar index --full`, "
                             "or erase or clear the item by hand",
                             hit.truncated.empty() ? std::string("cut at a limit") : hit.truncated.front()));
  }
  // 1c. Files the last index could not read, wholly or in part: what they hold there was not searched.
  MAILDSAR_TRY_ASSIGN(std::vector<index::UnreadFile> unread, index::read_unread_files(index::catalog_path(config)));
  for (const index::UnreadFile &f : unread) {
    connectors::Locator loc;
    loc.source = f.source;
    loc.path = f.path;
    for (const core::SourceConfig &src : config.sources) {
      if (src.name == f.source) {
        if (auto kind = connectors::store_kind_from_string(src.type)) {
          loc.store = *kind;
        }
      }
    }
    not_searched(loc, "",
                 fmt::format("the last index could not read this file, or part of it ({}): that was not "
                             "searched; fix the cause and run `maildsar index`, or check the file by hand",
                             f.last_error));
  }

  // 2. The files the erasure touched, read again from the stores.
  index::Normalizer norm(
      index::NormalizeOptions{config.identity.subaddress_separators, config.identity.phone_region});
  MAILDSAR_TRY(index::Normalizer::load_phone_module());
  for (const auto &[redacted_path, loc] : redacted_files) {
    if (auto current = connectors::maildir_current_path(redacted_path)) {
      files.emplace(*current, loc); // read below as any other rewritten file
    }
  }
  std::uint64_t rescanned = 0;
  for (const auto &[path, loc] : files) {
    core::report_progress(on_progress, "files", rescanned++, files.size());
    if (loc.store == connectors::StoreKind::maildir && !redacted_files.contains(loc.path)) {
      auto current = connectors::maildir_current_path(path);
      if (current) {
        ++report.files_rescanned;
        report.remaining.push_back(Remaining{"file", loc, "the message file still exists: " + *current});
      }
      continue;
    }
    auto st = core::lstat_file(path);
    if (!st) {
      continue; // removed (a quarantine file)
    }
    const core::SourceConfig *src = nullptr;
    for (const core::SourceConfig &s : config.sources) {
      if (s.name == loc.source) {
        src = &s;
      }
    }
    if (src == nullptr) {
      report.remaining.push_back(Remaining{"file", loc, "source is no longer configured; cannot rescan"});
      continue;
    }
    MAILDSAR_TRY_ASSIGN(std::unique_ptr<connectors::Connector> connector, connectors::make_connector(*src));
    connectors::ItemCollector found;
    connectors::FileEntry entry{path, loc.folder, "", *st};
    if (auto scanned = connector->scan(entry, 0, found); !scanned) {
      report.remaining.push_back(Remaining{"file", loc, "cannot rescan: " + scanned.error().message});
      continue;
    }
    ++report.files_rescanned;
    for (const connectors::Item &scanned : found.items) {
      if (std::ranges::any_of(all, [&](const Manifest &m) {
            return std::ranges::any_of(m.items, [&](const ManifestItem &mi) {
              return excepted.contains(mi.id) && mi.sha256 == scanned.sha256;
            });
          })) {
        continue; // a retained item
      }
      if (!scanned.truncated.empty()) {
        not_searched(scanned.locator, "",
                     "read only in part (" + scanned.truncated.front() +
                         ") when rescanned: the rest was not searched; raise the limit, or check the "
                         "item by hand");
      }
      std::set<std::string> kinds = subject_kinds_in(scanned, norm, key, targets);
      if (!kinds.empty()) {
        std::string list;
        for (const std::string &k : kinds) {
          list += (list.empty() ? "" : ", ") + k;
        }
        report.remaining.push_back(Remaining{"file", scanned.locator, "the store still holds the subject's " + list});
      }
    }
  }
  core::report_progress(on_progress, "files", files.size(), files.size());

  if (!report.remaining.empty() || !report.unsearched.empty()) {
    return report; // no certificate
  }
  json retained = json::array();
  for (const auto &[reason, n] : retained_by_reason) {
    retained.push_back({{"reason", reason}, {"items", n}});
  }
  const std::string request = subject.request.empty() && !used.empty() ? used.back()->request : subject.request;
  report.certificate = json{{"schema", "maildsar.certificate"},
                            {"version", 1},
                            {"request", request},
                            {"manifests", report.manifests},
                            {"approvers", approvers},
                            {"approver_os_users", approver_os_users},
                            {"planners", planners},
                            {"counts", counts},
                            {"retained", retained},
                            {"files_rescanned", report.files_rescanned},
                            {"pst_originals", originals},
                            {"index_hits_remaining", 0},
                            {"verified_by", operator_name},
                            {"time", now_iso()},
                            {"tool_version", MAILDSAR_VERSION}};
  std::string path = certificate_path;
  if (path.empty()) {
    fs::path dir = fs::path(config.state_dir) / "certificates";
    MAILDSAR_TRY(core::ensure_private_dir(dir.string()));
    std::string stamp = now_iso();
    std::ranges::replace(stamp, ':', '-');
    std::string safe_request;
    for (char c : request) {
      safe_request += (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_') ? c : '_';
    }
    path = (dir / fmt::format("{}-{}.json", safe_request.empty() ? "request" : safe_request, stamp)).string();
  }
  // Evidence on its own: signed with the installation's key (`maildsar certificate verify`).
  MAILDSAR_TRY(sign_certificate(config.state_dir, report.certificate));
  const std::string text = report.certificate.dump(2) + "\n";
  MAILDSAR_TRY(core::write_file_atomic(path, text));
  report.certificate_path = path;
  MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
  MAILDSAR_TRY(audit.append("certificate", operator_name, request,
                            json{{"certificate_sha256", core::sha256_hex(text)},
                                 {"manifests", report.manifests},
                                 {"counts", counts}}));
  return report;
}

} // namespace maildsar::erasure
