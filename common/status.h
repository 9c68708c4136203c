// Status and Result<T>: errors are values in Tidings; no exception crosses a
// module boundary or the C API.
//
// Codes follow Abseil's canonical meanings so a caller knows whether to retry:
//   kUnavailable        transient (network, 5xx, throttling): retry the call
//   kAborted            lost a race (conditional write): retry higher up
//   kFailedPrecondition the state is wrong for this call: do not retry
// The numeric values are part of the C ABI (tidings.h mirrors them); never
// renumber, only append.
//
// Thread safety: Status and Result are values; distinct objects may be used
// from different threads freely.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tidings {

enum class Code : int {
  kOk = 0,
  kInvalidArgument = 1,     // bad input from the caller; fix the input
  kNotFound = 2,            // no such store, message, conversation, file
  kAlreadyExists = 3,       // e.g. `init` on an existing store
  kFailedPrecondition = 4,  // wrong state; do not retry as is
  kAborted = 5,             // lost a race; retry the whole operation
  kUnavailable = 6,         // transient; retry with backoff
  kDeadlineExceeded = 7,    // timed out; the outcome may be unknown
  kPermissionDenied = 8,    // authenticated but not allowed (403, file mode)
  kUnauthenticated = 9,     // bad or expired credentials
  kResourceExhausted = 10,  // quota, throttling budget, disk full
  kDataLoss = 11,           // corrupt or tampered data; never returns garbage
  kWrongKey = 12,           // the key does not open this store
  kTooLarge = 13,           // input over a documented limit
  kBusy = 14,               // store locked by another writer process
  kCancelled = 15,          // stopped by shutdown or the caller
  kIOError = 16,            // the OS refused a file operation
  kInternal = 17,           // a bug in Tidings; please report it
  kUnimplemented = 18,      // not supported by this backend / build
};

// Human-readable name of a code, e.g. "WRONG_KEY". Never null.
const char* CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // What happened and what to do about it. Never contains message text, keys
  // or credentials.
  const std::string& message() const { return message_; }
  // "CODE_NAME: message"
  std::string ToString() const;

  // True for codes a caller may retry with backoff.
  bool IsRetryable() const {
    return code_ == Code::kUnavailable || code_ == Code::kAborted ||
           code_ == Code::kDeadlineExceeded || code_ == Code::kResourceExhausted;
  }

  // Returns a copy with "context: " prepended to the message.
  Status WithContext(std::string_view context) const;

  // Explicitly ignore a status (searchable, as in RocksDB).
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {Code::kFailedPrecondition, std::move(m)};
}
inline Status Aborted(std::string m) { return {Code::kAborted, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
inline Status DataLoss(std::string m) { return {Code::kDataLoss, std::move(m)}; }
inline Status WrongKey(std::string m) { return {Code::kWrongKey, std::move(m)}; }
inline Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
inline Status Busy(std::string m) { return {Code::kBusy, std::move(m)}; }
inline Status Cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }
inline Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
inline Status Unimplemented(std::string m) { return {Code::kUnimplemented, std::move(m)}; }

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) status_ = Internal("Result constructed from an OK status without a value");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // REQUIRES: ok()
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

  void IgnoreError() const {}

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace tidings

#define TIDINGS_CONCAT_INNER(a, b) a##b
#define TIDINGS_CONCAT(a, b) TIDINGS_CONCAT_INNER(a, b)

// Returns early from the enclosing function if `expr` yields a non-OK Status.
#define TIDINGS_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::tidings::Status tidings_status_ = (expr);        \
    if (!tidings_status_.ok()) return tidings_status_; \
  } while (0)

// `TIDINGS_ASSIGN_OR_RETURN(auto x, F());` declares x from a Result or returns
// its error.
#define TIDINGS_ASSIGN_OR_RETURN(lhs, expr) \
  TIDINGS_ASSIGN_OR_RETURN_IMPL(TIDINGS_CONCAT(tidings_result_, __LINE__), lhs, expr)
#define TIDINGS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
