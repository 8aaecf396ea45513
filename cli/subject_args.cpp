// SPDX-License-Identifier: GPL-3.0-or-later
#include "cli/subject_args.hpp"

#include "casework/register.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace maildsar::cli {

namespace {

void append(const boost::program_options::variables_map &vm, const char *key,
            std::vector<std::string> &to) {
  if (vm.count(key) != 0) {
    for (const auto &v : vm[key].as<std::vector<std::string>>()) {
      to.push_back(v);
    }
  }
}

} // namespace

core::Result<query::SubjectProfile>
subject_from_args(const boost::program_options::variables_map &vm) {
  query::SubjectProfile subject;
  if (vm.count("subject") != 0) {
    MAILDSAR_TRY_ASSIGN(subject, query::load_subject(vm["subject"].as<std::string>()));
  }
  append(vm, "email", subject.emails);
  append(vm, "name", subject.names);
  append(vm, "phone", subject.phones);
  append(vm, "ip", subject.ips);
  if (vm.count("request") != 0) {
    subject.request = vm["request"].as<std::string>();
  }
  for (const std::string &phone : subject.phones) {
    // Digits and the usual separators only: a phone number with letters is a mistake (the
    // number parser would read "CALL" as the keypad digits 2255 and search for that).
    const bool digit = std::ranges::any_of(phone, [](char c) { return c >= '0' && c <= '9'; });
    const bool only_phone_chars = std::ranges::all_of(phone, [](char c) {
      return (c >= '0' && c <= '9') || c == ' ' || c == '+' || c == '-' || c == '(' || c == ')' ||
             c == '.' || c == '/';
    });
    if (!digit || !only_phone_chars) {
      return core::fail(core::ErrorCode::usage, fmt::format("not a valid phone number: '{}'", phone),
                        "digits, spaces and + - ( ) . / only, e.g. +44 20 7946 0123");
    }
  }
  if (subject.empty() && vm.count("request") == 0) {
    return core::fail(core::ErrorCode::usage, "no subject given",
                      "name the person with --request ID (the register), --subject FILE or "
                      "--email/--name/--phone/--ip");
  }
  return subject;
}

core::Result<StepSubject> resolve_request(const core::Config &config, query::SubjectProfile given,
                                          std::string_view operator_name) {
  if (given.request.empty()) {
    return StepSubject{std::move(given), false};
  }
  MAILDSAR_TRY_ASSIGN(std::optional<casework::Register> reg, casework::Register::open_existing(config));
  std::optional<casework::Request> found;
  if (reg) {
    MAILDSAR_TRY_ASSIGN(found, reg->find(given.request));
  }
  if (!found) {
    if (given.empty()) {
      return core::fail(core::ErrorCode::no_input,
                        fmt::format("no request {} in the register {}", given.request, casework::register_path(config)),
                        "`maildsar request list --all` lists the requests; `maildsar request open` enters one");
    }
    return StepSubject{std::move(given), false}; // a free-text request id, as before the register
  }
  if (!given.empty()) {
    return core::fail(core::ErrorCode::usage,
                      fmt::format("request {} is in the register, which holds its subject; do not give "
                                  "--subject/--email/--name/--phone/--ip as well",
                                  found->id),
                      fmt::format("`maildsar request show {}` shows the identifiers", found->id));
  }
  if (!found->purged.empty()) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("request {} was closed on {} and its identifiers were purged on {}",
                                  found->id, casework::to_string(*found->closed), found->purged));
  }
  if (found->status == casework::Status::open) {
    reg.reset();
    MAILDSAR_TRY_ASSIGN(casework::Register writable, casework::Register::open(config));
    MAILDSAR_TRY(writable.started(found->id, operator_name));
  }
  return StepSubject{found->subject, true};
}

core::Status check_manifest_request(const core::Config &config, std::string_view id,
                                    std::string_view manifest_request, std::string_view operator_name) {
  query::SubjectProfile only_id;
  only_id.request = std::string(id);
  MAILDSAR_TRY(resolve_request(config, only_id, operator_name));
  if (manifest_request != id) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("the manifest belongs to request {}, not {}", manifest_request, id));
  }
  return {};
}

} // namespace maildsar::cli
