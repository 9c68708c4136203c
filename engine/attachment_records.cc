// Attachments' records: one per object (family "attachments"), counting the
// messages that refer to it, with its content key, where its upload or
// download stands, and the fingerprint that finds a file sent again. The
// files themselves are engine/attachment_files.h; docs/attachments.md.
#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "engine/store_impl.h"

namespace tidings::engine {
namespace {

std::string ObjectKey(std::string_view object) {
  std::string key(1, kObjectPrefix);
  key.append(object);
  return key;
}

std::string FingerprintKey(std::string_view fingerprint) {
  std::string key(1, kFingerprintPrefix);
  key.append(fingerprint);
  return key;
}

Status CheckObjectId(std::string_view object) {
  if (object.size() != 32) return InvalidArgument("an attachment object id is 32 bytes");
  return Status::Ok();
}

// A sender keeps its objects until uploaded: they are the only copy.
bool Unsent(AttachmentState s) {
  return s == AttachmentState::kQueued || s == AttachmentState::kUploading ||
         s == AttachmentState::kFailed;
}

// The record of an object first seen in `a`, unreferenced.
AttachmentRecord NewRecord(const Attachment& a, AttachmentState state, uint64_t now_ms) {
  AttachmentRecord r;
  r.info.object = a.object;
  r.info.size = a.size;
  r.info.object_size = a.object_size;
  r.info.state = state;
  r.info.location = a.location;
  r.info.last_used_ms = now_ms;
  r.content_key = a.content_key;
  return r;
}

bool Downloaded(AttachmentState s) {
  return s == AttachmentState::kAvailable || s == AttachmentState::kSent;
}

}  // namespace

const char* AttachmentStateName(AttachmentState s) {
  switch (s) {
    case AttachmentState::kQueued:
      return "queued";
    case AttachmentState::kUploading:
      return "uploading";
    case AttachmentState::kSent:
      return "sent";
    case AttachmentState::kFailed:
      return "failed";
    case AttachmentState::kRemote:
      return "remote";
    case AttachmentState::kDownloading:
      return "downloading";
    case AttachmentState::kAvailable:
      return "available";
    case AttachmentState::kEvicted:
      return "evicted";
  }
  return "unknown";
}

// A remote or evicted object with a partial download on the device is
// downloading: the file says so, not a record written per range.
void StoreImpl::ShowDownloading(AttachmentObject* a) const {
  if (a->state != AttachmentState::kRemote && a->state != AttachmentState::kEvicted) return;
  auto partial = attachment_files_.PartialBytes(a->object);
  if (partial.ok() && *partial > 0) a->state = AttachmentState::kDownloading;
}

Status StoreImpl::OpenAttachments() {
  TIDINGS_ASSIGN_OR_RETURN(
      fingerprint_key_, crypto::DeriveSubkey(hash_key_, crypto::Purpose::kAttachmentFingerprint));
  std::error_code ec;
  if (!std::filesystem::exists(path_ + "/attachments", ec)) return Status::Ok();
  TIDINGS_RETURN_IF_ERROR(EnsureAttachmentFiles());
  // Files no record names: removed (see the declaration). Only a writer
  // gets here, before any send of this process imports.
  for (const char* sub : {"/objects", "/partial"}) {
    const std::string dir = path_ + "/attachments" + sub;
    std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
    if (!d) continue;
    std::vector<std::string> orphans;
    while (dirent* e = readdir(d.get())) {
      std::string_view name = e->d_name;
      std::string id;
      // Not an object's name: not ours to remove.
      if (name.size() != 64 || !crypto::HexDecode(name, &id)) continue;
      Txn txn;
      TIDINGS_ASSIGN_OR_RETURN(auto rec, LoadAttachment(txn, id));
      if (!rec.has_value()) orphans.push_back(std::move(id));
    }
    for (const auto& id : orphans) TIDINGS_RETURN_IF_ERROR(attachment_files_.Remove(id));
  }
  return Status::Ok();
}

Status StoreImpl::EnsureAttachmentFiles() {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(attachment_files_mu_);
  if (attachment_files_open_) return Status::Ok();
  TIDINGS_RETURN_IF_ERROR(attachment_files_.Open());
  attachment_files_open_ = true;
  return Status::Ok();
}

Result<AttachmentFiles*> StoreImpl::attachment_files() {
  TIDINGS_RETURN_IF_ERROR(EnsureAttachmentFiles());
  return &attachment_files_;
}

Result<std::optional<AttachmentRecord>> StoreImpl::LoadAttachment(Txn& txn,
                                                                  std::string_view object) {
  if (cfs_[kAttachments] == nullptr) return std::optional<AttachmentRecord>();
  TIDINGS_ASSIGN_OR_RETURN(auto value, TxnRead(txn, kAttachments, ObjectKey(object)));
  if (!value.has_value()) return std::optional<AttachmentRecord>();
  AttachmentRecord r;
  if (!DecodeAttachment(*value, &r) || r.info.object != object) {
    return DataLoss("an attachment record is corrupt; run `tidings verify`");
  }
  return std::optional<AttachmentRecord>(std::move(r));
}

void StoreImpl::StoreAttachment(Txn& txn, const AttachmentRecord& r) {
  TxnPut(txn, kAttachments, ObjectKey(r.info.object), EncodeAttachment(r));
}

Result<std::vector<Attachment>> StoreImpl::ImportAttachments(
    const std::vector<AttachmentInput>& inputs, std::vector<std::string>* fingerprints) {
  TIDINGS_RETURN_IF_ERROR(EnsureAttachmentFiles());
  std::vector<Attachment> out;
  auto drop = [&] {
    for (const auto& a : out) attachment_files_.Remove(a.object).IgnoreError();
  };
  for (const auto& in : inputs) {
    TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey key, crypto::SecretKey::Random());
    Result<ImportedObject> imported =
        in.path.empty()
            ? attachment_files_.Import(in.read, key, fingerprint_key_, in.progress, in.cancel)
            : attachment_files_.ImportFile(in.path, key, fingerprint_key_, in.progress, in.cancel);
    if (!imported.ok()) {
      drop();
      return imported.status();
    }
    Attachment a;
    a.name = in.name;
    a.content_type = in.content_type.empty() ? "application/octet-stream" : in.content_type;
    a.size = imported->plain_bytes;
    a.object = imported->id;
    a.object_size = imported->cipher_bytes;
    a.content_key.assign(reinterpret_cast<const char*>(key.data()), key.size());
    a.preview = in.preview;
    out.push_back(std::move(a));
    fingerprints->emplace_back(reinterpret_cast<const char*>(imported->plain_hash.data()),
                               imported->plain_hash.size());
  }
  return out;
}

