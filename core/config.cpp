// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/config.hpp"

#include "core/fs.hpp"
#include "core/json.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <dirent.h>
#include <filesystem>
#include <limits>
#include <set>
#include <sys/stat.h>

namespace maildsar::core {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr std::array<std::string_view, 9> k_source_types{"maildir",   "mbox",          "pst",
                                                         "quarantine", "maillog",       "emlfolder",
                                                         "postfix-queue", "exim-spool", "archive"};
constexpr std::array<std::string_view, 4> k_quarantine_formats{"amavis", "mailscanner", "plain",
                                                               "pmg"};
constexpr std::array<std::string_view, 7> k_maillog_formats{
    "postfix", "exim", "sendmail", "exchange", "dovecot", "syslog", "auto"};
constexpr std::array<std::string_view, 4> k_mbox_formats{"mboxo", "mboxrd", "mboxcl", "mboxcl2"};

template <std::size_t N> bool contains(const std::array<std::string_view, N> &list, std::string_view v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

template <std::size_t N> std::string join(const std::array<std::string_view, N> &list) {
  std::string out;
  for (auto v : list) {
    if (!out.empty()) {
      out += ", ";
    }
    out += v;
  }
  return out;
}

/** Where `"key"` appears as an object key in the text (first occurrence), as line:column. */
std::string position_of_key(std::string_view text, std::string_view key) {
  std::string needle = json(std::string(key)).dump();
  std::size_t pos = 0;
  while ((pos = text.find(needle, pos)) != std::string_view::npos) {
    std::size_t after = pos + needle.size();
    while (after < text.size() && (text[after] == ' ' || text[after] == '\t' || text[after] == '\r' ||
                                   text[after] == '\n')) {
      ++after;
    }
    if (after < text.size() && text[after] == ':') {
      return json_position(text, pos);
    }
    pos = after;
  }
  return "?";
}

class Parser {
public:
  Parser(std::string_view text, std::string path) : m_text(text), m_path(std::move(path)) {}

  Error error_at_key(std::string_view key, std::string message, std::string hint = {}) const {
    return Error{ErrorCode::config,
                 fmt::format("{}:{}: {}", m_path, position_of_key(m_text, key), message),
                 std::move(hint), std::nullopt};
  }
  Error error(std::string message, std::string hint = {}) const {
    return Error{ErrorCode::config, fmt::format("{}: {}", m_path, message), std::move(hint),
                 std::nullopt};
  }

  Status check_keys(const json &obj, std::string_view where,
                    std::initializer_list<std::string_view> allowed) const {
    if (!obj.is_object()) {
      return std::unexpected(error(fmt::format("{} must be an object", where)));
    }
    for (const auto &[key, value] : obj.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (auto a : allowed) {
          list += list.empty() ? "" : ", ";
          list += a;
        }
        return std::unexpected(error_at_key(key, fmt::format("unknown key '{}' in {}", key, where),
                                            fmt::format("allowed keys: {}", list)));
      }
    }
    return {};
  }

  Result<std::string> get_string(const json &obj, std::string_view key, std::string_view where,
                                 bool required) const {
    auto it = obj.find(std::string(key));
    if (it == obj.end()) {
      if (required) {
        return std::unexpected(error(fmt::format("{}: missing required key '{}'", where, key)));
      }
      return std::string();
    }
    if (!it->is_string()) {
      return std::unexpected(error_at_key(key, fmt::format("'{}' in {} must be a string", key, where)));
    }
    return it->get<std::string>();
  }

  std::string_view text() const { return m_text; }
  const std::string &path() const { return m_path; }

private:
  std::string_view m_text;
  std::string m_path;
};

std::string absolute_against(const std::string &base_dir, const std::string &p) {
  if (p.empty()) {
    return p;
  }
  fs::path path(p);
  if (path.is_relative()) {
    path = fs::path(base_dir) / path;
  }
  return path.lexically_normal().string();
}

bool has_glob_chars(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

/**
 * The directory every file of a source must stay inside: the part of its path before the first
 * wildcard. A path without wildcards names a directory for Maildir, quarantine and emlfolder sources (the
 * root is the path itself) and a file for the others (the root is its folder).
 */
std::string root_of(const std::string &pattern, std::string_view type) {
  auto first = pattern.find_first_of("*?[");
  if (first == std::string::npos) {
    std::error_code ec;
    if (type == "maildir" || type == "quarantine" || type == "emlfolder" || type == "postfix-queue" ||
        type == "exim-spool" || fs::is_directory(pattern, ec)) {
      return fs::path(pattern).lexically_normal().string();
    }
    return fs::path(pattern).parent_path().lexically_normal().string();
  }
  auto slash = pattern.rfind('/', first);
  if (slash == std::string::npos || slash == 0) {
    return "/";
  }
  return pattern.substr(0, slash);
}

bool is_safe_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && name.front() != '-' && name.front() != '.' &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
         });
}

/** "user@host": ASCII letters, digits, '.', '_', '-' on both sides; neither side starts with '-'
    (ssh would take it for an option) and nothing a remote shell would interpret. */
bool is_ssh_destination(std::string_view d) {
  const std::size_t at = d.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == d.size() || d.size() > 255 ||
      d.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  const std::string_view user = d.substr(0, at);
  const std::string_view host = d.substr(at + 1);
  auto ok = [](std::string_view part) {
    return part.front() != '-' && std::all_of(part.begin(), part.end(), [](char c) {
             return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
           });
  };
  return ok(user) && ok(host);
}

/** ssh joins the remote command into one string for the remote shell: the config path must be
    absolute and hold only characters no shell interprets. */
bool is_plain_absolute_path(std::string_view p) {
  return p.size() > 1 && p.size() <= 4096 && p.front() == '/' && p.find("..") == std::string_view::npos &&
         std::all_of(p.begin(), p.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '/' || c == '-' || c == '_' ||
                  c == '.' || c == '+';
         });
}

