// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * The request register (issue 16 item 1): the DPO's casework around a data-subject request —
 * its type, the subject, when it was received, its Art. 12(3) deadline and extension, its
 * status and notes — in `<state_dir>/requests.sqlite3` (0600, state directory 0700). Every
 * change is also an audit record (action `request-*`, request = the id, no identifiers in
 * clear), so the timeline of a request is read from the audit log. After closing plus the
 * configured retention, `purge` replaces the subject's identifiers by keyed hashes (the same
 * HMACs as manifests and certificates hold) and drops the notes.
 */
#include "core/config.hpp"
#include "core/result.hpp"
#include "erasure/erasure.hpp"
#include "query/query.hpp"

#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::casework {

/** A calendar date (proleptic Gregorian, UTC). */
struct Date {
  int year = 1970;
  unsigned month = 1;
  unsigned day = 1;
  friend auto operator<=>(const Date &, const Date &) = default;
};

/** "YYYY-MM-DD" that is a real calendar date; ErrorCode::usage naming `what` otherwise. */
[[nodiscard]] core::Result<Date> parse_date(std::string_view text, std::string_view what);
[[nodiscard]] std::string to_string(Date date);
/** The UTC date of `seconds` since the epoch. */
[[nodiscard]] Date date_of(std::int64_t seconds);
/** Today's UTC date. */
[[nodiscard]] Date today_utc();
/** Days since 1970-01-01. */
[[nodiscard]] std::int64_t day_number(Date date);
[[nodiscard]] Date from_day_number(std::int64_t days);

/**
 * `date` plus `months` calendar months, the rule of Regulation 1182/71 Art. 3(2)(c) that
 * Art. 12(3) periods follow: the same day number in the month `months` later, or that month's
 * last day when it has no such day (31 January + 1 month = 28 February, or 29 in a leap year).
 * Always counted from `date` itself: 31 January + 3 months is 30 April, not 28 April.
 */
[[nodiscard]] Date add_months(Date date, int months);

/** The type of a request (the article it invokes). */
enum class RequestType { access, erasure, rectification, restriction, objection };
[[nodiscard]] std::string_view to_string(RequestType type);
[[nodiscard]] std::optional<RequestType> request_type_from_string(std::string_view name);

/** Where a request stands. answered/refused: the reply went out (deadline met). */
enum class Status { open, waiting_for_identity, in_progress, answered, refused, closed };
[[nodiscard]] std::string_view to_string(Status status);
[[nodiscard]] std::optional<Status> status_from_string(std::string_view name);

/** Art. 12(3): one month, extendable "by two further months" (three in total). */
inline constexpr int k_max_extension_months = 2;

/** Request ids: 1-64 of [A-Za-z0-9._-], starting with a letter or digit. */
[[nodiscard]] bool is_request_id(std::string_view id);

struct Note {
  std::string time; // "2026-12-02T22:00:00Z"
  std::string operator_name;
  std::string text;
};

/** One request of the register (docs/schemata.md "maildsar.request"). */
struct Request {
  std::string id;
  RequestType type = RequestType::access;
  Status status = Status::open;
  std::string reason;  // refused: why (Art. 12(4) requires telling the subject)
  Date received;
  int extension_months = 0; // 0..k_max_extension_months
  std::string extension_reason;
  query::SubjectProfile subject; // in clear; empty once purged (request = id)
  std::vector<erasure::KeyedIdentifier> keyed_subject; // once purged
  std::string opened;    // when it was entered, ISO 8601 UTC
  std::string opened_by; // operator
  std::optional<Date> closed;
  std::string outcome; // the status it had when it was closed
  std::string purged;  // when its identifiers were purged ("" = not purged)
  std::vector<Note> notes;

  /** received + (1 + extension_months) calendar months. */
  [[nodiscard]] Date due() const { return add_months(received, 1 + extension_months); }
  /** The deadline runs (open, waiting-for-identity, in-progress). */
  [[nodiscard]] bool deadline_running() const;
  /** Days from `today` to the due date (negative: overdue by that many days). */
  [[nodiscard]] std::int64_t days_left(Date today) const { return day_number(due()) - day_number(today); }
  [[nodiscard]] bool overdue(Date today) const { return deadline_running() && days_left(today) < 0; }
};

