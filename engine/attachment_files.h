// The attachments' encrypted objects on the device: one file each, named by
// the SHA-256 of its bytes (which are the object S3 holds, byte for byte:
// crypto/attachment_cipher.h), under <store>/attachments/:
//
//   objects/<64 hex>   a whole object, checked when it was written
//   partial/<64 hex>   a download in progress, appended to as ranges come
//                      (its name is the object it must become)
//   tmp/<random>       an import being encrypted; renamed into objects/
//
// Writes are atomic (temporary file, fsync, rename, directory fsync), files
// are 0600 and the directories 0700, and nothing in a name or a file is
// readable without the object's content key. The records that say which
// message holds which object, with its key, live in the store
// (docs/attachments.md); this class only keeps the files.
//
// Thread safety: distinct objects may be used from different threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/hash.h"
#include "crypto/secret_key.h"

namespace tidings::engine {

// Fills `buf` with up to `cap` bytes of an attachment's plaintext; 0 at the
// end. An error stops the import.
using AttachmentSource = std::function<Result<size_t>(char* buf, size_t cap)>;
// Takes the next authenticated plaintext of an attachment.
using AttachmentSink = std::function<Status(std::string_view plain)>;
// Bytes done so far, of `total`.
using AttachmentProgress = std::function<void(uint64_t done, uint64_t total)>;

struct ImportedObject {
  std::string id;  // SHA-256 of the object, 32 bytes
  uint64_t plain_bytes = 0;
  uint64_t cipher_bytes = 0;
  crypto::Digest256 plain_hash{};  // keyed BLAKE2b-256 of the plaintext
};

// An object's file open for reading at offsets, by any number of threads
// at once (an upload's parts, read as they are sent). Copies share the open
// file, closed when the last goes.
class ObjectFile {
 public:
  uint64_t size() const { return size_; }
  // Up to `cap` bytes from `offset`, fewer only at the end of the file.
  // IOError if it cannot be read.
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t cap) const;

 private:
  friend class AttachmentFiles;
  std::shared_ptr<const int> fd_;
  uint64_t size_ = 0;
};

// A download's partial file, open for writing at offsets by any number of
// threads at once (ranges written as they arrive, each at its place) and
// for reading back. Copies share the open file, closed when the last goes.
// Nothing here checks the bytes: the caller does, in order, as it reads
// them back (sync/attachments/transfer.h).
class PartialFile {
 public:
  // Writes `bytes` at `offset`, extending the file as needed.
  Status WriteAt(uint64_t offset, std::string_view bytes) const;
  // Up to `cap` bytes from `offset`, fewer only at the end of the file.
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t cap) const;
  Result<uint64_t> Size() const;
  // Cuts the file to its first `size` bytes (the ones checked) and syncs
  // it, so a later resume starts from them.
  Status Truncate(uint64_t size) const;
  // Starts writing [offset, offset + length) to disk without waiting, so
  // the sync before the file becomes an object has less left to do.
  void StartWriteBack(uint64_t offset, uint64_t length) const;

 private:
  friend class AttachmentFiles;
  std::shared_ptr<const int> fd_;
  std::string path_;
};

class AttachmentFiles {
 public:
  explicit AttachmentFiles(std::string dir) : dir_(std::move(dir)) {}

  // Creates the directories (0700) and removes what an interrupted import
  // left in tmp/. Only the store's writer opens the files (the sweep would
  // remove another instance's import in flight).
  Status Open();

  // Encrypts what `source` gives under `content_key` into a new object;
  // `plain_hash_key` keys the plaintext's fingerprint. `cancel` stops it
  // (CANCELLED, nothing left behind).
  Result<ImportedObject> Import(const AttachmentSource& source,
                                const crypto::SecretKey& content_key,
                                const crypto::SecretKey& plain_hash_key,
                                const AttachmentProgress& progress = nullptr,
                                const std::atomic<bool>* cancel = nullptr);
  // The same from a file. Errors do not name it: NotFound, PermissionDenied,
  // InvalidArgument (not a regular file), IOError.
  Result<ImportedObject> ImportFile(const std::string& path, const crypto::SecretKey& content_key,
                                    const crypto::SecretKey& plain_hash_key,
                                    const AttachmentProgress& progress = nullptr,
                                    const std::atomic<bool>* cancel = nullptr);