Result<HostConfig> parse_host(const Parser &p, const json &obj, std::size_t index) {
  std::string where = fmt::format("hosts[{}]", index);
  MAILDSAR_TRY(p.check_keys(obj, where, {"name", "transport", "ssh", "config", "command", "timeout"}));
  HostConfig h;
  MAILDSAR_TRY_ASSIGN(h.name, p.get_string(obj, "name", where, true));
  if (!is_safe_name(h.name)) {
    return std::unexpected(p.error_at_key(
        "name", fmt::format("{}: host name '{}' must be letters, digits, '-', '_' or '.' (at most 64, "
                            "not starting with '-' or '.')",
                            where, h.name)));
  }
  where = fmt::format("host '{}'", h.name);
  MAILDSAR_TRY_ASSIGN(h.transport, p.get_string(obj, "transport", where, true));
  MAILDSAR_TRY_ASSIGN(h.ssh, p.get_string(obj, "ssh", where, false));
  MAILDSAR_TRY_ASSIGN(h.remote_config, p.get_string(obj, "config", where, false));
  MAILDSAR_TRY_ASSIGN(std::string timeout, p.get_string(obj, "timeout", where, false));
  if (!timeout.empty()) {
    auto seconds = parse_duration(timeout);
    if (!seconds || *seconds <= 0) {
      return std::unexpected(p.error_at_key(
          "timeout", fmt::format("{}: timeout '{}' must be a positive duration such as 60s or 5m", where, timeout)));
    }
    h.timeout_seconds = *seconds;
  }
  if (h.transport == "ssh") {
    if (obj.contains("command")) {
      return std::unexpected(p.error_at_key("command", fmt::format("{}: 'command' belongs to the program transport", where)));
    }
    if (!is_ssh_destination(h.ssh)) {
      return std::unexpected(p.error_at_key(
          h.ssh.empty() && !obj.contains("ssh") ? "transport" : "ssh",
          fmt::format("{}: 'ssh' must be user@host (letters, digits, '.', '_', '-'), not '{}'", where, h.ssh),
          "e.g. \"ssh\": \"maildsar@mx1.example.com\"; options belong in ~/.ssh/config"));
    }
    if (obj.contains("config") && !is_plain_absolute_path(h.remote_config)) {
      return std::unexpected(p.error_at_key(
          "config", fmt::format("{}: 'config' must be an absolute path of letters, digits and / . _ - +, not '{}'",
                                where, h.remote_config)));
    }
  } else if (h.transport == "program") {
    if (obj.contains("ssh") || obj.contains("config")) {
      return std::unexpected(p.error_at_key(obj.contains("ssh") ? "ssh" : "config",
                                            fmt::format("{}: 'ssh' and 'config' belong to the ssh transport", where)));
    }
    auto it = obj.find("command");
    if (it == obj.end() || !it->is_array() || it->empty() ||
        !std::all_of(it->begin(), it->end(), [](const json &v) { return v.is_string(); })) {
      return std::unexpected(p.error_at_key(it == obj.end() ? "transport" : "command",
                                            fmt::format("{}: 'command' must be a non-empty array of strings (argv)", where),
                                            "e.g. [\"/usr/bin/maildsar\", \"-c\", \"/etc/maildsar/mx1.json\", \"agent\"]"));
    }
    for (const json &v : *it) {
      h.command.push_back(v.get<std::string>());
    }
    if (h.command.front().empty() || h.command.front().front() != '/') {
      return std::unexpected(p.error_at_key(
          "command", fmt::format("{}: command[0] '{}' must be an absolute path (no $PATH search)", where,
                                 h.command.front())));
    }
  } else {
    return std::unexpected(p.error_at_key(
        "transport", fmt::format("{}: unknown transport '{}' (allowed: ssh, program)", where, h.transport)));
  }
  return h;
}

Result<SourceConfig> parse_source(const Parser &p, const json &obj, std::size_t index,
                                  const std::string &base_dir) {
  std::string where = fmt::format("sources[{}]", index);
  MAILDSAR_TRY(p.check_keys(obj, where, {"name", "type", "path", "owner", "format", "root", "allow_remove", "command", "rewrite", "description"}));
  SourceConfig s;
  MAILDSAR_TRY_ASSIGN(s.name, p.get_string(obj, "name", where, true));
  MAILDSAR_TRY_ASSIGN(s.type, p.get_string(obj, "type", where, true));
  MAILDSAR_TRY_ASSIGN(std::string path, p.get_string(obj, "path", where, true));
  MAILDSAR_TRY_ASSIGN(s.owner, p.get_string(obj, "owner", where, false));
  MAILDSAR_TRY_ASSIGN(s.format, p.get_string(obj, "format", where, false));
  MAILDSAR_TRY_ASSIGN(std::string root, p.get_string(obj, "root", where, false));
  MAILDSAR_TRY_ASSIGN(s.command, p.get_string(obj, "command", where, false));
  MAILDSAR_TRY_ASSIGN(s.description, p.get_string(obj, "description", where, false));
  if (auto it = obj.find("allow_remove"); it != obj.end()) {
    if (!it->is_boolean()) {
      return std::unexpected(p.error_at_key("allow_remove", fmt::format("'allow_remove' in {} must be true or false", where)));
    }
    s.allow_remove = it->get<bool>();
  }
  if (auto it = obj.find("rewrite"); it != obj.end()) {
    if (!it->is_boolean()) {
      return std::unexpected(p.error_at_key("rewrite", fmt::format("'rewrite' in {} must be true or false", where)));
    }
    if (s.type != "archive") {
      return std::unexpected(p.error_at_key("rewrite", fmt::format("{}: rewrite applies to archive sources", where)));
    }
    s.rewrite = it->get<bool>();
  }

  bool name_ok = !s.name.empty() && std::all_of(s.name.begin(), s.name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  });
  if (!name_ok) {
    return std::unexpected(p.error_at_key(
        "name", fmt::format("{}: source name '{}' must be letters, digits, '-', '_' or '.'", where, s.name)));
  }
  if (!contains(k_source_types, s.type)) {
    return std::unexpected(p.error_at_key(
        "type", fmt::format("source '{}': unknown type '{}'", s.name, s.type),
        fmt::format("types are {}", join(k_source_types))));
  }
  if (s.type == "quarantine") {
    if (s.format.empty()) {
      s.format = "plain";
    }
    if (!contains(k_quarantine_formats, s.format)) {
      return std::unexpected(p.error_at_key(
          "format", fmt::format("source '{}': unknown quarantine format '{}'", s.name, s.format),
          fmt::format("formats are {}", join(k_quarantine_formats))));
    }
  } else if (s.type == "maillog") {
    if (s.format.empty()) {
      s.format = "auto";
    }
    if (!contains(k_maillog_formats, s.format)) {
      return std::unexpected(p.error_at_key(
          "format", fmt::format("source '{}': unknown maillog format '{}'", s.name, s.format),
          fmt::format("formats are {}", join(k_maillog_formats))));
    }
  } else if (s.type == "mbox") {
    // "" = mboxrd; mboxcl/mboxcl2 make the splitter trust Content-Length (connectors/mbox.hpp)
    if (!s.format.empty() && !contains(k_mbox_formats, s.format)) {
      return std::unexpected(p.error_at_key(
          "format", fmt::format("source '{}': unknown mbox format '{}'", s.name, s.format),
          fmt::format("formats are {}", join(k_mbox_formats))));
    }
  } else if (!s.format.empty()) {
    return std::unexpected(
        p.error_at_key("format", fmt::format("source '{}': type {} takes no format", s.name, s.type)));
  }
  const bool mta_queue = s.type == "postfix-queue" || s.type == "exim-spool";
  if (!mta_queue && (obj.contains("allow_remove") || obj.contains("command"))) {
    return std::unexpected(p.error_at_key(obj.contains("allow_remove") ? "allow_remove" : "command",
                                          fmt::format("source '{}': allow_remove and command apply to MTA queues "
                                                      "(postfix-queue, exim-spool)",
                                                      s.name)));
  }
  if (mta_queue) {
    if (s.command.empty()) {
      s.command = s.type == "postfix-queue" ? "/usr/sbin/postsuper" : "/usr/sbin/exim";
    }
    if (s.command.front() != '/') {
      return std::unexpected(p.error_at_key(
          "command", fmt::format("source '{}': command '{}' must be an absolute path", s.name, s.command),
          s.type == "postfix-queue" ? "e.g. /usr/sbin/postsuper" : "e.g. /usr/sbin/exim (Debian: /usr/sbin/exim4)"));
    }
  }
  if (!s.owner.empty() && s.type != "maildir" && s.type != "mbox" && s.type != "pst") {
    return std::unexpected(p.error_at_key(
        "owner", fmt::format("source '{}': owner applies to mailboxes (maildir, mbox, pst)", s.name)));
  }
  if (!s.owner.empty()) {
    // {N} is the text the Nth '*' of the path matched: N must name one of them.
    const auto stars = static_cast<std::size_t>(std::count(path.begin(), path.end(), '*'));
    for (std::size_t i = s.owner.find('{'); i != std::string::npos; i = s.owner.find('{', i + 1)) {
      auto close = s.owner.find('}', i);
      if (close == std::string::npos) {
        break;
      }
      std::string_view digits(s.owner.data() + i + 1, close - i - 1);
      std::size_t n = 0;
      auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
      if (ec == std::errc() && ptr == digits.data() + digits.size() && (n < 1 || n > stars)) {
        return std::unexpected(p.error_at_key(
            "owner", fmt::format("source '{}': owner '{}' uses {{{}}} but the path has {} '*'", s.name,
                                 s.owner, n, stars),
            "{1} is the text the first '*' of the path matched, {2} the second's, ..."));
      }
    }
  }
  s.path = absolute_against(base_dir, path);
  s.root = root.empty() ? root_of(s.path, s.type) : absolute_against(base_dir, root);
  return s;
}

