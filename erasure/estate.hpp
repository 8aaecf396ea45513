// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * Erasure across hosts (issue 15): the DPO host's manifest of an estate spread over hosts. Each
 * host's part (its *slice*) is an ordinary manifest that the host's agent planned from its own
 * config, index, holds and exemptions, and kept in its own state. The estate manifest binds the
 * slices together by their hashes; approvers sign the estate manifest's hash; each host's agent
 * checks those signatures itself, against the approver keys of its own config, before it carries
 * out its slice with its own journal (docs/schemata.md "maildsar.estate-manifest").
 */
#include "core/config.hpp"
#include "core/identity.hpp"
#include "core/result.hpp"
#include "erasure/erasure.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::erasure {

/** One host's slice as the estate manifest names it. */
struct EstateHost {
  std::string name;         // the DPO config's name of the host
  std::string agent_host;   // the host's own name (its agent's hello)
  std::string slice_sha256; // the hash of the slice that host planned
  std::uint64_t items = 0;
  friend bool operator==(const EstateHost &, const EstateHost &) = default;
};

/** A host that could not be searched when planning (--allow-missing-host): nothing of it is planned. */
struct NotSearched {
  std::string name;
  std::string error;
  friend bool operator==(const NotSearched &, const NotSearched &) = default;
};

/**
 * What the estate manifest's hash covers — and so what every approver signs — and what the DPO
 * host sends each agent with its slice: request, creation time, planner (name and OS account on
 * the DPO host), every host with its slice's hash, and the hosts not searched.
 */
struct EstateBinding {
  std::string request;
  std::string created; // ISO 8601 UTC
  std::string planner;
  std::optional<core::OsUser> planner_os;
  std::vector<EstateHost> hosts;
  std::vector<NotSearched> not_searched;

  [[nodiscard]] nlohmann::json to_json() const;
  /** SHA-256 (hex) of to_json() as compact JSON (keys sorted). */
  [[nodiscard]] std::string compute_hash() const;
};

/** Parses a binding object strictly (unknown keys, wrong types: ErrorCode::data naming `what`). */
[[nodiscard]] core::Result<EstateBinding> parse_estate_binding(const nlohmann::json &j, std::string_view what);

/** The DPO host's manifest across hosts: the binding, its hash, and every host's slice in full. */
struct EstateManifest {
  EstateBinding binding;
  std::map<std::string, Manifest> slices; // host name -> its slice
  std::string hash;                       // binding.compute_hash()

  /** The file: the binding, "estate_sha256" and "slices" {host: slice manifest}. */
  [[nodiscard]] nlohmann::json to_json() const;
};

/** Whether `text` claims to be an estate manifest (its "schema"); nothing else is checked. */
[[nodiscard]] bool looks_like_estate_manifest(std::string_view text);

/**
 * Parses an estate manifest. ErrorCode::data when malformed, when its stated hash is not its
 * binding's, when a slice is missing, altered (its own hash) or not the one the binding names.
 */
[[nodiscard]] core::Result<EstateManifest> parse_estate_manifest(std::string_view text, const std::string &path);
/** Writes it atomically with mode 0600; refuses to overwrite an existing file. */
[[nodiscard]] core::Status save_estate_manifest(const EstateManifest &manifest, const std::string &path);

/**
 * `approve` of an estate manifest on the DPO host: the same four-eyes rules as a local approval
 * (never the planner's name or OS account, one OS account counts once), recorded in the DPO
 * host's state under the estate hash, with an audit record. The signature (`signing_key_path`)
 * is over approval_message(estate hash, operator); it is what the hosts verify. Without a key
 * the approval is recorded unsigned (a host refuses it: it cannot check an OS login).
 */
[[nodiscard]] core::Result<std::vector<Approval>> approve_estate(const core::Config &config,
                                                                 const EstateManifest &manifest,
                                                                 const std::string &operator_name,
                                                                 const std::string &signing_key_path,
                                                                 const core::OsUser &approver_os);

/** Remembers, in this host's state, that its agent planned `slice` for a DPO host. */
[[nodiscard]] core::Status remember_agent_slice(const core::Config &config, const Manifest &slice,
                                                const std::string &client_operator);

/**
 * The slice with hash `slice_hash` that this host's agent planned and kept (remember_agent_slice);
 * ErrorCode::no_input when there is none (a hash is not a capability: only what this agent
 * planned is ever shown or erased).
 */
[[nodiscard]] core::Result<Manifest> agent_slice(const core::Config &config, const std::string &slice_hash);

/**
 * A host's agent carries out its slice of an estate manifest: `slice` must be the very manifest
 * this host's agent planned and kept (remember_agent_slice; compared as JSON with the stored one,
 * so also its hash), named in `binding` for this host, for the same request; `approvals` must
 * include at least this host's `erasure.approvals_required` distinct approvers who are not the
 * planner, each signed over approval_message(binding's hash, operator) and verified against
 * this host's own `erasure.approver_keys` (none configured: refused, since an OS login on the
 * DPO host cannot be checked here). Then erase() runs with this host's journal, holds and
 * exemptions, exactly as a local erase. Refusals are ErrorCode::data (nothing is changed).
 */
[[nodiscard]] core::Result<EraseReport> erase_slice(const core::Config &config, const EstateBinding &binding,
                                                    const Manifest &slice, const std::vector<Approval> &approvals,
                                                    const std::string &client_operator, const EraseOptions &options);

} // namespace maildsar::erasure
