// S3's XML responses (sync/s3/s3_xml.h), which come from whatever answers
// at the configured endpoint. Nothing crashes or hangs; the parts a
// ListParts page reads, written as a CompleteMultipartUpload body, read back
// with the same numbers and ETags.
#include <string>

#include "fuzz/fuzz_check.h"
#include "sync/s3/s3_xml.h"

namespace {

using namespace tidings;
using namespace tidings::s3;

void CheckCompleteBody(const std::vector<PartInfo>& parts) {
  auto doc = ParseXml(CompleteMultipartUploadBody(parts));
  FUZZ_CHECK(doc.ok());
  size_t i = 0;
  for (const auto& c : doc->children) {
    FUZZ_CHECK(i < parts.size());
    FUZZ_CHECK(c.ChildText("PartNumber") == std::to_string(parts[i].part_number));
    FUZZ_CHECK(c.ChildText("ETag") == parts[i].etag);
    ++i;
  }
  FUZZ_CHECK(i == parts.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [choice, in] = fuzz::SplitInput(data, size, 6);
  switch (choice) {
    case 0:
      (void)ParseXml(in);
      break;
    case 1: {
      aws::AwsErrorBody e;
      if (ParseS3Error(in, &e)) FUZZ_CHECK(!e.type.empty());
      break;
    }
    case 2:
      if (auto page = ParseListParts(in); page.ok()) {
        for (const auto& p : page->parts) {
          FUZZ_CHECK(p.part_number >= 1 && p.part_number <= 10000 && !p.etag.empty());
        }
        CheckCompleteBody(page->parts);
      }
      break;
    case 3:
      (void)ParseListMultipartUploads(in);
      break;
    case 4: {
      aws::AwsErrorBody e;
      if (auto etag = ParseCompleteMultipartUpload(in, &e); etag.ok()) {
        FUZZ_CHECK(etag->empty() != e.type.empty());
      }
      break;
    }
    case 5:
      if (auto id = ParseCreateMultipartUpload(in); id.ok()) FUZZ_CHECK(!id->empty());
      break;
  }
  return 0;
}
