#include "sync/attachments/transfer.h"

#include <algorithm>

#include "crypto/attachment_cipher.h"
#include "crypto/hash.h"

namespace tidings::attachments {
namespace {

bool Stopped(const std::atomic<bool>* cancel) {
  return cancel != nullptr && cancel->load(std::memory_order_relaxed);
}

constexpr uint64_t kMinPartBytes = 5 << 20;  // S3's, for every part but the last
constexpr uint64_t kMaxParts = 10'000;
constexpr uint64_t kMaxPartBytes = uint64_t{5} << 30;  // S3's, 5 GiB

}  // namespace

std::string ObjectKey(std::string_view id) {
  return "tidings/" + crypto::HexEncode({reinterpret_cast<const uint8_t*>(id.data()), id.size()});
}

namespace {

// Whether the store already holds the whole object: an upload completed
// whose "done" was never saved (a crash, or a lost answer to Complete) is
// not sent again. The key names the object's SHA-256, and every receiver
// checks it.
Result<bool> AlreadyThere(ObjectStore& store, const std::string& key, uint64_t cipher_bytes) {
  auto size = store.HeadObject(key);
  if (size.status().code() == Code::kNotFound) return false;
  TIDINGS_RETURN_IF_ERROR(size.status());
  return *size == cipher_bytes;
}

Status NotTheObject() {
  return DataLoss(
      "the attachment's file on this device does not match its name: it was changed "
      "or damaged, so it is not uploaded; run `tidings verify`");
}

Status Abandon(ObjectStore& store, const std::string& key, const std::string& upload_id) {
  const Status s = store.AbortMultipartUpload(key, upload_id);
  return s.code() == Code::kNotFound ? Status::Ok() : s;
}

}  // namespace

Status Upload(const engine::AttachmentFiles& files, std::string_view id, uint64_t cipher_bytes,
              const std::string& key, ObjectStore& store, UploadState* state,
              const SaveUpload& save, const TransferOptions& options,
              const TransferProgress& progress, const std::atomic<bool>* cancel) {
  if (state->done) return Status::Ok();
  auto cancelled = [] { return tidings::Cancelled("the attachment upload was cancelled"); };
  if (Stopped(cancel)) return cancelled();
  // What is sent must be the object its key names: its size first, its
  // SHA-256 as the bytes go (from the start again after a restart), before
  // the object is made whole on the server.
  TIDINGS_ASSIGN_OR_RETURN(const uint64_t on_disk, files.Size(id));
  if (on_disk != cipher_bytes) return NotTheObject();
  crypto::Sha256Hasher hash;
  auto is_the_object = [&] {
    const crypto::Digest256 got = hash.Finish();
    return std::string_view(reinterpret_cast<const char*>(got.data()), got.size()) == id;
  };
  auto done = [&]() -> Status {
    state->done = true;
    TIDINGS_RETURN_IF_ERROR(save(*state));
    if (progress) progress(cipher_bytes, cipher_bytes);
    return Status::Ok();
  };

  // Small objects go in one request, unless a multipart upload was started
  // (under other options) and must be finished or abandoned.
  if (cipher_bytes < options.multipart_from_bytes && state->upload_id.empty()) {
    TIDINGS_ASSIGN_OR_RETURN(std::string body, files.ReadRange(id, 0, cipher_bytes));
    hash.Update(body);
    if (!is_the_object()) return NotTheObject();
    TIDINGS_RETURN_IF_ERROR(store.PutObject(key, std::move(body)));
    return done();
  }

  // A saved state that cannot go on (a part size S3 refuses, or too small
  // for 10,000 parts: an older build's or a damaged one) is abandoned.
  if (!state->upload_id.empty() &&
      (state->part_bytes < kMinPartBytes || state->part_bytes > kMaxPartBytes ||
       state->part_bytes * kMaxParts < cipher_bytes)) {
    TIDINGS_RETURN_IF_ERROR(Abandon(store, key, state->upload_id));
    *state = UploadState{};
    TIDINGS_RETURN_IF_ERROR(save(*state));
  }
  if (state->upload_id.empty()) {
    TIDINGS_ASSIGN_OR_RETURN(const bool there, AlreadyThere(store, key, cipher_bytes));
    if (there) return done();
    // A part size fixed for the whole upload (a restart under other options
    // goes on with the parts already sent), large enough for 10,000 parts.
    state->part_bytes =
        std::max({options.part_bytes, kMinPartBytes, (cipher_bytes + kMaxParts - 1) / kMaxParts});
    state->parts.clear();
    TIDINGS_ASSIGN_OR_RETURN(const std::vector<std::string> orphans, store.ListUploads(key));
    for (const auto& orphan : orphans) TIDINGS_RETURN_IF_ERROR(Abandon(store, key, orphan));
    TIDINGS_ASSIGN_OR_RETURN(state->upload_id, store.CreateMultipartUpload(key));
    TIDINGS_RETURN_IF_ERROR(save(*state));
  } else {
    // Resumed: the store's list is the truth. A part it holds that the
    // state lacks was sent just before a crash: keep it if its size is the
    // one its place needs. An upload the store no longer knows was
    // completed (the object is there) or lost (start over).
    auto listed = store.ListParts(key, state->upload_id);
    if (listed.status().code() == Code::kNotFound) {
      TIDINGS_ASSIGN_OR_RETURN(const bool there, AlreadyThere(store, key, cipher_bytes));
      if (there) return done();
      *state = UploadState{};
      TIDINGS_RETURN_IF_ERROR(save(*state));
      return Upload(files, id, cipher_bytes, key, store, state, save, options, progress, cancel);
    }
    TIDINGS_RETURN_IF_ERROR(listed.status());
    std::vector<UploadedPart> kept;
    for (const UploadedPart& p : *listed) {
      const uint64_t offset = static_cast<uint64_t>(p.number - 1) * state->part_bytes;
      const uint64_t want =
          offset < cipher_bytes ? std::min(state->part_bytes, cipher_bytes - offset) : 0;
      if (p.number != static_cast<int>(kept.size()) + 1 || want == 0 || p.bytes != want) break;
      kept.push_back(p);
    }
    state->parts = std::move(kept);
    TIDINGS_RETURN_IF_ERROR(save(*state));
    // The parts already sent are hashed from the local file.
    // The last of them may be the object's shorter last part.
    const uint64_t sent_bytes = std::min(state->parts.size() * state->part_bytes, cipher_bytes);
    for (uint64_t at = 0; at < sent_bytes; at += state->part_bytes) {
      if (Stopped(cancel)) return cancelled();
      TIDINGS_ASSIGN_OR_RETURN(
          const std::string sent,
          files.ReadRange(id, at, std::min(state->part_bytes, sent_bytes - at)));
      hash.Update(sent);
    }
  }

  for (;;) {
    const uint64_t offset = state->parts.size() * state->part_bytes;
    if (offset >= cipher_bytes) break;
    if (Stopped(cancel)) return cancelled();
    const uint64_t length = std::min(state->part_bytes, cipher_bytes - offset);
    TIDINGS_ASSIGN_OR_RETURN(std::string body, files.ReadRange(id, offset, length));
    hash.Update(body);
    const int number = static_cast<int>(state->parts.size()) + 1;
    TIDINGS_ASSIGN_OR_RETURN(std::string etag,
                             store.UploadPart(key, state->upload_id, number, std::move(body)));
    state->parts.push_back({number, std::move(etag), length});
    TIDINGS_RETURN_IF_ERROR(save(*state));
    if (progress) progress(offset + length, cipher_bytes);
  }
  if (!is_the_object()) {
    TIDINGS_RETURN_IF_ERROR(Abandon(store, key, state->upload_id));
    *state = UploadState{};
    TIDINGS_RETURN_IF_ERROR(save(*state));
    return NotTheObject();
  }
  const Status completed = store.CompleteMultipartUpload(key, state->upload_id, state->parts);
  if (completed.code() == Code::kNotFound) {  // completed before, its answer lost
    TIDINGS_ASSIGN_OR_RETURN(const bool there, AlreadyThere(store, key, cipher_bytes));
    if (there) return done();
  }
  TIDINGS_RETURN_IF_ERROR(completed);
  return done();
}

Status Download(engine::AttachmentFiles& files, std::string_view id,
                const crypto::SecretKey& content_key, uint64_t cipher_bytes, const std::string& key,
                ObjectStore& store, const TransferOptions& options,
                const TransferProgress& progress, const std::atomic<bool>* cancel) {
  if (files.Has(id)) return Status::Ok();
  TIDINGS_ASSIGN_OR_RETURN(const uint64_t size, store.HeadObject(key));
  if (size != cipher_bytes) {
    return DataLoss("the attachment on the server is " + std::to_string(size) + " bytes, not the " +
                    std::to_string(cipher_bytes) + " its message says: it was changed or replaced");
  }
  // Every byte is checked as it comes, those of a resumed download again:
  // a chunk that fails stops the download there, and its partial file goes.
  crypto::AttachmentDecryptor check(content_key);
  std::string plain;
  // Checked in slices, the plaintext dropped after each: a range's check
  // holds one slice of plaintext, not the range's.
  constexpr size_t kCheckSlice = 256 << 10;
  auto checked = [&](std::string_view bytes) -> Status {
    for (size_t at = 0; at < bytes.size(); at += kCheckSlice) {
      plain.clear();
      if (!check.Update(bytes.substr(at, kCheckSlice), &plain).ok()) {
        (void)files.DropPartial(id);
        return DataLoss(
            "a downloaded attachment failed its check: it was changed on the server "
            "or on the way; fetch it again to retry");
      }
    }
    return Status::Ok();
  };
  TIDINGS_ASSIGN_OR_RETURN(uint64_t have, files.PartialBytes(id));
  // What a resumed download already has is checked again; a partial file
  // damaged here (or longer than the object) is dropped, and this download
  // starts from the beginning.
  if (have > 0 && (have > cipher_bytes || !files.ScanPartial(id, checked).ok())) {
    TIDINGS_RETURN_IF_ERROR(files.DropPartial(id));
    check = crypto::AttachmentDecryptor(content_key);
    have = 0;
  }
  const uint64_t range = std::max<uint64_t>(options.part_bytes, 1);
  while (have < cipher_bytes) {
    if (Stopped(cancel)) return tidings::Cancelled("the attachment download was cancelled");
    const uint64_t length = std::min(range, cipher_bytes - have);
    TIDINGS_ASSIGN_OR_RETURN(const std::string bytes, store.GetRange(key, have, length));
    if (bytes.size() != length) {
      return Unavailable("the server sent " + std::to_string(bytes.size()) + " bytes of a " +
                         std::to_string(length) + "-byte range; retry the download");
    }
    TIDINGS_RETURN_IF_ERROR(checked(bytes));
    TIDINGS_RETURN_IF_ERROR(files.AppendPartial(id, bytes));
    have += length;
    if (progress) progress(have, cipher_bytes);
  }
  return files.FinishPartial(id, content_key);
}

}  // namespace tidings::attachments
