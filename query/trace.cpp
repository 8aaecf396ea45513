// SPDX-License-Identifier: GPL-3.0-or-later
#include "query/trace.hpp"
#include "query/index_reader.hpp"
#include "query/log_blocks.hpp"

#include "connectors/item_reader.hpp"
#include "core/hash.hpp"
#include "indexer/document.hpp"
#include "indexer/index_store.hpp"
#include "indexer/indexer.hpp"
#include "indexer/schema.hpp"

#include <fmt/format.h>
#include <xapian.h>

#include <algorithm>
#include <filesystem>
#include <tuple>

namespace maildsar::query {

namespace schema = index::schema;
using connectors::StoreKind;
using connectors::mime::ReceivedField;

namespace {


bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_blank(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

bool icontains(std::string_view hay, std::string_view needle) {
  return lower_ascii(hay).find(lower_ascii(needle)) != std::string::npos;
}

/** A Received field before its ';': words at the top level and (nested) comments. */
struct Token {
  enum class Kind { word, comment } kind = Kind::word;
  std::string text; // a comment without its outer parentheses
};

std::vector<Token> tokenize(std::string_view text) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (is_blank(text[i])) {
      ++i;
      continue;
    }
    if (text[i] == '(') {
      int depth = 0;
      std::size_t j = i;
      for (; j < text.size(); ++j) {
        if (text[j] == '\\') {
          ++j;
          continue;
        }
        if (text[j] == '(') {
          ++depth;
        } else if (text[j] == ')' && --depth == 0) {
          break;
        }
      }
      std::size_t end = std::min(j, text.size());
      out.push_back(Token{Token::Kind::comment, std::string(text.substr(i + 1, end - i - 1))});
      i = end + 1;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && !is_blank(text[j]) && text[j] != '(') {
      ++j;
    }
    out.push_back(Token{Token::Kind::word, std::string(text.substr(i, j - i))});
    i = j;
  }
  return out;
}

bool is_clause_keyword(std::string_view w) {
  for (std::string_view k : {"from", "by", "via", "with", "id", "for"}) {
    if (iequals(w, k)) {
      return true;
    }
  }
  return false;
}

/** The word after `keyword` and the comments up to the next clause. */
struct Clause {
  std::string word;
  std::vector<std::string> comments;
  std::string text; // word and comments as written, for IP lookup
  bool present = false;
};

Clause clause(const std::vector<Token> &tokens, std::string_view keyword) {
  Clause c;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].kind != Token::Kind::word || !iequals(tokens[i].text, keyword)) {
      continue;
    }
    c.present = true;
    std::size_t j = i + 1;
    if (j < tokens.size() && tokens[j].kind == Token::Kind::word &&
        !is_clause_keyword(tokens[j].text)) {
      c.word = tokens[j].text;
      c.text = c.word;
      ++j;
    }
    for (; j < tokens.size(); ++j) {
      if (tokens[j].kind == Token::Kind::word) {
        if (is_clause_keyword(tokens[j].text)) {
          break;
        }
        c.text += " " + tokens[j].text; // a stray word (e.g. "[203.0.113.45]" without comment)
        continue;
      }
      c.comments.push_back(tokens[j].text);
      c.text += " (" + tokens[j].text + ")";
    }
    break;
  }
  return c;
}

/** The value of "key=value" in a comment ("version=TLS1_3"), "" if absent. */
std::string keyed_value(std::string_view comment, std::string_view key) {
  std::string low = lower_ascii(comment);
  std::string k = lower_ascii(key) + "=";
  std::size_t at = low.find(k);
  while (at != std::string::npos && at > 0 && !is_blank(low[at - 1]) && low[at - 1] != '(') {
    at = low.find(k, at + 1);
  }
  if (at == std::string::npos) {
    return {};
  }
  std::size_t start = at + k.size();
  std::size_t end = start;
  while (end < comment.size() && !is_blank(comment[end]) && comment[end] != ')' &&
         comment[end] != ';') {
    ++end;
  }
  return std::string(comment.substr(start, end - start));
}

