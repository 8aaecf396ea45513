// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/mta_queue.hpp"

#include "connectors/limits.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "connectors/queue/queue_file.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/time.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <spawn.h>
#include <string_view>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char **environ;

namespace maildsar::connectors {

namespace {

namespace fs = std::filesystem;

/** The Postfix queues that hold queue files in cleanup's format (not maildrop: postdrop's). */
constexpr std::array<std::string_view, 5> k_postfix_queues{"incoming", "active", "deferred", "hold", "corrupt"};
/** Hashed queue sub-folders (hash_queue_depth is at most 16 levels; real ones 1 or 2). */
constexpr int k_max_depth = 4;
/** An Exim -H file larger than this is no -H file (envelope and header only). */
constexpr std::uint64_t k_max_exim_header_file = 64ULL << 20;

bool is_postfix_queue_name(std::string_view name) {
  return std::find(k_postfix_queues.begin(), k_postfix_queues.end(), name) != k_postfix_queues.end();
}

std::string base_name(const std::string &path) { return fs::path(path).filename().string(); }

bool inside_root(const std::string &path, const std::string &root) {
  if (root.empty()) {
    return true;
  }
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') {
    r.pop_back();
  }
  return path == r || path.starts_with(r + "/");
}

/** Lists the files of one queue directory tree; reports what is not a plain file or folder. */
class Walker {
public:
  Walker(StoreKind kind, ItemSink &errors, std::vector<FileEntry> &out) : m_kind(kind), m_errors(errors), m_out(out) {}

  void walk(const std::string &dir, const std::string &folder, int depth) {
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) {
      m_errors.error(ScanError{dir, "", fmt::format("cannot read directory: {}", ec.message())});
      return;
    }
    std::vector<std::pair<std::string, core::FileStat>> entries;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (name.empty() || name.front() == '.') {
        continue;
      }
      std::string path = it->path().string();
      auto st = core::lstat_file(path);
      if (!st) {
        m_errors.error(ScanError{path, "", st.error().message});
        continue;
      }
      entries.emplace_back(std::move(path), *st);
    }
    if (ec) {
      m_errors.error(ScanError{dir, "", fmt::format("error while reading directory: {}", ec.message())});
    }
    std::sort(entries.begin(), entries.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
    for (auto &[path, st] : entries) {
      if (S_ISLNK(st.mode)) {
        m_errors.error(ScanError{path, "", "symbolic link, not followed"});
      } else if (S_ISDIR(st.mode)) {
        if (depth >= k_max_depth) {
          m_errors.error(ScanError{path, "", "queue folder nested too deep, not read"});
        } else {
          walk(path, m_kind == StoreKind::exim_spool ? folder + "/" + base_name(path) : folder, depth + 1);
        }
      } else if (!S_ISREG(st.mode)) {
        m_errors.error(ScanError{path, "", "not a regular file or directory, skipped"});
      } else if (m_kind == StoreKind::postfix_queue) {
        postfix_file(path, st, folder);
      } else {
        exim_file(path, st, folder);
      }
    }
  }

private:
  void postfix_file(const std::string &path, const core::FileStat &st, const std::string &folder) {
    if (!queue::is_postfix_queue_id(base_name(path))) {
      m_errors.skipped(path, SkipReason::not_message);
      return;
    }
    // cleanup creates an incoming file 0600 and sets the owner's execute bit once it is
    // complete; without it the file is still being written.
    if (folder == "incoming" && (st.mode & S_IXUSR) == 0) {
      m_errors.skipped(path, SkipReason::in_delivery);
      return;
    }
    m_out.push_back(FileEntry{path, folder, "", st});
  }

  void exim_file(const std::string &path, const core::FileStat &st, const std::string &folder) {
    std::string name = base_name(path);
    std::string_view id = std::string_view(name).substr(0, name.size() >= 2 ? name.size() - 2 : 0);
    if (name.ends_with("-H") && queue::is_exim_message_id(id)) {
      m_out.push_back(FileEntry{path, folder, "", st});
      return;
    }
    if (name.ends_with("-D") && queue::is_exim_message_id(id)) {
      // Part of its -H file's item; without one, a message still being received.
      if (!core::lstat_file(path.substr(0, path.size() - 2) + "-H")) {
        m_errors.skipped(path, SkipReason::in_delivery);
      }
      return;
    }
    // -J (delivery journal), -T (an -H being written), -K, anything else.
    m_errors.skipped(path, name.ends_with("-T") ? SkipReason::in_delivery : SkipReason::not_message);
  }