/** What `request open` gives. */
struct NewRequest {
  std::string id; // "" = generated: DSAR-<received year>-<NNNN>
  RequestType type = RequestType::access;
  Date received;
  query::SubjectProfile subject;
  std::string note;
};

/** `<state_dir>/requests.sqlite3`. */
[[nodiscard]] std::string register_path(const core::Config &config);

/**
 * The register. Each change runs in one SQLite transaction and is followed by its audit record.
 */
class Register {
public:
  /**
   * Opens the register, creating it (and the state directory, 0700) on first use.
   * @errors cant_create/io/permission from the file system; data for a newer schema.
   */
  [[nodiscard]] static core::Result<Register> open(const core::Config &config);
  /** Opens it read-only; nullopt when it does not exist yet (no request was ever opened). */
  [[nodiscard]] static core::Result<std::optional<Register>> open_existing(const core::Config &config);

  Register(Register &&) noexcept;
  Register &operator=(Register &&) noexcept;
  ~Register();

  /**
   * Enters a new request (status open) and returns it.
   * @errors usage: a bad id, no identifier of the subject, received after `today`;
   *         cant_create: the id exists already.
   */
  [[nodiscard]] core::Result<Request> open_request(const NewRequest &request, Date today,
                                                   std::string_view operator_name);
  /** nullopt when unknown. */
  [[nodiscard]] core::Result<std::optional<Request>> find(std::string_view id) const;
  /** ErrorCode::no_input when unknown. */
  [[nodiscard]] core::Result<Request> get(std::string_view id) const;
  /** Every request, by received date then id. */
  [[nodiscard]] core::Result<std::vector<Request>> list() const;

  /**
   * Extends the deadline by `months` (Art. 12(3)).
   * @errors usage: months < 1, more than k_max_extension_months in total, no reason, or
   *         `today` after the original one-month deadline (the subject must be told of an
   *         extension within one month of receipt); data: the request is closed.
   */
  [[nodiscard]] core::Result<Request> extend(std::string_view id, int months, std::string_view reason,
                                             Date today, std::string_view operator_name);
  /**
   * Sets the status (not closed: see close). refused needs a reason.
   * @errors usage: closed, or refused without a reason; data: the request is closed.
   */
  [[nodiscard]] core::Result<Request> set_status(std::string_view id, Status status, std::string_view reason,
                                                 std::string_view operator_name);
  [[nodiscard]] core::Status add_note(std::string_view id, std::string_view text,
                                      std::string_view operator_name);
  /**
   * Adds identifiers to the request's subject (`discover --add`: ones a person confirmed).
   * Identifiers it holds already are skipped; each must normalise (ErrorCode::usage otherwise).
   * ErrorCode::data for a closed or purged request. The audit record holds only counts.
   */
  [[nodiscard]] core::Result<Request> add_identifiers(std::string_view id, const query::SubjectProfile &more,
                                                      std::string_view operator_name);
  /** Closes it on `today`; the outcome is the status it had. ErrorCode::data when closed already. */
  [[nodiscard]] core::Result<Request> close(std::string_view id, Date today, std::string_view operator_name);

  /**
   * A step of the casework (find, export, plan, verify) ran for the request: an open request
   * becomes in-progress (audited); other statuses stay.
   */
  [[nodiscard]] core::Status started(std::string_view id, std::string_view operator_name);

  /** Closed requests whose identifiers are due for purge: closed on or before now - retention. */
  [[nodiscard]] core::Result<std::vector<Request>> due_for_purge(std::int64_t now,
                                                                 std::int64_t retention_seconds) const;
  /**
   * Replaces the request's identifiers by keyed hashes (erasure::keyed_subject under the
   * installation secret) and deletes its notes; the file is checkpointed so no page of it keeps
   * them (secure_delete is on).
   */
  [[nodiscard]] core::Status purge(std::string_view id, std::string_view operator_name);

private:
  struct Impl;
  explicit Register(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

} // namespace maildsar::casework
