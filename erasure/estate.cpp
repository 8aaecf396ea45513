// SPDX-License-Identifier: GPL-3.0-or-later
#include "erasure/estate.hpp"

#include "core/audit.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "erasure/signing.hpp"
#include "erasure/state.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <set>

namespace maildsar::erasure {

using nlohmann::json;

namespace {

constexpr std::string_view k_schema = "maildsar.estate-manifest";
constexpr int k_version = 1;
/** The journal step (in this host's erasure state) that says its agent planned a slice. */
constexpr std::string_view k_agent_plan_step = "agent-plan";

bool is_hex64(const std::string &s) {
  return s.size() == 64 && std::ranges::all_of(s, [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

/** The "schema" string of `j`, or "" (never throws on another type, unlike json::value). */
std::string schema_of(const json &j) {
  if (!j.is_object()) {
    return {};
  }
  const auto it = j.find("schema");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

core::Error bad(std::string_view what, std::string_view why) {
  return core::Error{core::ErrorCode::data, fmt::format("{}: {}", what, why), "", std::nullopt};
}

core::Result<std::string> text_of(const json &j, const char *key, std::string_view what, std::size_t max = 4096) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string &>().size() > max) {
    return std::unexpected(bad(what, fmt::format("\"{}\" must be a string", key)));
  }
  return it->get<std::string>();
}

core::Status only_keys(const json &j, std::initializer_list<std::string_view> keys, std::string_view what) {
  for (const auto &[k, v] : j.items()) {
    if (std::ranges::find(keys, k) == keys.end()) {
      return std::unexpected(bad(what, fmt::format("unknown key \"{}\"", k.substr(0, 64))));
    }
  }
  return {};
}

} // namespace

json EstateBinding::to_json() const {
  json host_list = json::array();
  for (const EstateHost &h : hosts) {
    host_list.push_back({{"name", h.name}, {"agent_host", h.agent_host}, {"slice_sha256", h.slice_sha256}, {"items", h.items}});
  }
  json missing = json::array();
  for (const NotSearched &n : not_searched) {
    missing.push_back({{"name", n.name}, {"error", n.error}});
  }
  json j{{"schema", k_schema}, {"version", k_version},   {"request", request},     {"created", created},
         {"planner", planner}, {"hosts", host_list}, {"not_searched", missing}};
  if (planner_os) {
    j["planner_os"] = {{"uid", planner_os->uid}, {"user", planner_os->name}};
  }
  return j;
}

std::string EstateBinding::compute_hash() const { return core::sha256_hex(to_json().dump()); }

core::Result<EstateBinding> parse_estate_binding(const json &j, std::string_view what) {
  if (schema_of(j) != k_schema) {
    return std::unexpected(bad(what, "not a maildsar estate manifest"));
  }
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<std::int64_t>() != k_version) {
    return std::unexpected(bad(what, "estate manifest version is not supported"));
  }
  MAILDSAR_TRY(only_keys(j, {"schema", "version", "request", "created", "planner", "planner_os", "hosts", "not_searched"}, what));
  EstateBinding b;
  MAILDSAR_TRY_ASSIGN(b.request, text_of(j, "request", what));
  MAILDSAR_TRY_ASSIGN(b.created, text_of(j, "created", what));
  MAILDSAR_TRY_ASSIGN(b.planner, text_of(j, "planner", what));
  if (auto os = j.find("planner_os"); os != j.end()) {
    if (!os->is_object() || !os->contains("uid") || !(*os)["uid"].is_number_unsigned() ||
        (*os)["uid"].get<std::uint64_t>() > 0xffffffffULL) {
      return std::unexpected(bad(what, "\"planner_os\" must be {\"uid\", \"user\"}"));
    }
    MAILDSAR_TRY(only_keys(*os, {"uid", "user"}, what));
    MAILDSAR_TRY_ASSIGN(std::string user, text_of(*os, "user", what, 256));
    b.planner_os = core::OsUser{static_cast<std::uint32_t>((*os)["uid"].get<std::uint64_t>()), user};
  }
  const auto hosts = j.find("hosts");
  const auto missing = j.find("not_searched");
  if (hosts == j.end() || !hosts->is_array() || hosts->size() > 10000 || missing == j.end() || !missing->is_array() ||
      missing->size() > 10000) {
    return std::unexpected(bad(what, "\"hosts\" and \"not_searched\" must be lists"));
  }
  std::set<std::string> names;
  for (const json &h : *hosts) {
    if (!h.is_object()) {
      return std::unexpected(bad(what, "a host must be an object"));
    }
    MAILDSAR_TRY(only_keys(h, {"name", "agent_host", "slice_sha256", "items"}, what));
    EstateHost host;
    MAILDSAR_TRY_ASSIGN(host.name, text_of(h, "name", what, 255));
    MAILDSAR_TRY_ASSIGN(host.agent_host, text_of(h, "agent_host", what, 255));
    MAILDSAR_TRY_ASSIGN(host.slice_sha256, text_of(h, "slice_sha256", what, 64));
    if (!h.contains("items") || !h["items"].is_number_unsigned() || !is_hex64(host.slice_sha256) || host.name.empty()) {
      return std::unexpected(bad(what, "a host needs a name, a slice_sha256 (64 hex) and a count of items"));
    }
    host.items = h["items"].get<std::uint64_t>();
    if (!names.insert(host.name).second) {
      return std::unexpected(bad(what, fmt::format("host {} is named twice", host.name)));
    }
    b.hosts.push_back(std::move(host));
  }
  for (const json &n : *missing) {
    if (!n.is_object()) {
      return std::unexpected(bad(what, "a host not searched must be an object"));
    }
    MAILDSAR_TRY(only_keys(n, {"name", "error"}, what));
    NotSearched ns;
    MAILDSAR_TRY_ASSIGN(ns.name, text_of(n, "name", what, 255));
    MAILDSAR_TRY_ASSIGN(ns.error, text_of(n, "error", what));
    if (!names.insert(ns.name).second) {
      return std::unexpected(bad(what, fmt::format("host {} is named twice", ns.name)));
    }
    b.not_searched.push_back(std::move(ns));
  }
  return b;
}

json EstateManifest::to_json() const {
  json j = binding.to_json();
  j["estate_sha256"] = hash;
  json s = json::object();
  for (const auto &[name, m] : slices) {
    s[name] = m.to_json();
  }
  j["slices"] = std::move(s);
  return j;
}

bool looks_like_estate_manifest(std::string_view text) {
  return schema_of(json::parse(text, nullptr, false)) == k_schema;
}

core::Result<EstateManifest> parse_estate_manifest(std::string_view text, const std::string &path) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) {
    return std::unexpected(bad(path, "not JSON"));
  }
  const auto stated = j.find("estate_sha256");
  const auto slices = j.find("slices");
  if (stated == j.end() || !stated->is_string() || slices == j.end() || !slices->is_object()) {
    return std::unexpected(bad(path, "an estate manifest needs \"estate_sha256\" and \"slices\""));
  }
  EstateManifest m;
  m.hash = stated->get<std::string>();
  json binding = j;
  binding.erase("estate_sha256");
  binding.erase("slices");
  MAILDSAR_TRY_ASSIGN(m.binding, parse_estate_binding(binding, path));
  if (m.binding.compute_hash() != m.hash) {
    return core::fail(core::ErrorCode::data, path + ": the estate manifest was altered after planning (hash mismatch)",
                      "plan again and have the new manifest approved");
  }
  if (slices->size() != m.binding.hosts.size()) {
    return std::unexpected(bad(path, "it must hold exactly one slice per host it names"));
  }
  for (const EstateHost &h : m.binding.hosts) {
    const auto s = slices->find(h.name);
    if (s == slices->end()) {
      return std::unexpected(bad(path, fmt::format("no slice of host {}", h.name)));
    }
    MAILDSAR_TRY_ASSIGN(Manifest slice, parse_manifest(s->dump(), fmt::format("{}: slice of host {}", path, h.name)));
    if (slice.hash != h.slice_sha256 || slice.request != m.binding.request) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("{}: the slice of host {} is not the one the manifest names", path, h.name),
                        "plan again and have the new manifest approved");
    }
    m.slices.emplace(h.name, std::move(slice));
  }
  return m;
}

