// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/hash.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <stdexcept>

namespace maildsar::core {

struct Sha256::Impl {
  EVP_MD_CTX *ctx = nullptr;
  Impl() : ctx(EVP_MD_CTX_new()) {
    if (ctx == nullptr || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) {
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
  Sha256 h;
  h.update(bytes);
  return h.hex_digest();
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
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    out.push_back(k_digits[c >> 4]);
    out.push_back(k_digits[c & 0x0f]);
  }
  return out;
}

} // namespace maildsar::core
