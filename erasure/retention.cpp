// SPDX-License-Identifier: GPL-3.0-or-later
// `retention`: lists (and with --apply deletes or anonymises) what is past its retention period.
#include "erasure/retention.hpp"
#include "core/time.hpp"

#include "connectors/connector.hpp"
#include "connectors/item_reader.hpp"
#include "connectors/store_writer.hpp"
#include "core/audit.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/secret.hpp"
#include "erasure/redact.hpp"
#include "erasure/state.hpp"
#include "indexer/identity.hpp"
#include "indexer/indexer.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>

namespace maildsar::erasure {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t k_day = 86400;

using core::days_from_civil;

/** "YYYY-MM-DD" of a time (UTC). */
std::string civil_date(std::int64_t seconds) { return core::format_utc(seconds, "%Y-%m-%d"); }

std::optional<unsigned> number(std::string_view text, std::size_t pos, std::size_t len) {
  if (pos + len > text.size()) {
    return std::nullopt;
  }
  unsigned v = 0;
  for (std::size_t i = pos; i < pos + len; ++i) {
    if (text[i] < '0' || text[i] > '9') {
      return std::nullopt;
    }
    v = v * 10 + static_cast<unsigned>(text[i] - '0');
  }
  return v;
}

/** The age rule as written for humans: "90d", "12h", "45s". */
std::string age_text(std::int64_t seconds) {
  if (seconds % k_day == 0) {
    return fmt::format("{}d", seconds / k_day);
  }
  if (seconds % 3600 == 0) {
    return fmt::format("{}h", seconds / 3600);
  }
  return fmt::format("{}s", seconds);
}

const core::RetentionRule *rule_of(const core::Config &config, const std::string &source) {
  for (const core::RetentionRule &r : config.retention) {
    if (r.source == source) {
      return &r;
    }
  }
  return nullptr;
}

class Collect : public connectors::ItemSink {
public:
  void item(connectors::Item &&item) override { items.push_back(std::move(item)); }
  void error(connectors::ScanError &&error) override { errors.push_back(std::move(error)); }
  std::vector<connectors::Item> items;
  std::vector<connectors::ScanError> errors;
};

std::string scan_error_text(const connectors::ScanError &e) {
  return e.position.empty() ? fmt::format("{}: {}", e.path, e.cause)
                            : fmt::format("{}: {}: {}", e.path, e.position, e.cause);
}

/** Splits an item's bytes (log lines joined with '\n') into its lines. */
std::vector<std::string_view> split_lines(const std::string &bytes, std::size_t expected) {
  std::vector<std::string_view> out;
  std::size_t begin = 0;
  for (std::size_t i = 0; i < expected; ++i) {
    std::size_t end = bytes.find('\n', begin);
    if (end == std::string::npos) {
      end = bytes.size();
    }
    out.emplace_back(bytes.data() + begin, end - begin);
    begin = std::min(end + 1, bytes.size());
  }
  return out;
}

/** The date an item is judged by (see plan_retention). */
std::optional<std::int64_t> judged_date(const connectors::Item &item, const connectors::FileEntry &file) {
  const std::int64_t mtime = file.stat.mtime_ns / 1000000000;
  switch (item.locator.store) {
  case connectors::StoreKind::maillog:
  case connectors::StoreKind::postfix_queue: // the Date field, else the arrival time
  case connectors::StoreKind::exim_spool:
    return item.date;
  case connectors::StoreKind::quarantine:
  case connectors::StoreKind::emlfolder:
    if (item.locator.length == 0) {
      return mtime;
    }
    return item.date ? item.date : std::optional<std::int64_t>(mtime);
  case connectors::StoreKind::maildir:
  case connectors::StoreKind::mbox:
  case connectors::StoreKind::pst:
  case connectors::StoreKind::archive:
    return item.date ? item.date : std::optional<std::int64_t>(mtime);
  }
  return item.date;
}


/**
 * Puts a rewritten log's modification time back: the maillog connector infers the year of
 * syslog lines from it, so a log rewritten in a later year would otherwise move its lines a year
 * forward. Only when the file did not grow (nobody appended meanwhile). A log edited in place
 * (same inode, same size) gets one second more, so that `index` still sees it changed.
 */
void keep_mtime(const std::string &path, const core::FileStat &before) {
  auto after = core::lstat_file(path);
  if (!after || after->size > before.size) {
    return;
  }
  const std::int64_t bump = after->ino == before.ino && after->dev == before.dev ? 1 : 0;
  const timespec times[2] = {{0, UTIME_OMIT},
                             {static_cast<time_t>(before.mtime_ns / 1000000000 + bump),
                              static_cast<long>(before.mtime_ns % 1000000000)}};
  (void)::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW);
}

