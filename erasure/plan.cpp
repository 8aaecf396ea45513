// SPDX-License-Identifier: GPL-3.0-or-later
// `plan`: every item found for the subject gets an action and a reason. Read-only for the stores.
#include "connectors/item_reader.hpp"
#include "connectors/mta_queue.hpp"
#include "connectors/pst.hpp"
#include "core/time.hpp"
#include "core/audit.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/secret.hpp"
#include "erasure/erasure.hpp"
#include "erasure/message_redaction.hpp"
#include "erasure/policy.hpp"
#include "erasure/signing.hpp"
#include "erasure/state.hpp"
#include "indexer/identity.hpp"
#include "indexer/schema.hpp"
#include "indexer/suppression.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

namespace maildsar::erasure {

using nlohmann::json;

namespace {

std::string iso_date(std::int64_t t) { return core::format_utc(t, "%Y-%m-%d %H:%M UTC"); }

/** What an administrator must do in Outlook to delete one PST item. */
std::string manual_instructions(const connectors::Locator &loc, const query::Hit &hit, const std::string &correspondents,
                                const std::string &subject_line) {
  return fmt::format("Open {} in Outlook; in folder \"{}\" delete the item dated {}{} with subject {} "
                     "(PST node {}), then empty Deleted Items and compact the file.",
                     loc.path, loc.folder, hit.date ? iso_date(*hit.date) : std::string("(no date)"),
                     correspondents.empty() ? std::string() : " " + correspondents, subject_line, loc.node_id);
}

/**
 * The correspondents of each manual PST item ("from A <a@x>; to (the data subject), B <b@y>"),
 * read from the PST itself, so that an administrator can tell the item from its neighbours. The
 * subject appears only as "(the data subject)": the manifest holds no identifier of theirs in
 * clear. A PST that cannot be read keeps the instructions without correspondents.
 */
core::Status describe_manual_pst(const core::Config &config, const std::string &key,
                                 const std::vector<KeyedIdentifier> &subject, std::vector<ManifestItem> &items,
                                 const std::vector<query::Hit> &hits) {
  std::map<std::string, std::vector<std::size_t>> by_file;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].action == Action::manual && items[i].locator.store == connectors::StoreKind::pst) {
      by_file[items[i].locator.path].push_back(i);
    }
  }
  if (by_file.empty()) {
    return {};
  }
  MAILDSAR_TRY(index::Normalizer::load_phone_module());
  index::Normalizer norm(
      index::NormalizeOptions{config.identity.subaddress_separators, config.identity.phone_region});
  std::set<std::string> targets;
  for (const KeyedIdentifier &k : subject) {
    targets.insert(k.kind + ":" + k.hash);
  }
  auto person = [&](const connectors::RawAddress &a) -> std::string {
    connectors::Item one;
    one.addresses.push_back(connectors::RawAddress{connectors::Role::from, a.name, a.addr});
    if (!subject_kinds_in(one, norm, key, targets).empty()) {
      return "(the data subject)";
    }
    if (a.name.empty() || a.addr.empty()) {
      return a.name.empty() ? a.addr : a.name;
    }
    return fmt::format("{} <{}>", a.name, a.addr);
  };
  // A subject line that names the data subject (a contact card's title) is not written out.
  auto subject_line = [&](const std::string &line) -> std::string {
    connectors::Item one;
    one.texts.push_back(connectors::RawText{connectors::Role::subject, line});
    one.addresses.push_back(connectors::RawAddress{connectors::Role::from, line, ""});
    if (!subject_kinds_in(one, norm, key, targets).empty()) {
      return "(not shown: it names the data subject)";
    }
    return "\"" + line + "\"";
  };
  for (const auto &[path, indices] : by_file) {
    for (std::size_t i : indices) {
      items[i].instructions = manual_instructions(items[i].locator, hits[i], "", subject_line(hits[i].subject));
    }
    connectors::ItemCollector found;
    if (!connectors::scan_pst_file(items[indices.front()].locator.source, path, found)) {
      continue; // the instructions stay without correspondents
    }
    std::map<std::uint64_t, const connectors::Item *> by_node;
    for (const connectors::Item &item : found.items) {
      by_node.emplace(item.locator.node_id, &item);
    }
    for (std::size_t i : indices) {
      auto it = by_node.find(items[i].locator.node_id);
      if (it == by_node.end()) {
        continue;
      }
      std::string text;
      for (auto [role, word] : {std::pair{connectors::Role::from, "from"}, std::pair{connectors::Role::to, "to"},
                                std::pair{connectors::Role::cc, "cc"}, std::pair{connectors::Role::bcc, "bcc"}}) {
        std::vector<std::string> people;
        for (const connectors::RawAddress &a : it->second->addresses) {
          if (a.role == role && (!a.name.empty() || !a.addr.empty())) {
            std::string p = person(a);
            if (std::ranges::find(people, p) == people.end()) {
              people.push_back(std::move(p));
            }
          }
        }
        if (!people.empty()) {
          text += fmt::format("{}{} {}", text.empty() ? "" : "; ", word, fmt::join(people, ", "));
        }
      }
      items[i].instructions = manual_instructions(items[i].locator, hits[i], text.empty() ? "" : "(" + text + ")",
                                                  subject_line(hits[i].subject));
    }
  }
  return {};
}

