#include "sync/s3/s3_client.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "crypto/hash.h"
#include "sync/aws_protocol/sigv4.h"
#include "sync/s3/s3_xml.h"

namespace tidings::s3 {
namespace {

constexpr std::string_view kService = "s3";
// A streamed part is hashed in pieces of this size.
constexpr uint64_t kStreamPieceBytes = 256 << 10;

// "host[:port]" -> host; "[::1]:9000" -> "[::1]".
std::string_view HostOnly(std::string_view authority) {
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  if (!authority.empty() && authority.front() == '[') {
    return authority.substr(0, authority.find(']') + 1);
  }
  return authority.substr(0, authority.find(':'));
}

// Splits scheme://authority/path into its three parts (path may be "").
void SplitEndpoint(std::string_view endpoint, std::string_view* scheme, std::string_view* authority,
                   std::string_view* path) {
  size_t sep = endpoint.find("://");
  size_t start = sep == std::string_view::npos ? 0 : sep + 3;
  *scheme = endpoint.substr(0, start);
  size_t slash = endpoint.find('/', start);
  *authority =
      endpoint.substr(start, slash == std::string_view::npos ? endpoint.npos : slash - start);
  *path = slash == std::string_view::npos ? std::string_view() : endpoint.substr(slash);
}

bool IsIpOrLocalhost(std::string_view host) {
  if (!host.empty() && host.front() == '[') return true;  // IPv6 literal
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "localhost") return true;
  return !lower.empty() && lower.find_first_not_of("0123456789.") == std::string::npos;
}

// A bucket name that can be the first label of a host name under a
// wildcard TLS certificate: no dots, no capitals or underscores.
bool IsDnsLabel(std::string_view bucket) {
  if (bucket.size() < 3 || bucket.size() > 63) return false;
  for (char c : bucket) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return bucket.front() != '-' && bucket.back() != '-';
}

std::string Shown(std::string_view bucket, std::string_view key) {
  std::string s = "s3://" + std::string(bucket.substr(0, 64));
  if (!key.empty()) {
    s += "/" + std::string(key.substr(0, 200));
    if (key.size() > 200) s += "...";
  }
  return s;
}

bool ParseU64(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// Content-Range "bytes 0-99/1234" -> first, last, total.
bool ParseContentRange(std::string_view v, uint64_t* first, uint64_t* last, uint64_t* total) {
  constexpr std::string_view kBytes = "bytes ";
  if (!v.starts_with(kBytes)) return false;
  v.remove_prefix(kBytes.size());
  size_t dash = v.find('-'), slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash) {
    return false;
  }
  return ParseU64(v.substr(0, dash), first) &&
         ParseU64(v.substr(dash + 1, slash - dash - 1), last) &&
         ParseU64(v.substr(slash + 1), total) && *first <= *last && *last < *total;
}

Status CheckPartNumber(int part_number) {
  if (part_number < 1 || part_number > kMaxPartNumber) {
    return InvalidArgument("S3 part numbers are 1.." + std::to_string(kMaxPartNumber) + ", not " +
                           std::to_string(part_number));
  }
  return Status::Ok();
}

// The ETag of an UploadPart's answer.
Result<std::string> PartEtag(const http::Response& resp, const std::string& context,
                             int part_number) {
  std::string etag = resp.Header("etag");
  if (etag.empty()) {
    return FailedPrecondition(context + ": the response to part " + std::to_string(part_number) +
                              " has no ETag; is the endpoint S3?");
  }
  return etag;
}

Status CheckPageSize(int page_size) {
  if (page_size < 1 || page_size > 1000) {
    return InvalidArgument("an S3 listing page holds 1..1000 entries, not " +
                           std::to_string(page_size));
  }
  return Status::Ok();
}

}  // namespace

std::string ResolveS3Endpoint(const std::string& configured, const std::string& region) {
  std::string endpoint = aws::ResolveEndpoint(configured, "S3", "s3", region);
  while (endpoint.size() > 1 && endpoint.back() == '/') endpoint.pop_back();
  return endpoint;
}