/** Every expired item of one file that apply changes. */
struct FileStep {
  std::string path;
  connectors::StoreKind store = connectors::StoreKind::maillog;
  std::string source;
  std::vector<std::size_t> items; // indices into plan.items
};

class Applier {
public:
  Applier(const core::Config &config, const RetentionPlan &plan, const RetentionOptions &options, ErasureDb &db,
          const Redactor &redactor, std::string run_key, std::vector<RetentionOutcome> &outcomes)
      : m_config(config), m_plan(plan), m_options(options), m_db(db), m_redactor(redactor),
        m_key(std::move(run_key)), m_outcomes(outcomes) {}

  void point(const std::string &step) const {
    kill_at(m_options.fault_at, step);
  }

  core::Status run_file(std::size_t n, const FileStep &step) {
    const std::string key = "file:" + step.path;
    MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> entry, m_db.journal(m_key, key));
    if (entry && entry->state == "done" && replay(entry->detail)) {
      return {};
    }
    json started = {{"items", step.items.size()}};
    MAILDSAR_TRY(m_db.set_journal(m_key, key, "started", started.dump()));
    point(fmt::format("file:{}:started", n));
    const std::string prefix = fmt::format("file:{}:", n);
    connectors::StepHook hook = [this, prefix](std::string_view s) -> core::Status {
      point(prefix + std::string(s));
      return {};
    };
    std::map<std::size_t, std::pair<std::string, std::string>> results;
    auto outcome = [&](std::size_t i, std::string result, std::string detail) {
      results[i] = {std::move(result), std::move(detail)};
    };
    if (auto inside = check_inside_root(m_config, step.source, step.path); !inside) {
      for (std::size_t i : step.items) {
        outcome(i, "failed", inside.error().message);
      }
    } else {
      switch (step.store) {
      case connectors::StoreKind::maillog:
        edit_log(step, hook, outcome);
        break;
      case connectors::StoreKind::maildir:
        remove_maildir(step, hook, outcome);
        break;
      case connectors::StoreKind::quarantine:
      case connectors::StoreKind::emlfolder:
      case connectors::StoreKind::mbox:
        remove_file_or_ranges(step, hook, outcome);
        break;
      case connectors::StoreKind::pst:
        for (std::size_t i : step.items) {
          outcome(i, "failed", "a PST file cannot be changed in place; remove the items with a mail client");
        }
        break;
      case connectors::StoreKind::postfix_queue:
      case connectors::StoreKind::exim_spool:
        for (std::size_t i : step.items) {
          outcome(i, "failed", "an MTA queue is not changed by retention: the MTA expires queued mail itself "
                               "(Postfix maximal_queue_lifetime, Exim timeout_frozen_after)");
        }
        break;
      case connectors::StoreKind::archive:
        for (std::size_t i : step.items) {
          outcome(i, "failed", std::string(k_archive_manual_reason));
        }
        break;
      }
    }
    json done = json::array();
    for (const auto &[i, r] : results) {
      done.push_back({{"item", i}, {"result", r.first}, {"detail", r.second}});
    }
    point(fmt::format("file:{}:before-done", n));
    MAILDSAR_TRY(m_db.set_journal(m_key, key, "done", done.dump()));
    point(fmt::format("file:{}:done", n));
    replay(done.dump());
    return {};
  }

