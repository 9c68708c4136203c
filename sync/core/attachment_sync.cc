// Attachments' transfers with their state in the store; see
// sync/core/attachment_sync.h.
#include "sync/core/attachment_sync.h"

#include <utility>

#include "sync/wire/bytes.h"

namespace tidings::sync {
namespace {

constexpr uint8_t kUploadStateVersion = 1;

}  // namespace

AttachmentSync::AttachmentSync(engine::SyncLog* store,
                               std::unique_ptr<attachments::ObjectStore> objects,
                               std::string location, attachments::TransferOptions options)
    : store_(store),
      objects_(std::move(objects)),
      location_(std::move(location)),
      options_(options) {}

// The transfers in flight stop between parts and ranges; the task threads,
// destroyed first (declared last), wait for them.
AttachmentSync::~AttachmentSync() { stopping_ = true; }

void AttachmentSync::Stop() {
  stopping_ = true;
  uploads_.Drain();
  fetches_.Drain();
  std::lock_guard<std::mutex> lock(jobs_mu_);
  waiting_.clear();  // nothing queued or running is left to wake for
  failed_.clear();   // answers for pushes of this run: the next run uploads again
}

void AttachmentSync::Resume() {
  stopping_ = false;
  uploads_.Reopen();
  fetches_.Reopen();
}

void AttachmentSync::AddUploadWaker(const void* owner, UploadWaker wake) {
  std::lock_guard<std::mutex> lock(wakers_mu_);
  wakers_[owner] = std::move(wake);
  waker_count_ = wakers_.size();
}

void AttachmentSync::RemoveUploadWaker(const void* owner) {
  std::lock_guard<std::mutex> lock(wakers_mu_);
  wakers_.erase(owner);
  waker_count_ = wakers_.size();
}

std::string AttachmentSync::EncodeUploadState(const attachments::UploadState& s) {
  std::string out;
  wire::ByteWriter w(&out);
  w.U8(kUploadStateVersion);
  w.Varint(s.part_bytes);
  w.Bytes(s.upload_id);
  w.U8(s.done ? 1 : 0);
  w.Varint(s.parts.size());
  for (const auto& p : s.parts) {
    w.Varint(static_cast<uint64_t>(p.number));
    w.Bytes(p.etag);
    w.Varint(p.bytes);
  }
  return out;
}

bool AttachmentSync::DecodeUploadState(std::string_view bytes, attachments::UploadState* s) {
  wire::ByteReader r(bytes, "saved upload state");
  uint8_t version = 0, done = 0;
  uint64_t n = 0;
  if (!r.U8("version", &version).ok() || version != kUploadStateVersion ||
      !r.Varint("part bytes", &s->part_bytes).ok() || !r.Bytes("upload id", &s->upload_id).ok() ||
      !r.U8("done", &done).ok() || !r.Varint("parts", &n).ok() || n > 10'000) {
    return false;
  }
  s->done = done != 0;
  s->parts.resize(n);
  for (auto& p : s->parts) {
    uint64_t number = 0;
    if (!r.Varint("part number", &number).ok() || number == 0 || number > 10'000 ||
        !r.Bytes("etag", &p.etag).ok() || !r.Varint("part size", &p.bytes).ok()) {
      return false;
    }
    p.number = static_cast<int>(number);
  }
  return r.done();
}

tidings::Result<AttachmentTransfers::Progress> AttachmentSync::UploadFor(engine::Operation* op) {
  // On this thread when no running engine waits for the upload thread.
  const bool here = waker_count_.load() == 0;
  std::unique_lock<std::mutex> uploading(upload_mu_, std::defer_lock);
  if (here) uploading.lock();
  bool under_way = false;
  for (auto& a : op->attachments) {
    auto t = store_->GetAttachmentTransfer(a.object);
    if (t.status().code() == Code::kNotFound) {
      // No message holds it any more: this one was deleted (or purged)
      // before its push. It goes without its files, its delete after it.
      auto m = store_->Get(op->message_id);
      if (m.ok() && !m->deleted) return t.status();
      op->attachments.clear();
      return Progress::kDone;
    }
    TIDINGS_RETURN_IF_ERROR(t.status());
    if (here) {
      TIDINGS_RETURN_IF_ERROR(Upload(a.object, *t));
    } else {
      TIDINGS_ASSIGN_OR_RETURN(const bool on_server, OnServer(*t));
      if (!on_server) {
        TIDINGS_RETURN_IF_ERROR(Queue(a.object, op->conversation_id));
        under_way = true;
        continue;
      }
    }
    a.location = location_;
  }
  return under_way ? Progress::kUnderWay : Progress::kDone;
}

tidings::Status AttachmentSync::Queue(const std::string& object,
                                      const std::string& conversation_id) {
  std::lock_guard<std::mutex> lock(jobs_mu_);
  if (auto f = failed_.find(object); f != failed_.end()) {
    tidings::Status ended = std::move(f->second);
    failed_.erase(f);
    return ended;
  }
  // Stopping: the engine's next start pushes everything, and queues it then.
  if (stopping_) return tidings::Status::Ok();
  auto [it, queued] = waiting_.try_emplace(object);
  it->second.insert(conversation_id);
  if (queued) uploads_.Post([this, object] { RunUpload(object); });
  return tidings::Status::Ok();
}

void AttachmentSync::RunUpload(const std::string& object) {
  tidings::Status ended = UploadNow(object);
  std::set<std::string> wake;
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    // Cancelled (a stop) is not an answer: the next call queues it again.
    if (!ended.ok() && ended.code() != Code::kCancelled) failed_[object] = ended;
    if (auto w = waiting_.find(object); w != waiting_.end()) {
      wake = std::move(w->second);
      waiting_.erase(w);
    }
  }
  std::lock_guard<std::mutex> lock(wakers_mu_);
  for (const auto& conversation_id : wake) {
    for (const auto& [owner, waker] : wakers_) waker(conversation_id);
  }
}