  StoreKind m_kind;
  ItemSink &m_errors;
  std::vector<FileEntry> &m_out;
};

/** The queue file(s) of an item, read bounded: what is parsed, and the SHA-256 of all of it. */
struct QueueFiles {
  std::string first;     // Postfix: the queue file (head); Exim: the -H file
  std::string data;      // Exim: the -D file (head)
  bool cut = false;      // the file (Postfix) or -D file (Exim) is longer than what was read
  std::uint64_t size = 0;
  std::string sha256;
};

core::Result<QueueFiles> read_queue_files(const Locator &loc, std::uint64_t max) {
  QueueFiles q;
  MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(loc.path));
  MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd.get(), loc.path));
  if (!S_ISREG(st.mode)) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: not a regular file", loc.path));
  }
  if (loc.store == StoreKind::postfix_queue) {
    MAILDSAR_TRY_ASSIGN(FileHead head, read_head(fd.get(), st.size, max, loc.path));
    q.cut = head.size > head.bytes.size();
    q.first = std::move(head.bytes);
    q.size = head.size;
    q.sha256 = std::move(head.sha256);
    return q;
  }
  if (st.size > k_max_exim_header_file) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: {} bytes is too large for an Exim -H file", loc.path,
                                                         st.size));
  }
  MAILDSAR_TRY_ASSIGN(q.first, core::read_range(fd.get(), 0, st.size, loc.path));
  const std::string data_path = exim_data_path(loc.path);
  MAILDSAR_TRY_ASSIGN(core::Fd dfd, core::open_read(data_path));
  MAILDSAR_TRY_ASSIGN(core::FileStat dst, core::fstat_fd(dfd.get(), data_path));
  MAILDSAR_TRY_ASSIGN(FileHead head, read_head(dfd.get(), dst.size, max, data_path));
  q.cut = head.size > head.bytes.size();
  q.data = std::move(head.bytes);
  q.size = q.first.size() + head.size;
  // The hash covers the -H file, then the whole -D file (read again, streamed, for the hash).
  core::Sha256 h;
  h.update(q.first);
  for (std::uint64_t done = 0; done < dst.size;) {
    MAILDSAR_TRY_ASSIGN(std::string part,
                        core::read_range(dfd.get(), done, std::min<std::uint64_t>(1U << 20, dst.size - done), data_path));
    if (part.empty()) {
      break;
    }
    h.update(part);
    done += part.size();
  }
  q.sha256 = h.hex_digest();
  return q;
}

std::string exim_id_of(const std::string &header_path) {
  std::string name = base_name(header_path);
  return name.size() > 2 ? name.substr(0, name.size() - 2) : std::string();
}

core::Result<queue::QueuedMessage> parse_queue_files(const Locator &loc, const QueueFiles &q, std::uint64_t max) {
  auto parsed = loc.store == StoreKind::postfix_queue
                    ? queue::parse_postfix_queue_file(q.first, max, q.cut)
                    : queue::parse_exim_spool(exim_id_of(loc.path), q.first, q.data, max, q.cut);
  if (!parsed) {
    return std::unexpected(parsed.error());
  }
  return parsed;
}

/** The position part of a parser's "offset N: cause" / "-H offset N: cause" message. */
std::pair<std::string, std::string> split_position(const std::string &message) {
  std::size_t colon = message.find(": ");
  if (colon != std::string::npos && message.find("offset ") < colon) {
    return {message.substr(0, colon), message.substr(colon + 2)};
  }
  return {"", message};
}

class MtaQueueConnector final : public Connector {
public:
  MtaQueueConnector(core::SourceConfig source, StoreKind kind) : m_source(std::move(source)), m_kind(kind) {}

  [[nodiscard]] StoreKind kind() const override { return m_kind; }

  [[nodiscard]] core::Result<std::vector<FileEntry>> list_files(ItemSink &errors) const override {
    MAILDSAR_TRY_ASSIGN(auto globbed, core::expand_glob(m_source.path));
    if (globbed.empty() && m_source.path.find_first_of("*?[") == std::string::npos) {
      return core::fail(core::ErrorCode::no_input,
                        fmt::format("{} {}: no such directory", to_string(m_kind), m_source.path));
    }
    std::vector<FileEntry> out;
    Walker walker(m_kind, errors, out);
    for (const core::GlobMatch &m : globbed) {
      if (!inside_root(m.path, m_source.root)) {
        errors.error(ScanError{m.path, "", "outside the source root " + m_source.root + ", skipped"});
        continue;
      }
      auto st = core::lstat_file(m.path);
      if (!st || !S_ISDIR(st->mode)) {
        errors.error(ScanError{m.path, "", fmt::format("not a directory: the path of a {} source names the queue "
                                                       "directory",
                                                       to_string(m_kind))});
        continue;
      }
      if (m_kind == StoreKind::postfix_queue) {
        list_postfix(m.path, walker, errors);
      } else {
        list_exim(m.path, walker, errors);
      }
    }
    return out;
  }

