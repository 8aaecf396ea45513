// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// MAILDSAR_ASAN is 1 in AddressSanitizer builds, whichever the compiler: GCC defines
// __SANITIZE_ADDRESS__, clang (the sanitizer and fuzzing tree, scripts/test.sh) only answers
// __has_feature(address_sanitizer).
#if defined(__SANITIZE_ADDRESS__)
#define MAILDSAR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MAILDSAR_ASAN 1
#endif
#endif
#ifndef MAILDSAR_ASAN
#define MAILDSAR_ASAN 0
#endif
