// SPDX-License-Identifier: GPL-3.0-or-later
// The Normalizer's members and the extraction of identities from items and free text. The
// normalisation itself is split along its seams (see identity_internal.hpp).
#include "indexer/identity.hpp"

#include "indexer/identity_internal.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace maildsar::index {

using namespace identity_detail;

namespace {

/** extract_from_text compares a new value with the ones it found so far up to this many. */
constexpr std::size_t k_linear_dedupe_limit = 32;

} // namespace

std::string_view to_string(IdentityKind kind) {
  switch (kind) {
  case IdentityKind::email:
    return "email";
  case IdentityKind::name:
    return "name";
  case IdentityKind::phone:
    return "phone";
  case IdentityKind::ip:
    return "ip";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------

Normalizer::Normalizer(NormalizeOptions options)
    : m_impl(std::make_unique<Impl>(std::move(options))) {}
Normalizer::~Normalizer() = default;
Normalizer::Normalizer(Normalizer &&) noexcept = default;
Normalizer &Normalizer::operator=(Normalizer &&) noexcept = default;

std::optional<std::string> Normalizer::email(std::string_view raw) const {
  return m_impl->email(raw);
}

std::optional<std::string> Normalizer::wrapped_email(std::string_view raw) const {
  return m_impl->wrapped_email(raw);
}

std::string_view batv_srs_word(std::string_view text, std::size_t begin, std::size_t end) {
  constexpr std::string_view k_word = "=+-./_";
  while (begin > 0 && (is_alnum(text[begin - 1]) || k_word.find(text[begin - 1]) != std::string_view::npos)) {
    --begin;
  }
  return text.substr(begin, end - begin);
}

std::optional<std::string> Normalizer::phone(std::string_view raw) const {
  return m_impl->phone(raw);
}

std::optional<std::string> Normalizer::ip(std::string_view raw) const { return normalize_ip(raw); }

void Normalizer::extract_from_text(std::string_view text, connectors::Role role,
                                   std::vector<Identity> &out) const {
  // Values found by this call: a linear look-up while they are few (no allocation), a hash set
  // once there are many.
  const std::size_t first = out.size();
  std::unordered_set<std::string> seen;
  const auto seen_key = [](IdentityKind kind, std::string_view value) {
    std::string key(1, static_cast<char>('0' + static_cast<int>(kind)));
    key += value;
    return key;
  };
  const auto emit = [&](IdentityKind kind, std::string value) {
    const std::size_t found = out.size() - first;
    if (found < k_linear_dedupe_limit) {
      for (std::size_t i = first; i < out.size(); ++i) {
        if (out[i].kind == kind && out[i].value == value) {
          return;
        }
      }
    } else {
      if (seen.empty()) {
        for (std::size_t i = first; i < out.size(); ++i) {
          seen.insert(seen_key(out[i].kind, out[i].value));
        }
      }
      if (!seen.insert(seen_key(kind, value)).second) {
        return;
      }
    }
    out.push_back(Identity{kind, role, std::move(value)});
  };

  // Emails and IPs: the spans the redactor replaces too (one tokeniser for both). An address
  // that is a message reference is not indexed (the redactor may still replace it: never less).
  for (const TextSpan &span : address_spans(text)) {
    const std::string_view token = text.substr(span.begin, span.end - span.begin);
    if (span.kind == IdentityKind::email && is_reference(text, token)) {
      continue;
    }
    std::optional<std::string> normalised =
        span.kind == IdentityKind::email ? m_impl->email(token) : normalize_ip(token);
    if (normalised) {
      emit(span.kind, std::move(*normalised));
      if (span.kind == IdentityKind::email) {
        // BATV/SRS: the tokeniser ends a local part at '=', so look at the whole word too.
        if (std::optional<std::string> wrapped =
                m_impl->wrapped_email(batv_srs_word(text, span.begin, span.end))) {
          emit(IdentityKind::email, std::move(*wrapped)); // the sender it wraps
        }
      }
    }
  }
  if (role != connectors::Role::log_from && role != connectors::Role::log_to && role != connectors::Role::log_client &&
      role != connectors::Role::log_user) {
    // Messages only: addresses as list archives hide them ("alice at example.com").
    for (const TextSpan &span : obfuscated_email_spans(text)) {
      if (std::optional<std::string> normalised = m_impl->email(text.substr(span.begin, span.end - span.begin))) {
        emit(IdentityKind::email, std::move(*normalised));
      }
    }
  }
  scan_phones(text, m_impl->region, std::ref(emit)); // by reference: no copy of the closure
}

void Normalizer::extract_emails_from_text(std::string_view text, connectors::Role role,
                                          const std::string &field,
                                          std::vector<Identity> &out) const {
  std::size_t floor = 0;
  std::size_t pos = 0;
  while ((pos = text.find('@', pos)) != std::string_view::npos) {
    std::size_t end = pos + 1;
    if (const std::optional<std::string_view> candidate = email_candidate(text, pos, floor, &end);
        candidate && !is_reference(text, *candidate)) {
      if (std::optional<std::string> normalised = m_impl->email(*candidate)) {
        out.push_back(Identity{IdentityKind::email, role, std::move(*normalised), {}, field});
        if (std::optional<std::string> wrapped = m_impl->wrapped_email(*candidate)) {
          out.push_back(Identity{IdentityKind::email, role, std::move(*wrapped), {}, field});
        }
      }
      // In header values '=' is part of real local parts (SRS, VERP, BATV:
      // "bounces+1-list=lists.example.net@em.example.com", "prvs=0a1b=j.doe@example.com"):
      // the address with it is evidence too (besides the key=value reading above).
      auto begin = static_cast<std::size_t>(candidate->data() - text.data());
      if (begin > floor && text[begin - 1] == '=') {
        while (begin > floor && is_local_ascii(text[begin - 1])) {
          --begin;
        }
        while (text[begin] == '=' || text[begin] == '.') {
          ++begin;
        }
        const std::string_view full =
            text.substr(begin, candidate->size() + static_cast<std::size_t>(candidate->data() - text.data()) - begin);
        if (full.size() > candidate->size() && !is_reference(text, full)) {
          if (std::optional<std::string> normalised = m_impl->email(full)) {
            out.push_back(Identity{IdentityKind::email, role, std::move(*normalised), {}, field});
            if (std::optional<std::string> wrapped = m_impl->wrapped_email(full)) {
              out.push_back(Identity{IdentityKind::email, role, std::move(*wrapped), {}, field});
            }
          }
        }
      }
    }
    floor = end;
    pos = end;
  }
}

std::vector<Identity> Normalizer::extract(const connectors::Item &item) const {
  std::vector<Identity> found;
  for (const connectors::RawAddress &address : item.addresses) {
    std::optional<std::string> normalised;
    if (!address.addr.empty()) {
      normalised = m_impl->email(address.addr);
      if (normalised) {
        found.push_back(Identity{IdentityKind::email, address.role, *normalised, {}, address.field});
        if (std::optional<std::string> wrapped = m_impl->wrapped_email(address.addr)) {
          // A BATV- or SRS-rewritten sender also names the address it wraps (same role).
          found.push_back(Identity{IdentityKind::email, address.role, std::move(*wrapped), {},
                                   address.field});
        }
      }
    }
    if (!address.name.empty() && !m_impl->email(address.name)) {
      const std::string bare = without_addresses(address.name);
      const std::vector<std::string> tokens = fold_name_tokens(bare);
      if (!tokens.empty()) {
        const auto join = [](const std::vector<std::string> &parts) {
          std::string joined;
          for (const std::string &token : parts) {
            if (!joined.empty()) {
              joined.push_back(' ');
            }
            joined += token;
          }
          return joined;
        };
        std::string joined = join(tokens);
        std::string alternate;
        if (may_transliterate(bare)) {
          const std::vector<std::string> spelt = fold_name_tokens(transliterate(bare));
          if (spelt.size() == tokens.size() && spelt != tokens) {
            alternate = join(spelt);
          }
        }
        found.push_back(Identity{IdentityKind::name, address.role, std::move(joined),
                                 std::move(alternate), address.field});
      }
    }
  }
  for (const connectors::RawValue &value : item.ips) {
    if (std::optional<std::string> address = normalize_ip(value.value)) {
      found.push_back(Identity{IdentityKind::ip, value.role, std::move(*address)});
    }
  }
  for (const connectors::RawText &text : item.texts) {
    if (text.scan == connectors::TextScan::addresses) {
      extract_emails_from_text(text.text, text.role, text.field, found);
    } else {
      const std::size_t before = found.size();
      extract_from_text(text.text, text.role, found);
      for (std::size_t i = before; i < found.size() && !text.field.empty(); ++i) {
        found[i].field = text.field; // the attachment an address or phone was seen in
      }
    }
  }
  // Remove duplicates, keeping the first occurrence.
  std::unordered_set<std::string> seen;
  std::vector<Identity> unique;
  unique.reserve(found.size());
  for (Identity &identity : found) {
    std::string key;
    key.push_back(static_cast<char>('0' + static_cast<int>(identity.kind)));
    key.push_back(static_cast<char>('A' + static_cast<int>(identity.role)));
    key += identity.value;
    key.push_back('\0');
    key += identity.field;
    if (seen.insert(std::move(key)).second) {
      unique.push_back(std::move(identity));
    }
  }
  return unique;
}

} // namespace maildsar::index
