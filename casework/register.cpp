// SPDX-License-Identifier: GPL-3.0-or-later
#include "casework/register.hpp"

#include "core/audit.hpp"
#include "core/fs.hpp"
#include "core/secret.hpp"
#include "core/sqlite.hpp"
#include "core/time.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>
#include <filesystem>

namespace maildsar::casework {

using nlohmann::json;

namespace {

bool leap(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

unsigned days_in_month(int year, unsigned month) {
  constexpr std::array<unsigned, 12> k_days{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && leap(year) ? 29U : k_days[month - 1];
}

// Migration 1: the register. subject is the JSON of the identifiers in clear ("" once purged);
// keyed_subject the JSON array of {"kind","hash"} that replaces it then.
constexpr std::string_view k_schema_v1 = R"(
CREATE TABLE requests(
  id TEXT PRIMARY KEY NOT NULL,
  type TEXT NOT NULL,
  status TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  received TEXT NOT NULL,
  extension_months INTEGER NOT NULL DEFAULT 0,
  extension_reason TEXT NOT NULL DEFAULT '',
  subject TEXT NOT NULL,
  keyed_subject TEXT NOT NULL DEFAULT '',
  opened TEXT NOT NULL,
  opened_by TEXT NOT NULL,
  closed TEXT NOT NULL DEFAULT '',
  outcome TEXT NOT NULL DEFAULT '',
  purged TEXT NOT NULL DEFAULT '');
CREATE TABLE notes(
  request TEXT NOT NULL REFERENCES requests(id),
  time TEXT NOT NULL,
  operator TEXT NOT NULL,
  text TEXT NOT NULL);
CREATE INDEX notes_request ON notes(request);
)";

constexpr std::string_view k_columns =
    "id, type, status, reason, received, extension_months, extension_reason, subject, keyed_subject, "
    "opened, opened_by, closed, outcome, purged";

std::string subject_text(const query::SubjectProfile &s) {
  return json{{"emails", s.emails}, {"names", s.names}, {"phones", s.phones}, {"ips", s.ips}}.dump();
}

core::Result<Request> row_to_request(const core::sqlite::Stmt &st, const std::string &db_path) {
  Request r;
  r.id = st.column_text(0);
  auto bad = [&](std::string_view what) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: request {}: {}", db_path, r.id, what));
  };
  auto type = request_type_from_string(st.column_text(1));
  auto status = status_from_string(st.column_text(2));
  auto received = parse_date(st.column_text(4), "received");
  if (!type || !status || !received) {
    return bad("unreadable type, status or received date");
  }
  r.type = *type;
  r.status = *status;
  r.reason = st.column_text(3);
  r.received = *received;
  r.extension_months = static_cast<int>(st.column_int64(5));
  r.extension_reason = st.column_text(6);
  try {
    const std::string subject = st.column_text(7);
    if (!subject.empty()) {
      const json j = json::parse(subject);
      r.subject.emails = j.at("emails").get<std::vector<std::string>>();
      r.subject.names = j.at("names").get<std::vector<std::string>>();
      r.subject.phones = j.at("phones").get<std::vector<std::string>>();
      r.subject.ips = j.at("ips").get<std::vector<std::string>>();
    }
    const std::string keyed = st.column_text(8);
    if (!keyed.empty()) {
      for (const json &k : json::parse(keyed)) {
        r.keyed_subject.push_back(
            erasure::KeyedIdentifier{k.at("kind").get<std::string>(), k.at("hash").get<std::string>()});
      }
    }
  } catch (const json::exception &e) {
    return bad(fmt::format("unreadable subject: {}", e.what()));
  }
  r.subject.request = r.id;
  r.opened = st.column_text(9);
  r.opened_by = st.column_text(10);
  if (const std::string closed = st.column_text(11); !closed.empty()) {
    auto d = parse_date(closed, "closed");
    if (!d) {
      return bad("unreadable closing date");
    }
    r.closed = *d;
  }
  r.outcome = st.column_text(12);
  r.purged = st.column_text(13);
  return r;
}

} // namespace

// ---- dates ---------------------------------------------------------------------------------

core::Result<Date> parse_date(std::string_view text, std::string_view what) {
  if (!core::is_calendar_date(text)) {
    return core::fail(core::ErrorCode::usage,
                      fmt::format("{} '{}' is not a calendar date YYYY-MM-DD", what, text));
  }
  auto num = [&](std::size_t at, std::size_t len) {
    int n = 0;
    std::from_chars(text.data() + at, text.data() + at + len, n);
    return n;
  };
  return Date{num(0, 4), static_cast<unsigned>(num(5, 2)), static_cast<unsigned>(num(8, 2))};
}

std::string to_string(Date date) { return fmt::format("{:04}-{:02}-{:02}", date.year, date.month, date.day); }

std::int64_t day_number(Date date) { return core::days_from_civil(date.year, date.month, date.day); }

Date from_day_number(std::int64_t days) {
  // Inverse of days_from_civil (H. Hinnant's civil_from_days).
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const auto day = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  const auto month = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return Date{static_cast<int>(year), month, day};
}

Date date_of(std::int64_t seconds) {
  return from_day_number(seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400);
}

Date today_utc() { return date_of(static_cast<std::int64_t>(std::time(nullptr))); }

Date add_months(Date date, int months) {
  const int index = date.year * 12 + static_cast<int>(date.month) - 1 + months;
  Date out;
  out.year = index / 12;
  out.month = static_cast<unsigned>(index % 12) + 1;
  out.day = std::min(date.day, days_in_month(out.year, out.month));
  return out;
}

// ---- vocabulary ----------------------------------------------------------------------------

namespace {
constexpr std::array<std::pair<RequestType, std::string_view>, 5> k_types{{
    {RequestType::access, "access"},
    {RequestType::erasure, "erasure"},
    {RequestType::rectification, "rectification"},
    {RequestType::restriction, "restriction"},
    {RequestType::objection, "objection"},
}};
constexpr std::array<std::pair<Status, std::string_view>, 6> k_statuses{{
    {Status::open, "open"},
    {Status::waiting_for_identity, "waiting-for-identity"},
    {Status::in_progress, "in-progress"},
    {Status::answered, "answered"},
    {Status::refused, "refused"},
    {Status::closed, "closed"},
}};
} // namespace

std::string_view to_string(RequestType type) {
  for (const auto &[t, name] : k_types) {
    if (t == type) {
      return name;
    }
  }
  return "?";
}

std::optional<RequestType> request_type_from_string(std::string_view name) {
  for (const auto &[t, n] : k_types) {
    if (n == name) {
      return t;
    }
  }
  return std::nullopt;
}

std::string_view to_string(Status status) {
  for (const auto &[s, name] : k_statuses) {
    if (s == status) {
      return name;
    }
  }
  return "?";
}

std::optional<Status> status_from_string(std::string_view name) {
  for (const auto &[s, n] : k_statuses) {
    if (n == name) {
      return s;
    }
  }
  return std::nullopt;
}

bool Request::deadline_running() const {
  return status == Status::open || status == Status::waiting_for_identity || status == Status::in_progress;
}

bool is_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  return alnum(id.front()) &&
         std::ranges::all_of(id, [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

std::string register_path(const core::Config &config) {
  return (std::filesystem::path(config.state_dir) / "requests.sqlite3").string();
}

// ---- the register --------------------------------------------------------------------------

struct Register::Impl {
  core::Config config;
  core::sqlite::Db db;

  [[nodiscard]] core::Status audit(std::string_view action, std::string_view operator_name, std::string_view id,
                                   const json &details) const {
    MAILDSAR_TRY_ASSIGN(core::AuditLog log, core::AuditLog::open(config.state_dir));
    MAILDSAR_TRY(log.append(action, operator_name, id, details));
    return {};
  }

  [[nodiscard]] core::Result<std::vector<Request>> select(std::string_view where, std::string_view bind) const {
    MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st,
                        db.prepare(fmt::format("SELECT {} FROM requests {} ORDER BY received, id", k_columns, where)));
    if (!bind.empty()) {
      MAILDSAR_TRY(st.bind(1, bind));
    }
    std::vector<Request> out;
    for (;;) {
      MAILDSAR_TRY_ASSIGN(bool row, st.step());
      if (!row) {
        break;
      }
      MAILDSAR_TRY_ASSIGN(Request r, row_to_request(st, db.path()));
      out.push_back(std::move(r));
    }
    MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt notes,
                        db.prepare("SELECT time, operator, text FROM notes WHERE request = ?1 ORDER BY rowid"));
    for (Request &r : out) {
      MAILDSAR_TRY(notes.bind(1, r.id));
      for (;;) {
        MAILDSAR_TRY_ASSIGN(bool row, notes.step());
        if (!row) {
          break;
        }
        r.notes.push_back(Note{notes.column_text(0), notes.column_text(1), notes.column_text(2)});
      }
      notes.reset();
    }
    return out;
  }

  [[nodiscard]] core::Status insert_note(std::string_view id, std::string_view text,
                                         std::string_view operator_name) const {
    MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st,
                        db.prepare("INSERT INTO notes(request, time, operator, text) VALUES(?1, ?2, ?3, ?4)"));
    MAILDSAR_TRY(st.bind(1, id));
    MAILDSAR_TRY(st.bind(2, core::iso8601_now()));
    MAILDSAR_TRY(st.bind(3, operator_name));
    MAILDSAR_TRY(st.bind(4, text));
    return st.run();
  }
};

