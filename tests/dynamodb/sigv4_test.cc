// SigV4 against AWS's published get-vanilla example and against vectors
// produced by botocore's own signer (python3 with botocore).
#include "sync/aws_protocol/sigv4.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/clock.h"
#include "sync/aws/aws_client.h"
#include "sync/aws/credentials.h"

namespace tidings::aws {
namespace {

const Credentials kCreds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "", 0};

std::string Auth(const http::Request& r) {
  for (const auto& [k, v] : r.headers) {
    if (k == "authorization") return v;
  }
  return "";
}

TEST(SigV4, AwsGetVanilla) {
  http::Request r;
  r.method = "GET";
  r.url = "https://example.amazonaws.com/";
  ASSERT_TRUE(
      SignRequest(&r, kCreds, {"us-east-1", "service", 1440938160}).ok());  // 20150830T123600Z
  EXPECT_EQ(Auth(r),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4, MatchesBotocore) {
  FILE* p = ::popen((std::string("python3 ") + SIGV4_VECTORS).c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::vector<std::string> expected;
  char buf[1024];
  while (std::fgets(buf, sizeof(buf), p)) {
    std::string line(buf);
    while (!line.empty() && line.back() == '\n') line.pop_back();
    expected.push_back(line);
  }
  ASSERT_EQ(::pclose(p), 0) << "botocore vector script failed";
  ASSERT_EQ(expected.size(), 5u);
  const int64_t t = 1795523696;  // 2026-11-24T12:34:56Z
  struct Case {
    std::string method, url;
    http::Headers headers;
    std::string body, service, token;
  };
  std::vector<Case> cases = {
      {"POST",
       "https://dynamodb.us-east-1.amazonaws.com/",
       {{"Content-Type", "application/x-amz-json-1.0"},
        {"X-Amz-Target", "DynamoDB_20120810.PutItem"}},
       "{\"TableName\":\"t\"}",
       "dynamodb",
       ""},
      {"POST",
       "http://127.0.0.1:4567/",
       {{"Content-Type", "application/x-amz-json-1.0"},
        {"X-Amz-Target", "DynamoDB_20120810.Query"}},
       "{\"a\":1}",
       "dynamodb",
       "SESSIONTOKEN/with+chars="},
      {"GET",
       "https://messaging-chime.us-east-1.amazonaws.com/channels/"
       "arn%3Aaws%3Achime%3Aus-east-1%3A1%3Aapp-instance%2Fa%2Fchannel%2Fb/messages?sort-order="
       "ASCENDING&max-results=50&not-before=2026-11-24T10%3A00%3A00Z",
       {{"x-amz-chime-bearer", "arn:aws:chime:us-east-1:1:app-instance/a/user/u"}},
       "",
       "chime",
       ""},
      {"POST",
       "https://messaging-chime.us-east-1.amazonaws.com/channels/arn%3Aaws%3Achime%3Ax%2Fc/"
       "messages",
       {{"Content-Type", "application/json"}},
       "{\"Content\":\"hi\"}",
       "chime",
       ""},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    http::Request r{cases[i].method, cases[i].url, cases[i].headers, cases[i].body};
    Credentials c = kCreds;
    c.session_token = cases[i].token;
    ASSERT_TRUE(SignRequest(&r, c, {"us-east-1", cases[i].service, t}).ok());
    EXPECT_EQ(Auth(r), expected[i]) << "case " << i << "\n" << CanonicalRequest(r, "");
  }
}

TEST(SigV4, PresignedUrlMatchesBotocore) {
  FILE* p = ::popen((std::string("python3 ") + SIGV4_VECTORS).c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string last;
  char buf[2048];
  while (std::fgets(buf, sizeof(buf), p)) last = buf;
  ASSERT_EQ(::pclose(p), 0);
  while (!last.empty() && last.back() == '\n') last.pop_back();
  auto url =
      PresignUrl("GET",
                 "https://node001.ue1.ws-messaging.chime.aws/connect?arn=arn%3Aaws%3Achime%3Aus-"
                 "east-1%3A1%3Aapp-instance%2Fa%2Fuser%2Fu&sessionId=abc",
                 kCreds, {"us-east-1", "chime", 1795523696}, 10);
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(*url, last);
}

TEST(Credentials, CallbackIsCachedAndRefreshedBeforeExpiry) {
  int fetches = 0;
  int64_t expires = 0;
  auto provider = CallbackCredentials(
      [&]() -> Result<Credentials> {
        ++fetches;
        return Credentials{"AK" + std::to_string(fetches), "secret", "token", expires};
      },
      /*refresh_before_ms=*/60'000);
  const int64_t now = WallMs();
  expires = now + 3'600'000;  // valid for an hour: cached
  EXPECT_EQ(provider->Get()->access_key_id, "AK1");
  EXPECT_EQ(provider->Get()->access_key_id, "AK1");
  EXPECT_EQ(fetches, 1);
  expires = now + 30'000;  // the next ones expire within the refresh window
  auto p2 = CallbackCredentials(
      [&]() -> Result<Credentials> {
        ++fetches;
        return Credentials{"AK" + std::to_string(fetches), "secret", "", expires};
      },
      60'000);
  EXPECT_EQ(p2->Get()->access_key_id, "AK2");
  EXPECT_EQ(p2->Get()->access_key_id, "AK3") << "refreshed before expiry";
  auto failing =
      CallbackCredentials([]() -> Result<Credentials> { return Unavailable("offline"); });
  EXPECT_EQ(failing->Get().status().code(), Code::kUnavailable);
}

TEST(Credentials, CopiesShareOneLockedSecret) {
  Credentials a{"AK", "the-secret", "the-token", 0};
  Credentials b = a;  // as every request does
  EXPECT_EQ(b.secret_access_key.view(), "the-secret");
  EXPECT_EQ(a.secret_access_key.view().data(), b.secret_access_key.view().data())
      << "a copy must not duplicate the secret";
  EXPECT_EQ(a.session_token.view().data(), b.session_token.view().data());
  Credentials none{"AK", "", "", 0};
  EXPECT_TRUE(none.secret_access_key.empty());
}

// The shared credentials file: the profile's section only, comments and
// blanks skipped, whitespace trimmed; read again when the file changes.
TEST(Credentials, ProfileFileIsReadAndReReadOnChange) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("tidings-creds-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "credentials";
  auto write = [&](const std::string& text) { std::ofstream(file, std::ios::trunc) << text; };
  write(
      "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = s-default\n"
      "# a comment\n\n[clinic]\r\n ; another\n aws_access_key_id=AKCLINIC \n"
      "aws_secret_access_key =  s-clinic\t\naws_session_token = tok\n[other]\n"
      "aws_access_key_id = AKOTHER\n");
  auto saved = [](const char* name) {
    const char* v = std::getenv(name);
    return std::optional<std::string>(v ? std::optional<std::string>(v) : std::nullopt);
  };
  const auto id = saved("AWS_ACCESS_KEY_ID"), secret = saved("AWS_SECRET_ACCESS_KEY");
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", file.c_str(), 1);
  ::setenv("AWS_PROFILE", "clinic", 1);

  auto chain = DefaultCredentialsChain();
  auto first = chain->Get();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->access_key_id, "AKCLINIC");
  EXPECT_EQ(first->secret_access_key.view(), "s-clinic");
  EXPECT_EQ(first->session_token.view(), "tok");
  auto again = chain->Get();
  EXPECT_EQ(again->secret_access_key.view().data(), first->secret_access_key.view().data())
      << "an unchanged file is not read again";

  write("[clinic]\naws_access_key_id = AKROTATED\naws_secret_access_key = s-rotated-longer\n");
  auto rotated = chain->Get();
  ASSERT_TRUE(rotated.ok());
  EXPECT_EQ(rotated->access_key_id, "AKROTATED");
  EXPECT_EQ(rotated->secret_access_key.view(), "s-rotated-longer");
  EXPECT_TRUE(rotated->session_token.empty());

  ::setenv("AWS_PROFILE", "other", 1);  // no secret in that section
  auto other = chain->Get();
  EXPECT_EQ(other.status().code(), Code::kUnauthenticated);
  EXPECT_EQ(other.status().message().find("s-rotated"), std::string::npos) << "no secret in errors";

  ::unsetenv("AWS_PROFILE");
  ::unsetenv("AWS_SHARED_CREDENTIALS_FILE");
  if (id) ::setenv("AWS_ACCESS_KEY_ID", id->c_str(), 1);
  if (secret) ::setenv("AWS_SECRET_ACCESS_KEY", secret->c_str(), 1);
  std::filesystem::remove_all(dir);
}

TEST(AwsErrors, MappedToRetryableOrNot) {
  auto err = [](long status, std::string body, std::string header = "") {
    http::Response r;
    r.status = status;
    r.body = std::move(body);
    if (!header.empty()) r.headers.emplace_back("x-amzn-errortype", header);
    return ErrorFromResponse(r, "svc").code();
  };
  EXPECT_EQ(err(400, R"({"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException"})"),
            Code::kUnavailable);
  EXPECT_EQ(err(400, R"({"__type":"x#ConditionalCheckFailedException"})"), Code::kAborted);
  EXPECT_EQ(err(400, R"({"__type":"x#UnrecognizedClientException"})"), Code::kUnauthenticated);
  EXPECT_EQ(err(400, R"({"__type":"x#AccessDeniedException"})"), Code::kPermissionDenied);
  EXPECT_EQ(err(400, R"({"__type":"x#ResourceNotFoundException"})"), Code::kNotFound);
  EXPECT_EQ(err(400, R"({"__type":"x#ValidationException"})"), Code::kInvalidArgument);
  EXPECT_EQ(
      err(403, R"({"Code":"ForbiddenException","Message":"no"})", "ForbiddenException:http://x"),
      Code::kPermissionDenied);
  EXPECT_EQ(err(429, R"({"Code":"ThrottledClientException"})", "ThrottledClientException:"),
            Code::kUnavailable);
  EXPECT_EQ(err(403, "<Error><Code>SignatureDoesNotMatch</Code></Error>"), Code::kUnauthenticated);
  EXPECT_EQ(err(502, "<html>bad gateway</html>"), Code::kUnavailable);
  EXPECT_EQ(err(400, "not json at all"), Code::kFailedPrecondition);
}

TEST(AwsErrors, ClockSkewIsRecognisedInEveryWording) {
  // AWS (Chime, DynamoDB), both directions of skew.
  EXPECT_TRUE(IsClockSkewError("InvalidSignatureException",
                               "Signature expired: 20261204T000000Z is now earlier than "
                               "20261204T001500Z (20261204T002000Z - 5 min.)"));
  EXPECT_TRUE(IsClockSkewError("InvalidSignatureException",
                               "Signature not yet current: 20261204T004000Z is still later than "
                               "20261204T002500Z (20261204T002000Z + 5 min.)"));
  EXPECT_TRUE(IsClockSkewError("RequestTimeTooSkewed", ""));
  EXPECT_TRUE(IsClockSkewError("",
                               "The difference between the request time and the current "
                               "time is too large. Request time too skewed"));
  // The local emulator's wording, and case does not matter.
  EXPECT_TRUE(IsClockSkewError("InvalidSignatureException",
                               "signature expired: X-Amz-Date 20261204T000000Z is more than 15 "
                               "minutes from the server's time; check the clock"));
  EXPECT_TRUE(IsClockSkewError("invalidsignatureexception", "The signature has EXPIRED"));
  // Not skew: a wrong secret, an expired token.
  EXPECT_FALSE(IsClockSkewError("InvalidSignatureException",
                                "The request signature we calculated does not match the signature "
                                "you provided."));
  EXPECT_FALSE(IsClockSkewError("ExpiredTokenException",
                                "The security token included in the request is expired"));
  EXPECT_FALSE(IsClockSkewError("UnrecognizedClientException", "expired"));

  // The server time AWS names in parentheses.
  EXPECT_EQ(ServerTimeFromSkewMessage("Signature expired: 20261204T000000Z is now earlier than "
                                      "20261204T001500Z (20261204T002000Z - 5 min.)"),
            int64_t{1796342400000} + 20 * 60'000);
  EXPECT_EQ(ServerTimeFromSkewMessage("signature expired: check the clock"), 0);
  EXPECT_EQ(ServerTimeFromSkewMessage("expired (soon)"), 0);
}

TEST(SigV4, MissingCredentialsIsUnauthenticated) {
  http::Request r;
  r.url = "https://example.amazonaws.com/";
  EXPECT_EQ(SignRequest(&r, {}, {"us-east-1", "s", 0}).code(), Code::kUnauthenticated);
}

}  // namespace
}  // namespace tidings::aws

namespace tidings::aws {
namespace {

TEST(Endpoint, HttpsAnywhereHttpOnlyOnLoopback) {
  for (const char* ok : {"https://dynamodb.us-east-1.amazonaws.com", "https://10.0.0.5:8443/",
                         "http://127.0.0.1:8000", "http://127.9.8.7", "http://localhost:4566/",
                         "http://LOCALHOST", "http://[::1]:9000"}) {
    EXPECT_TRUE(CheckEndpoint(ok).ok()) << ok << ": " << CheckEndpoint(ok).ToString();
  }
  for (const char* refused :
       {"http://10.0.0.5:8000", "http://example.com", "http://127.0.0.1.evil.example",
        "http://localhost.evil.example", "http://127.0.0.1@evil.example/", "http://[::2]:80",
        "http://128.0.0.1", "http://127.0.0.256", "http://127.1", "ftp://127.0.0.1", "https://",
        "dynamodb.us-east-1.amazonaws.com", ""}) {
    Status s = CheckEndpoint(refused);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << refused;
    EXPECT_NE(s.message().find("https://"), std::string::npos) << s.message();
  }
  EXPECT_NE(CheckEndpoint("http://10.0.0.5").message().find("loopback"), std::string::npos);
}

TEST(Endpoint, TheEnvironmentsEndpointIsCheckedToo) {
  ::setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://10.0.0.5:8000", 1);
  EXPECT_EQ(CheckEndpointSetting("", "DYNAMODB").code(), Code::kInvalidArgument);
  EXPECT_TRUE(CheckEndpointSetting("http://127.0.0.1:8000", "DYNAMODB").ok());
  ::unsetenv("AWS_ENDPOINT_URL_DYNAMODB");
  ::setenv("AWS_ENDPOINT_URL", "http://db.example:8000", 1);
  EXPECT_EQ(CheckEndpointSetting("", "DYNAMODB").code(), Code::kInvalidArgument);
  ::unsetenv("AWS_ENDPOINT_URL");
  EXPECT_TRUE(CheckEndpointSetting("", "DYNAMODB").ok());  // the https default
}

// An HttpClient that counts what it was asked to send.
class CountingHttp final : public http::HttpClient {
 public:
  explicit CountingHttp(int* sent) : sent_(sent) {}
  Result<http::Response> Send(const http::Request&) override {
    ++*sent_;
    return http::Response{200, {}, "{}"};
  }
  void Cancel() override {}

 private:
  int* sent_;
};

TEST(Endpoint, NoRequestLeavesForAPlainHttpRemoteHost) {
  int sent = 0;
  ServiceConfig service;
  service.signing_name = "dynamodb";
  service.region = "us-east-1";
  service.verify_crc32 = false;
  service.endpoint = "http://10.0.0.5:8000";
  AwsJsonClient remote(service, StaticCredentials({"AKID", "secret", "", 0}),
                       std::make_unique<CountingHttp>(&sent));
  EXPECT_EQ(remote.Call("ListTables", "{}").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(sent, 0);
  service.endpoint = "http://127.0.0.1:8000";
  AwsJsonClient local(service, StaticCredentials({"AKID", "secret", "", 0}),
                      std::make_unique<CountingHttp>(&sent));
  EXPECT_TRUE(local.Call("ListTables", "{}").ok());
  EXPECT_EQ(sent, 1);
}

}  // namespace
}  // namespace tidings::aws
