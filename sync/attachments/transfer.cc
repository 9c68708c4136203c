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

}  // namespace

std::string ObjectKey(std::string_view id) {
  return "tidings/" + crypto::HexEncode({reinterpret_cast<const uint8_t*>(id.data()), id.size()});
}

Status Upload(const engine::AttachmentFiles& files, std::string_view id, uint64_t cipher_bytes,
              const std::string& key, ObjectStore& store, UploadState* state,
              const SaveUpload& save, const TransferOptions& options,
              const TransferProgress& progress, const std::atomic<bool>* cancel) {
  if (state->done) return Status::Ok();
  auto cancelled = [] { return tidings::Cancelled("the attachment upload was cancelled"); };
  if (Stopped(cancel)) return cancelled();
  if (cipher_bytes < options.multipart_from_bytes) {
    TIDINGS_ASSIGN_OR_RETURN(const std::string body, files.ReadRange(id, 0, cipher_bytes));
    TIDINGS_RETURN_IF_ERROR(store.PutObject(key, body));
    state->done = true;
    TIDINGS_RETURN_IF_ERROR(save(*state));
    if (progress) progress(cipher_bytes, cipher_bytes);
    return Status::Ok();
  }

  if (!state->upload_id.empty() && state->part_bytes == 0) {  // a state that cannot go on
    const Status aborted = store.AbortMultipartUpload(key, state->upload_id);
    if (!aborted.ok() && aborted.code() != Code::kNotFound) return aborted;
    *state = UploadState{};
  }
  // A part size fixed for the whole upload (a restart under other options
  // goes on with the parts already sent), large enough for 10,000 parts.
  if (state->upload_id.empty()) {
    state->part_bytes =
        std::max({options.part_bytes, kMinPartBytes, (cipher_bytes + kMaxParts - 1) / kMaxParts});
    state->parts.clear();
    TIDINGS_ASSIGN_OR_RETURN(state->upload_id, store.CreateMultipartUpload(key));
    TIDINGS_RETURN_IF_ERROR(save(*state));
  } else {
    // Resumed: the store's list is the truth. A part it holds that the
    // state lacks was sent just before a crash: keep it if its size is the
    // one its place needs. An upload the store lost starts over.
    auto listed = store.ListParts(key, state->upload_id);
    if (listed.status().code() == Code::kNotFound) {
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
  }

  for (;;) {
    const uint64_t offset = state->parts.size() * state->part_bytes;
    if (offset >= cipher_bytes) break;
    if (Stopped(cancel)) return cancelled();
    const uint64_t length = std::min(state->part_bytes, cipher_bytes - offset);
    TIDINGS_ASSIGN_OR_RETURN(const std::string body, files.ReadRange(id, offset, length));
    const int number = static_cast<int>(state->parts.size()) + 1;
    TIDINGS_ASSIGN_OR_RETURN(std::string etag,
                             store.UploadPart(key, state->upload_id, number, body));
    state->parts.push_back({number, std::move(etag), length});
    TIDINGS_RETURN_IF_ERROR(save(*state));
    if (progress) progress(offset + length, cipher_bytes);
  }
  TIDINGS_RETURN_IF_ERROR(store.CompleteMultipartUpload(key, state->upload_id, state->parts));
  state->done = true;
  return save(*state);
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
  auto checked = [&](std::string_view bytes) -> Status {
    plain.clear();
    Status s = check.Update(bytes, &plain);
    if (!s.ok()) {
      (void)files.DropPartial(id);
      return DataLoss(
          "a downloaded attachment failed its check: it was changed on the server "
          "or on the way; fetch it again to retry");
    }
    return Status::Ok();
  };
  TIDINGS_ASSIGN_OR_RETURN(uint64_t have, files.PartialBytes(id));
  if (have > cipher_bytes) {
    TIDINGS_RETURN_IF_ERROR(files.DropPartial(id));
    have = 0;
  }
  if (have > 0) TIDINGS_RETURN_IF_ERROR(files.ScanPartial(id, checked));
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
