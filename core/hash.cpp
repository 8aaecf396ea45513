// SPDX-License-Identifier: GPL-3.0-or-later
// SHA-256 and HMAC-SHA-256 with Nettle. Nettle is loaded anyway (libarchive uses it); OpenSSL's
// libcrypto cost every start of the program ~3 ms of relocations alone, and only the signing
// module (erasure/signing_module.cpp) needs it now.
#include "core/hash.hpp"

#include <nettle/hmac.h>
#include <nettle/sha2.h>

#include <array>

namespace maildsar::core {

namespace {

std::string hex_of(const std::array<std::uint8_t, SHA256_DIGEST_SIZE> &md) {
  return to_hex(std::string_view(reinterpret_cast<const char *>(md.data()), md.size()));
}

} // namespace

struct Sha256::Impl {
  sha256_ctx ctx{};
  Impl() { sha256_init(&ctx); }
};

Sha256::Sha256() : m_impl(std::make_unique<Impl>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256 &&) noexcept = default;
Sha256 &Sha256::operator=(Sha256 &&) noexcept = default;

void Sha256::update(std::string_view bytes) {
  sha256_update(&m_impl->ctx, bytes.size(), reinterpret_cast<const std::uint8_t *>(bytes.data()));
}

std::string Sha256::hex_digest() {
  std::array<std::uint8_t, SHA256_DIGEST_SIZE> md{};
  sha256_digest(&m_impl->ctx, md.size(), md.data());
  return hex_of(md);
}

std::string sha256_hex(std::string_view bytes) {
  sha256_ctx ctx; // on the stack: the log indexer hashes every transaction and every block term
  sha256_init(&ctx);
  sha256_update(&ctx, bytes.size(), reinterpret_cast<const std::uint8_t *>(bytes.data()));
  std::array<std::uint8_t, SHA256_DIGEST_SIZE> md{};
  sha256_digest(&ctx, md.size(), md.data());
  return hex_of(md);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  hmac_sha256_ctx ctx;
  hmac_sha256_set_key(&ctx, key.size(), reinterpret_cast<const std::uint8_t *>(key.data()));
  hmac_sha256_update(&ctx, message.size(), reinterpret_cast<const std::uint8_t *>(message.data()));
  std::array<std::uint8_t, SHA256_DIGEST_SIZE> md{};
  hmac_sha256_digest(&ctx, md.size(), md.data());
  return hex_of(md);
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