/** `p` made absolute with symlinks resolved as far as it exists ("/" ends every result). */
std::string resolved_dir(const std::string &p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(fs::path(p), ec);
  std::string out = (ec ? fs::path(p).lexically_normal() : r.lexically_normal()).string();
  if (out.empty() || out.back() != '/') {
    out += '/';
  }
  return out;
}

/** True when a == b or one of the two ('/'-terminated) directories contains the other. */
bool nested(const std::string &a, const std::string &b) { return a.starts_with(b) || b.starts_with(a); }

/**
 * Two sources must never cover the same file: the same file would be both deleted for one and
 * retained (held) for the other. The sources' path globs are expanded now and resolved
 * (symlinks followed); a match that equals or lies inside another source's match is refused,
 * and so are two identical patterns (whether or not they match anything yet).
 */
Status check_sources_disjoint(const Parser &p, const std::vector<SourceConfig> &sources) {
  for (std::size_t i = 0; i < sources.size(); ++i) {
    for (std::size_t j = i + 1; j < sources.size(); ++j) {
      if (sources[i].path == sources[j].path || glob_matches(sources[i].path, sources[j].path) ||
          glob_matches(sources[j].path, sources[i].path)) {
        return std::unexpected(p.error(
            fmt::format("sources '{}' and '{}' cover the same files ({} and {})", sources[i].name,
                        sources[j].name, sources[i].path, sources[j].path),
            "every file must belong to exactly one source: make the paths disjoint"));
      }
    }
  }
  struct Match {
    std::string path; // resolved, '/'-terminated
    std::size_t source;
    std::string shown;
  };
  std::vector<Match> all;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    auto matches = expand_glob(sources[i].path);
    if (!matches) {
      return std::unexpected(p.error(
          fmt::format("source '{}': {}", sources[i].name, matches.error().message)));
    }
    // mbox, pst and maillog sources read only the regular files their glob matches (their
    // connectors skip a matched directory), so a directory they match covers nothing.
    const bool files_only = sources[i].type == "mbox" || sources[i].type == "pst" || sources[i].type == "maillog";
    for (GlobMatch &m : *matches) {
      std::error_code ec;
      if (files_only && fs::is_directory(m.path, ec)) {
        continue;
      }
      all.push_back(Match{resolved_dir(m.path), i, std::move(m.path)});
    }
  }
  std::sort(all.begin(), all.end(), [](const Match &a, const Match &b) {
    return a.path != b.path ? a.path < b.path : a.source < b.source; // config order on a tie
  });
  // Sorted, a directory comes right before everything inside it: keep the chain of enclosing
  // matches and compare each match with it.
  std::vector<const Match *> enclosing;
  for (const Match &m : all) {
    while (!enclosing.empty() && !m.path.starts_with(enclosing.back()->path)) {
      enclosing.pop_back();
    }
    for (const Match *outer : enclosing) {
      if (outer->source != m.source) {
        return std::unexpected(p.error(
            fmt::format("sources '{}' and '{}' cover the same files: {} {} {}",
                        sources[outer->source].name, sources[m.source].name, outer->shown,
                        outer->path == m.path ? "is" : "contains", m.shown),
            "every file must belong to exactly one source: make the paths disjoint"));
      }
    }
    enclosing.push_back(&m);
  }
  return {};
}

/**
 * The state directory holds the index, the audit log and the keys: inside a store, a store's
 * writer or retention could change or delete them, and a store inside it would be made 0700 and
 * mixed with our files.
 */
