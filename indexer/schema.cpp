// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/schema.hpp"

#include "core/hash.hpp"

#include <fmt/format.h>

#include <charconv>
#include <optional>

namespace maildsar::index::schema {

std::string prefix_for(std::string_view field_name, connectors::Role role) {
  const Field &f = field(field_name);
  if (f.scope == Scope::global) {
    return std::string(f.prefix);
  }
  std::string p(f.prefix);
  p += role_code(role);
  p += ':';
  return p;
}

std::string prefix_for(std::string_view field_name) { return std::string(field(field_name).prefix); }

std::string unique_term(std::string_view source, std::string_view locator_key) {
  std::string t = "Q";
  t += source;
  t += ':';
  t += core::sha256_hex(locator_key);
  return t;
}

std::string file_term(std::string_view source, std::string_view path) {
  std::string key(source);
  key += ':';
  key += path;
  return "XFILE:" + core::sha256_hex(key);
}

std::string truncated_term() { return prefix_for("truncated") + "1"; }

std::string log_block_term() { return prefix_for("log-block") + "1"; }

std::string suppressed_term(std::string_view request) { return prefix_for("suppressed") + std::string(request); }

std::string block_term(std::string_view term) {
  for (const char *keep : {"file", "source", "store", "log-block", "truncated", "suppressed"}) {
    if (term.starts_with(field(keep).prefix)) {
      return std::string(term);
    }
  }
  // The first 3 bytes (24 bits) of the SHA-256, as bytes: a fraction of the size of 12 hex digits
  // in the termlist and the postlist keys, where these terms are most of the log index. Terms that
  // share 24 bits share a posting list: a query then reads a few more blocks, never fewer.
  const std::string hex = core::sha256_hex(term);
  std::string out(field("block-hash").prefix);
  const auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (std::size_t i = 0; i < 2 * k_block_hash_bytes; i += 2) {
    out.push_back(static_cast<char>((nibble(hex[i]) << 4) | nibble(hex[i + 1])));
  }
  return out;
}

std::string message_id_term(std::string_view lowered_message_id) {
  return lowered_message_id.size() <= k_max_identity_bytes
             ? prefix_for("message-id") + std::string(lowered_message_id)
             : prefix_for("message-id") + "#" + core::sha256_hex(lowered_message_id);
}

std::string any_role_term(std::string_view kind_field, std::string_view value) {
  const Field &f = field(kind_field);
  if (value.size() <= k_max_identity_bytes) {
    return std::string(f.prefix) + std::string(value);
  }
  if (f.name == "email") {
    return std::string(field("email-hash").prefix) + core::sha256_hex(value);
  }
  return std::string(f.prefix) + "#" + core::sha256_hex(value);
}

std::string role_term(std::string_view kind_role_field, connectors::Role role,
                      std::string_view value) {
  std::string p = prefix_for(kind_role_field, role);
  if (value.size() <= k_max_identity_bytes) {
    return p + std::string(value);
  }
  return p + "#" + core::sha256_hex(value);
}

bool is_older_schema(std::string_view version) {
  const auto number = [](std::string_view v) -> std::optional<unsigned> {
    unsigned n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    return ec == std::errc() && end == v.data() + v.size() && !v.empty() ? std::optional<unsigned>(n) : std::nullopt;
  };
  const std::optional<unsigned> have = number(version);
  const std::optional<unsigned> want = number(k_schema_version);
  return have && want && *have < *want;
}

core::Status check_metadata(std::string_view path, std::string_view version,
                            std::string_view features) {
  if (version == k_schema_version && features == k_features) {
    return {};
  }
  if (is_older_schema(version)) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("{}: the index was built by an older maildsar (schema version {}, this one "
                                  "reads {})",
                                  path, version, k_schema_version),
                      "run maildsar index: it rebuilds the index from the stores");
  }
  if (version != k_schema_version) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("{}: index schema version '{}' does not match this program's '{}'",
                                  path, version, k_schema_version),
                      "run maildsar index --full");
  }
  return core::fail(core::ErrorCode::data,
                    fmt::format("{}: index features '{}' do not match this program's '{}'", path,
                                features, k_features),
                    "run maildsar index --full");
}

} // namespace maildsar::index::schema
