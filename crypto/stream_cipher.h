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

// XORs data[0, n) in place with the keystream at byte `offset` of the stream
// (key, nonce). REQUIRES: key.valid(), nonce points to kStreamNonceBytes.
void XChaCha20XorAt(const SecretKey& key, const uint8_t* nonce, uint64_t offset, uint8_t* data,
                    size_t n);

}  // namespace tidings::crypto