core::Status save_estate_manifest(const EstateManifest &manifest, const std::string &path) {
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
    return core::fail(core::ErrorCode::cant_create, path + ": exists; will not overwrite a manifest",
                      "choose another --out file");
  }
  return core::write_file_atomic(path, manifest.to_json().dump(2) + "\n");
}

core::Result<std::vector<Approval>> approve_estate(const core::Config &config, const EstateManifest &manifest,
                                                   const std::string &operator_name,
                                                   const std::string &signing_key_path,
                                                   const core::OsUser &approver_os) {
  const EstateBinding &b = manifest.binding;
  MAILDSAR_TRY_ASSIGN(ErasureDb db, ErasureDb::open(config));
  MAILDSAR_TRY_ASSIGN(std::vector<Approval> before, db.approvals(manifest.hash));
  MAILDSAR_TRY_ASSIGN(std::string signature, approval_signature(config, db, manifest.hash, b.planner, b.planner_os,
                                                                operator_name, signing_key_path, approver_os));
  MAILDSAR_TRY(db.add_approval(manifest.hash, operator_name, now_iso(), signature, approver_os));
  MAILDSAR_TRY_ASSIGN(std::vector<Approval> after, db.approvals(manifest.hash));
  const auto signed_by_me = [&](const std::vector<Approval> &list) {
    return std::ranges::count_if(list, [&](const Approval &a) { return a.operator_name == operator_name && !a.signature.empty(); });
  };
  if (after.size() != before.size() || signed_by_me(after) != signed_by_me(before)) {
    json hosts = json::array();
    for (const EstateHost &h : b.hosts) {
      hosts.push_back(h.name);
    }
    MAILDSAR_TRY_ASSIGN(core::AuditLog audit, core::AuditLog::open(config.state_dir));
    MAILDSAR_TRY(audit.append("approve", operator_name, b.request,
                              json{{"manifest_sha256", manifest.hash},
                                   {"estate", true},
                                   {"hosts", hosts},
                                   {"approver_os_user", approver_os.name},
                                   {"signed", !signature.empty()},
                                   {"approvals", after.size()}}));
  }
  return after;
}