Status check_state_outside_stores(const Parser &p, const Config &c) {
  const std::string state = resolved_dir(c.state_dir);
  for (const SourceConfig &s : c.sources) {
    if (s.root.empty()) {
      continue;
    }
    const std::string root = resolved_dir(s.root);
    if (nested(state, root)) {
      return std::unexpected(p.error_at_key(
          "state_dir",
          fmt::format("state_dir {} {} the root {} of source '{}'", c.state_dir,
                      state == root            ? "is"
                      : state.starts_with(root) ? "is inside"
                                                : "contains",
                      s.root, s.name),
          "the state directory (index, audit log, keys) must lie outside every store"));
    }
  }
  return {};
}

Result<RetentionRule> parse_retention(const Parser &p, const std::string &source, const json &value) {
  RetentionRule r;
  r.source = source;
  std::string age;
  if (value.is_string()) {
    age = value.get<std::string>();
  } else if (value.is_object()) {
    MAILDSAR_TRY(p.check_keys(value, fmt::format("retention.{}", source), {"max_age", "action"}));
    MAILDSAR_TRY_ASSIGN(age, p.get_string(value, "max_age", "retention." + source, true));
    MAILDSAR_TRY_ASSIGN(std::string action, p.get_string(value, "action", "retention." + source, false));
    if (!action.empty()) {
      if (action != "delete" && action != "anonymize") {
        return std::unexpected(p.error_at_key(
            "action", fmt::format("retention.{}: action must be delete or anonymize", source)));
      }
      r.action = action;
    }
  } else {
    return std::unexpected(p.error_at_key(
        source, fmt::format("retention.{} must be a duration like \"90d\" or an object", source)));
  }
  auto seconds = parse_duration(age);
  if (!seconds) {
    return std::unexpected(p.error_at_key(source, fmt::format("retention.{}: {}", source,
                                                              seconds.error().message)));
  }
  r.max_age_seconds = *seconds;
  return r;
}


/** A string, or an array of strings, as a list. */
Result<std::vector<std::string>> get_string_list(const Parser &p, const json &obj, std::string_view key) {
  std::vector<std::string> out;
  auto it = obj.find(std::string(key));
  if (it == obj.end()) {
    return out;
  }
  if (it->is_string()) {
    out.push_back(it->get<std::string>());
    return out;
  }
  if (it->is_array() && std::all_of(it->begin(), it->end(), [](const json &v) { return v.is_string(); })) {
    for (const auto &v : *it) {
      out.push_back(v.get<std::string>());
    }
    return out;
  }
  return std::unexpected(
      p.error_at_key(key, fmt::format("access.{} must be a string or an array of strings", key)));
}

template <class KnownSource>
Result<AccessInfo> parse_access(const Parser &p, const json &obj, const KnownSource &known_source) {
  MAILDSAR_TRY(p.check_keys(obj, "access",
                            {"controller", "contact", "purposes", "categories", "recipients",
                             "source_of_data", "retention", "supervisory_authority",
                             "internal_domains", "unmasked", "redact_others", "automated_decisions",
                             "transfers", "language"}));
  AccessInfo a;
  MAILDSAR_TRY_ASSIGN(a.controller, p.get_string(obj, "controller", "access", false));
  MAILDSAR_TRY_ASSIGN(a.contact, p.get_string(obj, "contact", "access", false));
  MAILDSAR_TRY_ASSIGN(a.source_of_data, p.get_string(obj, "source_of_data", "access", false));
  MAILDSAR_TRY_ASSIGN(a.supervisory_authority,
                      p.get_string(obj, "supervisory_authority", "access", false));
  MAILDSAR_TRY_ASSIGN(a.purposes, get_string_list(p, obj, "purposes"));
  MAILDSAR_TRY_ASSIGN(a.categories, get_string_list(p, obj, "categories"));
  MAILDSAR_TRY_ASSIGN(a.recipients, get_string_list(p, obj, "recipients"));
  MAILDSAR_TRY_ASSIGN(a.internal_domains, get_string_list(p, obj, "internal_domains"));
  MAILDSAR_TRY_ASSIGN(a.unmasked, get_string_list(p, obj, "unmasked"));
  MAILDSAR_TRY_ASSIGN(a.automated_decisions, p.get_string(obj, "automated_decisions", "access", false));
  MAILDSAR_TRY_ASSIGN(a.transfers, get_string_list(p, obj, "transfers"));
  MAILDSAR_TRY_ASSIGN(a.language, p.get_string(obj, "language", "access", false));
  if (a.language.empty()) {
    a.language = "en";
  } else if (std::ranges::find(k_report_languages, a.language) == k_report_languages.end()) {
    return std::unexpected(p.error_at_key("language",
                                          fmt::format("access.language '{}' is not a report language (allowed: {})",
                                                      a.language, fmt::join(k_report_languages, ", ")),
                                          "docs/cli.md, \"export\""));
  }
  if (auto it = obj.find("redact_others"); it != obj.end()) {
    if (!it->is_boolean()) {
      return std::unexpected(p.error_at_key("redact_others", "'redact_others' in access must be true or false"));
    }
    a.redact_others = it->get<bool>();
  }
  if (auto it = obj.find("retention"); it != obj.end()) {
    if (!it->is_object()) {
      return std::unexpected(p.error_at_key("retention", "access.retention must be an object"));
    }
    for (const auto &[source, value] : it->items()) {
      if (!known_source(source)) {
        return std::unexpected(
            p.error_at_key(source, fmt::format("access.retention names unknown source '{}'", source)));
      }
      if (!value.is_string()) {
        return std::unexpected(
            p.error_at_key(source, fmt::format("access.retention.{} must be a string", source)));
      }
      a.retention[source] = value.template get<std::string>();
    }
  }
  return a;
}

} // namespace

bool is_calendar_date(std::string_view d) {
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') {
    return false;
  }
  for (std::size_t i : {0U, 1U, 2U, 3U, 5U, 6U, 8U, 9U}) {
    if (std::isdigit(static_cast<unsigned char>(d[i])) == 0) {
      return false;
    }
  }
  auto num = [&](std::size_t at, std::size_t len) {
    int n = 0;
    for (std::size_t i = at; i < at + len; ++i) {
      n = n * 10 + (d[i] - '0');
    }
    return n;
  };
  const int year = num(0, 4);
  const int month = num(5, 2);
  const int day = num(8, 2);
  if (year < 1 || month < 1 || month > 12 || day < 1) {
    return false;
  }
  constexpr std::array<int, 12> k_days{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  const int last = month == 2 && leap ? 29 : k_days[static_cast<std::size_t>(month - 1)];
  return day <= last;
}

