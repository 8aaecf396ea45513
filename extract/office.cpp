// SPDX-License-Identifier: GPL-3.0-or-later
// ZIP containers with libzip: Office Open XML (DOCX, XLSX, PPTX), OpenDocument (ODT, ODS, ODP) and
// plain ZIP archives, whose members are extracted recursively. XML parts are read with libxml2's
// streaming reader (no network, no DTD loading, no entity substitution). Every member read counts
// against the shared decompression budget, so a zip bomb stops at Limits::max_inflated_bytes.
#include "extract/text_sink.hpp"

#include <fmt/format.h>
#include <libxml/xmlreader.h>
#include <zip.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <vector>

namespace maildsar::extract::detail {

namespace {

struct ZipDiscard {
  void operator()(zip_t *z) const { zip_discard(z); }
};
struct ZipFileClose {
  void operator()(zip_file_t *f) const { zip_fclose(f); }
};
struct ReaderFree {
  void operator()(xmlTextReader *r) const { xmlFreeTextReader(r); }
};

using ZipPtr = std::unique_ptr<zip_t, ZipDiscard>;

core::Result<ZipPtr> open_zip(std::string_view bytes) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t *source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (source == nullptr) {
    zip_error_fini(&error);
    return core::fail(core::ErrorCode::data, "zip: cannot read the archive");
  }
  zip_t *archive = zip_open_from_source(source, ZIP_RDONLY, &error);
  if (archive == nullptr) {
    std::string why = zip_error_strerror(&error);
    zip_source_free(source);
    zip_error_fini(&error);
    return core::fail(core::ErrorCode::data, "zip: not a ZIP archive or damaged: " + why);
  }
  zip_error_fini(&error);
  return ZipPtr(archive);
}

struct Member {
  zip_uint64_t index = 0;
  std::string name;
};

std::vector<Member> members(zip_t *archive) {
  std::vector<Member> out;
  const zip_int64_t count = zip_get_num_entries(archive, 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    const char *name = zip_get_name(archive, static_cast<zip_uint64_t>(i), ZIP_FL_ENC_GUESS);
    if (name != nullptr && *name != '\0' && std::string_view(name).back() != '/') {
      out.push_back(Member{static_cast<zip_uint64_t>(i), name});
    }
  }
  return out;
}

/**
 * A member's bytes, decompressed within the context's budget. An empty optional-like flag
 * `capped` says the budget ran out (the bytes read so far are returned).
 */
core::Result<std::string> read_member(Context &ctx, zip_t *archive, const Member &member, bool &capped) {
  capped = false;
  const std::unique_ptr<zip_file_t, ZipFileClose> file(zip_fopen_index(archive, member.index, 0));
  if (!file) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("zip: member {} cannot be read: {}", member.name, zip_strerror(archive)));
  }
  std::string out;
  std::array<char, 65536> buffer{};
  for (;;) {
    const zip_int64_t n = zip_fread(file.get(), buffer.data(), buffer.size());
    if (n < 0) {
      return core::fail(core::ErrorCode::data, fmt::format("zip: member {} is corrupt", member.name));
    }
    if (n == 0) {
      break;
    }
    const auto got = static_cast<std::uint64_t>(n);
    if (got > ctx.inflated_left) {
      out.append(buffer.data(), static_cast<std::size_t>(ctx.inflated_left));
      ctx.inflated_left = 0;
      capped = true;
      break;
    }
    ctx.inflated_left -= got;
    out.append(buffer.data(), static_cast<std::size_t>(got));
  }
  return out;
}

void note_cap(Context &ctx) {
  ctx.out.truncated = true;
  ctx.warn(fmt::format("zip: decompressed data exceeds the limit of {} bytes; the rest is not read",
                       ctx.limits.max_inflated_bytes));
}

/** How the text of an XML part is taken. */
enum class XmlMode {
  ooxml_runs, // only the text of <t> elements (w:t, a:t, sheet strings); paragraphs end lines
  all_text,   // every text node; paragraphs and other block elements end lines
};

bool one_of(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

/** Text of one XML part into ctx (a parse error keeps what was read, with a warning). */
void xml_text(Context &ctx, std::string_view xml, XmlMode mode, const std::string &part) {
  if (xml.size() > static_cast<std::size_t>(INT32_MAX)) {
    ctx.warn(fmt::format("{}: larger than 2 GiB; not read", part));
    return;
  }
  const std::unique_ptr<xmlTextReader, ReaderFree> reader(
      xmlReaderForMemory(xml.data(), static_cast<int>(xml.size()), nullptr, nullptr,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA));
  if (!reader) {
    ctx.warn(fmt::format("{}: cannot be parsed as XML", part));
    return;
  }
  std::string text;
  int in_run = 0;
  int rc = 0;
  while (!ctx.full && (rc = xmlTextReaderRead(reader.get())) == 1) {
    const int type = xmlTextReaderNodeType(reader.get());
    const auto *local = reinterpret_cast<const char *>(xmlTextReaderConstLocalName(reader.get()));
    const std::string_view name = local != nullptr ? local : "";
    if (type == XML_READER_TYPE_ELEMENT) {
      const bool empty = xmlTextReaderIsEmptyElement(reader.get()) != 0;
      if (one_of(name, {"tab", "s"})) {
        text.push_back(' ');
      } else if (one_of(name, {"br", "cr", "line-break"})) {
        text.push_back('\n');
      } else if (name == "t" && !empty) {
        ++in_run;
      }
    } else if (type == XML_READER_TYPE_END_ELEMENT) {
      if (name == "t" && in_run > 0) {
        --in_run;
      }
      if (one_of(name, {"p", "h", "si", "c", "tr", "row", "list-item", "table-cell", "comment"}) ||
          (mode == XmlMode::all_text && !text.empty() && text.back() != '\n')) {
        text.push_back('\n');
      } else if (mode == XmlMode::ooxml_runs && name == "t" && !text.empty() && text.back() != ' ' &&
                 text.back() != '\n' && part.starts_with("xl/")) {
        text.push_back(' '); // one <t> per cell string in sheets
      }
    } else if (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA ||
               type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE) {
      if (mode == XmlMode::all_text || in_run > 0) {
        const auto *value = reinterpret_cast<const char *>(xmlTextReaderConstValue(reader.get()));
        if (value != nullptr) {
          text += value;
        }
      }
    }
    if (text.size() >= 65536) {
      ctx.add(text);
      text.clear();
    }
  }
  ctx.add(text);
  if (rc < 0) {
    ctx.warn(fmt::format("{}: XML error; the text before it is kept", part));
  }
}

bool starts_with_any(std::string_view name, std::initializer_list<std::string_view> prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(), [&](std::string_view p) { return name.starts_with(p); });
}