core::Status remember_agent_slice(const core::Config &config, const Manifest &slice, const std::string &client_operator) {
  MAILDSAR_TRY_ASSIGN(ErasureDb db, ErasureDb::open(config));
  MAILDSAR_TRY(db.put_manifest(slice)); // plan() stored it already; idempotent
  return db.set_journal(slice.hash, std::string(k_agent_plan_step), "done",
                        json{{"client_operator", client_operator}, {"time", now_iso()}}.dump());
}

core::Result<Manifest> agent_slice(const core::Config &config, const std::string &slice_hash) {
  MAILDSAR_TRY_ASSIGN(ErasureDb db, ErasureDb::open(config));
  MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> planned, db.journal(slice_hash, std::string(k_agent_plan_step)));
  MAILDSAR_TRY_ASSIGN(std::optional<std::string> stored, db.manifest_body(slice_hash));
  if (!planned || !stored) {
    return core::fail(core::ErrorCode::no_input,
                      fmt::format("slice {} was not planned by this host's agent", slice_hash.substr(0, 16)));
  }
  return parse_manifest(*stored, fmt::format("slice {}", slice_hash.substr(0, 16)));
}

core::Result<EraseReport> erase_slice(const core::Config &config, const EstateBinding &binding, const Manifest &slice,
                                      const std::vector<Approval> &approvals, const std::string &client_operator,
                                      const EraseOptions &options) {
  const std::string short_hash = slice.hash.substr(0, 16);
  if (slice.hash != slice.compute_hash()) {
    return core::fail(core::ErrorCode::data, "the slice was altered after planning; nothing was changed");
  }
  MAILDSAR_TRY_ASSIGN(ErasureDb db, ErasureDb::open(config));
  // Only what this host's agent planned itself, and exactly that.
  MAILDSAR_TRY_ASSIGN(std::optional<JournalEntry> planned, db.journal(slice.hash, std::string(k_agent_plan_step)));
  MAILDSAR_TRY_ASSIGN(std::optional<std::string> stored, db.manifest_body(slice.hash));
  if (!planned || !stored) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("slice {} was not planned by this host's agent; nothing was changed", short_hash),
                      "plan across hosts on the DPO host (maildsar plan), approve, then erase");
  }
  if (json::parse(*stored, nullptr, false) != slice.to_json()) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("slice {} differs from the one this host planned; nothing was changed", short_hash));
  }
  const std::string estate_hash = binding.compute_hash();
  if (binding.request != slice.request ||
      std::ranges::none_of(binding.hosts, [&](const EstateHost &h) { return h.slice_sha256 == slice.hash; })) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("estate manifest {} does not name slice {}; nothing was changed",
                                  estate_hash.substr(0, 16), short_hash));
  }
  EraseOptions with = options;
  with.carried = EraseOptions::Carried{estate_hash, binding.planner, approvals, client_operator};
  return erase(config, slice, with);
}

} // namespace maildsar::erasure