Status StoreImpl::DedupeAttachments(Txn& txn, std::vector<Attachment>* list,
                                    const std::vector<std::string>& fingerprints) {
  for (size_t i = 0; i < list->size(); ++i) {
    Attachment& a = (*list)[i];
    const std::string fkey = FingerprintKey(fingerprints[i]);
    TIDINGS_ASSIGN_OR_RETURN(auto seen, TxnRead(txn, kAttachments, fkey));
    if (seen.has_value()) {
      TIDINGS_ASSIGN_OR_RETURN(auto earlier, LoadAttachment(txn, *seen));
      if (earlier.has_value() && earlier->info.held() && earlier->info.size == a.size) {
        txn.freed_objects.push_back(a.object);  // the copy just made
        a.object = earlier->info.object;
        a.object_size = earlier->info.object_size;
        a.content_key = earlier->content_key;
        continue;
      }
    }
    // A new object: its record starts here, unreferenced until the send
    // counts it (RefAttachments), and the fingerprint names it from now on.
    AttachmentRecord r = NewRecord(a, AttachmentState::kQueued, clock_.WallMs());
    r.fingerprint = fingerprints[i];
    StoreAttachment(txn, r);
    TxnPut(txn, kAttachments, fkey, a.object);
  }
  return Status::Ok();
}

