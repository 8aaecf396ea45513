// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// A range scan's sink that offers needles, as the query side's block reader does
// (connectors/log_range.hpp LogSink::needles): the items it got, and whether the scan read only
// the selected lines. Shared by the unit tests and the maillog fuzz harnesses.
#include "connectors/log_range.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace maildsar::test {

class NeedleSink final : public connectors::LogSink {
public:
  /** No needles: the scan reads every line. */
  explicit NeedleSink(std::vector<std::string> needles) : m_needles(std::move(needles)) {}
  [[nodiscard]] const std::vector<std::string> *needles() const override {
    return m_needles.empty() ? nullptr : &m_needles;
  }
  void filtered() override { was_filtered = true; }
  void log_item(connectors::Item &&item, connectors::LogSpan span) override {
    items.push_back(std::move(item));
    line_begins.push_back(std::move(span.line_begins));
  }
  void error(connectors::ScanError && /*error*/) override {}

  std::vector<connectors::Item> items;
  /** Where each item's lines begin (LogSpan::line_begins), in the order of `items`. */
  std::vector<std::vector<std::uint64_t>> line_begins;
  bool was_filtered = false;

private:
  std::vector<std::string> m_needles;
};

} // namespace maildsar::test
