// SPDX-License-Identifier: GPL-3.0-or-later
#include "core/result.hpp"

#include <boost/program_options/errors.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <exception>
#include <filesystem>
#include <new>
#include <system_error>

namespace maildsar::core {

namespace {

ErrorCode code_from_errc(const std::error_code &ec) {
  if (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted) {
    return ErrorCode::permission;
  }
  if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) {
    return ErrorCode::no_input;
  }
  return ErrorCode::io;
}

} // namespace

Error error_from_current_exception(std::string_view context) {
  std::string prefix(context);
  try {
    throw;
  } catch (const std::filesystem::filesystem_error &e) {
    return Error{code_from_errc(e.code()), prefix + e.what()};
  } catch (const std::system_error &e) {
    return Error{code_from_errc(e.code()), prefix + e.what()};
  } catch (const boost::program_options::error &e) {
    return Error{ErrorCode::usage, prefix + e.what()};
  } catch (const nlohmann::json::exception &e) {
    return Error{ErrorCode::data, prefix + e.what()};
  } catch (const std::bad_alloc &) {
    return Error{ErrorCode::internal, prefix + "out of memory"};
  } catch (const std::exception &e) {
    return Error{ErrorCode::internal, prefix + e.what()};
  } catch (...) {
    return Error{ErrorCode::internal, prefix + "unknown exception"};
  }
}

} // namespace maildsar::core