Register::Register(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Register::Register(Register &&) noexcept = default;
Register &Register::operator=(Register &&) noexcept = default;
Register::~Register() = default;

namespace {

/**
 * Marks the state directory as holding keyed hashes in the register (core/secret.hpp
 * k_keyed_requests_marker), so that a lost secret.key is never silently replaced by a new one:
 * with a new key the purged requests' hashes would no longer match their subjects. Written
 * durably before the first keyed hash is.
 */
core::Status mark_keyed(const core::Config &config) {
  const std::string path =
      (std::filesystem::path(config.state_dir) / core::k_keyed_requests_marker).string();
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    return {};
  }
  return core::write_file_atomic(path, "", 0600);
}

} // namespace

core::Result<Register> Register::open(const core::Config &config) {
  MAILDSAR_TRY(core::ensure_private_dir(config.state_dir));
  MAILDSAR_TRY_ASSIGN(core::sqlite::Db db, core::sqlite::Db::open(register_path(config), core::sqlite::Writable::yes));
  MAILDSAR_TRY(db.migrate({k_schema_v1}));
  // A register purged by a version without the marker gets it now.
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt keyed,
                      db.prepare("SELECT 1 FROM requests WHERE keyed_subject != '' LIMIT 1"));
  MAILDSAR_TRY_ASSIGN(bool has_keyed, keyed.step());
  if (has_keyed) {
    MAILDSAR_TRY(mark_keyed(config));
  }
  return Register(std::make_unique<Impl>(Impl{config, std::move(db)}));
}

