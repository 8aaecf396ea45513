// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/audit.hpp"

#include "core/config.hpp"
#include "core/identity.hpp"

#include "core/sqlite.hpp"
#include "core/time.hpp"

#include "core/fs.hpp"
#include "core/hash.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <ctime>
#include <filesystem>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace maildsar::core {

namespace {

using nlohmann::json;

constexpr std::size_t k_hash_hex = 64;

/** Dump that never throws on bad UTF-8 (replaced by U+FFFD, the same on every re-dump). */
std::string dump(const json &j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool is_hex_hash(std::string_view s) {
  if (s.size() != k_hash_hex) {
    return false;
  }
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

std::string utc_now() { return iso8601_now(); }

Status lock_fd(int fd, int how, const std::string &path) {
  while (::flock(fd, how) != 0) {
    if (errno != EINTR) {
      return std::unexpected(errno_error(path, errno));
    }
  }
  return {};
}

/** Opens the log for reading under a shared lock; an absent log gives an empty Fd. */
Result<Fd> open_log_shared(const std::string &path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return Fd{};
    }
    if (err == ELOOP) {
      return fail(ErrorCode::permission, fmt::format("{}: is a symbolic link, not followed", path));
    }
    return std::unexpected(errno_error(path, err));
  }
  Fd guard(fd);
  MAILDSAR_TRY(lock_fd(fd, LOCK_SH, path));
  return guard;
}

Result<std::string> read_all(const Fd &fd, const std::string &path) {
  if (!fd) {
    return std::string();
  }
  MAILDSAR_TRY_ASSIGN(FileStat st, fstat_fd(fd.get(), path));
  if ((st.mode & S_IFMT) != S_IFREG) {
    return fail(ErrorCode::data, fmt::format("{}: not a regular file", path));
  }
  return read_range(fd.get(), 0, st.size, path);
}

/** A record the head names before it is appended (see AuditLog::append). */
struct Pending {
  std::uint64_t seq = 0;
  std::string hash;
};

struct Head {
  std::uint64_t seq = 0;
  std::string hash;
  /** Set while a record is being appended: its seq and hash. A crash between the head write and
      the end of the append leaves it; the log then ends at `seq` (the append did not happen, or
      only in part: a torn last line) or at this record (the head was not advanced yet). */
  std::optional<Pending> pending;
};

/** The head file: nullopt when absent; ErrorCode::data when unreadable. */
Result<std::optional<Head>> read_head(const std::string &path) {
  auto text = read_file(path, 1 << 16);
  if (!text) {
    if (text.error().code == ErrorCode::no_input) {
      return std::optional<Head>{};
    }
    return std::unexpected(text.error());
  }
  const json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("seq") || !j.contains("hash") ||
      !j["seq"].is_number_unsigned() || !j["hash"].is_string() ||
      !is_hex_hash(j["hash"].get_ref<const std::string &>())) {
    return fail(ErrorCode::data, fmt::format("{}: unreadable audit head", path));
  }
  Head head{j["seq"].get<std::uint64_t>(), j["hash"].get<std::string>(), std::nullopt};
  if (auto p = j.find("pending"); p != j.end()) {
    if (!p->is_object() || !p->contains("seq") || !p->contains("hash") ||
        !(*p)["seq"].is_number_unsigned() || !(*p)["hash"].is_string() ||
        !is_hex_hash((*p)["hash"].get_ref<const std::string &>()) ||
        (*p)["seq"].get<std::uint64_t>() != head.seq + 1) {
      return fail(ErrorCode::data, fmt::format("{}: unreadable audit head", path));
    }
    head.pending = Pending{(*p)["seq"].get<std::uint64_t>(), (*p)["hash"].get<std::string>()};
  }
  return std::optional<Head>(std::move(head));
}

