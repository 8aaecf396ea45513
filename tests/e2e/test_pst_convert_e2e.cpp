// SPDX-License-Identifier: GPL-3.0-or-later
// End-to-end: `plan --pst convert` -> approve -> erase -> verify on the corpus PST files.
#include "tests/e2e/e2e_support.hpp"
#include "tests/e2e/estate_connectors.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <filesystem>
#include <map>
#include <set>
#include <string>

namespace maildsar::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/** The connector estate with an mbox source for converted archives and erasure.pst_convert. */
struct ConvertEstate {
  ConnectorEstate e;
  fs::path archive;
  fs::path originals;
};

ConvertEstate make_convert_estate(const fs::path &root, bool configure = true) {
  ConvertEstate c{make_connector_estate(root, corpus_dir()), root / "archive", root / "dsar/pst-originals"};
  fs::create_directories(c.archive);
  std::string config = read_file(c.e.config);
  const std::string sources = "\"sources\": [\n";
  config.insert(config.find(sources) + sources.size(),
                R"(    {"name": "converted", "type": "mbox", "path": "archive/*.mbox"},
)");
  if (configure) {
    config.insert(config.rfind('}'),
                  R"(, "erasure": {"pst_convert": {"mbox_dir": "archive", "originals_dir": "dsar/pst-originals"}})");
  }
  write_file(c.e.config, config);
  return c;
}

/** Files under `root` outside the PST, archive, originals, state and out folders -> bytes. */
std::map<std::string, std::string> other_files(const fs::path &root) {
  std::map<std::string, std::string> files;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const std::string name = it->path().filename().string();
    if (it->is_directory() && (name == "state" || name == "out" || name == "pst" || name == "archive" ||
                               name == "dsar")) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) {
      files[it->path().string()] = read_file(it->path());
    }
  }
  return files;
}

/** index + plan --pst convert (dpo-anna) + approve (admin-ben); returns the manifest path. */
fs::path plan_convert(const ConvertEstate &c, const fs::path &dir) {
  EXPECT_EQ(ds(c.e.config, {"index"}).exit_code, 0);
  fs::create_directories(dir / "out");
  fs::path manifest = dir / "out/manifest.json";
  auto p = ds(c.e.config, {"plan", "--subject", c.e.pst_subject.string(), "--out", manifest.string(), "--pst",
                           "convert", "--operator", "dpo-anna"});
  EXPECT_EQ(p.exit_code, 0) << p.err << p.out;
  auto a = ds(c.e.config, {"approve", manifest.string(), "--operator", "admin-ben"});
  EXPECT_EQ(a.exit_code, 0) << a.err << a.out;
  return manifest;
}

/** The end state every (possibly interrupted and resumed) conversion must reach. */
void expect_converted(const ConvertEstate &c, const fs::path &root) {
  const fs::path corpus = corpus_dir();
  std::map<std::string, fs::path> originals{{"sample1", corpus / "pst/pstsdk/sample1.pst"},
                                            {"sample2", corpus / "pst/pstsdk/sample2.pst"},
                                            {"SampleContacts", corpus / "pst/aspose/SampleContacts.pst"}};
  for (const auto &[stem, source] : originals) {
    EXPECT_FALSE(fs::exists(root / "pst" / (stem + ".pst"))) << stem << " must leave the store";
    EXPECT_TRUE(fs::exists(c.archive / (stem + ".mbox"))) << stem;
    std::size_t copies = 0;
    for (const auto &f : fs::directory_iterator(c.originals)) {
      if (f.path().filename().string().starts_with(stem + "-")) {
        ++copies;
        EXPECT_EQ(read_file(f.path()), read_file(source)) << f.path() << " is not the original, byte for byte";
      }
    }
    EXPECT_EQ(copies, 1U) << stem;
  }
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    EXPECT_FALSE(it->path().filename().string().ends_with(".maildsar-tmp")) << it->path();
  }
  // Nothing of the subject in the index, nor, by an independent decoder, in the new archives.
  auto found = ds(c.e.config, {"find", "--subject", c.e.pst_subject.string()});
  EXPECT_EQ(found.exit_code, 0);
  EXPECT_TRUE(json_lines(found.out).empty()) << found.out;
  auto scan = run({find_program("python3").string(), (fs::path(MAILDSAR_SOURCE_DIR) / "tests/e2e/independent_scan.py").string(),
                   c.archive.string(), "--pattern", R"(email=terrymah@microsoft\.com)", "--pattern",
                   R"(email=margaretjtolle@dayrep\.com)", "--pattern", R"(name=terry\s+mahaffey|margaret\s+j\.?\s*tolle)"});
  EXPECT_EQ(scan.exit_code, 0) << scan.out << scan.err;
  // Everyone else in the converted PSTs is still found, now in the archives.
  auto others = ds(c.e.config, {"find", "--email", "SebastianWright@dayrep.com"});
  auto hits = json_lines(others.out);
  ASSERT_EQ(hits.size(), 1U) << others.out;
  EXPECT_EQ(hits[0].at("store"), "mbox");
  EXPECT_EQ(hits[0].at("path"), (c.archive / "SampleContacts.mbox").string());
  EXPECT_EQ(ds(c.e.config, {"audit", "verify"}).exit_code, 0);
}

