// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar completion bash|zsh: shell completion written from the command table itself (issue 19
// item 2), so that it names exactly the commands and options this binary has; `completion values
// sources|requests` gives the completion the source names of the config and the request ids of
// the register.
#include "casework/register.hpp"
#include "cli/commands.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace maildsar::cli {

void completion_options(po::options_description &desc, po::positional_options_description &pos) {
  desc.add_options() //
      ("completion-words", po::value<std::vector<std::string>>()->composing(),
       "'bash' or 'zsh': print the completion script; 'values sources|requests': the names to complete");
  pos.add("completion-words", -1);
}

namespace {

/** The long options of an options description ("--json"), without the positional catch-alls. */
std::vector<std::string> long_options(const po::options_description &desc, const po::positional_options_description &pos) {
  std::set<std::string> positional;
  for (unsigned i = 0; i < 4; ++i) {
    if (const std::string &n = pos.name_for_position(i); !n.empty()) {
      positional.insert(n);
    }
  }
  std::vector<std::string> out;
  for (const auto &option : desc.options()) {
    const std::string name = option->long_name();
    if (!name.empty() && !positional.contains(name)) {
      out.push_back("--" + name);
    }
  }
  std::ranges::sort(out);
  return out;
}

/** Options whose value is a source name or a request id (completed from the config). */
constexpr std::string_view k_source_options = "--source";
constexpr std::string_view k_request_options = "--request";

std::string join(const std::vector<std::string> &words) {
  std::string out;
  for (const std::string &w : words) {
    out += (out.empty() ? "" : " ") + w;
  }
  return out;
}

std::string bash_script() {
  po::options_description global;
  add_global_options(global);
  const std::vector<std::string> globals = long_options(global, po::positional_options_description{});
  std::string cases;
  std::vector<std::string> names;
  for (const Command &cmd : commands()) {
    names.emplace_back(cmd.name);
    po::options_description own;
    po::positional_options_description pos;
    cmd.options(own, pos);
    cases += fmt::format("    {}) opts=\"{}\" ;;\n", cmd.name, join(long_options(own, pos)));
  }
  return fmt::format(R"SH(# bash completion for maildsar (written by `maildsar completion bash`)
_maildsar_config() {{
  local i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${{COMP_WORDS[i]}}" in
      -c|--config) printf '%s' "${{COMP_WORDS[i+1]}}"; return ;;
    esac
  done
}}
_maildsar() {{
  local cur prev cmd opts i cfg
  cur="${{COMP_WORDS[COMP_CWORD]}}"
  prev="${{COMP_WORDS[COMP_CWORD-1]}}"
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${{COMP_WORDS[i]}}" in
      -c|--config|--operator|--progress) ((i++)) ;;
      -*) ;;
      *) cmd="${{COMP_WORDS[i]}}"; break ;;
    esac
  done
  cfg=$(_maildsar_config)
  case "$prev" in
    -c|--config|--out|--subject|--policy|--sign-key|--public-key) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --progress) COMPREPLY=($(compgen -W "auto json none" -- "$cur")); return ;;
    {source})
      COMPREPLY=($(compgen -W "$(maildsar ${{cfg:+-c "$cfg"}} completion values sources 2>/dev/null)" -- "$cur")); return ;;
    {request})
      COMPREPLY=($(compgen -W "$(maildsar ${{cfg:+-c "$cfg"}} completion values requests 2>/dev/null)" -- "$cur")); return ;;
  esac
  if [[ -z "$cmd" ]]; then
    COMPREPLY=($(compgen -W "{commands} {globals}" -- "$cur"))
    return
  fi
  case "$cmd" in
{cases}    *) opts="" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts {globals}" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}}
complete -F _maildsar maildsar
)SH",
                     fmt::arg("source", k_source_options), fmt::arg("request", k_request_options),
                     fmt::arg("commands", join(names)), fmt::arg("globals", join(globals)),
                     fmt::arg("cases", cases));
}

