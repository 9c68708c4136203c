// S3Client: the Amazon S3 operations Tidings needs to store encrypted
// objects (attachments, issue 19) in multipart uploads that survive a crash,
// and to read them back in ranges. Built on aws::AwsTransport: SigV4 (with
// S3's x-amz-content-sha256 payload hash), AWS standard retries, clock-skew
// recovery; S3's XML error bodies map to Status codes through
// sync/s3/s3_xml.h (NoSuchKey/NoSuchUpload -> NotFound, AccessDenied ->
// PermissionDenied, SignatureDoesNotMatch/InvalidAccessKeyId/ExpiredToken ->
// Unauthenticated, SlowDown/5xx -> Unavailable after the retries,
// EntityTooSmall/InvalidPart/InvalidPartOrder/InvalidRange ->
// InvalidArgument). A HEAD answer has no body: HeadObject reports a 403 as
// PermissionDenied whatever its cause.
//
// Bodies are in memory, one object or part at a time, moved into the
// request, or read as they are sent (UploadPart with a BodyReader); nothing
// here buffers a whole multipart object. Error messages name the
// operation, bucket and key (opaque names in Tidings) and what to do; never
// credentials or object contents.
//
// Thread safety: one thread at a time per client; Cancel() from any thread.
// Several clients (one per thread) may share a CredentialsProvider.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sync/aws/aws_client.h"
#include "sync/aws/credentials.h"
#include "sync/http/http_client.h"
#include "sync/s3/s3_types.h"

namespace tidings::s3 {

// S3's limits on multipart uploads.
inline constexpr int kMaxPartNumber = 10'000;
inline constexpr uint64_t kMinPartSize = uint64_t{5} << 20;  // every part but the last
inline constexpr uint64_t kMaxPartSize = uint64_t{5} << 30;

enum class Addressing {
  kAuto,           // path-style for an IP address or localhost endpoint, or a
                   // bucket name that is not one DNS label; else virtual-hosted
  kPath,           // endpoint/bucket/key
  kVirtualHosted,  // bucket.endpoint-host/key
};

struct S3Config {
  // Empty: AWS_REGION, AWS_DEFAULT_REGION, the profile's config, us-east-1.
  std::string region;
  // scheme://host[:port]. Empty: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL,
  // else https://s3.REGION.amazonaws.com. Must be https://, or http:// on
  // loopback (a local test server).
  std::string endpoint;
  Addressing addressing = Addressing::kAuto;
  long connect_timeout_ms = 5'000;
  // Whole-request limit. A 16 MiB part must fit through the slowest link
  // served: 10 minutes is 16 MiB at 28 KB/s. A stalled connection fails
  // sooner: under 64 bytes/s for 15 s.
  long request_timeout_ms = 600'000;
  // The largest response accepted, so the largest range GetObjectRange reads.
  size_t max_response_bytes = size_t{16} << 20;
  int max_attempts = 3;  // AWS standard mode
  // Unix ms; empty: the system clock (tests set one that is off).
  std::function<int64_t()> wall_clock_ms;
};

struct ObjectInfo {
  uint64_t size = 0;
  std::string etag;  // quotes included, as S3 sent it
};

struct ObjectRange {
  std::string data;  // the bytes [offset, offset + bytes), unless handed on as they came
  uint64_t offset = 0;
  uint64_t bytes = 0;        // how many the range holds
  uint64_t object_size = 0;  // the whole object's size (Content-Range)
  std::string etag;
};

// The endpoint S3Config resolves to: `configured` if set, else
// AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else
// https://s3.<region>.amazonaws.com; trailing slashes removed.
std::string ResolveS3Endpoint(const std::string& configured, const std::string& region);
// True if requests to `bucket` at `endpoint` go path-style (see Addressing).
bool UsePathStyle(Addressing addressing, std::string_view endpoint, std::string_view bucket);
// The URL of `key` in `bucket` (key "" for the bucket itself), the key
// percent-encoded with slashes kept, `query` (already encoded, without '?')
// appended if not empty:
//   path-style       http://127.0.0.1:9000/bucket/a%20b?uploads
//   virtual-hosted   https://bucket.s3.eu-west-1.amazonaws.com/a%20b?uploads
std::string ObjectUrl(std::string_view endpoint, bool path_style, std::string_view bucket,
                      std::string_view key, std::string_view query = {});
// InvalidArgument, saying why, unless `bucket` is 3-63 characters of a-z,
// 0-9, '.' and '-' starting and ending with a letter or digit.
Status CheckBucketName(std::string_view bucket);
// InvalidArgument unless `key` is 1-1024 bytes, has no NUL and no "." or ".."
// path segment (libcurl would collapse it, and S3 would not).
Status CheckObjectKey(std::string_view key);

class S3Client {
 public:
  // Resolves the region, endpoint and addressing. `http` empty: libcurl
  // with the config's timeouts and response limit (tests pass their own).
  // InvalidArgument for an endpoint that is not https:// (or http:// on
  // loopback) or a config out of range.
  static Result<std::unique_ptr<S3Client>> Create(
      S3Config config, std::shared_ptr<aws::CredentialsProvider> credentials,
      std::unique_ptr<http::HttpClient> http = nullptr);

