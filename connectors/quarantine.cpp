// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/quarantine.hpp"
#include "connectors/emlfolder.hpp"

#include "connectors/limits.hpp"
#include "connectors/mbox.hpp"
#include "connectors/mime/mime_parser.hpp"
#include "core/config.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace maildsar::connectors {

namespace {

namespace fs = std::filesystem;

constexpr std::size_t k_max_attachment_text = 16U << 20;     // text kept from one attachment file
constexpr std::size_t k_min_string_run = 6;                  // `strings` run length in binaries
constexpr int k_max_depth = 32;                              // plain/pmg directory nesting

constexpr std::array<std::string_view, 7> k_amavis_kinds{"spam",      "virus", "banned", "badh",
                                                         "unchecked", "clean", "archive"};
constexpr std::array<std::string_view, 4> k_mailscanner_stores{"spam", "nonspam", "mcp",
                                                               "nonmcp"};

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

bool equals_ci(std::string_view a, std::string_view b) {
  return a.size() == b.size() && starts_with_ci(a, b);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' ||
                        s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

bool is_mailscanner_store(std::string_view name) {
  return std::find(k_mailscanner_stores.begin(), k_mailscanner_stores.end(), name) !=
         k_mailscanner_stores.end();
}

/** "virus-26W2lJY63nCZ.gz" -> {"virus", "26W2lJY63nCZ"}; nullopt for other names. */
std::optional<std::pair<std::string, std::string>> amavis_name(std::string_view name) {
  for (std::string_view kind : k_amavis_kinds) {
    if (name.size() > kind.size() + 1 && name.substr(0, kind.size()) == kind &&
        name[kind.size()] == '-') {
      std::string_view id = name.substr(kind.size() + 1);
      if (id.size() > 3 && id.substr(id.size() - 3) == ".gz") {
        id.remove_suffix(3);
      }
      return std::pair{std::string(kind), std::string(id)};
    }
  }
  return std::nullopt;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// ---------------------------------------------------------------------------------------------
// Listing

enum class EntryType { regular, directory, symlink, other };

struct DirEntry {
  std::string name;
  std::string path;
  EntryType type = EntryType::other;
  core::FileStat stat;
};

EntryType entry_type(const core::FileStat &st) {
  if (S_ISLNK(st.mode)) {
    return EntryType::symlink;
  }
  if (S_ISDIR(st.mode)) {
    return EntryType::directory;
  }
  if (S_ISREG(st.mode)) {
    return EntryType::regular;
  }
  return EntryType::other;
}

class Lister {
public:
  Lister(QuarantineFormat format, ItemSink &errors, std::vector<FileEntry> &out)
      : m_format(format), m_errors(errors), m_out(out) {}

  void set_owner(std::string owner) { m_owner = std::move(owner); }

  void report(const std::string &path, std::string cause) {
    m_errors.error(ScanError{path, "", std::move(cause)});
  }

  void add(const DirEntry &e, std::string folder) {
    m_out.push_back(FileEntry{e.path, std::move(folder), m_owner, e.stat});
  }

  /**
   * Lists `dir` sorted by name: dotfiles are skipped, symlinks and special files reported; only
   * regular files and directories are returned. A directory that cannot be read is reported.
   */
  std::vector<DirEntry> entries(const std::string &dir) {
    std::vector<DirEntry> result;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) {
      report(dir, fmt::format("cannot read directory: {}", ec.message()));
      return result;
    }
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (name.empty() || name.front() == '.') {
        continue;
      }
      std::string path = it->path().string();
      auto st = core::lstat_file(path);
      if (!st) {
        report(path, st.error().message);
        continue;
      }
      DirEntry e{name, path, entry_type(*st), *st};
      switch (e.type) {
      case EntryType::symlink:
        report(path, "symbolic link, not followed");
        continue;
      case EntryType::other:
        report(path, "not a regular file or directory, skipped");
        continue;
      case EntryType::regular:
      case EntryType::directory:
        result.push_back(std::move(e));
        break;
      }
    }
    if (ec) {
      report(dir, fmt::format("error while reading directory: {}", ec.message()));
    }
    std::sort(result.begin(), result.end(),
              [](const DirEntry &a, const DirEntry &b) { return a.name < b.name; });
    return result;
  }

  /** One match of the source path: a directory (the quarantine root) or a single file. */
  void root(const std::string &path) {
    auto st = core::lstat_file(path);
    if (!st) {
      report(path, st.error().message);
      return;
    }
    DirEntry e{fs::path(path).filename().string(), path, entry_type(*st), *st};
    switch (e.type) {
    case EntryType::symlink:
      report(path, "symbolic link, not followed");
      return;
    case EntryType::other:
      report(path, "not a regular file or directory, skipped");
      return;
    case EntryType::regular:
      // A single file named by the source (e.g. an amavis mbox target).
      add(e, folder_for_single_file(e.name));
      return;
    case EntryType::directory:
      break;
    }
    switch (m_format) {
    case QuarantineFormat::amavis:
      amavis_dir(path, 0);
      return;
    case QuarantineFormat::mailscanner:
      mailscanner_root(path);
      return;
    case QuarantineFormat::plain:
    case QuarantineFormat::pmg:
      tree(path, "", 0);
      return;
    }
  }

private:
  std::string folder_for_single_file(const std::string &name) const {
    if (m_format == QuarantineFormat::amavis) {
      if (auto parsed = amavis_name(name)) {
        return parsed->first;
      }
    }
    return "";
  }

  void amavis_file(const DirEntry &e) {
    auto parsed = amavis_name(e.name);
    if (!parsed) {
      report(e.path, "not an amavis quarantine file name (spam-, virus-, banned-, badh-, "
                     "unchecked-, clean-, archive-), skipped");
      return;
    }
    add(e, parsed->first);
  }

  void amavis_dir(const std::string &dir, int level) {
    for (const DirEntry &e : entries(dir)) {
      if (e.type == EntryType::regular) {
        amavis_file(e);
      } else if (level == 0) {
        amavis_dir(e.path, 1); // $quarantine_subdir_levels = 1
      } else {
        report(e.path, "directory deeper than quarantine_subdir_levels=1, skipped");
      }
    }
  }

  void mailscanner_root(const std::string &root) {
    for (const DirEntry &e : entries(root)) {
      if (e.type == EntryType::regular) {
        add(e, "");
      } else {
        mailscanner_day(e.path, e.name);
      }
    }
  }

  void mailscanner_day(const std::string &dir, const std::string &day) {
    for (const DirEntry &e : entries(dir)) {
      if (e.type == EntryType::regular) {
        add(e, day); // "Saved entire message to .../YYYYMMDD/<id>"
      } else if (is_mailscanner_store(e.name)) {
        mailscanner_files(e.path, day + "/" + e.name, 0);
      } else {
        mailscanner_message_dir(e.path, day + "/" + e.name);
      }
    }
  }

  /** Every file is a message, except the `.body` half of a `.header`/`.body` pair. */
  void mailscanner_files(const std::string &dir, const std::string &folder, int depth) {
    auto list = entries(dir);
    auto has = [&](const std::string &name) {
      return std::any_of(list.begin(), list.end(), [&](const DirEntry &x) {
        return x.type == EntryType::regular && x.name == name;
      });
    };
    for (const DirEntry &e : list) {
      if (e.type == EntryType::directory) {
        if (depth < k_max_depth) {
          mailscanner_files(e.path, folder + "/" + e.name, depth + 1);
        } else {
          report(e.path, "directory nested too deeply, skipped");
        }
        continue;
      }
      if (ends_with(e.name, ".body") &&
          has(e.name.substr(0, e.name.size() - 5) + ".header")) {
        continue;
      }
      add(e, folder);
    }
  }

  /** `<id>/`: the `message` file if there is one, otherwise every file as an attachment. */
  void mailscanner_message_dir(const std::string &dir, const std::string &folder) {
    auto list = entries(dir);
    auto message = std::find_if(list.begin(), list.end(), [](const DirEntry &x) {
      return x.type == EntryType::regular && x.name == "message";
    });
    if (message != list.end()) {
      add(*message, folder);
      for (const DirEntry &e : list) {
        if (e.type == EntryType::directory) {
          report(e.path, "unexpected directory in a MailScanner message folder, skipped");
        }
      }
      return;
    }
    mailscanner_files(dir, folder, 1);
  }

  void tree(const std::string &dir, const std::string &folder, int depth) {
    for (const DirEntry &e : entries(dir)) {
      if (e.type == EntryType::regular) {
        add(e, folder);
      } else if (depth < k_max_depth) {
        tree(e.path, folder.empty() ? e.name : folder + "/" + e.name, depth + 1);
      } else {
        report(e.path, "directory nested too deeply, skipped");
      }
    }
  }

  QuarantineFormat m_format;
  ItemSink &m_errors;
  std::vector<FileEntry> &m_out;
  std::string m_owner;
};

bool has_glob_chars(std::string_view pattern) {
  return pattern.find_first_of("*?[") != std::string_view::npos;
}

bool inside_root(const std::string &path, const std::string &root) {
  if (root.empty()) {
    return true;
  }
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') {
    r.pop_back();
  }
  return path == r || (path.size() > r.size() && path.compare(0, r.size(), r) == 0 &&
                       (r == "/" || path[r.size()] == '/'));
}

