// SPDX-License-Identifier: GPL-3.0-or-later
// TNEF (application/ms-tnef, winmail.dat) with libytnef: the subject, the body (plain, from the
// compressed RTF, HTML), the message's other MAPI string properties (sender and recipient
// addresses, display names) and every attachment, whose bytes go through extract_into() again
// (a PDF inside winmail.dat, a TNEF message attached inside a TNEF message), under the depth and
// text limits of the extraction. Runs only in the worker (extract.hpp).
#include "extract/text_sink.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

// libytnef's headers define BYTE, WORD, DWORD, ULONG as macros: included last, used only here.
extern "C" {
#include <ytnef.h>
}

namespace maildsar::extract::detail {

namespace {

constexpr std::uint32_t k_tnef_signature = 0x223E9F78U;
constexpr unsigned k_type_string8 = 0x001E;
constexpr unsigned k_type_unicode = 0x001F;
constexpr unsigned k_type_binary = 0x0102;
constexpr unsigned k_type_object = 0x000D;
constexpr unsigned k_multi_value = 0x1000;
/** The IID before an embedded message's TNEF stream in PR_ATTACH_DATA_OBJ. */
constexpr std::size_t k_iid_bytes = 16;

struct TnefFree {
  void operator()(TNEFStruct *t) const {
    TNEFFree(t);
    delete t;
  }
};

std::string_view view(const variableLength &v) {
  if (v.data == nullptr || v.size <= 0) {
    return {};
  }
  return {reinterpret_cast<const char *>(v.data), static_cast<std::size_t>(v.size)};
}

/** Up to the first NUL (MAPI strings are NUL-terminated within their counted size). */
std::string_view cstr(std::string_view s) {
  const auto nul = s.find('\0');
  return nul == std::string_view::npos ? s : s.substr(0, nul);
}

/**
 * A PT_STRING8 or PT_UNICODE value as UTF-8: libytnef (2.0) has already turned PT_UNICODE values
 * from UTF-16LE into UTF-8; PT_STRING8 is in the message's code page (read as windows-1252 when
 * not UTF-8).
 */
std::string mapi_string(const variableLength &value) { return to_utf8(cstr(view(value))); }

void add_line(Context &ctx, std::string_view text) {
  if (!text.empty()) {
    ctx.add(text);
    ctx.add("\n");
  }
}

/** PR_RTF_COMPRESSED decompressed and reduced to text. */
void add_compressed_rtf(Context &ctx, variableLength &value) {
  int size = 0;
  BYTE *rtf = DecompressRTF(&value, &size);
  if (rtf == nullptr) {
    ctx.warn("TNEF: the compressed RTF body cannot be decompressed");
    return;
  }
  const std::unique_ptr<BYTE, decltype(&std::free)> owned(rtf, &std::free);
  if (size > 0) {
    add_line(ctx, rtf_to_text(std::string_view(reinterpret_cast<const char *>(rtf), static_cast<std::size_t>(size)),
                              ctx.limits.max_text_bytes + 1));
  }
}

/**
 * The string properties of a property set (every PT_STRING8 / PT_UNICODE value: subject, bodies,
 * addresses, display names) and the compressed RTF body; binary properties other than the RTF
 * body are not text.
 */
void add_properties(Context &ctx, MAPIProps &props) {
  for (DWORD i = 0; i < props.count && !ctx.full; ++i) {
    MAPIProperty &p = props.properties[i];
    const unsigned type = p.id & 0xFFFFU & ~k_multi_value;
    const unsigned id = p.id >> 16U;
    for (ULONG k = 0; k < p.count && p.data != nullptr; ++k) {
      variableLength &value = p.data[k];
      if (type == k_type_string8 || type == k_type_unicode) {
        add_line(ctx, mapi_string(value));
      } else if (type == k_type_binary && id == PR_RTF_COMPRESSED) {
        add_compressed_rtf(ctx, value);
      } else if (type == k_type_binary && id == PR_BODY_HTML) {
        add_line(ctx, to_utf8(cstr(view(value))));
      }
    }
  }
}

/** The first value of property `id` of `type` in `props`, or null. */
variableLength *property(MAPIProps &props, unsigned id, unsigned type) {
  for (DWORD i = 0; i < props.count; ++i) {
    MAPIProperty &p = props.properties[i];
    if ((p.id >> 16U) == id && (p.id & 0xFFFFU) == type && p.count > 0 && p.data != nullptr) {
      return &p.data[0];
    }
  }
  return nullptr;
}

std::string attachment_name(Attachment &a) {
  for (const unsigned type : {k_type_unicode, k_type_string8}) {
    if (variableLength *name = property(a.MAPI, PR_ATTACH_LONG_FILENAME, type); name != nullptr) {
      if (std::string out = mapi_string(*name); !out.empty()) {
        return out;
      }
    }
  }
  return to_utf8(cstr(view(a.Title)));
}

core::Status read_attachment(Context &ctx, Attachment &a, std::uint32_t depth) {
  const std::string name = attachment_name(a);
  add_line(ctx, name);
  add_properties(ctx, a.MAPI);
  std::string_view data = view(a.FileData);
  if (data.empty()) {
    // An attached Outlook message: PR_ATTACH_DATA_OBJ holds an IID, then a TNEF stream.
    if (variableLength *object = property(a.MAPI, PR_ATTACH_DATA_OBJ, k_type_object);
        object != nullptr && view(*object).size() > k_iid_bytes) {
      data = view(*object).substr(k_iid_bytes);
    }
  }
  if (data.empty() || ctx.full) {
    return {};
  }
  std::string mime;
  if (variableLength *tag = property(a.MAPI, PR_ATTACH_MIME_TAG, k_type_string8); tag != nullptr) {
    mime = std::string(cstr(view(*tag)));
  }
  Format format = detect(data, mime, name);
  if (format == Format::none) {
    return {}; // an image, an executable: its name only
  }
  if (auto st = extract_into(ctx, format, data, depth + 1); !st) {
    ctx.warn(fmt::format("TNEF: attachment \"{}\": {}", name, st.error().message));
  }
  return {};
}

} // namespace

core::Status extract_tnef(Context &ctx, std::string_view bytes, std::uint32_t depth) {
  if (bytes.size() < 6 || (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[0])) |
                           (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[1])) << 8U) |
                           (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[2])) << 16U) |
                           (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[3])) << 24U)) !=
                              k_tnef_signature) {
    return core::fail(core::ErrorCode::data, "TNEF: no TNEF signature");
  }
  if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) {
    return core::fail(core::ErrorCode::data, "TNEF: stream too large");
  }
  std::unique_ptr<TNEFStruct, TnefFree> tnef(new TNEFStruct{});
  TNEFInitialize(tnef.get());
  tnef->Debug = 0;
  // libytnef reads the buffer only; its API takes a non-const pointer.
  std::string copy(bytes);
  const int rc = TNEFParseMemory(reinterpret_cast<BYTE *>(copy.data()), static_cast<long>(copy.size()), tnef.get());
  if (rc < 0) {
    // What was read before the damage is kept; nothing read is a failure of the file.
    if (tnef->subject.size <= 0 && tnef->body.size <= 0 && tnef->MapiProperties.count == 0 &&
        tnef->starting_attach.next == nullptr) {
      return core::fail(core::ErrorCode::data, fmt::format("TNEF: damaged stream (libytnef error {})", rc));
    }
    ctx.warn(fmt::format("TNEF: damaged stream (libytnef error {}); the part before the damage is read", rc));
  }
  add_line(ctx, to_utf8(cstr(view(tnef->subject))));
  add_line(ctx, to_utf8(cstr(view(tnef->from))));
  add_line(ctx, to_utf8(cstr(view(tnef->body))));
  add_properties(ctx, tnef->MapiProperties);
  for (Attachment *a = tnef->starting_attach.next; a != nullptr && !ctx.full; a = a->next) {
    MAILDSAR_TRY(read_attachment(ctx, *a, depth));
  }
  return {};
}

} // namespace maildsar::extract::detail