/** The word that follows `word` in `text` ("using TLSv1.3 with cipher X": "using" -> "TLSv1.3"). */
std::string word_after(std::string_view text, std::string_view word) {
  std::string low = lower_ascii(text);
  std::string w = lower_ascii(word);
  std::size_t at = 0;
  while ((at = low.find(w, at)) != std::string::npos) {
    bool starts = at == 0 || is_blank(low[at - 1]) || low[at - 1] == '(';
    std::size_t after = at + w.size();
    if (starts && after < low.size() && is_blank(low[after])) {
      std::size_t start = after;
      while (start < text.size() && is_blank(text[start])) {
        ++start;
      }
      std::size_t end = start;
      while (end < text.size() && !is_blank(text[end]) && text[end] != ')' && text[end] != '(') {
        ++end;
      }
      return std::string(text.substr(start, end - start));
    }
    at = after;
  }
  return {};
}

bool looks_like_tls_version(std::string_view s) {
  return icontains(s, "tls") || icontains(s, "ssl");
}

/** TLS as the field states it, "" when it says nothing about TLS. */
std::string tls_of(const std::vector<Token> &tokens, const std::string &protocol) {
  std::vector<std::string> parts;
  auto add = [&](std::string s) {
    if (!s.empty() && std::find(parts.begin(), parts.end(), s) == parts.end()) {
      parts.push_back(std::move(s));
    }
  };
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const Token &t = tokens[i];
    if (t.kind == Token::Kind::comment) {
      // Sendmail, Gmail: "(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=NO)"
      std::string version = keyed_value(t.text, "version");
      if (looks_like_tls_version(version)) {
        add(version);
        add(keyed_value(t.text, "cipher"));
      }
      // Postfix: "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) ...)"
      std::string using_version = word_after(t.text, "using");
      if (looks_like_tls_version(using_version)) {
        add(using_version);
        add(word_after(t.text, "cipher"));
      }
      // Exim: "with esmtps (TLS1.3) tls TLS_AES_256_GCM_SHA384"
      std::string_view bare = trim(t.text);
      if (bare.find(' ') == std::string_view::npos && looks_like_tls_version(bare) &&
          bare.size() <= 16) {
        add(std::string(bare));
      }
    } else if (iequals(t.text, "tls") && i + 1 < tokens.size() &&
               tokens[i + 1].kind == Token::Kind::word && !is_clause_keyword(tokens[i + 1].text)) {
      add(tokens[i + 1].text);
    }
  }
  if (parts.empty()) {
    // RFC 3848: ESMTPS, ESMTPSA, LMTPS, UTF8SMTPS... are "with TLS"
    std::string p = lower_ascii(protocol);
    if (p.ends_with("smtps") || p.ends_with("smtpsa") || p.ends_with("lmtps") ||
        p.ends_with("lmtpsa")) {
      add(protocol);
    }
  }
  std::string out;
  for (const std::string &s : parts) {
    out += (out.empty() ? "" : " ") + s;
  }
  return out;
}

// ---- the index side ----

std::string message_id_term(const std::string &mid) { return schema::message_id_term(lower_ascii(mid)); }

core::Result<std::vector<Hit>> find_by_message_id(const core::Config &config, const std::string &mid) {
  const std::string term = message_id_term(mid);
  return read_index<Hit>(config, [&](Xapian::Database &db) { return lookup_term(config, db, term); });
}

bool is_message_store(StoreKind kind) {
  return kind == StoreKind::maildir || kind == StoreKind::mbox || kind == StoreKind::quarantine ||
         kind == StoreKind::emlfolder || kind == StoreKind::postfix_queue || kind == StoreKind::exim_spool ||
         kind == StoreKind::archive;
}

} // namespace

std::string normalise_message_id(std::string_view text) {
  std::string_view s = trim(text);
  if (s.starts_with('<')) {
    s.remove_prefix(1);
  }
  if (s.ends_with('>')) {
    s.remove_suffix(1);
  }
  return std::string(trim(s));
}

