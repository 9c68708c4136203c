#include "crypto/hash.h"

#include <sodium.h>

#include <cstring>

namespace tidings::crypto {

static_assert(sizeof(crypto_hash_sha256_state) <= 128);

Digest256 Sha256(std::string_view data) {
  Digest256 out;
  crypto_hash_sha256(out.data(), reinterpret_cast<const uint8_t*>(data.data()), data.size());
  return out;
}

std::string Sha256Hex(std::string_view data) { return HexEncode(Sha256(data)); }

Sha256Hasher::Sha256Hasher() {
  crypto_hash_sha256_init(reinterpret_cast<crypto_hash_sha256_state*>(state_));
}

void Sha256Hasher::Update(std::string_view data) {
  crypto_hash_sha256_update(reinterpret_cast<crypto_hash_sha256_state*>(state_),
                            reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

Digest256 Sha256Hasher::Finish() {
  Digest256 out;
  crypto_hash_sha256_final(reinterpret_cast<crypto_hash_sha256_state*>(state_), out.data());
  return out;
}

Digest256 HmacSha256(std::span<const uint8_t> key, std::string_view data) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key.data(), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  Digest256 out;
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof(st));
  return out;
}

std::array<uint8_t, 16> KeyedHash16(const SecretKey& key, std::string_view data) {
  std::array<uint8_t, 16> out;
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const uint8_t*>(data.data()),
                     data.size(), key.data(), kKeyBytes);
  return out;
}

KeyedHasher::KeyedHasher(const SecretKey& key) {
  static_assert(sizeof(crypto_generichash_state) <= sizeof(state_));
  crypto_generichash_init(reinterpret_cast<crypto_generichash_state*>(state_), key.data(),
                          kKeyBytes, 32);
}

KeyedHasher::~KeyedHasher() { sodium_memzero(state_, sizeof state_); }

void KeyedHasher::Update(std::string_view data) {
  crypto_generichash_update(reinterpret_cast<crypto_generichash_state*>(state_),
                            reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

Digest256 KeyedHasher::Finish() {
  Digest256 out;
  crypto_generichash_final(reinterpret_cast<crypto_generichash_state*>(state_), out.data(),
                           out.size());
  return out;
}

std::array<uint8_t, 16> SipHash16(const SecretKey& key, std::string_view data) {
  static_assert(crypto_shorthash_siphashx24_BYTES == 16);
  static_assert(crypto_shorthash_siphashx24_KEYBYTES <= kKeyBytes);
  std::array<uint8_t, 16> out;
  crypto_shorthash_siphashx24(out.data(), reinterpret_cast<const uint8_t*>(data.data()),
                              data.size(), key.data());
  return out;
}

void RandomBytes(uint8_t* out, size_t n) {
  Init().IgnoreError();
  randombytes_buf(out, n);
}

uint64_t RandomU64() {
  uint64_t v;
  RandomBytes(reinterpret_cast<uint8_t*>(&v), sizeof(v));
  return v;
}

std::string HexEncode(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return out;
}

std::string HexEncode(std::string_view bytes) {
  return HexEncode(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

bool HexDecode(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out->resize(hex.size() / 2);
  for (size_t i = 0; i < out->size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<char>((hi << 4) | lo);
  }
  return true;
}

std::string Base64Encode(std::string_view bytes) {
  const int variant = sodium_base64_VARIANT_ORIGINAL;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), variant);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

bool Base64Decode(std::string_view text, std::string* out) {
  out->resize(text.size() / 4 * 3 + 3);
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out->data()), out->size(), text.data(),
                        text.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return false;
  }
  out->resize(len);
  return true;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace tidings::crypto
