// SPDX-License-Identifier: GPL-3.0-or-later
// The identity normaliser (addresses, names, phones, IPs) and the address tokeniser it shares
// with redaction (index::address_spans), on the whole input as one raw value and as free text.
#include "connectors/item.hpp"
#include "fuzz/fuzz_support.hpp"
#include "indexer/identity.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace index = maildsar::index;
using maildsar::fuzz::require;

extern "C" int LLVMFuzzerInitialize(int * /*argc*/, char *** /*argv*/) {
  require(index::Normalizer::load_phone_module().has_value(), "the phone module loads");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  static const index::Normalizer normalizer{index::NormalizeOptions{"+-", "GB"}};
  const std::string_view text = maildsar::fuzz::as_view(data, size);

  if (auto email = normalizer.email(text)) {
    require(normalizer.email(*email) == email, "a normalised address normalises to itself");
  }
  if (auto ip = normalizer.ip(text)) {
    require(normalizer.ip(*ip) == ip, "a canonical IP normalises to itself");
  }
  if (auto phone = normalizer.phone(text)) {
    require(!phone->empty() && phone->front() == '+', "a phone number is E.164");
  }
  std::vector<std::string> tokens = normalizer.name_tokens(text);
  std::vector<std::vector<std::string>> variants = normalizer.name_token_variants(text);
  require(variants.size() == tokens.size(), "one variant list per name token");

  for (const index::TextSpan &span : index::address_spans(text)) {
    require(span.begin < span.end && span.end <= text.size(), "a span lies inside the text");
  }
  std::vector<index::Identity> found;
  normalizer.extract_from_text(text, maildsar::connectors::Role::body, found);
  normalizer.extract_emails_from_text(text, maildsar::connectors::Role::header, "X-Fuzz", found);
  return 0;
}
