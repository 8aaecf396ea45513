// SPDX-License-Identifier: GPL-3.0-or-later
#include "cli/commands.hpp"

#include <array>

namespace maildsar::cli {

core::Result<core::Config> Context::load_config() const { return core::load_config(config_path); }

void add_global_options(po::options_description &desc) {
  desc.add_options()                                                                  //
      ("config,c", po::value<std::string>(), "config file (default $MAILDSAR_CONFIG or ./maildsar.json)")
      ("json", "machine-readable JSON output on stdout")                              //
      ("log-json", "diagnostics on stderr as JSON lines")                             //
      ("operator", po::value<std::string>(), "who runs this (audit log); default: login name")
      ("verbose,v", "more diagnostics")                                               //
      ("quiet,q", "fewer diagnostics")                                                //
      ("help,h", "show help");
}

void add_subject_options(po::options_description &desc) {
  desc.add_options()                                                                  //
      ("subject", po::value<std::string>(), "subject file (JSON: request, emails, names, phones, ips)")
      ("email", po::value<std::vector<std::string>>()->composing(), "an e-mail address of the subject (repeatable)")
      ("name", po::value<std::vector<std::string>>()->composing(), "a name of the subject (repeatable)")
      ("phone", po::value<std::vector<std::string>>()->composing(), "a phone number of the subject (repeatable)")
      ("ip", po::value<std::vector<std::string>>()->composing(), "an IP address of the subject (repeatable)")
      ("request", po::value<std::string>(), "request id (e.g. DSAR-2026-0042)");
}

std::span<const Command> commands() {
  static const std::array<Command, 2> k_commands{
      Command{"index", "scan the sources; index new and changed items, drop vanished ones",
              "index [--source NAME]... [--full]",
              "  maildsar -c /etc/maildsar.json index\n"
              "  maildsar index --source mailboxes --full --json",
              index_options, run_index},
      Command{"find", "list every item the estate holds for a data subject", "find SUBJECT",
              "  maildsar find --email alice.smith@example.com --name 'Alice Smith'\n"
              "  maildsar find --subject dsar-0042.json --json",
              find_options, run_find},
  };
  return k_commands;
}

} // namespace maildsar::cli