  [[nodiscard]] core::Status scan(const FileEntry &file, std::uint64_t /*from_offset*/, ItemSink &sink) const override {
    Locator loc;
    loc.source = m_source.name;
    loc.store = m_kind;
    loc.path = file.path;
    loc.folder = file.folder;
    loc.queue_id = m_kind == StoreKind::postfix_queue ? base_name(file.path) : exim_id_of(file.path);
    const std::uint64_t max = item_limits().max_item_bytes;
    MAILDSAR_TRY_ASSIGN(QueueFiles files, read_queue_files(loc, max));
    BigItemGate gate(files.first.size() + files.data.size());
    auto parsed = parse_queue_files(loc, files, max);
    if (!parsed) {
      auto [position, cause] = split_position(parsed.error().message);
      sink.error(ScanError{file.path, position, cause});
      return {};
    }
    Item item;
    item.locator = std::move(loc);
    item.sha256 = std::move(files.sha256);
    if (!parsed->content.empty()) {
      auto decoded = mime::decode_message(parsed->content, item);
      if (!decoded) {
        item.warnings.push_back(decoded.error().message);
      }
    }
    for (queue::EnvelopeAddress &a : parsed->envelope) {
      if (!a.addr.empty() || !a.name.empty()) {
        item.addresses.push_back(RawAddress{a.role, std::move(a.name), std::move(a.addr), std::move(a.field)});
      }
    }
    for (RawValue &ip : parsed->ips) {
      item.ips.push_back(std::move(ip));
    }
    for (RawText &t : parsed->texts) {
      if (!t.text.empty()) {
        item.texts.push_back(std::move(t));
      }
    }
    if (!item.date) {
      item.date = parsed->arrival;
    }
    if (parsed->content_cut) {
      item.truncated.push_back(fmt::format("queued message cut at limits.max_item_mib: {} bytes decoded",
                                           parsed->content.size()));
    }
    sink.item(std::move(item));
    return {};
  }

private:
  static void list_postfix(const std::string &dir, Walker &walker, ItemSink &errors) {
    std::string name = base_name(dir);
    if (is_postfix_queue_name(name)) {
      walker.walk(dir, name, 0); // the source names one queue
      return;
    }
    bool any = false;
    for (std::string_view queue : k_postfix_queues) {
      std::string sub = dir + "/" + std::string(queue);
      auto st = core::lstat_file(sub);
      if (!st) {
        continue; // a queue that does not exist (yet)
      }
      any = true;
      if (S_ISLNK(st->mode) || !S_ISDIR(st->mode)) {
        errors.error(ScanError{sub, "", "not a directory (symbolic links are not followed)"});
        continue;
      }
      walker.walk(sub, std::string(queue), 0);
    }
    if (!any) {
      errors.error(ScanError{dir, "", "no Postfix queue here (none of incoming, active, deferred, hold, corrupt)"});
    }
  }

  static void list_exim(const std::string &dir, Walker &walker, ItemSink &errors) {
    std::string input = base_name(dir) == "input" ? dir : dir + "/input";
    auto st = core::lstat_file(input);
    if (!st || !S_ISDIR(st->mode)) {
      errors.error(ScanError{dir, "", "no Exim spool here (no input/ directory)"});
      return;
    }
    walker.walk(input, "input", 0);
  }

  core::SourceConfig m_source;
  StoreKind m_kind;
};

bool shell_safe(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '/' || c == '.' ||
           c == '-' || c == '_' || c == '+' || c == ':' || c == '=' || c == ',';
  });
}

/** A command's outcome: exit status (or signal) and the first line it wrote to stderr. */
struct RunResult {
  int status = 0;
  std::string first_error_line;
};

constexpr auto k_command_timeout = std::chrono::seconds(60);

