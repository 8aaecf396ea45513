// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// A test connector: every regular file in the source directory holds one item per line, each
// line a JSON object:
//   {"a": [["from", "Alice Smith", "alice@example.com"], ...],   // RawAddress role/name/addr
//    "t": [["body", "some text"], ...],                            // RawText role/text
//    ("a" entries may add a header field name 4th, "t" entries 3rd: a header value)
//    "ip": [["received", "203.0.113.45"]], "mid": "x@y", "subject": "..."}
// A line that is not JSON is a ScanError. Items are mbox-like (offset = line start) so the
// store can be appended to; a scan from an offset that is not a line start returns data.

#include "connectors/connector.hpp"
#include "core/hash.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace maildsar::test {

/** What a test sees of a streamed listing (FakeConnector::each_file). */
struct ListingProbe {
  std::size_t fail_after = 0;      // > 0: the listing fails after this many files
  std::vector<int> scans_at_emit;  // files scanned when each file was handed out
};

class FakeConnector final : public connectors::Connector {
public:
  FakeConnector(core::SourceConfig source, bool append, std::atomic<int> *scans = nullptr,
                ListingProbe *probe = nullptr)
      : m_source(std::move(source)), m_append(append), m_scans(scans), m_probe(probe) {}

  [[nodiscard]] connectors::StoreKind kind() const override { return connectors::StoreKind::mbox; }
  [[nodiscard]] bool supports_append() const override { return m_append; }

  [[nodiscard]] core::Result<std::vector<connectors::FileEntry>>
  list_files(connectors::ItemSink &) const override {
    std::vector<connectors::FileEntry> out;
    std::error_code ec;
    if (!std::filesystem::is_directory(m_source.path, ec)) {
      return core::fail(core::ErrorCode::no_input, m_source.path + ": no such directory");
    }
    for (const auto &e : std::filesystem::directory_iterator(m_source.path)) {
      if (!e.is_regular_file()) {
        continue;
      }
      auto st = core::lstat_file(e.path().string());
      if (!st) {
        return std::unexpected(st.error());
      }
      out.push_back(connectors::FileEntry{e.path().string(), "", "", *st});
    }
    std::sort(out.begin(), out.end(),
              [](const auto &a, const auto &b) { return a.path < b.path; });
    return out;
  }

  /** The files of list_files() handed out one by one (as a Maildir walk does), noting for each
      how many files had been scanned by then. */
  [[nodiscard]] core::Status
  each_file(connectors::ItemSink &errors,
            const std::function<void(connectors::FileEntry &&)> &each) const override {
    MAILDSAR_TRY_ASSIGN(std::vector<connectors::FileEntry> files, list_files(errors));
    std::size_t n = 0;
    for (connectors::FileEntry &file : files) {
      if (m_probe != nullptr && m_probe->fail_after != 0 && n == m_probe->fail_after) {
        return core::fail(core::ErrorCode::io, m_source.path + ": listing broke off");
      }
      if (m_probe != nullptr) {
        m_probe->scans_at_emit.push_back(m_scans != nullptr ? m_scans->load() : 0);
      }
      each(std::move(file));
      ++n;
    }
    return {};
  }

  [[nodiscard]] core::Status scan(const connectors::FileEntry &file, std::uint64_t from,
                                  connectors::ItemSink &sink) const override {
    if (m_scans != nullptr) {
      ++*m_scans;
    }
    std::ifstream in(file.path, std::ios::binary);
    if (!in) {
      return core::fail(core::ErrorCode::io, file.path + ": cannot open");
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string data = ss.str();
    if (from > data.size() || (from > 0 && data[from - 1] != '\n')) {
      return core::fail(core::ErrorCode::data, file.path + ": offset is not an item boundary");
    }
    std::size_t pos = from;
    while (pos < data.size()) {
      std::size_t nl = data.find('\n', pos);
      std::size_t end = nl == std::string::npos ? data.size() : nl + 1;
      std::string line = data.substr(pos, end - pos);
      emit(file, pos, line, sink);
      pos = end;
    }
    return {};
  }

private:
  void emit(const connectors::FileEntry &file, std::uint64_t offset, const std::string &line,
            connectors::ItemSink &sink) const {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (...) {
      sink.error(connectors::ScanError{file.path, "offset " + std::to_string(offset), "bad line"});
      return;
    }
    connectors::Item item;
    item.locator.source = m_source.name;
    item.locator.store = connectors::StoreKind::mbox;
    item.locator.path = file.path;
    item.locator.offset = offset;
    item.locator.length = line.size();
    item.sha256 = core::sha256_hex(line);
    item.message_id = j.value("mid", std::string());
    item.subject = j.value("subject", std::string());
    if (j.contains("date")) {
      item.date = j["date"].get<std::int64_t>();
    }
    for (const auto &a : j.value("a", nlohmann::json::array())) {
      item.addresses.push_back(connectors::RawAddress{
          *connectors::role_from_string(a[0].get<std::string>()), a[1].get<std::string>(),
          a[2].get<std::string>(), a.size() > 3 ? a[3].get<std::string>() : std::string()});
    }
    for (const auto &t : j.value("t", nlohmann::json::array())) {
      // A third element is a header field name: the text is that field's value, scanned
      // for addresses only.
      const bool header = t.size() > 2;
      item.texts.push_back(connectors::RawText{
          *connectors::role_from_string(t[0].get<std::string>()), t[1].get<std::string>(),
          header ? t[2].get<std::string>() : std::string(),
          header ? connectors::TextScan::addresses : connectors::TextScan::full});
    }
    for (const auto &v : j.value("ip", nlohmann::json::array())) {
      item.ips.push_back(connectors::RawValue{*connectors::role_from_string(v[0].get<std::string>()),
                                              v[1].get<std::string>()});
    }
    sink.item(std::move(item));
  }

  core::SourceConfig m_source;
  bool m_append;
  std::atomic<int> *m_scans;
  ListingProbe *m_probe;
};

} // namespace maildsar::test
