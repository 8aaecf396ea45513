// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar agent: this host's part of an estate spread over hosts (issue 15). Speaks the agent
// protocol (remote/protocol.hpp, docs/schemata.md) on stdin/stdout, meant as the forced command
// of an authorized_keys line; answers only from this host's own config, sources and index.
#include "access/export.hpp"
#include "cli/commands.hpp"
#include "core/audit.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "erasure/erasure.hpp"
#include "core/exit_codes.hpp"
#include "indexer/catalog.hpp"
#include "indexer/indexer.hpp"
#include "query/affected.hpp"
#include "query/query.hpp"
#include "remote/listener.hpp"
#include "remote/protocol.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace maildsar::cli {

void agent_options(po::options_description &desc, po::positional_options_description &) {
  desc.add_options()("listen", po::value<std::string>()->value_name("SOCKET"),
                     "stay running: serve each connection to this Unix socket in a forked session "
                     "(reached by `maildsar-connect SOCKET`, e.g. as the ssh forced command)")(
      "max-sessions", po::value<unsigned>()->default_value(16)->value_name("N"),
      "with --listen: sessions at once (more connections wait)");
}

std::string agent_host_name(const core::Config &config) {
  if (!config.host_name.empty()) {
    return config.host_name;
  }
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) {
    return "unknown";
  }
  return name;
}

