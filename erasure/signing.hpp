// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Ed25519 signatures on approvals and certificates: who approved which manifest, provably.
// OpenSSL does the signing in a module loaded on first use (erasure/sign_module.hpp).

#include "core/result.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace maildsar::erasure {

/** What an approver signs: the manifest's hash and the approver's name. */
[[nodiscard]] std::string approval_message(std::string_view manifest_hash, std::string_view operator_name);

/** Hex Ed25519 signature of `message` with the PEM private key in `private_key_path`. */
[[nodiscard]] core::Result<std::string> sign_ed25519(const std::string &private_key_path, std::string_view message);

/** True when `signature_hex` is a valid Ed25519 signature of `message` by the PEM public key. */
[[nodiscard]] core::Result<bool> verify_ed25519(const std::string &public_key_path, std::string_view message,
                                                std::string_view signature_hex);

/** The installation's certificate key in the state directory (Ed25519, PEM, 0600). */
inline constexpr std::string_view k_installation_key_file = "certificate-key.pem";
[[nodiscard]] std::string installation_key_path(const std::string &state_dir);
/** The PEM public key of the installation's certificate key, made on first use. */
[[nodiscard]] core::Result<std::string> installation_public_key(const std::string &state_dir);

/**
 * Signs an erasure certificate with the installation's key: adds "signature": {"algorithm":
 * "ed25519", "public_key": PEM, "public_key_sha256", "value": hex} over "maildsar certificate
 * v1\n" + the certificate without "signature" as compact JSON (keys sorted).
 */
[[nodiscard]] core::Status sign_certificate(const std::string &state_dir, nlohmann::json &certificate);

struct CertificateCheck {
  bool valid = false;          // the signature verifies under the key the certificate names
  std::string public_key;      // that key (PEM)
  std::string public_key_sha256;
};
/** Checks a certificate's own signature. ErrorCode::data when it has none or it is malformed. */
[[nodiscard]] core::Result<CertificateCheck> check_certificate(const nlohmann::json &certificate);

} // namespace maildsar::erasure
