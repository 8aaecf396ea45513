// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/secret.hpp"
#include "erasure/erasure.hpp"
#include "indexer/identity.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <set>
#include <utility>

namespace maildsar::erasure {

using nlohmann::json;

namespace {

constexpr std::string_view k_schema = "maildsar.manifest";
constexpr int k_manifest_version = 1;

constexpr std::array<std::pair<Action, std::string_view>, 5> k_actions{{
    {Action::erase, "delete"},
    {Action::redact, "redact"},
    {Action::retain, "retain"},
    {Action::manual, "manual"},
    {Action::convert, "convert"},
}};

json locator_json(const connectors::Locator &l) {
  json j{{"source", l.source}, {"store", connectors::to_string(l.store)}, {"path", l.path}};
  switch (l.store) {
  case connectors::StoreKind::mbox:
    j["offset"] = l.offset;
    j["length"] = l.length;
    break;
  case connectors::StoreKind::pst:
    j["folder"] = l.folder;
    j["node_id"] = l.node_id;
    break;
  case connectors::StoreKind::maillog:
    j["queue_id"] = l.queue_id;
    j["lines"] = l.lines;
    break;
  case connectors::StoreKind::quarantine:
  case connectors::StoreKind::emlfolder:
    if (l.length > 0) {
      j["offset"] = l.offset;
      j["length"] = l.length;
    }
    break;
  case connectors::StoreKind::postfix_queue:
  case connectors::StoreKind::exim_spool:
    j["folder"] = l.folder; // the queue: deferred, hold, ... / input
    j["queue_id"] = l.queue_id;
    break;
  case connectors::StoreKind::archive:
    j["member"] = l.member;
    if (!l.folder.empty()) {
      j["folder"] = l.folder;
    }
    if (l.node_id != 0) {
      j["node_id"] = l.node_id; // an item of a PST member
    }
    if (l.length > 0) {
      j["offset"] = l.offset;
      j["length"] = l.length;
    }
    break;
  case connectors::StoreKind::maildir:
    j["folder"] = l.folder;
    if (!l.mark.empty()) {
      j["mark"] = l.mark;
    }
    break;
  }
  return j;
}

core::Result<connectors::Locator> locator_from_json(const json &j) {
  connectors::Locator l;
  l.source = j.at("source").get<std::string>();
  auto store = connectors::store_kind_from_string(j.at("store").get<std::string>());
  if (!store) {
    return core::fail(core::ErrorCode::data, "unknown store '" + j.at("store").get<std::string>() + "'");
  }
  l.store = *store;
  l.path = j.at("path").get<std::string>();
  l.folder = j.value("folder", std::string());
  l.mark = j.value("mark", std::string());
  if (!l.mark.empty() && (l.store != connectors::StoreKind::maildir ||
                          (l.mark != "stray" && l.mark != "tmp"))) {
    return core::fail(core::ErrorCode::data, "locator mark '" + l.mark + "' is not a Maildir stray or tmp mark");
  }
  l.offset = j.value("offset", std::uint64_t{0});
  l.length = j.value("length", std::uint64_t{0});
  l.node_id = j.value("node_id", std::uint64_t{0});
  l.queue_id = j.value("queue_id", std::string());
  l.member = j.value("member", std::string());
  if (l.store == connectors::StoreKind::archive && l.member.empty()) {
    return core::fail(core::ErrorCode::data, "archive locator without a member");
  }
  if (auto it = j.find("lines"); it != j.end()) {
    l.lines = it->get<std::vector<std::uint64_t>>();
  }
  if (l.path.empty() || l.path.front() != '/') {
    return core::fail(core::ErrorCode::data, "locator path must be absolute");
  }
  return l;
}

json body_json(const Manifest &m) {
  json items = json::array();
  for (const ManifestItem &it : m.items) {
    json j{{"id", it.id},
           {"action", to_string(it.action)},
           {"reason", it.reason},
           {"locator", locator_json(it.locator)},
           {"sha256", it.sha256},
           {"file",
            {{"dev", it.file.dev}, {"inode", it.file.ino}, {"size", it.file.size}, {"mtime_ns", it.file.mtime_ns}}}};
    if (!it.until.empty()) {
      j["until"] = it.until;
    }
    if (!it.instructions.empty()) {
      j["instructions"] = it.instructions;
    }
    if (!it.convert_to.empty()) {
      j["convert_to"] = it.convert_to;
    }
    if (!it.changes.empty()) {
      j["changes"] = it.changes;
    }
    items.push_back(std::move(j));
  }
  json subject = json::array();
  for (const KeyedIdentifier &k : m.subject) {
    subject.push_back({{"kind", k.kind}, {"hash", k.hash}});
  }
  json body{{"schema", k_schema},
            {"version", k_manifest_version},
            {"request", m.request},
            {"created", m.created},
            {"planner", m.planner},
            {"subject", subject},
            {"policy", m.policy},
            {"index_version", m.index_version},
            {"tool_version", m.tool_version},
            {"items", items}};
  if (m.planner_os) {
    // Only when known: a manifest written before keeps its hash.
    body["planner_os"] = {{"uid", m.planner_os->uid}, {"user", m.planner_os->name}};
  }
  return body;
}

} // namespace

std::string_view to_string(Action action) {
  for (const auto &[a, name] : k_actions) {
    if (a == action) {
      return name;
    }
  }
  return "?";
}

std::optional<Action> action_from_string(std::string_view name) {
  for (const auto &[a, n] : k_actions) {
    if (n == name) {
      return a;
    }
  }
  return std::nullopt;
}

std::string Manifest::compute_hash() const { return core::sha256_hex(body_json(*this).dump()); }

json Manifest::to_json() const {
  json j = body_json(*this);
  j["manifest_sha256"] = hash;
  return j;
}

core::Result<Manifest> parse_manifest(std::string_view text, const std::string &path) {
  Manifest m;
  std::string stated;
  try {
    json j = json::parse(text);
    if (!j.is_object() || j.value("schema", std::string()) != k_schema) {
      return core::fail(core::ErrorCode::data, path + ": not a maildsar manifest");
    }
    if (j.value("version", 0) != k_manifest_version) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("{}: manifest version {} is not supported", path, j.value("version", 0)));
    }
    m.request = j.at("request").get<std::string>();
    m.created = j.at("created").get<std::string>();
    m.planner = j.at("planner").get<std::string>();
    if (auto os = j.find("planner_os"); os != j.end()) {
      m.planner_os = core::OsUser{os->at("uid").get<std::uint32_t>(), os->at("user").get<std::string>()};
    }
    for (const json &k : j.at("subject")) {
      m.subject.push_back(KeyedIdentifier{k.at("kind").get<std::string>(), k.at("hash").get<std::string>()});
    }
    m.policy = j.at("policy");
    m.index_version = j.at("index_version").get<std::string>();
    m.tool_version = j.at("tool_version").get<std::string>();
    std::size_t n = 0;
    for (const json &ij : j.at("items")) {
      ManifestItem it;
      it.id = ij.at("id").get<std::string>();
      auto action = action_from_string(ij.at("action").get<std::string>());
      if (!action) {
        return core::fail(core::ErrorCode::data, fmt::format("{}: item {}: unknown action '{}'", path, n,
                                                             ij.at("action").get<std::string>()));
      }
      it.action = *action;
      it.reason = ij.at("reason").get<std::string>();
      it.until = ij.value("until", std::string());
      it.instructions = ij.value("instructions", std::string());
      it.convert_to = ij.value("convert_to", std::string());
      if (auto changes = ij.find("changes"); changes != ij.end()) {
        it.changes = changes->get<std::vector<std::string>>();
      }
      auto loc = locator_from_json(ij.at("locator"));
      if (!loc) {
        return std::unexpected(loc.error().with_context(fmt::format("{}: item {}: ", path, n)));
      }
      it.locator = std::move(*loc);
      if (it.action == Action::convert &&
          (it.locator.store != connectors::StoreKind::pst || it.convert_to.empty() || it.convert_to.front() != '/')) {
        return core::fail(core::ErrorCode::data,
                          fmt::format("{}: item {}: 'convert' needs a PST item and an absolute convert_to", path, n));
      }
      it.sha256 = ij.at("sha256").get<std::string>();
      const json &f = ij.at("file");
      it.file = FileIdentity{f.at("dev").get<std::uint64_t>(), f.at("inode").get<std::uint64_t>(),
                             f.at("size").get<std::uint64_t>(), f.at("mtime_ns").get<std::int64_t>()};
      m.items.push_back(std::move(it));
      ++n;
    }
    stated = j.at("manifest_sha256").get<std::string>();
  } catch (const json::exception &e) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: malformed manifest: {}", path, e.what()));
  }
  m.hash = m.compute_hash();
  if (m.hash != stated) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("{}: manifest was altered: its content hashes to {}, it states {}", path,
                                  m.hash, stated),
                      "plan again and have the new manifest approved");
  }
  return m;
}

