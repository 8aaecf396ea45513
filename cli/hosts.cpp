// SPDX-License-Identifier: GPL-3.0-or-later
#include "cli/hosts.hpp"

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "remote/host_client.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <functional>
#include <system_error>
#include <thread>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace maildsar::cli {

nlohmann::json subject_json(const query::SubjectProfile &s) {
  nlohmann::json j{{"emails", s.emails}, {"names", s.names}, {"phones", s.phones}, {"ips", s.ips}};
  if (!s.request.empty()) {
    j["request"] = s.request;
  }
  return j;
}

namespace {

/** Hosts asked at once (each a transport process and a thread waiting on it). */
constexpr std::size_t k_host_parallelism = 8;

} // namespace

void for_each_host(std::size_t n, const std::function<void(std::size_t)> &one) {
  if (n <= 1) {
    for (std::size_t i = 0; i < n; ++i) {
      one(i);
    }
    return;
  }
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next++; i < n; i = next++) {
      one(i);
    }
  };
  std::vector<std::thread> workers;
  for (std::size_t t = 1; t < std::min(n, k_host_parallelism); ++t) {
    try {
      workers.emplace_back(work);
    } catch (const std::system_error &) { // no thread to be had (a limit): fewer, same answers
      break;
    }
  }
  work(); // this thread is one of them
  for (std::thread &w : workers) {
    w.join();
  }
}

namespace {

/**
 * Asks every configured host with `ask(host, outcome)` (a core::Status), in parallel: each
 * outcome is searched, or has the error and whether --allow-missing-host named the host, and
 * `reset(outcome)` drops what a failed answer left.
 */
template <class Ask, class Reset>
std::vector<HostOutcome> ask_each_host(const core::Config &config, const std::vector<std::string> &allowed_missing,
                                       Ask &&ask, Reset &&reset) {
  std::vector<HostOutcome> outcomes(config.hosts.size());
  for_each_host(config.hosts.size(), [&](std::size_t i) {
    const core::HostConfig &host = config.hosts[i];
    HostOutcome &o = outcomes[i];
    o.name = host.name;
    if (auto r = ask(host, o); r) {
      o.searched = true;
    } else {
      o.error = r.error().message;
      reset(o);
      o.allowed_missing = std::ranges::find(allowed_missing, host.name) != allowed_missing.end();
    }
  });
  return outcomes;
}

std::string age_words(std::int64_t seconds) {
  return seconds >= 2 * 86400 ? fmt::format("{}d", seconds / 86400)
         : seconds >= 7200    ? fmt::format("{}h", seconds / 3600)
                              : fmt::format("{}s", seconds);
}

/** One host: hello, status (stale is a failure), then find. Errors name the host. */
core::Status ask_host(const core::HostConfig &host, const query::SubjectProfile *subject, std::string_view operator_name,
                      HostOutcome &out, std::optional<remote::HostClient> *keep = nullptr) {
  // The status goes with hello (one round trip less): it only reads.
  const nlohmann::json status_request{{"op", "status"}};
  MAILDSAR_TRY_ASSIGN(remote::HostClient client, remote::HostClient::connect(host, &status_request));
  out.agent_host = client.hello().host;
  MAILDSAR_TRY_ASSIGN(nlohmann::json status, client.answer());
  if (auto m = status.find("max_index_age_seconds"); m != status.end() && m->is_number_integer()) {
    out.max_index_age_seconds = m->get<std::int64_t>();
  }
  if (auto a = status.find("index_age_seconds"); a != status.end() && a->is_number_integer()) {
    out.index_age_seconds = a->get<std::int64_t>();
  }
  const auto stale = status.find("stale");
  if (stale == status.end() || !stale->is_boolean()) {
    return core::fail(core::ErrorCode::data, fmt::format("host {}: its status has no \"stale\" flag", host.name));
  }
  out.reachable = true;
  out.stale = stale->get<bool>();
  if (out.stale) {
    std::string which;
    if (auto sources = status.find("sources"); sources != status.end() && sources->is_array()) {
      for (const auto &s : *sources) {
        const auto flag = s.is_object() ? s.find("stale") : s.end();
        if (flag != s.end() && flag->is_boolean() && flag->get<bool>() && s.contains("name") && s["name"].is_string()) {
          which += fmt::format("{}{}", which.empty() ? "" : ", ", s["name"].get<std::string>().substr(0, 64));
        }
      }
    }
    return core::fail(core::ErrorCode::temp_fail,
                      fmt::format("host {}: its index is stale (sources {}; {} max_index_age {})", host.name,
                                  which.empty() ? "?" : which,
                                  out.index_age_seconds ? "oldest indexed " + age_words(*out.index_age_seconds) + " ago,"
                                                        : "never indexed,",
                                  age_words(out.max_index_age_seconds)),
                      fmt::format("run `maildsar index` on {} (its timer?), or name it with --allow-missing-host", host.name));
  }
  if (subject != nullptr) {
    MAILDSAR_TRY_ASSIGN(nlohmann::json found, client.request({{"op", "find"},
                                                              {"subject", subject_json(*subject)},
                                                              {"operator", std::string(operator_name)}}));
    const auto hits = found.find("hits");
    if (hits == found.end() || !hits->is_array() ||
        !std::ranges::all_of(*hits, [](const nlohmann::json &h) {
          return h.is_object() && h.contains("source") && h["source"].is_string() && h.contains("path") &&
                 h["path"].is_string();
        })) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("host {}: the answer to find has no list of hit objects", host.name));
    }
    if (auto p = found.find("partially_indexed"); p != found.end() && p->is_number_unsigned()) {
      out.partially_indexed = p->get<std::uint64_t>();
    }
    for (nlohmann::json &h : *hits) {
      h["host"] = host.name;
    }
    out.hits = std::move(*hits);
  }
  if (keep != nullptr) {
    keep->emplace(std::move(client));
    return {};
  }
  client.close();
  return {};
}

} // namespace