/** Runs argv without a shell, with a minimal environment; stderr captured (first 4 KiB). */
core::Result<RunResult> run_command(const std::vector<std::string> &argv) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return std::unexpected(core::errno_error("pipe", errno));
  }
  core::Fd read_end(pipe_fds[0]);
  core::Fd write_end(pipe_fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
  std::vector<char *> args;
  args.reserve(argv.size() + 1);
  for (const std::string &a : argv) {
    args.push_back(const_cast<char *>(a.c_str())); // NOLINT: posix_spawn's historic signature
  }
  args.push_back(nullptr);
  std::string path_env = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  std::string lang_env = "LANG=C";
  std::array<char *, 3> env{path_env.data(), lang_env.data(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, argv.front().c_str(), &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  write_end = core::Fd();
  if (rc != 0) {
    return std::unexpected(core::errno_error(fmt::format("cannot run {}", argv.front()), rc));
  }
  ::fcntl(read_end.get(), F_SETFL, O_NONBLOCK);
  std::string err;
  const auto deadline = std::chrono::steady_clock::now() + k_command_timeout;
  int status = 0;
  bool timed_out = false;
  while (true) {
    char buf[1024];
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n > 0 && err.size() < 4096) {
      err.append(buf, static_cast<std::size_t>(n));
    }
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      // What the command wrote just before it ended.
      while (err.size() < 4096 && (n = ::read(read_end.get(), buf, sizeof buf)) > 0) {
        err.append(buf, static_cast<std::size_t>(n));
      }
      break;
    }
    if (w < 0 && errno != EINTR) {
      return std::unexpected(core::errno_error("waitpid", errno));
    }
    if (std::chrono::steady_clock::now() > deadline && !timed_out) {
      ::kill(pid, SIGKILL);
      timed_out = true;
    }
    if (n <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  RunResult r;
  r.status = timed_out ? -1 : status;
  std::string_view e = err;
  r.first_error_line = std::string(e.substr(0, e.find('\n')));
  return r;
}

std::string describe_status(int status) {
  if (status == -1) {
    return "timed out and was killed";
  }
  if (WIFEXITED(status)) {
    return fmt::format("exited with status {}", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return fmt::format("was killed by signal {}", WTERMSIG(status));
  }
  return "ended abnormally";
}

} // namespace

bool is_mta_queue(StoreKind kind) { return kind == StoreKind::postfix_queue || kind == StoreKind::exim_spool; }

std::string exim_data_path(const std::string &header_path) {
  if (header_path.size() > 2 && header_path.ends_with("-H")) {
    return header_path.substr(0, header_path.size() - 2) + "-D";
  }
  return header_path + "-D";
}

core::Result<std::unique_ptr<Connector>> make_mta_queue_connector(const core::SourceConfig &source) {
  auto kind = store_kind_from_string(source.type);
  if (!kind || !is_mta_queue(*kind)) {
    return core::fail(core::ErrorCode::config, fmt::format("source '{}': not an MTA queue type", source.name));
  }
  if (!source.format.empty()) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': type {} takes no format", source.name, source.type));
  }
  return std::make_unique<MtaQueueConnector>(source, *kind);
}

core::Result<std::string> read_queue_item_bytes(const Locator &locator) {
  if (!is_mta_queue(locator.store)) {
    return core::fail(core::ErrorCode::internal, "read_queue_item_bytes: not an MTA queue item");
  }
  MAILDSAR_TRY_ASSIGN(std::string first, core::read_file(locator.path));
  if (locator.store == StoreKind::postfix_queue) {
    return first;
  }
  MAILDSAR_TRY_ASSIGN(std::string data, core::read_file(exim_data_path(locator.path)));
  return first + data;
}

namespace {

/** The queued message at `locator`, read and parsed (`caller` names the reader in errors). */
core::Result<queue::QueuedMessage> read_queued(const Locator &locator, std::string_view caller) {
  if (!is_mta_queue(locator.store)) {
    return core::fail(core::ErrorCode::internal, fmt::format("{}: not an MTA queue item", caller));
  }
  const std::uint64_t max = item_limits().max_item_bytes;
  MAILDSAR_TRY_ASSIGN(QueueFiles files, read_queue_files(locator, max));
  auto parsed = parse_queue_files(locator, files, max);
  if (!parsed) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: {}", locator.path, parsed.error().message));
  }
  return std::move(*parsed);
}

} // namespace

core::Result<std::string> read_queued_message(const Locator &locator) {
  MAILDSAR_TRY_ASSIGN(queue::QueuedMessage message, read_queued(locator, "read_queued_message"));
  return std::move(message.content);
}

