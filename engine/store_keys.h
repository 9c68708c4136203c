// The store's keys from its header and a key source: checking the key,
// unwrapping the data keys, authenticating the header, deriving the
// sub-keys; and making the header for new keys (init, rewrap, rotation).
//
//   key source --(raw / key file / Argon2id)--> source key
//   formats 1-3: source key = data key, checked by the sealed key check
//   format 4:    KEK = kdf(source key, kKeyWrap) unwraps {data, naming} keys;
//                the header HMAC is checked under kdf(data, kHeaderMac)
//   data key --kdf--> file cipher, record seal/MAC; naming key --> keyed ids
#pragma once

#include <string>

#include "common/status.h"
#include "crypto/key_wrap.h"
#include "crypto/keys.h"
#include "engine/store_header.h"

namespace tidings::engine {

// The keys a store runs with, and what a rekey needs to rewrap them.
struct StoreKeys {
  crypto::DataKeys data;         // the unwrapped keys (formats 1-3: the source key)
  crypto::SecretKey file;        // the file cipher
  crypto::SecretKey record;      // record seal or MAC, by the header's protection
  crypto::SecretKey header_mac;  // the format-4 header HMAC
  crypto::SecretKey backup;      // backup files' stream key (backup.cc)
};

// The bytes the key source gives: the raw key, the key file's key, or
// Argon2id of the passphrase under `params`.
Result<crypto::SecretKey> SourceKey(const crypto::KeySource& key,
                                    const crypto::PassphraseParams& params);

// WrongKey (nothing changed) if `key` is of the wrong kind or does not open
// `header`; DataLoss if a format-4 header's HMAC fails (tampered).
Result<StoreKeys> UnlockHeader(const Header& header, const crypto::KeySource& key,
                               const std::string& store_path);

// The sub-keys of `data` for a store whose records use `records`.
Result<StoreKeys> DeriveStoreKeys(crypto::DataKeys data, crypto::RecordProtection records);

// The keys of a new store and its header's key fields (header->records is
// the caller's). `format` 0 or 4: fresh data keys wrapped under `key`, a new
// store id that record tags bind. 1-3 (tests of older stores): the source
// key is the data key, as older Tidings made them.
Result<StoreKeys> NewStoreKeys(const crypto::KeySource& key, const crypto::PassphraseParams& limits,
                               uint32_t format, Header* header);

// kStoreIdBytes random bytes.
std::string NewStoreId();

// Fresh data keys (a new store, or a rotation that keeps `naming`).
Result<crypto::DataKeys> NewDataKeys();

// Makes *header a format-4 header with `data` wrapped under `key`: the key
// kind, for a passphrase the Argon2id limits of `limits` with a fresh salt,
// and the wrapped keys. The other format-4 fields (store id, database
// directory, generation, record protection) are the caller's.
Status WrapForKeySource(const crypto::KeySource& key, const crypto::PassphraseParams& limits,
                        const crypto::DataKeys& data, Header* header);

}  // namespace tidings::engine