private:
  using Outcome = std::function<void(std::size_t, std::string, std::string)>;

  /** Applies a finished step's outcomes; false when it has to run again (something failed). */
  bool replay(const std::string &detail) {
    const json done = json::parse(detail, nullptr, false);
    if (!done.is_array()) {
      return false;
    }
    for (const json &o : done) {
      if (o.value("result", std::string()) == "failed") {
        return false;
      }
    }
    for (const json &o : done) {
      const std::size_t i = o.value("item", std::size_t{0});
      if (i < m_outcomes.size()) {
        m_outcomes[i].result = o.value("result", std::string());
        m_outcomes[i].detail = o.value("detail", std::string());
      }
    }
    return true;
  }

  void edit_log(const FileStep &step, const connectors::StepHook &hook, const Outcome &outcome) {
    std::vector<connectors::LineEdit> edits;
    std::map<std::uint64_t, std::string> originals;
    std::vector<std::size_t> changing;
    for (std::size_t i : step.items) {
      const RetentionItem &item = m_plan.items[i];
      auto bytes = connectors::read_item_bytes(item.locator);
      if (!bytes) {
        outcome(i, bytes.error().code == core::ErrorCode::no_input ? "stale" : "failed", bytes.error().message);
        continue;
      }
      if (core::sha256_hex(*bytes) != item.sha256) {
        outcome(i, "stale", "log lines changed since they were scanned; not touched");
        continue;
      }
      const std::vector<std::string_view> lines = split_lines(*bytes, item.locator.lines.size());
      std::size_t changed = 0;
      for (std::size_t l = 0; l < lines.size(); ++l) {
        const std::uint64_t number = item.locator.lines[l];
        if (originals.contains(number)) {
          continue;
        }
        if (item.decision.action == RetentionAction::erase) {
          edits.push_back(connectors::LineEdit{number, std::nullopt, core::sha256_hex(lines[l])});
        } else {
          Redactor::Redacted r = m_redactor.anonymize_all(lines[l]);
          if (r.replaced == 0) {
            continue;
          }
          edits.push_back(connectors::LineEdit{number, std::move(r.line), core::sha256_hex(lines[l])});
        }
        originals.emplace(number, std::string(lines[l]));
        ++changed;
      }
      if (changed == 0) {
        outcome(i, "done", "nothing left to change");
      } else {
        changing.push_back(i);
      }
    }
    if (edits.empty()) {
      return;
    }
    std::ranges::sort(edits, {}, &connectors::LineEdit::line);
    std::string joined;
    bool first = true;
    for (const auto &[line, text] : originals) {
      joined += (first ? "" : "\n") + text;
      first = false;
    }
    auto before = core::lstat_file(step.path);
    auto rewritten = connectors::rewrite_log_lines(step.path, edits, core::sha256_hex(joined), hook);
    if (rewritten && before) {
      keep_mtime(step.path, *before);
    }
    for (std::size_t i : changing) {
      if (rewritten) {
        outcome(i, "done", "");
      } else {
        outcome(i, connectors::is_stale(rewritten.error()) ? "stale" : "failed", rewritten.error().message);
      }
    }
  }

  void remove_maildir(const FileStep &step, const connectors::StepHook &hook, const Outcome &outcome) {
    for (std::size_t i : step.items) {
      const RetentionItem &item = m_plan.items[i];
      auto current = connectors::maildir_current_path(item.locator.path);
      if (!current) {
        outcome(i, "stale", "message file no longer exists");
        continue;
      }
      if (auto inside = check_inside_root(m_config, step.source, *current); !inside) {
        outcome(i, "failed", inside.error().message);
        continue;
      }
      auto removed = connectors::remove_message_file(*current, item.sha256, hook);
      if (removed) {
        outcome(i, "done", "");
      } else {
        outcome(i, connectors::is_stale(removed.error()) ? "stale" : "failed", removed.error().message);
      }
    }
  }

  void remove_file_or_ranges(const FileStep &step, const connectors::StepHook &hook, const Outcome &outcome) {
    std::vector<connectors::MboxCut> cuts;
    std::vector<std::size_t> ranged;
    for (std::size_t i : step.items) {
      const RetentionItem &item = m_plan.items[i];
      if (connectors::is_message_file(item.locator)) {
        auto removed = connectors::remove_message_file(item.locator.path, item.sha256, hook);
        if (removed) {
          outcome(i, "done", "");
        } else {
          const bool stale = connectors::is_stale(removed.error()) || removed.error().code == core::ErrorCode::no_input;
          outcome(i, stale ? "stale" : "failed", removed.error().message);
        }
        continue;
      }
      cuts.push_back(connectors::MboxCut{item.locator.offset, item.locator.length, item.sha256});
      ranged.push_back(i);
    }
    if (cuts.empty()) {
      return;
    }
    auto rewritten = connectors::rewrite_mbox(step.path, cuts, hook);
    for (std::size_t k = 0; k < ranged.size(); ++k) {
      if (!rewritten) {
        outcome(ranged[k], rewritten.error().code == core::ErrorCode::no_input ? "stale" : "failed",
                rewritten.error().message);
      } else if (k < rewritten->removed.size() && rewritten->removed[k]) {
        outcome(ranged[k], "done", "");
      } else {
        outcome(ranged[k], "stale", "bytes changed since they were scanned; not touched");
      }
    }
  }

  const core::Config &m_config;
  const RetentionPlan &m_plan;
  const RetentionOptions &m_options;
  ErasureDb &m_db;
  const Redactor &m_redactor;
  std::string m_key;
  std::vector<RetentionOutcome> &m_outcomes;
};

} // namespace

