// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "core/result.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace maildsar::core {

/** Size in bytes of the installation secret. */
inline constexpr std::size_t k_secret_bytes = 32;
/** File name of the secret inside the state directory. */
inline constexpr std::string_view k_secret_file = "secret.key";

/**
 * Marker that the request register (casework) holds keyed hashes of purged requests' subjects:
 * written before the first purge and by the register when it finds purged rows without it.
 */
inline constexpr std::string_view k_keyed_requests_marker = "requests.keyed";
/** Files of the state directory that only exist once the key has been used (see below). */
inline constexpr std::string_view k_state_made_with_key[] = {"erasure.sqlite3", "certificates",
                                                             k_keyed_requests_marker, "suppression.sqlite3"};

/**
 * The installation's secret for keyed hashes and pseudonyms: `<state_dir>/secret.key`, 32 random
 * bytes (OpenSSL RAND_bytes), created once with mode 0600 in a state directory of mode 0700.
 * Creation is atomic: the key is written to an O_EXCL temporary file and link()ed into place, so
 * two racing processes always end up with the same key. A key is only ever created in a state
 * directory without records made with it: when `erasure.sqlite3`, `certificates/` or
 * `requests.keyed` (purged requests in the register) exists the key was lost, and making a new
 * one would silently change every keyed hash and pseudonym.
 * @return the raw 32 key bytes.
 * @errors ErrorCode::no_input when the key is missing from a state made with one (restore it
 *         from backup, docs/operations.md); ErrorCode::permission when the key file is a symlink, not a regular file, or readable
 *         or writable by group/others; ErrorCode::data when it does not hold exactly 32 bytes;
 *         io/cant_create errors from the file system; ErrorCode::internal if RAND_bytes fails.
 */
[[nodiscard]] Result<std::string> load_or_create_secret(const std::string &state_dir);

/**
 * Lower-case hex HMAC-SHA-256 of `kind` + '\0' + `value` under `key`.
 * @param kind "email", "name", "phone" or "ip".
 * @param value the normalised identifier (names: folded tokens sorted and joined by ' ').
 */
[[nodiscard]] std::string keyed_hash(std::string_view key, std::string_view kind,
                                     std::string_view value);

} // namespace maildsar::core
