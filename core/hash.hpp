// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace maildsar::core {

/** Incremental SHA-256 (OpenSSL EVP). Move-only. */
class Sha256 {
public:
  Sha256();
  ~Sha256();
  Sha256(Sha256 &&) noexcept;
  Sha256 &operator=(Sha256 &&) noexcept;
  Sha256(const Sha256 &) = delete;
  Sha256 &operator=(const Sha256 &) = delete;

  void update(std::string_view bytes);
  /** Lower-case hex digest; the object must not be updated afterwards. */
  [[nodiscard]] std::string hex_digest();

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

/** Lower-case hex SHA-256 of `bytes`. */
[[nodiscard]] std::string sha256_hex(std::string_view bytes);

/** Lower-case hex HMAC-SHA256 of `message` under `key`. */
[[nodiscard]] std::string hmac_sha256_hex(std::string_view key, std::string_view message);

/** Lower-case hex encoding. */
[[nodiscard]] std::string to_hex(std::string_view bytes);

} // namespace maildsar::core
