// SPDX-License-Identifier: GPL-3.0-or-later
#include "erasure/estate.hpp"

#include "core/hash.hpp"

#include <gtest/gtest.h>

#include <string>

namespace maildsar::erasure {
namespace {

using nlohmann::json;

Manifest slice(const std::string &path) {
  Manifest m;
  m.request = "DSAR-2026-0042";
  m.created = "2026-12-04T09:00:00Z";
  m.planner = "dpo-anna";
  m.subject = {KeyedIdentifier{"email", std::string(64, 'c')}};
  m.index_version = "1";
  m.tool_version = "test";
  ManifestItem item;
  item.id = "id-1";
  item.reason = "message in a mailbox";
  item.locator.source = "mailboxes";
  item.locator.store = connectors::StoreKind::maildir;
  item.locator.path = path;
  item.sha256 = std::string(64, 'd');
  m.items.push_back(item);
  m.hash = m.compute_hash();
  return m;
}

EstateManifest estate() {
  EstateManifest e;
  e.binding.request = "DSAR-2026-0042";
  e.binding.created = "2026-12-04T09:00:00Z";
  e.binding.planner = "dpo-anna";
  e.binding.planner_os = core::OsUser{1000, "anna"};
  for (const char *host : {"imap", "mx1"}) {
    Manifest m = slice(std::string("/srv/") + host + "/Maildir/cur/1");
    e.binding.hosts.push_back(EstateHost{host, std::string(host) + ".example.com", m.hash, m.items.size()});
    e.slices.emplace(host, std::move(m));
  }
  e.binding.not_searched.push_back(NotSearched{"archive", "host archive: unreachable"});
  e.hash = e.binding.compute_hash();
  return e;
}

TEST(EstateManifest, RoundTripsAndItsHashIsThatOfTheBinding) {
  const EstateManifest e = estate();
  auto parsed = parse_estate_manifest(e.to_json().dump(), "m.json");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->hash, e.hash);
  EXPECT_EQ(parsed->binding.hosts, e.binding.hosts);
  EXPECT_EQ(parsed->binding.not_searched, e.binding.not_searched);
  EXPECT_EQ(parsed->binding.planner_os->uid, 1000U);
  EXPECT_EQ(parsed->slices.at("mx1").hash, e.slices.at("mx1").hash);
  // What is signed: the binding, which names each slice by its hash.
  EXPECT_EQ(e.hash, core::sha256_hex(e.binding.to_json().dump()));
  EXPECT_TRUE(looks_like_estate_manifest(e.to_json().dump()));
  EXPECT_FALSE(looks_like_estate_manifest(e.slices.at("mx1").to_json().dump()));
}

TEST(EstateManifest, AnyChangeIsRefused) {
  const json good = estate().to_json();
  const auto refused = [](const json &j, std::string_view why) {
    auto r = parse_estate_manifest(j.dump(), "m.json");
    ASSERT_FALSE(r) << "accepted: " << j.dump();
    EXPECT_EQ(r.error().code, core::ErrorCode::data);
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  };
  json j = good;
  j["planner"] = "mallory";
  refused(j, "altered");
  j = good;
  j["not_searched"] = json::array(); // hiding that a host was not searched
  refused(j, "altered");
  j = good;
  j["slices"]["mx1"]["items"][0]["reason"] = "x"; // the slice's own hash no longer matches
  refused(j, "slice of host mx1");
  j = good;
  j["slices"]["mx1"] = good["slices"]["imap"]; // a valid slice, but not the one named
  refused(j, "not the one the manifest names");
  j = good;
  j["slices"].erase("imap");
  refused(j, "one slice per host");
  j = good;
  j["extra"] = 1;
  refused(j, "unknown key \"extra\"");
  j = good;
  j["hosts"][0]["slice_sha256"] = "short";
  refused(j, "slice_sha256");
  j = good;
  j["hosts"][1]["name"] = "imap";
  refused(j, "named twice");
  j = good;
  j["version"] = 2;
  refused(j, "version");
  refused(json::array(), "not JSON");
  j = good;
  j["schema"] = json::array(); // another type where a string belongs: refused, never thrown (fuzz)
  refused(j, "not a maildsar estate manifest");
  EXPECT_FALSE(looks_like_estate_manifest(j.dump()));
  EXPECT_FALSE(parse_estate_binding(json{{"schema", 1}}, "b"));
}

TEST(EstateBinding, ParsesStrictly) {
  const json good = estate().binding.to_json();
  EXPECT_TRUE(parse_estate_binding(good, "b"));
  for (const char *key : {"request", "created", "planner", "hosts", "not_searched"}) {
    json j = good;
    j.erase(key);
    EXPECT_FALSE(parse_estate_binding(j, "b")) << key;
  }
  json j = good;
  j["planner_os"]["uid"] = -1;
  EXPECT_FALSE(parse_estate_binding(j, "b"));
  j = good;
  j["hosts"][0]["items"] = "1";
  EXPECT_FALSE(parse_estate_binding(j, "b"));
  j = good;
  j["hosts"][0]["extra"] = true;
  EXPECT_FALSE(parse_estate_binding(j, "b"));
}

} // namespace
} // namespace maildsar::erasure
