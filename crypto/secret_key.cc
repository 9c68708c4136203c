#include "crypto/secret_key.h"

#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

namespace tidings::crypto {

Status Init() {
  // sodium_init is thread-safe and returns 1 when already initialized.
  static const int rc = sodium_init();
  if (rc < 0) return Internal("libsodium failed to initialize");
  return Status::Ok();
}

void Wipe(std::string* s) {
  if (!s->empty()) sodium_memzero(s->data(), s->size());
  s->clear();
}

SecretBytes::~SecretBytes() {
  if (data_ != nullptr) sodium_free(data_);  // wipes before freeing
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) sodium_free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Result<SecretBytes> SecretBytes::Copy(std::string_view bytes) {
  SecretBytes out;
  if (bytes.empty()) return out;
  TIDINGS_RETURN_IF_ERROR(Init());
  out.data_ = static_cast<char*>(sodium_malloc(bytes.size()));
  if (out.data_ == nullptr) return ResourceExhausted("no locked memory left for a secret");
  std::memcpy(out.data_, bytes.data(), bytes.size());
  out.size_ = bytes.size();
  return out;
}

Status ReadSecretFile(int fd, std::string_view what, size_t cap, std::string* out) {
  out->resize(cap + 1);
  size_t got = 0;
  while (got < out->size()) {
    ssize_t n = ::read(fd, out->data() + got, out->size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      out->resize(got);
      return IOError("cannot read " + std::string(what) + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out->resize(got);  // shrinking keeps the buffer: the caller's wipe covers what was read
  if (got > cap)
    return InvalidArgument(std::string(what) + " is longer than " + std::to_string(cap) +
                           " bytes; it is not the file that was meant");
  return Status::Ok();
}

SharedSecret::SharedSecret(std::string_view bytes) {
  if (bytes.empty()) return;
  auto copy = SecretBytes::Copy(bytes);
  if (!copy.ok()) throw std::bad_alloc();
  bytes_ = std::make_shared<const SecretBytes>(std::move(*copy));
}

SharedSecret::SharedSecret(SecretBytes bytes) {
  if (!bytes.empty()) bytes_ = std::make_shared<const SecretBytes>(std::move(bytes));
}

SecretKey::~SecretKey() {
  if (bytes_ != nullptr) sodium_free(bytes_);  // wipes before freeing
}

SecretKey::SecretKey(SecretKey&& other) noexcept : bytes_(other.bytes_) { other.bytes_ = nullptr; }

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    if (bytes_ != nullptr) sodium_free(bytes_);
    bytes_ = other.bytes_;
    other.bytes_ = nullptr;
  }
  return *this;
}

Result<SecretKey> SecretKey::Allocate() {
  TIDINGS_RETURN_IF_ERROR(Init());
  SecretKey key;
  key.bytes_ = static_cast<uint8_t*>(sodium_malloc(kKeyBytes));
  if (key.bytes_ == nullptr) {
    return ResourceExhausted("cannot allocate protected memory for a key (mlock limit?)");
  }
  return key;
}

Result<SecretKey> SecretKey::Random() {
  TIDINGS_ASSIGN_OR_RETURN(SecretKey key, Allocate());
  randombytes_buf(key.bytes_, kKeyBytes);
  return key;
}

Result<SecretKey> SecretKey::FromBytes(std::span<const uint8_t> bytes) {
  if (bytes.size() != kKeyBytes) {
    return InvalidArgument("a key must be exactly 32 bytes, got " + std::to_string(bytes.size()));
  }
  TIDINGS_ASSIGN_OR_RETURN(SecretKey key, Allocate());
  std::memcpy(key.bytes_, bytes.data(), kKeyBytes);
  return key;
}

Result<SecretKey> SecretKey::FromBytes(std::string_view bytes) {
  return FromBytes(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

std::string_view SecretKey::view() const {
  return valid() ? std::string_view(reinterpret_cast<const char*>(bytes_), kKeyBytes)
                 : std::string_view();
}

Result<SecretKey> SecretKey::Clone() const {
  if (!valid()) return FailedPrecondition("cannot clone an empty key");
  return FromBytes(std::span<const uint8_t>(bytes_, kKeyBytes));
}

}  // namespace tidings::crypto