core::Result<std::optional<Register>> Register::open_existing(const core::Config &config) {
  std::error_code ec;
  if (!std::filesystem::exists(register_path(config), ec)) {
    return std::optional<Register>();
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Db db, core::sqlite::Db::open(register_path(config), core::sqlite::Writable::no));
  MAILDSAR_TRY_ASSIGN(std::int64_t version, db.user_version());
  if (version != 1) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("{}: register schema version {} is not 1 (made by another maildsar version?)",
                                  db.path(), version));
  }
  return std::optional<Register>(Register(std::make_unique<Impl>(Impl{config, std::move(db)})));
}

core::Result<Request> Register::open_request(const NewRequest &request, Date today,
                                             std::string_view operator_name) {
  if (request.subject.empty()) {
    return core::fail(core::ErrorCode::usage, "request open: no identifier of the subject",
                      "name the person with --email/--name/--phone/--ip or --subject FILE");
  }
  if (request.received > today) {
    return core::fail(core::ErrorCode::usage,
                      fmt::format("request open: received {} is after today ({})", to_string(request.received),
                                  to_string(today)));
  }
  // Every identifier must be one (the normalisation of the manifests: an address that is not one
  // would only fail at the first search, after the request was entered). The key is irrelevant:
  // only whether each identifier normalises counts.
  MAILDSAR_TRY(erasure::keyed_subject(m_impl->config, request.subject, "validation only"));
  MAILDSAR_TRY_ASSIGN(core::sqlite::Transaction tx, core::sqlite::Transaction::begin(m_impl->db));
  std::string id = request.id;
  if (id.empty()) {
    // DSAR-<year>-<NNNN>: one more than the highest number of that year.
    const std::string prefix = fmt::format("DSAR-{:04}-", request.received.year);
    MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st, m_impl->db.prepare("SELECT id FROM requests WHERE substr(id, 1, ?2) = ?1"));
    MAILDSAR_TRY(st.bind(1, prefix));
    MAILDSAR_TRY(st.bind(2, static_cast<std::int64_t>(prefix.size())));
    std::int64_t highest = 0;
    for (;;) {
      MAILDSAR_TRY_ASSIGN(bool row, st.step());
      if (!row) {
        break;
      }
      const std::string existing = st.column_text(0);
      std::int64_t n = 0;
      const char *first = existing.data() + prefix.size();
      const char *last = existing.data() + existing.size();
      auto [ptr, ec] = std::from_chars(first, last, n);
      if (ec == std::errc() && ptr == last) {
        highest = std::max(highest, n);
      }
    }
    id = fmt::format("{}{:04}", prefix, highest + 1);
  } else if (!is_request_id(id)) {
    return core::fail(core::ErrorCode::usage, fmt::format("request id '{}' is not valid", id),
                      "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. DSAR-2026-0042)");
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt exists, m_impl->db.prepare("SELECT 1 FROM requests WHERE id = ?1"));
  MAILDSAR_TRY(exists.bind(1, id));
  MAILDSAR_TRY_ASSIGN(bool taken, exists.step());
  if (taken) {
    return core::fail(core::ErrorCode::cant_create, fmt::format("request {} exists already", id),
                      fmt::format("`maildsar request show {}`; choose another id or omit it to get one", id));
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st,
                      m_impl->db.prepare("INSERT INTO requests(id, type, status, received, subject, opened, opened_by) "
                                         "VALUES(?1, ?2, 'open', ?3, ?4, ?5, ?6)"));
  MAILDSAR_TRY(st.bind(1, id));
  MAILDSAR_TRY(st.bind(2, to_string(request.type)));
  MAILDSAR_TRY(st.bind(3, to_string(request.received)));
  MAILDSAR_TRY(st.bind(4, subject_text(request.subject)));
  MAILDSAR_TRY(st.bind(5, core::iso8601_now()));
  MAILDSAR_TRY(st.bind(6, operator_name));
  MAILDSAR_TRY(st.run());
  if (!request.note.empty()) {
    MAILDSAR_TRY(m_impl->insert_note(id, request.note, operator_name));
  }
  MAILDSAR_TRY(tx.commit());
  MAILDSAR_TRY_ASSIGN(Request r, get(id));
  MAILDSAR_TRY(m_impl->audit("request-open", operator_name, id,
                             json{{"type", to_string(r.type)},
                                  {"received", to_string(r.received)},
                                  {"due", to_string(r.due())},
                                  {"identifiers", r.subject.emails.size() + r.subject.names.size() +
                                                      r.subject.phones.size() + r.subject.ips.size()}}));
  return r;
}

