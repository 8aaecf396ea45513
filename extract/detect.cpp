// SPDX-License-Identifier: GPL-3.0-or-later
// Format detection (magic numbers, MIME type, name). Kept apart from the extractors: the MIME
// parser calls detect() in the program, which must not link poppler, libzip or libxml2.
#include "extract/extract.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace maildsar::extract {

namespace {

bool iends_with(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) {
    return false;
  }
  const std::string_view tail = s.substr(s.size() - suffix.size());
  return std::equal(tail.begin(), tail.end(), suffix.begin(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
}

bool iequals(std::string_view a, std::string_view b) { return a.size() == b.size() && iends_with(a, b); }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

template <std::size_t N> bool any_suffix(std::string_view name, const std::array<std::string_view, N> &suffixes) {
  return std::any_of(suffixes.begin(), suffixes.end(), [&](std::string_view s) { return iends_with(name, s); });
}

constexpr std::array<std::string_view, 10> k_ooxml_ext{".docx", ".docm", ".dotx", ".dotm", ".xlsx",
                                                       ".xlsm", ".xltx", ".pptx", ".pptm", ".ppsx"};
constexpr std::array<std::string_view, 8> k_odf_ext{".odt", ".ods", ".odp", ".odg", ".ott", ".ots", ".otp", ".fodt"};
constexpr std::array<std::string_view, 12> k_text_ext{".txt", ".csv", ".tsv", ".log", ".vcf", ".ics", ".xml",
                                                      ".htm", ".html", ".md", ".json", ".msg.txt"};

/** Format by MIME type and name alone (no magic number). */
Format by_label(std::string_view mime, std::string_view name) {
  const std::string type = lower(mime);
  if (type == "application/pdf" || type == "application/x-pdf" || iends_with(name, ".pdf")) {
    return Format::pdf;
  }
  if (type.starts_with("application/vnd.openxmlformats-officedocument.") || any_suffix(name, k_ooxml_ext)) {
    return Format::ooxml;
  }
  if (type.starts_with("application/vnd.oasis.opendocument.") || any_suffix(name, k_odf_ext)) {
    return Format::odf;
  }
  if (type == "application/rtf" || type == "application/x-rtf" || type == "text/rtf" || iends_with(name, ".rtf")) {
    return Format::rtf;
  }
  if (type == "application/zip" || type == "application/x-zip-compressed" || type == "application/x-zip" ||
      iends_with(name, ".zip")) {
    return Format::zip;
  }
  if (type == "application/ms-tnef" || type == "application/vnd.ms-tnef" || iequals(name, "winmail.dat") ||
      iends_with(name, ".tnef")) {
    return Format::tnef;
  }
  if (type == "application/gzip" || type == "application/x-gzip" || iends_with(name, ".gz")) {
    return Format::gzip;
  }
  if (type == "message/rfc822" || iends_with(name, ".eml")) {
    return Format::message;
  }
  if (any_suffix(name, k_text_ext)) {
    return Format::text;
  }
  return Format::none;
}

bool looks_binary(std::string_view bytes) {
  const std::string_view head = bytes.substr(0, 4096);
  return head.find('\0') != std::string_view::npos;
}

} // namespace

std::string_view to_string(Format format) {
  switch (format) {
  case Format::none:
    return "none";
  case Format::pdf:
    return "pdf";
  case Format::ooxml:
    return "ooxml";
  case Format::odf:
    return "odf";
  case Format::rtf:
    return "rtf";
  case Format::zip:
    return "zip";
  case Format::gzip:
    return "gzip";
  case Format::tnef:
    return "tnef";
  case Format::message:
    return "message";
  case Format::text:
    return "text";
  }
  return "none";
}

Format detect(std::string_view bytes, std::string_view mime_type, std::string_view name) {
  const Format label = by_label(mime_type, name);
  if (bytes.starts_with("\x78\x9f\x3e\x22")) {
    return Format::tnef; // the TNEF signature 0x223E9F78, little-endian (before "%PDF-" inside it)
  }
  if (bytes.starts_with("%PDF-") || bytes.substr(0, 1024).find("%PDF-") != std::string_view::npos) {
    return Format::pdf;
  }
  if (bytes.starts_with("PK\x03\x04")) {
    return label == Format::ooxml || label == Format::odf ? label : Format::zip;
  }
  if (bytes.starts_with("{\\rtf")) {
    return Format::rtf;
  }
  if (bytes.starts_with("\x1f\x8b")) {
    return Format::gzip;
  }
  if ((label == Format::text || label == Format::message) && looks_binary(bytes)) {
    return Format::none;
  }
  return label;
}

} // namespace maildsar::extract
