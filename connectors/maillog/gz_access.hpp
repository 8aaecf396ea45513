// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Reading gzip logs, from the start or from a restart point (issue 12: random access into
// rotated .gz logs). A restart point is a deflate block boundary: the offset of the compressed
// byte (and bit) where the next block begins, the decompressed offset and line count there, and
// the 32 KiB of decompressed data before it (the dictionary the next blocks may refer to). With
// inflatePrime and inflateSetDictionary, inflation resumes there without reading what comes
// before — the technique of zlib's examples/zran.c, written here for our reader.
//
// Points are recorded while a log is read in full (the indexer's content probe, every
// k_gz_point_spacing decompressed bytes or more), each window reduced to the bytes the data
// after the point copies (Reader's sparse windows), serialised compactly (the windows
// deflated), kept in
// the catalog row of the file, and used by the query side to read only the matched blocks.
// Concatenated gzip members are one stream of content, as for gzread (trailing bytes that are not
// a gzip member are ignored, as gzread does).

#include "core/fs.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::connectors::gz {

/** Decompressed bytes between two restart points (at least; points sit on block boundaries). */
inline constexpr std::uint64_t k_gz_point_spacing = std::uint64_t{1} << 17U;
/**
 * The indexer's points are also at least this many decompressed bytes apart for each byte of
 * the last point's deflated window: the windows stay within 1/80 (1.25 %) of the log's bytes
 * however well it compresses. A point keeps only the window bytes that the data after it copies
 * (the rest zeroed; about a fifth of a log's window), so a window of the benchmark's logs
 * deflates to ~2.9 KB instead of ~6.5 KB, and the points lie ~230 KiB apart instead of ~520.
 * Most of a real estate's logs are compressed rotations, so the windows are most of the room
 * the state target leaves: 2.5 % takes an all-gzip estate of the benchmark's logs past 0.10x.
 */
inline constexpr std::uint64_t k_gz_bytes_per_window_byte = 80;
/** The deflate window: a point keeps at most this many bytes of decompressed data. */
inline constexpr std::size_t k_gz_window = 32768;

/** A restart point (see above). */
struct Point {
  std::uint64_t in = 0;    // compressed offset of the first byte not fully consumed
  unsigned bits = 0;       // bits of the byte before `in` that belong to the next block (0-7)
  std::uint64_t out = 0;   // decompressed offset
  std::uint64_t lines = 0; // '\n' in decompressed [0, out)
  std::string window;      // the decompressed bytes before `out` (up to k_gz_window), deflated
  std::uint32_t window_size = 0; // their count before deflating
};

/** The restart points of one compressed file. */
struct Index {
  std::uint64_t compressed_size = 0; // the file's size when they were recorded
  std::vector<Point> points;         // ascending `out`

  /** The compact form kept in the state (an empty index serialises to ""). */
  [[nodiscard]] std::string serialise() const;
  /** ErrorCode::data for anything malformed (never trusted beyond what it claims). */
  [[nodiscard]] static core::Result<Index> parse(std::string_view blob);
  /** The last point at or before decompressed offset `offset`; nullptr if none. */
  [[nodiscard]] const Point *before(std::uint64_t offset) const;
};

/** A gzip file read as one stream of decompressed bytes. */
class Reader {
public:
  /** Reads `fd` (positioned anywhere; it is read with pread) from its start. */
  static core::Result<Reader> open(core::Fd fd, std::string path);
  Reader(Reader &&) noexcept;
  Reader &operator=(Reader &&) noexcept;
  ~Reader();

  /**
   * Up to `n` decompressed bytes; 0 at the end. A stream that ends early or is corrupt gives
   * ErrorCode::data (what came before it has been returned).
   */
  [[nodiscard]] core::Result<std::size_t> read(char *buf, std::size_t n);

  /**
   * Records a restart point every `spacing` decompressed bytes from now on (read from 0), and
   * with `per_window_byte` > 0 at least that many bytes per byte of the last deflated window
   * apart. A point's window keeps only the bytes that the data after it copies (the rest
   * zeroed: smaller deflated), found when the window's span after it has been read: points are
   * also at least that far apart (k_gz_window + 258 bytes). Before the first read() only:
   * reading without points goes faster (ISA-L).
   */
  void record_points(std::uint64_t spacing = k_gz_point_spacing, std::uint64_t per_window_byte = 0);
  /** The points recorded so far. */
  [[nodiscard]] Index take_index();

  /**
   * Resumes at `point` (of an Index of this file): the next read() returns the bytes from
   * point.out. ErrorCode::data when the point does not fit the file (its window does not
   * inflate, or its offset is past the end).
   */
  [[nodiscard]] core::Status restart_at(const Point &point);

  /** Decompressed bytes returned so far (from the start, or from a restart point's out). */
  [[nodiscard]] std::uint64_t position() const;
  [[nodiscard]] int fd() const;

private:
  struct State;
  explicit Reader(std::unique_ptr<State> state);
  std::unique_ptr<State> m_state;
};

} // namespace maildsar::connectors::gz
