// SPDX-License-Identifier: GPL-3.0-or-later
#include "indexer/indexer.hpp"

#include <fmt/format.h>
#include <idn2.h>
#include <xapian.h>

namespace maildsar::index {

std::string library_versions() {
  const char *idn = idn2_check_version(nullptr);
  return fmt::format("Xapian {}, libidn2 {}, libphonenumber (Debian 12)", Xapian::version_string(),
                     idn != nullptr ? idn : "?");
}

} // namespace maildsar::index
