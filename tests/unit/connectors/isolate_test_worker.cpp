// SPDX-License-Identifier: GPL-3.0-or-later
// A worker for the isolation tests (test_isolate.cpp): each task misbehaves in one way, through the
// same worker_main as maildsar-worker.
#include "connectors/isolate.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <ctime>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

namespace iso = maildsar::connectors::isolate;
using maildsar::core::Status;

/** Writes raw bytes to the socket, past the framing. */
void raw(std::string_view bytes) { static_cast<void>(::write(iso::k_worker_fd, bytes.data(), bytes.size())); }

Status echo(std::string_view request, iso::Channel &channel) {
  // request: 'Q', u64 count, str text -> count frames 'X' text, then done with the count
  iso::Decoder in(request.substr(1));
  MAILDSAR_TRY_ASSIGN(std::uint64_t count, in.u64());
  MAILDSAR_TRY_ASSIGN(std::string text, in.str());
  for (std::uint64_t i = 0; i < count; ++i) {
    MAILDSAR_TRY(channel.send(iso::Encoder('X').str(text).take()));
  }
  return channel.send(iso::Encoder(iso::k_frame_done).u64(count).take());
}

Status open_fds(std::string_view, iso::Channel &channel) {
  iso::Encoder out(iso::k_frame_done);
  std::vector<int> fds;
  DIR *dir = opendir("/proc/self/fd");
  for (dirent *e = readdir(dir); e != nullptr; e = readdir(dir)) {
    if (e->d_name[0] != '.' && std::stoi(e->d_name) != dirfd(dir)) {
      fds.push_back(std::stoi(e->d_name));
    }
  }
  closedir(dir);
  out.u64(fds.size());
  for (int fd : fds) {
    out.u64(static_cast<std::uint64_t>(fd));
  }
  return channel.send(out.take());
}

/** The core-size limit the worker runs with: done, u64 soft, u64 hard (RLIM_INFINITY as is). */
Status core_limit(std::string_view, iso::Channel &channel) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_CORE, &limit) != 0) {
    return maildsar::core::fail(maildsar::core::ErrorCode::internal, "getrlimit(RLIMIT_CORE) failed");
  }
  return channel.send(iso::Encoder(iso::k_frame_done).u64(limit.rlim_cur).u64(limit.rlim_max).take());
}

/**
 * For the long-lived worker (--serve): each request names what to do. request: 'Q', str mode,
 * u64 n. "echo": one 'X' frame with the process id and the request count, then done; "burn":
 * burn n ms of CPU first, then as echo; "nap": sleep n ms first, then as echo; "spin", "sleep", "crash", "bloat": as the tasks of those
 * names; "noise": a line on stderr, then as echo; "fail": the task's own error; "extra": done, then one more frame (a protocol error).
 */
Status scripted(std::string_view request, iso::Channel &channel) {
  static std::uint64_t requests = 0;
  ++requests;
  iso::Decoder in(request.substr(1));
  MAILDSAR_TRY_ASSIGN(std::string mode, in.str());
  MAILDSAR_TRY_ASSIGN(std::uint64_t n, in.u64());
  if (mode == "burn") {
    timespec start{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
    for (;;) {
      timespec now{};
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
      if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1'000'000 >= static_cast<long>(n)) {
        break;
      }
    }
  } else if (mode == "nap") {
    timespec nap{static_cast<time_t>(n / 1000), static_cast<long>(n % 1000) * 1'000'000};
    nanosleep(&nap, nullptr);
  } else if (mode == "spin") {
    volatile std::uint64_t spins = 0;
    for (;;) {
      spins = spins + 1U;
    }
  } else if (mode == "sleep") {
    for (;;) {
      pause();
    }
  } else if (mode == "crash") {
    std::raise(SIGSEGV);
  } else if (mode == "noise") {
    const char noise[] = "noise of an earlier request\n";
    static_cast<void>(::write(2, noise, sizeof noise - 1));
  } else if (mode == "bloat") {
    std::vector<std::string> hoard;
    for (;;) {
      hoard.emplace_back(std::size_t{1} << 20, 'x');
    }
  } else if (mode == "fail") {
    return maildsar::core::fail(maildsar::core::ErrorCode::no_input, "the task's own error");
  }
  MAILDSAR_TRY(channel.send(iso::Encoder('X').u64(static_cast<std::uint64_t>(::getpid())).u64(requests).take()));
  MAILDSAR_TRY(channel.send(iso::Encoder(iso::k_frame_done).take()));
  if (mode == "extra") {
    MAILDSAR_TRY(channel.send(iso::Encoder('X').u64(0).u64(0).take()));
  }
  return {};
}

} // namespace

int main(int argc, char **argv) {
  std::map<std::string, iso::TaskFunction, std::less<>> tasks{
      {"echo", echo},
      {"fds", open_fds},
      {"core-limit", core_limit},
      {"scripted", scripted},
      {"crash",
       [](std::string_view, iso::Channel &channel) -> Status {
         MAILDSAR_TRY(channel.send(iso::Encoder('X').str("before the crash").take()));
         std::raise(SIGSEGV);
         return {};
       }},
      {"spin",
       [](std::string_view, iso::Channel &) -> Status {
         volatile std::uint64_t n = 0;
         for (;;) {
           n = n + 1U;
         }
       }},
      {"sleep",
       [](std::string_view, iso::Channel &) -> Status {
         for (;;) {
           pause();
         }
       }},
      {"bloat",
       [](std::string_view, iso::Channel &) -> Status {
         std::vector<std::string> hoard;
         for (;;) {
           hoard.emplace_back(std::size_t{1} << 20, 'x');
         }
       }},
      {"malloc-exit",
       [](std::string_view, iso::Channel &) -> Status {
         // What libpst's pst_malloc does: print, exit(1) with errno still ENOMEM.
         void *p = std::malloc(std::size_t{1} << 40);
         if (p == nullptr) {
           std::exit(1);
         }
         std::free(p);
         return {};
       }},
      {"garbage",
       [](std::string_view, iso::Channel &) -> Status {
         raw(std::string("\x05\x00\x00\x00" "Zjunk", 9)); // a frame of an unknown type
         return {};
       }},
      {"truncated",
       [](std::string_view, iso::Channel &) -> Status {
         raw(std::string("\x64\x00\x00\x00" "Xonly ten.", 14)); // announces 100 bytes, sends 10
         std::_Exit(0);
       }},
      {"oversized",
       [](std::string_view, iso::Channel &) -> Status {
         raw(std::string("\xff\xff\xff\x7f" "X", 5));
         pause();
         return {};
       }},
      {"no-final", [](std::string_view, iso::Channel &channel) -> Status {
         return channel.send(iso::Encoder('X').str("and then nothing").take());
       }},
      {"fail", [](std::string_view, iso::Channel &) -> Status {
         return maildsar::core::fail(maildsar::core::ErrorCode::no_input, "the task's own error");
       }},
      {"exit-after-done", [](std::string_view, iso::Channel &channel) -> Status {
         MAILDSAR_TRY(channel.send(iso::Encoder(iso::k_frame_done).u64(0).take()));
         std::_Exit(5);
       }},
      {"stderr", [](std::string_view, iso::Channel &) -> Status {
         const char message[] = "noise\nlast words of the worker\n";
         static_cast<void>(::write(2, message, sizeof message - 1));
         std::raise(SIGABRT);
         return {};
       }},
  };
  return iso::worker_main(argc, argv, tasks);
}
