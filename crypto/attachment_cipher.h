// The encrypted form of an attachment: what the device keeps on disk and
// what S3 holds, byte for byte (docs/attachments.md, "The object").
//
//   header   "TDA1" | chunk size (4, big-endian) | secretstream header (24)
//   chunks   the plaintext cut into chunks of `chunk size` bytes (the last
//            shorter, possibly empty), each sealed in order by
//            crypto_secretstream_xchacha20poly1305 under the attachment's
//            own random content key, with the header's first 8 bytes as
//            associated data, the last tagged FINAL
//
// A chunk that is altered, dropped, moved or replayed, a stream cut short, or
// bytes after the final chunk fail to open: nothing unauthenticated is handed
// on, and the decryptor holds at most one chunk. The ciphertext's size
// follows from the plaintext's (CipherSize), so a download knows what to ask
// for, and its SHA-256 names the object (content address).
//
// Thread safety: one thread per encryptor or decryptor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/secret_key.h"
#include "crypto/secret_stream.h"

namespace tidings::crypto {

inline constexpr char kAttachmentMagic[] = "TDA1";
inline constexpr size_t kAttachmentPrefixBytes = 8;  // magic, chunk size
inline constexpr size_t kAttachmentHeaderBytes = kAttachmentPrefixBytes + kSecretStreamHeaderBytes;
inline constexpr uint32_t kAttachmentChunkBytes = 64 << 10;
inline constexpr uint32_t kMaxAttachmentChunkBytes = 4 << 20;

// The ciphertext size of `plain_bytes` in chunks of `chunk_bytes` (0 for a
// chunk size of 0, which no object has).
uint64_t AttachmentCipherSize(uint64_t plain_bytes, uint32_t chunk_bytes = kAttachmentChunkBytes);

class AttachmentEncryptor {
 public:
  // A new object under `key`; appends the header to *out.
  static Result<AttachmentEncryptor> Start(const SecretKey& key, std::string* out,
                                           uint32_t chunk_bytes = kAttachmentChunkBytes);
  // Appends the chunks `plain` completes to *out; keeps at most a chunk
  // (the last one is sealed by Finish). FailedPrecondition after Finish.
  Status Update(std::string_view plain, std::string* out);
  // Appends the last chunk (what is kept, FINAL). Nothing may follow.
  Status Finish(std::string* out);
  uint64_t plain_bytes() const { return plain_bytes_; }

 private:
  SecretStreamWriter stream_;
  std::string prefix_;
  std::string pending_;  // less than a chunk
  uint32_t chunk_bytes_ = kAttachmentChunkBytes;
  uint64_t plain_bytes_ = 0;
  bool finished_ = false;
};

class AttachmentDecryptor {
 public:
  // `key` must outlive the decryptor.
  explicit AttachmentDecryptor(const SecretKey& key) : key_(&key) {}
  // Takes the next bytes of the object, in any pieces, and appends the
  // plaintext of each chunk they complete to *plain once it is
  // authenticated. DataLoss for a malformed header, a chunk that fails, or
  // bytes after the final chunk; the decryptor is then done with.
  Status Update(std::string_view cipher, std::string* plain);
  // At the end of the object: appends the last chunk's plaintext (the
  // final chunk is shorter than a full one, so Update keeps it). DataLoss
  // unless it opens, is tagged FINAL and nothing followed it.
  Status Finish(std::string* plain);
  uint64_t plain_bytes() const { return plain_bytes_; }

 private:
  Status Header();
  const SecretKey* key_;
  std::optional<SecretStreamReader> stream_;
  std::string prefix_;
  std::string pending_;  // the header, or less than a sealed chunk
  std::string chunk_plain_;
  uint32_t chunk_bytes_ = 0;
  uint64_t plain_bytes_ = 0;
  bool final_ = false, failed_ = false;
};

}  // namespace tidings::crypto