  // Creates `bucket` in the client's region (for tests and setup).
  // AlreadyExists if it exists (BucketAlreadyExists, BucketAlreadyOwnedByYou);
  // in us-east-1 S3 answers its owner 200 instead, so OK.
  Status CreateBucket(std::string_view bucket);

  // Stores `body` as `key`, replacing any object there; returns its ETag.
  // Bodies are taken by value: a caller that moves one in keeps a single
  // copy of a part in memory.
  Result<std::string> PutObject(std::string_view bucket, std::string_view key, std::string body);
  // Size and ETag of `key`; NotFound if there is none.
  Result<ObjectInfo> HeadObject(std::string_view bucket, std::string_view key);
  // Bytes [offset, offset + length) of `key` (a Range GET, 206). Checks the
  // answer is exactly that range: the same start, and `length` bytes, or
  // fewer only where the object ends first (then data.size() is the rest of
  // the object). `if_match` (an ETag) non-empty: FailedPrecondition if the
  // object changed. NotFound for no such key; InvalidArgument for
  // length 0, over max_response_bytes, or an offset at or past the end;
  // DataLoss if the server sent other bytes than asked for.
  Result<ObjectRange> GetObjectRange(std::string_view bucket, std::string_view key, uint64_t offset,
                                     uint64_t length, std::string_view if_match = {});
  // Takes a range's bytes as they arrive: `bytes` at `offset` within the
  // range, in order; from offset 0 again when the request is retried. An
  // error stops the read with that error.
  using RangeWriter = std::function<Status(uint64_t offset, std::string_view bytes)>;
  // The same with the range handed to `write` as it arrives instead of held
  // (ObjectRange::data stays empty), so a range of any size costs no memory
  // and max_response_bytes does not cap it. The answer is checked before any
  // byte is handed on (a 206's Content-Range must be the range asked for, a
  // 200's range is cut from the whole object) and as it comes (no byte past
  // the range); DataLoss when the bytes that came are not the whole range
  // (then `write` had some of them: the caller drops them). `write` is called
  // on this thread.
  Result<ObjectRange> GetObjectRange(std::string_view bucket, std::string_view key, uint64_t offset,
                                     uint64_t length, const RangeWriter& write,
                                     std::string_view if_match = {});
  // Deletes `key`; OK also if there was none (S3's behaviour).
  Status DeleteObject(std::string_view bucket, std::string_view key);

