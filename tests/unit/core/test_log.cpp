// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/log.hpp"

#include <gtest/gtest.h>

using maildsar::core::log::printable;

TEST(Printable, PlainAndUtf8TextPassUnchanged) {
  EXPECT_EQ(printable("alice.smith@example.com: Grüße, 東京 😀"), "alice.smith@example.com: Grüße, 東京 😀");
  EXPECT_EQ(printable(""), "");
}

TEST(Printable, ControlSequencesAreShownNotObeyed) {
  EXPECT_EQ(printable("a\x1b[2Jb"), "a\\x1b[2Jb");             // CSI: clear screen
  EXPECT_EQ(printable("\x1b]0;owned\x07"), "\\x1b]0;owned\\x07"); // OSC: window title
  EXPECT_EQ(printable("line\nforged"), "line\\x0aforged");       // no forged output lines
  EXPECT_EQ(printable("tab\tdel\x7f"), "tab\\x09del\\x7f");
  EXPECT_EQ(printable("\xc2\x9b" "31m"), "\\u009b31m");             // C1 CSI in UTF-8
  EXPECT_EQ(printable("\x9b" "31m"), "\\x9b31m");                   // 8-bit CSI, not UTF-8
  EXPECT_EQ(printable("\xc3"), "\\xc3");                            // truncated sequence
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");          // surrogate
  EXPECT_EQ(printable("\xe0\x80\x80"), "\\xe0\\x80\\x80");          // overlong
}