core::Result<std::optional<Request>> Register::find(std::string_view id) const {
  MAILDSAR_TRY_ASSIGN(std::vector<Request> found, m_impl->select("WHERE id = ?1", id));
  if (found.empty()) {
    return std::optional<Request>();
  }
  return std::optional<Request>(std::move(found.front()));
}

core::Result<Request> Register::get(std::string_view id) const {
  MAILDSAR_TRY_ASSIGN(std::optional<Request> r, find(id));
  if (!r) {
    return core::fail(core::ErrorCode::no_input, fmt::format("no request {} in the register {}", id, m_impl->db.path()),
                      "`maildsar request list --all` lists the requests");
  }
  return std::move(*r);
}

core::Result<std::vector<Request>> Register::list() const { return m_impl->select("", ""); }

namespace {
core::Status refuse_closed(const Request &r, std::string_view what) {
  if (r.status == Status::closed) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("request {} was closed on {}; it cannot be {}", r.id, to_string(*r.closed), what),
                      "open a new request if the subject asks again");
  }
  return {};
}
} // namespace

core::Result<Request> Register::extend(std::string_view id, int months, std::string_view reason, Date today,
                                       std::string_view operator_name) {
  MAILDSAR_TRY_ASSIGN(Request r, get(id));
  MAILDSAR_TRY(refuse_closed(r, "extended"));
  if (months < 1) {
    return core::fail(core::ErrorCode::usage, fmt::format("request extend: --months {} must be 1 or 2", months));
  }
  if (reason.empty()) {
    return core::fail(core::ErrorCode::usage, "request extend: --reason is required",
                      "Art. 12(3): the subject must be told the reasons for the delay");
  }
  if (r.extension_months + months > k_max_extension_months) {
    return core::fail(core::ErrorCode::usage,
                      fmt::format("request extend: {} more month(s) would make {} months in total; Art. 12(3) "
                                  "allows at most {} (one month plus two further months)",
                                  months, 1 + r.extension_months + months, 1 + k_max_extension_months),
                      fmt::format("request {} is extended by {} month(s) already (due {})", r.id,
                                  r.extension_months, to_string(r.due())));
  }
  if (today > add_months(r.received, 1)) {
    return core::fail(core::ErrorCode::usage,
                      fmt::format("request extend: too late; Art. 12(3) requires the subject to be told of an "
                                  "extension within one month of receipt (by {})",
                                  to_string(add_months(r.received, 1))));
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st,
                      m_impl->db.prepare("UPDATE requests SET extension_months = extension_months + ?2, "
                                         "extension_reason = CASE WHEN extension_reason = '' THEN ?3 "
                                         "ELSE extension_reason || '; ' || ?3 END WHERE id = ?1"));
  MAILDSAR_TRY(st.bind(1, id));
  MAILDSAR_TRY(st.bind(2, months));
  MAILDSAR_TRY(st.bind(3, reason));
  MAILDSAR_TRY(st.run());
  MAILDSAR_TRY_ASSIGN(r, get(id));
  MAILDSAR_TRY(m_impl->audit("request-extend", operator_name, id,
                             json{{"months", months}, {"extension_months", r.extension_months}, {"due", to_string(r.due())}}));
  return r;
}

