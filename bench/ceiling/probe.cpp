// SPDX-License-Identifier: GPL-3.0-or-later
// The ceiling of "parse and index" on this machine (issue 14's probe, made repeatable): what a
// Maildir indexer costs when it does nothing but parse each message with GMime and give Xapian
// its subject, display names and body text as positional terms, plus a few boolean terms (the
// addresses, the Message-ID, a unique key), with one commit at the end (no flush before it).
// No identity extraction, no catalog, no keyed hashes, no attachment text, no limits: a floor
// for the full index of bench/index_bench.sh, not a product. Usage:
//   probe DB FILE_LIST [READERS]
// FILE_LIST: one message path per line. READERS parse threads feed one writer (the caller).
#include <gmime/gmime.h>
#include <xapian.h>

#include <fcntl.h>

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

/** Lower-cased runs of ASCII letters and digits and of non-ASCII bytes, as positional terms. */
void add_text(Xapian::Document &doc, const std::string &prefix, const char *text, Xapian::termpos &pos) {
  std::string word;
  for (const char *p = text;; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c != 0 && (std::isalnum(c) != 0 || c >= 0x80)) {
      word += static_cast<char>(std::tolower(c));
      continue;
    }
    if (!word.empty()) {
      if (word.size() < 64) {
        doc.add_posting(prefix + word, ++pos);
      }
      word.clear();
    }
    if (c == 0) {
      break;
    }
  }
}

struct Sink {
  Xapian::Document *doc;
  Xapian::termpos *pos;
};

void on_part(GMimeObject *, GMimeObject *part, gpointer data) {
  auto *sink = static_cast<Sink *>(data);
  if (GMIME_IS_TEXT_PART(part)) {
    char *text = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
    if (text != nullptr) {
      add_text(*sink->doc, "XNB:", text, *sink->pos);
      g_free(text);
    }
  }
}

Xapian::Document parse(const std::string &path) {
  Xapian::Document doc;
  GMimeStream *stream = g_mime_stream_fs_open(path.c_str(), O_RDONLY, 0, nullptr);
  if (stream == nullptr) {
    return doc;
  }
  GMimeParser *parser = g_mime_parser_new_with_stream(stream);
  GMimeMessage *message = g_mime_parser_construct_message(parser, nullptr);
  g_object_unref(parser);
  g_object_unref(stream);
  if (message == nullptr) {
    return doc;
  }
  Xapian::termpos pos = 0;
  if (const char *subject = g_mime_message_get_subject(message)) {
    add_text(doc, "XNSU:", subject, pos);
  }
  for (auto type : {GMIME_ADDRESS_TYPE_FROM, GMIME_ADDRESS_TYPE_TO, GMIME_ADDRESS_TYPE_CC}) {
    InternetAddressList *list = g_mime_message_get_addresses(message, type);
    for (int i = 0; list != nullptr && i < internet_address_list_length(list); ++i) {
      InternetAddress *a = internet_address_list_get_address(list, i);
      if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
        doc.add_boolean_term(std::string("XE:") + internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a)));
      }
      if (const char *name = internet_address_get_name(a)) {
        add_text(doc, "XNF:", name, pos);
      }
    }
  }
  if (const char *id = g_mime_message_get_message_id(message)) {
    doc.add_boolean_term(std::string("XMID:") + id);
  }
  doc.add_boolean_term("Q" + path);
  Sink sink{&doc, &pos};
  g_mime_message_foreach(message, on_part, &sink);
  doc.set_data(path);
  g_object_unref(message);
  return doc;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: probe DB FILE_LIST [READERS]\n");
    return 2;
  }
  g_mime_init();
  std::vector<std::string> files;
  std::ifstream list(argv[2]);
  for (std::string line; std::getline(list, line);) {
    files.push_back(line);
  }
  const int readers = argc > 3 ? std::stoi(argv[3]) : 1;
  const auto start = std::chrono::steady_clock::now();
  Xapian::WritableDatabase db(argv[1], Xapian::DB_CREATE_OR_OVERWRITE);
  std::mutex mutex;
  std::condition_variable ready;
  std::condition_variable space;
  std::deque<Xapian::Document> queue;
  int finished = 0;
  std::size_t next = 0;
  std::vector<std::thread> threads;
  for (int r = 0; r < readers; ++r) {
    threads.emplace_back([&] {
      for (;;) {
        std::size_t i = 0;
        {
          std::lock_guard lock(mutex);
          i = next++;
        }
        if (i >= files.size()) {
          break;
        }
        Xapian::Document doc = parse(files[i]);
        std::unique_lock lock(mutex);
        space.wait(lock, [&] { return queue.size() < 256; });
        queue.push_back(std::move(doc));
        ready.notify_one();
      }
      std::lock_guard lock(mutex);
      ++finished;
      ready.notify_one();
    });
  }
  for (;;) {
    std::unique_lock lock(mutex);
    ready.wait(lock, [&] { return !queue.empty() || finished == readers; });
    if (queue.empty()) {
      break;
    }
    Xapian::Document doc = std::move(queue.front());
    queue.pop_front();
    space.notify_all();
    lock.unlock();
    db.add_document(doc);
  }
  for (auto &t : threads) {
    t.join();
  }
  db.commit();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%zu documents in %.2f s\n", files.size(), secs);
  return 0;
}