core::Result<Manifest> load_manifest(const std::string &path) {
  MAILDSAR_TRY_ASSIGN(std::string text, core::read_file(path, 1ULL << 30));
  return parse_manifest(text, path);
}

core::Status save_manifest(const Manifest &manifest, const std::string &path) {
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
    return core::fail(core::ErrorCode::cant_create, path + ": exists; will not overwrite a manifest",
                      "choose another --out file");
  }
  return core::write_file_atomic(path, manifest.to_json().dump(2) + "\n");
}

core::Result<std::vector<KeyedIdentifier>>
keyed_subject(const core::Config &config, const query::SubjectProfile &subject, const std::string &key) {
  index::Normalizer norm(
      index::NormalizeOptions{config.identity.subaddress_separators, config.identity.phone_region});
  std::set<std::pair<std::string, std::string>> seen;
  std::vector<KeyedIdentifier> out;
  auto add = [&](std::string_view kind, const std::string &value) {
    if (seen.emplace(std::string(kind), value).second) {
      out.push_back(KeyedIdentifier{std::string(kind), core::keyed_hash(key, kind, value)});
    }
  };
  for (const std::string &e : subject.emails) {
    auto n = norm.email(e);
    if (!n) {
      return core::fail(core::ErrorCode::usage, fmt::format("'{}' is not an e-mail address", e));
    }
    add("email", *n);
  }
  if (!subject.phones.empty()) {
    MAILDSAR_TRY(index::Normalizer::load_phone_module());
  }
  for (const std::string &p : subject.phones) {
    auto n = norm.phone(p);
    if (!n) {
      return core::fail(core::ErrorCode::usage, fmt::format("'{}' is not a phone number", p));
    }
    add("phone", *n);
  }
  for (const std::string &ip : subject.ips) {
    auto n = norm.ip(ip);
    if (!n) {
      return core::fail(core::ErrorCode::usage, fmt::format("'{}' is not an IP address", ip));
    }
    add("ip", *n);
  }
  for (const std::string &name : subject.names) {
    std::vector<std::string> tokens = norm.name_tokens(name);
    if (tokens.empty()) {
      return core::fail(core::ErrorCode::usage, fmt::format("'{}' is not a name", name));
    }
    std::ranges::sort(tokens);
    std::string joined;
    for (const std::string &t : tokens) {
      joined += (joined.empty() ? "" : " ") + t;
    }
    add("name", joined);
  }
  return out;
}

} // namespace maildsar::erasure