/** The parts of an OOXML package that hold text, and how. */
std::optional<XmlMode> ooxml_part(std::string_view name) {
  if (!name.ends_with(".xml") || name.find("/_rels/") != std::string_view::npos) {
    return std::nullopt;
  }
  if (name == "docProps/core.xml") {
    return XmlMode::all_text; // creator, lastModifiedBy, title, subject, keywords
  }
  if (starts_with_any(name, {"word/document", "word/header", "word/footer", "word/footnotes", "word/endnotes",
                             "word/comments", "xl/sharedStrings", "xl/worksheets/sheet", "xl/comments",
                             "ppt/slides/slide", "ppt/notesSlides/", "ppt/comments/"})) {
    return XmlMode::ooxml_runs;
  }
  return std::nullopt;
}

std::optional<XmlMode> odf_part(std::string_view name) {
  if (name == "content.xml" || name == "styles.xml" || name == "meta.xml") {
    return XmlMode::all_text; // styles.xml holds headers and footers; meta.xml the authors
  }
  return std::nullopt;
}

bool has_member(const std::vector<Member> &all, std::string_view name) {
  return std::any_of(all.begin(), all.end(), [&](const Member &m) { return m.name == name; });
}

core::Status read_package(Context &ctx, zip_t *archive, const std::vector<Member> &all, Format format) {
  std::size_t parts = 0;
  for (const Member &member : all) {
    const std::optional<XmlMode> mode = format == Format::ooxml ? ooxml_part(member.name) : odf_part(member.name);
    if (!mode || ctx.full) {
      continue;
    }
    bool capped = false;
    auto bytes = read_member(ctx, archive, member, capped);
    if (!bytes) {
      ctx.warn(bytes.error().message);
      continue;
    }
    ++parts;
    xml_text(ctx, *bytes, *mode, member.name);
    ctx.add("\n");
    if (capped) {
      note_cap(ctx);
      break;
    }
  }
  if (parts == 0) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("{}: no readable text part in the package", to_string(format)));
  }
  return {};
}

Format package_kind(const std::vector<Member> &all) {
  if (has_member(all, "[Content_Types].xml")) {
    return Format::ooxml;
  }
  if (has_member(all, "content.xml") && (has_member(all, "mimetype") || has_member(all, "META-INF/manifest.xml"))) {
    return Format::odf;
  }
  return Format::zip;
}

} // namespace

core::Status extract_office(Context &ctx, Format format, std::string_view bytes) {
  xmlInitParser();
  MAILDSAR_TRY_ASSIGN(ZipPtr archive, open_zip(bytes));
  const std::vector<Member> all = members(archive.get());
  const Format kind = package_kind(all);
  if (kind == Format::zip) {
    return core::fail(core::ErrorCode::data, fmt::format("{}: a ZIP archive without the parts of its format",
                                                         to_string(format)));
  }
  return read_package(ctx, archive.get(), all, kind);
}

core::Status extract_zip(Context &ctx, std::string_view bytes, std::uint32_t depth) {
  xmlInitParser();
  MAILDSAR_TRY_ASSIGN(ZipPtr archive, open_zip(bytes));
  const std::vector<Member> all = members(archive.get());
  if (const Format kind = package_kind(all); kind != Format::zip) {
    return read_package(ctx, archive.get(), all, kind); // a document sent as application/zip
  }
  for (const Member &member : all) {
    if (ctx.full) {
      break;
    }
    if (ctx.inflated_left == 0) {
      note_cap(ctx);
      break;
    }
    bool capped = false;
    auto data = read_member(ctx, archive.get(), member, capped);
    if (!data) {
      ctx.warn(data.error().message);
      continue;
    }
    if (capped) {
      note_cap(ctx);
    }
    const Format inner = detect(*data, "", member.name);
    ctx.add(member.name); // a member's name may name the person ("cv-jane-doe.pdf")
    ctx.add("\n");
    if (inner == Format::none) {
      continue;
    }
    if (auto st = extract_into(ctx, inner, *data, depth + 1); !st) {
      ctx.warn(fmt::format("zip member {}: {}", member.name, st.error().message));
    }
    ctx.add("\n");
    if (capped) {
      break;
    }
  }
  return {};
}

} // namespace maildsar::extract::detail