// ---------------------------------------------------------------------------------------------
// Reading

/** An envelope header amavis/PMG prepends, with the role its addresses get. */
struct EnvelopeHeader {
  std::string_view name;
  Role role;
};

/** Unfolded header fields of the header block at the start of `message`. */
std::vector<std::pair<std::string, std::string>> header_fields(std::string_view message) {
  std::vector<std::pair<std::string, std::string>> fields;
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t eol = message.find('\n', pos);
    std::string_view line =
        message.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? message.size() : eol + 1;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      break;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      if (!fields.empty()) {
        fields.back().second += ' ';
        fields.back().second += trim(line);
      }
      continue;
    }
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      continue; // an mbox "From " line or junk: not a field
    }
    fields.emplace_back(std::string(trim(line.substr(0, colon))),
                        std::string(trim(line.substr(colon + 1))));
  }
  return fields;
}

/** Addresses in an envelope header value: `<a@b>, <c@d>` or bare `a@b, c@d`. `<>` is skipped. */
std::vector<std::string> envelope_addresses(std::string_view value) {
  std::vector<std::string> out;
  if (value.find('<') != std::string_view::npos) {
    std::size_t pos = 0;
    while ((pos = value.find('<', pos)) != std::string_view::npos) {
      std::size_t end = value.find('>', pos + 1);
      if (end == std::string_view::npos) {
        break;
      }
      std::string_view addr = trim(value.substr(pos + 1, end - pos - 1));
      if (!addr.empty()) {
        out.emplace_back(addr);
      }
      pos = end + 1;
    }
    return out;
  }
  std::size_t pos = 0;
  while (pos < value.size()) {
    std::size_t end = value.find_first_of(", \t", pos);
    std::string_view token =
        value.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    token = trim(token);
    if (!token.empty()) {
      out.emplace_back(token);
    }
    if (end == std::string_view::npos) {
      break;
    }
    pos = end + 1;
  }
  return out;
}

