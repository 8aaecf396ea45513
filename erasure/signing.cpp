// SPDX-License-Identifier: GPL-3.0-or-later
#include "erasure/signing.hpp"

#include "core/fs.hpp"
#include "core/hash.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <filesystem>
#include <memory>
#include <sys/stat.h>
#include <vector>

namespace maildsar::erasure {

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY *k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX *c) const { EVP_MD_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO *b) const { BIO_free(b); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

enum class KeyKind { private_key, public_key };

core::Result<Pkey> key_of_pem(std::string_view pem, KeyKind kind, const std::string &path) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) {
    return core::fail(core::ErrorCode::internal, "OpenSSL: out of memory");
  }
  Pkey key(kind == KeyKind::private_key ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                                        : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("{}: not an Ed25519 {} key in PEM form", path,
                                  kind == KeyKind::private_key ? "private" : "public"),
                      "create one with: openssl genpkey -algorithm ed25519 -out KEY.pem");
  }
  return key;
}

core::Result<Pkey> load_key(const std::string &path, KeyKind kind) {
  MAILDSAR_TRY_ASSIGN(std::string pem, core::read_file(path, 64 * 1024));
  return key_of_pem(pem, kind, path);
}


std::string to_hex(const std::vector<unsigned char> &bytes) {
  static constexpr char k_digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += k_digits[b >> 4];
    out += k_digits[b & 15];
  }
  return out;
}

bool from_hex(std::string_view hex, std::vector<unsigned char> &out) {
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
    out.push_back(static_cast<unsigned char>(hi * 16 + lo));
  }
  return true;
}

core::Result<std::string> sign_with(EVP_PKEY *key, std::string_view message, const std::string &what) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::size_t size = 0;
  const auto *data = reinterpret_cast<const unsigned char *>(message.data());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size, data, message.size()) != 1) {
    return core::fail(core::ErrorCode::internal, "OpenSSL: cannot sign with " + what);
  }
  std::vector<unsigned char> sig(size);
  if (EVP_DigestSign(ctx.get(), sig.data(), &size, data, message.size()) != 1) {
    return core::fail(core::ErrorCode::internal, "OpenSSL: cannot sign with " + what);
  }
  sig.resize(size);
  return to_hex(sig);
}

core::Result<bool> verify_with(EVP_PKEY *key, std::string_view message, std::string_view signature_hex,
                               const std::string &what);

} // namespace

std::string approval_message(std::string_view manifest_hash, std::string_view operator_name) {
  return fmt::format("maildsar approval v1\nmanifest {}\noperator {}\n", manifest_hash, operator_name);
}

core::Result<std::string> sign_ed25519(const std::string &private_key_path, std::string_view message) {
  MAILDSAR_TRY_ASSIGN(Pkey key, load_key(private_key_path, KeyKind::private_key));
  return sign_with(key.get(), message, private_key_path);
}

namespace {

core::Result<bool> verify_with(EVP_PKEY *key, std::string_view message, std::string_view signature_hex,
                               const std::string &what) {
  std::vector<unsigned char> sig;
  if (!from_hex(signature_hex, sig) || sig.empty()) {
    return false;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key) != 1) {
    return core::fail(core::ErrorCode::internal, "OpenSSL: cannot verify with " + what);
  }
  return EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), reinterpret_cast<const unsigned char *>(message.data()),
                          message.size()) == 1;
}

/** The PEM text of the public half of `key`. */
core::Result<std::string> public_pem_of(EVP_PKEY *key) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return core::fail(core::ErrorCode::internal, "OpenSSL: cannot write a public key");
  }
  char *data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

/** What the installation signs: the certificate without its "signature" member, canonical. */
std::string certificate_message(const nlohmann::json &certificate) {
  nlohmann::json body = certificate;
  body.erase("signature");
  return "maildsar certificate v1\n" + body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace

core::Result<bool> verify_ed25519(const std::string &public_key_path, std::string_view message,
                                  std::string_view signature_hex) {
  MAILDSAR_TRY_ASSIGN(Pkey key, load_key(public_key_path, KeyKind::public_key));
  return verify_with(key.get(), message, signature_hex, public_key_path);
}

std::string installation_key_path(const std::string &state_dir) {
  return (std::filesystem::path(state_dir) / std::string(k_installation_key_file)).string();
}

core::Result<std::string> installation_public_key(const std::string &state_dir) {
  const std::string path = installation_key_path(state_dir);
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
    MAILDSAR_TRY(core::ensure_private_dir(state_dir));
    Pkey fresh(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
    if (!fresh || !bio || PEM_write_bio_PrivateKey(bio.get(), fresh.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
      return core::fail(core::ErrorCode::internal, "OpenSSL: cannot make the installation's certificate key");
    }
    char *data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    MAILDSAR_TRY_ASSIGN(core::NewFile file, core::NewFile::create(path, 0600));
    MAILDSAR_TRY(file.write(std::string_view(data, static_cast<std::size_t>(size))));
    if (auto st = file.commit(); !st && st.error().code != core::ErrorCode::cant_create) {
      return std::unexpected(st.error()); // cant_create: another run made it first; that one counts
    }
  }
  if (auto st = core::lstat_file(path); !st || !S_ISREG(st->mode) || (st->mode & 077U) != 0) {
    return core::fail(core::ErrorCode::permission,
                      fmt::format("{}: the certificate key must be a regular file of mode 0600", path));
  }
  MAILDSAR_TRY_ASSIGN(Pkey key, load_key(path, KeyKind::private_key));
  return public_pem_of(key.get());
}

core::Status sign_certificate(const std::string &state_dir, nlohmann::json &certificate) {
  MAILDSAR_TRY_ASSIGN(std::string public_pem, installation_public_key(state_dir));
  const std::string path = installation_key_path(state_dir);
  MAILDSAR_TRY_ASSIGN(Pkey key, load_key(path, KeyKind::private_key));
  certificate.erase("signature");
  MAILDSAR_TRY_ASSIGN(std::string value, sign_with(key.get(), certificate_message(certificate), path));
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
  MAILDSAR_TRY_ASSIGN(Pkey key, key_of_pem(out.public_key, KeyKind::public_key, "the certificate's public key"));
  MAILDSAR_TRY_ASSIGN(out.valid, verify_with(key.get(), certificate_message(certificate),
                                             (*sig)["value"].get<std::string>(), "the certificate's public key"));
  return out;
}

} // namespace maildsar::erasure