/**
 * A message waiting in an MTA queue: maildsar never rewrites the MTA's files. The MTA's own tool
 * removes it — `erase` runs it when the source allows (`allow_remove`), else an administrator
 * does (manual, with the exact command).
 */
void decide_queued(ManifestItem &item, const core::Config &config) {
  const core::SourceConfig *source = nullptr;
  for (const core::SourceConfig &s : config.sources) {
    if (s.name == item.locator.source) {
      source = &s;
    }
  }
  const bool postfix = item.locator.store == connectors::StoreKind::postfix_queue;
  const std::string program = source != nullptr ? source->command : std::string();
  const std::vector<std::string> argv = connectors::queue_removal_command(item.locator, program);
  const std::string what = postfix ? fmt::format("message in the Postfix {} queue", item.locator.folder)
                                   : std::string("message in the Exim spool");
  if (argv.empty()) {
    item.action = Action::manual;
    item.reason = what + ": the MTA's tool cannot remove it";
    item.instructions = fmt::format("On the mail server, stop the MTA from using the file and remove {}{} (queue id "
                                    "{}); then run `maildsar index --source {}` and `maildsar verify`.",
                                    item.locator.path,
                                    postfix ? "" : fmt::format(" and {}", connectors::exim_data_path(item.locator.path)),
                                    item.locator.queue_id, item.locator.source);
    return;
  }
  const std::string command = connectors::command_line(argv);
  if (source != nullptr && source->allow_remove) {
    item.action = Action::erase;
    item.reason = fmt::format("{}: erase runs `{}` (allow_remove) and checks that the file is gone", what, command);
    return;
  }
  item.action = Action::manual;
  item.reason = what + ": removed with the MTA's own tool (maildsar does not change queue files)";
  item.instructions = fmt::format("On the mail server, as root: {}   then run `maildsar index --source {}` and "
                                  "`maildsar verify` (the file {} must be gone).",
                                  command, item.locator.source, item.locator.path);
}

/** True when the archive source `name` is configured with "rewrite": true. */
bool archive_rewrite(const core::Config &config, const std::string &name) {
  return std::any_of(config.sources.begin(), config.sources.end(),
                     [&](const core::SourceConfig &s) { return s.name == name && s.rewrite; });
}

void decide_store(ManifestItem &item, const query::Hit &hit, const core::Config &config, PstMode pst_mode);

/** The roles the subject has in the item, over all its matched identifiers. */
std::vector<std::string> subject_roles(const query::Hit &hit) {
  std::vector<std::string> roles;
  for (const query::Match &m : hit.matched) {
    for (const std::string &r : m.roles) {
      if (std::ranges::find(roles, r) == roles.end()) {
        roles.push_back(r);
      }
    }
  }
  return roles;
}

