// SPDX-License-Identifier: GPL-3.0-or-later
// The host client (issue 15) against small stand-in agents run through the program transport:
// every way a host can fail is one error naming the host, and the child is always reaped.
#include "remote/host_client.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <sys/wait.h>

namespace maildsar::remote {
namespace {

using nlohmann::json;

core::HostConfig program_host(std::string name, std::vector<std::string> command, std::int64_t timeout = 10) {
  core::HostConfig h;
  h.name = std::move(name);
  h.transport = "program";
  h.command = std::move(command);
  h.timeout_seconds = timeout;
  return h;
}

/** A shell stand-in for an agent: answers hello with `hello_answer`, then echoes per line. */
core::HostConfig sh_agent(std::string name, const std::string &script, std::int64_t timeout = 10) {
  return program_host(std::move(name), {"/bin/sh", "-c", script}, timeout);
}

void expect_error(const core::Result<HostClient> &r, core::ErrorCode code, const std::string &part) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
}

/** No child of the test is left unreaped. */
void expect_no_children() {
  int status = 0;
  EXPECT_EQ(::waitpid(-1, &status, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST(HostClient, TalksToAnAgentThatAnswers) {
  auto c = HostClient::connect(sh_agent(
      "mx1", R"(read l; echo '{"ok":true,"op":"hello","version":1,"host":"mx1.example","program":"p","ops":["hello","status"]}'
               read l; echo '{"ok":true,"op":"status","stale":false}'
               read l; echo '{"ok":false,"op":"find","error":{"code":"not_indexed","message":"never indexed: x","hint":"h"}}'
               read l || exit 0; exit 9)"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->hello().host, "mx1.example");
  EXPECT_EQ(c->hello().ops, (std::vector<std::string>{"hello", "status"}));
  auto st = c->request({{"op", "status"}});
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ((*st)["stale"], false);
  auto f = c->request({{"op", "find"}});
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, core::ErrorCode::not_indexed);
  EXPECT_EQ(f.error().message, "host mx1: find: never indexed: x");
  c->close();
  expect_no_children();
}

TEST(HostClient, AMissingProgramCannotStart) {
  expect_error(HostClient::connect(program_host("mx2", {"/nonexistent/maildsar", "agent"})),
               core::ErrorCode::temp_fail, "host mx2: cannot start /nonexistent/maildsar: No such file or directory");
  expect_no_children();
}

TEST(HostClient, AnAgentThatExitsAtOnceIsNamedWithItsStatusAndStderr) {
  expect_error(HostClient::connect(sh_agent("mx3", "echo 'maildsar: error: config missing' >&2; exit 78")),
               core::ErrorCode::temp_fail,
               "host mx3: the agent ended the connection without answering hello (exit status 78): maildsar: "
               "error: config missing");
  expect_no_children();
}

// An agent that answers hello with its reason and ends without reading (as a listening
// session whose config cannot be read does) while the client is still writing: the client's
// write fails, and the failure is the agent's reason, not "ended without answering".
TEST(HostClient, AnAgentThatRefusesBeforeReadingIsNamedWithItsReason) {
  const nlohmann::json first{{"op", "status"}, {"pad", std::string(4U << 20U, 'x')}};
  expect_error(HostClient::connect(sh_agent("mx9", R"(echo '{"ok":false,"op":"hello","error":{"message":"cannot read /etc/maildsar.json"}}'
                                                      sleep 0.3; exit 78)"),
                                   &first),
               core::ErrorCode::data, "host mx9: hello: cannot read /etc/maildsar.json");
  expect_no_children();
}

TEST(HostClient, AFirstRequestTravelsWithHelloAndItsAnswerIsReadInOrder) {
  // The stand-in reads both lines before it answers anything: the status went out with hello,
  // not after hello's answer.
  const json status{{"op", "status"}};
  auto c = HostClient::connect(
      sh_agent("mx1", R"(read a; read b
               case "$a$b" in *'"hello"'*'"status"'*) ;; *) exit 9 ;; esac
               echo '{"ok":true,"op":"hello","version":1,"host":"mx1"}'
               echo '{"ok":true,"op":"status","stale":false}'
               read l; echo '{"ok":true,"op":"find","hits":[]}'
               read l || exit 0; exit 9)"),
      &status);
  ASSERT_TRUE(c) << c.error().message;
  auto st = c->answer();
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ((*st)["stale"], false);
  // Nothing else is waiting for its answer.
  EXPECT_EQ(c->answer().error().code, core::ErrorCode::internal);
  auto f = c->request({{"op", "find"}});
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_TRUE((*f)["hits"].empty());
  c->close();

  // A request made before the first one's answer was read gets its own answer, not that one.
  auto d = HostClient::connect(sh_agent("mx2", R"(read a; read b
               echo '{"ok":true,"op":"hello","version":1}'
               echo '{"ok":true,"op":"status","stale":true}'
               read l; echo '{"ok":true,"op":"find","hits":[]}'; cat >/dev/null)"),
                               &status);
  ASSERT_TRUE(d) << d.error().message;
  auto f2 = d->request({{"op", "find"}});
  ASSERT_TRUE(f2) << f2.error().message;
  EXPECT_TRUE((*f2)["hits"].is_array());
  d->close();

  // An agent of another version refuses hello and ends: connect fails, the status is not served.
  expect_error(HostClient::connect(sh_agent("mx3", R"(read l; echo '{"ok":false,"op":"hello","error":{"code":"data","message":"protocol version mismatch: this agent speaks version 2, the client asked for 1"}}')"),
                                   &status),
               core::ErrorCode::data, "host mx3: hello: protocol version mismatch");
  expect_no_children();
}

TEST(HostClient, AnotherProtocolVersionIsAMismatch) {
  expect_error(HostClient::connect(sh_agent("mx4", R"(read l; echo '{"ok":true,"op":"hello","version":2}'; cat >/dev/null)")),
               core::ErrorCode::data,
               "host mx4: protocol version mismatch: this maildsar speaks version 1, the agent answered version 2");
  // The agent's own refusal (it speaks another version than we asked for) is passed on.
  expect_error(
      HostClient::connect(sh_agent(
          "mx5", R"(read l; echo '{"ok":false,"op":"hello","error":{"code":"data","message":"protocol version mismatch: this agent speaks version 2, the client asked for 1"}}')")),
      core::ErrorCode::data, "host mx5: hello: protocol version mismatch: this agent speaks version 2");
  expect_no_children();
}

TEST(HostClient, GarbageIsNotTheProtocol) {
  expect_error(HostClient::connect(sh_agent("mx6", "echo 'Welcome to mx6!'; cat >/dev/null")), core::ErrorCode::data,
               "host mx6: the answer to hello is not the agent protocol: 'Welcome to mx6!'");
  expect_error(HostClient::connect(sh_agent("mx6", R"(read l; echo '{"ok":true,"op":"status","version":1}')")),
               core::ErrorCode::data, "host mx6: the answer to hello is for another request");
  expect_no_children();
}

TEST(HostClient, ASilentAgentTimesOutAndIsKilled) {
  const auto start = std::chrono::steady_clock::now();
  expect_error(HostClient::connect(program_host("mx7", {"/bin/sleep", "30"}, 1)), core::ErrorCode::temp_fail,
               "host mx7: no answer to hello within 1s; the agent was stopped");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  expect_no_children();
}

TEST(HostClient, AnAgentThatDiesMidSessionIsNamed) {
  auto c = HostClient::connect(sh_agent("mx8", R"(read l; echo '{"ok":true,"op":"hello","version":1}'; read l; kill -9 $$)"));
  ASSERT_TRUE(c) << c.error().message;
  auto r = c->request({{"op", "status"}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("host mx8: the agent ended the connection without answering status (killed by signal 9)"),
            std::string::npos)
      << r.error().message;
  auto again = c->request({{"op", "status"}});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, "host mx8: the session has ended");
  expect_no_children();
}

TEST(HostClient, AnAnswerBeyondTheBoundStopsTheAgent) {
  // After hello, the "status" answer is 65 MiB without a newline: read up to the bound, no further.
  auto c = HostClient::connect(sh_agent(
      "mx9", R"(read l; echo '{"ok":true,"op":"hello","version":1}'; read l; head -c 68157440 /dev/zero | tr '\0' x; sleep 30)"));
  ASSERT_TRUE(c) << c.error().message;
  const auto start = std::chrono::steady_clock::now();
  auto r = c->request({{"op", "status"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::data);
  EXPECT_EQ(r.error().message, "host mx9: the answer to status is longer than 64 MiB; the agent was stopped");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(9)) << "not waiting for the sleep";
  expect_no_children();
}

} // namespace
TEST(HostClient, AnAgentThatOutlivesItsSessionIsKilledAtClose) {
  // The end of input does not end this one: close() waits its grace (2 s) for the exit, then
  // kills and reaps it, rather than waiting for the sleep.
  auto c = HostClient::connect(
      sh_agent("mx10", R"(read l; echo '{"ok":true,"op":"hello","version":1}'; exec sleep 30 <&-)"));
  ASSERT_TRUE(c) << c.error().message;
  const auto start = std::chrono::steady_clock::now();
  c->close();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(1900)) << "killed before its grace";
  EXPECT_LT(took, std::chrono::seconds(20)) << "waited for the sleep";
  expect_no_children();
}

TEST(HostClient, AnAgentThatEndsAtTheEndOfInputIsReapedWithItsStatus) {
  auto c = HostClient::connect(
      sh_agent("mx11", R"(read l; echo '{"ok":true,"op":"hello","version":1}'; while read l; do :; done; exit 0)"));
  ASSERT_TRUE(c) << c.error().message;
  c->close();
  expect_no_children();
}

} // namespace maildsar::remote