core::Result<std::string> read_queued_message_with_envelope(const Locator &locator) {
  auto parsed = read_queued(locator, "read_queued_message_with_envelope");
  if (!parsed) {
    return std::unexpected(parsed.error());
  }
  // One header line each: no CR or LF from the file may start a field of its own.
  auto one_line = [](std::string_view s) {
    std::string out(s);
    std::replace_if(out.begin(), out.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
    return out;
  };
  std::string head = fmt::format("X-Maildsar-Queue: {} {} {}\n", to_string(locator.store), one_line(locator.folder),
                                 one_line(locator.queue_id));
  if (parsed->arrival) {
    head += fmt::format("X-Maildsar-Arrival: {}\n", core::iso8601_utc(*parsed->arrival));
  }
  for (const queue::EnvelopeAddress &a : parsed->envelope) {
    const char *name = a.role == Role::envelope_from ? "X-Maildsar-Envelope-From" : "X-Maildsar-Envelope-To";
    std::string who = a.name.empty() ? fmt::format("<{}>", one_line(a.addr))
                                     : fmt::format("\"{}\" <{}>", one_line(a.name), one_line(a.addr));
    head += fmt::format("{}: {} ({})\n", name, who, one_line(a.field));
  }
  for (const RawValue &ip : parsed->ips) {
    head += fmt::format("X-Maildsar-Client: {}\n", one_line(ip.value));
  }
  return head + parsed->content;
}

std::vector<std::string> queue_removal_command(const Locator &locator, const std::string &program) {
  switch (locator.store) {
  case StoreKind::postfix_queue:
    // postsuper acts on hold, incoming, active and deferred; a file in corrupt/ is removed by hand.
    if (!queue::is_postfix_queue_id(locator.queue_id) || !is_postfix_queue_name(locator.folder) ||
        locator.folder == "corrupt") {
      return {};
    }
    return {program.empty() ? "postsuper" : program, "-d", locator.queue_id, locator.folder};
  case StoreKind::exim_spool:
    if (!queue::is_exim_message_id(locator.queue_id)) {
      return {};
    }
    return {program.empty() ? "exim" : program, "-Mrm", locator.queue_id};
  case StoreKind::maildir:
  case StoreKind::mbox:
  case StoreKind::pst:
  case StoreKind::quarantine:
  case StoreKind::maillog:
  case StoreKind::emlfolder:
  case StoreKind::archive:
    break;
  }
  return {};
}

std::string command_line(const std::vector<std::string> &argv) {
  std::string out;
  for (const std::string &a : argv) {
    out += out.empty() ? "" : " ";
    if (shell_safe(a)) {
      out += a;
    } else {
      out += '\'';
      for (char c : a) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
      }
      out += '\'';
    }
  }
  return out;
}

core::Status remove_queued_message(const Locator &locator, const std::string &sha256, const std::string &program,
                                   const StepHook &hook) {
  const std::vector<std::string> argv = queue_removal_command(locator, program);
  if (argv.empty() || argv.front().empty() || argv.front().front() != '/') {
    return core::fail(core::ErrorCode::data,
                      fmt::format("{}: no removal command for queue id '{}' (folder '{}'); remove it by hand",
                                  locator.path, locator.queue_id, locator.folder));
  }
  if (!core::lstat_file(locator.path)) {
    return core::fail(core::ErrorCode::no_input, fmt::format("{}: the queue file is gone", locator.path));
  }
  MAILDSAR_TRY_ASSIGN(std::string bytes, read_queue_item_bytes(locator));
  if (core::sha256_hex(bytes) != sha256) {
    return std::unexpected(core::Error{core::ErrorCode::data,
                                       fmt::format("{}: the queued message changed since the plan was made", locator.path),
                                       std::string(k_stale_hint), std::nullopt});
  }
  if (hook) {
    MAILDSAR_TRY(hook("queue:checked"));
  }
  MAILDSAR_TRY_ASSIGN(RunResult ran, run_command(argv));
  if (hook) {
    MAILDSAR_TRY(hook("queue:ran"));
  }
  const bool gone = !core::lstat_file(locator.path) &&
                    (locator.store != StoreKind::exim_spool || !core::lstat_file(exim_data_path(locator.path)));
  if (gone) {
    return {};
  }
  std::string why = ran.status == 0 ? "succeeded but the queue file is still there"
                                    : describe_status(ran.status);
  return core::fail(core::ErrorCode::temp_fail,
                    fmt::format("`{}` {}{}", command_line(argv), why,
                                ran.first_error_line.empty() ? "" : ": " + ran.first_error_line),
                    "check that the command acts on this queue directory (Postfix queue_directory, Exim "
                    "spool_directory) and runs with enough privilege");
}

} // namespace maildsar::connectors
