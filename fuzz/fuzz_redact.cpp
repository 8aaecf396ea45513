// SPDX-License-Identifier: GPL-3.0-or-later
// The redaction tokeniser (erasure::Redactor on log lines). The input's first line names the
// subject as "email|name|phone|ip" (each part optional); the identifiers the Normalizer accepts
// become keyed-hash targets as a plan's manifest stores them. Every further line is redacted and
// anonymised; both must keep the line's byte length (logs are patched in place).
#include "core/secret.hpp"
#include "erasure/redact.hpp"
#include "fuzz/fuzz_support.hpp"
#include "indexer/identity.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace index = maildsar::index;
namespace erasure = maildsar::erasure;
using maildsar::fuzz::require;

namespace {

constexpr std::string_view k_key = "0123456789abcdef0123456789abcdef";

std::string_view next_part(std::string_view &rest) {
  std::size_t bar = rest.find('|');
  std::string_view part = rest.substr(0, bar);
  rest = bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1);
  return part;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int * /*argc*/, char *** /*argv*/) {
  require(index::Normalizer::load_phone_module().has_value(), "the phone module loads");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  static const index::Normalizer normalizer{index::NormalizeOptions{}};
  std::string_view input = maildsar::fuzz::as_view(data, size);
  std::size_t newline = input.find('\n');
  std::string_view subject = input.substr(0, newline);
  std::string_view lines =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);

  std::vector<erasure::Target> targets;
  std::string_view rest = subject;
  if (auto email = normalizer.email(next_part(rest))) {
    targets.push_back({"email", maildsar::core::keyed_hash(k_key, "email", *email)});
  }
  if (auto tokens = normalizer.name_tokens(next_part(rest)); !tokens.empty()) {
    std::string value = erasure::name_value(std::move(tokens));
    targets.push_back({"name", maildsar::core::keyed_hash(k_key, "name", value)});
  }
  if (auto phone = normalizer.phone(next_part(rest))) {
    targets.push_back({"phone", maildsar::core::keyed_hash(k_key, "phone", *phone)});
  }
  if (auto ip = normalizer.ip(next_part(rest))) {
    targets.push_back({"ip", maildsar::core::keyed_hash(k_key, "ip", *ip)});
  }
  const erasure::Redactor redactor(std::string(k_key), std::move(targets), normalizer);

  while (!lines.empty()) {
    std::size_t end = lines.find('\n');
    std::string_view line = lines.substr(0, end);
    lines = end == std::string_view::npos ? std::string_view() : lines.substr(end + 1);
    erasure::Redactor::Redacted redacted = redactor.redact(line);
    require(redacted.line.size() == line.size(), "redact keeps the line's byte length");
    erasure::Redactor::Redacted anonymised = redactor.anonymize_all(line);
    require(anonymised.line.size() == line.size(), "anonymize_all keeps the line's byte length");
  }
  return 0;
}