core::Result<remote::HostClient> open_host(const core::HostConfig &host, HostOutcome &out) {
  std::optional<remote::HostClient> client;
  MAILDSAR_TRY(ask_host(host, nullptr, "", out, &client));
  return std::move(*client);
}

namespace {

/** Makes `dir` and its missing parents below `root` (0700); refuses a symbolic link on the way. */
core::Status make_dirs_below(const std::string &root, const std::string &rel) {
  std::string path = root;
  std::size_t start = 0;
  while (start < rel.size()) {
    const std::size_t slash = std::min(rel.find('/', start), rel.size());
    path += "/" + rel.substr(start, slash - start);
    if (::mkdir(path.c_str(), 0700) != 0) {
      const int err = errno;
      struct stat st {};
      if (err != EEXIST || ::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return std::unexpected(core::errno_error("export: " + path, err == EEXIST ? ENOTDIR : err));
      }
    }
    start = slash + 1;
  }
  return {};
}

/** Largest file of a host's package the DPO host accepts (a package holds copies of messages). */
constexpr std::uint64_t k_max_package_file = std::uint64_t{16} << 30U;

/** Reads one listed file of a host's package into `root`/`rel`, chunk by chunk, checked. */
core::Status fetch_file(remote::HostClient &client, const std::string &id, const std::string &rel, std::uint64_t size,
                        const std::string &sha256, const std::string &root) {
  const std::string &host = client.name();
  if (const auto slash = rel.rfind('/'); slash != std::string::npos) {
    MAILDSAR_TRY(make_dirs_below(root, rel.substr(0, slash)));
  }
  const std::string final_path = root + "/" + rel;
  const std::string tmp_path = final_path + ".part";
  core::Fd fd(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) {
    return std::unexpected(core::errno_error(fmt::format("host {}: export: {}", host, tmp_path), errno));
  }
  core::Sha256 hash;
  std::uint64_t offset = 0;
  bool eof = false;
  while (!eof) {
    MAILDSAR_TRY_ASSIGN(nlohmann::json chunk,
                        client.request({{"op", "export_read"}, {"export_id", id}, {"path", rel}, {"offset", offset}}));
    const auto data = chunk.find("data");
    const auto eof_it = chunk.find("eof");
    std::optional<std::string> bytes;
    if (data != chunk.end() && data->is_string()) {
      bytes = remote::base64_decode(data->get<std::string>());
    }
    if (!bytes || eof_it == chunk.end() || !eof_it->is_boolean() || bytes->size() > remote::k_export_chunk_bytes ||
        bytes->size() > size - offset || (bytes->empty() && !eof_it->get<bool>())) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("host {}: export: the answer to export_read of {} is not a chunk of it", host, rel));
    }
    std::size_t written = 0;
    while (written < bytes->size()) {
      const ssize_t n = ::write(fd.get(), bytes->data() + written, bytes->size() - written);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        return std::unexpected(core::errno_error(fmt::format("host {}: export: {}", host, tmp_path), errno));
      }
      written += static_cast<std::size_t>(n);
    }
    hash.update(*bytes);
    offset += bytes->size();
    eof = eof_it->get<bool>();
  }
  if (offset != size || hash.hex_digest() != sha256) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("host {}: export: {} arrived with {} byte(s) and another SHA-256 than listed", host,
                                  rel, offset));
  }
  if (::fsync(fd.get()) != 0 || ::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    return std::unexpected(core::errno_error(fmt::format("host {}: export: {}", host, final_path), errno));
  }
  return {};
}

