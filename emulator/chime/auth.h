// SigV4 verification for tidings-chime-local: the canonical request is
// rebuilt with the client's own code (tidings::aws::CanonicalRequest), so
// the emulator checks exactly what AWS checks: scope, date, skew, payload
// hash and the signature (compared in constant time).
#pragma once

#include <cstdint>
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

// `request.url` is "http://HOST" + the raw request target (path still
// percent-encoded). nullopt: the signature is valid.
std::optional<AuthError> VerifySigV4(const AuthConfig& config,
                                     const tidings::http::Request& request, int64_t now_seconds);

}  // namespace chime_local
