#include "engine/encrypted_env.h"

#include <rocksdb/env_encryption.h>
#include <rocksdb/file_system.h>
#include <sys/stat.h>

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

// Makes every file RocksDB creates owner-only (0600): RocksDB creates them
// 0644 (less the umask), and the store directory's 0700 should not be the only
// thing between another local user and the (encrypted) data. Scoped to this
// Env: RocksDB's process-wide switch (Env::SetAllowNonOwnerAccess) would also
// change the files of the embedding app's own RocksDB databases.
class PrivateFiles final : public rocksdb::FileSystemWrapper {
 public:
  explicit PrivateFiles(const std::shared_ptr<rocksdb::FileSystem>& base)
      : rocksdb::FileSystemWrapper(base) {}
  const char* Name() const override { return "TidingsPrivateFiles"; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    return OwnerOnly(f, target()->NewWritableFile(f, o, r, dbg));
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    return OwnerOnly(f, target()->ReopenWritableFile(f, o, r, dbg));
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    return OwnerOnly(f, target()->ReuseWritableFile(f, old, o, r, dbg));
  }
  rocksdb::IOStatus NewRandomRWFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    return OwnerOnly(f, target()->NewRandomRWFile(f, o, r, dbg));
  }
  rocksdb::IOStatus LockFile(const std::string& f, const rocksdb::IOOptions& o,
                             rocksdb::FileLock** lock, rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->LockFile(f, o, lock, dbg);
    if (s.ok()) ::chmod(f.c_str(), S_IRUSR | S_IWUSR);  // empty; failing would leak the lock
    return s;
  }

 private:
  // The file is created before the chmod, inside the 0700 store directory,
  // and is empty until the call returns.
  static rocksdb::IOStatus OwnerOnly(const std::string& fname, rocksdb::IOStatus created) {
    if (created.ok() && ::chmod(fname.c_str(), S_IRUSR | S_IWUSR) != 0) {
      return rocksdb::IOStatus::IOError("cannot make " + fname + " private (mode 0600)",
                                        std::strerror(errno));
    }
    return created;
  }
};

// Owns the provider so it lives as long as the Env.
class OwningEnv final : public rocksdb::EnvWrapper {
 public:
  explicit OwningEnv(std::shared_ptr<rocksdb::EncryptionProvider> provider)
      : rocksdb::EnvWrapper(rocksdb::NewCompositeEnv(rocksdb::NewEncryptedFS(
            std::make_shared<PrivateFiles>(rocksdb::FileSystem::Default()), provider))),
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
