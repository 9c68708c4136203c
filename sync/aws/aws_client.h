// AwsJsonClient: one AWS JSON-protocol service (DynamoDB speaks
// awsJson1_0) over an HttpClient: signing, error model and retries.
// AwsRestClient: the same for a rest-json service (Chime SDK Messaging):
// method, encoded path and query per operation, JSON bodies.
// Both share AwsTransport (sign, send, retry, clock skew).
//
// Errors map to Status codes the reconciler classifies:
//   throttling, 429, 5xx, CRC32 mismatch, transport errors -> Unavailable
//   ConditionalCheckFailedException -> Aborted (lost a race)
//   AccessDenied / Forbidden -> PermissionDenied
//   UnrecognizedClient, InvalidSignature, ExpiredToken... -> Unauthenticated
//   ResourceNotFound -> NotFound; Validation/Serialization -> InvalidArgument
// S3's XML error codes map the same way (ServiceConfig::parse_error_body
// reads them): NoSuchKey/NoSuchUpload/NoSuchBucket -> NotFound, SlowDown ->
// Unavailable, InvalidAccessKeyId/SignatureDoesNotMatch -> Unauthenticated,
// EntityTooSmall/InvalidPart/InvalidPartOrder/InvalidRange -> InvalidArgument,
// BucketAlreadyOwnedByYou -> AlreadyExists.
// Retries follow AWS standard mode: at most 3 attempts, full-jitter
// exponential backoff (base 100 ms, cap 20 s), a retry quota (500 tokens, 5
// per retry, 10 per timeout, 1 back per success), x-amz-retry-after honoured.
// A clock-skew rejection (IsClockSkewError) corrects the signing clock from
// the response's Date header (or the server time AWS writes into the
// message) and retries once.
//
// Thread safety: one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sync/aws/credentials.h"
#include "sync/aws/json.h"
#include "sync/http/http_client.h"

namespace tidings::aws {

// Reads an error response's body into its type and message; false if the
// body is not in the service's format.
using ErrorBodyParser = std::function<bool(std::string_view body, AwsErrorBody* out)>;

struct ServiceConfig {
  std::string signing_name;  // "dynamodb"
  std::string region;
  std::string endpoint;       // scheme://host[:port]
  std::string target_prefix;  // "DynamoDB_20120810"
  std::string content_type = "application/x-amz-json-1.0";
  bool verify_crc32 = true;  // DynamoDB sends x-amz-crc32
  int max_attempts = 3;
  // This device's wall clock (Unix ms); empty: WallMs(). Tests set a clock
  // that is off to exercise the skew recovery.
  std::function<int64_t()> wall_clock_ms;
  // Empty: the JSON protocols' ParseErrorJson. S3 answers in XML and sets its
  // own reader (sync/s3/s3_xml.h), so the retry loop stays this one.
  ErrorBodyParser parse_error_body;
};

// True if an error response says the request's time is too far from the
// server's (the signature is expired or not yet current), in the words of
// AWS ("Signature expired: 20261204T000000Z is now earlier than ...",
// "Signature not yet current: ...", RequestTimeTooSkewed) or of the local
// emulator ("signature expired: ... check the clock"), case-insensitively.
bool IsClockSkewError(std::string_view type, std::string_view message);
// The server's time (Unix ms) AWS writes into a skew message, e.g. the
// "20261204T001000Z" of "... is now earlier than 20261204T000500Z
// (20261204T001000Z - 5 min.)"; 0 if it has none.
int64_t ServerTimeFromSkewMessage(std::string_view message);

// Maps a non-2xx response to a Status (exposed for tests and the Chime
// client); `parse` reads the body (empty: ParseErrorJson).
Status ErrorFromResponse(const http::Response& response, std::string_view service,
                         const ErrorBodyParser& parse = nullptr);

// Signs and sends requests of one service with AWS standard-mode retries.
class AwsTransport {
 public:
  AwsTransport(ServiceConfig config, std::shared_ptr<CredentialsProvider> credentials,
               std::unique_ptr<http::HttpClient> http);

  // Signs (fresh credentials and time on every attempt) and sends `request`
  // (method, url, headers and body set; url relative to nothing: complete).
  // Returns the 2xx response, or the last error mapped by ErrorFromResponse
  // (or the transport's) after the retries allowed. Taken by value and
  // signed in place on every attempt: move a large body in (an S3 part) and
  // it is never copied.
  Result<http::Response> Send(http::Request request);
  // Server time estimate (ms) from the last Date header seen.
  int64_t ServerNowMs() const;
  // The Date header of the last response (Unix ms, whole seconds), 0 if it
  // had none: when the server answered.
  int64_t last_response_date_ms() const { return last_date_ms_; }
  void Cancel() { http_->Cancel(); }
  uint64_t requests() const { return requests_; }
  uint64_t retries() const { return retries_; }
  // Of the last failed Send: the service's error type ("ConflictException",
  // "" for a transport failure) and its retry hint (x-amz-retry-after in ms,
  // or Retry-After in seconds), if any.
  const std::string& last_error_type() const { return last_error_type_; }
  std::optional<int64_t> last_retry_after_ms() const { return last_retry_after_ms_; }
  const ServiceConfig& config() const { return config_; }

 private:
  ServiceConfig config_;
  std::shared_ptr<CredentialsProvider> credentials_;
  std::unique_ptr<http::HttpClient> http_;
  int64_t LocalNowMs() const;

  int64_t skew_ms_ = 0;  // server - local
  int64_t last_date_ms_ = 0;
  int quota_ = 500;
  uint64_t requests_ = 0, retries_ = 0;
  std::string last_error_type_;
  std::optional<int64_t> last_retry_after_ms_;
};

class AwsJsonClient {
 public:
  AwsJsonClient(ServiceConfig config, std::shared_ptr<CredentialsProvider> credentials,
                std::unique_ptr<http::HttpClient> http);

  // Calls `operation` with a JSON body; returns the response body.
  Result<std::string> Call(std::string_view operation, const std::string& body);
  // Server time estimate (ms) from the last Date header seen.
  int64_t ServerNowMs() const { return transport_.ServerNowMs(); }
  void Cancel() { transport_.Cancel(); }
  uint64_t requests() const { return transport_.requests(); }
  uint64_t retries() const { return transport_.retries(); }

 private:
  AwsTransport transport_;
};

// rest-json: the operation is the method and path; the body (if any) JSON.
class AwsRestClient {
 public:
  AwsRestClient(ServiceConfig config, std::shared_ptr<CredentialsProvider> credentials,
                std::unique_ptr<http::HttpClient> http);

  // `path_and_query` is already percent-encoded ("/channels/arn%3A...?x=1").
  // `headers` are added (e.g. x-amz-chime-bearer). Returns the response body.
  Result<std::string> Call(std::string_view method, std::string_view path_and_query,
                           const http::Headers& headers, const std::string& body);
  int64_t ServerNowMs() const { return transport_.ServerNowMs(); }
  int64_t last_response_date_ms() const { return transport_.last_response_date_ms(); }
  void Cancel() { transport_.Cancel(); }
  uint64_t requests() const { return transport_.requests(); }
  uint64_t retries() const { return transport_.retries(); }
  const std::string& last_error_type() const { return transport_.last_error_type(); }
  std::optional<int64_t> last_retry_after_ms() const { return transport_.last_retry_after_ms(); }

 private:
  AwsTransport transport_;
};

}  // namespace tidings::aws
