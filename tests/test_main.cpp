// SPDX-License-Identifier: GPL-3.0-or-later
#include "connectors/mime/mime_parser.hpp"

#include <gtest/gtest.h>

int main(int argc, char **argv) {
  maildsar::connectors::mime::MimeLibrary mime; // before any thread starts
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
