// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/hash.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <stdexcept>

namespace maildsar::core {

namespace {

/** SHA-256 fetched from the default provider once: an implicit fetch (EVP_sha256() in
    EVP_DigestInit_ex) looks the algorithm up under a lock on every call, which cost more than
    hashing a log line. */
const EVP_MD *sha256_md() {
  static EVP_MD *const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) {
    throw std::runtime_error("OpenSSL: cannot fetch SHA-256");
  }
  return md;
}

} // namespace

struct Sha256::Impl {
  EVP_MD_CTX *ctx = nullptr;
  Impl() : ctx(EVP_MD_CTX_new()) {
    if (ctx == nullptr || EVP_DigestInit_ex(ctx, sha256_md(), nullptr) != 1) {
      EVP_MD_CTX_free(ctx);
      throw std::runtime_error("OpenSSL: cannot initialise SHA-256");
    }
  }
  ~Impl() { EVP_MD_CTX_free(ctx); }
  Impl(const Impl &) = delete;
  Impl &operator=(const Impl &) = delete;
};

Sha256::Sha256() : m_impl(std::make_unique<Impl>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256 &&) noexcept = default;
Sha256 &Sha256::operator=(Sha256 &&) noexcept = default;

void Sha256::update(std::string_view bytes) {
  EVP_DigestUpdate(m_impl->ctx, bytes.data(), bytes.size());
}

std::string Sha256::hex_digest() {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(m_impl->ctx, md.data(), &len);
  return to_hex(std::string_view(reinterpret_cast<const char *>(md.data()), len));
}

std::string sha256_hex(std::string_view bytes) {
  // One context per thread, re-initialised: no allocation per call (the log indexer hashes every
  // transaction and every block term).
  struct Ctx {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    Ctx() = default;
    Ctx(const Ctx &) = delete;
    Ctx &operator=(const Ctx &) = delete;
    ~Ctx() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Ctx local;
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (local.ctx == nullptr || EVP_DigestInit_ex(local.ctx, sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(local.ctx, bytes.data(), bytes.size()) != 1 ||
      EVP_DigestFinal_ex(local.ctx, md.data(), &len) != 1) {
    throw std::runtime_error("OpenSSL: SHA-256 failed");
  }
  return to_hex(std::string_view(reinterpret_cast<const char *>(md.data()), len));
}

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char *>(message.data()), message.size(), md.data(), &len);
  return to_hex(std::string_view(reinterpret_cast<const char *>(md.data()), len));
}

std::string to_hex(std::string_view bytes) {
  static constexpr char k_digits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  std::size_t o = 0;
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    out[o++] = k_digits[c >> 4];
    out[o++] = k_digits[c & 0x0f];
  }
  return out;
}

} // namespace maildsar::core
