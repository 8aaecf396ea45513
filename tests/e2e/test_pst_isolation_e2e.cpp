// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end (issue 13 item 8): PST files that crash, hang or bloat libpst are parsed in
// maildsar-worker processes, so `index` reports each once, exits 1 ("completed with problems",
// docs/exit-codes.md), and indexes the rest of the estate, which `find` then finds.
#include "tests/corrupt_pst.hpp"
#include "core/sanitizers.hpp"
#include "tests/e2e/e2e_support.hpp"
#include "tests/e2e/estate_connectors.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/** The keys of find's hits, as ConnectorEstate spells them (path, path@offset, path#node, ...). */
std::set<std::string> hit_keys(const RunResult &r) {
  std::set<std::string> keys;
  for (const auto &hit : json_lines(r.out)) {
    if (!hit.contains("store")) {
      continue; // not a hit line
    }
    keys.insert(maildsar::test::hit_key(hit));
  }
  return keys;
}

/** Problems of an index summary by path; a path reported twice is a failure. */
std::map<std::string, std::string> problems_by_path(const json &summary) {
  std::map<std::string, std::string> out;
  for (const auto &p : summary.at("problems")) {
    auto path = p.at("path").get<std::string>();
    EXPECT_FALSE(out.contains(path)) << "reported twice: " << p.dump();
    out[path] = p.at("cause").get<std::string>();
  }
  return out;
}

json last_line(const RunResult &r) {
  auto lines = json_lines(r.out);
  return lines.empty() ? json::object() : lines.back();
}

class PstIsolationE2e : public ::testing::Test {
protected:
  void SetUp() override {
    estate = make_connector_estate(dir.path(), corpus_dir());
    if (!estate.has_pst) {
      GTEST_SKIP() << "corpus PST files not found (set MAILDSAR_CORPUS)";
    }
    config_text = read_file(estate.config);
  }

  /** The estate's config with `"limits": {...}` (replacing earlier limits). */
  void set_limits(const std::string &limits) const {
    std::string config = config_text;
    config.insert(config.rfind('}'), ", \"limits\": " + limits);
    write_file(estate.config, config);
  }

  /** find over both subjects lists every item of the good files and of the other sources. */
  void expect_rest_found() const {
    auto pst = ds(estate.config, {"find", "--subject", estate.pst_subject.string()});
    ASSERT_EQ(pst.exit_code, 0) << pst.err;
    EXPECT_EQ(hit_keys(pst), estate.pst_expected);
    auto other = ds(estate.config, {"find", "--subject", estate.subject.string()});
    ASSERT_EQ(other.exit_code, 0) << other.err;
    EXPECT_EQ(hit_keys(other), estate.expected);
  }

  ScratchDir dir;
  ConnectorEstate estate;
  std::string config_text;
};

TEST_F(PstIsolationE2e, PstsThatCrashOrBloatLibpstAreCountedAndTheRestIsIndexed) {
  auto baseline = ds(estate.config, {"index"});
  ASSERT_EQ(baseline.exit_code, 0) << baseline.err;
  const auto good_items = source_counts(last_line(baseline), "legacy").at("items");
  std::map<fs::path, std::string> bad{{estate.root / "pst/crash-parse-item.pst", "crashed: killed by signal SIG"},
                                      {estate.root / "pst/crash-extended-attrs.pst", "crashed: killed by signal SIG"}};
  ASSERT_TRUE(make_corrupt_pst(corpus_dir(), estate.root / "pst/crash-parse-item.pst", CorruptPst::parse_item));
  ASSERT_TRUE(
      make_corrupt_pst(corpus_dir(), estate.root / "pst/crash-extended-attrs.pst", CorruptPst::extended_attrs));
#if !MAILDSAR_ASAN // no RLIMIT_AS under AddressSanitizer (docs/reliability.md)
  ASSERT_TRUE(make_corrupt_pst(corpus_dir(), estate.root / "pst/bloat.pst", CorruptPst::bloat));
  bad[estate.root / "pst/bloat.pst"] = "exceeded the memory limit of 1024 MiB";
#endif

  auto r = ds(estate.config, {"index"});
  EXPECT_EQ(r.exit_code, 1) << r.err << r.out;
  json summary = last_line(r);
  ASSERT_TRUE(summary.contains("problems")) << r.out;
  auto problems = problems_by_path(summary);
  EXPECT_EQ(problems.size(), bad.size()) << summary.dump(2);
  for (const auto &[path, reason] : bad) {
    ASSERT_TRUE(problems.contains(path.string())) << path << " not reported: " << summary.dump(2);
    EXPECT_NE(problems.at(path.string()).find(reason), std::string::npos) << problems.at(path.string());
  }
  EXPECT_EQ(summary.at("errors"), bad.size());
  auto legacy = source_counts(summary, "legacy");
  EXPECT_EQ(legacy.at("files"), 3 + bad.size());
  EXPECT_EQ(legacy.at("errors"), bad.size());
  EXPECT_EQ(legacy.at("items"), good_items) << "the good PSTs' items stay indexed";
  EXPECT_EQ(r.err.find("Out Of memory\n"), std::string::npos) << "the worker's stderr is not ours: " << r.err;
  expect_rest_found();
}

TEST_F(PstIsolationE2e, HangingAndSpinningWorkersHitTheConfiguredLimits) {
  set_limits(R"({"pst_timeout_seconds": 2})");
  auto hang = ds(estate.config, {"index"}, {"MAILDSAR_WORKER_TEST_FAULT=sleep:sample2.pst"});
  EXPECT_EQ(hang.exit_code, 1) << hang.err;
  auto problems = problems_by_path(last_line(hang));
  ASSERT_EQ(problems.size(), 1U) << hang.out;
  auto sample2 = (estate.root / "pst/sample2.pst").string();
  ASSERT_TRUE(problems.contains(sample2)) << hang.out;
  EXPECT_NE(problems.at(sample2).find("exceeded the wall-clock limit of 2 s"), std::string::npos)
      << problems.at(sample2);

  // A generous wall clock: on a loaded machine one CPU second can take several seconds.
  set_limits(R"({"pst_cpu_seconds": 1, "pst_timeout_seconds": 120})");
  // --full: SampleContacts.pst is unchanged since the last run and would not be opened again.
  auto spin = ds(estate.config, {"index", "--full"}, {"MAILDSAR_WORKER_TEST_FAULT=spin:SampleContacts.pst"});
  EXPECT_EQ(spin.exit_code, 1) << spin.err;
  problems = problems_by_path(last_line(spin));
  ASSERT_EQ(problems.size(), 1U) << spin.out;
  auto contacts = (estate.root / "pst/SampleContacts.pst").string();
  ASSERT_TRUE(problems.contains(contacts)) << spin.out;
  EXPECT_NE(problems.at(contacts).find("exceeded the CPU-time limit of 1 s"), std::string::npos)
      << problems.at(contacts);

  // Without the fault everything is indexed and found; the summary lists no problem.
  auto clean = ds(estate.config, {"index", "--full"});
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_TRUE(last_line(clean).at("problems").empty()) << clean.out;
  expect_rest_found();
}

TEST_F(PstIsolationE2e, LimitsOutsideTheirRangeAreConfigErrors) {
  set_limits(R"({"pst_memory_mib": 1})");
  auto r = ds(estate.config, {"index"});
  EXPECT_EQ(r.exit_code, 78) << r.err;
  EXPECT_NE(r.err.find("limits.pst_memory_mib must be a whole number from 64"), std::string::npos) << r.err;
}

} // namespace
} // namespace maildsar::test