/** One host's part of the package: status, export, every file, export_done. */
/**
 * A count in a host's answer to `op`: 0 when absent; a host that sends another type (a broken
 * or hostile agent) is an error naming it, never an exception.
 */
core::Result<std::uint64_t> count_field(const nlohmann::json &answer, const char *key, std::string_view op,
                                        const std::string &host) {
  const auto it = answer.find(key);
  if (it == answer.end()) {
    return std::uint64_t{0};
  }
  if (!it->is_number_unsigned()) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("host {}: the answer to {} has a \"{}\" that is not a count", host, op, key));
  }
  return it->get<std::uint64_t>();
}

core::Status export_host(const core::HostConfig &host, const query::SubjectProfile &subject,
                         const HostExportOptions &options, HostExport &out) {
  HostOutcome status;
  std::optional<remote::HostClient> session;
  MAILDSAR_TRY(ask_host(host, nullptr, "", status, &session));
  remote::HostClient &client = *session;
  nlohmann::json request{{"op", "export"},
                         {"subject", subject_json(subject)},
                         {"redact_others", options.redact_others},
                         {"language", options.language},
                         {"mask", options.mask},
                         {"unmask", options.unmask}};
  MAILDSAR_TRY_ASSIGN(nlohmann::json built, client.request(request));
  const auto id = built.find("export_id");
  const auto files = built.find("files");
  if (id == built.end() || !id->is_string() || files == built.end() || !files->is_array() || files->size() > 1000000) {
    return core::fail(core::ErrorCode::data, fmt::format("host {}: the answer to export has no export_id and files", host.name));
  }
  MAILDSAR_TRY_ASSIGN(out.items, count_field(built, "items", "export", host.name));
  MAILDSAR_TRY_ASSIGN(out.copied, count_field(built, "copied", "export", host.name));
  if (auto p = built.find("package_sha256"); p != built.end() && p->is_string()) {
    out.package_sha256 = p->get<std::string>().substr(0, 64);
  }
  if (auto problems = built.find("problems"); problems != built.end() && problems->is_array()) {
    for (const nlohmann::json &p : *problems) {
      if (p.is_string() && out.problems.size() < 10000) {
        out.problems.push_back(fmt::format("host {}: {}", host.name, p.get<std::string>().substr(0, 1024)));
      }
    }
  }
  if (::mkdir(out.folder.c_str(), 0700) != 0) {
    return std::unexpected(core::errno_error(fmt::format("host {}: export: {}", host.name, out.folder), errno));
  }
  for (const nlohmann::json &f : *files) {
    const bool ok = f.is_object() && f.contains("path") && f["path"].is_string() &&
                    remote::is_package_path(f["path"].get<std::string>()) &&
                    !f["path"].get<std::string>().ends_with(".part") && f.contains("size") &&
                    f["size"].is_number_unsigned() && f["size"].get<std::uint64_t>() <= k_max_package_file &&
                    f.contains("sha256") && f["sha256"].is_string() && f["sha256"].get<std::string>().size() == 64;
    if (!ok) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("host {}: export lists a file that is not a plain relative path with size and "
                                    "SHA-256: {}",
                                    host.name, f.dump().substr(0, 200)));
    }
    const std::uint64_t size = f["size"].get<std::uint64_t>();
    MAILDSAR_TRY(fetch_file(client, id->get<std::string>(), f["path"].get<std::string>(), size,
                            f["sha256"].get<std::string>(), out.folder));
    ++out.files;
    out.bytes += size;
  }
  MAILDSAR_TRY(client.request({{"op", "export_done"}, {"export_id", *id}}));
  client.close();
  return {};
}