/**
 * Drops repeated (role, address) pairs: amavis lists a blocked recipient in both X-Envelope-To
 * and X-Envelope-To-Blocked. The first occurrence (with its display name) is kept.
 */
void dedupe_addresses(Item &item) {
  std::vector<RawAddress> kept;
  kept.reserve(item.addresses.size());
  for (RawAddress &a : item.addresses) {
    bool seen = !a.addr.empty() && std::any_of(kept.begin(), kept.end(), [&](const RawAddress &k) {
      return k.role == a.role && equals_ci(k.addr, a.addr);
    });
    if (seen) {
      continue;
    }
    kept.push_back(std::move(a));
  }
  item.addresses = std::move(kept);
}

void add_address_once(Item &item, Role role, std::string addr) {
  for (const RawAddress &a : item.addresses) {
    if (a.role == role && equals_ci(a.addr, addr)) {
      return;
    }
  }
  item.addresses.push_back(RawAddress{role, "", std::move(addr)});
}

/**
 * Adds the envelope identities (X-Envelope-From/-To/-To-Blocked; PMG Delivered-To/Return-Path)
 * with their envelope roles, unless the decoder already did; returns X-Quarantine-ID if present.
 */
std::string add_envelope(std::string_view message, QuarantineFormat format, Item &item) {
  std::string quarantine_id;
  for (const auto &[name, value] : header_fields(message)) {
    std::optional<Role> role;
    if (equals_ci(name, "X-Envelope-From")) {
      role = Role::envelope_from;
    } else if (equals_ci(name, "X-Envelope-To") || equals_ci(name, "X-Envelope-To-Blocked")) {
      role = Role::envelope_to;
    } else if (format == QuarantineFormat::pmg && equals_ci(name, "Delivered-To")) {
      role = Role::envelope_to; // PMG: comma-separated envelope recipients
    } else if (format == QuarantineFormat::pmg && equals_ci(name, "Return-Path")) {
      role = Role::envelope_from;
    } else if (equals_ci(name, "X-Quarantine-ID") && quarantine_id.empty()) {
      std::string_view id = trim(value);
      if (id.size() >= 2 && id.front() == '<' && id.back() == '>') {
        id = id.substr(1, id.size() - 2);
      }
      quarantine_id = std::string(trim(id));
    }
    if (role) {
      for (std::string &addr : envelope_addresses(value)) {
        add_address_once(item, *role, std::move(addr));
      }
    }
  }
  return quarantine_id;
}