std::string zsh_script() {
  po::options_description global;
  add_global_options(global);
  const std::vector<std::string> globals = long_options(global, po::positional_options_description{});
  std::string commands_list;
  std::string cases;
  for (const Command &cmd : commands()) {
    std::string summary(cmd.summary);
    std::ranges::replace(summary, '\'', ' ');
    std::ranges::replace(summary, ':', ' ');
    commands_list += fmt::format("    '{}:{}'\n", cmd.name, summary);
    po::options_description own;
    po::positional_options_description pos;
    cmd.options(own, pos);
    cases += fmt::format("    {}) opts=({}) ;;\n", cmd.name, join(long_options(own, pos)));
  }
  return fmt::format(R"SH(#compdef maildsar
# zsh completion for maildsar (written by `maildsar completion zsh`)
_maildsar() {{
  local -a commands opts
  local cmd cfg i
  commands=(
{commands}  )
  for ((i = 2; i < CURRENT; i++)); do
    case "${{words[i]}}" in
      -c|--config) cfg="${{words[i+1]}}"; ((i++)) ;;
      --operator|--progress) ((i++)) ;;
      -*) ;;
      *) [[ -z "$cmd" ]] && cmd="${{words[i]}}" ;;
    esac
  done
  case "${{words[CURRENT-1]}}" in
    -c|--config|--out|--subject|--policy|--sign-key|--public-key) _files; return ;;
    --progress) compadd -- auto json none; return ;;
    {source}) compadd -- $(maildsar ${{cfg:+-c "$cfg"}} completion values sources 2>/dev/null); return ;;
    {request}) compadd -- $(maildsar ${{cfg:+-c "$cfg"}} completion values requests 2>/dev/null); return ;;
  esac
  if [[ -z "$cmd" ]]; then
    _describe 'maildsar command' commands
    compadd -- {globals}
    return
  fi
  case "$cmd" in
{cases}    *) opts=() ;;
  esac
  if [[ "${{words[CURRENT]}}" == -* ]]; then
    compadd -- $opts {globals}
  else
    _files
  fi
}}
_maildsar "$@"
)SH",
                     fmt::arg("commands", commands_list), fmt::arg("source", k_source_options),
                     fmt::arg("request", k_request_options), fmt::arg("globals", join(globals)),
                     fmt::arg("cases", cases));
}

} // namespace

core::Result<int> run_completion(Context &ctx) {
  std::vector<std::string> words;
  if (ctx.vm.count("completion-words") != 0) {
    words = ctx.vm["completion-words"].as<std::vector<std::string>>();
  }
  if (words == std::vector<std::string>{"bash"}) {
    std::fputs(bash_script().c_str(), stdout);
    return 0;
  }
  if (words == std::vector<std::string>{"zsh"}) {
    std::fputs(zsh_script().c_str(), stdout);
    return 0;
  }
  if (words.size() == 2 && words[0] == "values" && (words[1] == "sources" || words[1] == "requests")) {
    // Quiet on any failure: a completion must never print an error into the command line.
    auto config = ctx.load_config();
    if (!config) {
      return 0;
    }
    if (words[1] == "sources") {
      for (const core::SourceConfig &s : config->sources) {
        std::fputs((s.name + "\n").c_str(), stdout);
      }
      return 0;
    }
    std::error_code ec;
    if (!std::filesystem::exists(casework::register_path(*config), ec)) {
      return 0; // no register yet: none, and none created by a completion
    }
    auto reg = casework::Register::open(*config);
    if (!reg) {
      return 0;
    }
    auto requests = reg->list();
    for (const casework::Request &r : requests ? *requests : std::vector<casework::Request>{}) {
      std::fputs((r.id + "\n").c_str(), stdout);
    }
    return 0;
  }
  return core::fail(core::ErrorCode::usage, "completion: bash, zsh, or values sources|requests",
                    "source <(maildsar completion bash)");
}

} // namespace maildsar::cli