Status StoreImpl::RefAttachments(Txn& txn, const std::vector<Attachment>& list, bool remote) {
  for (const auto& a : list) {
    TIDINGS_ASSIGN_OR_RETURN(auto existing, LoadAttachment(txn, a.object));
    AttachmentRecord r;
    if (existing.has_value()) {
      r = std::move(*existing);
    } else {
      const AttachmentState state = !remote                           ? AttachmentState::kQueued
                                    : attachment_files_.Has(a.object) ? AttachmentState::kAvailable
                                                                      : AttachmentState::kRemote;
      r = NewRecord(a, state, clock_.WallMs());
    }
    if (r.info.location.empty()) r.info.location = a.location;
    ++r.info.references;
    StoreAttachment(txn, r);
  }
  return Status::Ok();
}

Status StoreImpl::ReleaseAttachments(Txn& txn, const std::vector<Attachment>& list, uint64_t each) {
  for (const auto& a : list) {
    TIDINGS_ASSIGN_OR_RETURN(auto existing, LoadAttachment(txn, a.object));
    if (!existing.has_value()) continue;  // counted nowhere: nothing to free
    AttachmentRecord& r = *existing;
    if (r.info.references > each) {
      r.info.references -= each;
      StoreAttachment(txn, r);
      continue;
    }
    TxnDelete(txn, kAttachments, ObjectKey(a.object));
    if (!r.fingerprint.empty()) {
      // Unless the same file became another object since (this one evicted).
      const std::string fkey = FingerprintKey(r.fingerprint);
      TIDINGS_ASSIGN_OR_RETURN(auto named, TxnRead(txn, kAttachments, fkey));
      if (named.has_value() && *named == a.object) TxnDelete(txn, kAttachments, fkey);
    }
    txn.freed_objects.push_back(a.object);
  }
  return Status::Ok();
}

void StoreImpl::RemoveFreedObjects(const Txn& txn) {
  // A failure here leaves a file no record names: the next writable open
  // removes it (OpenAttachments).
  for (const auto& id : txn.freed_objects) attachment_files_.Remove(id).IgnoreError();
}

Result<std::vector<AttachmentObject>> StoreImpl::Attachments() {
  std::vector<AttachmentObject> out;
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  if (cfs_[kAttachments] == nullptr) return out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cfs_[kAttachments]));
  const std::string prefix(1, kObjectPrefix);
  std::string ad;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    AdInto(&ad, kAttachments, std::string_view(it->key().data(), it->key().size()));
    auto plain = sealer_->Open(ad, std::string_view(it->value().data(), it->value().size()));
    AttachmentRecord r;
    if (!plain.ok() || !DecodeAttachment(*plain, &r)) {
      return DataLoss("an attachment record is corrupt; run `tidings verify`");
    }
    ShowDownloading(&r.info);
    out.push_back(std::move(r.info));
  }
  TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
  return out;
}

Result<AttachmentObject> StoreImpl::GetAttachment(std::string_view object) {
  TIDINGS_RETURN_IF_ERROR(CheckObjectId(object));
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(auto r, LoadAttachment(txn, object));
  if (!r.has_value()) return NotFound("no message in this store holds that attachment");
  ShowDownloading(&r->info);
  return std::move(r->info);
}

Result<AttachmentTransfer> StoreImpl::GetAttachmentTransfer(std::string_view object) {
  TIDINGS_RETURN_IF_ERROR(CheckObjectId(object));
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(auto r, LoadAttachment(txn, object));
  if (!r.has_value()) return NotFound("no message in this store holds that attachment");
  TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey key, crypto::SecretKey::FromBytes(r->content_key));
  crypto::Wipe(&r->content_key);
  return AttachmentTransfer{std::move(r->info), std::move(key), std::move(r->upload_progress)};
}

Status StoreImpl::ExportAttachment(std::string_view object, const std::string& path,
                                   const AttachmentProgress& progress,
                                   const std::atomic<bool>* cancel) {
  TIDINGS_ASSIGN_OR_RETURN(AttachmentTransfer t, GetAttachmentTransfer(object));
  if (!t.info.held()) {
    return FailedPrecondition("this device does not hold the attachment (it is " +
                              std::string(AttachmentStateName(t.info.state)) + "): fetch it first");
  }
  return attachment_files_.Export(object, t.content_key, path, progress, cancel);
}