  // Decrypts object `id` into `sink`, a chunk at a time, each only once it
  // is authenticated. DATA_LOSS if the object was changed or is cut short
  // (the sink may have had the chunks before the damage); NOT_FOUND if the
  // device does not hold it.
  Status Read(std::string_view id, const crypto::SecretKey& content_key, const AttachmentSink& sink,
              const AttachmentProgress& progress = nullptr,
              const std::atomic<bool>* cancel = nullptr) const;
  // Decrypts object `id` to the file `path` (0600), written beside it as an
  // unnamed file (O_TMPFILE; a named one where the file system has none)
  // and renamed into place only once the whole object opened: the app never
  // sees part of a damaged file under the name it asked for.
  Status Export(std::string_view id, const crypto::SecretKey& content_key, const std::string& path,
                const AttachmentProgress& progress = nullptr,
                const std::atomic<bool>* cancel = nullptr) const;
  // Checks object `id` whole: its SHA-256 is its name and every chunk opens.
  Status Check(std::string_view id, const crypto::SecretKey& content_key) const;

  // `length` bytes of object `id` from `offset` (an upload's part).
  Result<std::string> ReadRange(std::string_view id, uint64_t offset, uint64_t length) const;
  // Object `id`'s file, open for reading (an upload's parts read as they
  // are sent); NOT_FOUND if the device does not hold it.
  Result<ObjectFile> OpenObject(std::string_view id) const;

  // A download of object `id`: how many bytes are already here (to resume
  // from), then each next range appended in order, then Finish, which checks
  // the whole (SHA-256 against the id, every chunk under `content_key`)
  // before it becomes an object; a partial file that fails is removed.
  // Downloads of one object run one at a time (the caller's rule).
  Result<uint64_t> PartialBytes(std::string_view id) const;
  // The partial download of `id`, made (empty, 0600) if there is none, for
  // ranges written at their places as they arrive. Its bytes past those the
  // caller checked are not trusted: a download cut by a crash may have
  // written later ranges before earlier ones, so a resume checks what is
  // there and cuts the file where the check stops (PartialFile::Truncate).
  Result<PartialFile> OpenPartial(std::string_view id);
  Status AppendPartial(std::string_view id, std::string_view bytes);
  Status FinishPartial(std::string_view id, const crypto::SecretKey& content_key);
  // Finish for a caller that checked every byte of the partial file, in
  // order (its SHA-256 is `id`, every chunk opened, the last FINAL): the
  // partial file is synced and becomes the object if it is `bytes` long,
  // without being read again; else DATA_LOSS and it is removed.
  Status AdoptPartial(std::string_view id, uint64_t bytes);
  // The partial download's bytes so far, in pieces, to `each` (a resumed
  // download checks them again); and its removal (a download that failed a
  // check starts over).
  Status ScanPartial(std::string_view id,
                     const std::function<Status(std::string_view)>& each) const;
  Status DropPartial(std::string_view id);

  bool Has(std::string_view id) const;
  Result<uint64_t> Size(std::string_view id) const;  // bytes on disk
  // Removes object `id` (and any partial download of it); no error if absent.
  Status Remove(std::string_view id);

  std::string ObjectPath(std::string_view id) const;
  std::string PartialPath(std::string_view id) const;

 private:
  Status ReadFile(const std::string& path, const std::function<Status(std::string_view)>& each,
                  const std::atomic<bool>* cancel) const;
  // Reads the object file at `path` whole: every chunk opens under
  // `content_key` and its SHA-256 is `id` (else DATA_LOSS saying `mismatch`).
  Status CheckWhole(const std::string& path, std::string_view id,
                    const crypto::SecretKey& content_key, std::string_view mismatch) const;
  // Moves the partial download of `id` out of partial/, runs `check` on
  // it, and names it the object if that passes; removes it if not.
  Status ClaimPartial(std::string_view id,
                      const std::function<Status(const std::string& claimed)>& check);
  std::string dir_;
};

}  // namespace tidings::engine