std::string_view to_string(RetentionAction action) {
  switch (action) {
  case RetentionAction::erase:
    return "delete";
  case RetentionAction::anonymize:
    return "anonymize";
  case RetentionAction::retain:
    return "retain";
  }
  return "delete";
}

core::Result<std::int64_t> parse_retention_now(std::string_view text) {
  auto bad = [&] {
    return core::fail(core::ErrorCode::usage,
                      fmt::format("--now '{}': expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ", text));
  };
  auto y = number(text, 0, 4);
  auto mo = number(text, 5, 2);
  auto d = number(text, 8, 2);
  if (text.size() < 10 || !y || !mo || !d || text[4] != '-' || text[7] != '-' || *mo < 1 || *mo > 12 ||
      *d < 1 || *d > 31) {
    return bad();
  }
  std::int64_t t = days_from_civil(*y, *mo, *d) * k_day;
  if (civil_date(t) != text.substr(0, 10)) {
    return bad(); // 2026-02-30
  }
  if (text.size() == 10) {
    return t;
  }
  auto h = number(text, 11, 2);
  auto mi = number(text, 14, 2);
  auto s = number(text, 17, 2);
  if (text.size() != 20 || (text[10] != 'T' && text[10] != ' ') || text[13] != ':' || text[16] != ':' ||
      text[19] != 'Z' || !h || !mi || !s || *h > 23 || *mi > 59 || *s > 60) {
    return bad();
  }
  return t + *h * 3600 + *mi * 60 + *s;
}

std::optional<RetentionDecision> retention_decision(const core::Config &config, const std::string &source,
                                                    std::optional<std::int64_t> date, std::int64_t now) {
  const core::RetentionRule *rule = rule_of(config, source);
  if (rule == nullptr || !date || *date >= now - rule->max_age_seconds) {
    return std::nullopt;
  }
  const std::string today = civil_date(now);
  for (const core::Hold &hold : config.holds) {
    if (hold.source == source && (hold.until.empty() || hold.until >= today)) {
      return RetentionDecision{RetentionAction::retain,
                               hold.until.empty() ? fmt::format("hold: {}", hold.reason)
                                                  : fmt::format("hold: {} (until {})", hold.reason, hold.until)};
    }
  }
  const RetentionAction action = rule->action == "anonymize" ? RetentionAction::anonymize : RetentionAction::erase;
  return RetentionDecision{action, fmt::format("older than {}", age_text(rule->max_age_seconds))};
}

std::string RetentionPlan::hash() const {
  core::Sha256 h;
  h.update(fmt::format("now {}\n", now));
  for (const RetentionItem &item : items) {
    h.update(fmt::format("{}\t{}\t{}\t{}\n", item.locator.source, item.locator.key(), item.sha256,
                         to_string(item.decision.action)));
  }
  return h.hex_digest();
}

