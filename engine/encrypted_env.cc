#include "engine/encrypted_env.h"

#include <rocksdb/env_encryption.h>

#include <cstring>

#include "crypto/hash.h"
#include "crypto/stream_cipher.h"

namespace tidings::engine {
namespace {

constexpr char kMarker[8] = {'T', 'D', 'N', 'G', 'X', 'C', '2', '0'};
constexpr size_t kPrefixBytes = 64;  // marker + nonce, zero padded

class XChaChaStream final : public rocksdb::BlockAccessCipherStream {
 public:
  explicit XChaChaStream(crypto::XChaCha20Stream stream) : stream_(std::move(stream)) {}
  size_t BlockSize() override { return 64; }
  rocksdb::Status Encrypt(uint64_t offset, char* data, size_t size) override {
    stream_.XorAt(offset, reinterpret_cast<uint8_t*>(data), size);
    return rocksdb::Status::OK();
  }
  rocksdb::Status Decrypt(uint64_t offset, char* data, size_t size) override {
    return Encrypt(offset, data, size);  // XOR stream: same operation
  }

 protected:
  void AllocateScratch(std::string&) override {}
  rocksdb::Status EncryptBlock(uint64_t index, char* data, char*) override {
    return Encrypt(index * 64, data, 64);
  }
  rocksdb::Status DecryptBlock(uint64_t index, char* data, char*) override {
    return Encrypt(index * 64, data, 64);
  }

 private:
  crypto::XChaCha20Stream stream_;
};

class XChaChaProvider final : public rocksdb::EncryptionProvider {
 public:
  explicit XChaChaProvider(crypto::SecretKey key) : key_(std::move(key)) {}
  const char* Name() const override { return "TidingsXChaCha20"; }
  size_t GetPrefixLength() const override { return kPrefixBytes; }

  rocksdb::Status CreateNewPrefix(const std::string&, char* prefix, size_t len) const override {
    if (len < kPrefixBytes) return rocksdb::Status::InvalidArgument("prefix too short");
    std::memset(prefix, 0, len);
    std::memcpy(prefix, kMarker, sizeof(kMarker));
    crypto::RandomBytes(reinterpret_cast<uint8_t*>(prefix) + sizeof(kMarker),
                        crypto::kStreamNonceBytes);
    return rocksdb::Status::OK();
  }

  rocksdb::Status AddCipher(const std::string&, const char*, size_t, bool) override {
    return rocksdb::Status::NotSupported("the Tidings provider has a single key");
  }

  rocksdb::Status CreateCipherStream(
      const std::string& fname, const rocksdb::EnvOptions&, rocksdb::Slice& prefix,
      std::unique_ptr<rocksdb::BlockAccessCipherStream>* result) override {
    if (prefix.size() < kPrefixBytes || std::memcmp(prefix.data(), kMarker, sizeof(kMarker)) != 0) {
      return rocksdb::Status::Corruption("not a Tidings-encrypted file: " + fname);
    }
    auto stream = crypto::XChaCha20Stream::Create(
        key_, reinterpret_cast<const uint8_t*>(prefix.data()) + sizeof(kMarker));
    if (!stream.ok()) return rocksdb::Status::IOError("cannot set up the file cipher for " + fname);
    result->reset(new XChaChaStream(std::move(*stream)));
    return rocksdb::Status::OK();
  }

  std::string GetMarker() const override { return std::string(kMarker, sizeof(kMarker)); }

 private:
  crypto::SecretKey key_;
};

// Owns the provider so it lives as long as the Env.
class OwningEnv final : public rocksdb::EnvWrapper {
 public:
  explicit OwningEnv(std::shared_ptr<rocksdb::EncryptionProvider> provider)
      : rocksdb::EnvWrapper(std::unique_ptr<rocksdb::Env>(
            rocksdb::NewEncryptedEnv(rocksdb::Env::Default(), provider))),
        provider_(std::move(provider)) {}
  const char* Name() const override { return "TidingsEncryptedEnv"; }

 private:
  std::shared_ptr<rocksdb::EncryptionProvider> provider_;
};

}  // namespace

std::unique_ptr<rocksdb::Env> NewXChaChaEnv(crypto::SecretKey file_key) {
  auto provider = std::make_shared<XChaChaProvider>(std::move(file_key));
  return std::make_unique<OwningEnv>(std::move(provider));
}

}  // namespace tidings::engine
