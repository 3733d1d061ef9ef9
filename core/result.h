// Error and Result<T>: how every fallible call in the project reports failure.
//
// Thread-safety: plain values, safe to copy between threads.
#pragma once

#include <expected>
#include <stdexcept>
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
  kDataLoss,            // stored state is unreadable or breaks an invariant; never retry: the
                        // process stops and systemd restarts it (DESIGN.md, reliability)
};

const char* to_string(ErrorCode code);

// One problem with an input: where it is (a JSON path such as
// `rules[3].effect.factor`) and what was expected there.
// What callers may branch on besides the path; never parse the message.
enum class ProblemKind {
  kOther,
  kWrongCurrency,  // the basket's currency is another than the program's
};

struct Problem {
  std::string path;
  std::string message;
  ProblemKind kind = ProblemKind::kOther;
  std::string to_string() const { return path.empty() ? message : path + ": " + message; }
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::vector<Problem> problems;  // every problem found, for validation errors
  // For kUnavailable from storage: the write may have become durable anyway
  // (an I/O error at COMMIT), so the caller cannot say "nothing was saved".
  bool outcome_unknown = false;

  static Error invalid(std::string path, std::string message) {
    return Error{ErrorCode::kInvalidArgument,
                 path.empty() ? message : path + ": " + message,
                 {Problem{std::move(path), std::move(message)}}};
  }
  static Error make(ErrorCode c, std::string message) { return Error{c, std::move(message), {}}; }
};

// std::expected with [[nodiscard]] on the type, so no declaration can forget
// it: a dropped Result is a compile error under -Werror.
template <typename T>
class [[nodiscard]] Result : public std::expected<T, Error> {
  using Base = std::expected<T, Error>;

 public:
  using Base::Base;
  Result() = default;
  Result(const Base& b) : Base(b) {}        // NOLINT: implicit, like the alias it replaced
  Result(Base&& b) : Base(std::move(b)) {}  // NOLINT
};

using Status = Result<void>;

// Thrown where stored state is found unreadable deep inside a storage
// callback; the storage boundary turns it into kDataLoss and stops the
// process. Never caught to carry on.
class DataLoss : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline std::unexpected<Error> fail(ErrorCode code, std::string message) {
  return std::unexpected(Error::make(code, std::move(message)));
}
inline std::unexpected<Error> invalid(std::string path, std::string message) {
  return std::unexpected(Error::invalid(std::move(path), std::move(message)));
}

}  // namespace loyalty::core
