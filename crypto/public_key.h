// Public-key cryptography for end-to-end encryption (sync/e2e), all from
// libsodium: Ed25519 signatures (crypto_sign), X25519 sealed boxes
// (crypto_box_seal), XChaCha20-Poly1305 with associated data
// (crypto_aead_xchacha20poly1305_ietf) and BLAKE2b (crypto_generichash).
//
// Secret keys are 32-byte seeds in SecretKey (sodium_malloc memory, wiped);
// the expanded Ed25519 secret key exists only inside Sign, in sodium memory.
//
// Thread safety: every function may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/secret_key.h"

namespace tidings::crypto {

inline constexpr size_t kPublicKeyBytes = 32;  // Ed25519 and X25519 public keys
inline constexpr size_t kSignatureBytes = 64;
inline constexpr size_t kSealedBoxOverhead = 48;  // crypto_box_SEALBYTES
inline constexpr size_t kAeadNonceBytes = 24;
inline constexpr size_t kAeadTagBytes = 16;

using PublicKey = std::array<uint8_t, kPublicKeyBytes>;

// ---- Ed25519 ----
// An expanded Ed25519 signing key (64 bytes) in sodium memory, made once from
// a seed: signing with it skips the key derivation and the secure-memory
// allocation that Sign(seed, ...) pays on every call. Move-only; wiped.
class SigningKey {
 public:
  SigningKey() = default;
  ~SigningKey();
  SigningKey(SigningKey&& other) noexcept;
  SigningKey& operator=(SigningKey&& other) noexcept;
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  static Result<SigningKey> FromSeed(const SecretKey& seed);
  const PublicKey& public_key() const { return public_key_; }
  // 64-byte detached signature of `message`. REQUIRES: made by FromSeed.
  std::string Sign(std::string_view message) const;

 private:
  uint8_t* expanded_ = nullptr;  // sodium_malloc'd, 64 bytes
  PublicKey public_key_{};
};

// The public key of a signing seed.
Result<PublicKey> SigningPublicKey(const SecretKey& seed);
// 64-byte detached signature of `message`.
Result<std::string> Sign(const SecretKey& seed, std::string_view message);
// True only for a valid signature of `message` by `public_key`.
bool VerifySignature(const PublicKey& public_key, std::string_view message,
                     std::string_view signature);

// ---- X25519 sealed boxes (anonymous sender; authenticity comes from a
// signature around them) ----
Result<PublicKey> BoxPublicKey(const SecretKey& secret);
// plaintext.size() + kSealedBoxOverhead bytes that only `recipient` opens.
std::string SealBox(const PublicKey& recipient, std::string_view plaintext);
// DataLoss if not sealed to this key pair or tampered with.
Result<std::string> OpenBox(const SecretKey& secret, const PublicKey& public_key,
                            std::string_view sealed);

// ---- XChaCha20-Poly1305 (IETF) ----
// nonce (24, random) || ciphertext || tag (16).
std::string AeadSeal(const SecretKey& key, std::string_view associated_data,
                     std::string_view plaintext);
// DataLoss (no detail) for a wrong key, wrong associated data or tampering.
Result<std::string> AeadOpen(const SecretKey& key, std::string_view associated_data,
                             std::string_view sealed);

// ---- BLAKE2b ----
// Unkeyed (or keyed, when `key` is non-empty, 16..64 bytes) BLAKE2b of
// `out_bytes` (16..64) bytes.
std::string Blake2b(std::string_view data, size_t out_bytes, std::string_view key = {});

}  // namespace tidings::crypto