  // Begins a multipart upload of `key`; returns its UploadId. Persist it
  // (with the parts' numbers) to resume after a crash with ListParts.
  Result<std::string> CreateMultipartUpload(std::string_view bucket, std::string_view key);
  // Uploads part `part_number` (1..10000) of the upload; returns its ETag.
  // Uploading a number again replaces that part. NotFound if the upload was
  // completed or aborted.
  Result<std::string> UploadPart(std::string_view bucket, std::string_view key,
                                 std::string_view upload_id, int part_number, std::string body);
  // The same with the part read as it is sent: `size` bytes from `body`,
  // read for each attempt, in pieces, so a part of any size costs a few
  // hundred KiB of memory. `body` is called on this thread; its error fails
  // the call as it is. Payload::kSigned reads the part once more first, to
  // hash it: SigV4 signs the hash and S3 refuses the part (BadDigest,
  // XAmzContentSHA256Mismatch) if the bytes sent are not those hashed.
  // Payload::kUnsigned sends x-amz-content-sha256: UNSIGNED-PAYLOAD (S3's
  // unsigned payload option; docs/s3.md says when a caller may choose it):
  // the part is read once, and nothing checks it on the way but TLS.
  enum class Payload { kSigned, kUnsigned };
  Result<std::string> UploadPart(std::string_view bucket, std::string_view key,
                                 std::string_view upload_id, int part_number, uint64_t size,
                                 const http::BodyReader& body, Payload payload = Payload::kSigned);
  // Every part uploaded so far, ascending, following the pages
  // (PartNumberMarker / NextPartNumberMarker, `page_size` parts a page,
  // 1..1000). NotFound if the upload was completed or aborted.
  Result<std::vector<PartInfo>> ListParts(std::string_view bucket, std::string_view key,
                                          std::string_view upload_id, int page_size = 1000);
  // Joins `parts` (ascending part numbers; every part but the last at least
  // 5 MiB) into the object; returns its ETag. InvalidArgument for a part
  // S3 does not have with that ETag, out of order, or too small; NotFound
  // for no such upload. S3 may answer 200 and report an error in the body:
  // that is an error here too.
  Result<std::string> CompleteMultipartUpload(std::string_view bucket, std::string_view key,
                                              std::string_view upload_id,
                                              std::span<const PartInfo> parts);
  // Discards the upload and its parts. NotFound if there is no such upload.
  Status AbortMultipartUpload(std::string_view bucket, std::string_view key,
                              std::string_view upload_id);
  // Uploads begun and neither completed nor aborted whose key starts with
  // `prefix`, following the pages (`page_size` 1..1000): how a caller finds
  // the orphans of a crash to resume or abort.
  Result<std::vector<UploadInfo>> ListMultipartUploads(std::string_view bucket,
                                                       std::string_view prefix,
                                                       int page_size = 1000);

  // Aborts the request in flight; later calls fail Cancelled. Any thread.
  void Cancel() { transport_.Cancel(); }
  const std::string& endpoint() const { return endpoint_; }
  const std::string& region() const { return transport_.config().region; }
  uint64_t requests() const { return transport_.requests(); }
  uint64_t retries() const { return transport_.retries(); }

 private:
  S3Client(aws::ServiceConfig service, Addressing addressing, size_t max_response_bytes,
           std::shared_ptr<aws::CredentialsProvider> credentials,
           std::unique_ptr<http::HttpClient> http);
  // Builds, signs and sends one request; `what` names it in errors.
  Result<http::Response> Send(std::string_view what, std::string_view method,
                              std::string_view bucket, std::string_view key, std::string_view query,
                              http::Headers headers, std::string body);
  // The same for a request whose body (or body reader) and payload hash
  // are set; fills in its method and URL.
  Result<http::Response> Send(std::string_view what, std::string_view method,
                              std::string_view bucket, std::string_view key, std::string_view query,
                              http::Request request);

  std::string endpoint_;
  Addressing addressing_;
  size_t max_response_bytes_;
  aws::AwsTransport transport_;
};

}  // namespace tidings::s3
