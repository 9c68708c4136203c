// SigV4 verification for tidings-chime-local: the canonical request is
// rebuilt with the client's own code (tidings::aws::CanonicalRequest), so
// the emulator checks exactly what AWS checks: scope, date, skew, payload
// hash and the signature (compared in constant time).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "sync/http/message.h"

namespace chime_local {

struct AuthConfig {
  std::string access_key, secret_key, region, service = "chime";
};

struct AuthError {
  // 403 (400 for a payload hash mismatch), with the codes AWS's front end
  // uses for every service: InvalidSignatureException (wrong signature,
  // expired, wrong scope), UnrecognizedClientException (unknown access key),
  // MissingAuthenticationTokenException (unsigned),
  // IncompleteSignatureException (malformed Authorization). Clients treat
  // them as bad credentials, not as a permission refused on a channel.
  int status;
  std::string code;
  std::string message;
};

// X-Amz-Date `amz_date` (= `signed_at`, epoch seconds) more than 15 minutes
// from now: 403 InvalidSignatureException worded as AWS words it
// ("Signature expired: 20261204T000000Z is now earlier than 20261204T000500Z
// (20261204T002000Z - 15 min.)", or "Signature not yet current: ...").
std::optional<AuthError> SkewError(const std::string& amz_date, int64_t signed_at,
                                   int64_t now_seconds);

// Decodes %XX escapes (the query and path of a request target); false for
// a malformed escape.
bool PercentDecode(std::string_view s, std::string* out);

// `request.url` is "http://HOST" + the raw request target (path still
// percent-encoded). nullopt: the signature is valid.
std::optional<AuthError> VerifySigV4(const AuthConfig& config,
                                     const tidings::http::Request& request, int64_t now_seconds);

// A query-presigned request (the messaging WebSocket's `GET /connect`):
// X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders/Signature in the
// query instead of an Authorization header; refused once X-Amz-Date +
// X-Amz-Expires has passed. `request.url` as above, with the host header.
// Fills `params` with the decoded query (the X-Amz-Signature left out).
std::optional<AuthError> VerifyPresigned(const AuthConfig& config,
                                         const tidings::http::Request& request, int64_t now_seconds,
                                         std::map<std::string, std::string>* params);

}  // namespace chime_local
