// The XChaCha20 stream used by the RocksDB file cipher (engine/encrypted_env).
// Random access: XORs the keystream starting at any byte offset, so RocksDB
// can read and write files at arbitrary positions. One libsodium call covers
// the whole aligned span (RocksDB's default cipher stream calls the cipher
// once per 64-byte block and is 7x slower).
#pragma once

#include <cstddef>
#include <cstdint>

#include "crypto/secret_key.h"

namespace tidings::crypto {

inline constexpr size_t kStreamNonceBytes = 24;

// The keystream XChaCha20(key, nonce) of one file. XChaCha20 is ChaCha20
// keyed with HChaCha20(key, nonce[0..16]) and nonced with nonce[16..24]; the
// stream derives that subkey once instead of on every call (twice per WAL
// append otherwise). The output is exactly libsodium's XChaCha20.
//
// Thread safety: XorAt may be called from any thread.
class XChaCha20Stream {
 public:
  // REQUIRES: key.valid(), nonce points to kStreamNonceBytes.
  static Result<XChaCha20Stream> Create(const SecretKey& key, const uint8_t* nonce);

  // XORs data[0, n) in place with the keystream at byte `offset`.
  void XorAt(uint64_t offset, uint8_t* data, size_t n) const;

 private:
  SecretKey subkey_;
  uint8_t chacha_nonce_[8] = {};
};

}  // namespace tidings::crypto
