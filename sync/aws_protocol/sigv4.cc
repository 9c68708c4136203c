#include "sync/aws_protocol/sigv4.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

#include "crypto/hash.h"
#include "crypto/secret_key.h"

namespace tidings::aws {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Trim(std::string_view v) {
  std::string out;
  bool space = false;
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  for (char c : v) {  // sequential spaces collapse to one
    if (c == ' ') {
      if (!space) out.push_back(c);
      space = true;
    } else {
      out.push_back(c);
      space = false;
    }
  }
  return out;
}

std::string Hex(const crypto::Digest256& d) { return crypto::HexEncode(d); }

crypto::Digest256 Hmac(std::span<const uint8_t> key, std::string_view data) {
  return crypto::HmacSha256(key, data);
}

// The request time as SigV4 writes it, and the credential scope it signs for.
struct Stamp {
  std::string amz_date;  // 20261204T171500Z
  std::string date;      // 20261204
  std::string scope;     // date/region/service/aws4_request
};

Stamp StampFor(const SigningParams& params) {
  std::time_t t = static_cast<std::time_t>(params.unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char amz_date[17], date[9];
  std::strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
  std::strftime(date, sizeof(date), "%Y%m%d", &tm);
  return {amz_date, date,
          std::string(date) + "/" + params.region + "/" + params.service + "/aws4_request"};
}

// The derived signing key: HMAC chain over date, region, service.
crypto::Digest256 SigningKey(std::string_view secret_access_key, const std::string& date,
                             const SigningParams& params) {
  std::string secret;
  secret.reserve(4 + secret_access_key.size());  // one buffer, wiped below
  secret.append("AWS4").append(secret_access_key);
  auto k_date = Hmac({reinterpret_cast<const uint8_t*>(secret.data()), secret.size()}, date);
  crypto::Wipe(&secret);
  return Hmac(Hmac(Hmac(k_date, params.region), params.service), "aws4_request");
}

// Splits a URL into path and query (both as on the wire).
void SplitUrl(const std::string& url, std::string* path, std::string* query) {
  size_t scheme = url.find("://");
  size_t start = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (start == std::string::npos) {
    *path = "/";
    query->clear();
    return;
  }
  size_t q = url.find('?', start);
  *path = url.substr(start, q == std::string::npos ? std::string::npos : q - start);
  *query = q == std::string::npos ? "" : url.substr(q + 1);
}

std::string Decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      std::string hex(s.substr(i + 1, 2)), raw;
      if (crypto::HexDecode(hex, &raw)) {
        out += raw;
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

std::string UriEncode(std::string_view s, bool encode_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (c == '/' && !encode_slash)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string UrlHost(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  size_t start = scheme + 3;
  size_t end = url.find_first_of("/?", start);
  std::string host = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  // Default ports are not part of Host.
  if (url.compare(0, 8, "https://") == 0 && host.size() > 4 && host.ends_with(":443")) {
    host.resize(host.size() - 4);
  }
  if (url.compare(0, 7, "http://") == 0 && host.size() > 3 && host.ends_with(":80")) {
    host.resize(host.size() - 3);
  }
  return Lower(host);
}

std::string CanonicalRequest(const http::Request& request, const std::string& signed_headers,
                             bool s3) {
  std::string path, query;
  SplitUrl(request.url, &path, &query);
  // Non-S3 services: the wire path (already encoded once) is encoded again;
  // S3 signs it as sent.
  std::string canonical_uri = s3 ? path : UriEncode(path, /*encode_slash=*/false);
  if (canonical_uri.empty()) canonical_uri = "/";

  std::vector<std::pair<std::string, std::string>> params;
  size_t pos = 0;
  while (pos < query.size()) {
    size_t amp = query.find('&', pos);
    std::string part = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    pos = amp == std::string::npos ? query.size() : amp + 1;
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string k = Decode(part.substr(0, eq));
    std::string v = eq == std::string::npos ? "" : Decode(part.substr(eq + 1));
    params.emplace_back(UriEncode(k, true), UriEncode(v, true));
  }
  std::sort(params.begin(), params.end());
  std::string canonical_query;
  for (const auto& [k, v] : params) {
    if (!canonical_query.empty()) canonical_query += '&';
    canonical_query += k + "=" + v;
  }

  std::map<std::string, std::string> headers;
  for (const auto& [k, v] : request.headers) {
    std::string name = Lower(k);
    std::string value = Trim(v);
    auto it = headers.find(name);
    if (it == headers.end()) {
      headers[name] = value;
    } else {
      it->second += "," + value;
    }
  }
  std::string canonical_headers;
  size_t start = 0;
  while (start <= signed_headers.size()) {
    size_t semi = signed_headers.find(';', start);
    std::string name =
        signed_headers.substr(start, semi == std::string::npos ? std::string::npos : semi - start);
    canonical_headers += name + ":" + headers[name] + "\n";
    if (semi == std::string::npos) break;
    start = semi + 1;
  }
  // The caller's payload hash when it sent one (S3 requires the header; a
  // 16 MiB part is then hashed once, not again on every retry).
  auto payload = headers.find("x-amz-content-sha256");
  return request.method + "\n" + canonical_uri + "\n" + canonical_query + "\n" + canonical_headers +
         "\n" + signed_headers + "\n" +
         (payload != headers.end() ? payload->second : crypto::Sha256Hex(request.body));
}

Status SignRequest(http::Request* request, const Credentials& credentials,
                   const SigningParams& params) {
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return Unauthenticated(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
        "a profile, or a credentials callback");
  }
  const std::string host = UrlHost(request->url);
  if (host.empty()) return InvalidArgument("malformed endpoint URL: " + request->url);
  if (request->body_reader) {  // a body read as it is sent: its hash comes with it
    bool hashed = false;
    for (const auto& [name, value] : request->headers) hashed |= name == "x-amz-content-sha256";
    if (!hashed) return InvalidArgument("a streamed request body needs its x-amz-content-sha256");
  }
  const Stamp stamp = StampFor(params);
  const std::string& amz_date = stamp.amz_date;

  auto& h = request->headers;
  h.erase(std::remove_if(h.begin(), h.end(),
                         [](const auto& kv) {
                           std::string n = Lower(kv.first);
                           return n == "authorization" || n == "x-amz-date" || n == "host" ||
                                  n == "x-amz-security-token";
                         }),
          h.end());
  h.emplace_back("host", host);
  h.emplace_back("x-amz-date", amz_date);
  if (!credentials.session_token.empty())
    h.emplace_back("x-amz-security-token", std::string(credentials.session_token.view()));

  std::vector<std::string> names;
  for (const auto& [k, v] : h) {
    std::string n = Lower(k);
    if (n == "content-type" || n == "content-md5" || n == "range" || n == "if-match" ||
        n == "if-none-match" || n == "host" || n.rfind("x-amz-", 0) == 0) {
      names.push_back(n);
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string signed_headers;
  for (const auto& n : names) signed_headers += (signed_headers.empty() ? "" : ";") + n;

  const std::string& scope = stamp.scope;
  const std::string to_sign =
      std::string("AWS4-HMAC-SHA256\n") + amz_date + "\n" + scope + "\n" +
      crypto::Sha256Hex(CanonicalRequest(*request, signed_headers, params.service == "s3"));
  const std::string signature =
      Hex(Hmac(SigningKey(credentials.secret_access_key.view(), stamp.date, params), to_sign));
  h.emplace_back("authorization", "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" +
                                      scope + ", SignedHeaders=" + signed_headers +
                                      ", Signature=" + signature);
  return Status::Ok();
}

Result<std::string> PresignUrl(const std::string& method, const std::string& url,
                               const Credentials& credentials, const SigningParams& params,
                               int expires_seconds) {
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return Unauthenticated("no AWS credentials to presign with");
  }
  const std::string host = UrlHost(url);
  if (host.empty()) return InvalidArgument("malformed URL: " + url);
  if (expires_seconds < 1 || expires_seconds > 604800) {
    return InvalidArgument("a presigned URL expires within 1 s to 7 days");
  }
  const Stamp stamp = StampFor(params);
  const std::string& amz_date = stamp.amz_date;
  const std::string& scope = stamp.scope;
  std::string query =
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" +
      UriEncode(credentials.access_key_id + "/" + scope, true) + "&X-Amz-Date=" + amz_date +
      "&X-Amz-Expires=" + std::to_string(expires_seconds) + "&X-Amz-SignedHeaders=host";
  if (!credentials.session_token.empty()) {
    query +=
        "&X-Amz-Security-Token=" + UriEncode(std::string(credentials.session_token.view()), true);
  }
  std::string full = url + (url.find('?') == std::string::npos ? "?" : "&") + query;
  http::Request r;
  r.method = method;
  r.url = full;
  r.headers = {{"host", host}};
  const std::string to_sign = std::string("AWS4-HMAC-SHA256\n") + amz_date + "\n" + scope + "\n" +
                              crypto::Sha256Hex(CanonicalRequest(r, "host"));
  return full + "&X-Amz-Signature=" +
         Hex(Hmac(SigningKey(credentials.secret_access_key.view(), stamp.date, params), to_sign));
}

}  // namespace tidings::aws
