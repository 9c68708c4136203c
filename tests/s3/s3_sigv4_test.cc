// S3 requests as S3Client sends them (URL, headers, payload hash) signed the
// same as botocore's S3SigV4Auth signs them: tests/s3/s3_sigv4_vectors.py
// prints botocore's URL and Authorization for the same requests at the same
// time.
#include <gtest/gtest.h>

#include <cstdio>
#include <deque>
#include <functional>

#include "sync/s3/s3_client.h"
#include "tests/s3/answer.h"

namespace tidings::s3 {
namespace {

class Recorder : public http::HttpClient {
 public:
  std::deque<http::Response>* answers;
  std::vector<http::Request>* sent;
  Result<http::Response> Send(const http::Request& request) override {
    sent->push_back(request);
    if (answers->empty()) return Unavailable("no answer scripted");
    http::Response r = std::move(answers->front());
    answers->pop_front();
    return r;
  }
  void Cancel() override {}
};

std::vector<std::string> BotocoreLines() {
  std::vector<std::string> lines;
  FILE* p = ::popen((std::string("python3 ") + S3_SIGV4_VECTORS).c_str(), "r");
  if (p == nullptr) return lines;
  char buf[4096];
  while (std::fgets(buf, sizeof(buf), p)) {
    std::string line(buf);
    while (!line.empty() && line.back() == '\n') line.pop_back();
    lines.push_back(line);
  }
  if (::pclose(p) != 0) lines.clear();
  return lines;
}

TEST(S3SigV4, MatchesBotocore) {
  const std::vector<std::string> expected = BotocoreLines();
  ASSERT_EQ(expected.size(), 14u) << "botocore vector script failed (python3 with botocore?)";
  const int64_t kTime = int64_t{1795523696} * 1000;  // 2026-11-24T12:34:56Z

  struct Case {
    std::string endpoint, region, token;
    std::vector<http::Response> answers;
    std::function<Status(S3Client&)> call;
  };
  const std::vector<PartInfo> parts = {{1, "\"e1\"", 0}, {2, "\"e2\"", 0}};
  const std::string etag_answer_key = "etag";
  std::vector<Case> cases = {
      {"https://s3.eu-west-1.amazonaws.com",
       "eu-west-1",
       "",
       {Answer(200, "", {{"etag", "\"e\""}})},
       [](S3Client& c) {
         return c.PutObject("tidings-attachments", "a/b/c.bin", "hello, S3").status();
       }},
      {"http://127.0.0.1:9000",
       "us-east-1",
       "",
       {Answer(206, std::string(1048576, 'x'), {{"content-range", "bytes 5-1048580/2000000"}})},
       [](S3Client& c) { return c.GetObjectRange("bucket", "obj", 5, 1048576).status(); }},
      {"http://127.0.0.1:9000",
       "us-east-1",
       "",
       {Answer(200, "", {{"etag", "\"e\""}})},
       [](S3Client& c) {
         return c
             .PutObject("bucket", "photos/rash photo \xC3\xA9\xC3\xBC+(1)~=&?.jpg",
                        std::string("\x00\x01"
                                    "binary\xff",
                                    9))
             .status();
       }},
      {"https://s3.eu-west-1.amazonaws.com",
       "eu-west-1",
       "",
       {Answer(200, "", {{"etag", "\"e\""}})},
       [](S3Client& c) {
         return c.UploadPart("tidings-attachments", "obj", "VXBsb2Fk+SUQ/x=y", 3, "part three")
             .status();
       }},
      {"http://127.0.0.1:9000",
       "us-east-1",
       "",
       {Answer(200,
               "<InitiateMultipartUploadResult><UploadId>u</UploadId>"
               "</InitiateMultipartUploadResult>")},
       [](S3Client& c) { return c.CreateMultipartUpload("bucket", "obj").status(); }},
      // The second page's request is the one compared.
      {"http://127.0.0.1:9000",
       "us-east-1",
       "",
       {Answer(200,
               "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
               "<NextKeyMarker>att/k 1</NextKeyMarker><NextUploadIdMarker>u+1"
               "</NextUploadIdMarker></ListMultipartUploadsResult>"),
        Answer(200, "<ListMultipartUploadsResult/>")},
       [](S3Client& c) { return c.ListMultipartUploads("bucket", "att/", 2).status(); }},
      {"http://127.0.0.1:9000",
       "us-east-1",
       "SESSIONTOKEN/with+chars=",
       {Answer(200,
               "<CompleteMultipartUploadResult><ETag>\"x\"</ETag>"
               "</CompleteMultipartUploadResult>")},
       [&parts](S3Client& c) {
         return c.CompleteMultipartUpload("bucket", "obj", "VXBsb2Fk+SUQ/x=y", parts).status();
       }},
  };
  ASSERT_EQ(cases.size() * 2, expected.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    std::deque<http::Response> answers(cases[i].answers.begin(), cases[i].answers.end());
    std::vector<http::Request> sent;
    auto recorder = std::make_unique<Recorder>();
    recorder->answers = &answers;
    recorder->sent = &sent;
    S3Config config;
    config.endpoint = cases[i].endpoint;
    config.region = cases[i].region;
    config.wall_clock_ms = [] { return kTime; };
    auto client = S3Client::Create(
        config,
        aws::StaticCredentials(
            {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", cases[i].token, 0}),
        std::move(recorder));
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    Status s = cases[i].call(**client);
    ASSERT_TRUE(s.ok()) << "case " << i << ": " << s.ToString();
    ASSERT_FALSE(sent.empty());
    const http::Request& r = sent.back();
    std::string auth;
    for (const auto& [k, v] : r.headers) {
      if (k == "authorization") auth = v;
    }
    EXPECT_EQ(r.url, expected[2 * i]) << "case " << i;
    EXPECT_EQ(auth, expected[2 * i + 1]) << "case " << i << "\n" << r.method << " " << r.url;
  }
}

}  // namespace
}  // namespace tidings::s3