/** The head: the log ends at seq/hash; `pending`, when given, is being appended. */
Status write_head(const std::string &path, std::uint64_t seq, const std::string &hash,
                  const AuditRecord *pending = nullptr) {
  json j{{"seq", seq}, {"hash", hash}};
  if (pending != nullptr) {
    j["pending"] = json{{"seq", pending->seq}, {"hash", pending->hash}};
  }
  return write_file_atomic(path, dump(j) + "\n", 0600);
}

/** The last line of `data` (which ends in '\n'), without the newline. */
std::string_view last_line(std::string_view data) {
  std::string_view body = data.substr(0, data.size() - 1);
  const std::size_t nl = body.rfind('\n');
  return nl == std::string_view::npos ? body : body.substr(nl + 1);
}

/** A problem with a record on its own (before chain checks); nullopt when the record is sound. */
std::optional<std::string> record_problem(std::string_view line, const AuditRecord &record) {
  if (record.hash != sha256_hex(record.canonical_json())) {
    return std::string("hash mismatch: the record was edited");
  }
  if (line != dump(record.to_json())) {
    return std::string("record bytes differ from their canonical form: the record was edited");
  }
  return std::nullopt;
}

} // namespace

json AuditRecord::to_json() const {
  json j{{"seq", seq},           {"time", time}, {"operator", operator_name},
         {"action", action},     {"request", request}, {"details", details},
         {"prev", prev},         {"hash", hash}};
  if (!os_user.empty()) {
    j["os_user"] = os_user; // only then: older records hash as they always did
  }
  return j;
}

std::string AuditRecord::canonical_json() const {
  json j = to_json();
  j.erase("hash");
  return dump(j);
}

Result<AuditRecord> parse_audit_record(std::string_view line) {
  const json j = json::parse(line, nullptr, false);
  if (j.is_discarded()) {
    return fail(ErrorCode::data, "unparseable record (not JSON)");
  }
  if (!j.is_object()) {
    return fail(ErrorCode::data, "malformed record: not a JSON object");
  }
  static constexpr std::array<std::string_view, 8> k_keys{
      "seq", "time", "operator", "action", "request", "details", "prev", "hash"};
  for (const auto &[key, value] : j.items()) {
    if (std::find(k_keys.begin(), k_keys.end(), key) == k_keys.end() && key != "os_user") {
      return fail(ErrorCode::data, fmt::format("malformed record: unexpected key '{}'", key));
    }
  }
  for (const std::string_view key : k_keys) {
    if (!j.contains(key)) {
      return fail(ErrorCode::data, fmt::format("malformed record: missing key '{}'", key));
    }
  }
  if (!j["seq"].is_number_unsigned()) {
    return fail(ErrorCode::data, "malformed record: 'seq' is not a positive integer");
  }
  for (const char *key : {"time", "operator", "action", "request", "prev", "hash"}) {
    if (!j[key].is_string()) {
      return fail(ErrorCode::data, fmt::format("malformed record: '{}' is not a string", key));
    }
  }
  AuditRecord r;
  r.seq = j["seq"].get<std::uint64_t>();
  r.time = j["time"].get<std::string>();
  r.operator_name = j["operator"].get<std::string>();
  if (auto os = j.find("os_user"); os != j.end()) {
    if (!os->is_string() || os->get<std::string>().empty()) {
      return fail(ErrorCode::data, "malformed record: 'os_user' is not a non-empty string");
    }
    r.os_user = os->get<std::string>();
  }
  r.action = j["action"].get<std::string>();
  r.request = j["request"].get<std::string>();
  r.details = j["details"];
  r.prev = j["prev"].get<std::string>();
  r.hash = j["hash"].get<std::string>();
  if (!is_hex_hash(r.prev) || !is_hex_hash(r.hash)) {
    return fail(ErrorCode::data, "malformed record: 'prev' or 'hash' is not a SHA-256 hex digest");
  }
  return r;
}

Result<AuditLog> AuditLog::open(const std::string &state_dir) {
  MAILDSAR_TRY(ensure_private_dir(state_dir));
  const std::filesystem::path dir(state_dir);
  return AuditLog((dir / k_audit_log_file).string(), (dir / k_audit_head_file).string());
}