/** True when `bytes` begin with an RFC 5322 header field (after an optional mbox "From " line). */
bool looks_like_message(std::string_view bytes) {
  if (bytes.substr(0, 5) == "From ") {
    std::size_t eol = bytes.find('\n');
    if (eol == std::string_view::npos) {
      return false;
    }
    bytes.remove_prefix(eol + 1);
  }
  std::size_t i = 0;
  while (i < bytes.size() && bytes[i] != ':') {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c <= 32 || c >= 127) {
      return false;
    }
    ++i;
  }
  if (i == 0 || i >= bytes.size()) {
    return false;
  }
  std::size_t header_end = bytes.find("\n\n");
  std::string_view header = bytes.substr(0, header_end);
  return header.find('\0') == std::string_view::npos;
}

bool is_utf8_text(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == 0 || (c < 32 && c != '\t' && c != '\n' && c != '\r' && c != '\f')) {
        return false;
      }
      ++i;
      continue;
    }
    std::size_t n = 0;
    if ((c & 0xE0U) == 0xC0U) {
      n = 1;
    } else if ((c & 0xF0U) == 0xE0U) {
      n = 2;
    } else if ((c & 0xF8U) == 0xF0U) {
      n = 3;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xC0U) != 0x80U) {
        return false;
      }
    }
    i += n + 1;
  }
  return true;
}

/** Printable ASCII runs of a binary file (like strings(1)), one per line. */
std::string printable_runs(std::string_view s) {
  std::string out;
  std::size_t start = 0;
  auto flush = [&](std::size_t end) {
    if (end - start >= k_min_string_run && out.size() < k_max_attachment_text) {
      out.append(s.substr(start, end - start));
      out += '\n';
    }
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 32 || c >= 127) {
      flush(i);
      start = i + 1;
    }
  }
  flush(s.size());
  return out;
}


/**
 * Passes items on, holding the last one back so that a note (what was cut at a limit) goes on
 * the item that was cut: the last one of the file.
 */
class NoteLastItem final : public ItemSink {
public:
  NoteLastItem(ItemSink &to, std::string note) : m_to(to), m_note(std::move(note)) {}
  ~NoteLastItem() override {
    if (m_pending) {
      if (!m_note.empty()) {
        m_pending->truncated.push_back(std::move(m_note));
      }
      m_to.item(std::move(*m_pending));
    }
  }
  NoteLastItem(const NoteLastItem &) = delete;
  NoteLastItem &operator=(const NoteLastItem &) = delete;
  void item(Item &&item) override {
    if (m_pending) {
      m_to.item(std::move(*m_pending));
    }
    m_pending = std::move(item);
  }
  void error(ScanError &&error) override { m_to.error(std::move(error)); }

private:
  ItemSink &m_to;
  std::string m_note;
  std::optional<Item> m_pending;
};