core::Result<Request> Register::set_status(std::string_view id, Status status, std::string_view reason,
                                           std::string_view operator_name) {
  MAILDSAR_TRY_ASSIGN(Request r, get(id));
  MAILDSAR_TRY(refuse_closed(r, "changed"));
  if (status == Status::closed) {
    return core::fail(core::ErrorCode::usage, "request update: use `maildsar request close ID` to close a request");
  }
  if (status == Status::refused && reason.empty()) {
    return core::fail(core::ErrorCode::usage, "request update: a refusal needs --reason",
                      "Art. 12(4): the subject must be told the reasons for not taking action");
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st, m_impl->db.prepare("UPDATE requests SET status = ?2, reason = ?3 WHERE id = ?1"));
  MAILDSAR_TRY(st.bind(1, id));
  MAILDSAR_TRY(st.bind(2, to_string(status)));
  MAILDSAR_TRY(st.bind(3, status == Status::refused ? std::string(reason) : std::string()));
  MAILDSAR_TRY(st.run());
  MAILDSAR_TRY(m_impl->audit("request-status", operator_name, id,
                             json{{"from", to_string(r.status)}, {"status", to_string(status)}}));
  return get(id);
}

core::Status Register::add_note(std::string_view id, std::string_view text, std::string_view operator_name) {
  MAILDSAR_TRY_ASSIGN(Request r, get(id));
  MAILDSAR_TRY(refuse_closed(r, "annotated"));
  if (text.empty()) {
    return core::fail(core::ErrorCode::usage, "request: an empty note");
  }
  MAILDSAR_TRY(m_impl->insert_note(id, text, operator_name));
  // The note's text may name people: the audit record says only that one was added.
  return m_impl->audit("request-note", operator_name, id, json::object());
}

core::Result<Request> Register::add_identifiers(std::string_view id, const query::SubjectProfile &more,
                                                std::string_view operator_name) {
  MAILDSAR_TRY_ASSIGN(Request r, get(id));
  MAILDSAR_TRY(refuse_closed(r, "given more identifiers"));
  if (!r.purged.empty()) {
    return core::fail(core::ErrorCode::data, fmt::format("request {}: its identifiers were purged", id));
  }
  MAILDSAR_TRY(erasure::keyed_subject(m_impl->config, more, "validation only"));
  std::size_t added = 0;
  const auto merge = [&added](std::vector<std::string> &into, const std::vector<std::string> &from) {
    for (const std::string &v : from) {
      if (std::ranges::find(into, v) == into.end()) {
        into.push_back(v);
        ++added;
      }
    }
  };
  merge(r.subject.emails, more.emails);
  merge(r.subject.names, more.names);
  merge(r.subject.phones, more.phones);
  merge(r.subject.ips, more.ips);
  if (added == 0) {
    return r;
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st, m_impl->db.prepare("UPDATE requests SET subject = ?2 WHERE id = ?1"));
  MAILDSAR_TRY(st.bind(1, id));
  MAILDSAR_TRY(st.bind(2, subject_text(r.subject)));
  MAILDSAR_TRY(st.run());
  // Counts only: the identifiers themselves stay in the register (personal data, state dir).
  MAILDSAR_TRY(m_impl->audit("request-identifiers", operator_name, id,
                             json{{"added", added},
                                  {"identifiers", r.subject.emails.size() + r.subject.names.size() +
                                                      r.subject.phones.size() + r.subject.ips.size()}}));
  return get(id);
}

