// SPDX-License-Identifier: GPL-3.0-or-later
#include "remote/protocol.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace maildsar::remote {

namespace {

using Clock = std::chrono::steady_clock;

/** Milliseconds poll() may wait until `deadline`: -1 for none, 0 once it has passed. */
int poll_timeout(Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) {
    return -1;
  }
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) {
    return 0;
  }
  return left > 3600000 ? 3600000 : static_cast<int>(left);
}

/** At most `n` bytes of untrusted text for a message (a client's op or version). */
std::string clip(std::string_view text, std::size_t n = 64) {
  return text.size() <= n ? std::string(text) : std::string(text.substr(0, n)) + "...";
}

} // namespace

ReadStatus LineReader::read(std::string &line, Clock::time_point deadline, int other_fd, std::string *other,
                            std::size_t other_max) {
  int side = other != nullptr ? other_fd : -1;
  for (;;) {
    if (const auto nl = m_buffer.find('\n'); nl != std::string::npos) {
      if (nl > m_max) {
        return ReadStatus::too_long;
      }
      line.assign(m_buffer, 0, nl);
      m_buffer.erase(0, nl + 1);
      return ReadStatus::line;
    }
    if (m_buffer.size() > m_max) {
      return ReadStatus::too_long;
    }
    if (m_eof) {
      if (m_buffer.empty()) {
        return ReadStatus::eof;
      }
      line = std::move(m_buffer);
      m_buffer.clear();
      return ReadStatus::line;
    }
    const int wait = poll_timeout(deadline);
    if (wait == 0) {
      return ReadStatus::timeout;
    }
    pollfd fds[2] = {{m_fd, POLLIN, 0}, {side, POLLIN, 0}};
    const int rc = ::poll(fds, side >= 0 ? 2 : 1, wait);
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      m_errno = errno;
      return ReadStatus::io_error;
    }
    if (rc == 0) {
      return ReadStatus::timeout;
    }
    if (side >= 0 && fds[1].revents != 0) {
      char buf[4096];
      const ssize_t n = ::read(side, buf, sizeof buf);
      if (n > 0) {
        other->append(buf, static_cast<std::size_t>(n));
        if (other->size() > other_max) {
          other->erase(0, other->size() - other_max);
        }
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        side = -1; // closed: stop watching it
      }
    }
    if (fds[0].revents != 0) {
      char buf[65536];
      const ssize_t n = ::read(m_fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) {
          continue;
        }
        if (errno == ECONNRESET) {
          m_eof = true;
          continue;
        }
        m_errno = errno;
        return ReadStatus::io_error;
      }
      if (n == 0) {
        m_eof = true;
      } else {
        m_buffer.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
}

core::Status write_line(int fd, std::string_view text) {
  std::string data;
  data.reserve(text.size() + 1);
  data.append(text);
  data.push_back('\n');
  std::size_t done = 0;
  bool socket = true;
  while (done < data.size()) {
    ssize_t n = socket ? ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL) : -1;
    if (n < 0 && socket && errno == ENOTSOCK) {
      socket = false;
      continue;
    }
    if (!socket) {
      n = ::write(fd, data.data() + done, data.size() - done);
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return core::fail(core::ErrorCode::io, fmt::format("write: {}", std::strerror(errno)));
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

nlohmann::json error_response(std::string_view op, const core::Error &error) {
  return nlohmann::json{{"ok", false},
                        {"op", op},
                        {"error",
                         {{"code", core::to_string(error.code)}, {"message", error.message}, {"hint", error.hint}}}};
}

int serve(int in_fd, int out_fd, const AgentIdentity &self, const std::map<std::string, OpHandler> &ops,
          std::size_t max_request_bytes) {
  LineReader reader(in_fd, max_request_bytes);
  bool greeted = false;
  std::string line;
  auto answer = [&](const nlohmann::json &j) {
    return write_line(out_fd, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)).has_value();
  };
  auto refuse = [&](std::string_view op, std::string message, std::string hint = {}) {
    return answer(error_response(op, core::Error{core::ErrorCode::data, std::move(message), std::move(hint)}));
  };
  for (;;) {
    switch (reader.read(line, Clock::time_point::max())) {
    case ReadStatus::line:
      break;
    case ReadStatus::eof:
      return 0;
    case ReadStatus::too_long:
      (void)refuse("", fmt::format("request longer than {} bytes; session closed", max_request_bytes));
      return 1;
    case ReadStatus::timeout:
    case ReadStatus::io_error:
      return 74;
    }
    const nlohmann::json request = nlohmann::json::parse(line, nullptr, false);
    if (request.is_discarded() || !request.is_object()) {
      if (!refuse("", "request is not a JSON object", R"(one object per line, e.g. {"op":"status"})") || !greeted) {
        return 1;
      }
      continue;
    }
    const auto op_it = request.find("op");
    if (op_it == request.end() || !op_it->is_string()) {
      if (!refuse("", R"(request has no "op" string)") || !greeted) {
        return 1;
      }
      continue;
    }
    const std::string op = clip(op_it->get<std::string>());
    if (op == "hello") {
      const auto v = request.find("version");
      if (v == request.end() || !v->is_number_integer() || v->get<std::int64_t>() != k_protocol_version) {
        const std::string asked = v == request.end() ? std::string("none") : clip(v->dump());
        nlohmann::json e = error_response(
            "hello", core::Error{core::ErrorCode::data,
                                 fmt::format("protocol version mismatch: this agent speaks version {}, the client "
                                             "asked for {}",
                                             k_protocol_version, asked),
                                 "run the same maildsar release on the DPO host and on this host"});
        e["versions"] = nlohmann::json::array({k_protocol_version});
        (void)answer(e);
        return 1;
      }
      greeted = true;
      nlohmann::json names = nlohmann::json::array({"hello"});
      for (const auto &[name, handler] : ops) {
        names.push_back(name);
      }
      if (!answer({{"ok", true},
                   {"op", "hello"},
                   {"version", k_protocol_version},
                   {"host", self.host},
                   {"program", self.program},
                   {"ops", names}})) {
        return 74;
      }
      continue;
    }
    if (!greeted) {
      (void)refuse(op, R"(the first request must be {"op":"hello","version":1}; session closed)");
      return 1;
    }
    const auto handler = ops.find(op);
    if (handler == ops.end()) {
      if (!refuse(op, fmt::format("unknown op '{}'", op), "hello lists the ops this agent answers")) {
        return 74;
      }
      continue;
    }
    core::Result<nlohmann::json> result;
    try {
      result = handler->second(request);
    } catch (...) {
      result = std::unexpected(core::error_from_current_exception(fmt::format("{}: ", op)));
    }
    nlohmann::json response;
    if (result) {
      response = std::move(*result);
      if (!response.is_object()) {
        response = nlohmann::json{{"result", std::move(response)}};
      }
      response["ok"] = true;
      response["op"] = op;
    } else {
      response = error_response(op, result.error());
    }
    if (!answer(response)) {
      return 74;
    }
  }
}

} // namespace maildsar::remote