namespace {

/** This host's part of an access package, built for one client in this session. */
struct AgentExport {
  std::string dir;                               // STATE/agent-export/ID (removed at export_done or EOF)
  std::map<std::string, std::uint64_t> files;    // package-relative path -> size: all that export_read serves
};

std::string random_id() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

core::Result<std::string> string_field(const nlohmann::json &request, const char *op, const char *key) {
  const auto it = request.find(key);
  if (it == request.end() || !it->is_string() || it->get<std::string>().empty() || it->get<std::string>().size() > 4096) {
    return core::fail(core::ErrorCode::usage, fmt::format("{}: \"{}\" must be a non-empty string", op, key));
  }
  return it->get<std::string>();
}

core::Result<std::vector<std::string>> string_list(const nlohmann::json &request, const char *op, const char *key) {
  std::vector<std::string> out;
  const auto it = request.find(key);
  if (it == request.end()) {
    return out;
  }
  if (!it->is_array() || it->size() > 1000) {
    return core::fail(core::ErrorCode::usage, fmt::format("{}: \"{}\" must be a list of strings", op, key));
  }
  for (const nlohmann::json &v : *it) {
    if (!v.is_string() || v.get<std::string>().size() > 1024) {
      return core::fail(core::ErrorCode::usage, fmt::format("{}: \"{}\" must be a list of strings", op, key));
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

/** Every regular file of a package directory, relative, with its size and SHA-256. */
core::Result<nlohmann::json> list_package(const std::string &dir, std::map<std::string, std::uint64_t> &sizes) {
  namespace fs = std::filesystem;
  nlohmann::json files = nlohmann::json::array();
  std::error_code ec;
  std::vector<std::string> paths;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::file_status st = it->symlink_status(ec);
    if (ec) {
      break;
    }
    if (fs::is_directory(st)) {
      continue;
    }
    const std::string rel = it->path().lexically_relative(dir).generic_string();
    if (!fs::is_regular_file(st) || !remote::is_package_path(rel)) {
      return core::fail(core::ErrorCode::internal,
                        fmt::format("export: the package holds '{}', which is no plain file name to send", rel.substr(0, 200)));
    }
    paths.push_back(rel);
  }
  if (ec) {
    return core::fail(core::ErrorCode::io, fmt::format("export: {}: {}", dir, ec.message()));
  }
  std::ranges::sort(paths);
  for (const std::string &rel : paths) {
    const std::string full = dir + "/" + rel;
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0) {
      return std::unexpected(core::errno_error("export: " + full, errno));
    }
    MAILDSAR_TRY_ASSIGN(std::string sha, core::sha256_file(full));
    sizes[rel] = static_cast<std::uint64_t>(st.st_size);
    files.push_back({{"path", rel}, {"size", static_cast<std::uint64_t>(st.st_size)}, {"sha256", sha}});
  }
  return files;
}

/** The certificate file's bytes as written (its hash names it on the DPO host's timeline). */
std::string read_certificate_text(const erasure::VerifyReport &report) {
  auto text = core::read_file(report.certificate_path, 16ULL << 20);
  return text ? *text : report.certificate.dump();
}

} // namespace

core::Result<nlohmann::json> local_status_json(const core::Config &config) {
  MAILDSAR_TRY_ASSIGN(std::vector<index::SourceStatus> recorded,
                      index::read_source_status(index::catalog_path(config)));
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  nlohmann::json sources = nlohmann::json::array();
  bool any_stale = false;
  std::optional<std::int64_t> oldest; // the age of the least recently indexed source
  for (const core::SourceConfig &src : config.sources) {
    const index::SourceStatus *found = nullptr;
    for (const index::SourceStatus &s : recorded) {
      if (s.name == src.name) {
        found = &s;
      }
    }
    const bool indexed = found != nullptr && found->last_success.has_value();
    const bool changed = found != nullptr && (found->type != src.type ||
                                              (!found->origin.empty() && found->origin != index::source_origin(src)));
    const std::int64_t age = indexed ? std::max<std::int64_t>(0, now - *found->last_success) : 0;
    const bool stale = !indexed || changed || age > config.max_index_age_seconds;
    any_stale = any_stale || stale;
    if (indexed) {
      oldest = std::max(oldest.value_or(0), age);
    }
    sources.push_back({{"name", src.name},
                       {"type", src.type},
                       {"last_success", indexed ? nlohmann::json(iso_date(*found->last_success)) : nlohmann::json(nullptr)},
                       {"age_seconds", indexed ? nlohmann::json(age) : nlohmann::json(nullptr)},
                       {"items", found != nullptr ? found->items : 0},
                       {"stale", stale},
                       {"config_changed", changed}});
  }
  return nlohmann::json{{"sources", sources},
                        {"stale", any_stale},
                        {"max_index_age_seconds", config.max_index_age_seconds},
                        {"index_age_seconds", oldest ? nlohmann::json(*oldest) : nlohmann::json(nullptr)}};
}

namespace {

/** One session of the protocol on in_fd/out_fd, with the config as it is now. */
core::Result<int> agent_session(Context &ctx, int in_fd, int out_fd) {
  MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
  const std::string operator_name = ctx.operator_name;
  std::map<std::string, remote::OpHandler> ops;
  ops["status"] = [&](const nlohmann::json &) { return local_status_json(config); };
  ops["find"] = [&](const nlohmann::json &request) -> core::Result<nlohmann::json> {
    const auto subject_it = request.find("subject");
    if (subject_it == request.end() || !subject_it->is_object()) {
      return core::fail(core::ErrorCode::usage, R"(find: "subject" must be a subject object)",
                        R"(e.g. {"op":"find","subject":{"emails":["a@example.com"]}})");
    }
    // The subject file's own parser: the same keys, types and checks as `find --subject FILE`.
    MAILDSAR_TRY_ASSIGN(query::SubjectProfile subject, query::parse_subject(subject_it->dump(), "find: subject"));
    if (subject.empty()) {
      return core::fail(core::ErrorCode::usage, "find: the subject has no identifier");
    }
    MAILDSAR_TRY(require_indexed(config));
    MAILDSAR_TRY_ASSIGN(std::vector<query::Hit> hits, query::find(config, subject));
    // Every search over the wire is on this host's timeline (who asked is the client's claim).
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    nlohmann::json details{{"items", hits.size()}, {"via", "agent"}};
    if (auto who = request.find("operator"); who != request.end() && who->is_string()) {
      details["client_operator"] = who->get<std::string>().substr(0, 64);
    }
    MAILDSAR_TRY(audit.append("find", operator_name, subject.request, details));
    nlohmann::json list = nlohmann::json::array();
    for (const query::Hit &h : hits) {
      list.push_back(hit_json(h));
    }
    MAILDSAR_TRY_ASSIGN(std::vector<query::Hit> partial, query::truncated_items(config));
    return nlohmann::json{{"hits", std::move(list)}, {"partially_indexed", partial.size()}};
  };
  ops["affected"] = [&](const nlohmann::json &request) -> core::Result<nlohmann::json> {
    // Breach scoping of this host's items (issue 16 item 5 with --host): the same selection as
    // `affected` here, checked against this host's own sources.
    query::AffectedSelection sel;
    if (auto sources = request.find("sources"); sources != request.end()) {
      if (!sources->is_array() || sources->size() > 1000) {
        return core::fail(core::ErrorCode::usage, R"(affected: "sources" must be a list of source names)");
      }
      for (const nlohmann::json &name : *sources) {
        if (!name.is_string() || std::ranges::none_of(config.sources, [&](const core::SourceConfig &src) {
              return src.name == name.get<std::string>();
            })) {
          return core::fail(core::ErrorCode::usage,
                            fmt::format("affected: no source {} on this host", name.dump().substr(0, 80)));
        }
        sel.sources.push_back(name.get<std::string>());
      }
    }
    if (auto folder = request.find("folder"); folder != request.end()) {
      if (!folder->is_string() || folder->get<std::string>().size() > 4096) {
        return core::fail(core::ErrorCode::usage, R"(affected: "folder" must be a glob)");
      }
      sel.folder_glob = folder->get<std::string>();
    }
    for (const char *key : {"since", "until"}) {
      if (auto t = request.find(key); t != request.end()) {
        if (!t->is_number_integer()) {
          return core::fail(core::ErrorCode::usage, fmt::format("affected: \"{}\" must be seconds (UTC)", key));
        }
        (std::string_view(key) == "since" ? sel.since : sel.until) = t->get<std::int64_t>();
      }
    }
    if (sel.sources.empty() && sel.folder_glob.empty()) {
      return core::fail(core::ErrorCode::usage, "affected: which items? give sources and/or a folder glob");
    }
    MAILDSAR_TRY(require_indexed(config));
    MAILDSAR_TRY_ASSIGN(query::AffectedReport report, query::affected(config, sel));
    // Who asked for the people of which items is on this host's timeline too.
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    nlohmann::json details{{"items", report.items}, {"identifiers", report.identifiers.size()}, {"via", "agent"}};
    if (auto who = request.find("operator"); who != request.end() && who->is_string()) {
      details["client_operator"] = who->get<std::string>().substr(0, 64);
    }
    MAILDSAR_TRY(audit.append("affected", operator_name, "", details));
    return affected_report_json(report);
  };
  // Trace (issue 15): this host's copies and log transactions of one message, and its path.
  ops["trace"] = [&](const nlohmann::json &request) -> core::Result<nlohmann::json> {
    MAILDSAR_TRY_ASSIGN(std::string wanted, string_field(request, "trace", "message_id"));
    if (wanted.size() > 998 || query::normalise_message_id(wanted).empty()) {
      return core::fail(core::ErrorCode::usage, R"(trace: "message_id" must be a Message-ID)");
    }
    MAILDSAR_TRY(require_indexed(config));
    MAILDSAR_TRY_ASSIGN(query::Trace t, query::trace(config, wanted));
    // Who looked up which message's copies is on this host's timeline, as a find is.
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    nlohmann::json details{{"copies", t.copies.size()}, {"via", "agent"}};
    if (auto who = request.find("operator"); who != request.end() && who->is_string()) {
      details["client_operator"] = who->get<std::string>().substr(0, 64);
    }
    MAILDSAR_TRY(audit.append("trace", operator_name, "", details));
    return trace_json(t);
  };
  // Retention, dry run only (issue 15): what this host's own rules find past their period.
  // Nothing is changed through the agent: each host applies its own retention.
  ops["retention"] = [&](const nlohmann::json &request) -> core::Result<nlohmann::json> {
    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    if (auto n = request.find("now"); n != request.end()) {
      if (!n->is_number_integer() || n->get<std::int64_t>() < 0) {
        return core::fail(core::ErrorCode::usage, R"(retention: "now" must be seconds since the epoch (UTC))");
      }
      now = n->get<std::int64_t>();
    }
    return retention_dry_run_json(config, now);
  };
  // Verify (issue 15): this host rescans its own stores and index for the subject, as a local
  // `verify` does, and writes its certificate here when nothing remains.
  ops["verify"] = [&](const nlohmann::json &request) -> core::Result<nlohmann::json> {
    const auto subject_it = request.find("subject");
    if (subject_it == request.end() || !subject_it->is_object()) {
      return core::fail(core::ErrorCode::usage, R"(verify: "subject" must be a subject object)");
    }
    MAILDSAR_TRY_ASSIGN(query::SubjectProfile subject, query::parse_subject(subject_it->dump(), "verify: subject"));
    if (subject.empty()) {
      return core::fail(core::ErrorCode::usage, "verify: the subject has no identifier");
    }
    MAILDSAR_TRY(require_indexed(config));
    MAILDSAR_TRY_ASSIGN(erasure::VerifyReport report, erasure::verify(config, subject, operator_name, ""));
    nlohmann::json remaining = nlohmann::json::array();
    for (const erasure::Remaining &r : report.remaining) {
      remaining.push_back({{"where", r.where}, {"source", r.locator.source},
                           {"store", connectors::to_string(r.locator.store)}, {"path", r.locator.path},
                           {"detail", r.detail}});
    }
    nlohmann::json unsearched = nlohmann::json::array();
    for (const erasure::Remaining &r : report.unsearched) {
      unsearched.push_back({{"source", r.locator.source}, {"store", connectors::to_string(r.locator.store)},
                            {"path", r.locator.path}, {"detail", r.detail}});
    }
    const bool certified = report.certificate.is_object() && !report.certificate_path.empty();
    return nlohmann::json{{"clean", report.remaining.empty() && report.unsearched.empty()},
                          {"manifests", report.manifests},
                          {"files_rescanned", report.files_rescanned},
                          {"retained", report.retained},
                          {"remaining", remaining},
                          {"unsearched", unsearched},
                          {"certificate", certified ? nlohmann::json(report.certificate_path) : nlohmann::json()},
                          {"certificate_sha256", certified ? nlohmann::json(core::sha256_hex(read_certificate_text(report)))
                                                           : nlohmann::json()}};
  };
  // Export (issue 15): this host's part of the access package, built here by the local export
  // from this host's own config and index (nothing outside its sources can be in it), then
  // read back in bounded chunks by path, only paths of a package built in this session.
  std::map<std::string, AgentExport> exports;
  ops["export"] = [&](const nlohmann::json &request) -> core::Result<nlohmann::json> {
    const auto subject_it = request.find("subject");
    if (subject_it == request.end() || !subject_it->is_object()) {
      return core::fail(core::ErrorCode::usage, R"(export: "subject" must be a subject object)");
    }
    MAILDSAR_TRY_ASSIGN(query::SubjectProfile subject, query::parse_subject(subject_it->dump(), "export: subject"));
    if (subject.empty()) {
      return core::fail(core::ErrorCode::usage, "export: the subject has no identifier");
    }
    if (exports.size() >= 4) {
      return core::fail(core::ErrorCode::usage, "export: 4 packages are open in this session; export_done first");
    }
    access::ExportOptions options;
    options.operator_name = operator_name;
    options.tool_version = MAILDSAR_VERSION;
    if (auto r = request.find("redact_others"); r != request.end()) {
      if (!r->is_boolean()) {
        return core::fail(core::ErrorCode::usage, R"(export: "redact_others" must be true or false)");
      }
      options.redact_others = r->get<bool>() ? access::RedactOthers::yes : access::RedactOthers::no;
    } else {
      options.redact_others = config.access.redact_others ? access::RedactOthers::yes : access::RedactOthers::no;
    }
    options.language = config.access.language;
    if (request.contains("language")) {
      MAILDSAR_TRY_ASSIGN(options.language, string_field(request, "export", "language"));
      if (std::ranges::find(core::k_report_languages, options.language) == core::k_report_languages.end()) {
        return core::fail(core::ErrorCode::usage, "export: \"language\" is not a report language");
      }
    }
    MAILDSAR_TRY_ASSIGN(options.mask, string_list(request, "export", "mask"));
    MAILDSAR_TRY_ASSIGN(options.unmask, string_list(request, "export", "unmask"));
    MAILDSAR_TRY(require_indexed(config));
    const std::string base = (std::filesystem::path(config.state_dir) / "agent-export").string();
    if (::mkdir(base.c_str(), 0700) != 0 && errno != EEXIST) {
      return std::unexpected(core::errno_error("export: " + base, errno));
    }
    const std::string id = random_id();
    AgentExport ex{base + "/" + id, {}};
    options.out_dir = ex.dir + "/package";
    if (::mkdir(ex.dir.c_str(), 0700) != 0) {
      return std::unexpected(core::errno_error("export: " + ex.dir, errno));
    }
    auto built = access::export_package(config, subject, options);
    nlohmann::json files;
    if (built) {
      auto listed = list_package(options.out_dir, ex.files);
      if (listed) {
        files = std::move(*listed);
      } else {
        built = std::unexpected(listed.error());
      }
    }
    if (!built) {
      std::error_code ec;
      std::filesystem::remove_all(ex.dir, ec);
      return std::unexpected(built.error());
    }
    const access::ExportSummary &s = *built;
    nlohmann::json per_source = nlohmann::json::object();
    for (const auto &[k, v] : s.per_source) {
      per_source[k] = v;
    }
    nlohmann::json problems = nlohmann::json::array();
    for (const std::string &p : s.problems) {
      problems.push_back(p.substr(0, 1024));
    }
    exports.emplace(id, std::move(ex));
    return nlohmann::json{{"export_id", id},
                          {"items", s.items},
                          {"copied", s.copied},
                          {"masked", s.masked},
                          {"withheld_attachments", s.withheld},
                          {"per_source", per_source},
                          {"problems", problems},
                          {"package_sha256", s.package_hash},
                          {"files", std::move(files)}};
  };
  ops["export_read"] = [&](const nlohmann::json &request) -> core::Result<nlohmann::json> {
    MAILDSAR_TRY_ASSIGN(std::string id, string_field(request, "export_read", "export_id"));
    MAILDSAR_TRY_ASSIGN(std::string path, string_field(request, "export_read", "path"));
    const auto ex = exports.find(id);
    if (ex == exports.end()) {
      return core::fail(core::ErrorCode::usage, "export_read: no such export in this session");
    }
    const auto file = ex->second.files.find(path);
    if (file == ex->second.files.end()) {
      return core::fail(core::ErrorCode::usage, "export_read: no such file in this export's package");
    }
    const auto offset_it = request.find("offset");
    if (offset_it == request.end() || !offset_it->is_number_unsigned() ||
        offset_it->get<std::uint64_t>() > file->second) {
      return core::fail(core::ErrorCode::usage, R"(export_read: "offset" must be a byte offset within the file)");
    }
    const std::uint64_t offset = offset_it->get<std::uint64_t>();
    const std::string full = ex->second.dir + "/package/" + path;
    core::Fd fd(::open(full.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      return std::unexpected(core::errno_error("export_read: " + full, errno));
    }
    std::string chunk(static_cast<std::size_t>(std::min<std::uint64_t>(remote::k_export_chunk_bytes, file->second - offset)), '\0');
    std::size_t got = 0;
    while (got < chunk.size()) {
      const ssize_t n = ::pread(fd.get(), chunk.data() + got, chunk.size() - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        return std::unexpected(core::errno_error("export_read: " + full, errno));
      }
      if (n == 0) {
        return core::fail(core::ErrorCode::io, fmt::format("export_read: {} is shorter than listed", full));
      }
      got += static_cast<std::size_t>(n);
    }
    return nlohmann::json{{"data", remote::base64_encode(chunk)}, {"eof", offset + got >= file->second}};
  };
  ops["export_done"] = [&](const nlohmann::json &request) -> core::Result<nlohmann::json> {
    MAILDSAR_TRY_ASSIGN(std::string id, string_field(request, "export_done", "export_id"));
    const auto ex = exports.find(id);
    if (ex == exports.end()) {
      return core::fail(core::ErrorCode::usage, "export_done: no such export in this session");
    }
    const std::string dir = ex->second.dir;
    exports.erase(ex);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (ec) {
      return core::fail(core::ErrorCode::io, fmt::format("export_done: {}: {}", dir, ec.message()));
    }
    return nlohmann::json::object();
  };
  // Erasure across hosts (issue 15): this host's slice, planned here and carried out here.
  add_agent_erasure_ops(ops, config, ctx);
  const remote::AgentIdentity self{agent_host_name(config), fmt::format("maildsar {}", MAILDSAR_VERSION)};
  const int rc = remote::serve(in_fd, out_fd, self, ops);
  // A client that went away without export_done leaves nothing of the subject behind here.
  for (const auto &[id, ex] : exports) {
    std::error_code ec;
    std::filesystem::remove_all(ex.dir, ec);
  }
  return rc;
}

} // namespace

core::Result<int> run_agent(Context &ctx) {
  // A client that goes away is EOF or EPIPE for us, never a signal.
  std::signal(SIGPIPE, SIG_IGN);
  if (ctx.vm.count("listen") == 0) {
    return agent_session(ctx, STDIN_FILENO, STDOUT_FILENO);
  }
  // Listening: the config is checked now, so that a broken one stops the service at its start,
  // and read again by each session, so that a changed one needs no restart.
  MAILDSAR_TRY(ctx.load_config());
  remote::ListenOptions options;
  options.path = ctx.vm["listen"].as<std::string>();
  options.max_sessions = ctx.vm["max-sessions"].as<unsigned>();
  if (options.max_sessions == 0 || options.max_sessions > 1024) {
    return core::fail(core::ErrorCode::usage, "agent: --max-sessions must be 1 to 1024");
  }
  // The waiting process reads the config and the catalog's source status once, and forgets
  // them: the pages a session writes first are then already its own (a page fault costs
  // microseconds on a VM), and a session reads both afresh.
  options.warm_up = [&ctx] {
    if (auto config = ctx.load_config()) {
      (void)local_status_json(*config);
    }
  };
  return remote::listen_and_fork(options, [&](int fd) {
    auto rc = agent_session(ctx, fd, fd);
    if (!rc) {
      // Before the protocol (the config cannot be read): the client reads this as hello's
      // answer and names the host with it; the listener's journal has it too.
      (void)remote::write_line(fd, remote::error_response("hello", rc.error()).dump());
      std::fprintf(stderr, "maildsar agent: session: %s\n", rc.error().message.c_str());
      return core::exit_code(rc.error().code);
    }
    return *rc;
  });
}

} // namespace maildsar::cli