/** Rows of remaining/unsearched places from a host: objects of short strings, with "host" added. */
core::Result<nlohmann::json> host_rows(const nlohmann::json &answer, const char *key, const std::string &host) {
  const auto rows = answer.find(key);
  if (rows == answer.end() || !rows->is_array()) {
    return core::fail(core::ErrorCode::data, fmt::format("host {}: the answer to verify has no \"{}\" list", host, key));
  }
  nlohmann::json out = nlohmann::json::array();
  for (const nlohmann::json &r : *rows) {
    if (!r.is_object() || !r.contains("path") || !r["path"].is_string() || !r.contains("source") ||
        !r["source"].is_string()) {
      return core::fail(core::ErrorCode::data, fmt::format("host {}: verify: a \"{}\" row is not a place", host, key));
    }
    nlohmann::json row = r;
    row["host"] = host;
    out.push_back(std::move(row));
  }
  return out;
}

core::Status verify_host(const core::HostConfig &host, const query::SubjectProfile &subject, HostVerify &out) {
  HostOutcome status;
  std::optional<remote::HostClient> session;
  MAILDSAR_TRY(ask_host(host, nullptr, "", status, &session));
  MAILDSAR_TRY_ASSIGN(nlohmann::json answer, session->request({{"op", "verify"}, {"subject", subject_json(subject)}}));
  const auto clean = answer.find("clean");
  if (clean == answer.end() || !clean->is_boolean()) {
    return core::fail(core::ErrorCode::data, fmt::format("host {}: the answer to verify has no \"clean\" flag", host.name));
  }
  MAILDSAR_TRY_ASSIGN(out.remaining, host_rows(answer, "remaining", host.name));
  MAILDSAR_TRY_ASSIGN(out.unsearched, host_rows(answer, "unsearched", host.name));
  // "clean" must agree with the lists: a host cannot claim clean while listing residue.
  out.clean = clean->get<bool>() && out.remaining.empty() && out.unsearched.empty();
  MAILDSAR_TRY_ASSIGN(out.files_rescanned, count_field(answer, "files_rescanned", "verify", host.name));
  MAILDSAR_TRY_ASSIGN(out.retained, count_field(answer, "retained", "verify", host.name));
  if (auto m = answer.find("manifests"); m != answer.end() && m->is_array()) {
    out.manifests = *m;
  }
  if (auto c = answer.find("certificate"); c != answer.end() && c->is_string()) {
    out.certificate = c->get<std::string>().substr(0, 4096);
  }
  if (auto c = answer.find("certificate_sha256"); c != answer.end() && c->is_string()) {
    out.certificate_sha256 = c->get<std::string>().substr(0, 64);
  }
  session->close();
  return {};
}

