// S3Client without a server: URL building, addressing and endpoint rules,
// and the protocol checks against a scripted HttpClient (ranges, pagination,
// errors in a 200, error mapping, retries, clock skew).
#include "sync/s3/s3_client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>

#include "crypto/hash.h"
#include "tests/s3/answer.h"

namespace tidings::s3 {
namespace {

// Answers from a script and keeps every request it was sent.
class ScriptedHttp : public http::HttpClient {
 public:
  struct Shared {
    std::deque<http::Response> answers;
    std::vector<http::Request> sent;
  };
  explicit ScriptedHttp(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  Result<http::Response> Send(const http::Request& request) override {
    shared_->sent.push_back(request);
    if (shared_->answers.empty()) return Unavailable("script exhausted");
    http::Response r = std::move(shared_->answers.front());
    shared_->answers.pop_front();
    if (request.body_writer && r.status >= 200 && r.status < 300 && !r.body.empty()) {
      // Handed on as it arrives, in three pieces, as libcurl would.
      std::string body = std::move(r.body);
      r.body.clear();
      const size_t piece = std::max<size_t>(1, (body.size() + 2) / 3);
      for (size_t at = 0; at < body.size(); at += piece) {
        TIDINGS_RETURN_IF_ERROR(
            request.body_writer(r, at, std::string_view(body).substr(at, piece)));
        r.body_written = at + std::min(piece, body.size() - at);
      }
    }
    return r;
  }
  void Cancel() override {}

 private:
  std::shared_ptr<Shared> shared_;
};

std::string Header(const http::Request& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

const char kSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

struct Fixture {
  std::shared_ptr<ScriptedHttp::Shared> http = std::make_shared<ScriptedHttp::Shared>();
  std::unique_ptr<S3Client> client;
  explicit Fixture(S3Config config = {}) {
    if (config.endpoint.empty()) config.endpoint = "http://127.0.0.1:9000";
    if (config.region.empty()) config.region = "us-east-1";
    auto made =
        S3Client::Create(std::move(config), aws::StaticCredentials({"AKIDEXAMPLE", kSecret, "", 0}),
                         std::make_unique<ScriptedHttp>(http));
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    client = std::move(*made);
  }
  void Push(http::Response r) { http->answers.push_back(std::move(r)); }
};

// Sets or clears an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(S3Endpoint, ConfiguredThenEnvironmentThenRegionalDefault) {
  ScopedEnv s3("AWS_ENDPOINT_URL_S3", nullptr), any("AWS_ENDPOINT_URL", nullptr);
  EXPECT_EQ(ResolveS3Endpoint("", "eu-west-1"), "https://s3.eu-west-1.amazonaws.com");
  {
    ScopedEnv general("AWS_ENDPOINT_URL", "http://localhost:4566");
    EXPECT_EQ(ResolveS3Endpoint("", "eu-west-1"), "http://localhost:4566");
    ScopedEnv specific("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000/");
    EXPECT_EQ(ResolveS3Endpoint("", "eu-west-1"), "http://127.0.0.1:9000") << "trailing / dropped";
    EXPECT_EQ(ResolveS3Endpoint("https://minio.example.org", "eu-west-1"),
              "https://minio.example.org")
        << "the configured endpoint wins";
  }
  Fixture f;  // http:// to 127.0.0.1 is allowed
  EXPECT_EQ(f.client->endpoint(), "http://127.0.0.1:9000");
  for (const char* refused : {"http://s3.example.org", "ftp://127.0.0.1", "s3.amazonaws.com"}) {
    S3Config c;
    c.endpoint = refused;
    c.region = "us-east-1";
    auto made = S3Client::Create(c, aws::StaticCredentials({"AK", "s", "", 0}));
    EXPECT_EQ(made.status().code(), Code::kInvalidArgument) << refused;
  }
}

TEST(S3Addressing, AutoIsPathStyleForIpsLocalhostAndDottedBuckets) {
  EXPECT_TRUE(UsePathStyle(Addressing::kAuto, "http://127.0.0.1:9000", "bucket"));
  EXPECT_TRUE(UsePathStyle(Addressing::kAuto, "http://localhost:4566", "bucket"));
  EXPECT_TRUE(UsePathStyle(Addressing::kAuto, "http://[::1]:9000", "bucket"));
  EXPECT_TRUE(UsePathStyle(Addressing::kAuto, "https://10.1.2.3", "bucket"));
  EXPECT_FALSE(UsePathStyle(Addressing::kAuto, "https://s3.eu-west-1.amazonaws.com", "bucket"));
  EXPECT_FALSE(UsePathStyle(Addressing::kAuto, "https://minio.example.org:9000", "a-b-1"));
  // A dot in the bucket breaks the *.s3 TLS certificate's single label.
  EXPECT_TRUE(UsePathStyle(Addressing::kAuto, "https://s3.eu-west-1.amazonaws.com", "my.bucket"));
  EXPECT_TRUE(UsePathStyle(Addressing::kPath, "https://s3.eu-west-1.amazonaws.com", "bucket"));
  EXPECT_FALSE(UsePathStyle(Addressing::kVirtualHosted, "http://127.0.0.1:9000", "bucket"));
}

TEST(S3Addressing, UrlsEncodeKeysOnceAndKeepSlashes) {
  EXPECT_EQ(ObjectUrl("http://127.0.0.1:9000", true, "b", "a/b c/\xC3\xA9+~_-.x", "uploads"),
            "http://127.0.0.1:9000/b/a/b%20c/%C3%A9%2B~_-.x?uploads");
  EXPECT_EQ(ObjectUrl("https://s3.eu-west-1.amazonaws.com", false, "b", "k?x=1&y#z"),
            "https://b.s3.eu-west-1.amazonaws.com/k%3Fx%3D1%26y%23z");
  EXPECT_EQ(ObjectUrl("https://s3.eu-west-1.amazonaws.com/", false, "b", ""),
            "https://b.s3.eu-west-1.amazonaws.com/");
  EXPECT_EQ(ObjectUrl("http://127.0.0.1:9000/", true, "b", ""), "http://127.0.0.1:9000/b");
  EXPECT_EQ(ObjectUrl("https://gw.example.org/s3", true, "b", "k"),
            "https://gw.example.org/s3/b/k");
  EXPECT_EQ(ObjectUrl("https://gw.example.org:8443", false, "b", "k", "partNumber=1&uploadId=u"),
            "https://b.gw.example.org:8443/k?partNumber=1&uploadId=u");
}

TEST(S3Names, BucketAndKeyChecks) {
  for (const std::string& ok : {std::string("abc"), std::string("tidings-attachments"),
                                std::string("my.bucket.1"), std::string(63, 'a')}) {
    EXPECT_TRUE(CheckBucketName(ok).ok()) << ok;
  }
  for (const char* bad : {"ab", "Upper", "under_score", "-lead", "trail-", "a/b", "a?b", ""}) {
    EXPECT_EQ(CheckBucketName(bad).code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(CheckBucketName(std::string(64, 'a')).ok());
  for (const char* ok : {"k", "a/b", "a b", "...a", "a/.b/c", "/leading", "a//b"}) {
    EXPECT_TRUE(CheckObjectKey(ok).ok()) << ok;
  }
  for (std::string bad :
       {std::string(), std::string(1025, 'k'), std::string("a\0b", 3), std::string("."),
        std::string("a/../b"), std::string("a/."), std::string("./a")}) {
    EXPECT_EQ(CheckObjectKey(bad).code(), Code::kInvalidArgument) << bad;
  }
}

TEST(S3Client, SignsThePayloadHashAndTheRange) {
  Fixture f;
  f.Push(Answer(200, "", {{"etag", "\"e1\""}}));
  auto etag = f.client->PutObject("bucket", "dir/a b", "the body");
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  EXPECT_EQ(*etag, "\"e1\"");
  const http::Request& put = f.http->sent.back();
  EXPECT_EQ(put.method, "PUT");
  EXPECT_EQ(put.url, "http://127.0.0.1:9000/bucket/dir/a%20b");
  EXPECT_EQ(Header(put, "x-amz-content-sha256"), crypto::Sha256Hex("the body"));
  EXPECT_NE(Header(put, "authorization")
                .find("SignedHeaders=content-type;host;"
                      "x-amz-content-sha256;x-amz-date,"),
            std::string::npos)
      << Header(put, "authorization");

  f.Push(Answer(206, "0123456789", {{"content-range", "bytes 5-14/100"}, {"etag", "\"e1\""}}));
  auto range = f.client->GetObjectRange("bucket", "k", 5, 10, "\"e1\"");
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  EXPECT_EQ(range->data, "0123456789");
  EXPECT_EQ(range->object_size, 100u);
  const http::Request& get = f.http->sent.back();
  EXPECT_EQ(Header(get, "range"), "bytes=5-14");
  EXPECT_EQ(Header(get, "if-match"), "\"e1\"");
  EXPECT_EQ(Header(get, "x-amz-content-sha256"), crypto::Sha256Hex(""));
  EXPECT_NE(Header(get, "authorization").find("SignedHeaders=host;if-match;range;"),
            std::string::npos)
      << Header(get, "authorization");
}

TEST(S3Client, RangeAnswersAreCheckedAgainstTheRequest) {
  Fixture f;
  // The object ends inside the range: the rest of it, no more.
  f.Push(Answer(206, "tail", {{"content-range", "bytes 96-99/100"}}));
  auto tail = f.client->GetObjectRange("bucket", "k", 96, 10);
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  EXPECT_EQ(tail->data, "tail");
  EXPECT_EQ(tail->object_size, 100u);

  struct Bad {
    std::string body, content_range;
  };
  for (const Bad& bad : {Bad{"012345678", "bytes 0-9/100"},    // a byte short
                         Bad{"0123456789", "bytes 1-10/100"},  // another start
                         Bad{"01234", "bytes 0-4/100"},        // less than asked, object longer
                         Bad{"0123456789", ""},                // no Content-Range
                         Bad{"0123456789", "bytes 0-9/5"},     // impossible
                         Bad{"0123456789", "bytes 0-9/*"}}) {
    f.Push(Answer(206, bad.body, {{"content-range", bad.content_range}}));
    auto r = f.client->GetObjectRange("bucket", "k", 0, 10);
    EXPECT_EQ(r.status().code(), Code::kDataLoss) << bad.content_range;
    EXPECT_EQ(r.status().message().find(bad.body), std::string::npos) << "no object bytes shown";
  }
  // A server that ignores Range sends the whole object: the range is cut from it.
  f.Push(Answer(200, "abcdefghij"));
  auto whole = f.client->GetObjectRange("bucket", "k", 2, 3);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->data, "cde");
  f.Push(Answer(200, "abc"));
  EXPECT_EQ(f.client->GetObjectRange("bucket", "k", 3, 3).status().code(), Code::kInvalidArgument);
  // Past the end: S3's 416 InvalidRange.
  f.Push(Answer(416,
                "<Error><Code>InvalidRange</Code><Message>The requested range is not "
                "satisfiable</Message></Error>"));
  auto past = f.client->GetObjectRange("bucket", "k", 1000, 10);
  EXPECT_EQ(past.status().code(), Code::kInvalidArgument);
  EXPECT_NE(past.status().message().find("InvalidRange"), std::string::npos);
  // Refused before sending.
  const size_t sent = f.http->sent.size();
  EXPECT_EQ(f.client->GetObjectRange("bucket", "k", 0, 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(f.client->GetObjectRange("bucket", "k", 0, (16 << 20) + 1).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(f.client->GetObjectRange("bucket", "k", UINT64_MAX, 2).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(f.http->sent.size(), sent);
}

TEST(S3Client, AStreamedRangeIsCheckedBeforeAndAsItIsHandedOn) {
  Fixture f;
  std::string got;
  std::vector<uint64_t> offsets;
  auto write = [&](uint64_t at, std::string_view bytes) {
    if (at == 0) got.clear();
    offsets.push_back(at);
    got.append(bytes);
    return Status::Ok();
  };
  // Larger than max_response_bytes (16 MiB): nothing holds it here.
  const std::string big((20 << 20) + 7, 'b');
  f.Push(Answer(206, big,
                {{"content-range", "bytes 3-" + std::to_string(big.size() + 2) + "/" +
                                       std::to_string(big.size() + 3)}}));
  auto r = f.client->GetObjectRange("bucket", "k", 3, big.size() + 100, write);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->data.empty());
  EXPECT_EQ(r->bytes, big.size());
  EXPECT_EQ(got, big);
  EXPECT_EQ(offsets.size(), 3u);  // as it came, in the script's three pieces
  EXPECT_TRUE(std::is_sorted(offsets.begin(), offsets.end()));

  // More bytes than the Content-Range says: stopped before the first byte
  // past the range is handed on.
  got.clear();
  f.Push(Answer(206, "0123456789AB", {{"content-range", "bytes 0-9/100"}}));
  EXPECT_EQ(f.client->GetObjectRange("bucket", "k", 0, 10, write).status().code(), Code::kDataLoss);
  EXPECT_EQ(got, "01234567");
  // Another range than asked for: not a byte handed on.
  got.clear();
  f.Push(Answer(206, "0123456789", {{"content-range", "bytes 1-10/100"}}));
  EXPECT_EQ(f.client->GetObjectRange("bucket", "k", 0, 10, write).status().code(), Code::kDataLoss);
  EXPECT_TRUE(got.empty());
  // Fewer bytes than announced: DataLoss, and the caller drops what it had.
  f.Push(Answer(206, "01234", {{"content-range", "bytes 0-9/100"}}));
  EXPECT_EQ(f.client->GetObjectRange("bucket", "k", 0, 10, write).status().code(), Code::kDataLoss);
  // A whole object: only the range is handed on, from offset 0.
  offsets.clear();
  f.Push(Answer(200, "abcdefghij"));
  auto whole = f.client->GetObjectRange("bucket", "k", 2, 3, write);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(got, "cde");
  EXPECT_EQ(offsets.front(), 0u);
  EXPECT_EQ(whole->bytes, 3u);
  EXPECT_EQ(whole->object_size, 10u);
  // The writer's error stops the read, as it is.
  f.Push(Answer(206, "0123456789", {{"content-range", "bytes 0-9/100"}}));
  EXPECT_EQ(f.client
                ->GetObjectRange("bucket", "k", 0, 10,
                                 [](uint64_t, std::string_view) { return IOError("disk gone"); })
                .status()
                .code(),
            Code::kIOError);
}

std::string PartsPage(std::vector<int> numbers, bool truncated, int next) {
  std::string body = "<ListPartsResult><IsTruncated>" + std::string(truncated ? "true" : "false") +
                     "</IsTruncated><NextPartNumberMarker>" + std::to_string(next) +
                     "</NextPartNumberMarker>";
  for (int n : numbers) {
    body += "<Part><PartNumber>" + std::to_string(n) + "</PartNumber><ETag>\"e" +
            std::to_string(n) + "\"</ETag><Size>" + std::to_string(n * 10) + "</Size></Part>";
  }
  return body + "</ListPartsResult>";
}

TEST(S3Client, ListPartsFollowsThePages) {
  Fixture f;
  f.Push(Answer(200, PartsPage({1, 2}, true, 2)));
  f.Push(Answer(200, PartsPage({3}, false, 3)));
  auto parts = f.client->ListParts("bucket", "k", "up/load+id", 2);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[2].part_number, 3);
  EXPECT_EQ((*parts)[2].etag, "\"e3\"");
  EXPECT_EQ((*parts)[2].size, 30u);
  ASSERT_EQ(f.http->sent.size(), 2u);
  EXPECT_EQ(f.http->sent[0].url,
            "http://127.0.0.1:9000/bucket/k?max-parts=2&uploadId=up%2Fload%2Bid");
  EXPECT_EQ(f.http->sent[1].url,
            "http://127.0.0.1:9000/bucket/k?max-parts=2&uploadId=up%2Fload%2Bid"
            "&part-number-marker=2");
  // A server that does not advance is not followed forever.
  f.Push(Answer(200, PartsPage({1}, true, 1)));
  f.Push(Answer(200, PartsPage({1}, true, 1)));
  EXPECT_EQ(f.client->ListParts("bucket", "k", "u", 1).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(f.client->ListParts("bucket", "k", "u", 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(f.client->ListParts("bucket", "k", "u", 1001).status().code(), Code::kInvalidArgument);
}

TEST(S3Client, ListMultipartUploadsFollowsThePagesAndKeepsThePrefix) {
  Fixture f;
  f.Push(Answer(200,
                "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
                "<NextKeyMarker>att/b</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>"
                "<Upload><Key>att/a</Key><UploadId>u1</UploadId></Upload>"
                "<Upload><Key>att/b</Key><UploadId>u2</UploadId></Upload>"
                "</ListMultipartUploadsResult>"));
  f.Push(Answer(200,
                "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
                "<Upload><Key>att/c</Key><UploadId>u3</UploadId></Upload>"
                "<Upload><Key>other/d</Key><UploadId>u4</UploadId></Upload>"
                "</ListMultipartUploadsResult>"));
  auto uploads = f.client->ListMultipartUploads("bucket", "att/", 2);
  ASSERT_TRUE(uploads.ok()) << uploads.status().ToString();
  ASSERT_EQ(uploads->size(), 3u) << "other/d is outside the prefix";
  EXPECT_EQ((*uploads)[2].upload_id, "u3");
  ASSERT_EQ(f.http->sent.size(), 2u);
  EXPECT_EQ(f.http->sent[0].url,
            "http://127.0.0.1:9000/bucket?max-uploads=2&prefix=att%2F&uploads");
  EXPECT_EQ(f.http->sent[1].url,
            "http://127.0.0.1:9000/bucket?key-marker=att%2Fb&max-uploads=2&prefix=att%2F"
            "&upload-id-marker=u2&uploads");
  const std::string stuck =
      "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated><NextKeyMarker>k"
      "</NextKeyMarker><NextUploadIdMarker>u</NextUploadIdMarker></ListMultipartUploadsResult>";
  f.Push(Answer(200, stuck));
  f.Push(Answer(200, stuck));
  EXPECT_EQ(f.client->ListMultipartUploads("bucket", "", 1000).status().code(),
            Code::kFailedPrecondition);
}

TEST(S3Client, CompleteChecksPartsAndReadsAnErrorInA200) {
  Fixture f;
  std::vector<PartInfo> parts = {{1, "\"e1\"", 0}, {2, "\"e2\"", 0}};
  f.Push(Answer(200,
                "<CompleteMultipartUploadResult><ETag>\"x-2\"</ETag>"
                "</CompleteMultipartUploadResult>"));
  auto etag = f.client->CompleteMultipartUpload("bucket", "k", "u", parts);
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  EXPECT_EQ(*etag, "\"x-2\"");
  EXPECT_EQ(f.http->sent.back().body,
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Part><PartNumber>1</PartNumber><ETag>&quot;e1&quot;</ETag></Part>"
            "<Part><PartNumber>2</PartNumber><ETag>&quot;e2&quot;</ETag></Part>"
            "</CompleteMultipartUpload>");
  EXPECT_EQ(Header(f.http->sent.back(), "x-amz-content-sha256"),
            crypto::Sha256Hex(f.http->sent.back().body));

  f.Push(Answer(200, "<Error><Code>InternalError</Code><Message>try again</Message></Error>"));
  auto internal = f.client->CompleteMultipartUpload("bucket", "k", "u", parts);
  EXPECT_EQ(internal.status().code(), Code::kUnavailable) << internal.status().ToString();
  f.Push(Answer(400,
                "<Error><Code>EntityTooSmall</Code><Message>Your proposed upload is smaller "
                "than the minimum allowed object size.</Message></Error>"));
  EXPECT_EQ(f.client->CompleteMultipartUpload("bucket", "k", "u", parts).status().code(),
            Code::kInvalidArgument);

  const size_t sent = f.http->sent.size();
  std::vector<PartInfo> descending = {{2, "\"e2\"", 0}, {1, "\"e1\"", 0}};
  EXPECT_EQ(f.client->CompleteMultipartUpload("bucket", "k", "u", descending).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(f.client->CompleteMultipartUpload("bucket", "k", "u", {}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(f.client->UploadPart("bucket", "k", "u", 0, "x").status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(f.client->UploadPart("bucket", "k", "u", 10001, "x").status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(f.http->sent.size(), sent) << "refused before sending";
}

TEST(S3Client, ErrorsMapToCodesAndShowNoSecretsOrContents) {
  struct Case {
    long status;
    std::string code;
    Code expected;
  };
  for (const Case& c : std::vector<Case>{
           {404, "NoSuchKey", Code::kNotFound},
           {404, "NoSuchUpload", Code::kNotFound},
           {404, "NoSuchBucket", Code::kNotFound},
           {403, "AccessDenied", Code::kPermissionDenied},
           {403, "SignatureDoesNotMatch", Code::kUnauthenticated},
           {403, "InvalidAccessKeyId", Code::kUnauthenticated},
           {400, "ExpiredToken", Code::kUnauthenticated},
           {400, "InvalidToken", Code::kUnauthenticated},
           {400, "EntityTooSmall", Code::kInvalidArgument},
           {400, "InvalidPart", Code::kInvalidArgument},
           {400, "InvalidPartOrder", Code::kInvalidArgument},
           {409, "BucketAlreadyOwnedByYou", Code::kAlreadyExists},
           {412, "PreconditionFailed", Code::kFailedPrecondition},
       }) {
    Fixture f;
    f.Push(
        Answer(c.status, "<Error><Code>" + c.code +
                             "</Code><Message>m</Message>"
                             "<StringToSign>AWS4-HMAC-SHA256 secret-ish</StringToSign></Error>"));
    auto r = f.client->PutObject("bucket", "k", "SECRET-CONTENTS");
    EXPECT_EQ(r.status().code(), c.expected) << c.code << ": " << r.status().ToString();
    const std::string& m = r.status().message();
    EXPECT_NE(m.find(c.code), std::string::npos) << m;
    EXPECT_NE(m.find("S3 PutObject s3://bucket/k"), std::string::npos) << m;
    EXPECT_EQ(m.find("SECRET-CONTENTS"), std::string::npos) << m;
    EXPECT_EQ(m.find(kSecret), std::string::npos) << m;
    EXPECT_EQ(m.find("StringToSign"), std::string::npos) << m;
    EXPECT_EQ(f.http->sent.size(), 1u) << c.code << " is not retried";
  }
  // A HEAD answer has no body: the status decides.
  Fixture head;
  head.Push(Answer(404));
  EXPECT_EQ(head.client->HeadObject("bucket", "k").status().code(), Code::kNotFound);
}

// A body read as it is sent: hashed from a first read, then handed to the
// transport as a reader (never copied into the request), on every attempt.
TEST(S3Client, StreamedPartsAreHashedFirstAndReadAsTheyAreSent) {
  Fixture f;
  const std::string part(700'000, 'p');  // more than one piece of the hash's reads
  int reads = 0;
  const http::BodyReader reader = [&](uint64_t offset, char* buf, size_t cap) -> Result<size_t> {
    ++reads;
    const size_t n = std::min<size_t>(cap, part.size() - std::min<size_t>(offset, part.size()));
    std::memcpy(buf, part.data() + offset, n);
    return n;
  };
  f.Push(Answer(500, "<Error><Code>InternalError</Code></Error>"));
  f.Push(Answer(200, "", {{"etag", "\"p1\""}}));
  auto etag = f.client->UploadPart("bucket", "k", "u", 1, part.size(), reader);
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  EXPECT_EQ(*etag, "\"p1\"");
  EXPECT_GE(reads, 3);
  ASSERT_EQ(f.http->sent.size(), 2u);
  for (const http::Request& sent : f.http->sent) {
    EXPECT_EQ(sent.method, "PUT");
    EXPECT_TRUE(sent.body.empty());
    EXPECT_EQ(sent.body_size, part.size());
    EXPECT_EQ(Header(sent, "x-amz-content-sha256"), crypto::Sha256Hex(part));
    ASSERT_TRUE(sent.body_reader);
    std::string again(part.size(), '\0');
    ASSERT_EQ(*sent.body_reader(0, again.data(), again.size()), part.size());
    EXPECT_TRUE(again == part);
  }

  // Unsigned: not read before it is sent.
  Fixture unsigned_payload;
  unsigned_payload.Push(Answer(200, "", {{"etag", "\"p2\""}}));
  reads = 0;
  ASSERT_TRUE(
      unsigned_payload.client
          ->UploadPart("bucket", "k", "u", 2, part.size(), reader, S3Client::Payload::kUnsigned)
          .ok());
  EXPECT_EQ(reads, 0);
  ASSERT_EQ(unsigned_payload.http->sent.size(), 1u);
  EXPECT_EQ(Header(unsigned_payload.http->sent[0], "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
  EXPECT_NE(Header(unsigned_payload.http->sent[0], "authorization").find("x-amz-content-sha256"),
            std::string::npos);

  // A reader that fails fails the call with its error, before anything is sent.
  Fixture failing;
  auto failed = failing.client->UploadPart(
      "bucket", "k", "u", 1, 10,
      [](uint64_t, char*, size_t) -> Result<size_t> { return IOError("the disk went away"); });
  EXPECT_EQ(failed.status().code(), Code::kIOError);
  EXPECT_TRUE(failing.http->sent.empty());
  // One that ends early is DataLoss.
  auto short_read = failing.client->UploadPart(
      "bucket", "k", "u", 1, 10, [](uint64_t, char*, size_t) -> Result<size_t> { return 0; });
  EXPECT_EQ(short_read.status().code(), Code::kDataLoss);
  EXPECT_TRUE(failing.http->sent.empty());
}

TEST(S3Client, SlowDownAndServerErrorsAreRetried) {
  Fixture f;
  f.Push(Answer(503,
                "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message>"
                "</Error>"));
  f.Push(Answer(500, "<Error><Code>InternalError</Code></Error>"));
  f.Push(Answer(200, "", {{"etag", "\"ok\""}}));
  auto r = f.client->UploadPart("bucket", "k", "u", 1, "part");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(f.client->retries(), 2u);
  ASSERT_EQ(f.http->sent.size(), 3u);
  EXPECT_EQ(f.http->sent[2].body, "part") << "the body is sent whole on every attempt";

  Fixture exhausted;
  for (int i = 0; i < 3; ++i) {
    exhausted.Push(Answer(503, "<Error><Code>SlowDown</Code></Error>"));
  }
  EXPECT_EQ(exhausted.client->DeleteObject("bucket", "k").code(), Code::kUnavailable);
  EXPECT_EQ(exhausted.http->sent.size(), 3u);
}

TEST(S3Client, ClockSkewIsCorrectedFromTheDateHeader) {
  S3Config config;
  config.wall_clock_ms = [] { return int64_t{1795523696000} - 3'600'000; };  // an hour slow
  Fixture f(std::move(config));
  f.Push(Answer(403,
                "<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the "
                "request time and the current time is too large.</Message></Error>",
                {{"date", "Tue, 24 Nov 2026 12:34:56 GMT"}}));
  f.Push(Answer(204));
  ASSERT_TRUE(f.client->DeleteObject("bucket", "k").ok());
  ASSERT_EQ(f.http->sent.size(), 2u);
  EXPECT_EQ(Header(f.http->sent[0], "x-amz-date"), "20261124T113456Z");
  EXPECT_EQ(Header(f.http->sent[1], "x-amz-date"), "20261124T123456Z");
}

TEST(S3Client, VirtualHostedRequestsGoToTheBucketsHost) {
  S3Config config;
  config.endpoint = "https://s3.eu-west-1.amazonaws.com";
  config.region = "eu-west-1";
  Fixture f(std::move(config));
  f.Push(Answer(200, "", {{"content-length", "42"}, {"etag", "\"e\""}}));
  auto info = f.client->HeadObject("tidings-attachments", "a/b");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, 42u);
  EXPECT_EQ(f.http->sent[0].url, "https://tidings-attachments.s3.eu-west-1.amazonaws.com/a/b");
  EXPECT_EQ(Header(f.http->sent[0], "host"), "tidings-attachments.s3.eu-west-1.amazonaws.com");
  EXPECT_NE(Header(f.http->sent[0], "authorization").find("/eu-west-1/s3/aws4_request"),
            std::string::npos);
  // Outside us-east-1 a bucket is created with its LocationConstraint.
  f.Push(Answer(200));
  ASSERT_TRUE(f.client->CreateBucket("tidings-attachments").ok());
  EXPECT_NE(f.http->sent[1].body.find("<LocationConstraint>eu-west-1</LocationConstraint>"),
            std::string::npos);
}

}  // namespace
}  // namespace tidings::s3