std::uint64_t RetentionReport::count(std::string_view result) const {
  std::uint64_t n = 0;
  for (const auto &[source, by_action] : counts) {
    for (const auto &[action, by_result] : by_action) {
      if (auto it = by_result.find(std::string(result)); it != by_result.end()) {
        n += it->second;
      }
    }
  }
  return n;
}

core::Result<RetentionPlan> plan_retention(const core::Config &config, std::int64_t now,
                                           const core::ProgressFn &on_progress) {
  RetentionPlan plan;
  plan.now = now;
  index::Normalizer normalizer(
      index::NormalizeOptions{config.identity.subaddress_separators, config.identity.phone_region});
  MAILDSAR_TRY(index::Normalizer::load_phone_module());
  // Whether a line still holds anything to pseudonymise does not depend on the key.
  const Redactor probe("retention-probe", {}, normalizer);

  for (const core::SourceConfig &source : config.sources) {
    const core::RetentionRule *rule = rule_of(config, source.name);
    if (rule == nullptr) {
      continue; // never looked at: no rule names it
    }
    RetentionSourceCounts &counts = plan.sources[source.name];
    counts.rule = fmt::format("{} {}", age_text(rule->max_age_seconds), rule->action);
    if (source.type == "pst") {
      plan.scan_errors.push_back(fmt::format("source '{}': retention cannot change PST files in place; not "
                                             "enforced there",
                                             source.name));
      continue;
    }
    auto connector = connectors::make_connector(source);
    if (!connector) {
      plan.scan_errors.push_back(fmt::format("source '{}': {}", source.name, connector.error().message));
      continue;
    }
    Collect errors;
    auto files = (*connector)->list_files(errors);
    for (const connectors::ScanError &e : errors.errors) {
      plan.scan_errors.push_back(scan_error_text(e));
    }
    if (!files) {
      plan.scan_errors.push_back(fmt::format("source '{}': {}", source.name, files.error().message));
      continue;
    }
    const std::string phase = "scan " + source.name;
    std::uint64_t read = 0;
    for (const connectors::FileEntry &file : *files) {
      core::report_progress(on_progress, phase, read++, files->size());
      Collect sink;
      if (auto scanned = (*connector)->scan(file, 0, sink); !scanned) {
        plan.scan_errors.push_back(fmt::format("{}: {}", file.path, scanned.error().message));
        continue;
      }
      for (const connectors::ScanError &e : sink.errors) {
        plan.scan_errors.push_back(scan_error_text(e));
      }
      for (connectors::Item &item : sink.items) {
        ++counts.scanned;
        const std::optional<std::int64_t> date = judged_date(item, file);
        if (!date) {
          ++counts.undated;
          continue;
        }
        std::optional<RetentionDecision> decision = retention_decision(config, source.name, date, now);
        if (!decision) {
          ++counts.kept;
          continue;
        }
        if (decision->action == RetentionAction::anonymize) {
          if (item.locator.store != connectors::StoreKind::maillog) {
            // Only log lines can be anonymised; a message past its period is deleted.
            decision->action = RetentionAction::erase;
            decision->reason += " (messages cannot be anonymised: deleted)";
          } else {
            auto bytes = connectors::read_item_bytes(item.locator);
            if (!bytes) {
              plan.scan_errors.push_back(fmt::format("{}: {}", file.path, bytes.error().message));
              continue;
            }
            bool pending = false;
            for (std::string_view line : split_lines(*bytes, item.locator.lines.size())) {
              if (probe.anonymize_all(line).replaced > 0) {
                pending = true;
                break;
              }
            }
            if (!pending) {
              ++counts.already_anonymized;
              continue;
            }
          }
        }
        ++counts.actions[std::string(to_string(decision->action))];
        plan.items.push_back(RetentionItem{std::move(item.locator), std::move(item.sha256), *date,
                                           std::move(*decision)});
      }
    }
    core::report_progress(on_progress, phase, files->size(), files->size());
  }
  return plan;
}

