// The RocksDB file cipher: every file RocksDB writes (WAL, SST, MANIFEST,
// OPTIONS, CURRENT) is XChaCha20-encrypted with a random per-file nonce kept
// in a 64-byte plaintext file prefix. The stream is random access, and the
// bulk Encrypt/Decrypt go to libsodium in one call per span (RocksDB's default
// stream calls the cipher per 64-byte block, 7x slower).
//
// Integrity is not this layer's job (a stream cipher is malleable): records
// are sealed or authenticated above it (crypto::RecordSealer, engine/txn.cc).
//
// Keystream reuse: RocksDB recycles WAL files when recycle_log_file_num > 0,
// rewriting a file in place under the same prefix; the store keeps it at 0.
#pragma once

#include <rocksdb/env.h>

#include <memory>

#include "crypto/secret_key.h"

namespace tidings::engine {

// An Env over the default one whose files are encrypted with `file_key`.
// The returned Env must outlive every DB opened with it.
std::unique_ptr<rocksdb::Env> NewXChaChaEnv(crypto::SecretKey file_key);

}  // namespace tidings::engine
