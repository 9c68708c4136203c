#include "crypto/key_wrap.h"

#include <sodium.h>

#include <cstring>

namespace tidings::crypto {
namespace {

constexpr size_t kPlainBytes = 2 * kKeyBytes;
constexpr size_t kWrappedBytes =
    crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + kPlainBytes;

}  // namespace

std::string WrapKeys(const SecretKey& kek, const DataKeys& keys) {
  Init().IgnoreError();
  uint8_t plain[kPlainBytes];
  std::memcpy(plain, keys.data.data(), kKeyBytes);
  std::memcpy(plain + kKeyBytes, keys.naming.data(), kKeyBytes);
  std::string out(kWrappedBytes, '\0');
  auto* dst = reinterpret_cast<uint8_t*>(out.data());
  randombytes_buf(dst, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(dst + crypto_secretbox_NONCEBYTES, plain, sizeof(plain), dst, kek.data());
  sodium_memzero(plain, sizeof(plain));
  return out;
}

Result<DataKeys> UnwrapKeys(const SecretKey& kek, std::string_view wrapped) {
  TIDINGS_RETURN_IF_ERROR(Init());
  if (wrapped.size() != kWrappedBytes) return DataLoss("the wrapped store key has the wrong size");
  const auto* in = reinterpret_cast<const uint8_t*>(wrapped.data());
  uint8_t plain[kPlainBytes];
  if (crypto_secretbox_open_easy(plain, in + crypto_secretbox_NONCEBYTES,
                                 wrapped.size() - crypto_secretbox_NONCEBYTES, in,
                                 kek.data()) != 0) {
    return WrongKey("the key does not unwrap the store key");
  }
  DataKeys keys;
  auto data = SecretKey::FromBytes(std::span<const uint8_t>(plain, kKeyBytes));
  auto naming = SecretKey::FromBytes(std::span<const uint8_t>(plain + kKeyBytes, kKeyBytes));
  sodium_memzero(plain, sizeof(plain));
  if (!data.ok()) return data.status();
  if (!naming.ok()) return naming.status();
  keys.data = std::move(*data);
  keys.naming = std::move(*naming);
  return keys;
}

}  // namespace tidings::crypto
