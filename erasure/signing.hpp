// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Ed25519 signatures on approvals (OpenSSL): who approved which manifest, provably.

#include "core/result.hpp"

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

} // namespace maildsar::erasure
