#include "crypto/public_key.h"

#include <sodium.h>

#include <cstring>

namespace tidings::crypto {
namespace {

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// The expanded Ed25519 secret key (64 bytes) in sodium memory, wiped on scope exit.
class ExpandedSigningKey {
 public:
  ExpandedSigningKey()
      : sk_(static_cast<unsigned char*>(sodium_malloc(crypto_sign_SECRETKEYBYTES))) {}
  ~ExpandedSigningKey() {
    if (sk_ != nullptr) sodium_free(sk_);  // sodium_free wipes
  }
  ExpandedSigningKey(const ExpandedSigningKey&) = delete;
  ExpandedSigningKey& operator=(const ExpandedSigningKey&) = delete;
  unsigned char* get() { return sk_; }

 private:
  unsigned char* sk_;
};

}  // namespace

SigningKey::~SigningKey() {
  if (expanded_ != nullptr) sodium_free(expanded_);  // sodium_free wipes
}

SigningKey::SigningKey(SigningKey&& other) noexcept
    : expanded_(other.expanded_), public_key_(other.public_key_) {
  other.expanded_ = nullptr;
}

SigningKey& SigningKey::operator=(SigningKey&& other) noexcept {
  if (this != &other) {
    if (expanded_ != nullptr) sodium_free(expanded_);
    expanded_ = other.expanded_;
    public_key_ = other.public_key_;
    other.expanded_ = nullptr;
  }
  return *this;
}

Result<SigningKey> SigningKey::FromSeed(const SecretKey& seed) {
  TIDINGS_RETURN_IF_ERROR(Init());
  if (!seed.valid()) return InvalidArgument("no signing key");
  SigningKey key;
  key.expanded_ = static_cast<uint8_t*>(sodium_malloc(crypto_sign_SECRETKEYBYTES));
  if (key.expanded_ == nullptr) return ResourceExhausted("cannot allocate secure memory for a key");
  crypto_sign_seed_keypair(key.public_key_.data(), key.expanded_, seed.data());
  return key;
}

std::string SigningKey::Sign(std::string_view message) const {
  std::string signature(kSignatureBytes, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), nullptr, U(message),
                       message.size(), expanded_);
  return signature;
}

Result<PublicKey> SigningPublicKey(const SecretKey& seed) {
  TIDINGS_RETURN_IF_ERROR(Init());
  if (!seed.valid()) return InvalidArgument("no signing key");
  ExpandedSigningKey sk;
  if (sk.get() == nullptr) return ResourceExhausted("cannot allocate secure memory for a key");
  PublicKey pk{};
  crypto_sign_seed_keypair(pk.data(), sk.get(), seed.data());
  return pk;
}

Result<std::string> Sign(const SecretKey& seed, std::string_view message) {
  TIDINGS_RETURN_IF_ERROR(Init());
  if (!seed.valid()) return InvalidArgument("no signing key");
  ExpandedSigningKey sk;
  if (sk.get() == nullptr) return ResourceExhausted("cannot allocate secure memory for a key");
  PublicKey pk{};
  crypto_sign_seed_keypair(pk.data(), sk.get(), seed.data());
  std::string signature(kSignatureBytes, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), nullptr, U(message),
                       message.size(), sk.get());
  return signature;
}

bool VerifySignature(const PublicKey& public_key, std::string_view message,
                     std::string_view signature) {
  if (!Init().ok() || signature.size() != kSignatureBytes) return false;
  return crypto_sign_verify_detached(U(signature), U(message), message.size(), public_key.data()) ==
         0;
}

Result<PublicKey> BoxPublicKey(const SecretKey& secret) {
  TIDINGS_RETURN_IF_ERROR(Init());
  if (!secret.valid()) return InvalidArgument("no box key");
  PublicKey pk{};
  crypto_scalarmult_base(pk.data(), secret.data());
  return pk;
}

std::string SealBox(const PublicKey& recipient, std::string_view plaintext) {
  (void)Init();
  std::string out(plaintext.size() + crypto_box_SEALBYTES, '\0');
  crypto_box_seal(reinterpret_cast<unsigned char*>(out.data()), U(plaintext), plaintext.size(),
                  recipient.data());
  return out;
}

Result<std::string> OpenBox(const SecretKey& secret, const PublicKey& public_key,
                            std::string_view sealed) {
  TIDINGS_RETURN_IF_ERROR(Init());
  if (!secret.valid() || sealed.size() < crypto_box_SEALBYTES) {
    return DataLoss("a sealed key share does not open");
  }
  std::string out(sealed.size() - crypto_box_SEALBYTES, '\0');
  if (crypto_box_seal_open(reinterpret_cast<unsigned char*>(out.data()), U(sealed), sealed.size(),
                           public_key.data(), secret.data()) != 0) {
    return DataLoss("a sealed key share does not open");
  }
  return out;
}

std::string AeadSeal(const SecretKey& key, std::string_view associated_data,
                     std::string_view plaintext) {
  (void)Init();
  std::string out(kAeadNonceBytes + plaintext.size() + kAeadTagBytes, '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(p, kAeadNonceBytes);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(p + kAeadNonceBytes, &written, U(plaintext),
                                             plaintext.size(), U(associated_data),
                                             associated_data.size(), nullptr, p, key.data());
  out.resize(kAeadNonceBytes + written);
  return out;
}

Result<std::string> AeadOpen(const SecretKey& key, std::string_view associated_data,
                             std::string_view sealed) {
  TIDINGS_RETURN_IF_ERROR(Init());
  if (!key.valid() || sealed.size() < kAeadNonceBytes + kAeadTagBytes) {
    return DataLoss("ciphertext does not open");
  }
  const auto* p = U(sealed);
  std::string out(sealed.size() - kAeadNonceBytes - kAeadTagBytes, '\0');
  unsigned long long written = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(out.data()), &written, nullptr, p + kAeadNonceBytes,
          sealed.size() - kAeadNonceBytes, U(associated_data), associated_data.size(), p,
          key.data()) != 0) {
    return DataLoss("ciphertext does not open");
  }
  out.resize(written);
  return out;
}

std::string Blake2b(std::string_view data, size_t out_bytes, std::string_view key) {
  (void)Init();
  std::string out(out_bytes, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out_bytes, U(data), data.size(),
                     key.empty() ? nullptr : U(key), key.size());
  return out;
}

}  // namespace tidings::crypto