core::Status trace_host(const core::HostConfig &host, const std::string &message_id, std::string_view operator_name,
                        HostOutcome &out) {
  std::optional<remote::HostClient> session;
  MAILDSAR_TRY(ask_host(host, nullptr, operator_name, out, &session));
  MAILDSAR_TRY_ASSIGN(nlohmann::json answer, session->request({{"op", "trace"},
                                                               {"message_id", message_id},
                                                               {"operator", std::string(operator_name)}}));
  const auto copies = answer.find("copies");
  const auto hops = answer.find("hops");
  const auto is_objects = [](const nlohmann::json &list) {
    return list.is_array() && std::ranges::all_of(list, [](const nlohmann::json &o) { return o.is_object(); });
  };
  if (copies == answer.end() || hops == answer.end() || !is_objects(*copies) || !is_objects(*hops) ||
      !std::ranges::all_of(*copies, [](const nlohmann::json &c) {
        return c.contains("source") && c["source"].is_string() && c.contains("path") && c["path"].is_string();
      })) {
    return core::fail(core::ErrorCode::data, fmt::format("host {}: the answer to trace has no copies and hops", host.name));
  }
  for (nlohmann::json &c : *copies) {
    c["host"] = host.name;
  }
  for (nlohmann::json &h : *hops) {
    h["host"] = host.name;
  }
  out.hits = std::move(*copies);
  out.hops = std::move(*hops);
  if (auto p = answer.find("problems"); p != answer.end() && p->is_array()) {
    for (const nlohmann::json &one : *p) {
      if (one.is_string() && out.problems.size() < 1000) {
        out.problems.push_back(one.get<std::string>().substr(0, 1024));
      }
    }
  }
  session->close();
  return {};
}

core::Status retention_host(const core::HostConfig &host, std::int64_t now, std::string_view operator_name,
                            HostOutcome &out) {
  std::optional<remote::HostClient> session;
  MAILDSAR_TRY(ask_host(host, nullptr, operator_name, out, &session));
  MAILDSAR_TRY_ASSIGN(nlohmann::json answer, session->request({{"op", "retention"}, {"now", now}}));
  const auto sources = answer.find("sources");
  const auto errors = answer.find("scan_errors");
  if (sources == answer.end() || !sources->is_object() || errors == answer.end() || !errors->is_array() ||
      !std::ranges::all_of(sources->items(), [](const auto &kv) {
        return kv.value().is_object() && kv.value().contains("actions") && kv.value()["actions"].is_object();
      })) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("host {}: the answer to retention has no sources and scan_errors", host.name));
  }
  for (const nlohmann::json &e : *errors) {
    if (e.is_string() && out.problems.size() < 1000) {
      out.problems.push_back(e.get<std::string>().substr(0, 1024));
    }
  }
  out.retention = std::move(answer);
  session->close();
  return {};
}

} // namespace

std::vector<HostOutcome> retention_hosts(const core::Config &config, std::int64_t now,
                                         const std::vector<std::string> &allowed_missing, std::string_view operator_name) {
  return ask_each_host(
      config, allowed_missing,
      [&](const core::HostConfig &host, HostOutcome &o) { return retention_host(host, now, operator_name, o); },
      [](HostOutcome & /*o*/) {});
}

std::vector<HostOutcome> trace_hosts(const core::Config &config, const std::string &message_id,
                                     const std::vector<std::string> &allowed_missing, std::string_view operator_name) {
  return ask_each_host(
      config, allowed_missing,
      [&](const core::HostConfig &host, HostOutcome &o) { return trace_host(host, message_id, operator_name, o); },
      [](HostOutcome &o) {
        o.hits = nlohmann::json::array();
        o.hops = nlohmann::json::array();
      });
}

std::vector<HostVerify> verify_hosts(const core::Config &config, const query::SubjectProfile &subject) {
  std::vector<HostVerify> outcomes(config.hosts.size());
  for_each_host(config.hosts.size(), [&](std::size_t i) {
    const core::HostConfig &host = config.hosts[i];
    HostVerify &o = outcomes[i];
    o.name = host.name;
    if (auto r = verify_host(host, subject, o); r) {
      o.verified = true;
    } else {
      o.error = r.error().message;
      o.clean = false;
    }
  });
  return outcomes;
}