class PstConvertE2e : public ::testing::Test {
protected:
  void SetUp() override {
    const fs::path corpus = corpus_dir();
    if (corpus.empty() || !fs::exists(corpus / "pst/pstsdk/sample1.pst")) {
      GTEST_SKIP() << "corpus PST files not found";
    }
    if (find_program("python3").empty()) {
      GTEST_SKIP() << "python3 is needed for the independent scan";
    }
  }
};

TEST_F(PstConvertE2e, PstFilesAreReplacedByArchivesWithoutTheSubject) {
  ScratchDir dir;
  ConvertEstate c = make_convert_estate(dir.path());
  ASSERT_TRUE(c.e.has_pst);
  const auto before = other_files(dir.path());
  fs::path manifest = plan_convert(c, dir.path());
  json mj = json::parse(read_file(manifest));
  std::set<std::string> targets;
  for (const json &item : mj.at("items")) {
    EXPECT_EQ(item.at("action"), "convert") << item.dump();
    targets.insert(item.at("convert_to").get<std::string>());
    EXPECT_NE(item.at("instructions").get<std::string>().find("dsar/pst-originals"), std::string::npos);
  }
  EXPECT_EQ(targets, (std::set<std::string>{(c.archive / "SampleContacts.mbox").string(),
                                            (c.archive / "sample1.mbox").string(),
                                            (c.archive / "sample2.mbox").string()}));

  auto dry = ds(c.e.config, {"erase", manifest.string(), "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(json_lines(dry.out).at(0).at("counts").at("pst").at("would-convert"), mj.at("items").size());
  EXPECT_TRUE(fs::exists(dir.path() / "pst/sample1.pst"));

  auto er = ds(c.e.config, {"erase", manifest.string(), "--operator", "ops-cleo"});
  ASSERT_EQ(er.exit_code, 0) << er.err << er.out;
  json report = json_lines(er.out).at(0);
  ASSERT_EQ(report.at("conversions").size(), 3U) << report.dump(1);
  for (const json &conv : report.at("conversions")) {
    if (conv.at("pst").get<std::string>().ends_with("SampleContacts.pst")) {
      EXPECT_EQ(conv.at("kept"), 5U) << "six contacts, one of them the subject's";
    }
  }
  expect_converted(c, dir.path());
  EXPECT_EQ(other_files(dir.path()), before) << "only the PST files and their archives may change";

  auto v = ds(c.e.config, {"verify", "--subject", c.e.pst_subject.string()});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  json vj = json_lines(v.out).at(0);
  EXPECT_EQ(vj.at("pst_originals").size(), 3U) << vj.dump(1);
  json certificate = json::parse(read_file(vj.at("certificate").get<std::string>()));
  EXPECT_EQ(certificate.at("counts").at("pst").at("converted"), mj.at("items").size());
}

TEST_F(PstConvertE2e, ConvertNeedsItsFoldersConfigured) {
  ScratchDir dir;
  ConvertEstate c = make_convert_estate(dir.path(), /*configure=*/false);
  ASSERT_EQ(ds(c.e.config, {"index"}).exit_code, 0);
  fs::create_directories(dir.path() / "out");
  auto plan = [&](const std::string &mode, const std::string &out) {
    return ds(c.e.config, {"plan", "--subject", c.e.pst_subject.string(), "--out", (dir.path() / out).string(),
                           "--pst", mode, "--operator", "dpo-anna"});
  };
  auto unset = plan("convert", "out/a.json");
  EXPECT_EQ(unset.exit_code, 78) << unset.err;
  EXPECT_NE(unset.err.find("pst_convert"), std::string::npos) << unset.err;
  EXPECT_FALSE(fs::exists(dir.path() / "out/a.json"));
  EXPECT_EQ(plan("shred", "out/b.json").exit_code, 64);
  // An mbox_dir that no mbox source covers: the archive would never be indexed.
  std::string config = read_file(c.e.config);
  config.insert(config.rfind('}'), R"(, "erasure": {"pst_convert": {"mbox_dir": "elsewhere", "originals_dir": "dsar/o"}})");
  write_file(c.e.config, config);
  auto uncovered = plan("convert", "out/c.json");
  EXPECT_EQ(uncovered.exit_code, 78) << uncovered.err;
  EXPECT_NE(uncovered.err.find("not covered by an mbox source"), std::string::npos) << uncovered.err;
  // The default stays manual instructions.
  auto manual = plan("manual", "out/d.json");
  EXPECT_EQ(manual.exit_code, 0) << manual.err;
  const json manual_plan = json::parse(read_file(dir.path() / "out/d.json"));
  for (const json &item : manual_plan.at("items")) {
    EXPECT_EQ(item.at("action"), "manual");
  }
}

TEST_F(PstConvertE2e, ManualInstructionsNameFolderDateCorrespondentsButNoIdentifierInClear) {
  ScratchDir dir;
  ConvertEstate c = make_convert_estate(dir.path(), /*configure=*/false);
  ASSERT_EQ(ds(c.e.config, {"index"}).exit_code, 0);
  fs::create_directories(dir.path() / "out");
  const fs::path manifest = dir.path() / "out/manual.json";
  auto p = ds(c.e.config, {"plan", "--subject", c.e.pst_subject.string(), "--out", manifest.string(), "--operator",
                           "dpo-anna"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const std::string text = read_file(manifest);
  std::map<std::string, std::string> by_file;
  const json planned = json::parse(text);
  for (const json &item : planned.at("items")) {
    EXPECT_EQ(item.at("action"), "manual");
    by_file[fs::path(item.at("locator").at("path").get<std::string>()).filename().string()] =
        item.at("instructions").get<std::string>();
  }
  ASSERT_TRUE(by_file.contains("sample1.pst")) << text;
  const std::string &s1 = by_file.at("sample1.pst");
  for (const char *part : {"in folder \"Top of Outlook data file/Sample1\"", "dated 2010-03-15 17:12 UTC",
                           "(from (the data subject); to (the data subject))", "\"Here is a sample message\"",
                           "(PST node 2097188)", "compact the file"}) {
    EXPECT_NE(s1.find(part), std::string::npos) << part << " missing in: " << s1;
  }
  // The subject's identifiers appear only as keyed hashes, also inside the instructions.
  std::string lower = text;
  for (char &ch : lower) {
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  for (const char *identifier : {"terrymah@microsoft.com", "margaretjtolle@dayrep.com", "terry mahaffey"}) {
    EXPECT_EQ(lower.find(identifier), std::string::npos) << identifier << " in clear in the manifest";
  }
}

TEST_F(PstConvertE2e, KilledAtEveryConversionStepResumesToTheSameEnd) {
  std::vector<std::string> steps;
  for (const char *s : {"started", "convert:temp-synced", "convert:verified", "convert:published",
                        "convert:original-moved", "before-done"}) {
    steps.push_back(std::string("file:0:") + s);
  }
  for (const char *s : {"convert:published", "convert:original-moved"}) {
    steps.push_back(std::string("file:2:") + s);
  }
  steps.push_back("index:before");
  std::size_t killed = 0;
  for (const std::string &step : steps) {
    SCOPED_TRACE(step);
    ScratchDir dir;
    ConvertEstate c = make_convert_estate(dir.path());
    fs::path manifest = plan_convert(c, dir.path());
    auto first = ds(c.e.config, {"erase", manifest.string()}, {"MAILDSAR_FAULT_AT=" + step});
    if (first.exit_code == 128 + SIGKILL) {
      ++killed;
    }
    auto second = ds(c.e.config, {"erase", manifest.string()});
    EXPECT_EQ(second.exit_code, 0) << second.err << second.out;
    expect_converted(c, dir.path());
  }
  EXPECT_EQ(killed, steps.size()) << "some fault-injection points were not reached";
}

} // namespace
} // namespace maildsar::test
