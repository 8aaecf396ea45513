// SPDX-License-Identifier: GPL-3.0-or-later
// The agent protocol (issue 15) in-process: remote::serve on one end of a socketpair, the test
// writing request lines and reading response lines on the other.
#include "remote/protocol.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace maildsar::remote {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

/** An agent serving on a thread; the test is its client. */
class Session {
public:
  explicit Session(std::size_t max_request = k_max_request_bytes) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    m_client = sv[0];
    m_agent = sv[1];
    m_reader = LineReader(m_client, k_max_response_bytes);
    m_ops["status"] = [](const json &) -> core::Result<json> { return json{{"stale", false}}; };
    m_ops["echo"] = [](const json &r) -> core::Result<json> { return json{{"got", r.value("x", 0)}}; };
    m_ops["fails"] = [](const json &) -> core::Result<json> {
      return core::fail(core::ErrorCode::not_indexed, "never indexed: mailboxes", "run index");
    };
    m_ops["throws"] = [](const json &) -> core::Result<json> { throw std::runtime_error("boom"); };
    m_thread = std::thread([this, max_request] {
      m_rc = serve(m_agent, m_agent, AgentIdentity{"mx1", "maildsar test"}, m_ops, max_request);
      ::shutdown(m_agent, SHUT_WR);
    });
  }
  ~Session() {
    if (m_client >= 0) {
      ::shutdown(m_client, SHUT_WR);
    }
    m_thread.join();
    ::close(m_client);
    ::close(m_agent);
  }
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  void send(std::string_view line) { ASSERT_TRUE(write_line(m_client, line)); }
  /** The next response line, parsed; null at EOF. */
  json receive() {
    std::string line;
    const ReadStatus st = m_reader.read(line, Clock::now() + std::chrono::seconds(10));
    if (st != ReadStatus::line) {
      return nullptr;
    }
    return json::parse(line);
  }
  json ask(const json &request) {
    send(request.dump());
    return receive();
  }
  /** Ends the client side and returns serve()'s result. */
  int finish() {
    ::shutdown(m_client, SHUT_WR);
    m_thread.join();
    m_thread = std::thread([] {});
    return m_rc;
  }

private:
  int m_client = -1;
  int m_agent = -1;
  std::map<std::string, OpHandler> m_ops;
  std::thread m_thread;
  int m_rc = -1;
  LineReader m_reader{-1, k_max_response_bytes};
};

json hello() { return json{{"op", "hello"}, {"version", 1}}; }

TEST(AgentProtocol, HelloAnswersVersionHostAndOps) {
  Session s;
  json h = s.ask(hello());
  EXPECT_EQ(h["ok"], true);
  EXPECT_EQ(h["op"], "hello");
  EXPECT_EQ(h["version"], 1);
  EXPECT_EQ(h["host"], "mx1");
  EXPECT_EQ(h["program"], "maildsar test");
  EXPECT_EQ(h["ops"], json::array({"hello", "echo", "fails", "status", "throws"}));
  json st = s.ask({{"op", "status"}});
  EXPECT_EQ(st, json({{"ok", true}, {"op", "status"}, {"stale", false}}));
  json e = s.ask({{"op", "echo"}, {"x", 7}});
  EXPECT_EQ(e["got"], 7);
  EXPECT_EQ(s.finish(), 0); // EOF ends the session cleanly
}

TEST(AgentProtocol, AnotherVersionIsRefusedNamingBothAndEndsTheSession) {
  Session s;
  json h = s.ask({{"op", "hello"}, {"version", 2}});
  EXPECT_EQ(h["ok"], false);
  EXPECT_EQ(h["op"], "hello");
  EXPECT_EQ(h["versions"], json::array({1}));
  const std::string m = h["error"]["message"];
  EXPECT_NE(m.find("this agent speaks version 1, the client asked for 2"), std::string::npos) << m;
  EXPECT_EQ(s.receive(), nullptr); // closed
  EXPECT_EQ(s.finish(), 1);
}

TEST(AgentProtocol, HelloWithoutAVersionIsAMismatch) {
  Session s;
  json h = s.ask({{"op", "hello"}, {"version", "1"}});
  EXPECT_EQ(h["ok"], false);
  EXPECT_NE(h["error"]["message"].get<std::string>().find("asked for \"1\""), std::string::npos) << h.dump();
  EXPECT_EQ(s.finish(), 1);
}

TEST(AgentProtocol, TheFirstRequestMustBeHello) {
  Session s;
  json r = s.ask({{"op", "status"}});
  EXPECT_EQ(r["ok"], false);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("the first request must be"), std::string::npos);
  EXPECT_EQ(s.receive(), nullptr);
  EXPECT_EQ(s.finish(), 1);
}