/** MailScanner `.header` + `.body` as one message of at most `max` bytes; sha over both files. */
core::Status read_pair(int header_fd, std::uint64_t header_size, const std::string &body_path,
                       std::uint64_t max, std::string &content, std::string &sha, std::string &cut) {
  MAILDSAR_TRY_ASSIGN(core::Fd body_fd, core::open_read(body_path));
  MAILDSAR_TRY_ASSIGN(core::FileStat body_st, core::fstat_fd(body_fd.get(), body_path));
  core::Sha256 h;
  std::string header;
  std::string body;
  std::uint64_t total = 0;
  // Streams one file into the hash, keeping at most `keep` bytes of it.
  auto stream = [&](int fd, std::uint64_t size, std::uint64_t keep, std::string &kept) -> core::Status {
    for (std::uint64_t done = 0; done < size;) {
      MAILDSAR_TRY_ASSIGN(std::string part,
                          core::read_range(fd, done, std::min<std::uint64_t>(1U << 20, size - done), body_path));
      if (part.empty()) {
        break;
      }
      h.update(part);
      if (kept.size() < keep) {
        kept.append(part, 0, static_cast<std::size_t>(std::min<std::uint64_t>(part.size(), keep - kept.size())));
      }
      done += part.size();
      total += part.size();
    }
    return {};
  };
  MAILDSAR_TRY(stream(header_fd, header_size, max, header));
  MAILDSAR_TRY(stream(body_fd.get(), body_st.size, max, body));
  sha = h.hex_digest();
  if (!ends_with(header, "\n\n") && !ends_with(header, "\r\n\r\n")) {
    if (!ends_with(header, "\n")) {
      header += '\n';
    }
    header += '\n';
  }
  header += body;
  if (header.size() > max) {
    header.resize(static_cast<std::size_t>(max));
  }
  if (total > max) {
    cut = fmt::format("item cut at limits.max_item_mib: {} of {} bytes decoded", max, total);
  }
  content = std::move(header);
  return {};
}

class QuarantineConnector final : public Connector {
public:
  /** `kind`: quarantine, or emlfolder (a folder of loose messages: the plain layout). */
  QuarantineConnector(core::SourceConfig source, QuarantineFormat format, StoreKind kind = StoreKind::quarantine)
      : m_source(std::move(source)), m_format(format), m_kind(kind) {}

  [[nodiscard]] StoreKind kind() const override { return m_kind; }

  [[nodiscard]] core::Result<std::vector<FileEntry>> list_files(ItemSink &errors) const override {
    MAILDSAR_TRY_ASSIGN(auto globbed, core::expand_glob(m_source.path));
    if (globbed.empty() && !has_glob_chars(m_source.path)) {
      return core::fail(core::ErrorCode::no_input,
                        fmt::format("{} {}: no such file or directory", to_string(m_kind), m_source.path));
    }
    std::vector<FileEntry> out;
    Lister lister(m_format, errors, out);
    for (const core::GlobMatch &m : globbed) {
      if (!inside_root(m.path, m_source.root)) {
        errors.error(ScanError{m.path, "", "outside the source root " + m_source.root + ", skipped"});
        continue;
      }
      lister.set_owner(m_source.owner.empty() ? std::string()
                                              : core::expand_owner(m_source.owner, m.captures));
      lister.root(m.path);
    }
    return out;
  }

