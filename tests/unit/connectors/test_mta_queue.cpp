// SPDX-License-Identifier: GPL-3.0-or-later
// MTA queues (issue 17 item 1): Postfix queue files and Exim spool messages. The fixtures in
// samples/queue/: the Exim ones were written by Exim 4.96 itself (Debian exim4-daemon-light,
// `exim -odq` against a private spool directory); the Postfix ones by
// samples/queue/make_postfix_queue.py from Postfix's record format documentation, and read back
// by Postfix 3.7's postcat (samples/queue/README.md). Bad inputs are made from them here.
#include "connectors/connector.hpp"
#include "connectors/item_reader.hpp"
#include "connectors/mta_queue.hpp"
#include "connectors/queue/queue_file.hpp"
#include "core/hash.hpp"
#include "tests/test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <vector>

using namespace maildsar;
using namespace maildsar::connectors;
using maildsar::test::read_file;
using maildsar::test::ScratchDir;
using maildsar::test::write_file;
namespace fs = std::filesystem;

namespace {

const fs::path k_samples = maildsar::test::source_dir() / "samples" / "queue";
constexpr const char *k_exim_alice = "1xZ7OB-0002Tj-30";
constexpr const char *k_exim_erin = "1xZ7OB-0002Tm-34";

/** One Postfix record: type, length in 7-bit groups (low-order first), data. */
std::string record(char type, std::string_view data) {
  std::string out(1, type);
  std::size_t n = data.size();
  do {
    auto b = static_cast<unsigned char>(n & 0x7fU);
    n >>= 7;
    out += static_cast<char>(n != 0 ? (b | 0x80U) : b);
  } while (n != 0);
  out += data;
  return out;
}

std::string size_record() { return record('C', "              0               0               0"); }

using Sink = ItemCollector; // keeps items, errors and skips

std::unique_ptr<Connector> connector(const std::string &type, const fs::path &path) {
  core::SourceConfig s;
  s.name = "queue";
  s.type = type;
  s.path = path.string();
  s.root = path.string();
  auto made = make_connector(s);
  EXPECT_TRUE(made.has_value()) << made.error().message;
  return made ? std::move(*made) : nullptr;
}

void scan_all(const Connector &c, Sink &sink) {
  auto files = c.list_files(sink);
  ASSERT_TRUE(files.has_value()) << files.error().message;
  for (const FileEntry &f : *files) {
    auto scanned = c.scan(f, 0, sink);
    EXPECT_TRUE(scanned.has_value()) << f.path << ": " << scanned.error().message;
  }
}

bool has_address(const Item &item, Role role, const std::string &addr) {
  return std::any_of(item.addresses.begin(), item.addresses.end(),
                     [&](const RawAddress &a) { return a.role == role && a.addr == addr; });
}

const Item *by_queue_id(const Sink &sink, const std::string &id) {
  for (const Item &item : sink.items) {
    if (item.locator.queue_id == id) {
      return &item;
    }
  }
  return nullptr;
}

} // namespace