bool UsePathStyle(Addressing addressing, std::string_view endpoint, std::string_view bucket) {
  if (addressing != Addressing::kAuto) return addressing == Addressing::kPath;
  std::string_view scheme, authority, path;
  SplitEndpoint(endpoint, &scheme, &authority, &path);
  return IsIpOrLocalhost(HostOnly(authority)) || !IsDnsLabel(bucket);
}

std::string ObjectUrl(std::string_view endpoint, bool path_style, std::string_view bucket,
                      std::string_view key, std::string_view query) {
  while (endpoint.size() > 1 && endpoint.back() == '/') endpoint.remove_suffix(1);
  std::string url;
  if (path_style) {
    url = std::string(endpoint) + "/" + std::string(bucket);
    if (!key.empty()) url += "/" + aws::UriEncode(key, /*encode_slash=*/false);
  } else {
    std::string_view scheme, authority, path;
    SplitEndpoint(endpoint, &scheme, &authority, &path);
    url = std::string(scheme) + std::string(bucket) + "." + std::string(authority) +
          std::string(path) + "/" + aws::UriEncode(key, /*encode_slash=*/false);
  }
  if (!query.empty()) url += "?" + std::string(query);
  return url;
}

Status CheckBucketName(std::string_view bucket) {
  const std::string shown(bucket.substr(0, 64));
  if (bucket.size() < 3 || bucket.size() > 63) {
    return InvalidArgument("S3 bucket name \"" + shown + "\" is not 3-63 characters long");
  }
  for (char c : bucket) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) {
      return InvalidArgument("S3 bucket name \"" + shown +
                             "\" has a character other than a-z, 0-9, '.' and '-'");
    }
  }
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!alnum(bucket.front()) || !alnum(bucket.back())) {
    return InvalidArgument("S3 bucket name \"" + shown +
                           "\" must begin and end with a letter or digit");
  }
  return Status::Ok();
}

