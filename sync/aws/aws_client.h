// AwsJsonClient: one AWS JSON-protocol service (DynamoDB speaks
// awsJson1_0) over an HttpClient: signing, error model and retries.
//
// Errors map to Status codes the reconciler classifies:
//   throttling, 429, 5xx, CRC32 mismatch, transport errors -> Unavailable
//   ConditionalCheckFailedException -> Aborted (lost a race)
//   AccessDenied / Forbidden -> PermissionDenied
//   UnrecognizedClient, InvalidSignature, ExpiredToken... -> Unauthenticated
//   ResourceNotFound -> NotFound; Validation/Serialization -> InvalidArgument
// Retries follow AWS standard mode: at most 3 attempts, full-jitter
// exponential backoff (base 100 ms, cap 20 s), a retry quota (500 tokens, 5
// per retry, 10 per timeout, 1 back per success), x-amz-retry-after honoured.
// A clock-skew rejection corrects the signing clock from the Date header.
//
// Thread safety: one thread at a time.
#pragma once

#include <memory>
#include <string>

#include "sync/aws/credentials.h"
#include "sync/http/http_client.h"

namespace tidings::aws {

struct ServiceConfig {
  std::string signing_name;  // "dynamodb"
  std::string region;
  std::string endpoint;       // scheme://host[:port]
  std::string target_prefix;  // "DynamoDB_20120810"
  std::string content_type = "application/x-amz-json-1.0";
  bool verify_crc32 = true;  // DynamoDB sends x-amz-crc32
  int max_attempts = 3;
};

// Maps a non-2xx response to a Status (exposed for tests and the Chime client).
Status ErrorFromResponse(const http::Response& response, std::string_view service);

class AwsJsonClient {
 public:
  AwsJsonClient(ServiceConfig config, std::shared_ptr<CredentialsProvider> credentials,
                std::unique_ptr<http::HttpClient> http);

  // Calls `operation` with a JSON body; returns the response body.
  Result<std::string> Call(std::string_view operation, const std::string& body);
  // Server time estimate (ms) from the last Date header seen.
  int64_t ServerNowMs() const;
  void Cancel() { http_->Cancel(); }
  uint64_t requests() const { return requests_; }
  uint64_t retries() const { return retries_; }

 private:
  ServiceConfig config_;
  std::shared_ptr<CredentialsProvider> credentials_;
  std::unique_ptr<http::HttpClient> http_;
  int64_t skew_ms_ = 0;  // server - local
  int quota_ = 500;
  uint64_t requests_ = 0, retries_ = 0;
};

}  // namespace tidings::aws