  [[nodiscard]] core::Status scan(const FileEntry &file, std::uint64_t /*from_offset*/,
                                  ItemSink &sink) const override {
    const std::string &path = file.path;
    MAILDSAR_TRY_ASSIGN(core::Fd fd, core::open_read(path));
    MAILDSAR_TRY_ASSIGN(core::FileStat st, core::fstat_fd(fd.get(), path));
    if (!S_ISREG(st.mode)) {
      return core::fail(core::ErrorCode::data, fmt::format("{}: not a regular file", path));
    }
    std::string name = fs::path(path).filename().string();
    std::string parent = fs::path(path).parent_path().filename().string();

    Locator base;
    base.source = m_source.name;
    base.store = m_kind;
    base.path = path;
    base.folder = file.folder;

    MAILDSAR_TRY_ASSIGN(std::string head, core::read_range(fd.get(), 0, 5, path));
    bool compressed = ends_with(name, ".gz") ||
                      (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
                       static_cast<unsigned char>(head[1]) == 0x8b);
    bool pair_file = m_format == QuarantineFormat::mailscanner && ends_with(name, ".header") &&
                     core::lstat_file(path.substr(0, path.size() - 7) + ".body").has_value();
    bool attachment = !pair_file && is_attachment_file(file.folder, name);
    if (pair_file) {
      name.resize(name.size() - 7);
    }
    base.queue_id = default_queue_id(name, parent, attachment);

    // An amavis mbox target (or any mbox in the store): one item per message, streamed.
    if (!compressed && !attachment && !pair_file && head == "From ") {
      return scan_mbox(fd.get(), st.size, base, file.owner, sink);
    }

    // Bounded (limits.max_item_mib): a file or its decompressed content beyond the bound is
    // decoded from its first bytes only, and the item says so; the hash covers the whole file.
    const std::uint64_t max = item_limits().max_item_bytes;
    std::string content;
    std::string sha;
    std::string cut;
    std::optional<BigItemGate> gate;
    if (pair_file) {
      // MailScanner `.header` + `.body`: one message, hashed as the two files in that order.
      std::string body_path = path.substr(0, path.size() - 7) + ".body";
      MAILDSAR_TRY(read_pair(fd.get(), st.size, body_path, max, content, sha, cut));
    } else {
      MAILDSAR_TRY_ASSIGN(FileHead stored, read_head(fd.get(), st.size, compressed ? 0 : max, path));
      sha = std::move(stored.sha256);
      if (!compressed) {
        gate.emplace(stored.bytes.size());
        content = std::move(stored.bytes);
        if (stored.size > max) {
          cut = fmt::format("item cut at limits.max_item_mib: {} of {} bytes decoded", max, stored.size);
        }
      } else {
        // Small first without the gate; a big (or bomb) stream again under it, up to the bound.
        auto inflated = inflate_head(fd.get(), st.size, std::min(max, k_big_item_bytes), path);
        if (inflated && inflated->cut && max > k_big_item_bytes) {
          gate.emplace(max);
          inflated = inflate_head(fd.get(), st.size, max, path);
        }
        if (!inflated) {
          sink.error(ScanError{path, "", inflated.error().message});
          return {};
        }
        content = std::move(inflated->bytes);
        if (inflated->cut) {
          cut = fmt::format("item cut at limits.max_item_mib: the first {} decompressed bytes decoded",
                            content.size());
        }
      }
    }
    NoteLastItem noted(sink, std::move(cut));

    if (attachment) {
      noted.item(attachment_item(base, sha, name, content, file.owner));
      return {};
    }
    if (content.substr(0, 5) == "From ") {
      // A gzip-compressed mbox: split the decompressed bytes; offsets refer to them.
      return scan_decompressed_mbox(content, base, file.owner, noted);
    }
    if (auto item = message_item(base, std::move(sha), content, file.owner, "", noted)) {
      noted.item(std::move(*item));
    }
    return {};
  }

private:
  [[nodiscard]] std::string default_queue_id(const std::string &name, const std::string &parent,
                                             bool attachment) const {
    switch (m_format) {
    case QuarantineFormat::amavis:
      if (auto parsed = amavis_name(name)) {
        return parsed->second;
      }
      return "";
    case QuarantineFormat::mailscanner:
      if (attachment || name == "message") {
        return parent; // <id>/message, <id>/<attachment>
      }
      return name; // <day>/spam/<id>, <day>/<id>
    case QuarantineFormat::pmg:
      return name;
    case QuarantineFormat::plain:
      return "";
    }
    return "";
  }

  /**
   * MailScanner: a file listed from an `<id>/` folder that has no `message` file, i.e. whose
   * folder is `<day>/<id>[/...]` with `<id>` not a store folder (spam, nonspam, mcp, nonmcp).
   */
  [[nodiscard]] bool is_attachment_file(const std::string &folder, const std::string &name) const {
    if (m_format != QuarantineFormat::mailscanner || name == "message") {
      return false;
    }
    std::size_t slash = folder.find('/');
    if (slash == std::string::npos) {
      return false; // root or day folder: whole messages
    }
    std::string_view second = std::string_view(folder).substr(slash + 1);
    second = second.substr(0, second.find('/'));
    return !is_mailscanner_store(second);
  }

