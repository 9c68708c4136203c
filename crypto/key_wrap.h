// Key wrapping: the store's data keys sealed under a key-encryption key
// (KEK) from the key source, so a new passphrase or key file only re-seals
// 64 bytes and never touches the data.
//
//   wrapped = nonce (24) || crypto_secretbox (XSalsa20-Poly1305) of
//             data key (32) || naming key (32)
//
// The KEK is a sub-key (Purpose::kKeyWrap) of what the key source gives: the
// raw keychain bytes, the key file's bytes, or the Argon2id output.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/secret_key.h"

namespace tidings::crypto {

// The keys a store's header wraps. `data` derives the file cipher, record,
// key-check and header-MAC sub-keys; `naming` is the keyed hash of ids in
// RocksDB keys, which a data-key rotation keeps (the record keys stay).
struct DataKeys {
  SecretKey data;
  SecretKey naming;
};

// REQUIRES: kek, keys.data and keys.naming valid.
std::string WrapKeys(const SecretKey& kek, const DataKeys& keys);
// WrongKey if `wrapped` does not open under `kek` (a wrong passphrase or key
// file, or a damaged wrapped key); DataLoss if it has the wrong size.
Result<DataKeys> UnwrapKeys(const SecretKey& kek, std::string_view wrapped);

}  // namespace tidings::crypto
