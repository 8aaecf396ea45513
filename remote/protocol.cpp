// SPDX-License-Identifier: GPL-3.0-or-later
#include "remote/protocol.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
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

namespace {

constexpr std::string_view k_b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  return c == '+' ? 62 : c == '/' ? 63 : -1;
}

} // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16U) |
                            (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8U) |
                            std::uint32_t{static_cast<unsigned char>(bytes[i + 2])};
    out += k_b64[(v >> 18U) & 63U];
    out += k_b64[(v >> 12U) & 63U];
    out += k_b64[(v >> 6U) & 63U];
    out += k_b64[v & 63U];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16U;
    if (rest == 2) {
      v |= std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8U;
    }
    out += k_b64[(v >> 18U) & 63U];
    out += k_b64[(v >> 12U) & 63U];
    out += rest == 2 ? k_b64[(v >> 6U) & 63U] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=') {
      pad = text[i + 2] == '=' ? 2 : 1;
    }
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      if (k >= 4 - static_cast<std::size_t>(pad)) {
        v <<= 6U;
        continue;
      }
      const int d = b64_value(text[i + k]);
      if (d < 0) {
        return std::nullopt;
      }
      v = (v << 6U) | static_cast<std::uint32_t>(d);
    }
    // The bits a short final group leaves unused must be zero (one text for one byte string).
    if ((pad == 1 && (v & 0xffU) != 0) || (pad == 2 && (v & 0xffffU) != 0)) {
      return std::nullopt;
    }
    out += static_cast<char>((v >> 16U) & 0xffU);
    if (pad < 2) {
      out += static_cast<char>((v >> 8U) & 0xffU);
    }
    if (pad < 1) {
      out += static_cast<char>(v & 0xffU);
    }
  }
  return out;
}

bool is_package_path(std::string_view path) {
  if (path.empty() || path.size() > 1024 || path.front() == '/') {
    return false;
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, slash - start);
    if (part.empty() || part.size() > 255 || part.front() == '.') {
      return false;
    }
    for (const char c : part) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f || c == '\\') {
        return false;
      }
    }
    start = slash + 1;
  }
  return true;
}

} // namespace maildsar::remote
