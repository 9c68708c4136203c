// The store header: the file TIDINGS beside the database, plaintext and
// checksummed (SHA-256), holding nothing secret - the format number, how the
// key is given, passphrase parameters and salt, and how records are
// protected; format 4 adds the wrapped data keys, the store id, the name of
// the database directory and an HMAC under a sub-key of the data key. Its
// presence means "created": it is written last, atomically, and replacing it
// is the commit point of a rekey. Layout in docs/engine.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/keys.h"
#include "crypto/sealer.h"

namespace tidings::engine {

inline constexpr char kHeaderFile[] = "TIDINGS";
inline constexpr char kHeaderMagic[8] = {'T', 'I', 'D', 'I', 'N', 'G', 'S', '1'};
// The key check: kKeyCheckPlain sealed with the key-check sub-key, bound to
// kKeyCheckAd. A key that opens it is the store's key.
inline constexpr char kKeyCheckAd[] = "tidings-key-check";
inline constexpr char kKeyCheckPlain[] = "tidings key check v1";

inline constexpr uint32_t kNewestFormat = 4;
inline constexpr size_t kStoreIdBytes = 16;

// Format 1: sealed records. Format 2 adds the record protection byte
// (BLAKE2b tags). Format 3: SipHash tags. In formats 1-3 the key source's
// key is the data key and key_check proves it. Format 4: the data keys are
// wrapped under a key-encryption key from the key source (a new passphrase
// rewraps them), the header carries a store id and names its database
// directory, and an HMAC authenticates it. Older Tidings refuses a newer
// format with "upgrade Tidings" instead of reading it as corruption.
struct Header {
  uint32_t format = kNewestFormat;
  uint8_t key_kind = 0;  // crypto::KeySource::Kind
  crypto::PassphraseParams params;
  std::string key_check;  // formats 1-3: sealed kKeyCheckPlain
  crypto::RecordProtection records = crypto::RecordProtection::kSealed;
  // Format 4.
  std::string wrapped_keys;     // crypto::WrapKeys under the KEK
  std::string store_id;         // kStoreIdBytes random bytes
  std::string db_dir = "db";    // "db" or "db-<generation>"
  uint64_t generation = 0;      // bumped by each data-key rotation
  bool store_id_in_ad = false;  // record tags bind the store id (new or rotated stores)
  // Filled by DecodeHeader (format 4): the bytes the HMAC covers and the
  // HMAC, checked by VerifyHeaderMac once the data key is known.
  std::string authenticated;
  std::string mac;
};

// REQUIRES for format 4: `mac_key` valid (crypto::Purpose::kHeaderMac of the
// data key). Formats 1-3 ignore it.
std::string EncodeHeader(const Header& h, const crypto::SecretKey& mac_key = crypto::SecretKey());
// DataLoss (naming `path`) for a corrupt header or Argon2id limits beyond
// crypto::kMaxOpsLimit / kMaxMemLimit (refused before any derivation);
// FailedPrecondition for a format newer than this code reads. A format-4
// header is not yet authenticated: call VerifyHeaderMac after unwrapping.
Status DecodeHeader(std::string_view in, Header* h, const std::string& path);
// DataLoss if a decoded format-4 header's HMAC does not match under `mac_key`
// (the header was changed by someone without the key). OK for formats 1-3.
Status VerifyHeaderMac(const Header& h, const crypto::SecretKey& mac_key, const std::string& path);

// Replaces `path` with `data`: written to `path` + kAtomicWriteSuffix,
// fsynced, renamed over `path`, and the rename made durable.
inline constexpr char kAtomicWriteSuffix[] = ".tmp";
Status WriteFileAtomically(const std::string& path, std::string_view data);
// fsync of directory `dir`, so a rename or removal in it is durable. Best
// effort: a directory that cannot be opened is left as it is.
void SyncDirectory(const std::string& dir);
// The parent directory of `path` ("." for a bare name), synced.
void SyncParentDirectory(const std::string& path);
// The first MiB or so of `path`; NotFound if it does not exist.
Result<std::string> ReadFile(const std::string& path);

}  // namespace tidings::engine
