// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * The contract between erasure/signing.cpp and the signing module (signing_openssl.cpp,
 * libmaildsar-sign.so), loaded on first use: OpenSSL's libcrypto holds ~4,000 symbol and
 * ~17,000 relative relocations, ~3 ms of every start of the program, and only approving,
 * erasing, verifying and checking a certificate sign or verify (core/module.hpp). Keys and
 * signatures are Ed25519 in the PEM forms `openssl genpkey -algorithm ed25519` writes. Both
 * sides are built from the same tree, so the request may hold C++ types; bump
 * MAILDSAR_SIGN_ABI whenever it changes: the loader refuses a module of another ABI.
 */
#include <string>
#include <string_view>

#define MAILDSAR_SIGN_ABI 1

namespace maildsar::erasure {

enum class SignOp {
  sign,      // key = private PEM; *out = the raw 64-byte signature of message
  verify,    // key = public PEM; *valid = whether signature (raw bytes) signs message
  public_of, // key = private PEM; *out = the PEM of its public half
  generate,  // *out = the PEM of a fresh private key (PKCS#8, unencrypted)
};

/** One call into the module. */
struct SignRequest {
  SignOp op = SignOp::sign;
  std::string_view key_pem;
  std::string_view message;
  std::string_view signature;
  std::string *out = nullptr;
  bool *valid = nullptr;
  std::string *error = nullptr; // why not, when the call returns nonzero
};

/** What a call returns. */
inline constexpr int k_sign_ok = 0;
inline constexpr int k_sign_bad_key = 1; // not an Ed25519 key of the kind the operation needs
inline constexpr int k_sign_failed = 2;  // OpenSSL failed; *error says how

} // namespace maildsar::erasure

extern "C" {
typedef int (*maildsar_sign_abi_fn)();
/** Carries out one request; k_sign_*. Never throws. */
typedef int (*maildsar_sign_call_fn)(const maildsar::erasure::SignRequest *request);
}
