#include "crypto/stream_cipher.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace tidings::crypto {

static_assert(kStreamNonceBytes == crypto_stream_xchacha20_NONCEBYTES);
static_assert(crypto_core_hchacha20_INPUTBYTES + 8 == kStreamNonceBytes);
static_assert(crypto_stream_chacha20_NONCEBYTES == 8);

Result<XChaCha20Stream> XChaCha20Stream::Create(const SecretKey& key, const uint8_t* nonce) {
  TIDINGS_RETURN_IF_ERROR(Init());
  XChaCha20Stream s;
  TIDINGS_ASSIGN_OR_RETURN(s.subkey_, SecretKey::Random());  // storage; overwritten below
  crypto_core_hchacha20(s.subkey_.mutable_data(), nonce, key.data(), nullptr);
  std::memcpy(s.chacha_nonce_, nonce + crypto_core_hchacha20_INPUTBYTES, sizeof(s.chacha_nonce_));
  return s;
}

void XChaCha20Stream::XorAt(uint64_t offset, uint8_t* data, size_t n) const {
  constexpr uint64_t kBlock = 64;
  uint64_t block = offset / kBlock;
  size_t skip = static_cast<size_t>(offset % kBlock);
  if (skip != 0 && n != 0) {
    // Partial leading block: XOR a zero-padded block so the keystream lines up.
    uint8_t buf[kBlock] = {};
    size_t take = std::min(n, static_cast<size_t>(kBlock) - skip);
    std::copy(data, data + take, buf + skip);
    crypto_stream_chacha20_xor_ic(buf, buf, kBlock, chacha_nonce_, block, subkey_.data());
    std::copy(buf + skip, buf + skip + take, data);
    sodium_memzero(buf, sizeof(buf));
    data += take;
    n -= take;
    ++block;
  }
  if (n != 0) crypto_stream_chacha20_xor_ic(data, data, n, chacha_nonce_, block, subkey_.data());
}

}  // namespace tidings::crypto
