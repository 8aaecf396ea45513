// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar: answers GDPR data-subject requests across a mail estate.
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "connectors/connector.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "core/exit_codes.hpp"
#include "core/identity.hpp"
#include "core/log.hpp"
#include "indexer/indexer.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <algorithm>
#include <iostream>
#include <optional>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace maildsar::cli {

namespace {

constexpr std::size_t k_width = 80;

void print_main_help() {
  std::string text =
      "Usage: maildsar [-c FILE] [--json] [--operator NAME] COMMAND [OPTIONS]\n\n"
      "Answers GDPR data-subject requests across a mail estate: Maildir, mbox, PST,\n"
      "quarantine and delivery logs, from one identity-keyed index.\n\nCommands:\n";
  std::size_t width = 0;
  for (const auto &cmd : commands()) {
    width = std::max(width, cmd.name.size());
  }
  for (const auto &cmd : commands()) {
    text += fmt::format("  {:<{}}  {}\n", cmd.name, width, cmd.summary);
  }
  text += "\nGlobal options (before or after COMMAND):\n";
  po::options_description global("", k_width);
  add_global_options(global);
  std::ostringstream ss;
  ss << global;
  text += ss.str();
  text += "\nRun 'maildsar COMMAND --help' for a command's options.\n"
          "Exit codes: 0 ok, 1 problems found (see report), 64-78 fatal (sysexits).\n";
  std::fputs(text.c_str(), stdout);
}

void print_command_help(const Command &cmd) {
  po::options_description own(fmt::format("Options of {}", cmd.name), k_width);
  po::positional_options_description pos;
  cmd.options(own, pos);
  po::options_description global("Global options", k_width);
  add_global_options(global);
  std::ostringstream ss;
  ss << "Usage: maildsar " << cmd.usage << "\n\n" << cmd.summary << "\n\n" << own << "\n" << global
     << "\nExamples:\n" << cmd.examples << "\n";
  std::fputs(ss.str().c_str(), stdout);
}

/** Global options that take a value: their next token is not the command name. */
bool takes_value(std::string_view arg) {
  return arg == "-c" || arg == "--config" || arg == "--operator" || arg == "--progress";
}

int run(int argc, char **argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // Pass 1: find the command name, skipping global options and their values.
  const Command *cmd = nullptr;
  std::size_t cmd_index = 0;
  bool want_json = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string &a = args[i];
    if (a == "--json") {
      want_json = true;
    }
    if (cmd != nullptr) {
      continue;
    }
    if (takes_value(a)) {
      ++i;
      continue;
    }
    if (a == "--version") {
      std::fputs(fmt::format("maildsar {}\n{}\n{}\n", MAILDSAR_VERSION, connectors::library_versions(),
                             index::library_versions())
                     .c_str(),
                 stdout);
      return core::k_exit_ok;
    }
    if (!a.empty() && a.front() != '-') {
      for (const auto &c : commands()) {
        if (c.name == a) {
          cmd = &c;
          cmd_index = i;
        }
      }
      if (cmd == nullptr) {
        Output out(want_json ? OutputMode::json : OutputMode::human);
        out.error(core::Error{core::ErrorCode::usage, fmt::format("unknown command '{}'", a),
                              "run 'maildsar --help' for the list of commands"});
        return core::k_exit_usage;
      }
    }
  }
  if (cmd == nullptr) {
    bool help = false;
    for (const auto &a : args) {
      help = help || a == "--help" || a == "-h";
    }
    print_main_help();
    return help ? core::k_exit_ok : core::k_exit_usage;
  }
  args.erase(args.begin() + static_cast<std::ptrdiff_t>(cmd_index));