Status StoreImpl::UpdateAttachment(std::string_view object,
                                   const std::function<Status(AttachmentRecord&)>& change) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  TIDINGS_RETURN_IF_ERROR(CheckObjectId(object));
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(auto r, LoadAttachment(txn, object));
  if (!r.has_value()) return NotFound("no message in this store holds that attachment");
  TIDINGS_RETURN_IF_ERROR(change(*r));
  StoreAttachment(txn, *r);
  return Commit(txn, lock);
}

Status StoreImpl::EvictAttachment(std::string_view object) {
  TIDINGS_RETURN_IF_ERROR(UpdateAttachment(object, [](AttachmentRecord& r) {
    if (Unsent(r.info.state)) {
      return FailedPrecondition(
          "the attachment is this device's only copy until its upload is done; it is kept");
    }
    r.info.state = AttachmentState::kEvicted;
    return Status::Ok();
  }));
  // The record says evicted before the file goes: a crash between leaves a
  // file the record does not count, which a fetch simply replaces.
  return attachment_files_.Remove(object);
}

Status StoreImpl::SaveUploadProgress(std::string_view object, std::string_view progress) {
  return UpdateAttachment(object, [&](AttachmentRecord& r) {
    r.upload_progress.assign(progress);
    r.info.state = AttachmentState::kUploading;
    r.info.failure_reason.clear();
    return Status::Ok();
  });
}

Status StoreImpl::AttachmentUploaded(std::string_view object, std::string_view location) {
  return UpdateAttachment(object, [&](AttachmentRecord& r) {
    r.upload_progress.clear();
    r.info.state = AttachmentState::kSent;
    r.info.failure_reason.clear();
    r.info.location.assign(location);
    return Status::Ok();
  });
}

Status StoreImpl::AttachmentUploadFailed(std::string_view object, std::string_view reason) {
  return UpdateAttachment(object, [&](AttachmentRecord& r) {
    r.info.state = AttachmentState::kFailed;
    r.info.failure_reason.assign(reason);
    return Status::Ok();
  });
}

Status StoreImpl::AttachmentDownloaded(std::string_view object) {
  TIDINGS_RETURN_IF_ERROR(UpdateAttachment(object, [&](AttachmentRecord& r) {
    if (!Unsent(r.info.state)) r.info.state = AttachmentState::kAvailable;
    r.info.last_used_ms = clock_.WallMs();
    return Status::Ok();
  }));
  return EnforceAttachmentQuota(object);
}

Status StoreImpl::SetBodyFromAttachment(const std::string& message_id, std::string_view object) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  TIDINGS_ASSIGN_OR_RETURN(AttachmentTransfer t, GetAttachmentTransfer(object));
  // Read before the write lock: the file is the device's, checked chunk by
  // chunk; at most a body's worth is kept.
  std::string text;
  TIDINGS_RETURN_IF_ERROR(
      attachment_files_.Read(object, t.content_key, [&](std::string_view plain) {
        if (text.size() + plain.size() > kMaxBodyBytes) {
          return TooLarge("a message's text that travelled as a file is over 64 KiB");
        }
        text.append(plain);
        return Status::Ok();
      }));
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  std::string key;
  TIDINGS_ASSIGN_OR_RETURN(auto rec, LoadMessage(txn, message_id, &key));
  if (!rec.has_value()) return Status::Ok();
  MessageRecord& r = *rec;
  const bool holds = std::any_of(r.m.attachments.begin(), r.m.attachments.end(),
                                 [&](const Attachment& a) { return a.body && a.object == object; });
  if (!holds || r.m.deleted || !r.m.body.empty() || !r.m.edited_at.IsZero()) return Status::Ok();
  std::optional<MessageRecord> before;
  if (Indexed(r)) before = r;  // as an edit: the old postings leave the index
  r.m.body = std::move(text);
  StoreMessage(txn, key, r);
  if (before.has_value()) IndexMessage(txn, key, *before, /*add=*/false);
  IndexMessage(txn, key, r, /*add=*/true);
  txn.events.push_back({ChangeEvent::Kind::kMessageChanged, r.m.conversation_id, r.m.id});
  return Commit(txn, lock);
}