TEST(PostfixQueue, ReadsEnvelopeContentAndPointersOfTheSampleQueue) {
  ScratchDir dir;
  maildsar::test::copy_tree(k_samples / "postfix", dir / "postfix");
  // A file cleanup is still writing (no owner execute bit yet) and a stray file are no items.
  write_file(dir / "postfix/incoming/B0B0B0B0B0", size_record());
  ::chmod((dir / "postfix/incoming/B0B0B0B0B0").c_str(), 0600);
  write_file(dir / "postfix/deferred/not-a-queue-id.txt", "x");
  auto c = connector("postfix-queue", dir / "postfix");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->kind(), StoreKind::postfix_queue);
  Sink sink;
  scan_all(*c, sink);
  EXPECT_TRUE(sink.errors.empty()) << sink.errors.front().path << ": " << sink.errors.front().cause;
  ASSERT_EQ(sink.items.size(), 2U);
  EXPECT_EQ(sink.skips.size(), 2U);

  const Item *deferred = by_queue_id(sink, "A1B2C3D4E5");
  ASSERT_NE(deferred, nullptr);
  EXPECT_EQ(deferred->locator.store, StoreKind::postfix_queue);
  EXPECT_EQ(deferred->locator.folder, "deferred");
  EXPECT_EQ(deferred->locator.key(), deferred->locator.path);
  EXPECT_EQ(deferred->message_id, "queued-1@example.com");
  EXPECT_EQ(deferred->subject, "Deferred hello");
  EXPECT_TRUE(has_address(*deferred, Role::envelope_from, "alice.smith@example.com"));
  EXPECT_TRUE(has_address(*deferred, Role::envelope_to, "bob@example.org"));
  EXPECT_TRUE(has_address(*deferred, Role::from, "alice.smith@example.com"));
  ASSERT_FALSE(deferred->ips.empty());
  EXPECT_TRUE(std::any_of(deferred->ips.begin(), deferred->ips.end(), [](const RawValue &v) {
    return v.role == Role::log_client && v.value == "203.0.113.45";
  }));
  // The body line written as L records + an N record is one line again.
  bool joined = std::any_of(deferred->texts.begin(), deferred->texts.end(), [](const RawText &t) {
    return t.role == Role::body && t.text.find("long enough to be written as several L records") != std::string::npos;
  });
  EXPECT_TRUE(joined);
  EXPECT_EQ(deferred->sha256, core::sha256_hex(read_file(deferred->locator.path)));
  auto bytes = read_item_bytes(deferred->locator);
  ASSERT_TRUE(bytes.has_value());
  EXPECT_EQ(core::sha256_hex(*bytes), deferred->sha256);
  auto message = read_message(deferred->locator);
  ASSERT_TRUE(message.has_value()) << message.error().message;
  EXPECT_TRUE(message->starts_with("Received: from mail.example.com")) << *message;
  EXPECT_NE(message->find("\n\nHello Bob"), std::string::npos);

  // The recipient a pointer record leads to (appended behind the end record).
  const Item *held = by_queue_id(sink, "F00BA12345");
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(held->locator.folder, "hold");
  EXPECT_TRUE(has_address(*held, Role::envelope_to, "alice.smith@example.com"));
  EXPECT_TRUE(has_address(*held, Role::envelope_to, "dave@example.org"));
  ASSERT_TRUE(held->date.has_value());
  EXPECT_EQ(*held->date, 1700003600); // no Date field: the arrival time
}

TEST(PostfixQueue, BadFilesAreOneCountedErrorWithTheOffsetAndTheRestIsRead) {
  ScratchDir dir;
  maildsar::test::copy_tree(k_samples / "postfix", dir / "postfix");
  const std::string good = read_file(k_samples / "postfix/deferred/A/A1B2C3D4E5");
  write_file(dir / "postfix/deferred/B/BADTRUNC01", good.substr(0, good.size() / 2));
  std::string oversized = size_record() + "S" + std::string("\xff\xff\xff\x7f", 4) + "x";
  write_file(dir / "postfix/deferred/B/BADLENGTH1", oversized);
  write_file(dir / "postfix/deferred/B/BADLENGTH2", size_record() + "S" + std::string(6, '\xff'));
  write_file(dir / "postfix/deferred/B/BADFIRST01", record('S', "alice.smith@example.com") + record('E', ""));
  // A pointer back to the sender record before it: a loop, cut off, not followed forever.
  std::string loop = size_record() + record('S', "x@example.com");
  loop += record('p', fmt::format("{:15}", size_record().size()));
  write_file(dir / "postfix/deferred/B/BADLOOP001", loop);
  write_file(dir / "postfix/deferred/B/BADPTR0001", size_record() + record('p', "999999999") + record('E', ""));
  write_file(dir / "postfix/corrupt/EMPTY00001", "");
  auto c = connector("postfix-queue", dir / "postfix");
  ASSERT_NE(c, nullptr);
  Sink sink;
  scan_all(*c, sink);
  EXPECT_EQ(sink.items.size(), 2U); // the two good files
  ASSERT_EQ(sink.errors.size(), 7U);
  for (const ScanError &e : sink.errors) {
    EXPECT_TRUE(e.position.starts_with("offset ")) << e.path << ": " << e.position << " " << e.cause;
    EXPECT_FALSE(e.cause.empty());
  }
  auto cause_of = [&](const std::string &name) {
    for (const ScanError &e : sink.errors) {
      if (e.path.ends_with(name)) {
        return e.cause;
      }
    }
    return std::string("(no error)");
  };
  EXPECT_NE(cause_of("BADTRUNC01").find("truncated"), std::string::npos) << cause_of("BADTRUNC01");
  EXPECT_NE(cause_of("BADLENGTH1").find("runs past the end"), std::string::npos) << cause_of("BADLENGTH1");
  EXPECT_NE(cause_of("BADLENGTH2").find("too many length bytes"), std::string::npos) << cause_of("BADLENGTH2");
  EXPECT_NE(cause_of("BADFIRST01").find("not a Postfix queue file"), std::string::npos) << cause_of("BADFIRST01");
  EXPECT_NE(cause_of("BADLOOP001").find("loop"), std::string::npos) << cause_of("BADLOOP001");
  EXPECT_NE(cause_of("BADPTR0001").find("outside the file"), std::string::npos) << cause_of("BADPTR0001");
}

