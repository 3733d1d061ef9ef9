// Error and Result<T>: how every fallible call in the project reports failure.
//
// Thread-safety: plain values, safe to copy between threads.
#pragma once

#include <expected>
#include <string>
#include <utility>
#include <vector>

namespace loyalty::core {

// Error codes, after absl::StatusCode. Each says whether retrying can help.
enum class ErrorCode {
  kInvalidArgument,     // the input is wrong; retrying the same input fails again
  kNotFound,            // the named thing (member, voucher, line) does not exist; do not retry
  kFailedPrecondition,  // the state forbids it now (stock out, limit reached); retry after it
                        // changes
  kConflict,            // same idempotency key, different body; never retry with this body
  kUnavailable,         // a dependency is down (disk, network); retry with backoff
  kInternal,            // a bug; do not retry, report it
};

const char* to_string(ErrorCode code);

// One problem with an input: where it is (a JSON path such as
// `rules[3].effect.factor`) and what was expected there.
struct Problem {
  std::string path;
  std::string message;
  std::string to_string() const { return path.empty() ? message : path + ": " + message; }
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::vector<Problem> problems;  // every problem found, for validation errors

  static Error invalid(std::string path, std::string message) {
    return Error{ErrorCode::kInvalidArgument,
                 path.empty() ? message : path + ": " + message,
                 {Problem{std::move(path), std::move(message)}}};
  }
  static Error make(ErrorCode c, std::string message) { return Error{c, std::move(message), {}}; }
};

template <typename T>
using Result = std::expected<T, Error>;

using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(ErrorCode code, std::string message) {
  return std::unexpected(Error::make(code, std::move(message)));
}
inline std::unexpected<Error> invalid(std::string path, std::string message) {
  return std::unexpected(Error::invalid(std::move(path), std::move(message)));
}

}  // namespace loyalty::core