TEST(AgentProtocol, AnOversizeLineIsAnErrorAndClosesTheSession) {
  Session s(64);
  ASSERT_EQ(s.ask(hello())["ok"], true) << "a 29-byte hello fits in 64";
  s.send(std::string(200, 'x')); // never a newline within the bound
  json r = s.receive();
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["error"]["code"], "data");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("longer than 64 bytes"), std::string::npos);
  EXPECT_EQ(s.receive(), nullptr);
  EXPECT_EQ(s.finish(), 1);
}

TEST(AgentProtocol, UnknownOpGarbageAndHandlerErrorsAnswerAndTheSessionGoesOn) {
  Session s;
  ASSERT_EQ(s.ask(hello())["ok"], true);
  json u = s.ask({{"op", "erase"}});
  EXPECT_EQ(u["ok"], false);
  EXPECT_EQ(u["op"], "erase");
  EXPECT_EQ(u["error"]["message"], "unknown op 'erase'");
  s.send("{not json");
  json g = s.receive();
  EXPECT_EQ(g["ok"], false);
  EXPECT_EQ(g["error"]["message"], "request is not a JSON object");
  s.send("[1,2]");
  EXPECT_EQ(s.receive()["error"]["message"], "request is not a JSON object");
  s.send(R"({"op": 5})");
  EXPECT_EQ(s.receive()["error"]["message"], "request has no \"op\" string");
  s.send(std::string("\x00\xff\xfe", 3));
  EXPECT_EQ(s.receive()["ok"], false);
  json f = s.ask({{"op", "fails"}});
  EXPECT_EQ(f["ok"], false);
  EXPECT_EQ(f["error"]["code"], "not_indexed");
  EXPECT_EQ(f["error"]["message"], "never indexed: mailboxes");
  EXPECT_EQ(f["error"]["hint"], "run index");
  json t = s.ask({{"op", "throws"}});
  EXPECT_EQ(t["ok"], false);
  EXPECT_NE(t["error"]["message"].get<std::string>().find("boom"), std::string::npos) << t.dump();
  EXPECT_EQ(s.ask({{"op", "echo"}, {"x", 3}})["got"], 3); // still answering
  EXPECT_EQ(s.finish(), 0);
}

TEST(AgentProtocol, GarbageBeforeHelloEndsTheSession) {
  Session s;
  s.send("GET / HTTP/1.1");
  json g = s.receive();
  EXPECT_EQ(g["ok"], false);
  EXPECT_EQ(s.receive(), nullptr);
  EXPECT_EQ(s.finish(), 1);
}

TEST(LineReader, TimesOutAndKeepsPartialLines) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  LineReader r(sv[0], 16);
  std::string line;
  ASSERT_TRUE(write_line(sv[1], "one"));
  EXPECT_EQ(r.read(line, Clock::now() + std::chrono::seconds(5)), ReadStatus::line);
  EXPECT_EQ(line, "one");
  ASSERT_EQ(::write(sv[1], "tw", 2), 2);
  const auto start = Clock::now();
  EXPECT_EQ(r.read(line, Clock::now() + std::chrono::milliseconds(100)), ReadStatus::timeout);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(90));
  ASSERT_TRUE(write_line(sv[1], "o"));
  EXPECT_EQ(r.read(line, Clock::now() + std::chrono::seconds(5)), ReadStatus::line);
  EXPECT_EQ(line, "two");
  ::close(sv[1]);
  EXPECT_EQ(r.read(line, Clock::now() + std::chrono::seconds(5)), ReadStatus::eof);
  ::close(sv[0]);
}

TEST(Base64, RoundTripsEveryLengthAndByte) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes += static_cast<char>(i * 7 % 256);
    const std::string text = base64_encode(bytes);
    EXPECT_EQ(text.size() % 4, 0U);
    EXPECT_EQ(base64_decode(text), bytes) << i;
  }
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Base64, DecodesOnlyTheOneCanonicalText) {
  EXPECT_EQ(base64_decode(""), std::string());
  for (const char *bad : {"Zg=", "Zg", "Z===", "Zh==", "Zm9=", "Zm 9v", "Zm9v\n", "Zg==Zg==", "Zm9-", "Zm9_",
                          "=Zm9", "Zm=v", "\x80Zm9"}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
}

TEST(PackagePath, AcceptsPlainRelativePathsOnly) {
  for (const char *good : {"report.html", "items/0001 mailboxes/message.eml", "Entwürfe/a b.txt", "a/b/c"}) {
    EXPECT_TRUE(is_package_path(good)) << good;
  }
  for (const std::string &bad : {std::string(), std::string("/etc/passwd"), std::string("../x"), std::string("a/../b"),
                                std::string("a/./b"), std::string("a//b"), std::string("a/"), std::string(".hidden"),
                                std::string("a\\b"), std::string("a\nb"), std::string("a\0b", 3), std::string(256, 'x'),
                                std::string(1025, 'x')}) {
    EXPECT_FALSE(is_package_path(bad)) << bad;
  }
}

} // namespace
} // namespace maildsar::remote