std::string normalise_operator(std::string_view name) {
  const auto space = [](char ch) { return std::isspace(static_cast<unsigned char>(ch)) != 0; };
  while (!name.empty() && space(name.front())) {
    name.remove_prefix(1);
  }
  while (!name.empty() && space(name.back())) {
    name.remove_suffix(1);
  }
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char ch) { return static_cast<char>(std::tolower(static_cast<unsigned char>(ch))); });
  return out;
}

Result<std::int64_t> parse_duration(std::string_view text) {
  if (text.empty()) {
    return fail(ErrorCode::config, "empty duration");
  }
  std::int64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || n < 0 || ptr == text.data()) {
    return fail(ErrorCode::config, fmt::format("bad duration '{}'", text),
                "use a number and a unit: 45s, 30m, 12h, 90d, 2w, 1y");
  }
  std::string_view unit(ptr, static_cast<std::size_t>(text.data() + text.size() - ptr));
  std::int64_t mult = 0;
  if (unit == "s") {
    mult = 1;
  } else if (unit == "m") {
    mult = 60;
  } else if (unit == "h") {
    mult = 3600;
  } else if (unit == "d") {
    mult = 86400;
  } else if (unit == "w") {
    mult = 7 * 86400;
  } else if (unit == "y") {
    mult = 365 * 86400;
  } else {
    return fail(ErrorCode::config, fmt::format("bad duration '{}': unknown unit '{}'", text, unit),
                "use a number and a unit: 45s, 30m, 12h, 90d, 2w, 1y");
  }
  if (n > std::numeric_limits<std::int64_t>::max() / mult) { // n * mult would overflow
    return fail(ErrorCode::config, fmt::format("duration '{}' is too long", text),
                "use a number and a unit: 45s, 30m, 12h, 90d, 2w, 1y");
  }
  return n * mult;
}

