#include "emulator/chime/auth.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <vector>

#include "crypto/hash.h"
#include "sync/aws_protocol/sigv4.h"

namespace chime_local {
namespace {

constexpr int64_t kMaxSkewSeconds = 15 * 60;

std::string Header(const tidings::http::Request& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        })) {
      return v;
    }
  }
  return "";
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t pos; (pos = s.find(sep, start)) != std::string::npos; start = pos + 1)
    out.push_back(s.substr(start, pos - start));
  out.push_back(s.substr(start));
  return out;
}

// The codes AWS's front end answers for any service, Chime SDK Messaging
// included (not in the service model): all 403.
AuthError InvalidSignature(std::string message) {
  return {403, "InvalidSignatureException", std::move(message)};
}

bool ConstantTimeEqual(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

std::optional<AuthError> VerifySigV4(const AuthConfig& config,
                                     const tidings::http::Request& request, int64_t now_seconds) {
  const std::string auth = Header(request, "authorization");
  if (auth.empty()) {
    return AuthError{403, "MissingAuthenticationTokenException",
                     "Missing Authentication Token: sign requests with AWS SigV4"};
  }
  const std::string kAlgorithm = "AWS4-HMAC-SHA256 ";
  if (auth.compare(0, kAlgorithm.size(), kAlgorithm) != 0) {
    return InvalidSignature("only AWS4-HMAC-SHA256 signatures are accepted");
  }
  std::string credential, signed_headers, signature;
  for (std::string part : Split(auth.substr(kAlgorithm.size()), ',')) {
    part.erase(0, part.find_first_not_of(' '));
    size_t eq = part.find('=');
    std::string key = part.substr(0, eq),
                value = eq == std::string::npos ? "" : part.substr(eq + 1);
    if (key == "Credential") credential = value;
    if (key == "SignedHeaders") signed_headers = value;
    if (key == "Signature") signature = value;
  }
  auto scope = Split(credential, '/');
  if (scope.size() != 5 || signed_headers.empty() || signature.empty() ||
      scope[4] != "aws4_request") {
    return AuthError{403, "IncompleteSignatureException",
                     "malformed Authorization header: Credential, SignedHeaders, Signature"};
  }
  if (scope[0] != config.access_key) {
    return AuthError{403, "UnrecognizedClientException",
                     "The security token included in the request is invalid (unknown access key "
                     "id; use the emulator's --access-key)"};
  }
  if (scope[2] != config.region || scope[3] != config.service) {
    return InvalidSignature("credential scope " + scope[2] + "/" + scope[3] + " does not match " +
                            config.region + "/" + config.service);
  }
  auto names = Split(signed_headers, ';');
  if (std::find(names.begin(), names.end(), "host") == names.end()) {
    return InvalidSignature("SignedHeaders must include host");
  }
  const std::string amz_date = Header(request, "x-amz-date");
  std::tm tm{};
  const char* end =
      amz_date.size() == 16 ? strptime(amz_date.c_str(), "%Y%m%dT%H%M%SZ", &tm) : nullptr;
  if (end == nullptr || *end != '\0') {
    return InvalidSignature("missing or malformed X-Amz-Date (YYYYMMDDTHHMMSSZ)");
  }
  if (amz_date.compare(0, 8, scope[1]) != 0) {
    return InvalidSignature("the credential scope date does not match X-Amz-Date");
  }
  const int64_t at = static_cast<int64_t>(timegm(&tm));
  if (at < now_seconds - kMaxSkewSeconds || at > now_seconds + kMaxSkewSeconds) {
    return InvalidSignature("signature expired: X-Amz-Date " + amz_date +
                            " is more than 15 minutes from the server's time; check the clock");
  }
  const std::string payload_hash = tidings::crypto::Sha256Hex(request.body);
  const std::string claimed = Header(request, "x-amz-content-sha256");
  if (!claimed.empty() && claimed != payload_hash) {
    return AuthError{400, "BadRequestException",
                     "x-amz-content-sha256 does not match the SHA-256 of the body"};
  }
  const std::string to_sign =
      kAlgorithm.substr(0, kAlgorithm.size() - 1) + "\n" + amz_date + "\n" + scope[1] + "/" +
      scope[2] + "/" + scope[3] + "/aws4_request\n" +
      tidings::crypto::Sha256Hex(tidings::aws::CanonicalRequest(request, signed_headers));
  std::string secret = "AWS4" + config.secret_key;
  auto key = tidings::crypto::HmacSha256(
      {reinterpret_cast<const uint8_t*>(secret.data()), secret.size()}, scope[1]);
  for (const std::string& s : {scope[2], scope[3], std::string("aws4_request")})
    key = tidings::crypto::HmacSha256(key, s);
  std::fill(secret.begin(), secret.end(), '\0');
  const std::string expected =
      tidings::crypto::HexEncode(tidings::crypto::HmacSha256(key, to_sign));
  if (!ConstantTimeEqual(expected, signature)) {
    return InvalidSignature(
        "The request signature we calculated does not match the signature you provided. Check "
        "your AWS Secret Access Key and signing method.");
  }
  return std::nullopt;
}

}  // namespace chime_local