core::Result<RetentionReport> apply_retention(const core::Config &config, const RetentionPlan &plan,
                                              const RetentionOptions &options) {
  MAILDSAR_TRY(core::ensure_private_dir(config.state_dir));
  MAILDSAR_TRY_ASSIGN(core::FileLock lock,
                      core::FileLock::try_acquire(config.state_dir + "/retention.lock",
                                                  "another `maildsar retention --apply` is running"));
  // The key first: a missing key is only made afresh in a state without erasure records.
  MAILDSAR_TRY_ASSIGN(std::string key, core::load_or_create_secret(config.state_dir));
  MAILDSAR_TRY_ASSIGN(ErasureDb db, ErasureDb::open(config));
  index::Normalizer normalizer(
      index::NormalizeOptions{config.identity.subaddress_separators, config.identity.phone_region});
  MAILDSAR_TRY(index::Normalizer::load_phone_module());
  const Redactor redactor(key, {}, normalizer);

  RetentionReport report;
  report.run_id = plan.hash();
  const std::string run_key = "retention:" + report.run_id;
  report.outcomes.resize(plan.items.size());

  std::vector<FileStep> steps;
  std::map<std::string, std::size_t> by_path;
  for (std::size_t i = 0; i < plan.items.size(); ++i) {
    const RetentionItem &item = plan.items[i];
    report.outcomes[i].item = &item;
    if (item.decision.action == RetentionAction::retain) {
      report.outcomes[i].result = "retained";
      report.outcomes[i].detail = item.decision.reason;
      continue;
    }
    auto [it, fresh] = by_path.emplace(item.locator.path, steps.size());
    if (fresh) {
      steps.push_back(FileStep{item.locator.path, item.locator.store, item.locator.source, {}});
    }
    steps[it->second].items.push_back(i);
  }

  Applier applier(config, plan, options, db, redactor, run_key, report.outcomes);
  applier.point("begin");
  for (std::size_t n = 0; n < steps.size(); ++n) {
    core::report_progress(options.on_progress, "files", n, steps.size());
    MAILDSAR_TRY(applier.run_file(n, steps[n]));
  }
  core::report_progress(options.on_progress, "files", steps.size(), steps.size());

  std::set<std::string> changed_sources;
  for (const RetentionOutcome &o : report.outcomes) {
    const std::string action(to_string(o.item->decision.action));
    ++report.counts[o.item->locator.source][action][o.result];
    if (o.result == "done") {
      changed_sources.insert(o.item->locator.source);
    }
  }

  // The index follows: re-index what changed, then compact index and catalog.
  if (!changed_sources.empty()) {
    MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> indexed, db.journal(run_key, "index"));
    if (!indexed || indexed->state != "done") {
      applier.point("index:before");
      MAILDSAR_TRY(db.set_journal(run_key, "index", "started", "{}"));
      index::IndexOptions io;
      io.on_progress = options.on_progress;
      io.only_sources.assign(changed_sources.begin(), changed_sources.end());
      io.removal_guard = index::RemovalGuard::off; // the files went by our own hand
      auto reindexed = index::run_index(config, io);
      if (!reindexed) {
        return std::unexpected(
            reindexed.error().with_context("retention done, but updating the index failed: "));
      }
      applier.point("index:reindexed");
      MAILDSAR_TRY(index::compact_state(config));
      MAILDSAR_TRY(db.set_journal(run_key, "index", "done", "{}"));
    }
    report.index_updated = true;
  }

  MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> audited, db.journal(run_key, "audit"));
  // An empty plan is audited each time (it has no identity of its own to resume by).
  if (plan.items.empty() || !audited || audited->state != "done") {
    json rules = json::object();
    for (const auto &[source, c] : plan.sources) {
      rules[source] = c.rule;
    }
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    MAILDSAR_TRY(audit.append("retention", options.operator_name, "retention:" + report.run_id.substr(0, 16),
                              json{{"run", report.run_id},
                                   {"now", civil_date(plan.now)},
                                   {"rules", rules},
                                   {"counts", report.counts},
                                   {"index_updated", report.index_updated}}));
    MAILDSAR_TRY(db.set_journal(run_key, "audit", "done", "{}"));
  }
  applier.point("end");
  return report;
}

} // namespace maildsar::erasure