Result<Config> parse_config(std::string_view text, const std::string &path) {
  Parser p(text, path);
  MAILDSAR_TRY_ASSIGN(json root, parse_json_strictly(text, path, ErrorCode::config, JsonComments::yes));
  MAILDSAR_TRY(p.check_keys(root, "the config",
                            {"state_dir", "sources", "identity", "retention", "holds",
                             "max_index_age", "max_removal_percent", "erasure", "access", "limits",
                             "requests", "hosts", "host_name"}));
  Config c;
  c.file = fs::absolute(path).lexically_normal().string();
  c.base_dir = fs::path(c.file).parent_path().string();
  MAILDSAR_TRY_ASSIGN(std::string state, p.get_string(root, "state_dir", "the config", false));
  c.state_dir = absolute_against(c.base_dir, state.empty() ? std::string("state") : state);

  if (auto it = root.find("sources"); it != root.end()) {
    if (!it->is_array()) {
      return std::unexpected(p.error_at_key("sources", "'sources' must be an array"));
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < it->size(); ++i) {
      MAILDSAR_TRY_ASSIGN(SourceConfig s, parse_source(p, (*it)[i], i, c.base_dir));
      if (!names.insert(s.name).second) {
        return std::unexpected(p.error(fmt::format("source name '{}' is used twice", s.name)));
      }
      c.sources.push_back(std::move(s));
    }
    MAILDSAR_TRY(check_sources_disjoint(p, c.sources));
  }
  MAILDSAR_TRY(check_state_outside_stores(p, c));
  MAILDSAR_TRY_ASSIGN(c.host_name, p.get_string(root, "host_name", "the config", false));
  if (!c.host_name.empty() && !is_safe_name(c.host_name)) {
    return std::unexpected(p.error_at_key(
        "host_name", fmt::format("host_name '{}' must be letters, digits, '-', '_' or '.'", c.host_name)));
  }
  if (auto it = root.find("hosts"); it != root.end()) {
    if (!it->is_array()) {
      return std::unexpected(p.error_at_key("hosts", "'hosts' must be an array"));
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < it->size(); ++i) {
      MAILDSAR_TRY_ASSIGN(HostConfig h, parse_host(p, (*it)[i], i));
      if (!names.insert(h.name).second) {
        return std::unexpected(p.error_at_key("hosts", fmt::format("hosts: host name '{}' is used twice", h.name)));
      }
      if (h.name == "local" && !c.sources.empty()) {
        // An estate manifest names this host's own sources' slice "local" (docs/deployment.md).
        return std::unexpected(p.error_at_key(
            "hosts", "hosts: the name 'local' is this host's own sources in a manifest; name the host otherwise"));
      }
      c.hosts.push_back(std::move(h));
    }
  }
  if (auto it = root.find("identity"); it != root.end()) {
    MAILDSAR_TRY(p.check_keys(*it, "identity", {"subaddress_separators", "phone_region"}));
    MAILDSAR_TRY_ASSIGN(std::string seps, p.get_string(*it, "subaddress_separators", "identity", false));
    MAILDSAR_TRY_ASSIGN(std::string region, p.get_string(*it, "phone_region", "identity", false));
    if (it->contains("subaddress_separators")) {
      c.identity.subaddress_separators = seps;
    }
    if (!region.empty()) {
      if (region.size() != 2 || !std::isalpha(static_cast<unsigned char>(region[0])) ||
          !std::isalpha(static_cast<unsigned char>(region[1]))) {
        return std::unexpected(p.error_at_key(
            "phone_region", fmt::format("phone_region '{}' must be a two-letter region code", region)));
      }
      std::transform(region.begin(), region.end(), region.begin(),
                     [](char ch) { return static_cast<char>(std::toupper(static_cast<unsigned char>(ch))); });
      c.identity.phone_region = region;
    }
  }
  auto known_source = [&](const std::string &name) {
    return std::any_of(c.sources.begin(), c.sources.end(), [&](const auto &s) { return s.name == name; });
  };
  if (auto it = root.find("retention"); it != root.end()) {
    if (!it->is_object()) {
      return std::unexpected(p.error_at_key("retention", "'retention' must be an object"));
    }
    for (const auto &[source, value] : it->items()) {
      if (!known_source(source)) {
        return std::unexpected(
            p.error_at_key(source, fmt::format("retention names unknown source '{}'", source)));
      }
      MAILDSAR_TRY_ASSIGN(RetentionRule r, parse_retention(p, source, value));
      c.retention.push_back(std::move(r));
    }
  }
  if (auto it = root.find("requests"); it != root.end()) {
    if (!it->is_object()) {
      return std::unexpected(p.error_at_key("requests", "'requests' must be an object"));
    }
    MAILDSAR_TRY(p.check_keys(*it, "requests", {"retention"}));
    MAILDSAR_TRY_ASSIGN(std::string period, p.get_string(*it, "retention", "requests", false));
    if (!period.empty()) {
      auto seconds = parse_duration(period);
      if (!seconds) {
        return std::unexpected(p.error_at_key("retention", fmt::format("requests.retention: {}", seconds.error().message)));
      }
      c.request_retention_seconds = *seconds;
    }
  }
  if (auto it = root.find("holds"); it != root.end()) {
    if (!it->is_array()) {
      return std::unexpected(p.error_at_key("holds", "'holds' must be an array"));
    }
    for (std::size_t i = 0; i < it->size(); ++i) {
      std::string where = fmt::format("holds[{}]", i);
      const json &h = (*it)[i];
      MAILDSAR_TRY(p.check_keys(h, where, {"source", "reason", "until"}));
      Hold hold;
      MAILDSAR_TRY_ASSIGN(hold.source, p.get_string(h, "source", where, true));
      MAILDSAR_TRY_ASSIGN(hold.reason, p.get_string(h, "reason", where, true));
      MAILDSAR_TRY_ASSIGN(hold.until, p.get_string(h, "until", where, false));
      if (!known_source(hold.source)) {
        return std::unexpected(p.error(fmt::format("{}: unknown source '{}'", where, hold.source)));
      }
      if (!hold.until.empty() && !is_calendar_date(hold.until)) {
        return std::unexpected(p.error(
            fmt::format("{}: until '{}' must be a calendar date YYYY-MM-DD", where, hold.until)));
      }
      c.holds.push_back(std::move(hold));
    }
  }
  if (auto it = root.find("erasure"); it != root.end()) {
    MAILDSAR_TRY(p.check_keys(*it, "erasure",
                              {"act_for_others", "approvals_required", "approver_keys", "message_policy",
                               "pst_convert", "require_signatures"}));
    if (auto mp = it->find("message_policy"); mp != it->end()) {
      // The keys (roles, "owner", "default") are checked by erasure/ when a plan uses them.
      if (!mp->is_object() || mp->empty()) {
        return std::unexpected(p.error_at_key(
            "message_policy", "erasure.message_policy must be an object such as {\"owner|from\": \"delete\", "
                              "\"default\": \"redact\"}"));
      }
      for (const auto &[key, value] : mp->items()) {
        if (!value.is_string() || (value.get<std::string>() != "delete" && value.get<std::string>() != "redact")) {
          return std::unexpected(p.error_at_key(
              "message_policy", fmt::format("erasure.message_policy: '{}' must be \"delete\" or \"redact\"", key)));
        }
        c.erasure.message_policy.emplace(key, value.get<std::string>());
      }
    }
    if (auto acting = it->find("act_for_others"); acting != it->end()) {
      if (!acting->is_array()) {
        return std::unexpected(p.error_at_key(
            "act_for_others", "erasure.act_for_others must be a list of OS user names, e.g. [\"svc-dsar\"]"));
      }
      for (const json &name : *acting) {
        if (!name.is_string() || name.get<std::string>().empty() ||
            name.get<std::string>().find_first_of(" \t\n/:") != std::string::npos) {
          return std::unexpected(p.error_at_key(
              "act_for_others", fmt::format("erasure.act_for_others: {} is not an OS user name", name.dump())));
        }
        if (std::ranges::find(c.erasure.act_for_others, name.get<std::string>()) != c.erasure.act_for_others.end()) {
          return std::unexpected(p.error_at_key(
              "act_for_others", fmt::format("erasure.act_for_others: {} is given twice", name.dump())));
        }
        c.erasure.act_for_others.push_back(name.get<std::string>());
      }
    }
    if (auto conv = it->find("pst_convert"); conv != it->end()) {
      if (!conv->is_object()) {
        return std::unexpected(p.error_at_key("pst_convert", "erasure.pst_convert must be an object"));
      }
      MAILDSAR_TRY(p.check_keys(*conv, "erasure.pst_convert", {"mbox_dir", "originals_dir"}));
      MAILDSAR_TRY_ASSIGN(std::string mbox_dir, p.get_string(*conv, "mbox_dir", "erasure.pst_convert", true));
      MAILDSAR_TRY_ASSIGN(std::string originals,
                          p.get_string(*conv, "originals_dir", "erasure.pst_convert", true));
      c.erasure.pst_mbox_dir = absolute_against(c.base_dir, mbox_dir);
      c.erasure.pst_originals_dir = absolute_against(c.base_dir, originals);
      for (const SourceConfig &s : c.sources) {
        const std::string &o = c.erasure.pst_originals_dir;
        if (o == s.root || o.starts_with(s.root + "/") || s.root.starts_with(o + "/")) {
          return std::unexpected(p.error_at_key(
              "originals_dir", fmt::format("erasure.pst_convert.originals_dir {} overlaps the root {} of source "
                                           "'{}'; the original PST files must leave the stores",
                                           o, s.root, s.name)));
        }
      }
    }
    if (auto keys = it->find("approver_keys"); keys != it->end()) {
      if (!keys->is_object()) {
        return std::unexpected(p.error_at_key("approver_keys", "erasure.approver_keys must be an object"));
      }
      for (const auto &[name, value] : keys->items()) {
        if (!value.is_string() || value.get<std::string>().empty()) {
          return std::unexpected(p.error_at_key(
              name, fmt::format("erasure.approver_keys.{} must be the path of a public key file", name)));
        }
        // Operators are named as `--operator` names them: trimmed and case-folded.
        const std::string op = normalise_operator(name);
        if (op.empty() || c.erasure.approver_keys.contains(op)) {
          return std::unexpected(p.error_at_key(
              name, fmt::format("erasure.approver_keys: '{}' is {}", name,
                                op.empty() ? "not an operator name"
                                           : "given twice (names ignore case and outer spaces)")));
        }
        c.erasure.approver_keys[op] = absolute_against(c.base_dir, value.get<std::string>());
      }
    }
    if (auto n = it->find("approvals_required"); n != it->end()) {
      if (!n->is_number_unsigned() || n->get<std::uint64_t>() < 1 || n->get<std::uint64_t>() > 10) {
        return std::unexpected(
            p.error_at_key("approvals_required", "erasure.approvals_required must be a number from 1 to 10"));
      }
      c.erasure.approvals_required = n->get<std::uint32_t>();
    }
    if (auto r = it->find("require_signatures"); r != it->end()) {
      if (!r->is_boolean()) {
        return std::unexpected(p.error_at_key("require_signatures", "erasure.require_signatures must be true or false"));
      }
      c.erasure.require_signatures = r->get<bool>();
      if (c.erasure.require_signatures && c.erasure.approver_keys.size() < c.erasure.approvals_required) {
        return std::unexpected(p.error_at_key(
            "require_signatures",
            fmt::format("erasure.require_signatures needs a public key for at least approvals_required ({}) "
                        "approvers in erasure.approver_keys ({} given)",
                        c.erasure.approvals_required, c.erasure.approver_keys.size()),
            "openssl genpkey -algorithm ed25519 -out NAME.pem; openssl pkey -in NAME.pem -pubout -out NAME.pub.pem"));
      }
    }
  }
  if (auto it = root.find("access"); it != root.end()) {
    MAILDSAR_TRY_ASSIGN(c.access, parse_access(p, *it, known_source));
  }
  if (auto n = root.find("max_removal_percent"); n != root.end()) {
    if (!n->is_number_unsigned() || n->get<std::uint64_t>() > 100) {
      return std::unexpected(p.error_at_key(
          "max_removal_percent", "max_removal_percent must be a whole number from 0 to 100",
          "the share of a source's files that may vanish in one `index` run; 100 = any share"));
    }
    c.max_removal_percent = n->get<std::uint32_t>();
  }
  if (auto it = root.find("limits"); it != root.end()) {
    // Worker limits (docs/reliability.md); whole numbers in a range where a worker can still run.
    MAILDSAR_TRY(p.check_keys(*it, "limits",
                              {"pst_cpu_seconds", "pst_memory_mib", "pst_timeout_seconds", "extract_attachments",
                               "extract_cpu_seconds", "extract_memory_mib", "extract_timeout_seconds",
                               "extract_max_text_mib", "extract_max_inflated_mib", "extract_max_depth",
                               "extract_max_pages", "extract_max_attachment_mib", "max_item_mib",
                               "max_header_kib", "max_mime_parts", "max_addresses_per_role",
                               "max_transaction_lines", "max_transaction_kib", "archive_max_member_mib",
                               "archive_max_total_gib", "archive_max_ratio", "archive_max_members",
                               "archive_timeout_seconds", "archive_max_pst_mib"}));
    struct Key {
      const char *name;
      std::uint64_t min;
      std::uint64_t max;
      std::uint64_t *value;
    };
    for (const Key &k : {Key{"pst_cpu_seconds", 1, 604800, &c.limits.pst_cpu_seconds},
                         Key{"pst_memory_mib", 64, 1048576, &c.limits.pst_memory_mib},
                         Key{"pst_timeout_seconds", 1, 604800, &c.limits.pst_timeout_seconds},
                         Key{"extract_attachments", 0, 1, &c.limits.extract_attachments},
                         Key{"extract_cpu_seconds", 1, 86400, &c.limits.extract_cpu_seconds},
                         Key{"extract_memory_mib", 64, 65536, &c.limits.extract_memory_mib},
                         Key{"extract_timeout_seconds", 1, 86400, &c.limits.extract_timeout_seconds},
                         Key{"extract_max_text_mib", 1, 16, &c.limits.extract_max_text_mib},
                         Key{"extract_max_inflated_mib", 1, 65536, &c.limits.extract_max_inflated_mib},
                         Key{"extract_max_depth", 0, 10, &c.limits.extract_max_depth},
                         Key{"extract_max_pages", 1, 1000000, &c.limits.extract_max_pages},
                         Key{"extract_max_attachment_mib", 1, 48, &c.limits.extract_max_attachment_mib},
                         // Item bounds (issue 13 item 12): wide enough for any real mail, small
                         // enough that one item cannot take the machine's memory.
                         Key{"max_item_mib", 1, 1024, &c.limits.max_item_mib},
                         Key{"max_header_kib", 16, 65536, &c.limits.max_header_kib},
                         Key{"max_mime_parts", 10, 100000, &c.limits.max_mime_parts},
                         Key{"max_addresses_per_role", 10, 100000, &c.limits.max_addresses_per_role},
                         Key{"max_transaction_lines", 100, 1000000, &c.limits.max_transaction_lines},
                         Key{"max_transaction_kib", 64, 262144, &c.limits.max_transaction_kib},
                         Key{"archive_max_member_mib", 1, 65536, &c.limits.archive_max_member_mib},
                         Key{"archive_max_total_gib", 1, 1048576, &c.limits.archive_max_total_gib},
                         Key{"archive_max_ratio", 10, 100000, &c.limits.archive_max_ratio},
                         Key{"archive_max_members", 1, 100000000, &c.limits.archive_max_members},
                         Key{"archive_timeout_seconds", 1, 604800, &c.limits.archive_timeout_seconds},
                         Key{"archive_max_pst_mib", 1, 1048576, &c.limits.archive_max_pst_mib}}) {
      auto v = it->find(k.name);
      if (v == it->end()) {
        continue;
      }
      if (!v->is_number_unsigned() || v->get<std::uint64_t>() < k.min || v->get<std::uint64_t>() > k.max) {
        return std::unexpected(
            p.error_at_key(k.name, fmt::format("limits.{} must be a whole number from {} to {}", k.name, k.min, k.max)));
      }
      *k.value = v->get<std::uint64_t>();
    }
    if (c.limits.max_header_kib > c.limits.max_item_mib * 1024) {
      return std::unexpected(p.error_at_key(
          it->contains("max_header_kib") ? "max_header_kib" : "max_item_mib",
          fmt::format("limits.max_header_kib ({} KiB) must not exceed limits.max_item_mib ({} MiB)",
                      c.limits.max_header_kib, c.limits.max_item_mib),
          "a header field is part of its item"));
    }
  }
  MAILDSAR_TRY_ASSIGN(std::string max_age, p.get_string(root, "max_index_age", "the config", false));
  if (!max_age.empty()) {
    auto seconds = parse_duration(max_age);
    if (!seconds) {
      return std::unexpected(p.error_at_key("max_index_age", seconds.error().message));
    }
    c.max_index_age_seconds = *seconds;
  }
  return c;
}

