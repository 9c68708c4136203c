// AttachmentSync: moves a store's attachment objects (engine/attachments.h)
// to and from an object store (S3), keeping their state in the store, so
// that a send is pushed only once its files are uploaded and a received
// attachment is downloaded on demand. docs/attachments.md.
//
// The reconciler calls UploadFor before it pushes a send with attachments
// (Reconciler::set_attachment_transfers); the app's fetch calls Fetch. An
// upload resumes from the state the store keeps (the multipart upload id
// and its parts), a download from its partial file.
//
// Thread safety: any thread. An upload and a download run side by side (an
// app's fetch does not wait for sync's upload of another file); uploads
// take turns, and so do downloads: a finished download's quota pass may
// evict another downloaded object, which must not be mid-fetch then.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "engine/sync_log.h"
#include "sync/attachments/transfer.h"
#include "sync/core/reconciler.h"

namespace tidings::sync {

class AttachmentSync : public AttachmentTransfers {
 public:
  // `objects` is the bucket `location` names; both outlive nothing but this.
  AttachmentSync(engine::SyncLog* store, std::unique_ptr<attachments::ObjectStore> objects,
                 std::string location, attachments::TransferOptions options = {});

  // Received attachments of at most this many bytes are fetched as soon as
  // their message is merged; larger ones (and all when 0, the default) on
  // demand. Set before sync starts.
  void set_auto_fetch_max_bytes(uint64_t bytes) { auto_fetch_max_bytes_ = bytes; }
  // Fetches the small attachments of merged sends (see above), and the text
  // of a message that travelled as an attachment (Attachment::body), which
  // becomes its body.
  void AfterMerge(std::span<const engine::Operation> ops) override;

  // Every attachment of send `op` is on the object store, its location set
  // in `op` (and the object's record sent). Unavailable and the like:
  // retry later (the upload resumes). DataLoss when the device's object is
  // damaged and FailedPrecondition when it is gone: the object's record
  // says failed, and the send cannot be pushed.
  tidings::Status UploadFor(engine::Operation* op) override;

  // Downloads object `object` (32 bytes) into the store, resuming a partial
  // download, unless the device holds it. `progress` gets bytes of the
  // object; `cancel` stops it (Cancelled; the partial file stays for the
  // next fetch). DataLoss if the server's bytes are not the object the
  // message names (nothing is kept).
  tidings::Status Fetch(std::string_view object,
                        const engine::AttachmentProgress& progress = nullptr,
                        const std::atomic<bool>* cancel = nullptr);

  const std::string& location() const { return location_; }

  // Stops the uploads and automatic fetches running for sync (they return
  // Cancelled and resume later), and refuses new ones until Resume: what a
  // stopping sync handle calls, so no upload outlasts the stop. Fetches the
  // app asked for take their own cancel flag.
  void Stop() { stopping_ = true; }
  void Resume() { stopping_ = false; }

  // The saved state of an upload, as the store keeps it (opaque there).
  static std::string EncodeUploadState(const attachments::UploadState& state);
  static bool DecodeUploadState(std::string_view bytes, attachments::UploadState* state);

 private:
  tidings::Status Upload(const std::string& object,
                         const engine::AttachmentTransfer& t);  // REQUIRES: upload_mu_

  engine::SyncLog* store_;
  std::unique_ptr<attachments::ObjectStore> objects_;
  std::string location_;
  attachments::TransferOptions options_;
  uint64_t auto_fetch_max_bytes_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex upload_mu_;    // one upload at a time (its saved state)
  std::mutex download_mu_;  // one download at a time (its partial file, the quota)
};

}  // namespace tidings::sync