core::Result<Request> Register::close(std::string_view id, Date today, std::string_view operator_name) {
  MAILDSAR_TRY_ASSIGN(Request r, get(id));
  MAILDSAR_TRY(refuse_closed(r, "closed again"));
  if (today < r.received) {
    return core::fail(core::ErrorCode::usage, fmt::format("request close: {} is before the request was received ({})",
                                                          to_string(today), to_string(r.received)));
  }
  MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st,
                      m_impl->db.prepare("UPDATE requests SET status = 'closed', outcome = ?2, closed = ?3 WHERE id = ?1"));
  MAILDSAR_TRY(st.bind(1, id));
  MAILDSAR_TRY(st.bind(2, to_string(r.status)));
  MAILDSAR_TRY(st.bind(3, to_string(today)));
  MAILDSAR_TRY(st.run());
  MAILDSAR_TRY(m_impl->audit("request-close", operator_name, id,
                             json{{"outcome", to_string(r.status)},
                                  {"closed", to_string(today)},
                                  {"due", to_string(r.due())},
                                  {"late", r.deadline_running() && today > r.due()}}));
  return get(id);
}

core::Status Register::started(std::string_view id, std::string_view operator_name) {
  MAILDSAR_TRY_ASSIGN(Request r, get(id));
  if (r.status == Status::open) {
    MAILDSAR_TRY(set_status(id, Status::in_progress, "", operator_name));
  }
  return {};
}

core::Result<std::vector<Request>> Register::due_for_purge(std::int64_t now, std::int64_t retention_seconds) const {
  MAILDSAR_TRY_ASSIGN(std::vector<Request> all, list());
  std::vector<Request> out;
  const std::int64_t last_day = day_number(date_of(now - retention_seconds));
  for (Request &r : all) {
    if (r.closed && r.purged.empty() && day_number(*r.closed) <= last_day) {
      out.push_back(std::move(r));
    }
  }
  return out;
}

core::Status Register::purge(std::string_view id, std::string_view operator_name) {
  MAILDSAR_TRY_ASSIGN(Request r, get(id));
  if (r.status != Status::closed) {
    return core::fail(core::ErrorCode::usage, fmt::format("request {} is not closed; it cannot be purged", id));
  }
  if (!r.purged.empty()) {
    return {};
  }
  MAILDSAR_TRY_ASSIGN(std::string key, core::load_or_create_secret(m_impl->config.state_dir));
  MAILDSAR_TRY_ASSIGN(std::vector<erasure::KeyedIdentifier> keyed,
                      erasure::keyed_subject(m_impl->config, r.subject, key));
  MAILDSAR_TRY(mark_keyed(m_impl->config));
  json k = json::array();
  for (const erasure::KeyedIdentifier &e : keyed) {
    k.push_back({{"kind", e.kind}, {"hash", e.hash}});
  }
  {
    MAILDSAR_TRY_ASSIGN(core::sqlite::Transaction tx, core::sqlite::Transaction::begin(m_impl->db));
    MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt st,
                        m_impl->db.prepare("UPDATE requests SET subject = '', keyed_subject = ?2, purged = ?3 WHERE id = ?1"));
    MAILDSAR_TRY(st.bind(1, id));
    MAILDSAR_TRY(st.bind(2, k.dump()));
    MAILDSAR_TRY(st.bind(3, core::iso8601_now()));
    MAILDSAR_TRY(st.run());
    MAILDSAR_TRY_ASSIGN(core::sqlite::Stmt notes, m_impl->db.prepare("DELETE FROM notes WHERE request = ?1"));
    MAILDSAR_TRY(notes.bind(1, id));
    MAILDSAR_TRY(notes.run());
    MAILDSAR_TRY(tx.commit());
  }
  // secure_delete overwrote the freed cells in the pages; the WAL still holds the old pages
  // until it is checkpointed and truncated.
  MAILDSAR_TRY(m_impl->db.exec("PRAGMA wal_checkpoint(TRUNCATE);"));
  return m_impl->audit("request-purge", operator_name, id, json{{"identifiers", keyed.size()}});
}

} // namespace maildsar::casework
