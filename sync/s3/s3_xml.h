// XML for S3: reading its responses with libexpat (this is the only file
// that includes expat.h; no expat type leaves it) and writing the one XML
// body Tidings sends (CompleteMultipartUpload).
//
// The reader builds a small tree and refuses what S3 never sends: a DOCTYPE
// (so no entity can be declared or expanded), nesting deeper than 16, more
// than 200,000 elements. Names are kept as written (no namespace
// processing: S3's default namespace leaves them unprefixed).
//
// Thread safety: functions only; any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sync/aws/json.h"
#include "sync/s3/s3_types.h"

namespace tidings::s3 {

struct XmlElement {
  std::string name;
  std::string text;  // character data directly inside this element, entities decoded
  std::vector<XmlElement> children;

  // The first child named `name`, or nullptr.
  const XmlElement* Child(std::string_view name) const;
  // The text of the first child named `name`; "" if there is none.
  std::string_view ChildText(std::string_view name) const;
};

// The document's root element. InvalidArgument ("malformed XML ...", with
// expat's reason and line, never the body's contents) if `body` is not
// well-formed or is refused as above.
Result<XmlElement> ParseXml(std::string_view body);

// An S3 error body (<Error><Code>NoSuchKey</Code><Message>...</Message>):
// its code into out->type and its message. False if `body` is not one. The
// aws::ErrorBodyParser of S3's AwsTransport.
bool ParseS3Error(std::string_view body, aws::AwsErrorBody* out);

// Responses. Each is InvalidArgument ("malformed S3 <what> response: ...")
// for a body that is not the expected document or has a missing or
// out-of-range field.
// CreateMultipartUpload: the UploadId.
Result<std::string> ParseCreateMultipartUpload(std::string_view body);
// ListParts: parts in the order sent, with PartNumber 1..10000. The root is
// ListPartsResult (S3) or ListPartsResponse (moto).
Result<ListPartsPage> ParseListParts(std::string_view body);
// ListMultipartUploads.
Result<ListUploadsPage> ParseListMultipartUploads(std::string_view body);
// CompleteMultipartUpload answers 200 and then either the result (the
// object's ETag, returned) or an <Error> that came up while S3 assembled the
// parts: then `error` is filled and the result is "". The root is
// CompleteMultipartUploadResult (S3) or CompleteMultipartUploadResponse (moto).
Result<std::string> ParseCompleteMultipartUpload(std::string_view body, aws::AwsErrorBody* error);

// The CompleteMultipartUpload request body for `parts` (in the order given;
// S3 wants ascending part numbers), text escaped.
std::string CompleteMultipartUploadBody(std::span<const PartInfo> parts);
// `text` with & < > " ' written as entities.
std::string XmlEscape(std::string_view text);

}  // namespace tidings::s3
