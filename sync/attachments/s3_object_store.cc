#include "sync/attachments/s3_object_store.h"

namespace tidings::attachments {

Result<std::unique_ptr<S3ObjectStore>> S3ObjectStore::Create(
    s3::S3Config config, std::shared_ptr<aws::CredentialsProvider> credentials,
    std::string bucket) {
  TIDINGS_ASSIGN_OR_RETURN(std::unique_ptr<s3::S3Client> first,
                           s3::S3Client::Create(config, credentials));
  std::unique_ptr<S3ObjectStore> store(
      new S3ObjectStore(std::move(config), std::move(credentials), std::move(bucket)));
  store->idle_.push_back(first.get());
  store->made_.push_back(std::move(first));
  store->clients_ = 1;
  return store;
}

S3ObjectStore::S3ObjectStore(s3::S3Client& s3, std::string bucket)
    : bucket_(std::move(bucket)), idle_{&s3}, clients_(1) {}

S3ObjectStore::Lease::Lease(S3ObjectStore* store, s3::S3Client* client)
    : store_(store), client_(client), requests_before_(client->requests()) {}

S3ObjectStore::Lease::Lease(Lease&& other) noexcept
    : store_(other.store_), client_(other.client_), requests_before_(other.requests_before_) {
  other.client_ = nullptr;
}

S3ObjectStore::Lease::~Lease() {
  if (client_ == nullptr) return;  // moved from
  store_->requests_ += client_->requests() - requests_before_;
  {
    std::lock_guard<std::mutex> lock(store_->mu_);
    store_->idle_.push_back(client_);
  }
  store_->given_back_.notify_one();
}

Result<S3ObjectStore::Lease> S3ObjectStore::Take() {
  std::unique_lock<std::mutex> lock(mu_);
  if (idle_.empty() && credentials_ == nullptr) {
    given_back_.wait(lock, [&] { return !idle_.empty(); });
  }
  if (!idle_.empty()) {
    s3::S3Client* client = idle_.back();
    idle_.pop_back();
    return Lease(this, client);
  }
  ++clients_;
  lock.unlock();
  auto made = s3::S3Client::Create(config_, credentials_);
  lock.lock();
  if (!made.ok()) {
    --clients_;
    return made.status();
  }
  s3::S3Client* client = made->get();
  made_.push_back(std::move(*made));
  return Lease(this, client);
}

size_t S3ObjectStore::clients() const {
  std::lock_guard<std::mutex> lock(mu_);
  return clients_;
}

Status S3ObjectStore::PutObject(const std::string& key, std::string body) {
  TIDINGS_ASSIGN_OR_RETURN(Lease s3, Take());
  return s3->PutObject(bucket_, key, std::move(body)).status();
}

Result<uint64_t> S3ObjectStore::HeadObject(const std::string& key) {
  TIDINGS_ASSIGN_OR_RETURN(Lease s3, Take());
  TIDINGS_ASSIGN_OR_RETURN(const s3::ObjectInfo info, s3->HeadObject(bucket_, key));
  return info.size;
}

Result<std::string> S3ObjectStore::GetRange(const std::string& key, uint64_t offset,
                                            uint64_t length) {
  TIDINGS_ASSIGN_OR_RETURN(Lease s3, Take());
  TIDINGS_ASSIGN_OR_RETURN(s3::ObjectRange range, s3->GetObjectRange(bucket_, key, offset, length));
  return std::move(range.data);
}

Status S3ObjectStore::GetRangeTo(const std::string& key, uint64_t offset, uint64_t length,
                                 const RangeWriter& write) {
  TIDINGS_ASSIGN_OR_RETURN(Lease s3, Take());
  return s3->GetObjectRange(bucket_, key, offset, length, write).status();
}

Result<std::string> S3ObjectStore::CreateMultipartUpload(const std::string& key) {
  TIDINGS_ASSIGN_OR_RETURN(Lease s3, Take());
  return s3->CreateMultipartUpload(bucket_, key);
}

Result<std::string> S3ObjectStore::UploadPart(const std::string& key, const std::string& upload_id,
                                              int number, std::string body) {
  TIDINGS_ASSIGN_OR_RETURN(Lease s3, Take());
  return s3->UploadPart(bucket_, key, upload_id, number, std::move(body));
}

Result<std::string> S3ObjectStore::UploadPartFrom(const std::string& key,
                                                  const std::string& upload_id, int number,
                                                  uint64_t size, const PartReader& read) {
  TIDINGS_ASSIGN_OR_RETURN(Lease s3, Take());
  return s3->UploadPart(
      bucket_, key, upload_id, number, size, read,
      sign_parts_ ? s3::S3Client::Payload::kSigned : s3::S3Client::Payload::kUnsigned);
}

Result<std::vector<UploadedPart>> S3ObjectStore::ListParts(const std::string& key,
                                                           const std::string& upload_id) {
  TIDINGS_ASSIGN_OR_RETURN(Lease s3, Take());
  TIDINGS_ASSIGN_OR_RETURN(const std::vector<s3::PartInfo> listed,
                           s3->ListParts(bucket_, key, upload_id));
  std::vector<UploadedPart> out;
  out.reserve(listed.size());
  for (const auto& p : listed) out.push_back({p.part_number, p.etag, p.size});
  return out;
}

Status S3ObjectStore::CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                              const std::vector<UploadedPart>& parts) {
  std::vector<s3::PartInfo> infos;
  infos.reserve(parts.size());
  for (const auto& p : parts) infos.push_back({p.number, p.etag, p.bytes});
  TIDINGS_ASSIGN_OR_RETURN(Lease s3, Take());
  return s3->CompleteMultipartUpload(bucket_, key, upload_id, infos).status();
}

Status S3ObjectStore::AbortMultipartUpload(const std::string& key, const std::string& upload_id) {
  TIDINGS_ASSIGN_OR_RETURN(Lease s3, Take());
  return s3->AbortMultipartUpload(bucket_, key, upload_id);
}

Result<std::vector<std::string>> S3ObjectStore::ListUploads(const std::string& key) {
  TIDINGS_ASSIGN_OR_RETURN(Lease s3, Take());
  TIDINGS_ASSIGN_OR_RETURN(auto uploads, s3->ListMultipartUploads(bucket_, key));
  std::vector<std::string> out;
  for (const auto& u : uploads) {
    if (u.key == key) out.push_back(u.upload_id);  // a prefix: longer keys too
  }
  return out;
}

}  // namespace tidings::attachments