TEST(PostfixQueue, ContentBeyondTheBoundIsCutAndSaid) {
  std::string file = size_record() + record('T', "1700000000 0") + record('S', "a@example.com") +
                     record('R', "b@example.com") + record('M', "");
  file += record('N', "Subject: big") + record('N', "");
  for (int i = 0; i < 100; ++i) {
    file += record('N', std::string(100, 'x'));
  }
  file += record('X', "") + record('E', "");
  auto parsed = queue::parse_postfix_queue_file(file, 1000, false);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->content.size(), 1000U);
  EXPECT_TRUE(parsed->content_cut);
  // A file read only in part: a record past the end is the cut, not corruption.
  auto head = queue::parse_postfix_queue_file(std::string_view(file).substr(0, 500), 1000, true);
  ASSERT_TRUE(head.has_value()) << head.error().message;
  EXPECT_TRUE(head->content_cut);
  EXPECT_EQ(head->envelope.size(), 2U);
}

TEST(EximSpool, ReadsTheSpoolEximWrote) {
  ScratchDir dir;
  maildsar::test::copy_tree(k_samples / "exim", dir / "exim");
  // A -D file whose -H is not written yet, a journal file: no items.
  write_file(dir / "exim/input/1xZ7OC-0002Tp-3A-D", "1xZ7OC-0002Tp-3A-D\nbody\n");
  write_file(dir / "exim/input/1xZ7OB-0002Tj-30-J", "bob@example.org\n");
  auto c = connector("exim-spool", dir / "exim");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->kind(), StoreKind::exim_spool);
  Sink sink;
  scan_all(*c, sink);
  EXPECT_TRUE(sink.errors.empty()) << sink.errors.front().path << ": " << sink.errors.front().cause;
  ASSERT_EQ(sink.items.size(), 2U);
  EXPECT_EQ(sink.skips.size(), 2U);
  const Item *alice = by_queue_id(sink, k_exim_alice);
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->locator.folder, "input");
  EXPECT_TRUE(alice->locator.path.ends_with(std::string(k_exim_alice) + "-H"));
  EXPECT_EQ(alice->message_id, "spooled-1@example.com");
  EXPECT_EQ(alice->subject, "Spooled hello");
  EXPECT_TRUE(has_address(*alice, Role::envelope_from, "alice.smith@example.com"));
  EXPECT_TRUE(has_address(*alice, Role::envelope_to, "bob@example.org"));
  EXPECT_TRUE(has_address(*alice, Role::envelope_to, "carol@example.net"));
  EXPECT_TRUE(has_address(*alice, Role::cc, "carol@example.net"));
  EXPECT_TRUE(std::any_of(alice->ips.begin(), alice->ips.end(), [](const RawValue &v) {
    return v.role == Role::log_client && v.value == "203.0.113.45"; // "--host_address [203.0.113.45]:41234"
  }));
  EXPECT_TRUE(std::any_of(alice->texts.begin(), alice->texts.end(), [](const RawText &t) {
    return t.role == Role::log_user && t.text == "alice.smith@example.com" && t.field == "auth_id";
  }));
  const std::string both = read_file(alice->locator.path) + read_file(exim_data_path(alice->locator.path));
  EXPECT_EQ(alice->sha256, core::sha256_hex(both));
  auto message = read_message(alice->locator);
  ASSERT_TRUE(message.has_value()) << message.error().message;
  EXPECT_NE(message->find("Subject: Spooled hello\n"), std::string::npos) << *message;
  EXPECT_NE(message->find("\n\nHello Bob,\nplease call me.\n"), std::string::npos) << *message;
  EXPECT_EQ(message->find(std::string(k_exim_alice) + "-D"), std::string::npos); // not the -D name line
  const Item *erin = by_queue_id(sink, k_exim_erin);
  ASSERT_NE(erin, nullptr);
  EXPECT_FALSE(has_address(*erin, Role::envelope_to, "alice.smith@example.com"));
}

