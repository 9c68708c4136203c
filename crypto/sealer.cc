#include "crypto/sealer.h"

#include <sodium.h>

#include <cstring>

namespace tidings::crypto {

static_assert(kSealNonceBytes == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kSealTagBytes == crypto_aead_xchacha20poly1305_ietf_ABYTES);

RecordSealer::RecordSealer(SecretKey key) : key_(std::move(key)) {
  Init().IgnoreError();
  randombytes_buf(prefix_, sizeof(prefix_));
}

void RecordSealer::SealTo(std::string_view ad, std::string_view plaintext, std::string* out) const {
  uint8_t nonce[kSealNonceBytes];
  std::memcpy(nonce, prefix_, sizeof(prefix_));
  uint64_t n = counter_.fetch_add(1, std::memory_order_relaxed);
  for (int i = 0; i < 8; ++i) nonce[16 + i] = static_cast<uint8_t>(n >> (8 * i));

  const size_t start = out->size();
  out->resize(start + kSealOverhead + plaintext.size());
  auto* dst = reinterpret_cast<uint8_t*>(out->data() + start);
  std::memcpy(dst, nonce, kSealNonceBytes);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      dst + kSealNonceBytes, &clen, reinterpret_cast<const uint8_t*>(plaintext.data()),
      plaintext.size(), reinterpret_cast<const uint8_t*>(ad.data()), ad.size(), nullptr, nonce,
      key_.data());
}

std::string RecordSealer::Seal(std::string_view ad, std::string_view plaintext) const {
  std::string out;
  SealTo(ad, plaintext, &out);
  return out;
}

Result<std::string> RecordSealer::Open(std::string_view ad, std::string_view sealed) const {
  if (sealed.size() < kSealOverhead) return DataLoss("record is truncated");
  const auto* in = reinterpret_cast<const uint8_t*>(sealed.data());
  std::string plain(sealed.size() - kSealOverhead, '\0');
  unsigned long long plen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<uint8_t*>(plain.data()), &plen, nullptr, in + kSealNonceBytes,
          sealed.size() - kSealNonceBytes, reinterpret_cast<const uint8_t*>(ad.data()), ad.size(),
          in, key_.data()) != 0) {
    return DataLoss("record failed authentication (corrupt or tampered)");
  }
  plain.resize(static_cast<size_t>(plen));
  return plain;
}

}  // namespace tidings::crypto
