#include "crypto/stream_cipher.h"

#include <sodium.h>

#include <algorithm>

namespace tidings::crypto {

static_assert(kStreamNonceBytes == crypto_stream_xchacha20_NONCEBYTES);

void XChaCha20XorAt(const SecretKey& key, const uint8_t* nonce, uint64_t offset, uint8_t* data,
                    size_t n) {
  constexpr uint64_t kBlock = 64;
  uint64_t block = offset / kBlock;
  size_t skip = static_cast<size_t>(offset % kBlock);
  if (skip != 0 && n != 0) {
    // Partial leading block: XOR a zero-padded block so the keystream lines up.
    uint8_t buf[kBlock] = {};
    size_t take = std::min(n, static_cast<size_t>(kBlock) - skip);
    std::copy(data, data + take, buf + skip);
    crypto_stream_xchacha20_xor_ic(buf, buf, kBlock, nonce, block, key.data());
    std::copy(buf + skip, buf + skip + take, data);
    sodium_memzero(buf, sizeof(buf));
    data += take;
    n -= take;
    ++block;
  }
  if (n != 0) crypto_stream_xchacha20_xor_ic(data, data, n, nonce, block, key.data());
}

}  // namespace tidings::crypto