  [[nodiscard]] static Item attachment_item(const Locator &base, const std::string &sha,
                                            const std::string &name, const std::string &content,
                                            const std::string &owner) {
    Item item;
    item.locator = base;
    item.sha256 = sha;
    if (!owner.empty()) {
      item.addresses.push_back(RawAddress{Role::owner, "", owner});
    }
    item.texts.push_back(RawText{Role::attachment_name, name});
    if (is_utf8_text(content)) {
      item.texts.push_back(
          RawText{Role::attachment_body, content.substr(0, k_max_attachment_text)});
      if (content.size() > k_max_attachment_text) {
        item.truncated.push_back(fmt::format("attachment text cut at {} bytes",
                                             k_max_attachment_text));
      }
    } else {
      std::string runs = printable_runs(content);
      if (!runs.empty()) {
        item.texts.push_back(RawText{Role::attachment_body, std::move(runs)});
      }
      item.warnings.push_back("binary attachment: only printable runs searched");
    }
    return item;
  }

  /** Decodes one message; reports (and returns nullopt) when the bytes are not a message. */
  [[nodiscard]] std::optional<Item> message_item(Locator loc, std::string sha,
                                                 std::string_view bytes, const std::string &owner,
                                                 const std::string &position,
                                                 ItemSink &sink) const {
    if (!looks_like_message(bytes)) {
      sink.error(ScanError{loc.path, position, "not a mail message (no RFC 5322 header block)"});
      return std::nullopt;
    }
    Item item;
    item.locator = std::move(loc);
    item.sha256 = std::move(sha);
    auto decoded = mime::decode_message(bytes, item);
    if (!decoded) {
      if (decoded.error().code == core::ErrorCode::data) {
        sink.error(ScanError{item.locator.path, position, decoded.error().message});
        return std::nullopt;
      }
      item.warnings.push_back(decoded.error().message);
    }
    std::string quarantine_id = add_envelope(bytes, m_format, item);
    dedupe_addresses(item);
    if (!quarantine_id.empty() && m_kind == StoreKind::quarantine &&
        (m_format == QuarantineFormat::amavis || m_format == QuarantineFormat::plain ||
         item.locator.queue_id.empty())) {
      item.locator.queue_id = quarantine_id;
    }
    if (!owner.empty()) {
      add_address_once(item, Role::owner, owner);
    }
    return item;
  }

  /** Splits an mbox with the mbox connector's splitter; one item per message. */
  [[nodiscard]] core::Status scan_mbox(int fd, std::uint64_t size, const Locator &base,
                                       const std::string &owner, ItemSink &sink) const {
    auto on_message = [&](const MboxMessage &msg) {
      Locator loc = base;
      loc.offset = msg.offset;
      loc.length = msg.length;
      std::string position = fmt::format("offset {}", msg.offset);
      std::string sha = msg.sha256;
      BigItemGate gate(msg.raw.size());
      auto item = message_item(std::move(loc), std::move(sha), mbox_message_content(msg), owner,
                               position, sink);
      if (!item) {
        return;
      }
      if (msg.too_large) {
        item->truncated.push_back(fmt::format("item cut at limits.max_item_mib: {} of {} bytes decoded",
                                              msg.raw.size(), msg.length));
      }
      if (msg.truncated) {
        item->warnings.push_back(fmt::format(
            "{} {}: message truncated (the file ends inside its header block)", base.path,
            position));
      }
      sink.item(std::move(*item));
    };
    auto on_error = [&](ScanError &&error) { sink.error(std::move(error)); };
    return split_mbox(fd, base.path, 0, size, on_message, on_error);
  }

  /**
   * A gzip-compressed mbox: the decompressed bytes go to an anonymous memory file so that the
   * mbox splitter can read them. Offsets, lengths and hashes refer to the decompressed bytes.
   */
  [[nodiscard]] core::Status scan_decompressed_mbox(const std::string &content,
                                                    const Locator &base, const std::string &owner,
                                                    ItemSink &sink) const {
    core::Fd mfd(::memfd_create("maildsar-quarantine", MFD_CLOEXEC));
    if (!mfd) {
      return std::unexpected(core::errno_error(base.path + ": memfd_create", errno));
    }
    MAILDSAR_TRY(core::write_all(mfd.get(), content, base.path + ": memfd write"));
    return scan_mbox(mfd.get(), content.size(), base, owner, sink);
  }

