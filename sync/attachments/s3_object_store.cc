#include "sync/attachments/s3_object_store.h"

namespace tidings::attachments {

Status S3ObjectStore::PutObject(const std::string& key, std::string body) {
  return s3_.PutObject(bucket_, key, std::move(body)).status();
}

Result<uint64_t> S3ObjectStore::HeadObject(const std::string& key) {
  TIDINGS_ASSIGN_OR_RETURN(const s3::ObjectInfo info, s3_.HeadObject(bucket_, key));
  return info.size;
}

Result<std::string> S3ObjectStore::GetRange(const std::string& key, uint64_t offset,
                                            uint64_t length) {
  TIDINGS_ASSIGN_OR_RETURN(s3::ObjectRange range, s3_.GetObjectRange(bucket_, key, offset, length));
  return std::move(range.data);
}

Result<std::string> S3ObjectStore::CreateMultipartUpload(const std::string& key) {
  return s3_.CreateMultipartUpload(bucket_, key);
}

Result<std::string> S3ObjectStore::UploadPart(const std::string& key, const std::string& upload_id,
                                              int number, std::string body) {
  return s3_.UploadPart(bucket_, key, upload_id, number, std::move(body));
}

Result<std::vector<UploadedPart>> S3ObjectStore::ListParts(const std::string& key,
                                                           const std::string& upload_id) {
  TIDINGS_ASSIGN_OR_RETURN(const std::vector<s3::PartInfo> listed,
                           s3_.ListParts(bucket_, key, upload_id));
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
  return s3_.CompleteMultipartUpload(bucket_, key, upload_id, infos).status();
}

Status S3ObjectStore::AbortMultipartUpload(const std::string& key, const std::string& upload_id) {
  return s3_.AbortMultipartUpload(bucket_, key, upload_id);
}

Result<std::vector<std::string>> S3ObjectStore::ListUploads(const std::string& key) {
  TIDINGS_ASSIGN_OR_RETURN(auto uploads, s3_.ListMultipartUploads(bucket_, key));
  std::vector<std::string> out;
  for (const auto& u : uploads) {
    if (u.key == key) out.push_back(u.upload_id);  // a prefix: longer keys too
  }
  return out;
}

}  // namespace tidings::attachments
