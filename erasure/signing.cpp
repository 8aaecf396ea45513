// SPDX-License-Identifier: GPL-3.0-or-later
#include "erasure/signing.hpp"

#include "core/fs.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
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

core::Result<Pkey> load_key(const std::string &path, KeyKind kind) {
  MAILDSAR_TRY_ASSIGN(std::string pem, core::read_file(path, 64 * 1024));
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

} // namespace

std::string approval_message(std::string_view manifest_hash, std::string_view operator_name) {
  return fmt::format("maildsar approval v1\nmanifest {}\noperator {}\n", manifest_hash, operator_name);
}

core::Result<std::string> sign_ed25519(const std::string &private_key_path, std::string_view message) {
  MAILDSAR_TRY_ASSIGN(Pkey key, load_key(private_key_path, KeyKind::private_key));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::size_t size = 0;
  const auto *data = reinterpret_cast<const unsigned char *>(message.data());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size, data, message.size()) != 1) {
    return core::fail(core::ErrorCode::internal, "OpenSSL: cannot sign with " + private_key_path);
  }
  std::vector<unsigned char> sig(size);
  if (EVP_DigestSign(ctx.get(), sig.data(), &size, data, message.size()) != 1) {
    return core::fail(core::ErrorCode::internal, "OpenSSL: cannot sign with " + private_key_path);
  }
  sig.resize(size);
  return to_hex(sig);
}

core::Result<bool> verify_ed25519(const std::string &public_key_path, std::string_view message,
                                  std::string_view signature_hex) {
  MAILDSAR_TRY_ASSIGN(Pkey key, load_key(public_key_path, KeyKind::public_key));
  std::vector<unsigned char> sig;
  if (!from_hex(signature_hex, sig) || sig.empty()) {
    return false;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return core::fail(core::ErrorCode::internal, "OpenSSL: cannot verify with " + public_key_path);
  }
  return EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), reinterpret_cast<const unsigned char *>(message.data()),
                          message.size()) == 1;
}

} // namespace maildsar::erasure