  // Pass 2: the command's options together with the global ones, anywhere on the line.
  po::options_description all(k_width);
  po::positional_options_description pos;
  add_global_options(all);
  po::options_description own;
  cmd->options(own, pos);
  all.add(own);
  Context ctx;
  Output out(want_json ? OutputMode::json : OutputMode::human);
  ctx.out = &out;
  ctx.mode = out.mode();
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), ctx.vm);
    po::notify(ctx.vm);
  } catch (const po::error &e) {
    out.error(core::Error{core::ErrorCode::usage, fmt::format("{}: {}", cmd->name, e.what()),
                          fmt::format("run 'maildsar {} --help'", cmd->name)});
    return core::k_exit_usage;
  }
  if (ctx.vm.count("help") != 0) {
    print_command_help(*cmd);
    return core::k_exit_ok;
  }
  if (ctx.vm.count("config") != 0) {
    ctx.config_path = ctx.vm["config"].as<std::string>();
  } else if (const char *env = std::getenv("MAILDSAR_CONFIG"); env != nullptr && *env != '\0') {
    ctx.config_path = env;
  } else {
    ctx.config_path = "maildsar.json";
  }
  // Who runs this: the OS account (getuid, not $USER). `--operator` may only restate it unless
  // the account may act for others (config erasure.act_for_others, or root); one person, one
  // name: "ANN", " ann " and "ann" are the same operator (four-eyes check).
  {
    const core::OsUser os = core::current_os_user();
    std::optional<std::string> requested;
    if (ctx.vm.count("operator") != 0) {
      requested = ctx.vm["operator"].as<std::string>();
    }
    auto may = core::MayActForOthers::no;
    if (requested && !core::normalise_operator(*requested).empty() &&
        core::normalise_operator(*requested) != core::normalise_operator(os.name)) {
      if (core::effective_root()) {
        may = core::MayActForOthers::yes;
      } else if (auto config = core::load_config(ctx.config_path); !config) {
        out.error(config.error().with_context(
            fmt::format("--operator {}: acting for another person needs the config's "
                        "erasure.act_for_others: ",
                        core::normalise_operator(*requested))));
        return core::exit_code(config.error().code);
      } else if (core::named_to_act_for_others(os, config->erasure.act_for_others)) {
        may = core::MayActForOthers::yes;
      }
    }
    auto identity = core::resolve_operator(requested, os, may);
    if (!identity) {
      out.error(identity.error());
      return core::exit_code(identity.error().code);
    }
    ctx.operator_name = identity->name;
    ctx.os_user = identity->os;
    ctx.acting_for_other = identity->acting_for_other;
  }
  ctx.verbosity = ctx.vm.count("verbose") != 0 ? 1 : (ctx.vm.count("quiet") != 0 ? -1 : 0);
  {
    auto mode = progress_mode(ctx.vm.count("progress") != 0 ? ctx.vm["progress"].as<std::string>() : "auto",
                              ctx.verbosity, out.stderr_is_terminal());
    if (!mode) {
      out.error(mode.error());
      return core::exit_code(mode.error().code);
    }
    ctx.progress = *mode;
  }
  core::log::configure(ctx.verbosity > 0   ? core::log::Level::debug
                       : ctx.verbosity < 0 ? core::log::Level::error
                                           : core::log::Level::info,
                       ctx.vm.count("log-json") != 0 ? core::log::Format::json
                                                     : core::log::Format::human);

  auto result = cmd->run(ctx);
  std::fflush(stdout);
  if (!result) {
    out.error(result.error());
    return core::exit_code(result.error().code);
  }
  return *result;
}

} // namespace
} // namespace maildsar::cli

#ifdef MAILDSAR_JEMALLOC
// jemalloc's options (the program is linked with it: cli/CMakeLists.txt), read before the first
// allocation. retain:false unmaps the address space of freed extents instead of keeping it
// reserved: an operator's RLIMIT_AS (limits.* and docs/reliability.md; the test
// BoundedMemory.HostileEstateIndexesUnderHalfAGibibyteAndStaysFindable runs under 512 MiB) then
// bounds what is in use, as it did with glibc's malloc. MALLOC_CONF in the environment still
// overrides it.
extern "C" {
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): jemalloc's interface
__attribute__((visibility("default"))) const char *malloc_conf = "retain:false";
}
#endif

int main(int argc, char **argv) {
  ::umask(077); // everything we create is personal data
  try {
    maildsar::connectors::mime::MimeLibrary mime; // before any thread starts
    return maildsar::cli::run(argc, argv);
  } catch (...) {
    auto e = maildsar::core::error_from_current_exception("internal error: ");
    std::fprintf(stderr, "maildsar: error: %s\n", e.message.c_str());
    return maildsar::core::k_exit_software;
  }
}