/** Decides one item's action (holds and exemptions first: they always win). */
void decide(ManifestItem &item, const query::Hit &hit, const core::Config &config, const Policy &policy,
            const MessagePolicy &messages, const std::string &today, PstMode pst_mode) {
  if (auto p = protection_for(config, policy, item.locator.source, item.id, item.locator.path, today)) {
    item.action = Action::retain;
    item.reason = std::move(p->reason);
    item.until = std::move(p->until);
    return;
  }
  std::string policy_note;
  if (item.locator.store != connectors::StoreKind::maillog) {
    // A whole message: the message policy says whether it goes or stays with the subject masked.
    std::string why;
    if (messages.decide(subject_roles(hit), why) == MessageRule::redact) {
      if (std::string unsupported = redaction_unsupported(config, item.locator); !unsupported.empty()) {
        item.action = Action::manual;
        item.reason = fmt::format("{}; the policy says redact, but {}", why, unsupported);
        item.instructions = fmt::format(
            "Remove the subject's identifiers from this message by hand ({}{}), or plan again with a policy "
            "that deletes it; then run `maildsar index --source {}` and `maildsar verify`.",
            item.locator.path,
            item.locator.length > 0 ? fmt::format(", offset {}, {} bytes", item.locator.offset, item.locator.length)
            : item.locator.node_id != 0 ? fmt::format(", node {:#x}", item.locator.node_id)
                                        : std::string(),
            item.locator.source);
        return;
      }
      item.action = Action::redact;
      item.reason = "message kept with the subject masked in it (" + why + ")";
      return; // the changes follow from a trial redaction (RedactionPreview)
    }
    if (messages.raw != MessagePolicy{}.raw) {
      policy_note = why; // a policy other than the built-in one: say which rule deleted it
    }
  }
  decide_store(item, hit, config, pst_mode);
  if (!policy_note.empty() && item.action == Action::erase) {
    item.reason += " (" + policy_note + ")";
  }
}

/** The action of an item by its store (today's behaviour, the message policy's "delete"). */
void decide_store(ManifestItem &item, const query::Hit &hit, const core::Config &config, PstMode pst_mode) {
  switch (item.locator.store) {
  case connectors::StoreKind::maildir:
    item.action = Action::erase;
    item.reason = item.locator.mark == "stray" ? "message file in a mailbox folder, outside cur/ and new/"
                  : item.locator.mark == "tmp" ? "abandoned delivery in a mailbox's tmp/ (older than 36 hours)"
                                               : "message in a mailbox";
    break;
  case connectors::StoreKind::mbox:
    item.action = Action::erase;
    item.reason = "message in an mbox archive";
    break;
  case connectors::StoreKind::quarantine:
    item.action = Action::erase;
    item.reason = "quarantined message";
    break;
  case connectors::StoreKind::emlfolder:
    item.action = Action::erase;
    item.reason = item.locator.length > 0 ? "message in an mbox file of a folder of loose messages"
                                          : "message file in a folder of loose messages";
    break;
  case connectors::StoreKind::postfix_queue:
  case connectors::StoreKind::exim_spool:
    decide_queued(item, config);
    break;
  case connectors::StoreKind::archive:
    if (archive_rewrite(config, item.locator.source) && item.locator.node_id == 0) {
      item.action = Action::erase;
      item.reason = "item of a backup archive: the archive is rewritten without it (rewrite)";
      break;
    }
    item.action = Action::manual;
    item.reason = std::string(k_archive_manual_reason);
    item.instructions = fmt::format(
        "The backup archive {} holds the item as member {}{}. It is not changed in place: keep the subject's "
        "identifiers in the suppression list so that the item is erased again if the backup is restored, or "
        "rewrite the archive without the member by hand and run `maildsar index --source {}`.",
        item.locator.path, item.locator.member,
        item.locator.length > 0   ? fmt::format(" (mbox message at offset {}, {} bytes)", item.locator.offset,
                                                item.locator.length)
        : item.locator.node_id != 0 ? fmt::format(" (PST folder \"{}\", node {:#x})", item.locator.folder,
                                                  item.locator.node_id)
                                    : std::string(),
        item.locator.source);
    break;
  case connectors::StoreKind::maillog:
    item.action = Action::redact;
    item.reason = "delivery-log transaction: the subject's identifiers are pseudonymised, the rest is kept";
    break;
  case connectors::StoreKind::pst:
    if (pst_mode == PstMode::convert) {
      item.action = Action::convert;
      item.reason = "item of a PST file: the file is replaced by an mbox archive without the subject's items";
      return; // convert_to and instructions follow once every item of the file is known
    }
    item.action = Action::manual;
    item.reason = "PST files cannot be changed in place";
    item.instructions = manual_instructions(item.locator, hit, "", "(not shown)");
    break;
  }
}

/**
 * `--pst convert`: names the mbox that replaces each PST file with convert items. A PST that
 * also holds retained items of the subject is not converted (the retained items would move into
 * the new archive unexamined): its items fall back to `manual`.
 */
