#include "crypto/sealer.h"

#include <sodium.h>

#include <cstring>

#include "crypto/hash.h"

namespace tidings::crypto {

static_assert(kSealNonceBytes == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kSealTagBytes == crypto_aead_xchacha20poly1305_ietf_ABYTES);

static_assert(kMacTagBytes >= crypto_generichash_BYTES_MIN);

RecordSealer::RecordSealer(SecretKey key, RecordProtection mode)
    : key_(std::move(key)), mode_(mode) {
  Init().IgnoreError();
  randombytes_buf(prefix_, sizeof(prefix_));
}

void RecordSealer::MacTo(std::string_view ad, std::string_view plaintext, uint8_t* tag) const {
  if (mode_ == RecordProtection::kAuthenticatedSipHash) {
    // libsodium's SipHash takes one buffer: the same framing, gathered.
    thread_local std::string input;
    input.clear();
    input.reserve(8 + ad.size() + plaintext.size());  // no reallocation leaves a copy behind
    const uint64_t ad_len = ad.size();
    for (int i = 0; i < 8; ++i) input.push_back(static_cast<char>(ad_len >> (8 * i)));
    input.append(ad);
    input.append(plaintext);
    const auto mac = SipHash16(key_, input);
    sodium_memzero(input.data(), input.size());  // it held the plaintext
    input.clear();
    static_assert(mac.size() == kMacTagBytes);
    std::memcpy(tag, mac.data(), mac.size());
    return;
  }
  crypto_generichash_state st;
  crypto_generichash_init(&st, key_.data(), key_.size(), kMacTagBytes);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(uint64_t{ad.size()} >> (8 * i));
  crypto_generichash_update(&st, len, sizeof(len));
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(ad.data()), ad.size());
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(plaintext.data()),
                            plaintext.size());
  crypto_generichash_final(&st, tag, kMacTagBytes);
}

void RecordSealer::SealTo(std::string_view ad, std::string_view plaintext, std::string* out) const {
  if (IsAuthenticatedOnly(mode_)) {
    uint8_t tag[kMacTagBytes];
    MacTo(ad, plaintext, tag);
    out->append(plaintext);
    out->append(reinterpret_cast<const char*>(tag), sizeof(tag));
    return;
  }
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
  std::string scratch;
  TIDINGS_ASSIGN_OR_RETURN(std::string_view plain, OpenView(ad, sealed, &scratch));
  if (plain.data() == scratch.data()) return scratch;
  return std::string(plain);
}

Result<std::string_view> RecordSealer::OpenView(std::string_view ad, std::string_view sealed,
                                                std::string* scratch) const {
  if (IsAuthenticatedOnly(mode_)) {
    if (sealed.size() < kMacTagBytes) return DataLoss("record is truncated");
    std::string_view plain = sealed.substr(0, sealed.size() - kMacTagBytes);
    uint8_t tag[kMacTagBytes];
    MacTo(ad, plain, tag);
    if (crypto_verify_16(tag, reinterpret_cast<const uint8_t*>(plain.data() + plain.size())) != 0) {
      return DataLoss("record failed authentication (corrupt or tampered)");
    }
    return plain;
  }
  if (sealed.size() < kSealOverhead) return DataLoss("record is truncated");
  const auto* in = reinterpret_cast<const uint8_t*>(sealed.data());
  scratch->resize(sealed.size() - kSealOverhead);
  unsigned long long plen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<uint8_t*>(scratch->data()), &plen, nullptr, in + kSealNonceBytes,
          sealed.size() - kSealNonceBytes, reinterpret_cast<const uint8_t*>(ad.data()), ad.size(),
          in, key_.data()) != 0) {
    return DataLoss("record failed authentication (corrupt or tampered)");
  }
  scratch->resize(static_cast<size_t>(plen));
  return std::string_view(*scratch);
}

}  // namespace tidings::crypto
