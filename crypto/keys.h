// Where the 32-byte master key comes from, and the sub-keys derived from it.
// In format-4 stores the master key is a key-encryption key that unwraps the
// data keys (crypto/key_wrap.h); in older stores it is the data key itself.
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

#include "common/status.h"
#include "crypto/secret_key.h"

namespace tidings::crypto {

inline constexpr size_t kSaltBytes = 16;

// How hard Argon2id works for a passphrase, by libsodium's named limits:
//   interactive  2 passes over 64 MiB: well under a second on a phone
//   moderate     3 passes over 256 MiB: about a second on a laptop (kiosks)
//   sensitive    4 passes over 1 GiB: several seconds (servers, cold storage)
enum class PassphraseProfile { kInteractive, kModerate, kSensitive };

// Parses "interactive", "moderate" or "sensitive"; InvalidArgument otherwise.
Result<PassphraseProfile> ParsePassphraseProfile(std::string_view name);

// The most a store header may ask for: the sensitive profile's passes and
// memory, times four. A header beyond them is refused before any derivation
// (an ops limit of 2^32-1 would make unlock hang for hours).
inline constexpr uint64_t kMaxOpsLimit = 16;
inline constexpr uint64_t kMaxMemLimit = uint64_t{4} << 30;  // 4 GiB

struct PassphraseParams {
  uint64_t ops_limit = 0;
  uint64_t mem_limit = 0;  // bytes
  std::array<uint8_t, kSaltBytes> salt{};

  // The profile's limits and a fresh random salt.
  static PassphraseParams New(PassphraseProfile profile);
  static PassphraseParams NewInteractive() { return New(PassphraseProfile::kInteractive); }
};

// InvalidArgument (saying which limit) if the parameters are below
// libsodium's minimum or above kMaxOpsLimit / kMaxMemLimit.
Status CheckPassphraseParams(const PassphraseParams& params);

// InvalidArgument for an empty passphrase or out-of-range parameters
// (CheckPassphraseParams); ResourceExhausted if the machine cannot allocate
// mem_limit.
Result<SecretKey> DeriveFromPassphrase(std::string_view passphrase, const PassphraseParams& params);

// NotFound if the file is missing; PermissionDenied if group or others may
// read it (the message says to chmod 600); InvalidArgument if it is not 32
// bytes or 64 hex digits (a trailing newline is allowed).
Result<SecretKey> LoadKeyFile(const std::string& path);

// Writes a key file with mode 0600, refusing to overwrite (AlreadyExists).
// Content: 64 lowercase hex digits and a newline.
Status WriteKeyFile(const std::string& path, const SecretKey& key);

enum class Purpose : uint64_t {
  kFileCipher = 1,              // RocksDB file stream cipher
  kRecordSeal = 2,              // XChaCha20-Poly1305 record values
  kKeyedHash = 3,               // conversation keys in RocksDB keys
  kKeyCheck = 4,                // the header's wrong-key check
  kRecordMac = 5,               // keyed BLAKE2b tags of record values (authenticated stores)
  kRecordMacSipHash = 6,        // SipHash-128 tags of record values (format-3 stores)
  kKeyWrap = 7,                 // from the key source: the KEK that wraps the data keys (format 4)
  kHeaderMac = 8,               // from the data key: the header's HMAC-SHA-256 (format 4)
  kBackup = 9,                  // from the data key: backup files (engine/backup.cc)
  kAttachmentFingerprint = 10,  // from the naming key: attachments' plaintext fingerprints
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