  core::SourceConfig m_source;
  QuarantineFormat m_format;
  StoreKind m_kind;
};

} // namespace

std::optional<QuarantineFormat> quarantine_format_from_string(std::string_view name) {
  if (name == "amavis") {
    return QuarantineFormat::amavis;
  }
  if (name == "mailscanner") {
    return QuarantineFormat::mailscanner;
  }
  if (name == "plain") {
    return QuarantineFormat::plain;
  }
  if (name == "pmg") {
    return QuarantineFormat::pmg;
  }
  return std::nullopt;
}

core::Result<std::string> gunzip(std::string_view compressed, std::uint64_t max_bytes) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) {
    return core::fail(core::ErrorCode::internal, "gzip: cannot initialise zlib");
  }
  struct Guard {
    z_stream *zs;
    ~Guard() { inflateEnd(zs); }
  } guard{&zs};

  std::string out;
  std::array<char, 65536> buf{};
  std::size_t consumed = 0;
  while (true) {
    std::size_t chunk_in = std::min<std::size_t>(compressed.size() - consumed, 1U << 30);
    zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(compressed.data() + consumed));
    zs.avail_in = static_cast<uInt>(chunk_in);
    zs.next_out = reinterpret_cast<Bytef *>(buf.data());
    zs.avail_out = static_cast<uInt>(buf.size());
    int rc = inflate(&zs, Z_NO_FLUSH);
    consumed += chunk_in - zs.avail_in;
    out.append(buf.data(), buf.size() - zs.avail_out);
    if (out.size() > max_bytes) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("gzip: decompressed size exceeds {} bytes", max_bytes));
    }
    if (rc == Z_STREAM_END) {
      if (consumed >= compressed.size()) {
        return out;
      }
      // Another gzip member follows (concatenated .gz); anything else is trailing junk.
      if (compressed.size() - consumed >= 2 &&
          static_cast<unsigned char>(compressed[consumed]) == 0x1f &&
          static_cast<unsigned char>(compressed[consumed + 1]) == 0x8b) {
        if (inflateReset(&zs) != Z_OK) {
          return core::fail(core::ErrorCode::internal, "gzip: cannot reset zlib");
        }
        continue;
      }
      return core::fail(core::ErrorCode::data,
                        fmt::format("gzip: {} bytes of trailing garbage at offset {}",
                                    compressed.size() - consumed, consumed));
    }
    if (rc == Z_OK) {
      continue;
    }
    if (rc == Z_BUF_ERROR && consumed >= compressed.size()) {
      return core::fail(core::ErrorCode::data,
                        fmt::format("gzip: truncated stream (ends at offset {})", consumed));
    }
    if (rc == Z_BUF_ERROR) {
      continue; // output space was full; loop again
    }
    return core::fail(core::ErrorCode::data,
                      fmt::format("gzip: corrupt data near offset {}: {}", consumed,
                                  zs.msg != nullptr ? zs.msg : zError(rc)));
  }
}

core::Result<std::unique_ptr<Connector>> make_quarantine_connector(const core::SourceConfig &source) {
  auto format = quarantine_format_from_string(source.format);
  if (!format) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': unknown quarantine format '{}'", source.name,
                                  source.format),
                      "quarantine formats are amavis, mailscanner, plain and pmg");
  }
  return std::make_unique<QuarantineConnector>(source, *format);
}

core::Result<std::unique_ptr<Connector>> make_emlfolder_connector(const core::SourceConfig &source) {
  if (!source.format.empty()) {
    return core::fail(core::ErrorCode::config,
                      fmt::format("source '{}': type emlfolder takes no format", source.name));
  }
  return std::make_unique<QuarantineConnector>(source, QuarantineFormat::plain, StoreKind::emlfolder);
}

core::Result<std::string> gzip_compress(std::string_view data) {
  if (data.size() > 0xFFFFFFFFULL) {
    return core::fail(core::ErrorCode::data, "gzip: more than 4 GiB to compress");
  }
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return core::fail(core::ErrorCode::internal, "gzip: cannot initialise zlib");
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef *>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int r = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (r != Z_STREAM_END) {
    return core::fail(core::ErrorCode::internal, "gzip: deflate did not finish");
  }
  return out;
}

} // namespace maildsar::connectors
