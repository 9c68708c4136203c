// The values S3 operations return (sync/s3/s3_client.h), shared with the
// XML reader that fills them (sync/s3/s3_xml.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tidings::s3 {

// One uploaded part of a multipart upload, as ListParts reports it; with
// `size` ignored, also what CompleteMultipartUpload takes.
struct PartInfo {
  int part_number = 0;  // 1..10000
  std::string etag;     // as S3 sent it, quotes included: "\"9b2cf5...\""
  uint64_t size = 0;    // bytes
};

// One page of ListParts.
struct ListPartsPage {
  std::vector<PartInfo> parts;
  bool truncated = false;  // IsTruncated: more parts after next_marker
  int next_marker = 0;     // NextPartNumberMarker
};

// A multipart upload begun and neither completed nor aborted.
struct UploadInfo {
  std::string key;
  std::string upload_id;
  std::string initiated;  // ISO 8601 as S3 sent it, "2026-11-24T12:34:56.000Z"
};

// One page of ListMultipartUploads.
struct ListUploadsPage {
  std::vector<UploadInfo> uploads;
  bool truncated = false;
  std::string next_key_marker;        // NextKeyMarker
  std::string next_upload_id_marker;  // NextUploadIdMarker
};

}  // namespace tidings::s3
