// Result<T, E>: the error-or-value type used for everything recoverable.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace clovis::core {

enum class ErrorCode {
  kInvalidArgument,  // the input is wrong (user can fix it)
  kNotFound,
  kIo,            // reading a file, a socket...
  kLimit,         // a documented limit was exceeded
  kPrecondition,  // not now: the state does not allow it (e.g. nothing to confirm)
  kInternal,
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  int sys_errno = 0;
  std::string message;
  std::string context;  // e.g. the file or object concerned

  std::string what() const { return context.empty() ? message : context + ": " + message; }
};

template <typename E>
struct Unexpected {
  E error;
};

inline Unexpected<Error> fail(ErrorCode code, std::string message, std::string context = {}, int sys_errno = 0) {
  return {Error{code, sys_errno, std::move(message), std::move(context)}};
}

template <typename T, typename E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Unexpected<E> e) : v_(std::in_place_index<1>, std::move(e.error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const E& error() const& { return std::get<1>(v_); }
  E&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, E> v_;
};

// Passes a failed Result's error on to the caller, whatever the caller's
// value type: `if (!st) return core::error_of(st);`. Only for a Result that
// holds an error.
template <typename T, typename E>
Unexpected<E> error_of(const Result<T, E>& r) {
  return {r.error()};
}
template <typename T, typename E>
Unexpected<E> error_of(Result<T, E>&& r) {
  return {std::move(r).error()};
}

// For operations that return nothing but can fail: Status, return Ok{}.
struct Ok {};
using Status = Result<Ok>;

}  // namespace clovis::core