tidings::Status AttachmentSync::UploadNow(const std::string& object) {
  std::lock_guard<std::mutex> lock(upload_mu_);
  auto t = store_->GetAttachmentTransfer(object);
  // Its message went meanwhile: the next UploadFor sends it without.
  if (t.status().code() == Code::kNotFound) return tidings::Status::Ok();
  TIDINGS_RETURN_IF_ERROR(t.status());
  return Upload(object, *t);
}

tidings::Result<bool> AttachmentSync::OnServer(const engine::AttachmentTransfer& t) const {
  if (t.info.state == engine::AttachmentState::kSent && t.info.location == location_) return true;
  // Received from another device (or sent to another bucket before): it is
  // already where its reference says.
  if (t.info.state == engine::AttachmentState::kRemote ||
      t.info.state == engine::AttachmentState::kDownloading ||
      t.info.state == engine::AttachmentState::kEvicted ||
      (t.info.state == engine::AttachmentState::kAvailable && !t.info.location.empty())) {
    if (t.info.location == location_) return true;
    return FailedPrecondition(
        "an attachment forwarded from another message is stored in another bucket; fetch it "
        "and attach the file again");
  }
  return false;
}

tidings::Status AttachmentSync::Upload(const std::string& object,
                                       const engine::AttachmentTransfer& t) {
  TIDINGS_ASSIGN_OR_RETURN(const bool on_server, OnServer(t));
  if (on_server) return tidings::Status::Ok();
  TIDINGS_ASSIGN_OR_RETURN(engine::AttachmentFiles * files, store_->attachment_files());
  attachments::UploadState state;
  if (!t.upload_progress.empty() && !DecodeUploadState(t.upload_progress, &state)) {
    state = {};  // unreadable: start over (ListParts keeps nothing stale alive)
  }
  auto save = [&](const attachments::UploadState& s) {
    return store_->SaveUploadProgress(object, EncodeUploadState(s));
  };
  tidings::Status up = attachments::Upload(*files, object, t.content_key, t.info.object_size,
                                           attachments::ObjectKey(object), *objects_, &state, save,
                                           options_, nullptr, &stopping_);
  if (up.ok()) return store_->AttachmentUploaded(object, location_);
  // The server's NOT_FOUND (no such bucket, an upload a lifecycle rule
  // aborted) is the server's; only a missing local file is the device's.
  if (up.code() == Code::kDataLoss || (up.code() == Code::kNotFound && !files->Has(object))) {
    // The device's own copy is damaged or gone: no retry can send it.
    const tidings::Status failed = up.code() == Code::kNotFound
                                       ? FailedPrecondition(
                                             "the attachment's file is no longer on this device; "
                                             "send the file again")
                                       : up;
    TIDINGS_RETURN_IF_ERROR(store_->AttachmentUploadFailed(object, failed.message()));
    return failed;
  }
  return up;
}

void AttachmentSync::AfterMerge(std::span<const engine::Operation> ops) {
  if (stopping_) return;  // a fetch on demand gets them later
  // On the fetch thread while a running engine's rounds must go on.
  const bool here = waker_count_.load() == 0;
  for (const auto& op : ops) {
    for (const auto& a : op.attachments) {
      // The message's text is fetched whatever the policy.
      if (!a.body && (auto_fetch_max_bytes_ == 0 || a.size > auto_fetch_max_bytes_)) continue;
      if (here) {
        FetchMerged(a.object, op.message_id, a.body);
      } else {
        fetches_.Post([this, object = a.object, message_id = op.message_id, body = a.body] {
          FetchMerged(object, message_id, body);
        });
      }
    }
  }
}

void AttachmentSync::FetchMerged(const std::string& object, const std::string& message_id,
                                 bool body) {
  // A failed fetch leaves the attachment remote: the app's fetch tries
  // again, and the message itself is merged either way.
  if (Fetch(object, nullptr, &stopping_).ok() && body) {
    store_->SetBodyFromAttachment(message_id, object).IgnoreError();
  }
}

tidings::Status AttachmentSync::Fetch(std::string_view object_view,
                                      const engine::AttachmentProgress& progress,
                                      const std::atomic<bool>* cancel) {
  const std::string object(object_view);
  std::lock_guard<std::mutex> lock(download_mu_);
  TIDINGS_ASSIGN_OR_RETURN(engine::AttachmentTransfer t, store_->GetAttachmentTransfer(object));
  TIDINGS_ASSIGN_OR_RETURN(engine::AttachmentFiles * files, store_->attachment_files());
  // Held, by the record and on disk (a restored backup has records only).
  if (t.info.held() && files->Has(object)) return tidings::Status::Ok();
  if (!t.info.location.empty() && t.info.location != location_) {
    return FailedPrecondition("the attachment is stored in bucket " + t.info.location +
                              ", not in the one sync is set up with (" + location_ + ")");
  }
  TIDINGS_RETURN_IF_ERROR(attachments::Download(*files, object, t.content_key, t.info.object_size,
                                                attachments::ObjectKey(object), *objects_, options_,
                                                progress, cancel));
  tidings::Status recorded = store_->AttachmentDownloaded(object);
  // Its message was deleted while the bytes came: the file goes with it.
  if (recorded.code() == Code::kNotFound) files->Remove(object).IgnoreError();
  return recorded;
}

}  // namespace tidings::sync