Result<OutboxEntry> StoreImpl::CarryBodyAsAttachment(uint64_t seq) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  auto can_carry = [](const OutboxEntry& e) {
    const bool has_body_file = std::any_of(e.op.attachments.begin(), e.op.attachments.end(),
                                           [](const Attachment& a) { return a.body; });
    return e.op.kind == OpKind::kSend && !e.op.body.empty() && !has_body_file &&
           e.acked_by.empty() && e.op.attachments.size() < kMaxAttachments;
  };
  auto refused = [] {
    return FailedPrecondition(
        "only a send with text that no backend took yet can carry its text as a file");
  };
  TIDINGS_ASSIGN_OR_RETURN(OutboxEntry entry, GetOutboxEntry(seq));
  if (!can_carry(entry)) return refused();
  // Encrypted into an object before the write lock, as a send's files are.
  const std::string& body = entry.op.body;
  size_t at = 0;
  std::vector<AttachmentInput> inputs = {
      {.read = [&body, &at](char* buf, size_t cap) -> Result<size_t> {
         const size_t n = std::min(cap, body.size() - at);
         std::memcpy(buf, body.data() + at, n);
         at += n;
         return n;
       },
       .name = "message.txt",
       .content_type = entry.op.content_type.empty() ? "text/plain" : entry.op.content_type}};
  std::vector<std::string> fingerprints;
  TIDINGS_ASSIGN_OR_RETURN(std::vector<Attachment> list, ImportAttachments(inputs, &fingerprints));
  list[0].body = true;
  const std::string imported = list[0].object;
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  OutboxEntry out;
  Status s = [&]() -> Status {
    TIDINGS_ASSIGN_OR_RETURN(auto rec, LoadOutbox(txn, seq));
    if (!rec.has_value()) return NotFound("no outbox entry " + std::to_string(seq));
    rec->e.seq = seq;
    if (rec->body_by_ref) rec->e.op.body = body;  // as read above, under the same id
    if (!can_carry(rec->e)) return refused();     // changed meanwhile
    std::string key;
    TIDINGS_ASSIGN_OR_RETURN(auto message, LoadMessage(txn, rec->e.op.message_id, &key));
    if (!message.has_value() || message->m.deleted) return refused();
    TIDINGS_RETURN_IF_ERROR(DedupeAttachments(txn, &list, fingerprints));
    TIDINGS_RETURN_IF_ERROR(RefAttachments(txn, list, /*remote=*/false));
    message->m.attachments.push_back(list[0]);
    StoreMessage(txn, key, *message);
    rec->e.op.body.clear();
    rec->body_by_ref = false;
    rec->e.op.attachments.push_back(list[0]);
    PutOutbox(txn, *rec);
    txn.events.push_back(
        {ChangeEvent::Kind::kMessageChanged, message->m.conversation_id, message->m.id});
    out = rec->e;
    return Status::Ok();
  }();
  if (!s.ok()) {
    lock.unlock();
    attachment_files_.Remove(imported).IgnoreError();
    return s;
  }
  TIDINGS_RETURN_IF_ERROR(Commit(txn, lock));
  return out;
}

Status StoreImpl::EnforceAttachmentQuota(std::string_view keep) {
  const uint64_t quota = options_.attachment_quota_bytes;
  if (quota == 0) return Status::Ok();
  TIDINGS_ASSIGN_OR_RETURN(std::vector<AttachmentObject> all, Attachments());
  uint64_t held = 0;
  std::vector<const AttachmentObject*> evictable;
  for (const auto& a : all) {
    if (!Downloaded(a.state)) continue;
    held += a.object_size;
    if (a.object != keep) evictable.push_back(&a);
  }
  std::sort(evictable.begin(), evictable.end(),
            [](const auto* x, const auto* y) { return x->last_used_ms < y->last_used_ms; });
  // Best effort: an object that cannot go now (its message deleted since the
  // listing, a file that will not unlink) is skipped, and the download that
  // asked stays a success.
  for (const AttachmentObject* a : evictable) {
    if (held <= quota) break;
    if (EvictAttachment(a->object).ok()) held -= a->object_size;
  }
  return Status::Ok();
}

}  // namespace tidings::engine