core::Status plan_conversions(const core::Config &config, std::vector<ManifestItem> &items) {
  const std::string &dir = config.erasure.pst_mbox_dir;
  if (dir.empty() || config.erasure.pst_originals_dir.empty()) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("{}: --pst convert needs erasure.pst_convert.mbox_dir and originals_dir",
                                  config.file),
                      "name the folder of the converted archives (covered by an mbox source) and one outside "
                      "every store root for the original PST files");
  }
  std::set<std::string> retained_in;
  std::map<std::string, std::string> targets; // PST path -> mbox path
  std::set<std::string> taken;
  for (const ManifestItem &item : items) {
    if (item.locator.store == connectors::StoreKind::pst && item.action == Action::retain) {
      retained_in.insert(item.locator.path);
    }
  }
  for (ManifestItem &item : items) {
    if (item.action != Action::convert) {
      continue;
    }
    if (retained_in.contains(item.locator.path)) {
      item.action = Action::manual;
      item.reason = "PST file that also holds retained items of the subject: not converted";
      // describe_manual_pst writes the instructions
      continue;
    }
    auto [it, fresh] = targets.emplace(item.locator.path, "");
    if (fresh) {
      const std::string stem = std::filesystem::path(item.locator.path).stem().string();
      std::string target = dir + "/" + stem + ".mbox";
      std::error_code ec;
      if (taken.contains(target) || std::filesystem::exists(std::filesystem::symlink_status(target, ec))) {
        target = fmt::format("{}/{}-{}.mbox", dir, stem, core::sha256_hex(item.locator.path).substr(0, 8));
      }
      if (taken.contains(target) || std::filesystem::exists(std::filesystem::symlink_status(target, ec))) {
        return core::fail(core::ErrorCode::cant_create, fmt::format("{}: exists; cannot convert {} into it",
                                                                    target, item.locator.path));
      }
      if (mbox_source_for(config, target) == nullptr) {
        return core::fail(core::ErrorCode::config,
                          fmt::format("{}: erasure.pst_convert.mbox_dir {} is not covered by an mbox source; "
                                      "the converted archive {} would not be indexed",
                                      config.file, dir, target),
                          "add an mbox source whose path pattern matches <mbox_dir>/*.mbox");
      }
      taken.insert(target);
      it->second = target;
    }
    item.convert_to = it->second;
    item.instructions = fmt::format("{} is rewritten as the mbox archive {} without the subject's items; the "
                                    "original is moved to {} once the archive verifies",
                                    item.locator.path, item.convert_to, config.erasure.pst_originals_dir);
  }
  return {};
}

} // namespace

namespace {

/**
 * Each message to redact is redacted once on trial, on the bytes plan has just checked against
 * the index: the approver sees what will change (ManifestItem::changes), and a message that
 * cannot be redacted — not parseable, over a limit, or showing nothing of the subject that the
 * redaction finds although the index matched it — is left to an administrator (manual) instead
 * of being half-done by erase. The normaliser and masks are made for the first such message.
 */
class RedactionPreview {
public:
  RedactionPreview(const core::Config &config, const std::string &key, const std::vector<KeyedIdentifier> &subject)
      : m_config(config), m_key(key), m_subject(subject) {}

  core::Status preview(ManifestItem &item, std::string_view stored) {
    if (!m_masks) {
      MAILDSAR_TRY(index::Normalizer::load_phone_module());
      m_norm.emplace(index::NormalizeOptions{m_config.identity.subaddress_separators, m_config.identity.phone_region});
      m_masks.emplace(m_key, m_subject);
    }
    const auto to_manual = [&](const std::string &why) {
      item.action = Action::manual;
      item.reason = "the policy says redact, but " + why;
      item.instructions = fmt::format("Remove the subject's identifiers from this message by hand ({}), or plan "
                                      "again with a policy that deletes it; then run `maildsar index --source {}` "
                                      "and `maildsar verify`.",
                                      item.locator.path, item.locator.source);
    };
    auto redacted = redact_stored_item(item.locator, stored, *m_masks, *m_norm);
    if (!redacted) {
      to_manual("it cannot be redacted: " + redacted.error().message);
    } else if (!redacted->report.changed()) {
      to_manual("the redaction finds nothing of the subject in it to mask, although the index matched it");
    } else {
      item.changes = change_list(redacted->report);
    }
    return {};
  }

private:
  const core::Config &m_config;
  const std::string &m_key;
  const std::vector<KeyedIdentifier> &m_subject;
  std::optional<index::Normalizer> m_norm;
  std::optional<KeyedMasks> m_masks;
};

} // namespace

