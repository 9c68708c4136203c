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
// While a running SyncEngine is registered (AddUploadWaker), transfers run
// on this class's own threads, so that a large file on a slow link does not
// hold up the rounds that deliver messages: UploadFor queues an upload and
// returns kUnderWay at once, and the engine is woken for the conversation
// when it ends; AfterMerge queues its fetches. Without one (SyncOnce, the
// CLI's rounds) both run on their caller's thread.
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
#include <set>
#include <string>
#include <string_view>

#include "engine/sync_log.h"
#include "sync/attachments/transfer.h"
#include "sync/core/reconciler.h"
#include "sync/core/task_thread.h"

namespace tidings::sync {

class AttachmentSync : public AttachmentTransfers {
 public:
  // `objects` is the bucket `location` names; both outlive nothing but this.
  AttachmentSync(engine::SyncLog* store, std::unique_ptr<attachments::ObjectStore> objects,
                 std::string location, attachments::TransferOptions options = {});
  ~AttachmentSync() override;  // stops the transfers in flight and joins the threads
  AttachmentSync(const AttachmentSync&) = delete;
  AttachmentSync& operator=(const AttachmentSync&) = delete;

  // Received attachments of at most this many bytes are fetched as soon as
  // their message is merged; larger ones (and all when 0, the default) on
  // demand. Set before sync starts.
  void set_auto_fetch_max_bytes(uint64_t bytes) { auto_fetch_max_bytes_ = bytes; }
  // Fetches the small attachments of merged sends (see above), and the text
  // of a message that travelled as an attachment (Attachment::body), which
  // becomes its body; on the fetch thread while an engine runs.
  void AfterMerge(std::span<const engine::Operation> ops) override;

  // kDone: every attachment of send `op` is on the object store, its
  // location set in `op` (and the object's record sent). kUnderWay: being
  // uploaded on the upload thread (see above); the error it ends with, if
  // any, is the answer of the next call. Unavailable and the like: retry
  // later (the upload resumes). DataLoss when the device's object is
  // damaged and FailedPrecondition when it is gone: the object's record
  // says failed, and the send cannot be pushed.
  tidings::Result<Progress> UploadFor(engine::Operation* op) override;
  void AddUploadWaker(const void* owner, UploadWaker wake) override;
  void RemoveUploadWaker(const void* owner) override;

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
  // Cancelled and resume later), drops the transfers queued for this
  // class's threads, refuses new ones, and waits for theirs to stop (between
  // parts): what a stopping sync handle calls, so no upload outlasts the
  // stop. Fetches the app asked for take their own cancel flag. Resume lets
  // transfers start again.
  void Stop();
  void Resume();

  // The saved state of an upload, as the store keeps it (opaque there).
  static std::string EncodeUploadState(const attachments::UploadState& state);
  static bool DecodeUploadState(std::string_view bytes, attachments::UploadState* state);

 private:
  // Whether `t`'s object is where a pushed reference needs it (true) or
  // must be uploaded (false); FailedPrecondition when it cannot be.
  tidings::Result<bool> OnServer(const engine::AttachmentTransfer& t) const;
  tidings::Status Upload(const std::string& object,
                         const engine::AttachmentTransfer& t);  // REQUIRES: upload_mu_
  // Reads the object's record and uploads it: the upload thread's job.
  tidings::Status UploadNow(const std::string& object);
  // Queues `object` for the upload thread, to wake `conversation_id` when
  // it ends; the error an earlier upload of it ended with instead, if there
  // is one (taken).
  tidings::Status Queue(const std::string& object, const std::string& conversation_id);
  // The upload thread's task: uploads, records a failure, wakes.
  void RunUpload(const std::string& object);
  // Fetches a merged send's object, and makes it the message's body if it
  // carries the text.
  void FetchMerged(const std::string& object, const std::string& message_id, bool body);

  engine::SyncLog* store_;
  std::unique_ptr<attachments::ObjectStore> objects_;
  std::string location_;
  attachments::TransferOptions options_;
  uint64_t auto_fetch_max_bytes_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex upload_mu_;    // one upload at a time (its saved state)
  std::mutex download_mu_;  // one download at a time (its partial file, the quota)

  // Lock order: jobs_mu_ is never held while taking wakers_mu_ (the wakers
  // take their engine's locks).
  std::mutex jobs_mu_;
  // Queued or uploading object -> the conversations to wake when it ends.
  std::map<std::string, std::set<std::string>> waiting_;  // REQUIRES: jobs_mu_
  // Object -> the error its upload ended with, until UploadFor takes it.
  std::map<std::string, tidings::Status> failed_;  // REQUIRES: jobs_mu_
  std::mutex wakers_mu_;                           // held while a waker runs
  std::map<const void*, UploadWaker> wakers_;      // REQUIRES: wakers_mu_
  std::atomic<size_t> waker_count_{0};
  // Last: destroyed first, while what their tasks use is still there.
  TaskThread uploads_;  // uploads while an engine runs, one at a time
  TaskThread fetches_;  // automatic fetches while an engine runs
};

}  // namespace tidings::sync
