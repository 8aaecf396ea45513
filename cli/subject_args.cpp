// SPDX-License-Identifier: GPL-3.0-or-later
#include "cli/subject_args.hpp"

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
  if (subject.empty()) {
    return core::fail(core::ErrorCode::usage, "no subject given",
                      "name the person with --subject FILE or --email/--name/--phone/--ip");
  }
  return subject;
}

} // namespace maildsar::cli
