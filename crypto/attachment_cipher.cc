#include "crypto/attachment_cipher.h"

#include <algorithm>

namespace tidings::crypto {
namespace {

std::string Prefix(uint32_t chunk_bytes) {
  std::string p(kAttachmentMagic, 4);
  for (int shift = 24; shift >= 0; shift -= 8) p.push_back(static_cast<char>(chunk_bytes >> shift));
  return p;
}

}  // namespace

uint64_t AttachmentCipherSize(uint64_t plain_bytes, uint32_t chunk_bytes) {
  if (chunk_bytes == 0) return 0;
  const uint64_t chunks = plain_bytes / chunk_bytes + 1;  // the last is shorter, maybe empty
  return kAttachmentHeaderBytes + plain_bytes + chunks * kSecretStreamOverhead;
}

Result<AttachmentEncryptor> AttachmentEncryptor::Start(const SecretKey& key, std::string* out,
                                                       uint32_t chunk_bytes) {
  if (chunk_bytes == 0 || chunk_bytes > kMaxAttachmentChunkBytes) {
    return InvalidArgument("an attachment chunk is 1 byte to 4 MiB");
  }
  AttachmentEncryptor e;
  e.prefix_ = Prefix(chunk_bytes);
  e.chunk_bytes_ = chunk_bytes;
  std::string header;
  TIDINGS_ASSIGN_OR_RETURN(e.stream_, SecretStreamWriter::Start(key, &header));
  out->append(e.prefix_).append(header);
  return e;
}

Status AttachmentEncryptor::Update(std::string_view plain, std::string* out) {
  if (finished_) return FailedPrecondition("the attachment object is already finished");
  plain_bytes_ += plain.size();
  // A chunk is sealed only once a byte beyond it has come: the last chunk
  // (FINAL) is the one Finish seals, so an object whose size is a multiple
  // of the chunk size ends with an empty final chunk (CipherSize counts it).
  if (!pending_.empty()) {
    const size_t take = std::min(plain.size(), chunk_bytes_ - pending_.size());
    pending_.append(plain.substr(0, take));
    plain.remove_prefix(take);
    if (pending_.size() < chunk_bytes_ || plain.empty()) return Status::Ok();
    stream_.Push(pending_, prefix_, /*final=*/false, out);
    pending_.clear();
  }
  while (plain.size() > chunk_bytes_) {
    stream_.Push(plain.substr(0, chunk_bytes_), prefix_, /*final=*/false, out);
    plain.remove_prefix(chunk_bytes_);
  }
  pending_.assign(plain);
  return Status::Ok();
}

Status AttachmentEncryptor::Finish(std::string* out) {
  if (finished_) return FailedPrecondition("the attachment object is already finished");
  finished_ = true;
  if (pending_.size() == chunk_bytes_) {
    stream_.Push(pending_, prefix_, /*final=*/false, out);
    pending_.clear();
  }
  stream_.Push(pending_, prefix_, /*final=*/true, out);
  pending_.clear();
  return Status::Ok();
}

Status AttachmentDecryptor::Header() {
  if (pending_.compare(0, 4, kAttachmentMagic) != 0) {
    return DataLoss("this is not a Tidings attachment object (or not one of this version)");
  }
  chunk_bytes_ = 0;
  for (size_t i = 4; i < kAttachmentPrefixBytes; ++i) {
    chunk_bytes_ = chunk_bytes_ << 8 | static_cast<uint8_t>(pending_[i]);
  }
  if (chunk_bytes_ == 0 || chunk_bytes_ > kMaxAttachmentChunkBytes) {
    return DataLoss("an attachment object's header is corrupt");
  }
  prefix_ = pending_.substr(0, kAttachmentPrefixBytes);
  auto reader = SecretStreamReader::Start(
      *key_, std::string_view(pending_).substr(kAttachmentPrefixBytes, kSecretStreamHeaderBytes));
  if (!reader.ok()) return DataLoss("an attachment object's header is corrupt");
  stream_.emplace(std::move(*reader));
  pending_.erase(0, kAttachmentHeaderBytes);
  return Status::Ok();
}

Status AttachmentDecryptor::Update(std::string_view cipher, std::string* plain) {
  auto fail = [&](Status s) {
    failed_ = true;
    return s;
  };
  if (failed_) return DataLoss("an attachment object failed to open before");
  while (!cipher.empty()) {
    if (final_) return fail(DataLoss("an attachment object has bytes after its end"));
    const size_t want =
        stream_.has_value() ? chunk_bytes_ + kSecretStreamOverhead : kAttachmentHeaderBytes;
    const size_t take = std::min(cipher.size(), want - pending_.size());
    pending_.append(cipher.substr(0, take));
    cipher.remove_prefix(take);
    if (pending_.size() < want) break;
    if (!stream_.has_value()) {
      if (Status s = Header(); !s.ok()) return fail(std::move(s));
      continue;
    }
    if (Status s = stream_->Pull(pending_, prefix_, &chunk_plain_, &final_); !s.ok()) {
      return fail(
          DataLoss("an attachment chunk failed authentication: the object was changed "
                   "or damaged"));
    }
    plain->append(chunk_plain_);
    plain_bytes_ += chunk_plain_.size();
    pending_.clear();
  }
  return Status::Ok();
}

Status AttachmentDecryptor::Finish(std::string* plain) {
  if (failed_) return DataLoss("an attachment object failed to open");
  // The final chunk is shorter than a full one, so Update keeps it pending.
  if (!final_ && stream_.has_value() && !pending_.empty()) {
    if (!stream_->Pull(pending_, prefix_, &chunk_plain_, &final_).ok()) {
      failed_ = true;
      return DataLoss(
          "an attachment chunk failed authentication: the object was changed or damaged");
    }
    if (!final_) {
      failed_ = true;
      return DataLoss("an attachment object is cut short");
    }
    plain->append(chunk_plain_);
    plain_bytes_ += chunk_plain_.size();
    pending_.clear();
  }
  if (!final_) return DataLoss("an attachment object is cut short");
  return Status::Ok();
}

}  // namespace tidings::crypto
