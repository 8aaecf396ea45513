// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// PST files that crash or bloat libpst 0.6.76, made at run time from a corpus file (never written
// to the corpus) by one-byte mutations found once by a seeded search (random offsets and values
// over pstsdk/sample1.pst, Apache-2.0; each mutation minimised to the single byte that matters):
//
//   parse_item         byte 20710  := 0x20  NULL dereference in pst_parse_item (SIGSEGV)
//   extended_attrs     byte 158815 := 0x21  heap overflow (memcpy) in pst_load_extended_attributes
//   bloat              byte 157476 := 0x5f  libpst asks for 1.8 GB (pst_malloc), touching it for
//                                           minutes when it gets it; "Out Of memory" + exit(1) else

#include "tests/test_support.hpp"

#include <cstdint>
#include <filesystem>
#include <string>

namespace maildsar::test {

enum class CorruptPst { parse_item, extended_attrs, bloat };

/** Writes the corrupt copy of corpus pst/pstsdk/sample1.pst to `to`; false without the corpus. */
inline bool make_corrupt_pst(const std::filesystem::path &corpus, const std::filesystem::path &to, CorruptPst kind) {
  std::string bytes = read_file(corpus / "pst/pstsdk/sample1.pst");
  if (bytes.size() != 271360) {
    return false;
  }
  struct Mutation {
    std::size_t offset;
    unsigned char value;
  };
  Mutation m = kind == CorruptPst::parse_item       ? Mutation{20710, 0x20}
               : kind == CorruptPst::extended_attrs ? Mutation{158815, 0x21}
                                                    : Mutation{157476, 0x5f};
  bytes[m.offset] = static_cast<char>(m.value);
  write_file(to, bytes);
  return true;
}

} // namespace maildsar::test