core::Result<PlanResult> plan(const core::Config &config, const query::SubjectProfile &subject,
                              const PlanOptions &options) {
  if (options.resurrected ? subject.request.empty() : subject.empty()) {
    return options.resurrected
               ? core::fail(core::ErrorCode::usage, "--resurrected needs the erased request",
                            "give --request ID (the request of the completed erasure)")
               : core::fail(core::ErrorCode::usage, "no identifier given",
                            "use --email, --name, --phone, --ip or --subject FILE");
  }
  MAILDSAR_TRY_ASSIGN(Policy policy, options.policy ? parse_policy(*options.policy, "the request's policy")
                                                    : load_policy(options.policy_path));
  MAILDSAR_TRY_ASSIGN(MessagePolicy messages, effective_message_policy(config, policy.raw));
  MAILDSAR_TRY_ASSIGN(std::string key, core::load_or_create_secret(config.state_dir));
  PlanResult result;
  Manifest &m = result.manifest;
  std::vector<query::Hit> hits;
  if (options.resurrected) {
    // The subject as the suppression list keeps it (keyed), the items as the index flagged them.
    MAILDSAR_TRY_ASSIGN(std::vector<index::Suppression> list, index::read_suppressions(config));
    for (const index::Suppression &s : list) {
      if (s.request != subject.request) {
        continue;
      }
      for (const index::SuppressedIdentifier &i : s.identifiers) {
        KeyedIdentifier k{i.kind, i.hash};
        if (std::ranges::find(m.subject, k) == m.subject.end()) {
          m.subject.push_back(std::move(k));
        }
      }
    }
    if (m.subject.empty()) {
      return core::fail(core::ErrorCode::no_input,
                        fmt::format("no completed erasure of request {} in the suppression list {}", subject.request,
                                    index::suppression_path(config)),
                        "`maildsar status` lists the requests whose items came back");
    }
    MAILDSAR_TRY_ASSIGN(hits, query::suppressed_items(config, subject.request));
  } else {
    MAILDSAR_TRY_ASSIGN(m.subject, keyed_subject(config, subject, key));
    MAILDSAR_TRY_ASSIGN(hits, query::find(config, subject));
  }
  const std::string today = options.today.empty() ? today_utc() : options.today;

  m.request = subject.request.empty() ? "DSAR-" + today : subject.request;
  m.created = now_iso();
  m.planner = options.planner;
  m.planner_os = options.planner_os;
  m.policy = policy.raw;
  m.policy["messages"] = messages.raw; // the rule every message was decided by, under the approval
  m.index_version = std::string(index::schema::k_schema_version);
  m.tool_version = MAILDSAR_VERSION;
  std::map<std::string, std::uint64_t> counts;
  RedactionPreview redaction(config, key, m.subject);
  std::uint64_t checked = 0;
  for (const query::Hit &hit : hits) {
    core::report_progress(options.on_progress, "items", checked++, hits.size());
    ManifestItem item;
    item.id = hit.id;
    item.locator = hit.locator;
    item.sha256 = hit.sha256;
    if (auto st = core::lstat_file(hit.locator.path)) {
      item.file = FileIdentity{st->dev, st->ino, st->size, st->mtime_ns};
    }
    decide(item, hit, config, policy, messages, today, options.pst);
    if (item.locator.store != connectors::StoreKind::pst) {
      auto bytes = connectors::read_item_bytes(item.locator);
      if (!bytes || core::sha256_hex(*bytes) != item.sha256) {
        ++result.stale; // erase will skip it; the DPO should re-index and plan again
      } else if (item.action == Action::redact && item.locator.store != connectors::StoreKind::maillog) {
        MAILDSAR_TRY(redaction.preview(item, *bytes));
      }
    }
    m.items.push_back(std::move(item));
  }
  core::report_progress(options.on_progress, "items", hits.size(), hits.size());
  if (options.pst == PstMode::convert) {
    MAILDSAR_TRY(plan_conversions(config, m.items));
  }
  MAILDSAR_TRY(describe_manual_pst(config, key, m.subject, m.items, hits));
  for (const ManifestItem &item : m.items) {
    ++counts[std::string(to_string(item.action))];
  }
  m.hash = m.compute_hash();
  result.hits = hits;

  MAILDSAR_TRY_ASSIGN(ErasureDb db, ErasureDb::open(config));
  MAILDSAR_TRY(db.put_manifest(m));
  MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
  MAILDSAR_TRY(audit.append("plan", options.planner, m.request,
                            json{{"manifest_sha256", m.hash},
                                 {"items", m.items.size()},
                                 {"actions", counts},
                                 {"stale", result.stale},
                                 {"resurrected", options.resurrected}}));
  return result;
}

// --------------------------------------------------------------------------------------------