TEST(EximSpool, RemovedHeaderFieldsAndDeliveredAddressesAreEvidenceToo) {
  const std::string h = "1xZ7OB-0002Tj-30-H\nexim 101 103\n<>\n1700000000 0\n-aclm 0 23\n"
                        "acl saw alice@example.c\n-frozen 1700000100\n"
                        "NN dave@example.org\n1\nbob@example.org 0,0#1\n\n"
                        "033* X-Original-To: alice@example.com\n"
                        "020T To: bob@example.org\n";
  auto parsed = queue::parse_exim_spool(k_exim_alice, h, std::string(k_exim_alice) + "-D\nbody\n", 1 << 20, false);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->content, "To: bob@example.org\n\nbody\n");
  auto has = [&](Role role, const std::string &addr) {
    return std::any_of(parsed->envelope.begin(), parsed->envelope.end(),
                       [&](const queue::EnvelopeAddress &a) { return a.role == role && a.addr == addr; });
  };
  EXPECT_TRUE(has(Role::envelope_to, "dave@example.org"));
  EXPECT_TRUE(has(Role::envelope_to, "bob@example.org"));
  EXPECT_TRUE(std::any_of(parsed->texts.begin(), parsed->texts.end(), [](const RawText &t) {
    return t.field == "removed header field" && t.text.find("alice@example.com") != std::string::npos;
  }));
  EXPECT_TRUE(std::any_of(parsed->texts.begin(), parsed->texts.end(),
                          [](const RawText &t) { return t.field == "ACL variable"; }));
}

TEST(EximSpool, BadSpoolFilesAreOneCountedErrorEachAndTheRestIsRead) {
  ScratchDir dir;
  maildsar::test::copy_tree(k_samples / "exim", dir / "exim");
  const std::string header = read_file(k_samples / "exim/input" / (std::string(k_exim_alice) + "-H"));
  const std::string data = read_file(k_samples / "exim/input" / (std::string(k_exim_alice) + "-D"));
  auto put = [&](const std::string &id, const std::string &h, const std::string &d) {
    std::string hh = h;
    std::string dd = d;
    for (std::string *s : {&hh, &dd}) {
      for (std::size_t at = s->find(k_exim_alice); at != std::string::npos; at = s->find(k_exim_alice, at + 1)) {
        s->replace(at, id.size(), id);
      }
    }
    write_file(dir / "exim/input" / (id + "-H"), hh);
    write_file(dir / "exim/input" / (id + "-D"), dd);
  };
  put("1xZ7OB-0002T1-01", header.substr(0, header.size() - 20), data);       // truncated header field
  put("1xZ7OB-0002T2-02", header, "someone else's name line\nbody\n");      // -D of another message
  std::string big_count = header;
  big_count.replace(big_count.find("\n2\n"), 3, "\n99999999\n");
  put("1xZ7OB-0002T3-03", big_count, data);                                   // more recipients than lines
  std::string bad_length = header;
  bad_length.replace(bad_length.find("044F"), 4, "944F");
  put("1xZ7OB-0002T4-04", bad_length, data);                                  // length beyond the file
  put("1xZ7OB-0002T5-05", "", data);                                          // empty -H
  write_file(dir / "exim/input/1xZ7OB-0002T6-06-H", header);                  // no -D at all
  auto c = connector("exim-spool", dir / "exim");
  ASSERT_NE(c, nullptr);
  Sink sink;
  auto files = c->list_files(sink);
  ASSERT_TRUE(files.has_value());
  std::size_t whole_file_errors = 0;
  for (const FileEntry &f : *files) {
    auto scanned = c->scan(f, 0, sink);
    if (!scanned) {
      ++whole_file_errors; // the -D file is missing: the file as a whole cannot be read
      EXPECT_TRUE(f.path.ends_with("1xZ7OB-0002T6-06-H")) << f.path << ": " << scanned.error().message;
    }
  }
  EXPECT_EQ(whole_file_errors, 1U);
  EXPECT_EQ(sink.items.size(), 2U);
  ASSERT_EQ(sink.errors.size(), 5U);
  for (const ScanError &e : sink.errors) {
    EXPECT_NE(e.position.find("offset "), std::string::npos) << e.path << ": " << e.position << " " << e.cause;
  }
}

