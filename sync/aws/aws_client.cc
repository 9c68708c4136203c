#include "sync/aws/aws_client.h"

#include <zlib.h>

#include <cctype>
#include <chrono>
#include <ctime>
#include <random>
#include <thread>

#include "common/clock.h"
#include "crypto/secret_key.h"
#include "sync/aws/json.h"

namespace tidings::aws {
namespace {

// "Tue, 24 Nov 2026 14:03:05 GMT" -> Unix ms, 0 if unparsable.
int64_t ParseHttpDate(const std::string& s) {
  std::tm tm{};
  if (strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm) == nullptr) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

bool Contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "20261204T001000Z" -> Unix ms, 0 if it is not one.
int64_t ParseAmzDate(std::string_view s) {
  if (s.size() < 16) return 0;
  std::string text(s.substr(0, 16));
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y%m%dT%H%M%SZ", &tm);
  if (end == nullptr || *end != '\0') return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

}  // namespace

bool IsClockSkewError(std::string_view type, std::string_view message) {
  const std::string t = Lower(type), m = Lower(message);
  if (Contains(t, "requesttimetooskewed")) return true;
  for (std::string_view words : {"signature expired", "signature not yet current",
                                 "request time too skewed", "too skewed", "clock skew"}) {
    if (Contains(m, words)) return true;
  }
  // InvalidSignatureException "... expired ..." is about the request time;
  // an expired token has its own types (ExpiredToken...).
  return Contains(t, "invalidsignature") && Contains(m, "expired");
}

int64_t ServerTimeFromSkewMessage(std::string_view message) {
  size_t open = message.find('(');
  if (open == std::string_view::npos) return 0;
  return ParseAmzDate(message.substr(open + 1));
}

Status ErrorFromResponse(const http::Response& r, std::string_view service,
                         const ErrorBodyParser& parse) {
  AwsErrorBody e;
  std::string header = r.Header("x-amzn-errortype");
  bool json = parse ? parse(r.body, &e) : ParseErrorJson(r.body, &e);
  if (!header.empty()) e.type = header.substr(0, header.find(':'));
  if (!json && e.type.empty()) {
    // XML auth errors (<Code>...</Code>) or an HTML page from a proxy.
    auto open = r.body.find("<Code>"), close = r.body.find("</Code>");
    if (open != std::string::npos && close != std::string::npos && close > open) {
      e.type = r.body.substr(open + 6, close - open - 6);
    }
  }
  std::string what = std::string(service) + " returned HTTP " + std::to_string(r.status);
  if (!e.type.empty()) what += " " + e.type;
  if (!e.message.empty()) what += ": " + e.message.substr(0, 300);
  if (e.type.empty() && !json && r.body.empty()) {
    what += " with no body";  // a HEAD, or a proxy
  } else if (e.type.empty() && !json) {
    what += " with an unexpected body (" +
            (r.Header("content-type").empty() ? std::string("no content type")
                                              : r.Header("content-type")) +
            ")";
  }
  const std::string& t = e.type;
  if (r.status == 429 || Contains(t, "Throttl") || t == "ProvisionedThroughputExceededException" ||
      t == "RequestLimitExceeded" || t == "TooManyRequestsException" ||
      t == "LimitExceededException" || t == "SlowDown") {
    return Unavailable(what + "; retrying later");
  }
  // S3: the body did not arrive as sent (its SHA-256 or MD5 differs), or the
  // connection idled: send it again.
  if (t == "XAmzContentSHA256Mismatch" || t == "BadDigest" || t == "RequestTimeout" ||
      t == "IncompleteBody") {
    return Unavailable(what + "; retrying");
  }
  if (t == "ConditionalCheckFailedException" || t == "TransactionConflictException") {
    return Aborted(what);
  }
  if (t == "UnrecognizedClientException" || t == "InvalidSignatureException" ||
      t == "SignatureDoesNotMatch" || Contains(t, "ExpiredToken") || t == "InvalidClientTokenId" ||
      t == "MissingAuthenticationToken" || t == "IncompleteSignature" ||
      t == "MissingAuthenticationTokenException" || t == "UnauthorizedException" ||
      t == "InvalidAccessKeyId" || t == "InvalidToken" || t == "TokenRefreshRequired" ||
      r.status == 401) {
    return Unauthenticated(what + "; check the AWS credentials");
  }
  if (t == "RequestTimeTooSkewed") {  // the skew recovery found no server time
    return Unauthenticated(what + "; check this device's clock");
  }
  if (Contains(t, "AccessDenied") || t == "ForbiddenException" || r.status == 403) {
    const std::string doc =
        service == "chime" || service == "s3" ? std::string(service) : std::string("dynamodb");
    return PermissionDenied(what + "; the credentials lack a permission (see docs/" + doc + ".md)");
  }
  if (t == "ResourceNotFoundException" || t == "NotFoundException" || r.status == 404) {
    return NotFound(what);
  }
  if (t == "BucketAlreadyOwnedByYou" || t == "BucketAlreadyExists") return AlreadyExists(what);
  if (r.status >= 500) return Unavailable(what + "; retrying later");
  if (t == "ValidationException" || t == "SerializationException" || t == "BadRequestException" ||
      t == "EntityTooSmall" || t == "EntityTooLarge" || t == "InvalidPart" ||
      t == "InvalidPartOrder" || t == "InvalidRange" || t == "InvalidArgument" ||
      t == "InvalidRequest" || t == "MalformedXML" || t == "InvalidBucketName" ||
      t == "KeyTooLongError" || r.status == 416) {
    return InvalidArgument(what);
  }
  return FailedPrecondition(what);
}

AwsTransport::AwsTransport(ServiceConfig config, std::shared_ptr<CredentialsProvider> credentials,
                           std::unique_ptr<http::HttpClient> http)
    : config_(std::move(config)), credentials_(std::move(credentials)), http_(std::move(http)) {}

int64_t AwsTransport::LocalNowMs() const {
  return config_.wall_clock_ms ? config_.wall_clock_ms() : WallMs();
}

int64_t AwsTransport::ServerNowMs() const { return LocalNowMs() + skew_ms_; }

Result<http::Response> AwsTransport::Send(http::Request req) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  bool skew_retried = false;
  Status last;
  last_error_type_.clear();
  last_retry_after_ms_.reset();
  last_date_ms_ = 0;
  // Nothing signed ever goes out in the clear beyond this machine.
  TIDINGS_RETURN_IF_ERROR(CheckEndpoint(req.url));
  for (int attempt = 0; attempt < config_.max_attempts; ++attempt) {
    TIDINGS_ASSIGN_OR_RETURN(Credentials creds, credentials_->Get());
    // SignRequest replaces the headers it added on the previous attempt.
    TIDINGS_RETURN_IF_ERROR(
        SignRequest(&req, creds, {config_.region, config_.signing_name, ServerNowMs() / 1000}));
    ++requests_;
    auto resp = http_->Send(req);
    for (auto& [name, value] : req.headers) {
      if (name == "x-amz-security-token") crypto::Wipe(&value);  // a session token
    }
    int64_t retry_after = -1;
    int cost = 5;
    last_error_type_.clear();
    if (!resp.ok()) {
      last = resp.status();
      if (last.code() == Code::kCancelled) return last;
      if (last.code() == Code::kDeadlineExceeded) cost = 10;
    } else {
      last_date_ms_ = ParseHttpDate(resp->Header("date"));
      if (int64_t server = last_date_ms_; server != 0) {
        // Only trust large differences: the header has one-second resolution.
        int64_t diff = server - LocalNowMs();
        if (diff > 60'000 || diff < -60'000) skew_ms_ = diff;
      }
      if (resp->status >= 200 && resp->status < 300) {
        std::string crc = resp->Header("x-amz-crc32");
        if (config_.verify_crc32 && !crc.empty()) {
          uLong actual = crc32(0L, reinterpret_cast<const Bytef*>(resp->body.data()),
                               static_cast<uInt>(resp->body.size()));
          if (std::to_string(actual) != crc) {
            last = Unavailable(config_.signing_name +
                               " response failed its CRC32 check (corrupted "
                               "in transit)");
            continue;
          }
        }
        quota_ = std::min(500, quota_ + 1);
        last_retry_after_ms_.reset();
        return std::move(*resp);
      }
      last = ErrorFromResponse(*resp, config_.signing_name, config_.parse_error_body);
      AwsErrorBody e;
      if (config_.parse_error_body) {
        config_.parse_error_body(resp->body, &e);
      } else {
        ParseErrorJson(resp->body, &e);
      }
      if (std::string header = resp->Header("x-amzn-errortype"); !header.empty()) {
        e.type = header.substr(0, header.find(':'));
      }
      last_error_type_ = e.type;
      if (!skew_retried && IsClockSkewError(e.type, e.message)) {
        // AWS's message names the server's time to the second; the Date
        // header does too (a proxy may drop it).
        int64_t server = ServerTimeFromSkewMessage(e.message);
        if (server == 0) server = ParseHttpDate(resp->Header("date"));
        if (server != 0) {
          skew_ms_ = server - LocalNowMs();
          skew_retried = true;
          --attempt;
          continue;
        }
      }
      if (std::string ra = resp->Header("x-amz-retry-after"); !ra.empty()) {
        retry_after = std::atoll(ra.c_str());
      } else if (std::string secs = resp->Header("retry-after");
                 !secs.empty() && std::isdigit(static_cast<unsigned char>(secs[0]))) {
        retry_after = std::atoll(secs.c_str()) * 1000;
      }
      if (retry_after >= 0) last_retry_after_ms_ = retry_after;
    }
    if (!last.IsRetryable() || last.code() == Code::kAborted) return last;
    if (attempt + 1 >= config_.max_attempts || quota_ < cost) return last;
    quota_ -= cost;
    ++retries_;
    int64_t cap = std::min<int64_t>(20'000, int64_t{100} << attempt);
    int64_t wait = std::uniform_int_distribution<int64_t>(0, cap)(rng);
    if (retry_after >= 0) wait = std::max(wait, retry_after);
    std::this_thread::sleep_for(std::chrono::milliseconds(wait));
  }
  return last;
}

AwsJsonClient::AwsJsonClient(ServiceConfig config, std::shared_ptr<CredentialsProvider> credentials,
                             std::unique_ptr<http::HttpClient> http)
    : transport_(std::move(config), std::move(credentials), std::move(http)) {}

Result<std::string> AwsJsonClient::Call(std::string_view operation, const std::string& body) {
  const ServiceConfig& config = transport_.config();
  http::Request req;
  req.method = "POST";
  req.url = config.endpoint + "/";
  req.headers = {{"content-type", config.content_type},
                 {"x-amz-target", config.target_prefix + "." + std::string(operation)}};
  req.body = body;
  TIDINGS_ASSIGN_OR_RETURN(http::Response resp, transport_.Send(std::move(req)));
  return std::move(resp.body);
}

AwsRestClient::AwsRestClient(ServiceConfig config, std::shared_ptr<CredentialsProvider> credentials,
                             std::unique_ptr<http::HttpClient> http)
    : transport_(std::move(config), std::move(credentials), std::move(http)) {}

Result<std::string> AwsRestClient::Call(std::string_view method, std::string_view path_and_query,
                                        const http::Headers& headers, const std::string& body) {
  http::Request req;
  req.method = std::string(method);
  req.url = transport_.config().endpoint + std::string(path_and_query);
  req.headers = headers;
  if (!body.empty()) req.headers.emplace_back("content-type", "application/json");
  req.body = body;
  TIDINGS_ASSIGN_OR_RETURN(http::Response resp, transport_.Send(std::move(req)));
  return std::move(resp.body);
}

}  // namespace tidings::aws