Status CheckObjectKey(std::string_view key) {
  if (key.empty() || key.size() > 1024) {
    return InvalidArgument("an S3 object key is 1-1024 bytes, not " + std::to_string(key.size()));
  }
  if (key.find('\0') != std::string_view::npos) {
    return InvalidArgument("an S3 object key may not contain a NUL byte");
  }
  size_t start = 0;
  while (start <= key.size()) {
    size_t slash = key.find('/', start);
    std::string_view segment =
        key.substr(start, slash == std::string_view::npos ? key.npos : slash - start);
    if (segment == "." || segment == "..") {
      return InvalidArgument(
          "an S3 object key with a \".\" or \"..\" path segment is not supported (HTTP "
          "clients collapse it); choose another key");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status::Ok();
}

Result<std::unique_ptr<S3Client>> S3Client::Create(
    S3Config config, std::shared_ptr<aws::CredentialsProvider> credentials,
    std::unique_ptr<http::HttpClient> http) {
  if (!credentials) return InvalidArgument("S3Client needs a credentials provider");
  if (config.connect_timeout_ms <= 0 || config.request_timeout_ms <= 0) {
    return InvalidArgument("S3 timeouts must be positive");
  }
  if (config.max_attempts < 1 || config.max_attempts > 10) {
    return InvalidArgument("S3 max_attempts is 1..10, not " + std::to_string(config.max_attempts));
  }
  if (config.max_response_bytes < (size_t{1} << 20)) {
    return InvalidArgument("S3 max_response_bytes must be at least 1 MiB (listings fit)");
  }
  aws::ServiceConfig service;
  service.signing_name = std::string(kService);
  service.region = aws::ResolveRegion(config.region);
  service.endpoint = ResolveS3Endpoint(config.endpoint, service.region);
  service.content_type.clear();
  service.verify_crc32 = false;  // S3 sends no x-amz-crc32
  service.max_attempts = config.max_attempts;
  service.wall_clock_ms = std::move(config.wall_clock_ms);
  service.parse_error_body = &ParseS3Error;
  if (Status s = aws::CheckEndpoint(service.endpoint); !s.ok()) {
    return s.WithContext(
        "S3 endpoint (S3Config.endpoint, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL)");
  }
  if (!http) {
    http::HttpOptions options;
    options.connect_timeout_ms = config.connect_timeout_ms;
    options.total_timeout_ms = config.request_timeout_ms;
    options.max_response_bytes = config.max_response_bytes;
    http = http::NewCurlHttpClient(options);
  }
  return std::unique_ptr<S3Client>(new S3Client(std::move(service), config.addressing,
                                                config.max_response_bytes, std::move(credentials),
                                                std::move(http)));
}

S3Client::S3Client(aws::ServiceConfig service, Addressing addressing, size_t max_response_bytes,
                   std::shared_ptr<aws::CredentialsProvider> credentials,
                   std::unique_ptr<http::HttpClient> http)
    : endpoint_(service.endpoint),
      addressing_(addressing),
      max_response_bytes_(max_response_bytes),
      transport_(std::move(service), std::move(credentials), std::move(http)) {}

Result<http::Response> S3Client::Send(std::string_view what, std::string_view method,
                                      std::string_view bucket, std::string_view key,
                                      std::string_view query, http::Headers headers,
                                      std::string body) {
  http::Request req;
  req.headers = std::move(headers);
  // Hashed once here; SigV4 signs this value on every attempt and S3 checks
  // the body against it (XAmzContentSHA256Mismatch: retried).
  req.headers.emplace_back("x-amz-content-sha256", crypto::Sha256Hex(body));
  req.body = std::move(body);
  return Send(what, method, bucket, key, query, std::move(req));
}

Result<http::Response> S3Client::Send(std::string_view what, std::string_view method,
                                      std::string_view bucket, std::string_view key,
                                      std::string_view query, http::Request req) {
  const std::string context = "S3 " + std::string(what) + " " + Shown(bucket, key);
  if (Status s = CheckBucketName(bucket); !s.ok()) return s.WithContext(context);
  if (!key.empty()) {
    if (Status s = CheckObjectKey(key); !s.ok()) return s.WithContext(context);
  }
  req.method = std::string(method);
  req.url = ObjectUrl(endpoint_, UsePathStyle(addressing_, endpoint_, bucket), bucket, key, query);
  auto resp = transport_.Send(std::move(req));
  if (!resp.ok()) return resp.status().WithContext(context);
  return resp;
}

Status S3Client::CreateBucket(std::string_view bucket) {
  std::string body;
  http::Headers headers;
  const std::string& region = transport_.config().region;
  if (region != "us-east-1") {  // us-east-1 takes no LocationConstraint
    body =
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<LocationConstraint>" +
        XmlEscape(region) + "</LocationConstraint></CreateBucketConfiguration>";
    headers.emplace_back("content-type", "application/xml");
  }
  return Send("CreateBucket", "PUT", bucket, "", "", std::move(headers), std::move(body)).status();
}

Result<std::string> S3Client::PutObject(std::string_view bucket, std::string_view key,
                                        std::string body) {
  if (body.size() > kMaxPartSize) {
    return InvalidArgument("S3 PutObject " + Shown(bucket, key) +
                           ": over 5 GiB; use a multipart upload");
  }
  TIDINGS_ASSIGN_OR_RETURN(http::Response resp,
                           Send("PutObject", "PUT", bucket, key, "",
                                {{"content-type", "application/octet-stream"}}, std::move(body)));
  std::string etag = resp.Header("etag");
  if (etag.empty()) {
    return FailedPrecondition("S3 PutObject " + Shown(bucket, key) +
                              ": the response has no ETag; is the endpoint S3?");
  }
  return etag;
}

Result<ObjectInfo> S3Client::HeadObject(std::string_view bucket, std::string_view key) {
  if (key.empty()) return InvalidArgument("S3 HeadObject needs a key");
  TIDINGS_ASSIGN_OR_RETURN(http::Response resp,
                           Send("HeadObject", "HEAD", bucket, key, "", {}, ""));
  ObjectInfo info;
  info.etag = resp.Header("etag");
  if (!ParseU64(resp.Header("content-length"), &info.size)) {
    return FailedPrecondition("S3 HeadObject " + Shown(bucket, key) +
                              ": the response has no Content-Length; is the endpoint S3?");
  }
  return info;
}

Result<ObjectRange> S3Client::GetObjectRange(std::string_view bucket, std::string_view key,
                                             uint64_t offset, uint64_t length,
                                             std::string_view if_match) {
  if (length > max_response_bytes_) {
    return InvalidArgument("S3 GetObject " + Shown(bucket, key) + ": a range of " +
                           std::to_string(length) + " bytes is over max_response_bytes (" +
                           std::to_string(max_response_bytes_) + "); read it in smaller ranges");
  }
  std::string data;
  auto got = GetObjectRange(
      bucket, key, offset, length,
      [&](uint64_t at, std::string_view bytes) {
        if (at == 0) data.clear();  // a retry starts over
        // Allocated once (a range read by doubling would hold twice its size).
        if (data.capacity() < length) data.reserve(static_cast<size_t>(length));
        data.append(bytes);
        return Status::Ok();
      },
      if_match);
  if (!got.ok()) return got.status();
  got->data = std::move(data);
  return got;
}

Result<ObjectRange> S3Client::GetObjectRange(std::string_view bucket, std::string_view key,
                                             uint64_t offset, uint64_t length,
                                             const RangeWriter& write, std::string_view if_match) {
  const std::string context = "S3 GetObject " + Shown(bucket, key);
  if (key.empty()) return InvalidArgument("S3 GetObject needs a key");
  if (length == 0) return InvalidArgument(context + ": a range of 0 bytes");
  if (offset > UINT64_MAX - length) return InvalidArgument(context + ": the range overflows");
  const uint64_t last = offset + length - 1;
  const std::string asked = "bytes=" + std::to_string(offset) + "-" + std::to_string(last);
  // (Errors here get `context` from Send, or where they are returned.)
  // What the answer being read says of itself, from its head, and how much
  // of its body came (one attempt's: a retry starts over).
  struct Seen {
    long status = 0;
    std::string content_range;
    uint64_t first = 0, end = 0, total = 0;
    uint64_t body = 0;
  } seen;
  // The head must announce the range asked for before any byte is handed on.
  auto read_head = [&](const http::Response& head) -> Status {
    seen = Seen{};
    seen.status = head.status;
    if (head.status == 200) return Status::Ok();  // the whole object: the range is cut from it
    if (head.status != 206) {
      return FailedPrecondition("HTTP " + std::to_string(head.status) +
                                " to a Range request, expected 206; is the endpoint S3?");
    }
    seen.content_range = head.Header("content-range");
    if (!ParseContentRange(seen.content_range, &seen.first, &seen.end, &seen.total)) {
      return DataLoss("the 206 response has no valid Content-Range (\"" +
                      seen.content_range.substr(0, 80) + "\"); not using its bytes");
    }
    if (seen.first != offset || seen.end != std::min(last, seen.total - 1)) {
      return DataLoss("asked for " + asked + ", got bytes labelled \"" +
                      seen.content_range.substr(0, 80) + "\"; not using them (retry the read)");
    }
    return Status::Ok();
  };
  http::Request req;
  req.headers = {{"range", asked}};
  if (!if_match.empty()) req.headers.emplace_back("if-match", std::string(if_match));
  req.headers.emplace_back("x-amz-content-sha256", crypto::Sha256Hex(""));
  const http::BodyWriter body_writer = [&](const http::Response& head, uint64_t at,
                                           std::string_view bytes) -> Status {
    if (at == 0) TIDINGS_RETURN_IF_ERROR(read_head(head));
    seen.body = at + bytes.size();
    if (seen.status == 200) {
      const uint64_t from = std::max(at, offset), to = std::min(seen.body, last + 1);
      return from < to ? write(from - offset, bytes.substr(from - at, to - from)) : Status::Ok();
    }
    if (seen.body > seen.end - seen.first + 1) {
      return DataLoss("more bytes came than \"" + seen.content_range.substr(0, 80) +
                      "\" announced; not using them (retry the read)");
    }
    return write(at, bytes);
  };
  req.body_writer = body_writer;
  TIDINGS_ASSIGN_OR_RETURN(http::Response resp,
                           Send("GetObject", "GET", bucket, key, "", std::move(req)));
  if (resp.body_written == 0 && !resp.body.empty()) {  // a transport that kept the body
    TIDINGS_RETURN_IF_ERROR(body_writer(resp, 0, resp.body).WithContext(context));
    resp.body_written = resp.body.size();
  }
  // The head of the answer that came, if it had no body.
  if (resp.body_written == 0) TIDINGS_RETURN_IF_ERROR(read_head(resp).WithContext(context));
  ObjectRange out;
  out.offset = offset;
  out.etag = resp.Header("etag");
  if (resp.status == 200) {
    out.object_size = resp.body_written;
    if (offset >= out.object_size) {
      return InvalidArgument(context + ": " + asked +
                             " starts at or past the end (the object has " +
                             std::to_string(out.object_size) + " bytes)");
    }
    out.bytes = std::min(last + 1, out.object_size) - offset;
    return out;
  }
  if (resp.body_written != seen.end - seen.first + 1) {
    return DataLoss(context + ": asked for " + asked + ", got " +
                    std::to_string(resp.body_written) + " bytes labelled \"" +
                    seen.content_range.substr(0, 80) + "\"; not using them (retry the read)");
  }
  out.object_size = seen.total;
  out.bytes = resp.body_written;
  return out;
}

Status S3Client::DeleteObject(std::string_view bucket, std::string_view key) {
  if (key.empty()) return InvalidArgument("S3 DeleteObject needs a key");
  return Send("DeleteObject", "DELETE", bucket, key, "", {}, "").status();
}

Result<std::string> S3Client::CreateMultipartUpload(std::string_view bucket, std::string_view key) {
  if (key.empty()) return InvalidArgument("S3 CreateMultipartUpload needs a key");
  TIDINGS_ASSIGN_OR_RETURN(http::Response resp,
                           Send("CreateMultipartUpload", "POST", bucket, key, "uploads",
                                {{"content-type", "application/octet-stream"}}, ""));
  auto id = ParseCreateMultipartUpload(resp.body);
  if (!id.ok()) return id.status().WithContext("S3 CreateMultipartUpload " + Shown(bucket, key));
  return id;
}

Result<std::string> S3Client::UploadPart(std::string_view bucket, std::string_view key,
                                         std::string_view upload_id, int part_number,
                                         std::string body) {
  const std::string context = "S3 UploadPart " + Shown(bucket, key);
  if (Status s = CheckPartNumber(part_number); !s.ok()) return s.WithContext(context);
  if (upload_id.empty()) return InvalidArgument(context + ": no upload id");
  if (body.size() > kMaxPartSize) return InvalidArgument(context + ": a part is at most 5 GiB");
  const std::string query = "partNumber=" + std::to_string(part_number) +
                            "&uploadId=" + aws::UriEncode(upload_id, /*encode_slash=*/true);
  TIDINGS_ASSIGN_OR_RETURN(http::Response resp,
                           Send("UploadPart", "PUT", bucket, key, query, {}, std::move(body)));
  return PartEtag(resp, context, part_number);
}

Result<std::string> S3Client::UploadPart(std::string_view bucket, std::string_view key,
                                         std::string_view upload_id, int part_number, uint64_t size,
                                         const http::BodyReader& body, Payload payload) {
  const std::string context = "S3 UploadPart " + Shown(bucket, key);
  if (Status s = CheckPartNumber(part_number); !s.ok()) return s.WithContext(context);
  if (upload_id.empty()) return InvalidArgument(context + ": no upload id");
  if (size > kMaxPartSize) return InvalidArgument(context + ": a part is at most 5 GiB");
  if (!body) return InvalidArgument(context + ": no body");
  std::string payload_hash = "UNSIGNED-PAYLOAD";
  if (payload == Payload::kSigned) {
    // From a first read of the part; the transport reads it again as it
    // sends.
    crypto::Sha256Hasher hash;
    std::string piece(std::min<uint64_t>(size, kStreamPieceBytes), '\0');
    for (uint64_t at = 0; at < size;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(piece.size(), size - at));
      TIDINGS_ASSIGN_OR_RETURN(const size_t got, body(at, piece.data(), want));
      if (got == 0 || got > want) return DataLoss(context + ": the part ended before its length");
      hash.Update(std::string_view(piece.data(), got));
      at += got;
    }
    payload_hash = crypto::HexEncode(hash.Finish());
  }
  http::Request req;
  req.headers.emplace_back("x-amz-content-sha256", std::move(payload_hash));
  req.body_reader = body;
  req.body_size = size;
  const std::string query = "partNumber=" + std::to_string(part_number) +
                            "&uploadId=" + aws::UriEncode(upload_id, /*encode_slash=*/true);
  TIDINGS_ASSIGN_OR_RETURN(http::Response resp,
                           Send("UploadPart", "PUT", bucket, key, query, std::move(req)));
  return PartEtag(resp, context, part_number);
}

Result<std::vector<PartInfo>> S3Client::ListParts(std::string_view bucket, std::string_view key,
                                                  std::string_view upload_id, int page_size) {
  const std::string context = "S3 ListParts " + Shown(bucket, key);
  if (Status s = CheckPageSize(page_size); !s.ok()) return s.WithContext(context);
  if (upload_id.empty()) return InvalidArgument(context + ": no upload id");
  std::vector<PartInfo> parts;
  int marker = 0;
  while (true) {
    std::string query = "max-parts=" + std::to_string(page_size) +
                        "&uploadId=" + aws::UriEncode(upload_id, /*encode_slash=*/true);
    if (marker > 0) query += "&part-number-marker=" + std::to_string(marker);
    TIDINGS_ASSIGN_OR_RETURN(http::Response resp,
                             Send("ListParts", "GET", bucket, key, query, {}, ""));
    auto page = ParseListParts(resp.body);
    if (!page.ok()) return page.status().WithContext(context);
    for (auto& p : page->parts) parts.push_back(std::move(p));
    if (!page->truncated) break;
    // Part numbers only grow, so this ends by part 10000 whatever the server says.
    if (page->next_marker <= marker) {
      return FailedPrecondition(context + ": the listing did not advance past part " +
                                std::to_string(marker) + "; is the endpoint S3?");
    }
    marker = page->next_marker;
  }
  std::sort(parts.begin(), parts.end(),
            [](const PartInfo& a, const PartInfo& b) { return a.part_number < b.part_number; });
  return parts;
}

Result<std::string> S3Client::CompleteMultipartUpload(std::string_view bucket, std::string_view key,
                                                      std::string_view upload_id,
                                                      std::span<const PartInfo> parts) {
  const std::string context = "S3 CompleteMultipartUpload " + Shown(bucket, key);
  if (upload_id.empty()) return InvalidArgument(context + ": no upload id");
  if (parts.empty()) return InvalidArgument(context + ": no parts");
  for (size_t i = 0; i < parts.size(); ++i) {
    if (Status s = CheckPartNumber(parts[i].part_number); !s.ok()) return s.WithContext(context);
    if (i > 0 && parts[i].part_number <= parts[i - 1].part_number) {
      return InvalidArgument(context + ": part numbers must ascend (part " +
                             std::to_string(parts[i].part_number) + " after " +
                             std::to_string(parts[i - 1].part_number) + ")");
    }
    if (parts[i].etag.empty()) {
      return InvalidArgument(context + ": part " + std::to_string(parts[i].part_number) +
                             " has no ETag");
    }
  }
  const std::string query = "uploadId=" + aws::UriEncode(upload_id, /*encode_slash=*/true);
  TIDINGS_ASSIGN_OR_RETURN(http::Response resp, Send("CompleteMultipartUpload", "POST", bucket, key,
                                                     query, {{"content-type", "application/xml"}},
                                                     CompleteMultipartUploadBody(parts)));
  aws::AwsErrorBody error;
  auto etag = ParseCompleteMultipartUpload(resp.body, &error);
  if (!etag.ok()) return etag.status().WithContext(context);
  if (!error.type.empty()) {
    // A 200 whose body is an <Error> (S3 found it while assembling the
    // parts): map it as the status S3 would otherwise have sent.
    http::Response as_error;
    as_error.status = error.type == "InternalError" || error.type == "SlowDown" ? 503 : 400;
    as_error.body = std::move(resp.body);
    return aws::ErrorFromResponse(as_error, kService, &ParseS3Error).WithContext(context);
  }
  return etag;
}

Status S3Client::AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                      std::string_view upload_id) {
  if (upload_id.empty()) return InvalidArgument("S3 AbortMultipartUpload: no upload id");
  const std::string query = "uploadId=" + aws::UriEncode(upload_id, /*encode_slash=*/true);
  return Send("AbortMultipartUpload", "DELETE", bucket, key, query, {}, "").status();
}

