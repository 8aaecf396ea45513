// SPDX-License-Identifier: GPL-3.0-or-later
#include "cli/subject_args.hpp"

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
  if (subject.empty()) {
    return core::fail(core::ErrorCode::usage, "no subject given",
                      "name the person with --subject FILE or --email/--name/--phone/--ip");
  }
  return subject;
}

} // namespace maildsar::cli
