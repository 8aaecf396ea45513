// SPDX-License-Identifier: GPL-3.0-or-later
// maildsar certificate verify FILE: an erasure certificate's Ed25519 signature by the
// installation's key (erasure/signing.hpp), so that it stands as evidence on its own.
#include "cli/commands.hpp"
#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "erasure/signing.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <optional>

namespace maildsar::cli {

void certificate_options(po::options_description &desc, po::positional_options_description &pos) {
  desc.add_options() //
      ("certificate-words", po::value<std::vector<std::string>>()->composing(),
       "'verify FILE': check a certificate; 'key': print the installation's public key (PEM)")
      ("public-key", po::value<std::string>(),
       "the installation's public key (PEM) to check the certificate's key against (default: the "
       "key in the config's state directory, when there is one)");
  pos.add("certificate-words", -1);
}

namespace {

/** The PEM of a public key file, as OpenSSL writes it (so that two spellings compare equal). */
core::Result<std::string> public_pem_file(const std::string &path) {
  MAILDSAR_TRY_ASSIGN(std::string pem, core::read_file(path, 64 * 1024));
  // compared as text with the key the certificate embeds (as OpenSSL writes PEM: LF, one final)
  std::string out;
  for (char c : pem) {
    if (c != '\r') {
      out += c;
    }
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  return out + "\n";
}

} // namespace

core::Result<int> run_certificate(Context &ctx) {
  std::vector<std::string> words;
  if (ctx.vm.count("certificate-words") != 0) {
    words = ctx.vm["certificate-words"].as<std::vector<std::string>>();
  }
  if (words.size() == 1 && words[0] == "key") {
    // The public key to hand to whoever checks certificates (auditors, the supervisory authority).
    MAILDSAR_TRY_ASSIGN(core::Config config, ctx.load_config());
    MAILDSAR_TRY_ASSIGN(std::string pem, erasure::installation_public_key(config.state_dir));
    if (ctx.out->json()) {
      ctx.out->json_line(nlohmann::json{{"public_key", pem}, {"public_key_sha256", core::sha256_hex(pem)}});
    } else {
      std::fputs(pem.c_str(), stdout);
    }
    return core::k_exit_ok;
  }
  if (words.size() != 2 || words[0] != "verify") {
    return core::fail(core::ErrorCode::usage,
                      "usage: maildsar certificate verify FILE [--public-key PEM] | maildsar certificate key");
  }
  const std::string &path = words[1];
  MAILDSAR_TRY_ASSIGN(std::string text, core::read_file(path, 16U << 20U));
  nlohmann::json certificate = nlohmann::json::parse(text, nullptr, false);
  if (certificate.is_discarded() || !certificate.is_object() ||
      certificate.value("schema", "") != "maildsar.certificate") {
    return core::fail(core::ErrorCode::data, fmt::format("{}: not a maildsar erasure certificate", path));
  }
  MAILDSAR_TRY_ASSIGN(erasure::CertificateCheck check, erasure::check_certificate(certificate));
  // Whose key: a valid signature proves the certificate unchanged since that key signed it; the
  // key must be the installation's (given, or this state directory's).
  std::optional<std::string> reference;
  std::string reference_from;
  if (ctx.vm.count("public-key") != 0) {
    reference_from = ctx.vm["public-key"].as<std::string>();
    MAILDSAR_TRY_ASSIGN(reference, public_pem_file(reference_from));
  } else if (auto config = ctx.load_config()) {
    const std::string key = erasure::installation_key_path(config->state_dir);
    if (std::error_code ec; std::filesystem::exists(key, ec)) {
      MAILDSAR_TRY_ASSIGN(reference, erasure::installation_public_key(config->state_dir));
      reference_from = key;
    }
  }
  const bool key_matches = reference && *reference == check.public_key;
  const bool ok = check.valid && (!reference || key_matches);
  Output &out = *ctx.out;
  if (out.json()) {
    out.json_line(nlohmann::json{{"certificate", path},
                                 {"request", certificate.value("request", "")},
                                 {"signature_valid", check.valid},
                                 {"public_key_sha256", check.public_key_sha256},
                                 {"key_checked_against", reference ? nlohmann::json(reference_from) : nlohmann::json()},
                                 {"key_matches", reference ? nlohmann::json(key_matches) : nlohmann::json()},
                                 {"valid", ok}});
  } else if (!check.valid) {
    out.line(fmt::format("{}: INVALID: the signature does not verify: the certificate was changed after signing",
                         path));
  } else if (reference && !key_matches) {
    out.line(fmt::format("{}: NOT THIS INSTALLATION'S: signed by key sha256 {}, not by {}", path,
                         check.public_key_sha256, reference_from));
  } else {
    out.line(fmt::format("{}: valid signature of request {} by key sha256 {}{}", path,
                         certificate.value("request", ""), check.public_key_sha256,
                         reference ? " (the key of " + reference_from + ")"
                                   : "; not checked against a trusted copy of the installation's key: "
                                     "compare that fingerprint, or give --public-key"));
  }
  return ok ? core::k_exit_ok : core::k_exit_problem;
}

} // namespace maildsar::cli