Status check_outside_stores(const Config &config, const std::string &path, std::string_view what) {
  const std::string resolved = resolved_dir(fs::absolute(path).lexically_normal().string());
  for (const SourceConfig &s : config.sources) {
    if (s.root.empty()) {
      continue;
    }
    const std::string root = resolved_dir(s.root);
    if (nested(resolved, root)) {
      return fail(ErrorCode::cant_create,
                  fmt::format("{} {} {} the root {} of source '{}'", what, path,
                              resolved == root            ? "is"
                              : resolved.starts_with(root) ? "is inside"
                                                           : "contains",
                              s.root, s.name),
                  "choose a directory outside every mail store");
    }
  }
  return {};
}

std::vector<std::string> HostConfig::argv() const {
  if (transport == "program") {
    return command;
  }
  std::vector<std::string> v{"ssh", "-o", "BatchMode=yes", "--", ssh, "maildsar"};
  if (!remote_config.empty()) {
    v.emplace_back("-c");
    v.push_back(remote_config);
  }
  v.emplace_back("agent");
  return v;
}

Result<Config> load_config(const std::string &path) {
  auto text = read_file(path, 16ULL << 20);
  if (!text) {
    Error e = text.error();
    e.message = "config " + e.message;
    if (e.code == ErrorCode::no_input) {
      e.hint = "give the config with -c FILE or $MAILDSAR_CONFIG (default ./maildsar.json)";
    }
    return std::unexpected(e);
  }
  return parse_config(*text, path);
}

