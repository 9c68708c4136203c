// Hashes and MACs: SHA-256 and HMAC-SHA-256 for SigV4, keyed BLAKE2b and
// SipHash for opaque storage keys, random bytes, hex.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "crypto/secret_key.h"

namespace tidings::crypto {

using Digest256 = std::array<uint8_t, 32>;

Digest256 Sha256(std::string_view data);
std::string Sha256Hex(std::string_view data);  // lowercase hex

// Incremental SHA-256 for bodies that arrive in pieces.
class Sha256Hasher {
 public:
  Sha256Hasher();
  void Update(std::string_view data);
  Digest256 Finish();

 private:
  alignas(64) unsigned char state_[128];
};

Digest256 HmacSha256(std::span<const uint8_t> key, std::string_view data);

// Keyed BLAKE2b truncated to 16 bytes: equal inputs give equal outputs, but
// without the key the output reveals nothing about the input.
std::array<uint8_t, 16> KeyedHash16(const SecretKey& key, std::string_view data);
// Keyed BLAKE2b-256 over data that arrives in pieces (an attachment's
// plaintext, for finding the same file sent again without keeping a
// readable fingerprint of it). The key is copied into the hash state, which
// is wiped when the hasher is destroyed.
class KeyedHasher {
 public:
  explicit KeyedHasher(const SecretKey& key);
  ~KeyedHasher();
  KeyedHasher(const KeyedHasher&) = delete;
  KeyedHasher& operator=(const KeyedHasher&) = delete;
  void Update(std::string_view data);
  Digest256 Finish();

 private:
  alignas(64) unsigned char state_[384];
};

// The same property from SipHash-2-4-128 under the key's first 16 bytes: a
// PRF built for short inputs, ~5x cheaper than BLAKE2b on an id.
std::array<uint8_t, 16> SipHash16(const SecretKey& key, std::string_view data);

void RandomBytes(uint8_t* out, size_t n);
uint64_t RandomU64();

std::string HexEncode(std::span<const uint8_t> bytes);
std::string HexEncode(std::string_view bytes);
// False if `hex` has odd length or a non-hex character.
bool HexDecode(std::string_view hex, std::string* out);

// Standard base64 with padding, in constant time (libsodium): for secrets.
// Wire bytes go through sync/aws/base64.h, 13x faster.
std::string Base64Encode(std::string_view bytes);
// False on invalid input (libsodium 1.0.18 takes bytes from 0x80 up as
// base64 characters).
bool Base64Decode(std::string_view text, std::string* out);

// Constant-time comparison (for MACs and signatures).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace tidings::crypto
