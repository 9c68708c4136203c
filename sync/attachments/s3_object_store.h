// The transfer's ObjectStore (sync/attachments/transfer.h) over S3: one
// bucket, through an s3::S3Client (sync/s3).
#pragma once

#include <string>

#include "sync/attachments/transfer.h"
#include "sync/s3/s3_client.h"

namespace tidings::attachments {

class S3ObjectStore : public ObjectStore {
 public:
  // `s3` must outlive this store.
  S3ObjectStore(s3::S3Client& s3, std::string bucket) : s3_(s3), bucket_(std::move(bucket)) {}

  Status PutObject(const std::string& key, std::string body) override;
  Result<uint64_t> HeadObject(const std::string& key) override;
  Result<std::string> GetRange(const std::string& key, uint64_t offset, uint64_t length) override;
  Result<std::string> CreateMultipartUpload(const std::string& key) override;
  Result<std::string> UploadPart(const std::string& key, const std::string& upload_id, int number,
                                 std::string body) override;
  Result<std::vector<UploadedPart>> ListParts(const std::string& key,
                                              const std::string& upload_id) override;
  Status CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                 const std::vector<UploadedPart>& parts) override;
  Status AbortMultipartUpload(const std::string& key, const std::string& upload_id) override;
  Result<std::vector<std::string>> ListUploads(const std::string& key) override;

 private:
  s3::S3Client& s3_;
  std::string bucket_;
};

}  // namespace tidings::attachments