TEST(MtaQueue, RemovalCommandsAreExactAndOnlyForWellFormedIds) {
  Locator p;
  p.store = StoreKind::postfix_queue;
  p.path = "/var/spool/postfix/deferred/A/A1B2C3D4E5";
  p.folder = "deferred";
  p.queue_id = "A1B2C3D4E5";
  EXPECT_EQ(command_line(queue_removal_command(p, "/usr/sbin/postsuper")), "/usr/sbin/postsuper -d A1B2C3D4E5 deferred");
  p.folder = "corrupt";
  EXPECT_TRUE(queue_removal_command(p, "/usr/sbin/postsuper").empty());
  p.folder = "hold";
  p.queue_id = "A1B2; rm -rf /";
  EXPECT_TRUE(queue_removal_command(p, "/usr/sbin/postsuper").empty());
  Locator e;
  e.store = StoreKind::exim_spool;
  e.path = "/var/spool/exim4/input/1xZ7OB-0002Tj-30-H";
  e.queue_id = "1xZ7OB-0002Tj-30";
  EXPECT_EQ(command_line(queue_removal_command(e, "")), "exim -Mrm 1xZ7OB-0002Tj-30");
  EXPECT_TRUE(queue::is_exim_message_id("1xZ7OB-0002TjABCDE-30AB"));
  EXPECT_FALSE(queue::is_exim_message_id("1xZ7OB-0002Tj-30-H"));
  EXPECT_EQ(command_line({"/opt/my tools/exim", "-Mrm", "x"}), "'/opt/my tools/exim' -Mrm x");
}

TEST(MtaQueue, RemoveRunsTheCommandAndChecksTheFileIsGone) {
  ScratchDir dir;
  maildsar::test::copy_tree(k_samples / "postfix", dir / "postfix");
  const fs::path file = dir / "postfix/deferred/A/A1B2C3D4E5";
  Locator p;
  p.store = StoreKind::postfix_queue;
  p.path = file.string();
  p.folder = "deferred";
  p.queue_id = "A1B2C3D4E5";
  const std::string sha = core::sha256_hex(read_file(file));
  // A stand-in for postsuper: removes the file its arguments name (under this queue).
  const fs::path tool = dir / "postsuper";
  write_file(tool, "#!/bin/sh\n[ \"$1\" = -d ] && rm -f \"" + (dir / "postfix").string() + "/$3/A/$2\"\n");
  ::chmod(tool.c_str(), 0700);
  const fs::path failing = dir / "failing";
  write_file(failing, "#!/bin/sh\necho 'postsuper: fatal: not the queue' >&2\nexit 75\n");
  ::chmod(failing.c_str(), 0700);

  auto stale = remove_queued_message(p, std::string(64, '0'), tool.string(), {});
  ASSERT_FALSE(stale.has_value());
  EXPECT_TRUE(is_stale(stale.error())) << stale.error().message;
  EXPECT_TRUE(fs::exists(file));
  auto failed = remove_queued_message(p, sha, failing.string(), {});
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, core::ErrorCode::temp_fail);
  EXPECT_NE(failed.error().message.find("exited with status 75: postsuper: fatal: not the queue"), std::string::npos)
      << failed.error().message;
  EXPECT_TRUE(fs::exists(file));
  std::vector<std::string> steps;
  auto removed = remove_queued_message(p, sha, tool.string(), [&](std::string_view s) -> core::Status {
    steps.emplace_back(s);
    return {};
  });
  ASSERT_TRUE(removed.has_value()) << removed.error().message;
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(steps, (std::vector<std::string>{"queue:checked", "queue:ran"}));
  auto again = remove_queued_message(p, sha, tool.string(), {});
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, core::ErrorCode::no_input);
}
