// Moving an attachment's object (docs/attachments.md) between the device's
// files and an object store (S3): a multipart upload that a crash does not
// start over, and a download in ranges that is checked as it comes.
//
// The transfer does no bookkeeping of its own: the caller persists an
// upload's state (UploadState) each time `save` is called, before the next
// step, and hands it back after a restart; a download's state is the
// partial file itself (AttachmentFiles::PartialBytes).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crypto/secret_key.h"
#include "engine/attachment_files.h"

namespace tidings::attachments {

struct UploadedPart {
  int number = 0;  // 1-based
  std::string etag;
  uint64_t bytes = 0;
};

// Fills `buf` with up to `cap` bytes of a part from `offset` (within the
// part) and returns how many, at least 1 before the part's end. May be
// called again from offset 0 (a retry). The same as http::BodyReader.
using PartReader = std::function<Result<size_t>(uint64_t offset, char* buf, size_t cap)>;

// Takes a range's bytes as they arrive: `bytes` at `offset` within the
// range, in order, from offset 0 again if the range is fetched again (a
// retry). An error stops the fetch with that error.
using RangeWriter = std::function<Status(uint64_t offset, std::string_view bytes)>;

// What a transfer needs of an object store. S3 (sync/s3) in production; unit
// tests use an in-process fake.
//
// Thread safety: every method may be called from several threads at once (a
// transfer keeps TransferOptions::parallel parts or ranges in flight).
class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  virtual Status PutObject(const std::string& key, std::string body) = 0;
  // The object's size; NOT_FOUND if there is none.
  virtual Result<uint64_t> HeadObject(const std::string& key) = 0;
  // Exactly `length` bytes from `offset` (the caller asks within the size).
  virtual Result<std::string> GetRange(const std::string& key, uint64_t offset,
                                       uint64_t length) = 0;
  // The same with the bytes handed to `write` as they arrive, on the
  // calling thread, instead of held, so bytes in flight cost no memory. The
  // range may end short (the caller checks it got `length` bytes). This
  // default reads the range whole with GetRange and hands it on at once.
  virtual Status GetRangeTo(const std::string& key, uint64_t offset, uint64_t length,
                            const RangeWriter& write);
  virtual Result<std::string> CreateMultipartUpload(const std::string& key) = 0;
  virtual Result<std::string> UploadPart(const std::string& key, const std::string& upload_id,
                                         int number, std::string body) = 0;  // the ETag
  // The same with the part (`size` bytes) read from `read` as it is sent,
  // so bytes in flight cost no memory; `read` is called on the calling
  // thread only. This default reads the part whole and calls the above.
  virtual Result<std::string> UploadPartFrom(const std::string& key, const std::string& upload_id,
                                             int number, uint64_t size, const PartReader& read);
  // The parts the store holds, ascending; NOT_FOUND if the upload is gone
  // (completed, aborted or expired).
  virtual Result<std::vector<UploadedPart>> ListParts(const std::string& key,
                                                      const std::string& upload_id) = 0;
  virtual Status CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                         const std::vector<UploadedPart>& parts) = 0;
  virtual Status AbortMultipartUpload(const std::string& key, const std::string& upload_id) = 0;
  // The ids of the multipart uploads of `key` begun and neither completed
  // nor aborted.
  virtual Result<std::vector<std::string>> ListUploads(const std::string& key) = 0;
};

// An upload as the caller persists it.
struct UploadState {
  uint64_t part_bytes = 0;  // fixed when the upload starts
  std::string upload_id;    // empty until a multipart upload is created
  // Done, ascending, contiguous from 1: parts sent side by side that finish
  // out of order join the list only once every part before them has (the
  // store's ListParts finds the others after a crash).
  std::vector<UploadedPart> parts;
  bool done = false;
};

struct TransferOptions {
  // Parts of a multipart upload. S3 wants parts of 5 MiB or more (the last
  // may be smaller) and at most 10,000 of them.
  uint64_t part_bytes = 6 << 20;
  // Smaller objects go in one PutObject (read whole into memory).
  uint64_t multipart_from_bytes = 12 << 20;
  // Parts in flight at once, each on a thread of its own (and, through
  // S3ObjectStore, a connection of its own). An upload's parts are read
  // from the object's file as they are sent: bytes in flight cost no
  // memory, and upload time follows them (docs/attachments.md, "Transfer").
  int parallel = 16;
  // Ranges of a download. Each is written to the partial file as it
  // arrives, so neither their size nor their number costs memory; larger
  // ranges cost fewer requests (moto copies the whole object for every
  // range it serves: docs/attachments.md, "Transfer").
  uint64_t range_bytes = 32 << 20;
  // Ranges a download keeps in flight: min(parallel, download_parallel).
  int download_parallel = 8;
};

// The key of object `id` in the bucket: no conversation, user or file name.
std::string ObjectKey(std::string_view id);

using SaveUpload = std::function<Status(const UploadState&)>;
using TransferProgress = engine::AttachmentProgress;

// Uploads object `id` of `files` (`cipher_bytes` long) to `key`, from
// `*state` on: a multipart upload resumes with the parts the store says it
// holds (a part uploaded just before a crash is not sent again); an upload
// the store no longer knows starts over. A new multipart upload first
// aborts the store's other uploads of `key`: a crash between creating one
// and saving its id left it, and nothing else uploads this object (its key
// is its hash, and only this device has its bytes). `save` is called with the new
// state after each step and must make it durable before it returns.
//
// The parts are read and hashed in order on the calling thread and sent by
// `options.parallel` threads; `save` and `progress` (bytes sent, never
// decreasing) are called on the calling thread, in part order. The first
// error stops the upload: no part starts after it, the parts in flight
// finish, and the error returned is the earliest part's (the one an upload
// of one part at a time would have met). `cancel` is seen before each part
// is read and by each read of a part in flight (parts stream from the file
// as they are sent): the transfer stops as on an error, with CANCELLED. The
// multipart upload is left open for the next attempt, except when the file
// is not the object (DATA_LOSS): then it is aborted.
Status Upload(const engine::AttachmentFiles& files, std::string_view id,
              const crypto::SecretKey& content_key, uint64_t cipher_bytes, const std::string& key,
              ObjectStore& store, UploadState* state, const SaveUpload& save,
              const TransferOptions& options = {}, const TransferProgress& progress = nullptr,
              const std::atomic<bool>* cancel = nullptr);

// Downloads object `id` (`cipher_bytes` long, under `content_key`) from
// `key` into `files`, resuming a partial download. Each range is checked as
// it comes: DATA_LOSS as soon as a chunk fails (the partial file is removed
// and the next attempt starts over), or if the object's size or SHA-256 is
// not what the reference says.
//
// min(`options.parallel`, `options.download_parallel`) ranges are fetched
// side by side, each written to its place in the partial file as it
// arrives; each is read back and checked on the calling thread, in order,
// where `progress` is called. Errors and `cancel` (seen by the ranges in
// flight at each piece they hand on) stop it as they stop an upload; the
// partial file is then cut to the ranges before the first that
// failed (a crash can leave later bytes in it: a resume keeps the whole
// chunks from the start that open, and fetches the rest).
Status Download(engine::AttachmentFiles& files, std::string_view id,
                const crypto::SecretKey& content_key, uint64_t cipher_bytes, const std::string& key,
                ObjectStore& store, const TransferOptions& options = {},
                const TransferProgress& progress = nullptr,
                const std::atomic<bool>* cancel = nullptr);

}  // namespace tidings::attachments
