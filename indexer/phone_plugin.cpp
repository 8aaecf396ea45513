// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * The phone-number module: the only code that links libphonenumber. It is built as a loadable
 * module (libmaildsar-phone.so) that the indexer opens on the first phone number it must parse,
 * because libphonenumber brings protobuf, ICU and abseil with it — a dozen shared libraries whose
 * loading would otherwise dominate the start-up of every run, even one with nothing to index.
 * The interface is plain C (see phone_module.hpp for the contract).
 */
#define MAILDSAR_PHONE_PLUGIN_ONLY
#include "indexer/phone_module.hpp"

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumbermatch.h>
#include <phonenumbers/phonenumbermatcher.h>
#include <phonenumbers/phonenumberutil.h>

#include <exception>
#include <string>

namespace pn = i18n::phonenumbers;

extern "C" {

__attribute__((visibility("default"))) int maildsar_phone_abi() { return MAILDSAR_PHONE_ABI; }

__attribute__((visibility("default"))) int
maildsar_phone_parse(const char *text, std::size_t size, const char *region,
                     maildsar_phone_emit_fn emit, void *context) noexcept {
  try {
    const pn::PhoneNumberUtil *util = pn::PhoneNumberUtil::GetInstance();
    pn::PhoneNumber number;
    if (util->Parse(std::string(text, size), region, &number) != pn::PhoneNumberUtil::NO_PARSING_ERROR ||
        !util->IsPossibleNumber(number)) {
      return 0;
    }
    std::string formatted;
    util->Format(number, pn::PhoneNumberUtil::E164, &formatted);
    if (formatted.empty()) {
      return 0;
    }
    emit(context, formatted.data(), formatted.size());
    return 1;
  } catch (const std::exception &) {
    return -1;
  }
}

__attribute__((visibility("default"))) int
maildsar_phone_match(const char *text, std::size_t size, const char *region, int max_tries,
                     maildsar_phone_emit_fn emit, void *context) noexcept {
  try {
    const pn::PhoneNumberUtil *util = pn::PhoneNumberUtil::GetInstance();
    const std::string window(text, size);
    pn::PhoneNumberMatcher matcher(*util, window, region, pn::PhoneNumberMatcher::VALID, max_tries);
    pn::PhoneNumberMatch match;
    int found = 0;
    while (matcher.HasNext() && matcher.Next(&match)) {
      std::string formatted;
      util->Format(match.number(), pn::PhoneNumberUtil::E164, &formatted);
      if (!formatted.empty()) {
        emit(context, formatted.data(), formatted.size());
        ++found;
      }
    }
    return found;
  } catch (const std::exception &) {
    return -1;
  }
}

} // extern "C"
