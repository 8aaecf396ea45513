// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace maildsar::connectors {

/** Messages larger than this (or than limits.max_item_mib) are hashed (streamed) whole but only
    their first bytes are loaded (MboxMessage::too_large). */
inline constexpr std::uint64_t k_mbox_max_message_bytes = 256ULL << 20;

/** One message of an mbox file, as found by split_mbox. Valid only during the callback. */
struct MboxMessage {
  std::uint64_t offset = 0;           // byte offset of the "From " separator line
  std::uint64_t length = 0;           // bytes up to the next separator line (or EOF)
  std::uint64_t from_line_length = 0; // bytes of the separator line, newline included
  std::string_view raw;               // [offset, offset+length); only its first bytes when too_large
  std::string sha256;                 // hex SHA-256 of exactly [offset, offset+length)
  bool too_large = false;             // longer than the item bound: raw is the head only
  bool truncated = false;             // the file ends inside the message's header block
};

/**
 * How an mbox marks where a message ends (the source's "format"). Content-Length is written by
 * the sender unless the delivery agent rewrites it, so it is trusted only where the operator
 * says the file is an mboxcl/mboxcl2 file.
 */
enum class MboxDialect {
  separators,    // mboxo, mboxrd (default): "From " separator lines alone split the file
  content_length // mboxcl, mboxcl2: a Content-Length that ends exactly on a separator (or EOF)
};

/** The dialect of a source's "format": "", "mboxo", "mboxrd" -> separators; "mboxcl",
    "mboxcl2" -> content_length; nullopt for anything else. */
[[nodiscard]] std::optional<MboxDialect> mbox_dialect_of(std::string_view format);

/**
 * Splits an mbox file into messages, streaming: the file is read through a bounded buffer and
 * only the current message is held in memory.
 *
 * Separators: a line starting with "From " at the start of the data (after an optional UTF-8
 * BOM and blank lines), or later after a blank line when it looks like an envelope line
 * ("From - ...", "From sender date", "From sender@host") AND the next line is a header field
 * (mboxo bodies often hold unescaped "From ..." text). A Content-Length header is never trusted
 * in the `separators` dialect (a sender could make one message swallow the next); in the
 * `content_length` dialect it is trusted only when the body it spans ends exactly at EOF or
 * right before a separator line (one blank line allowed in between). LF and CRLF files.
 *
 * @param fd          an open descriptor of the file (read with pread; the position is unused)
 * @param path        the file's path, for error texts
 * @param from_offset 0, or the offset of a separator line (an earlier scan's end): only the
 *                    messages from there on are reported
 * @param file_size   bytes of the file to consider
 * @param on_message  called for each message in file order
 * @param on_error    called for problems inside the file (garbage before the first separator,
 *                    "not an mbox file"); the split goes on
 * @return an error only when the file cannot be read; ErrorCode::data when `from_offset` is not
 *         the start of a separator line (the caller should rescan from 0)
 */
/** What split_mbox gives of each message: its bytes and SHA-256, or only where it lies (`raw`
    and `sha256` empty; nothing is read but the lines that decide the boundaries). */
enum class MboxSplitContent { messages, boundaries };

[[nodiscard]] core::Status split_mbox(int fd, const std::string &path, std::uint64_t from_offset,
                                      std::uint64_t file_size,
                                      const std::function<void(const MboxMessage &)> &on_message,
                                      const std::function<void(ScanError &&)> &on_error,
                                      MboxDialect dialect = MboxDialect::separators,
                                      MboxSplitContent content = MboxSplitContent::messages);

/**
 * The length of the message that starts at `offset`, exactly as a full split of the file in the
 * `separators` dialect gives it, reading only that message's lines and the next separator line
 * (split_mbox resumed at `offset` and stopped after one message). nullopt when no message starts
 * there. Only for the separators dialect: under mboxcl/mboxcl2 an earlier message's trusted
 * Content-Length can hide a separator, so only a split from the start can tell.
 */
[[nodiscard]] core::Result<std::optional<std::uint64_t>> mbox_message_length_at(int fd, const std::string &path,
                                                                                std::uint64_t file_size,
                                                                                std::uint64_t offset);

/** mboxrd unquoting: in every line, ">From " -> "From ", ">>From " -> ">From ", and so on. */
[[nodiscard]] std::string unquote_mboxrd(std::string_view message_without_from_line);

/** mboxrd quoting, the inverse of unquote_mboxrd: every line that starts with ">*From " gets
    one more '>'. Line ends are kept as they are. */
[[nodiscard]] std::string quote_mboxrd(std::string_view message_without_from_line);

/** The RFC 5322 message of an mbox message: without the From line, mboxrd-unquoted. */
[[nodiscard]] std::string mbox_message_content(const MboxMessage &message);

/**
 * True when `line` (without its newline) looks like an mbox envelope line: "From -", "From ",
 * "From sender@host", or "From sender <text with a time or a 4-digit year>".
 */
[[nodiscard]] bool looks_like_mbox_from_line(std::string_view line);

/**
 * The regular files the source's `path` pattern matches, each with its owner from the source's
 * owner template. A symbolic link, a file that is not regular, or one whose real path lies
 * outside the source's `root` is reported to `errors` and left out (mbox and archive sources).
 */
[[nodiscard]] core::Result<std::vector<FileEntry>> list_source_files(const core::SourceConfig &source,
                                                                     ItemSink &errors);

/** Creates the mbox connector for a configured source (type "mbox"). */
[[nodiscard]] core::Result<std::unique_ptr<Connector>>
make_mbox_connector(const core::SourceConfig &source);

} // namespace maildsar::connectors
