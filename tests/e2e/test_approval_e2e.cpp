// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: readable approvals (issue 16 item 2). `plan` writes an HTML summary beside the
// manifest that a browser renders with the subject, the counts and every item's date,
// correspondents and subject line; `approve --show` prints it as text and approves nothing.
#include "tests/e2e/e2e_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TEST(ApprovalSummary, PlanWritesWhatAnApproverReads) {
  ScratchDir dir;
  copy_tree(fs::path(MAILDSAR_SOURCE_DIR) / "samples", dir.path() / "s");
  fs::remove_all(dir.path() / "s" / "state");
  const fs::path config = dir.path() / "s" / "maildsar.json";
  const fs::path subject = dir.path() / "s" / "subject.json";
  // a hold on the quarantine: the summary must say what it keeps and why
  {
    auto r = run({find_program("python3").string(), "-c",
                  "import json,sys\n"
                  "p=sys.argv[1]\n"
                  "lines=[l for l in open(p) if not l.lstrip().startswith('//')]\n"
                  "c=json.loads(''.join(lines))\n"
                  "c['holds']=[{'source':'amavis','reason':'complaint 2026-3 under review','until':'2099-01-31'}]\n"
                  "open(p,'w').write(json.dumps(c))\n",
                  config.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  index_json(config);
  const fs::path manifest = dir.path() / "m.json";
  auto p = ds(config, {"plan", "--subject", subject.string(), "--out", manifest.string(), "--operator", "dpo-anna"});
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  const json planned = json_lines(p.out).at(0);
  const fs::path html_path = dir.path() / "m.html";
  EXPECT_EQ(planned["summary"], html_path.string());
  ASSERT_TRUE(fs::exists(html_path));
  EXPECT_EQ(fs::status(html_path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  const std::string html = read_file(html_path);
  const std::string hash = planned["manifest_sha256"];
  EXPECT_NE(html.find(hash), std::string::npos);
  EXPECT_NE(html.find("email: alice.smith@example.com"), std::string::npos); // whom: shown to the approver
  EXPECT_NE(html.find("2 item(s): hold: complaint 2026-3 under review (until 2099-01-31)"), std::string::npos);
  // every item with its subject line and correspondents, the log transactions with their date
  auto found = ds(config, {"find", "--subject", subject.string()});
  for (const json &h : json_lines(found.out)) {
    if (!h["subject"].get<std::string>().empty()) {
      EXPECT_NE(html.find(h["subject"].get<std::string>()), std::string::npos) << h["subject"];
    }
  }
  EXPECT_NE(html.find("from carol.white@partner.example; to bob.jones@example.com; cc alice.smith@example.com"),
            std::string::npos);
  EXPECT_EQ(html.find("<td>-</td><td><code>" + (dir.path() / "s/logs").string()), std::string::npos);

  // A browser renders it (the DOM holds the counts and the items).
  if (std::system("command -v chromium >/dev/null 2>&1") == 0) {
    auto dom = run({"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--user-data-dir=" + (dir.path() / "chr").string(), "--dump-dom", "file://" + html_path.string()});
    ASSERT_EQ(dom.exit_code, 0) << dom.err;
    EXPECT_NE(dom.out.find("Erasure for approval: DSAR-2026-0042"), std::string::npos);
    EXPECT_NE(dom.out.find("Meeting notes"), std::string::npos);
    EXPECT_NE(dom.out.find("<summary>mailboxes"), std::string::npos);
  }

  // approve --show: the text, and no approval.
  auto show = maildsar_run({"-c", config.string(), "approve", "--show", manifest.string(), "--operator", "admin-ben"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("manifest sha256 " + hash), std::string::npos);
  EXPECT_NE(show.out.find("approvals: 0 of 1 required"), std::string::npos);
  EXPECT_NE(show.out.find("Meeting notes | from carol.white@partner.example"), std::string::npos);
  EXPECT_NE(show.out.find("retained: hold: complaint 2026-3 under review"), std::string::npos);
  auto dry = ds(config, {"erase", manifest.string(), "--dry-run", "--operator", "admin-ben"});
  EXPECT_NE(dry.exit_code, 0) << "--show must not approve: " << dry.out;
  auto a = ds(config, {"approve", manifest.string(), "--operator", "admin-ben"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto shown = maildsar_run({"-c", config.string(), "approve", "--show", manifest.string()});
  EXPECT_NE(shown.out.find("approvals: 1 of 1 required: admin-ben"), std::string::npos) << shown.out;

  // Never over an existing summary (the manifest is never overwritten either).
  fs::remove(manifest);
  auto again = ds(config, {"plan", "--subject", subject.string(), "--out", manifest.string(), "--operator", "dpo-anna"});
  EXPECT_EQ(again.exit_code, 73) << again.err;
  EXPECT_FALSE(fs::exists(manifest)); // refused before anything was written
}

TEST(ErasureCertificate, SignedByTheInstallationAndCheckedByAnyone) {
  ScratchDir dir;
  copy_tree(fs::path(MAILDSAR_SOURCE_DIR) / "samples", dir.path() / "s");
  fs::remove_all(dir.path() / "s" / "state");
  const fs::path config = dir.path() / "s" / "maildsar.json";
  const fs::path subject = dir.path() / "s" / "subject.json";
  index_json(config);
  const fs::path manifest = dir.path() / "m.json";
  ASSERT_EQ(ds(config, {"plan", "--subject", subject.string(), "--out", manifest.string(), "--operator", "dpo-anna"})
                .exit_code,
            0);
  ASSERT_EQ(ds(config, {"approve", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
  ASSERT_EQ(ds(config, {"erase", manifest.string(), "--operator", "admin-ben"}).exit_code, 0);
  const fs::path cert = dir.path() / "cert.json";
  auto v = ds(config, {"verify", "--subject", subject.string(), "--operator", "admin-ben", "--out", cert.string()});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  const json signed_cert = json::parse(read_file(cert));
  EXPECT_EQ(signed_cert["signature"]["algorithm"], "ed25519");

  auto ok = ds(config, {"certificate", "verify", cert.string()});
  ASSERT_EQ(ok.exit_code, 0) << ok.err << ok.out;
  const json checked = json_lines(ok.out).at(0);
  EXPECT_EQ(checked["valid"], true);
  EXPECT_EQ(checked["key_matches"], true);

  // The auditor's side: no config, the installation's published key.
  const fs::path pub = dir.path() / "installation.pub.pem";
  auto key = maildsar_run({"-c", config.string(), "certificate", "key"});
  ASSERT_EQ(key.exit_code, 0) << key.err;
  write_file(pub, key.out);
  auto outside = maildsar_run({"certificate", "verify", cert.string(), "--public-key", pub.string()}, dir.path());
  EXPECT_EQ(outside.exit_code, 0) << outside.err << outside.out;
  EXPECT_NE(outside.out.find("valid signature of request DSAR-2026-0042"), std::string::npos);

  // Changed after signing: refused.
  json changed = signed_cert;
  changed["files_rescanned"] = changed["files_rescanned"].get<int>() + 1;
  const fs::path forged = dir.path() / "forged.json";
  write_file(forged, changed.dump(2));
  auto bad = ds(config, {"certificate", "verify", forged.string()});
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_EQ(json_lines(bad.out).at(0)["signature_valid"], false);
  // Signed by another key (made by someone else with their own maildsar): refused here.
  auto r = run({find_program("openssl").string(), "genpkey", "-algorithm", "ed25519", "-out",
                (dir.path() / "other.pem").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run({find_program("openssl").string(), "pkey", "-in", (dir.path() / "other.pem").string(), "-pubout", "-out",
           (dir.path() / "other.pub.pem").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto other = ds(config, {"certificate", "verify", cert.string(), "--public-key", (dir.path() / "other.pub.pem").string()});
  EXPECT_EQ(other.exit_code, 1) << other.out;
  EXPECT_EQ(json_lines(other.out).at(0)["key_matches"], false);
}

TEST(ErasureCertificate, RequiredSignaturesNeedApproverKeys) {
  ScratchDir dir;
  const fs::path config = dir.path() / "c.json";
  write_file(config, R"({"state_dir": "state", "sources": [], "erasure": {"require_signatures": true}})");
  auto r = ds(config, {"status"});
  EXPECT_EQ(r.exit_code, 78) << r.err << r.out;
  EXPECT_NE(r.out.find("require_signatures"), std::string::npos) << r.out;
}

} // namespace
} // namespace maildsar::test
