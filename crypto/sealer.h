// RecordSealer: protects stored values, bound to their RocksDB key (the
// associated data), so a value moved to another key fails to open. Two modes:
//
//   kSealed         XChaCha20-Poly1305 (IETF): nonce (24) || ciphertext || tag (16).
//   kAuthenticated  plaintext || tag (16), tag = keyed BLAKE2b-128 over
//                   len(ad) || ad || plaintext. For stores whose files are
//                   already encrypted by the file cipher: confidentiality
//                   comes from that layer, integrity (the stream cipher is
//                   malleable, RocksDB's CRCs are no MAC) from the tag - and
//                   RocksDB can compress the blocks, which it cannot do with
//                   ciphertext. Deterministic, so no nonce is stored.
//   kAuthenticatedSipHash
//                   the same with tag = SipHash-2-4-128 (libsodium's
//                   crypto_shorthash_siphashx24) under the first 16 key
//                   bytes: a PRF built for short inputs, 3.4x cheaper than
//                   BLAKE2b on a 470-byte record (0.22 vs 0.76 us), which
//                   was a third of a page read. The default for new stores.
//                   Its bound is a claim, not a proof: the SipHash paper
//                   analyses the 64-bit output; for SipHash-128, a later
//                   variant, the designers claim (reference README) the
//                   maximum PRF security for its 128-bit key and tag - a
//                   blind forgery succeeds with probability 2^-128 per try,
//                   and key search of 2^s keys with 2^(s-128). It has had
//                   less published cryptanalysis than the 64-bit output.
//                   Each try here costs the attacker a write to the
//                   victim's disk and a read. docs/security.md, "At rest".
//
// Nonces are a random 16-byte prefix chosen once per sealer plus a 64-bit
// counter: one randombytes call per store open instead of one per record
// (random nonces per record cost 2.4x the cipher itself), and still unique
// because two sealers share a prefix with probability 2^-128.
//
// Thread safety: Seal and Open may be called concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/secret_key.h"
#include "common/status.h"

namespace tidings::crypto {

inline constexpr size_t kSealNonceBytes = 24;
inline constexpr size_t kSealTagBytes = 16;
inline constexpr size_t kSealOverhead = kSealNonceBytes + kSealTagBytes;
inline constexpr size_t kMacTagBytes = 16;

enum class RecordProtection : uint8_t {
  kSealed = 0,
  kAuthenticated = 1,
  kAuthenticatedSipHash = 2,
};
// Whether values are plaintext || tag (files encrypted by the file cipher).
inline bool IsAuthenticatedOnly(RecordProtection p) { return p != RecordProtection::kSealed; }

class RecordSealer {
 public:
  // Takes ownership of the key (32 bytes in both modes).
  explicit RecordSealer(SecretKey key, RecordProtection mode = RecordProtection::kSealed);

  RecordProtection mode() const { return mode_; }

  // Appends the sealed form of `plaintext` to *out.
  void SealTo(std::string_view associated_data, std::string_view plaintext, std::string* out) const;
  std::string Seal(std::string_view associated_data, std::string_view plaintext) const;

  // DataLoss (no detail, nothing returned) if the value was tampered with,
  // truncated, moved to another key, or sealed with another key.
  Result<std::string> Open(std::string_view associated_data, std::string_view sealed) const;
  // The same without allocating on hot read paths: the plaintext is a view
  // into `sealed` (authenticated mode) or into *scratch (sealed mode), valid
  // while both are.
  Result<std::string_view> OpenView(std::string_view associated_data, std::string_view sealed,
                                    std::string* scratch) const;

 private:
  void MacTo(std::string_view ad, std::string_view plaintext, uint8_t* tag) const;

  SecretKey key_;
  RecordProtection mode_;
  uint8_t prefix_[16];
  mutable std::atomic<uint64_t> counter_{0};
};

}  // namespace tidings::crypto