void add_host_options(boost::program_options::options_description &desc) {
  desc.add_options()("allow-missing-host", boost::program_options::value<std::vector<std::string>>()->composing(),
                     "go on without this configured host if it cannot be searched (repeatable); the output "
                     "says it was not searched");
}

core::Result<std::vector<std::string>> allowed_missing_hosts(const boost::program_options::variables_map &vm,
                                                            const core::Config &config) {
  std::vector<std::string> names;
  if (vm.count("allow-missing-host") != 0) {
    names = vm["allow-missing-host"].as<std::vector<std::string>>();
  }
  for (const std::string &n : names) {
    if (std::ranges::none_of(config.hosts, [&](const core::HostConfig &h) { return h.name == n; })) {
      return core::fail(core::ErrorCode::usage, fmt::format("--allow-missing-host {}: no such host in the config", n),
                        "the config's \"hosts\" names the hosts");
    }
  }
  return names;
}

std::vector<HostOutcome> query_hosts(const core::Config &config, const query::SubjectProfile *subject,
                                     const std::vector<std::string> &allowed_missing, std::string_view operator_name) {
  return ask_each_host(
      config, allowed_missing,
      [&](const core::HostConfig &host, HostOutcome &o) { return ask_host(host, subject, operator_name, o); },
      [](HostOutcome &o) { o.hits = nlohmann::json::array(); });
}

std::vector<HostExport> export_from_hosts(const core::Config &config, const query::SubjectProfile &subject,
                                         const HostExportOptions &options,
                                         const std::vector<std::string> &allowed_missing,
                                         const std::string &hosts_dir) {
  std::vector<HostExport> outcomes;
  for (const core::HostConfig &host : config.hosts) {
    HostExport o;
    o.name = host.name;
    o.folder = hosts_dir + "/" + host.name;
    if (auto r = export_host(host, subject, options, o); r) {
      o.exported = true;
    } else {
      o.error = r.error().message;
      o.allowed_missing = std::ranges::find(allowed_missing, host.name) != allowed_missing.end();
    }
    outcomes.push_back(std::move(o));
  }
  return outcomes;
}

bool refuse_missing_hosts(Output &out, const std::vector<HostOutcome> &outcomes, std::string_view missed,
                          std::string_view refusal) {
  bool failed = false;
  for (const HostOutcome &h : outcomes) {
    if (!h.searched) {
      failed = failed || !h.allowed_missing;
      out.diag(h.allowed_missing ? "warning" : "error",
               h.allowed_missing ? fmt::format("{}; NOT {} (--allow-missing-host {})", h.error, missed, h.name) : h.error);
    }
  }
  if (failed) {
    out.diag("error", std::string(refusal));
    out.diag("hint", "fix the host, or go on without it knowingly: --allow-missing-host NAME");
    if (out.json()) {
      out.json_line(hosts_summary_json(outcomes, false));
    }
  }
  return failed;
}

nlohmann::json hosts_summary_json(const std::vector<HostOutcome> &outcomes, bool complete) {
  nlohmann::json hosts = nlohmann::json::array();
  nlohmann::json not_searched = nlohmann::json::array();
  for (const HostOutcome &o : outcomes) {
    nlohmann::json h{{"name", o.name},
                     {"searched", o.searched},
                     {"reachable", o.reachable},
                     {"stale", o.stale},
                     {"items", o.hits.size()},
                     {"index_age_seconds", o.index_age_seconds ? nlohmann::json(*o.index_age_seconds) : nlohmann::json(nullptr)}};
    if (!o.searched) {
      h["error"] = o.error;
      h["allowed_missing"] = o.allowed_missing;
      not_searched.push_back(o.name);
    }
    hosts.push_back(std::move(h));
  }
  return nlohmann::json{{"schema", "maildsar.hosts"},
                        {"version", 1},
                        {"complete", complete},
                        {"not_searched", not_searched},
                        {"hosts", hosts}};
}

} // namespace maildsar::cli
