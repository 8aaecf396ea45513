// SPDX-License-Identifier: GPL-3.0-or-later
// Folder names on disk -> readable names: IMAP modified UTF-7 of Maildir++ folders (issue 18 item 4).
#include "connectors/folder_name.hpp"

#include <gtest/gtest.h>

#include <string>

namespace c = maildsar::connectors;

TEST(FolderName, DecodesImapModifiedUtf7) {
  EXPECT_EQ(c::decode_imap_utf7("Entw&APw-rfe"), "Entw\xC3\xBCrfe");
  EXPECT_EQ(c::decode_imap_utf7("&BBIERQQ+BDQETwRJBDgENQ-"),
            "\xD0\x92\xD1\x85\xD0\xBE\xD0\xB4\xD1\x8F\xD1\x89\xD0\xB8\xD0\xB5"); // Входящие
  EXPECT_EQ(c::decode_imap_utf7("&U9dP4Xux-"), "\xE5\x8F\x97\xE4\xBF\xA1\xE7\xAE\xB1");                // 受信箱
  EXPECT_EQ(c::decode_imap_utf7("smile &2D3eAA-"), "smile \xF0\x9F\x98\x80");                              // a surrogate pair
  EXPECT_EQ(c::decode_imap_utf7("Tom &- Jerry"), "Tom & Jerry");
  EXPECT_EQ(c::decode_imap_utf7("Gesendete Objekte"), "Gesendete Objekte");
  EXPECT_EQ(c::decode_imap_utf7(""), "");
}

TEST(FolderName, RejectsWhatIsNotModifiedUtf7) {
  EXPECT_EQ(c::decode_imap_utf7("Entw\xC3\xBCrfe"), std::nullopt) << "already UTF-8 (Dovecot's UTF8 option)";
  EXPECT_EQ(c::decode_imap_utf7("Entw&APw"), std::nullopt) << "unterminated";
  EXPECT_EQ(c::decode_imap_utf7("a&A*w-b"), std::nullopt) << "not modified BASE64";
  EXPECT_EQ(c::decode_imap_utf7("&2D0-"), std::nullopt) << "an unpaired high surrogate";
  EXPECT_EQ(c::decode_imap_utf7("&3gA-"), std::nullopt) << "an unpaired low surrogate";
  EXPECT_EQ(c::decode_imap_utf7("&APx-"), std::nullopt) << "leftover bits not zero";
  EXPECT_EQ(c::decode_imap_utf7("&AP-"), std::nullopt) << "too short for one UTF-16 unit";
  // Found by fuzz_folder_name: U+0000 in base64 decoded to a NUL inside the name.
  EXPECT_EQ(c::decode_imap_utf7("]&ooooooooooooOooooooooooooAAAAA-"), std::nullopt) << "a NUL in base64";
  EXPECT_EQ(c::decode_imap_utf7("&AEE-"), std::nullopt) << "printable ASCII (A) in base64";
  // Any bytes: never a crash, and a result is always decodable again without change of length.
  std::string bytes;
  for (int seed = 1; seed < 3000; ++seed) {
    bytes.clear();
    for (int k = 0; k < seed % 23; ++k) {
      static constexpr std::string_view k_alphabet = "&-AaPw+,/09\xC3\xBC\x80 .";
      bytes.push_back(k_alphabet[static_cast<std::size_t>(seed * 31 + k * 17) % k_alphabet.size()]);
    }
    (void)c::decode_imap_utf7(bytes);
  }
}

TEST(FolderName, MaildirFolderNamesAsAMailProgramShowsThem) {
  EXPECT_EQ(c::maildir_folder_display_name(""), "");
  EXPECT_EQ(c::maildir_folder_display_name(".Entw&APw-rfe"), "Entw\xC3\xBCrfe");
  EXPECT_EQ(c::maildir_folder_display_name(".Gesendete Objekte"), "Gesendete Objekte");
  EXPECT_EQ(c::maildir_folder_display_name(".INBOX.&BBIERQQ+BDQETwRJBDgENQ-"),
            "INBOX.\xD0\x92\xD1\x85\xD0\xBE\xD0\xB4\xD1\x8F\xD1\x89\xD0\xB8\xD0\xB5");
  EXPECT_EQ(c::maildir_folder_display_name(".Entw\xC3\xBCrfe"), "Entw\xC3\xBCrfe") << "UTF-8 on disk stays";
  EXPECT_EQ(c::maildir_folder_display_name(".a&b"), "a&b") << "not valid modified UTF-7: as written";
}
