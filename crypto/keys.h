// Where the 32-byte master key comes from, and the sub-keys derived from it.
//
//   raw bytes   from the embedding app's keychain/keystore (SecretKey::FromBytes)
//   passphrase  Argon2id; parameters and salt live in the store header
//   key file    32 raw bytes or 64 hex digits; refused if group/other can read it
//
// Sub-keys are derived with crypto_kdf (BLAKE2b) under the context "tidings1",
// one per purpose, so no key is ever used for two things.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/secret_key.h"
#include "common/status.h"

namespace tidings::crypto {

inline constexpr size_t kSaltBytes = 16;

struct PassphraseParams {
  uint64_t ops_limit = 0;
  uint64_t mem_limit = 0;  // bytes
  std::array<uint8_t, kSaltBytes> salt{};

  // Argon2id "interactive" limits (about 64 MiB, tuned by libsodium for a
  // sub-second unlock on phones) and a fresh random salt.
  static PassphraseParams NewInteractive();
};

// InvalidArgument for an empty passphrase or out-of-range parameters;
// ResourceExhausted if the machine cannot allocate mem_limit.
Result<SecretKey> DeriveFromPassphrase(std::string_view passphrase, const PassphraseParams& params);

// NotFound if the file is missing; PermissionDenied if group or others may
// read it (the message says to chmod 600); InvalidArgument if it is not 32
// bytes or 64 hex digits (a trailing newline is allowed).
Result<SecretKey> LoadKeyFile(const std::string& path);

// Writes a key file with mode 0600, refusing to overwrite (AlreadyExists).
// Content: 64 lowercase hex digits and a newline.
Status WriteKeyFile(const std::string& path, const SecretKey& key);

enum class Purpose : uint64_t {
  kFileCipher = 1,        // RocksDB file stream cipher
  kRecordSeal = 2,        // XChaCha20-Poly1305 record values
  kKeyedHash = 3,         // conversation keys in RocksDB keys
  kKeyCheck = 4,          // the header's wrong-key check
  kRecordMac = 5,         // keyed BLAKE2b tags of record values (authenticated stores)
  kRecordMacSipHash = 6,  // SipHash-128 tags of record values (format-3 stores)
  kBackup = 7,            // backup files (engine/backup.h)
};

Result<SecretKey> DeriveSubkey(const SecretKey& master, Purpose purpose);

// How a store is unlocked. Holds secret material; wipes it on destruction.
// Move-only.
class KeySource {
 public:
  enum class Kind { kNone, kRaw, kPassphrase, kKeyFile };

  KeySource() = default;
  ~KeySource();
  KeySource(KeySource&&) noexcept;
  KeySource& operator=(KeySource&&) noexcept;
  KeySource(const KeySource&) = delete;
  KeySource& operator=(const KeySource&) = delete;

  static KeySource Raw(SecretKey key);                   // from the app's keychain
  static KeySource Passphrase(std::string_view phrase);  // Argon2id
  static KeySource KeyFile(std::string path);            // 0600 file

  Kind kind() const { return kind_; }
  const SecretKey& raw() const { return raw_; }
  const std::string& passphrase() const { return secret_; }
  const std::string& path() const { return path_; }

 private:
  Kind kind_ = Kind::kNone;
  SecretKey raw_;
  std::string secret_;  // passphrase; wiped on destruction
  std::string path_;
};

}  // namespace tidings::crypto
