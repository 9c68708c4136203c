// A stream of chunks under one key, each encrypted and authenticated on its
// own and in order: libsodium's crypto_secretstream_xchacha20poly1305. A
// chunk that is altered, dropped, reordered or replayed fails to open, and
// the writer marks the last chunk final, so a stream cut short is told apart
// from a whole one. Used for backups (engine/backup.h); the state holding the
// running key lives in sodium memory and is wiped.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/secret_key.h"

namespace tidings::crypto {

inline constexpr size_t kSecretStreamHeaderBytes = 24;  // random, sent first
inline constexpr size_t kSecretStreamOverhead = 17;     // per chunk: tag byte + MAC

struct SecretStreamState;  // libsodium's state, in sodium_malloc'ed memory

class SecretStreamWriter {
 public:
  // A new stream under `key`; *header gets the bytes a reader needs first.
  static Result<SecretStreamWriter> Start(const SecretKey& key, std::string* header);

  // Appends to *out the chunk carrying `plain`, authenticated together with
  // `ad` (which is not stored: the reader must pass the same bytes). After a
  // chunk with `final` set, the stream is finished.
  void Push(std::string_view plain, std::string_view ad, bool final, std::string* out);

 private:
  std::unique_ptr<SecretStreamState, void (*)(SecretStreamState*)> state_{nullptr, nullptr};
};

class SecretStreamReader {
 public:
  // InvalidArgument unless `header` is kSecretStreamHeaderBytes long.
  static Result<SecretStreamReader> Start(const SecretKey& key, std::string_view header);

  // Opens the next chunk into *plain (replacing its contents); *final tells
  // whether the writer ended the stream with it. DataLoss if the chunk, its
  // place in the stream or `ad` is not what the writer wrote.
  Status Pull(std::string_view chunk, std::string_view ad, std::string* plain, bool* final);

 private:
  std::unique_ptr<SecretStreamState, void (*)(SecretStreamState*)> state_{nullptr, nullptr};
};

}  // namespace tidings::crypto
