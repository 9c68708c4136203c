// AWS Signature Version 4 (header authentication), with libsodium's SHA-256
// and HMAC through crypto/hash.h. The rules that bite are handled here: the
// path is percent-encoded once on the wire and again in the canonical
// request; the query is sorted and encoded; Host carries a non-default port;
// the payload hash is of the exact body bytes.
//
// S3 (signing name "s3") differs in two ways, as botocore's S3SigV4Auth does:
// the canonical URI is the wire path as is (encoded once, not normalised),
// and the payload hash is the x-amz-content-sha256 header the caller sets
// (any service: a request carrying that header is signed with its value).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "crypto/secret_key.h"
#include "sync/http/message.h"

namespace tidings::aws {

// Copied per request: the secrets are shared, locked and wiped, never
// duplicated by a copy.
struct Credentials {
  std::string access_key_id;
  crypto::SharedSecret secret_access_key;  // never logged
  crypto::SharedSecret session_token;      // empty unless temporary credentials
  int64_t expires_at_ms = 0;               // 0: does not expire
};

struct SigningParams {
  std::string region;
  std::string service;  // signing name: "dynamodb", "chime", "s3"
  int64_t unix_seconds = 0;
};

// Adds host, x-amz-date, x-amz-security-token (if any) and authorization
// headers to `request`. Signs host, content-type, content-md5, range,
// if-match, if-none-match and every x-amz-* header present.
// InvalidArgument for a malformed URL or missing keys.
Status SignRequest(http::Request* request, const Credentials& credentials,
                   const SigningParams& params);

// A presigned URL (query-string auth) for `method` on `url`, valid for
// `expires_seconds` (the Chime messaging WebSocket connects with one). Only
// host is signed; the payload hash is of the empty body.
Result<std::string> PresignUrl(const std::string& method, const std::string& url,
                               const Credentials& credentials, const SigningParams& params,
                               int expires_seconds);

// Exposed for tests and the emulator's verifier. `s3`: the S3 rules above
// for the canonical URI.
std::string CanonicalRequest(const http::Request& request, const std::string& signed_headers,
                             bool s3 = false);
std::string UriEncode(std::string_view s, bool encode_slash);
// "host[:port]" of a URL, "" if malformed.
std::string UrlHost(const std::string& url);

}  // namespace tidings::aws
