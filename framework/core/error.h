// Errors. Two kinds, kept apart on purpose:
//  * What a user can get wrong (files, configs, flags, data) returns absl::Status; the
//    macros below thread it through without boilerplate (absl 20220623 has no absl/log).
//  * A programming error inside the engine (a shape or dtype mismatch passed to an op)
//    throws attnlab::Error with the file, line, op and shapes. The CLI catches it and
//    prints one line; it never becomes undefined behaviour.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace attnlab {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace internal {
// Concatenates anything that streams (numbers, strings, string_views) for a message.
template <typename... Parts>
std::string ConcatMessage(const Parts&... parts) {
  std::ostringstream stream;
  (stream << ... << parts);
  return stream.str();
}

[[noreturn]] void ThrowCheckFailure(const char* file, int line, const char* condition,
                                    const std::string& message);
}  // namespace internal

}  // namespace attnlab

// ATTNLAB_CHECK(cond, parts...): throws attnlab::Error("file:line: check `cond` failed: parts").
#define ATTNLAB_CHECK(condition, ...)                                                          \
  do {                                                                                         \
    if (!(condition)) [[unlikely]] {                                                           \
      ::attnlab::internal::ThrowCheckFailure(__FILE__, __LINE__, #condition,                   \
                                             ::attnlab::internal::ConcatMessage(__VA_ARGS__)); \
    }                                                                                          \
  } while (false)

#define ATTNLAB_STATUS_CONCAT_INNER(a, b) a##b
#define ATTNLAB_STATUS_CONCAT(a, b) ATTNLAB_STATUS_CONCAT_INNER(a, b)

// RETURN_IF_ERROR(expr): returns the status of `expr` from the enclosing function if not ok.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status attnlab_status_ = (expr);           \
    if (!attnlab_status_.ok()) return attnlab_status_; \
  } while (false)

// ASSIGN_OR_RETURN(lhs, expr): evaluates a StatusOr, returns its status on error,
// otherwise moves the value into `lhs` (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, expr) \
  ATTNLAB_ASSIGN_OR_RETURN_IMPL(ATTNLAB_STATUS_CONCAT(attnlab_statusor_, __LINE__), lhs, expr)
#define ATTNLAB_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
