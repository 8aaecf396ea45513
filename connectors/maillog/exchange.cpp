// SPDX-License-Identifier: GPL-3.0-or-later
// Exchange message tracking logs (MSGTRK*.LOG): CSV under a "#Fields:" header (the default field
// list of Exchange 2013+ when there is none). The lines of one message id (else internal
// message id) are a transaction; sender, recipients, client IPs and the subject are columns.
#include "connectors/maillog/format.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace maildsar::connectors::maillog {

using std::string_view;

namespace {


const std::vector<std::string> &default_exchange_fields() {
  static const std::vector<std::string> k_fields{
      "date-time",          "client-ip",          "client-hostname",
      "server-ip",          "server-hostname",    "source-context",
      "connector-id",       "source",             "event-id",
      "internal-message-id", "message-id",        "network-message-id",
      "recipient-address",  "recipient-status",   "total-bytes",
      "recipient-count",    "related-recipient-address", "reference",
      "message-subject",    "sender-address",     "return-path",
      "message-info",       "directionality",     "tenant-id",
      "original-client-ip", "original-server-ip", "custom-data",
      "transport-traffic-type", "log-id",         "schema-version"};
  return k_fields;
}

/** RFC 4180 fields of one line. */
std::vector<std::string> split_csv(string_view line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur += c;
      }
    } else if (c == '"' && cur.empty()) {
      quoted = true;
    } else if (c == ',') {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(std::move(cur));
  return out;
}

class ExchangeParser final : public FileParser {
public:
  void line(string_view view, LineSink &sink) override {
    if (view.front() == '#') {
      sink.header();
      if (starts_with(view, "#Fields:")) {
        m_fields.clear();
        for (auto &f : split_csv(trim(view.substr(8)))) {
          m_fields.emplace_back(trim(f));
        }
      }
      return;
    }
    const auto &names = m_fields.empty() ? default_exchange_fields() : m_fields;
    auto values = split_csv(view);
    auto get = [&](string_view name) -> string_view {
      for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
        if (names[i] == name) {
          return trim(values[i]);
        }
      }
      return {};
    };
    LineInfo info;
    Txn &t = info.found;
    string_view mid = get("message-id");
    string_view internal = get("internal-message-id");
    t.set_message_id(mid);
    if (!t.message_id.empty()) {
      info.key = "exchange:" + std::string(mid);
      info.queue_id = t.message_id;
    } else if (!internal.empty()) { // no message id, or an empty one ("<>")
      info.key = "exchange-internal:" + std::string(internal);
      info.queue_id = std::string(internal);
    }
    t.add_address(Role::log_from, get("sender-address"));
    t.add_address(Role::log_from, get("return-path"));
    for (string_view col :
         {string_view("recipient-address"), string_view("related-recipient-address")}) {
      string_view list = get(col);
      while (!list.empty()) {
        std::size_t semi = list.find(';');
        t.add_address(Role::log_to, list.substr(0, semi));
        if (semi == string_view::npos) {
          break;
        }
        list.remove_prefix(semi + 1);
      }
    }
    for (string_view col : {string_view("client-ip"), string_view("original-client-ip")}) {
      t.add_ip(Role::log_client, get(col));
    }
    t.subject = sanitize_utf8(get("message-subject"));
    std::optional<std::int64_t> date;
    string_view dt = get("date-time");
    std::size_t p = 0;
    if (dt.size() >= 19) {
      date = parse_iso(dt, p);
    }
    if (values.size() < 3 || !date) {
      sink.unparsed();
    }
    bool personal =
        info.key.empty() && (!t.subject.empty() || contains_email(view) || contains_ip(view));
    sink.entry(std::move(info), date, personal);
  }

private:
  std::vector<std::string> m_fields;
};

bool recognises(string_view first_line) {
  return starts_with(first_line, "#Software: Microsoft Exchange") ||
         starts_with(first_line, "#Fields:");
}

std::unique_ptr<FileParser> open() { return std::make_unique<ExchangeParser>(); }

} // namespace

const FileFormat &exchange_format() {
  static const FileFormat k_format{"exchange", recognises, open};
  return k_format;
}

} // namespace maildsar::connectors::maillog