core::Result<std::vector<Approval>> approvals(const core::Config &config, const std::string &manifest_hash) {
  MAILDSAR_TRY_ASSIGN(ErasureDb db, ErasureDb::open(config));
  return db.approvals(manifest_hash);
}

core::Result<std::string> approval_signature(const core::Config &config, ErasureDb &db, const std::string &hash,
                                             const std::string &planner,
                                             const std::optional<core::OsUser> &planner_os,
                                             const std::string &operator_name, const std::string &signing_key_path,
                                             const core::OsUser &approver_os) {
  if (operator_name.empty()) {
    return core::fail(core::ErrorCode::usage, "approve needs an operator", "give --operator NAME");
  }
  if (operator_name == planner) {
    return core::fail(core::ErrorCode::permission,
                      fmt::format("{} planned manifest {} and cannot also approve it", operator_name,
                                  hash.substr(0, 16)),
                      "a second person must approve (four-eyes principle)");
  }
  if (planner_os && planner_os->uid == approver_os.uid) {
    // Names are what people say; the OS account is what the kernel says.
    return core::fail(core::ErrorCode::permission,
                      fmt::format("OS user '{}' planned manifest {} (as {}) and cannot also approve it, "
                                  "not even as --operator {}",
                                  approver_os.name, hash.substr(0, 16), planner, operator_name),
                      "a second person must approve from their own OS login (four-eyes principle)");
  }
  MAILDSAR_TRY_ASSIGN(std::vector<Approval> earlier, db.approvals(hash));
  for (const Approval &a : earlier) {
    if (a.os && a.os->uid == approver_os.uid && a.operator_name != operator_name) {
      return core::fail(core::ErrorCode::permission,
                        fmt::format("OS user '{}' already approved manifest {} as {}; one OS login counts "
                                    "as one approver, not again as {}",
                                    approver_os.name, hash.substr(0, 16), a.operator_name, operator_name),
                        "another person must approve from their own OS login");
    }
  }
  std::string signature;
  if (!signing_key_path.empty()) {
    const std::string message = approval_message(hash, operator_name);
    MAILDSAR_TRY_ASSIGN(signature, sign_ed25519(signing_key_path, message));
    if (auto key = config.erasure.approver_keys.find(operator_name); key != config.erasure.approver_keys.end()) {
      MAILDSAR_TRY_ASSIGN(bool valid, verify_ed25519(key->second, message, signature));
      if (!valid) {
        return core::fail(core::ErrorCode::permission,
                          fmt::format("{} does not match the public key configured for {} ({})", signing_key_path,
                                      operator_name, key->second));
      }
    }
  } else if (!config.erasure.approver_keys.empty()) {
    return core::fail(core::ErrorCode::usage, "approvals must be signed: approver keys are configured",
                      "give --sign-key YOUR-PRIVATE-KEY.pem");
  }
  return signature;
}

core::Result<std::vector<Approval>> approve(const core::Config &config, const Manifest &manifest,
                                            const std::string &operator_name, const std::string &signing_key_path,
                                            const core::OsUser &approver_os) {
  MAILDSAR_TRY_ASSIGN(ErasureDb db, ErasureDb::open(config));
  MAILDSAR_TRY_ASSIGN(std::string signature,
                      approval_signature(config, db, manifest.hash, manifest.planner, manifest.planner_os,
                                         operator_name, signing_key_path, approver_os));
  MAILDSAR_TRY(db.put_manifest(manifest));
  MAILDSAR_TRY_ASSIGN(std::vector<Approval> before, db.approvals(manifest.hash));
  MAILDSAR_TRY(db.add_approval(manifest.hash, operator_name, now_iso(), signature, approver_os));
  MAILDSAR_TRY_ASSIGN(std::vector<Approval> after, db.approvals(manifest.hash));
  const auto signed_now = [&](const std::vector<Approval> &list) {
    return std::ranges::count_if(list, [&](const Approval &a) {
      return a.operator_name == operator_name && !a.signature.empty();
    });
  };
  if (after.size() != before.size() || signed_now(after) != signed_now(before)) {
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    MAILDSAR_TRY(audit.append("approve", operator_name, manifest.request,
                              json{{"manifest_sha256", manifest.hash},
                                   {"approver_os_user", approver_os.name},
                                   {"signed", !signature.empty()},
                                   {"approvals", after.size()},
                                   {"required", config.erasure.approvals_required}}));
  }
  return after;
}

} // namespace maildsar::erasure
