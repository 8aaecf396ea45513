// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// RAII for GObject and the other GLib/GMime C types used by the MIME decoder and by the
// redaction of messages (STYLE §18, §19). This is the only file allowed to call g_object_ref /
// g_object_unref. Private to connectors/, redaction/ and access/ (the Pango layouts of report.pdf,
// access/report_pdf.cpp): it includes GMime, which each of them links PRIVATE.

#include <gmime/gmime.h>

#include <memory>
#include <string>
#include <utility>

namespace maildsar::connectors::mime {

/** Deleter that drops one GObject reference. */
struct GObjectUnref {
  void operator()(gpointer object) const noexcept {
    if (object != nullptr) {
      g_object_unref(object);
    }
  }
};

/** Owns one reference to a GObject (GMimeMessage, GMimeParser, GMimeStream, ...). */
template <class T> using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

/**
 * Takes over a reference the caller already owns: use for `(transfer full)` returns such as
 * g_mime_parser_construct_message or internet_address_list_parse. `object` may be null.
 */
template <class T> [[nodiscard]] GObjectPtr<T> adopt(T *object) noexcept {
  return GObjectPtr<T>(object);
}

/**
 * Adds a reference (g_object_ref) to a borrowed object: use for `(transfer none)` returns that
 * must outlive their owner. `object` may be null.
 */
template <class T> [[nodiscard]] GObjectPtr<T> retain(T *object) noexcept {
  if (object != nullptr) {
    g_object_ref(object);
  }
  return GObjectPtr<T>(object);
}

/** A deleter built from a C free function (mu's deletable_unique_ptr). */
template <auto Free> struct FreeFn {
  template <class T> void operator()(T *pointer) const noexcept {
    if (pointer != nullptr) {
      Free(pointer);
    }
  }
};

using GCharPtr = std::unique_ptr<char, FreeFn<g_free>>;
using GErrorPtr = std::unique_ptr<GError, FreeFn<g_error_free>>;
using ParserOptionsPtr = std::unique_ptr<GMimeParserOptions, FreeFn<g_mime_parser_options_free>>;

/**
 * GMime's parser options as the decoder reads mail: loose address, parameter and RFC 2047 rules,
 * addresses without a domain, unlabelled 8-bit text as UTF-8 then windows-1252. No warning
 * callback (the decoder adds its own). The redaction of messages parses with the same options,
 * so that what the decoder reads is what gets redacted. Defined in mime_parser.cpp.
 */
[[nodiscard]] ParserOptionsPtr lenient_parser_options();

/** The GMime/GLib string as std::string ("" for null). */
[[nodiscard]] inline std::string to_std_string(const char *text) {
  return text != nullptr ? std::string(text) : std::string();
}

/**
 * Checked down-cast between GObject types without C casts: returns `object` as `To*` when it is
 * an instance of `type` (or a subtype), else null. Ownership does not change.
 */
template <class To> [[nodiscard]] To *gobject_cast(gpointer object, GType type) noexcept {
  if (object == nullptr ||
      g_type_check_instance_is_a(static_cast<GTypeInstance *>(object), type) == FALSE) {
    return nullptr;
  }
  return static_cast<To *>(object);
}

/**
 * Calls `visit(InternetAddressMailbox*)` for every mailbox of `list`, descending into groups
 * (RFC 5322 group syntax) at most `max_depth` levels deep. Borrowed pointers only.
 */
template <class Visit>
void for_each_mailbox(InternetAddressList *list, Visit &&visit, int max_depth = 8) {
  if (list == nullptr || max_depth < 0) {
    return;
  }
  const int count = internet_address_list_length(list);
  for (int i = 0; i < count; ++i) {
    InternetAddress *address = internet_address_list_get_address(list, i);
    if (auto *mailbox =
            gobject_cast<InternetAddressMailbox>(address, internet_address_mailbox_get_type())) {
      visit(mailbox);
    } else if (auto *group = gobject_cast<InternetAddressGroup>(
                   address, internet_address_group_get_type())) {
      for_each_mailbox(internet_address_group_get_members(group), visit, max_depth - 1);
    }
  }
}

} // namespace maildsar::connectors::mime
