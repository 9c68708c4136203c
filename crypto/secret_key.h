// SecretKey: 32 key bytes in sodium_malloc'ed memory (guard pages, mlock'ed,
// never swapped where the OS allows), wiped with sodium_memzero on destruction.
// The only place key bytes live in Tidings.
//
// Thread safety: a const SecretKey may be read from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tidings::crypto {

inline constexpr size_t kKeyBytes = 32;

// Initializes libsodium. Idempotent and thread-safe; every crypto entry point
// calls it, so callers need not.
Status Init();

// Overwrites `s` with zeros (sodium_memzero, which the compiler may not
// elide) and empties it: for secrets that had to pass through a std::string.
void Wipe(std::string* s);

// Reads all of `fd` into `out`, whose buffer is sized once (`cap` + 1), so
// no reallocation leaves a copy of a secret behind; the caller wipes `out`,
// also after an error. A file longer than `cap` bytes is InvalidArgument, never
// a silently shortened secret. `what` names the file in errors.
Status ReadSecretFile(int fd, std::string_view what, size_t cap, std::string* out);

class SecretKey {
 public:
  SecretKey() = default;  // empty; valid() is false
  ~SecretKey();
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&& other) noexcept;
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;

  // A fresh random key.
  static Result<SecretKey> Random();
  // Copies exactly kKeyBytes bytes; InvalidArgument for any other size. The
  // caller should wipe its own copy.
  static Result<SecretKey> FromBytes(std::span<const uint8_t> bytes);
  // The same, from the bytes of a string (a decoded record field).
  static Result<SecretKey> FromBytes(std::string_view bytes);
  // A second key with the same bytes (the original stays valid).
  Result<SecretKey> Clone() const;

  bool valid() const { return bytes_ != nullptr; }
  // REQUIRES: valid()
  const uint8_t* data() const { return bytes_; }
  uint8_t* mutable_data() { return bytes_; }
  static constexpr size_t size() { return kKeyBytes; }
  // The key bytes as a string view (empty when !valid()), for byte APIs and
  // encoders; the view lives as long as the key.
  std::string_view view() const;

 private:
  static Result<SecretKey> Allocate();
  uint8_t* bytes_ = nullptr;
};

// Secret bytes of any length (an AWS secret key, a session token) in
// sodium_malloc'ed memory, wiped on destruction, for secrets kept between
// uses; the empty value allocates nothing.
class SecretBytes {
 public:
  SecretBytes() = default;
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  // ResourceExhausted if locked memory cannot be had.
  static Result<SecretBytes> Copy(std::string_view bytes);
  std::string_view view() const { return {data_, size_}; }
  bool empty() const { return size_ == 0; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

// A secret held by many short-lived copies of a struct (AWS credentials are
// copied per request): the copies share one SecretBytes, so the bytes exist
// once, locked, and are wiped when the last holder goes. Converts from a
// string so credentials read as plain values; a failure to get locked
// memory there throws std::bad_alloc, as the string's own copy would.
class SharedSecret {
 public:
  SharedSecret() = default;
  SharedSecret(std::string_view bytes);  // NOLINT(google-explicit-constructor)
  SharedSecret(const std::string& bytes) : SharedSecret(std::string_view(bytes)) {}  // NOLINT
  SharedSecret(const char* bytes) : SharedSecret(std::string_view(bytes)) {}         // NOLINT
  explicit SharedSecret(SecretBytes bytes);

  std::string_view view() const { return bytes_ ? bytes_->view() : std::string_view(); }
  bool empty() const { return view().empty(); }

 private:
  std::shared_ptr<const SecretBytes> bytes_;
};

}  // namespace tidings::crypto