std::string expand_owner(const std::string &owner_template, const std::vector<std::string> &captures) {
  std::string out;
  for (std::size_t i = 0; i < owner_template.size(); ++i) {
    if (owner_template[i] == '{') {
      auto close = owner_template.find('}', i);
      if (close != std::string::npos && close > i + 1) {
        std::string_view digits(owner_template.data() + i + 1, close - i - 1);
        std::size_t n = 0;
        auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
        if (ec == std::errc() && ptr == digits.data() + digits.size() && n >= 1) {
          if (n <= captures.size()) {
            out += captures[n - 1];
          }
          i = close;
          continue;
        }
      }
    }
    out.push_back(owner_template[i]);
  }
  return out;
}

namespace {

/** Matches one path component against a pattern component; records the text of each '*'. */
bool match_component(std::string_view pat, std::string_view name, std::vector<std::string> &caps) {
  if (pat.empty()) {
    return name.empty();
  }
  char c = pat.front();
  if (c == '*') {
    for (std::size_t n = 0; n <= name.size(); ++n) {
      caps.emplace_back(name.substr(0, n));
      if (match_component(pat.substr(1), name.substr(n), caps)) {
        return true;
      }
      caps.pop_back();
    }
    return false;
  }
  if (name.empty()) {
    return false;
  }
  if (c == '?') {
    return match_component(pat.substr(1), name.substr(1), caps);
  }
  if (c == '[') {
    auto close = pat.find(']', 2);
    if (close != std::string_view::npos) {
      std::string_view set = pat.substr(1, close - 1);
      bool negate = !set.empty() && (set.front() == '!' || set.front() == '^');
      if (negate) {
        set.remove_prefix(1);
      }
      bool found = false;
      for (std::size_t i = 0; i < set.size(); ++i) {
        if (i + 2 < set.size() && set[i + 1] == '-') {
          if (name.front() >= set[i] && name.front() <= set[i + 2]) {
            found = true;
          }
          i += 2;
        } else if (set[i] == name.front()) {
          found = true;
        }
      }
      if (found == negate) {
        return false;
      }
      return match_component(pat.substr(close + 1), name.substr(1), caps);
    }
  }
  if (c != name.front()) {
    return false;
  }
  return match_component(pat.substr(1), name.substr(1), caps);
}

void glob_walk(const fs::path &base, const std::vector<std::string> &parts, std::size_t idx,
               std::vector<std::string> caps, std::vector<GlobMatch> &out) {
  if (idx == parts.size()) {
    out.push_back(GlobMatch{base.string(), std::move(caps)});
    return;
  }
  const std::string &part = parts[idx];
  if (!has_glob_chars(part)) {
    fs::path next = base / part;
    struct stat st {};
    if (::lstat(next.c_str(), &st) == 0) {
      glob_walk(next, parts, idx + 1, std::move(caps), out);
    }
    return;
  }
  DIR *dir = ::opendir(base.c_str());
  if (dir == nullptr) {
    return;
  }
  std::vector<std::string> names;
  while (auto *ent = ::readdir(dir)) {
    std::string name = ent->d_name;
    if (name == "." || name == "..") {
      continue;
    }
    if (name.front() == '.' && part.front() != '.') {
      continue; // like the shell: '*' does not match a leading dot
    }
    names.push_back(std::move(name));
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  for (const auto &name : names) {
    std::vector<std::string> local = caps;
    if (match_component(part, name, local)) {
      glob_walk(base / name, parts, idx + 1, std::move(local), out);
    }
  }
}

/** The components of a '/'-separated path, without empty ones and ".". */
std::vector<std::string> path_components(const std::string &path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!part.empty() && part != ".") {
      parts.push_back(std::move(part));
    }
    if (slash == std::string::npos) {
      break;
    }
    start = slash + 1;
  }
  return parts;
}

} // namespace

bool glob_matches(const std::string &pattern, const std::string &path) {
  if (pattern.empty() || pattern.front() != '/' || path.empty() || path.front() != '/') {
    return false;
  }
  const std::vector<std::string> pat = path_components(pattern);
  const std::vector<std::string> name = path_components(path);
  if (pat.size() != name.size()) {
    return false;
  }
  for (std::size_t i = 0; i < pat.size(); ++i) {
    if (!has_glob_chars(pat[i])) {
      if (pat[i] != name[i]) {
        return false;
      }
      continue;
    }
    std::vector<std::string> caps;
    if ((name[i].front() == '.' && pat[i].front() != '.') || !match_component(pat[i], name[i], caps)) {
      return false;
    }
  }
  return true;
}

Result<std::vector<GlobMatch>> expand_glob(const std::string &pattern) {
  if (pattern.empty() || pattern.front() != '/') {
    return fail(ErrorCode::internal, fmt::format("glob pattern '{}' is not absolute", pattern));
  }
  const std::vector<std::string> parts = path_components(pattern);
  if (std::ranges::find(parts, "..") != parts.end()) {
    return fail(ErrorCode::config, fmt::format("path pattern '{}' contains '..'", pattern));
  }
  std::vector<GlobMatch> out;
  glob_walk(fs::path("/"), parts, 0, {}, out);
  return out;
}

} // namespace maildsar::core
