// SPDX-License-Identifier: GPL-3.0-or-later
// The signing module (libmaildsar-sign.so): Ed25519 with OpenSSL, behind the request of
// erasure/sign_module.hpp. Loaded by erasure/signing.cpp on the first signature made or checked.
#include "erasure/sign_module.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <new>
#include <string>

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
using Bio = std::unique_ptr<BIO, BioFree>;

/** The key in `pem`, or null when it is not an Ed25519 key of that kind. */
Pkey key_of_pem(std::string_view pem, bool is_private) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) {
    return nullptr;
  }
  Pkey key(is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                      : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519) {
    return nullptr;
  }
  return key;
}

std::string bio_text(BIO *bio) {
  char *data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return {data, static_cast<std::size_t>(size)};
}

int failed(const SignRequest &r, const char *what) {
  *r.error = std::string("OpenSSL: ") + what;
  return k_sign_failed;
}

int sign(const SignRequest &r) {
  Pkey key = key_of_pem(r.key_pem, true);
  if (!key) {
    return k_sign_bad_key;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  const auto *data = reinterpret_cast<const unsigned char *>(r.message.data());
  std::size_t size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size, data, r.message.size()) != 1) {
    return failed(r, "cannot sign");
  }
  r.out->assign(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char *>(r.out->data()), &size, data, r.message.size()) !=
      1) {
    return failed(r, "cannot sign");
  }
  r.out->resize(size);
  return k_sign_ok;
}

int verify(const SignRequest &r) {
  Pkey key = key_of_pem(r.key_pem, false);
  if (!key) {
    return k_sign_bad_key;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return failed(r, "cannot verify");
  }
  *r.valid = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char *>(r.signature.data()),
                              r.signature.size(), reinterpret_cast<const unsigned char *>(r.message.data()),
                              r.message.size()) == 1;
  return k_sign_ok;
}

int public_of(const SignRequest &r) {
  Pkey key = key_of_pem(r.key_pem, true);
  if (!key) {
    return k_sign_bad_key;
  }
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
    return failed(r, "cannot write a public key");
  }
  *r.out = bio_text(bio.get());
  return k_sign_ok;
}

int generate(const SignRequest &r) {
  Pkey fresh(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  Bio bio(BIO_new(BIO_s_mem()));
  if (!fresh || !bio ||
      PEM_write_bio_PrivateKey(bio.get(), fresh.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return failed(r, "cannot make an Ed25519 key");
  }
  *r.out = bio_text(bio.get());
  return k_sign_ok;
}

} // namespace

} // namespace maildsar::erasure

extern "C" {

__attribute__((visibility("default"))) int maildsar_sign_abi() { return MAILDSAR_SIGN_ABI; }

__attribute__((visibility("default"))) int maildsar_sign_call(const maildsar::erasure::SignRequest *request) noexcept {
  using maildsar::erasure::SignOp;
  try {
    switch (request->op) {
    case SignOp::sign:
      return maildsar::erasure::sign(*request);
    case SignOp::verify:
      return maildsar::erasure::verify(*request);
    case SignOp::public_of:
      return maildsar::erasure::public_of(*request);
    case SignOp::generate:
      return maildsar::erasure::generate(*request);
    }
    *request->error = "unknown signing operation";
  } catch (const std::bad_alloc &) {
    *request->error = "out of memory";
  } catch (...) {
    *request->error = "unexpected exception";
  }
  return maildsar::erasure::k_sign_failed;
}

} // extern "C"