Hop parse_received(const ReceivedField &field) {
  Hop hop;
  hop.raw = field.value;
  hop.date = field.date;
  std::string_view before = field.value;
  if (auto semicolon = before.rfind(';'); semicolon != std::string_view::npos) {
    before = before.substr(0, semicolon);
  }
  std::vector<Token> tokens = tokenize(before);
  Clause from = clause(tokens, "from");
  Clause by = clause(tokens, "by");
  Clause with = clause(tokens, "with");
  hop.from = from.word;
  hop.by = by.word;
  hop.protocol = with.word;
  // The client's IP: the connection's address in the "from" clause's comment (TCP-info,
  // "(host.example [203.0.113.45])", RFC 5321 §4.4), else an address literal given as its name
  // ("from [203.0.113.45]"); a field without a "from" clause names none.
  auto first_ip_in = [&](std::string_view text) -> std::string {
    for (const std::string &ip : field.ips) {
      if (text.find(ip) != std::string_view::npos) {
        return ip;
      }
    }
    return {};
  };
  for (const std::string &comment : from.comments) {
    if (hop.ip.empty()) {
      hop.ip = first_ip_in(comment);
    }
  }
  if (hop.ip.empty() && from.present) {
    hop.ip = first_ip_in(from.text);
  }
  hop.tls = tls_of(tokens, hop.protocol);
  return hop;
}

std::vector<Hop> hops_from(const std::vector<ReceivedField> &fields) {
  std::vector<Hop> hops;
  hops.reserve(fields.size());
  for (auto it = fields.rbegin(); it != fields.rend(); ++it) {
    Hop hop = parse_received(*it);
    hop.index = hops.size() + 1;
    hops.push_back(std::move(hop));
  }
  return hops;
}

void join_queue_ids(std::vector<TraceCopy> &copies) {
  for (TraceCopy &queued : copies) {
    const connectors::Locator &q = queued.hit.locator;
    if ((q.store != StoreKind::postfix_queue && q.store != StoreKind::exim_spool) || q.queue_id.empty()) {
      continue;
    }
    queued.same_queue_id.clear();
    for (const TraceCopy &log : copies) {
      if (log.hit.locator.store == StoreKind::maillog && log.hit.locator.queue_id == q.queue_id) {
        queued.same_queue_id.push_back(log.hit.id);
      }
    }
  }
}

core::Result<Trace> trace(const core::Config &config, std::string_view message_id) {
  return trace(config, message_id, MessageReader(connectors::read_message));
}

core::Result<Trace> trace(const core::Config &config, std::string_view message_id,
                          const MessageReader &reader) {
  Trace out;
  out.message_id = normalise_message_id(message_id);
  if (out.message_id.empty()) {
    return core::fail(core::ErrorCode::usage, "no Message-ID given",
                      "maildsar trace '<20231114100000.1234@mx1.example.com>'");
  }
  MAILDSAR_TRY_ASSIGN(std::vector<Hit> hits, find_by_message_id(config, out.message_id));
  for (Hit &hit : hits) {
    TraceCopy copy;
    copy.arrived = hit.date;
    if (is_message_store(hit.locator.store)) {
      auto bytes = reader(hit.locator);
      if (!bytes) {
        out.problems.push_back(fmt::format("{}: {}", hit.locator.path, bytes.error().message));
      } else if (auto fields = connectors::mime::received_fields(*bytes); !fields) {
        out.problems.push_back(fmt::format("{}: {}", hit.locator.path, fields.error().message));
      } else {
        if (!fields->empty() && fields->front().date) {
          copy.arrived = fields->front().date; // the newest field: arrival in this store
        }
        copy.hops = hops_from(*fields);
      }
    }
    copy.hit = std::move(hit);
    out.copies.push_back(std::move(copy));
  }
  auto order = [](const TraceCopy &c) {
    return std::tuple<bool, std::int64_t, const std::string &, const std::string &, std::uint64_t,
                      std::uint64_t>(!c.arrived.has_value(), c.arrived.value_or(0),
                                     c.hit.locator.source, c.hit.locator.path,
                                     c.hit.locator.offset, c.hit.locator.node_id);
  };
  std::sort(out.copies.begin(), out.copies.end(),
            [&](const TraceCopy &a, const TraceCopy &b) { return order(a) < order(b); });
  join_queue_ids(out.copies);
  const TraceCopy *longest = nullptr;
  for (const TraceCopy &c : out.copies) {
    if (longest == nullptr || c.hops.size() > longest->hops.size()) {
      longest = &c;
    }
  }
  if (longest != nullptr) {
    out.hops = longest->hops;
  }
  return out;
}

} // namespace maildsar::query