Result<AuditRecord> AuditLog::append(std::string_view action, std::string_view operator_name,
                                     std::string_view request, const nlohmann::json &details) {
  const int fd =
      ::open(m_log_path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err == ELOOP) {
      return fail(ErrorCode::permission,
                  fmt::format("{}: is a symbolic link, not followed", m_log_path));
    }
    Error e = errno_error(m_log_path, err);
    if (e.code == ErrorCode::no_input) {
      e.code = ErrorCode::cant_create;
    }
    return std::unexpected(e);
  }
  Fd guard(fd);
  MAILDSAR_TRY(lock_fd(fd, LOCK_EX, m_log_path));
  MAILDSAR_TRY_ASSIGN(FileStat st, fstat_fd(fd, m_log_path));
  if ((st.mode & S_IFMT) != S_IFREG) {
    return fail(ErrorCode::data, fmt::format("{}: not a regular file", m_log_path));
  }
  if ((st.mode & 07777U) != 0600U && ::fchmod(fd, 0600) != 0) {
    return std::unexpected(errno_error(m_log_path, errno));
  }
  const std::string hint = "run 'maildsar audit verify' and inspect the audit log";
  MAILDSAR_TRY_ASSIGN(std::string data, read_range(fd, 0, st.size, m_log_path));
  MAILDSAR_TRY_ASSIGN(std::optional<Head> head, read_head(m_head_path));

  AuditRecord record;
  record.seq = 1;
  record.prev = std::string(k_audit_genesis);
  if (head && head->pending) {
    // An append that a crash interrupted (the kill of an `erase` it was recording). The head
    // named the record before it was written, so what the log holds is unambiguous: a torn last
    // line after the head's record is the interrupted write (dropped: it was never complete);
    // a last record with exactly the pending hash is the interrupted append, complete in the
    // log (the head is advanced to it). Anything else is checked as usual below.
    const std::size_t nl = data.rfind('\n');
    const std::size_t complete = nl == std::string::npos ? 0 : nl + 1; // whole lines
    const std::string_view whole(data.data(), complete);
    std::optional<AuditRecord> last;
    if (!whole.empty()) {
      const std::string_view line = last_line(whole);
      if (auto r = parse_audit_record(line); r && !record_problem(line, *r)) {
        last = std::move(*r);
      }
    }
    const bool at_head = last ? last->seq == head->seq && last->hash == head->hash
                              : head->seq == 0 && whole.empty();
    if (complete < data.size() && at_head) {
      if (::ftruncate(fd, static_cast<off_t>(complete)) != 0 || ::fsync(fd) != 0) {
        return std::unexpected(errno_error(m_log_path, errno));
      }
      data.resize(complete);
    } else if (complete == data.size() && last && last->seq == head->pending->seq &&
               last->hash == head->pending->hash) {
      head->seq = last->seq;
      head->hash = last->hash;
    }
  }
  if (data.empty()) {
    if (head && head->seq != 0) { // seq 0: the first append was interrupted before its line
      return fail(ErrorCode::data,
                  fmt::format("{}: the log is empty but {} records seq {}: records were removed",
                              m_log_path, m_head_path, head->seq),
                  hint);
    }
  } else {
    if (data.back() != '\n') {
      return fail(ErrorCode::data,
                  fmt::format("{}: the last record is truncated (no end of line)", m_log_path), hint);
    }
    const std::string_view line = last_line(data);
    auto last = parse_audit_record(line);
    if (!last) {
      return std::unexpected(last.error().with_context(m_log_path + ": last record: "));
    }
    if (auto problem = record_problem(line, *last)) {
      return fail(ErrorCode::data, fmt::format("{}: last record: {}", m_log_path, *problem), hint);
    }
    if (!head || head->seq != last->seq || head->hash != last->hash) {
      return fail(ErrorCode::data,
                  fmt::format("{}: the last record (seq {}) does not match {}", m_log_path,
                              last->seq, m_head_path),
                  hint);
    }
    record.seq = last->seq + 1;
    record.prev = last->hash;
  }
  record.time = utc_now();
  record.operator_name = std::string(operator_name);
  if (const OsUser os = current_os_user(); normalise_operator(os.name) != normalise_operator(operator_name)) {
    record.os_user = os.name;
  }
  record.action = std::string(action);
  record.request = std::string(request);
  record.details = details.is_null() ? json::object() : details;
  record.hash = sha256_hex(record.canonical_json());
  // Store exactly what a reader will parse back (bad UTF-8 is replaced by U+FFFD).
  if (auto reparsed = parse_audit_record(dump(record.to_json())); reparsed) {
    record = std::move(*reparsed);
    record.hash = sha256_hex(record.canonical_json());
  }
  const std::string line = dump(record.to_json()) + "\n";
  // The head names the record first: a crash anywhere from here on leaves a state the next
  // append (and `audit verify`) recognises as this append, interrupted — not as a forgery.
  MAILDSAR_TRY(write_head(m_head_path, record.seq - 1, record.prev, &record));
  if (auto written = write_all(fd, line, m_log_path); !written) {
    if (::ftruncate(fd, static_cast<off_t>(st.size)) != 0) {
      // The torn line stays; verify will report it.
    }
    return std::unexpected(written.error());
  }
  if (::fsync(fd) != 0) {
    return std::unexpected(errno_error(m_log_path, errno));
  }
  MAILDSAR_TRY(write_head(m_head_path, record.seq, record.hash));
  return record;
}