Result<std::vector<UploadInfo>> S3Client::ListMultipartUploads(std::string_view bucket,
                                                               std::string_view prefix,
                                                               int page_size) {
  const std::string context = "S3 ListMultipartUploads " + Shown(bucket, "");
  if (Status s = CheckPageSize(page_size); !s.ok()) return s.WithContext(context);
  std::vector<UploadInfo> uploads;
  std::string key_marker, upload_id_marker;
  // A server that keeps answering "truncated" with new markers would loop
  // forever; 100,000 pages is far beyond any real bucket's open uploads.
  for (int pages = 0;; ++pages) {
    if (pages == 100'000) {
      return FailedPrecondition(context + ": over 100000 pages of uploads; is the endpoint S3?");
    }
    std::string query;
    if (!key_marker.empty()) query += "key-marker=" + aws::UriEncode(key_marker, true) + "&";
    query += "max-uploads=" + std::to_string(page_size);
    if (!prefix.empty()) query += "&prefix=" + aws::UriEncode(prefix, true);
    if (!upload_id_marker.empty()) {
      query += "&upload-id-marker=" + aws::UriEncode(upload_id_marker, true);
    }
    query += "&uploads";
    TIDINGS_ASSIGN_OR_RETURN(http::Response resp,
                             Send("ListMultipartUploads", "GET", bucket, "", query, {}, ""));
    auto page = ParseListMultipartUploads(resp.body);
    if (!page.ok()) return page.status().WithContext(context);
    for (auto& u : page->uploads) {
      // A server that ignores the prefix must not hand a caller another's uploads.
      if (u.key.starts_with(prefix)) uploads.push_back(std::move(u));
    }
    if (!page->truncated) break;
    if (page->next_key_marker == key_marker && page->next_upload_id_marker == upload_id_marker) {
      return FailedPrecondition(context + ": the listing did not advance; is the endpoint S3?");
    }
    key_marker = std::move(page->next_key_marker);
    upload_id_marker = std::move(page->next_upload_id_marker);
  }
  return uploads;
}

}  // namespace tidings::s3
