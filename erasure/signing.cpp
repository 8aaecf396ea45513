// SPDX-License-Identifier: GPL-3.0-or-later
#include "erasure/signing.hpp"

#include "core/fs.hpp"
#include "core/hash.hpp"

#include "core/module.hpp"
#include "erasure/sign_module.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <sys/stat.h>

#ifndef MAILDSAR_SIGN_MODULE_BUILD_PATH
#error "MAILDSAR_SIGN_MODULE_BUILD_PATH must name the module in the build tree"
#endif
#ifndef MAILDSAR_SIGN_MODULE_INSTALL_RELATIVE
#error "MAILDSAR_SIGN_MODULE_INSTALL_RELATIVE must name the installed module relative to the program"
#endif
#ifndef MAILDSAR_SIGN_MODULE_INSTALL_PATH
#error "MAILDSAR_SIGN_MODULE_INSTALL_PATH must name the installed module"
#endif

#ifdef MAILDSAR_SIGN_LINKED
extern "C" int maildsar_sign_call(const maildsar::erasure::SignRequest *request) noexcept;
#endif

namespace maildsar::erasure {

namespace {

core::Result<maildsar_sign_call_fn> module_call() {
#ifdef MAILDSAR_SIGN_LINKED
  return &maildsar_sign_call;
#else
  static const core::Result<void *> loaded = core::module_function(
      {"the signing module (OpenSSL)", "MAILDSAR_SIGN_MODULE", MAILDSAR_SIGN_MODULE_INSTALL_RELATIVE,
       MAILDSAR_SIGN_MODULE_BUILD_PATH, MAILDSAR_SIGN_MODULE_INSTALL_PATH},
      "maildsar_sign_abi", MAILDSAR_SIGN_ABI, "maildsar_sign_call");
  MAILDSAR_TRY_ASSIGN(void *fn, loaded);
  return reinterpret_cast<maildsar_sign_call_fn>(fn);
#endif
}

enum class KeyKind { private_key, public_key };

/**
 * Runs `request` in the module. `what` names the key for messages: a key that is not an
 * Ed25519 key of `kind` is ErrorCode::data with how to make one.
 */
core::Status call(SignRequest request, KeyKind kind, const std::string &what) {
  MAILDSAR_TRY_ASSIGN(maildsar_sign_call_fn fn, module_call());
  std::string error;
  request.error = &error;
  switch (fn(&request)) {
  case k_sign_ok:
    return {};
  case k_sign_bad_key:
    return core::fail(core::ErrorCode::data,
                      fmt::format("{}: not an Ed25519 {} key in PEM form", what,
                                  kind == KeyKind::private_key ? "private" : "public"),
                      "create one with: openssl genpkey -algorithm ed25519 -out KEY.pem");
  default:
    return core::fail(core::ErrorCode::internal, fmt::format("{} ({})", error, what));
  }
}

core::Result<std::string> read_key(const std::string &path) {
  return core::read_file(path, 64 * 1024);
}

bool from_hex(std::string_view hex, std::string &out) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    return -1;
  };
  if (hex.size() % 2 != 0) {
    return false;
  }
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

/** Hex signature of `message` by the private key in `pem`. */
core::Result<std::string> sign_with(std::string_view pem, std::string_view message, const std::string &what) {
  std::string signature;
  SignRequest request;
  request.op = SignOp::sign;
  request.key_pem = pem;
  request.message = message;
  request.out = &signature;
  MAILDSAR_TRY(call(request, KeyKind::private_key, what));
  return core::to_hex(signature);
}

/**
 * Whether `signature_hex` signs `message` under the public key in `pem`. A signature that is not
 * hex is false, but the key is still checked: a bad key is an error either way.
 */
core::Result<bool> verify_with(std::string_view pem, std::string_view message, std::string_view signature_hex,
                               const std::string &what) {
  std::string signature;
  if (!from_hex(signature_hex, signature)) {
    signature.clear(); // Ed25519 verifies no signature of a length other than 64 bytes
  }
  bool valid = false;
  SignRequest request;
  request.op = SignOp::verify;
  request.key_pem = pem;
  request.message = message;
  request.signature = signature;
  request.valid = &valid;
  MAILDSAR_TRY(call(request, KeyKind::public_key, what));
  return valid;
}

/** What the installation signs: the certificate without its "signature" member, canonical. */
std::string certificate_message(const nlohmann::json &certificate) {
  nlohmann::json body = certificate;
  body.erase("signature");
  return "maildsar certificate v1\n" + body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace

std::string approval_message(std::string_view manifest_hash, std::string_view operator_name) {
  return fmt::format("maildsar approval v1\nmanifest {}\noperator {}\n", manifest_hash, operator_name);
}

core::Result<std::string> sign_ed25519(const std::string &private_key_path, std::string_view message) {
  MAILDSAR_TRY_ASSIGN(std::string pem, read_key(private_key_path));
  return sign_with(pem, message, private_key_path);
}

core::Result<bool> verify_ed25519(const std::string &public_key_path, std::string_view message,
                                  std::string_view signature_hex) {
  MAILDSAR_TRY_ASSIGN(std::string pem, read_key(public_key_path));
  return verify_with(pem, message, signature_hex, public_key_path);
}

std::string installation_key_path(const std::string &state_dir) {
  return (std::filesystem::path(state_dir) / std::string(k_installation_key_file)).string();
}

core::Result<std::string> installation_public_key(const std::string &state_dir) {
  const std::string path = installation_key_path(state_dir);
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
    MAILDSAR_TRY(core::ensure_private_dir(state_dir));
    std::string fresh;
    SignRequest request;
    request.op = SignOp::generate;
    request.out = &fresh;
    MAILDSAR_TRY(call(request, KeyKind::private_key, "the installation's certificate key"));
    MAILDSAR_TRY_ASSIGN(core::NewFile file, core::NewFile::create(path, 0600));
    MAILDSAR_TRY(file.write(fresh));
    if (auto st = file.commit(); !st && st.error().code != core::ErrorCode::cant_create) {
      return std::unexpected(st.error()); // cant_create: another run made it first; that one counts
    }
  }
  if (auto st = core::lstat_file(path); !st || !S_ISREG(st->mode) || (st->mode & 077U) != 0) {
    return core::fail(core::ErrorCode::permission,
                      fmt::format("{}: the certificate key must be a regular file of mode 0600", path));
  }
  MAILDSAR_TRY_ASSIGN(std::string pem, read_key(path));
  std::string public_pem;
  SignRequest request;
  request.op = SignOp::public_of;
  request.key_pem = pem;
  request.out = &public_pem;
  MAILDSAR_TRY(call(request, KeyKind::private_key, path));
  return public_pem;
}

core::Status sign_certificate(const std::string &state_dir, nlohmann::json &certificate) {
  MAILDSAR_TRY_ASSIGN(std::string public_pem, installation_public_key(state_dir));
  const std::string path = installation_key_path(state_dir);
  MAILDSAR_TRY_ASSIGN(std::string pem, read_key(path));
  certificate.erase("signature");
  MAILDSAR_TRY_ASSIGN(std::string value, sign_with(pem, certificate_message(certificate), path));
  certificate["signature"] = nlohmann::json{{"algorithm", "ed25519"},
                                            {"public_key", public_pem},
                                            {"public_key_sha256", core::sha256_hex(public_pem)},
                                            {"value", value}};
  return {};
}

core::Result<CertificateCheck> check_certificate(const nlohmann::json &certificate) {
  CertificateCheck out;
  const auto sig = certificate.find("signature");
  if (!certificate.is_object() || sig == certificate.end() || !sig->is_object() ||
      sig->value("algorithm", "") != "ed25519" || !sig->contains("public_key") || !(*sig)["public_key"].is_string() ||
      !sig->contains("value") || !(*sig)["value"].is_string()) {
    return core::fail(core::ErrorCode::data, "not a signed maildsar certificate (no Ed25519 signature)");
  }
  out.public_key = (*sig)["public_key"].get<std::string>();
  out.public_key_sha256 = core::sha256_hex(out.public_key);
  MAILDSAR_TRY_ASSIGN(out.valid, verify_with(out.public_key, certificate_message(certificate),
                                             (*sig)["value"].get<std::string>(), "the certificate's public key"));
  return out;
}

} // namespace maildsar::erasure