Result<std::vector<AuditRecord>> AuditLog::records() const {
  MAILDSAR_TRY_ASSIGN(Fd fd, open_log_shared(m_log_path));
  MAILDSAR_TRY_ASSIGN(std::string data, read_all(fd, m_log_path));
  std::vector<AuditRecord> out;
  std::size_t pos = 0;
  std::uint64_t line_no = 0;
  while (pos < data.size()) {
    ++line_no;
    std::size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) {
      nl = data.size();
    }
    auto record = parse_audit_record(std::string_view(data).substr(pos, nl - pos));
    if (!record) {
      return std::unexpected(
          record.error().with_context(fmt::format("{}:{}: ", m_log_path, line_no)));
    }
    out.push_back(std::move(*record));
    pos = nl + 1;
  }
  return out;
}

namespace {

/**
 * What in `state_dir` shows that audited actions happened ("" = nothing): rows in the erasure
 * database (`plan`, `approve`, `erase`, `retention --apply` each write their audit record with
 * them) or erasure certificates (`verify`). Read-only; the erasure module owns that schema.
 */
Result<std::string> audited_history(const std::string &state_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path certificates = fs::path(state_dir) / "certificates";
  if (fs::is_directory(certificates, ec) && !fs::is_empty(certificates, ec) && !ec) {
    return fmt::format("erasure certificates ({})", certificates.string());
  }
  const fs::path db_path = fs::path(state_dir) / "erasure.sqlite3";
  if (!fs::exists(db_path, ec)) {
    return std::string();
  }
  MAILDSAR_TRY_ASSIGN(sqlite::Db db, sqlite::Db::open(db_path.string(), sqlite::Writable::no));
  for (std::string_view table : {"manifests", "approvals", "journal"}) {
    MAILDSAR_TRY_ASSIGN(sqlite::Stmt exists,
                        db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1"));
    MAILDSAR_TRY(exists.bind(1, std::string(table)));
    MAILDSAR_TRY_ASSIGN(bool row, exists.step());
    if (!row || exists.column_uint64(0) == 0) {
      continue;
    }
    MAILDSAR_TRY_ASSIGN(sqlite::Stmt count, db.prepare(fmt::format("SELECT count(*) FROM {}", table)));
    MAILDSAR_TRY_ASSIGN(bool counted, count.step());
    if (counted && count.column_uint64(0) > 0) {
      return fmt::format("erasure history ({} rows of {} in {})", count.column_uint64(0), table,
                         db_path.string());
    }
  }
  return std::string();
}

} // namespace

Result<std::optional<AuditProblem>> AuditLog::verify() const {
  MAILDSAR_TRY_ASSIGN(Fd fd, open_log_shared(m_log_path));
  MAILDSAR_TRY_ASSIGN(std::string data, read_all(fd, m_log_path));
  MAILDSAR_TRY_ASSIGN(std::optional<Head> head, [&]() -> Result<std::optional<Head>> {
    auto h = read_head(m_head_path);
    if (!h && h.error().code == ErrorCode::data) {
      return std::optional<Head>(Head{0, std::string(), std::nullopt}); // reported below
    }
    return h;
  }());
  using Problem = std::optional<AuditProblem>;

  std::uint64_t line_no = 0;
  std::uint64_t last_seq = 0;
  std::string last_hash(k_audit_genesis);
  std::size_t pos = 0;
  while (pos < data.size()) {
    ++line_no;
    const std::uint64_t expected = last_seq + 1;
    const std::size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) {
      if (head && head->pending && head->seq == last_seq && head->hash == last_hash) {
        break; // the line the head names as pending, torn by a crash: the next append drops it
      }
      return Problem(AuditProblem{line_no, expected, "truncated record (no end of line)"});
    }
    const std::string_view line = std::string_view(data).substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) {
      return Problem(AuditProblem{line_no, expected, "empty line"});
    }
    auto record = parse_audit_record(line);
    if (!record) {
      return Problem(AuditProblem{line_no, expected, record.error().message});
    }
    if (auto problem = record_problem(line, *record)) {
      return Problem(AuditProblem{line_no, record->seq, *problem});
    }
    if (record->seq > expected) {
      return Problem(AuditProblem{
          line_no, record->seq,
          fmt::format("sequence gap: expected seq {}, found {} (records removed or reordered)", expected,
                      record->seq)});
    }
    if (record->seq < expected) {
      return Problem(AuditProblem{
          line_no, record->seq,
          fmt::format("out of order: expected seq {}, found {} (records reordered or repeated)",
                      expected, record->seq)});
    }
    if (record->prev != last_hash) {
      return Problem(AuditProblem{
          line_no, record->seq,
          line_no == 1 ? std::string("chain broken: the first record does not start the chain")
                       : fmt::format("chain broken: prev does not match the hash of seq {}",
                                     last_seq)});
    }
    last_seq = record->seq;
    last_hash = record->hash;
  }
  if (!head) {
    if (line_no == 0) {
      // No log, no head: intact only if nothing that is audited ever happened here.
      MAILDSAR_TRY_ASSIGN(std::string history,
                          audited_history(std::filesystem::path(m_log_path).parent_path().string()));
      if (!history.empty()) {
        return Problem(AuditProblem{
            1, 1,
            fmt::format("{} and {} are missing, but the state holds {}: the audit log was removed",
                        k_audit_log_file, k_audit_head_file, history)});
      }
      return Problem{}; // an empty, intact log
    }
    return Problem(AuditProblem{line_no, last_seq,
                                fmt::format("{} is missing (the log's end cannot be checked)",
                                            k_audit_head_file)});
  }
  if (head->hash.empty()) {
    return Problem(AuditProblem{line_no, last_seq,
                                fmt::format("{} is unreadable", k_audit_head_file)});
  }
  if (head->pending && head->pending->seq == last_seq && head->pending->hash == last_hash) {
    return Problem{}; // the append the head names, complete; the head was not advanced yet
  }
  if (head->seq != last_seq || head->hash != last_hash) {
    return Problem(AuditProblem{
        line_no + 1, last_seq + 1,
        head->seq > last_seq
            ? fmt::format("the log ends at seq {} but {} records seq {} (last records removed)",
                          last_seq, k_audit_head_file, head->seq)
            : fmt::format("the log ends at seq {} but {} records seq {} (log and head disagree)",
                          last_seq, k_audit_head_file, head->seq)});
  }
  return Problem{};
}

} // namespace maildsar::core
