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

std::string AmzDate(int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

bool PercentDecode(std::string_view s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out->push_back(s[i]);
      continue;
    }
    std::string raw;
    if (i + 2 >= s.size() || !tidings::crypto::HexDecode(s.substr(i + 1, 2), &raw)) return false;
    *out += raw;
    i += 2;
  }
  return true;
}

// AWS's words, which clients (Tidings' AWS client, the SDKs) match to
// correct their clock from the response's Date header.
std::optional<AuthError> SkewError(const std::string& amz_date, int64_t signed_at,
                                   int64_t now_seconds) {
  if (signed_at < now_seconds - kMaxSkewSeconds) {
    return InvalidSignature("Signature expired: " + amz_date + " is now earlier than " +
                            AmzDate(now_seconds - kMaxSkewSeconds) + " (" + AmzDate(now_seconds) +
                            " - 15 min.)");
  }
  if (signed_at > now_seconds + kMaxSkewSeconds) {
    return InvalidSignature("Signature not yet current: " + amz_date + " is still later than " +
                            AmzDate(now_seconds + kMaxSkewSeconds) + " (" + AmzDate(now_seconds) +
                            " + 15 min.)");
  }
  return std::nullopt;
}

namespace {

bool ConstantTimeEqual(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

namespace {

// What both forms of SigV4 carry: the header's or the query's fields.
struct Signed {
  std::string credential, signed_headers, signature, amz_date;
  int64_t expires = -1;  // X-Amz-Expires of a presigned URL; -1: header auth
};

std::optional<AuthError> Check(const AuthConfig& config, const tidings::http::Request& request,
                               const Signed& in, int64_t now_seconds) {
  auto scope = Split(in.credential, '/');
  if (scope.size() != 5 || in.signed_headers.empty() || in.signature.empty() ||
      scope[4] != "aws4_request") {
    return AuthError{403, "IncompleteSignatureException",
                     in.expires < 0
                         ? "malformed Authorization header: Credential, SignedHeaders, Signature"
                         : "malformed presigned URL: X-Amz-Credential, X-Amz-SignedHeaders, "
                           "X-Amz-Signature"};
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
  auto names = Split(in.signed_headers, ';');
  if (std::find(names.begin(), names.end(), "host") == names.end()) {
    return InvalidSignature("SignedHeaders must include host");
  }
  std::tm tm{};
  const char* end =
      in.amz_date.size() == 16 ? strptime(in.amz_date.c_str(), "%Y%m%dT%H%M%SZ", &tm) : nullptr;
  if (end == nullptr || *end != '\0') {
    return InvalidSignature("missing or malformed X-Amz-Date (YYYYMMDDTHHMMSSZ)");
  }
  if (in.amz_date.compare(0, 8, scope[1]) != 0) {
    return InvalidSignature("the credential scope date does not match X-Amz-Date");
  }
  const int64_t at = static_cast<int64_t>(timegm(&tm));
  if (in.expires >= 0 && now_seconds > at + in.expires) {
    return InvalidSignature("Signature expired: the presigned URL signed at " + in.amz_date +
                            " for " + std::to_string(in.expires) + " s expired at " +
                            AmzDate(at + in.expires) + "; it is now " + AmzDate(now_seconds));
  }
  // A presigned URL may be used until it expires, even past 15 minutes.
  if (auto skew = SkewError(in.amz_date, at, now_seconds);
      skew && (in.expires < 0 || at > now_seconds)) {
    return skew;
  }
  if (in.expires < 0) {
    const std::string claimed = Header(request, "x-amz-content-sha256");
    if (!claimed.empty() && claimed != tidings::crypto::Sha256Hex(request.body)) {
      return AuthError{400, "BadRequestException",
                       "x-amz-content-sha256 does not match the SHA-256 of the body"};
    }
  }
  const std::string to_sign =
      "AWS4-HMAC-SHA256\n" + in.amz_date + "\n" + scope[1] + "/" + scope[2] + "/" + scope[3] +
      "/aws4_request\n" +
      tidings::crypto::Sha256Hex(tidings::aws::CanonicalRequest(request, in.signed_headers));
  std::string secret = "AWS4" + config.secret_key;
  auto key = tidings::crypto::HmacSha256(
      {reinterpret_cast<const uint8_t*>(secret.data()), secret.size()}, scope[1]);
  for (const std::string& s : {scope[2], scope[3], std::string("aws4_request")})
    key = tidings::crypto::HmacSha256(key, s);
  std::fill(secret.begin(), secret.end(), '\0');
  const std::string expected =
      tidings::crypto::HexEncode(tidings::crypto::HmacSha256(key, to_sign));
  if (!ConstantTimeEqual(expected, in.signature)) {
    return InvalidSignature(
        "The request signature we calculated does not match the signature you provided. Check "
        "your AWS Secret Access Key and signing method.");
  }
  return std::nullopt;
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
  Signed in;
  for (std::string part : Split(auth.substr(kAlgorithm.size()), ',')) {
    part.erase(0, part.find_first_not_of(' '));
    size_t eq = part.find('=');
    std::string key = part.substr(0, eq),
                value = eq == std::string::npos ? "" : part.substr(eq + 1);
    if (key == "Credential") in.credential = value;
    if (key == "SignedHeaders") in.signed_headers = value;
    if (key == "Signature") in.signature = value;
  }
  in.amz_date = Header(request, "x-amz-date");
  return Check(config, request, in, now_seconds);
}

std::optional<AuthError> VerifyPresigned(const AuthConfig& config,
                                         const tidings::http::Request& request, int64_t now_seconds,
                                         std::map<std::string, std::string>* params) {
  const size_t q = request.url.find('?');
  std::string kept;  // the query without X-Amz-Signature: what was signed
  Signed in;
  params->clear();
  if (q != std::string::npos) {
    for (const std::string& part : Split(request.url.substr(q + 1), '&')) {
      if (part.empty()) continue;
      const size_t eq = part.find('=');
      std::string k, v;
      if (!PercentDecode(part.substr(0, eq), &k) ||
          !PercentDecode(eq == std::string::npos ? "" : part.substr(eq + 1), &v)) {
        return AuthError{403, "IncompleteSignatureException",
                         "malformed percent-encoding in the presigned URL"};
      }
      if (k == "X-Amz-Signature") {
        in.signature = v;
        continue;
      }
      kept += (kept.empty() ? "" : "&") + part;
      if (k == "X-Amz-Credential") in.credential = v;
      if (k == "X-Amz-SignedHeaders") in.signed_headers = v;
      if (k == "X-Amz-Date") in.amz_date = v;
      if (k == "X-Amz-Algorithm" && v != "AWS4-HMAC-SHA256") {
        return InvalidSignature("only AWS4-HMAC-SHA256 signatures are accepted");
      }
      if (k == "X-Amz-Expires") {
        in.expires = 0;
        for (char c : v) in.expires = (c >= '0' && c <= '9') ? in.expires * 10 + (c - '0') : -2;
        if (v.empty() || v.size() > 6 || in.expires < 1 || in.expires > 604800) {
          return AuthError{403, "IncompleteSignatureException",
                           "X-Amz-Expires must be 1 to 604800 seconds"};
        }
      }
      (*params)[k] = v;
    }
  }
  if (in.signature.empty() && in.credential.empty()) {
    return AuthError{403, "MissingAuthenticationTokenException",
                     "Missing Authentication Token: presign the URL with AWS SigV4"};
  }
  if (in.expires < 0) {
    return AuthError{403, "IncompleteSignatureException", "a presigned URL needs X-Amz-Expires"};
  }
  tidings::http::Request signed_part = request;
  signed_part.url = request.url.substr(0, q) + (kept.empty() ? "" : "?" + kept);
  signed_part.body.clear();
  return Check(config, signed_part, in, now_seconds);
}

}  // namespace chime_local
