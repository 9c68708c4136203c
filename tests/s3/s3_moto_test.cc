// S3Client against a real moto_server on 127.0.0.1 (an ephemeral port,
// started here and stopped after), with SigV4 verification and IAM on: the
// device user's policy (tests/s3/s3_moto_setup.py) allows only the object
// and multipart actions on one bucket.
//
// What moto (5.x) does not do, so is not tested here: it does not compare
// the body with x-amz-content-sha256 (XAmzContentSHA256Mismatch), does not
// check the request time (RequestTimeTooSkewed), and does not paginate
// ListMultipartUploads (it ignores max-uploads and never truncates; the
// paging is tested against a scripted server in s3_client_test.cc); an
// UploadPart to an aborted upload gets a 500 from moto, not 404 NoSuchUpload.
// tests/common/moto_server.py makes moto check S3 signatures against the
// request line as sent, as S3 does (moto's own check fails botocore too on a
// key with "+" or "(", or a Prefix with "/").
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "sync/s3/s3_client.h"
#include "tests/dynamodb/moto_fixture.h"

namespace tidings::s3 {
namespace {

constexpr char kBucket[] = "tidings-s3-test";

class S3Moto : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new testing::MotoServer();
    std::string why;
    if (!server_->Start(kBucket, &why)) {
      skip_reason_ = new std::string(why);
      return;
    }
    auto admin = Client(server_->admin_credentials());
    if (!admin.ok()) {
      skip_reason_ = new std::string(admin.status().ToString());
      return;
    }
    Status created = (*admin)->CreateBucket(kBucket);
    if (!created.ok()) skip_reason_ = new std::string("CreateBucket: " + created.ToString());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (skip_reason_) FAIL() << *skip_reason_;
  }

  static Result<std::unique_ptr<S3Client>> Client(const aws::Credentials& credentials) {
    S3Config config;
    config.endpoint = server_->endpoint();
    config.region = "us-east-1";
    config.request_timeout_ms = 60'000;
    return S3Client::Create(config, aws::StaticCredentials(credentials));
  }
  // A client as the device user (the policy's).
  static std::unique_ptr<S3Client> Device() {
    auto c = Client(server_->credentials());
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(*c);
  }

  static std::string Random(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string out(n, '\0');
    for (size_t i = 0; i < n; i += 8) {
      uint64_t v = rng();
      for (size_t j = 0; j < 8 && i + j < n; ++j) out[i + j] = static_cast<char>(v >> (8 * j));
    }
    return out;
  }

  static testing::MotoServer* server_;
  static std::string* skip_reason_;
};

testing::MotoServer* S3Moto::server_ = nullptr;
std::string* S3Moto::skip_reason_ = nullptr;

TEST_F(S3Moto, PutHeadRangesDelete) {
  auto s3 = Device();
  const std::string body = Random(100'000, 1);
  auto etag = s3->PutObject(kBucket, "objects/one", body);
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();

  auto info = s3->HeadObject(kBucket, "objects/one");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, body.size());
  EXPECT_EQ(info->etag, *etag);

  auto middle = s3->GetObjectRange(kBucket, "objects/one", 1000, 5000, *etag);
  ASSERT_TRUE(middle.ok()) << middle.status().ToString();
  EXPECT_EQ(middle->data, body.substr(1000, 5000));
  EXPECT_EQ(middle->object_size, body.size());

  // A range that runs past the end: the rest of the object.
  auto tail = s3->GetObjectRange(kBucket, "objects/one", 99'990, 100);
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  EXPECT_EQ(tail->data, body.substr(99'990));
  // One that starts past it: InvalidRange.
  auto past = s3->GetObjectRange(kBucket, "objects/one", 100'000, 10);
  EXPECT_EQ(past.status().code(), Code::kInvalidArgument) << past.status().ToString();

  // The object changed since the ETag was read.
  ASSERT_TRUE(s3->PutObject(kBucket, "objects/one", "replaced").ok());
  auto stale = s3->GetObjectRange(kBucket, "objects/one", 0, 10, *etag);
  EXPECT_EQ(stale.status().code(), Code::kFailedPrecondition) << stale.status().ToString();

  ASSERT_TRUE(s3->DeleteObject(kBucket, "objects/one").ok());
  EXPECT_EQ(s3->HeadObject(kBucket, "objects/one").status().code(), Code::kNotFound);
  auto gone = s3->GetObjectRange(kBucket, "objects/one", 0, 10);
  EXPECT_EQ(gone.status().code(), Code::kNotFound) << gone.status().ToString();
  EXPECT_NE(gone.status().message().find("NoSuchKey"), std::string::npos);
  EXPECT_TRUE(s3->DeleteObject(kBucket, "objects/one").ok()) << "deleting nothing is fine";
}

TEST_F(S3Moto, KeysWithSpacesUnicodeAndReservedCharacters) {
  auto s3 = Device();
  for (const std::string key : {"dir/with space/file (1).bin", "caf\xC3\xA9/\xF0\x9F\x93\xB7.jpg",
                                "a+b=c&d?e#f%20g~h", "trailing/slash/"}) {
    auto put = s3->PutObject(kBucket, key, "contents of " + key);
    ASSERT_TRUE(put.ok()) << key << ": " << put.status().ToString();
    auto got = s3->GetObjectRange(kBucket, key, 0, 1000);
    ASSERT_TRUE(got.ok()) << key << ": " << got.status().ToString();
    EXPECT_EQ(got->data, "contents of " + key);
    EXPECT_TRUE(s3->DeleteObject(kBucket, key).ok());
  }
}

TEST_F(S3Moto, MultipartUploadOfThreePartsReadsBackByRanges) {
  auto s3 = Device();
  const std::string key = "attachments/three-parts";
  const std::vector<std::string> chunks = {Random(kMinPartSize, 10), Random(kMinPartSize, 11),
                                           Random(1'234'567, 12)};
  auto upload = s3->CreateMultipartUpload(kBucket, key);
  ASSERT_TRUE(upload.ok()) << upload.status().ToString();
  std::vector<PartInfo> done;
  for (int i = 0; i < 3; ++i) {
    // The second part is read as it is sent (libcurl's read callback), in
    // small reads, with an unsigned payload (moto checks the signature over
    // UNSIGNED-PAYLOAD as S3 does); the others are sent from memory.
    const std::string& chunk = chunks[i];
    auto etag = i != 1
                    ? s3->UploadPart(kBucket, key, *upload, i + 1, chunk)
                    : s3->UploadPart(
                          kBucket, key, *upload, i + 1, chunk.size(),
                          [&](uint64_t offset, char* buf, size_t cap) {
                            const size_t n = std::min<size_t>({cap, 10'000, chunk.size() - offset});
                            std::memcpy(buf, chunk.data() + offset, n);
                            return Result<size_t>(n);
                          },
                          S3Client::Payload::kUnsigned);
    ASSERT_TRUE(etag.ok()) << etag.status().ToString();
    done.push_back({i + 1, *etag, chunks[i].size()});
  }
  // Two parts a page: the listing follows NextPartNumberMarker.
  auto listed = s3->ListParts(kBucket, key, *upload, 2);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*listed)[i].part_number, i + 1);
    EXPECT_EQ((*listed)[i].etag, done[i].etag);
    EXPECT_EQ((*listed)[i].size, chunks[i].size());
  }
  auto etag = s3->CompleteMultipartUpload(kBucket, key, *upload, done);
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();

  const std::string whole = chunks[0] + chunks[1] + chunks[2];
  auto info = s3->HeadObject(kBucket, key);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, whole.size());
  EXPECT_EQ(info->etag, *etag);
  // Read back in 4 MiB ranges (they straddle the part boundaries).
  std::string read;
  const uint64_t kRange = 4 << 20;
  while (read.size() < whole.size()) {
    auto r = s3->GetObjectRange(kBucket, key, read.size(), kRange, *etag);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_FALSE(r->data.empty());
    read += r->data;
  }
  EXPECT_TRUE(read == whole) << "read back differs";
  // Completed: the upload is gone.
  EXPECT_EQ(s3->ListParts(kBucket, key, *upload).status().code(), Code::kNotFound);
  ASSERT_TRUE(s3->DeleteObject(kBucket, key).ok());
}

// A streamed part whose reader fails while libcurl sends it: the call fails
// with the reader's error (not as a cancel), and the client goes on.
TEST_F(S3Moto, AStreamedPartWhoseReaderFailsMidwayFailsWithItsError) {
  auto s3 = Device();
  const std::string key = "attachments/failing-reader";
  const std::string chunk = Random(kMinPartSize, 13);
  auto upload = s3->CreateMultipartUpload(kBucket, key);
  ASSERT_TRUE(upload.ok()) << upload.status().ToString();
  uint64_t read = 0;
  auto failed = s3->UploadPart(kBucket, key, *upload, 1, chunk.size(),
                               [&](uint64_t offset, char* buf, size_t cap) -> Result<size_t> {
                                 // The hash reads the part once; the send fails halfway through.
                                 read += cap;
                                 if (read > chunk.size() + chunk.size() / 2)
                                   return IOError("the disk went away");
                                 const size_t n = std::min<size_t>(cap, chunk.size() - offset);
                                 std::memcpy(buf, chunk.data() + offset, n);
                                 return n;
                               });
  EXPECT_EQ(failed.status().code(), Code::kIOError) << failed.status().ToString();
  EXPECT_TRUE(s3->UploadPart(kBucket, key, *upload, 1, chunk).ok());
  ASSERT_TRUE(s3->AbortMultipartUpload(kBucket, key, *upload).ok());
}

TEST_F(S3Moto, UploadResumesInANewClientAfterACrash) {
  const std::string key = "attachments/resumed";
  const std::vector<std::string> chunks = {Random(kMinPartSize, 20), Random(kMinPartSize, 21),
                                           Random(4096, 22)};
  std::string upload_id;  // what the uploader persisted before it died
  {
    auto before = Device();
    auto upload = before->CreateMultipartUpload(kBucket, key);
    ASSERT_TRUE(upload.ok());
    upload_id = *upload;
    ASSERT_TRUE(before->UploadPart(kBucket, key, upload_id, 1, chunks[0]).ok());
    ASSERT_TRUE(before->UploadPart(kBucket, key, upload_id, 2, chunks[1]).ok());
  }  // the client is gone, the part ETags with it

  auto after = Device();
  // The restart finds its unfinished upload, and what S3 holds of it.
  auto uploads = after->ListMultipartUploads(kBucket, "attachments/");
  ASSERT_TRUE(uploads.ok()) << uploads.status().ToString();
  bool found = false;
  for (const auto& u : *uploads) found |= u.key == key && u.upload_id == upload_id;
  EXPECT_TRUE(found);
  auto parts = after->ListParts(kBucket, key, upload_id);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].size, kMinPartSize);
  EXPECT_EQ((*parts)[1].part_number, 2);
  // It continues from part 3 rather than starting again.
  auto third = after->UploadPart(kBucket, key, upload_id, 3, chunks[2]);
  ASSERT_TRUE(third.ok());
  std::vector<PartInfo> all = *parts;
  all.push_back({3, *third, chunks[2].size()});
  ASSERT_TRUE(after->CompleteMultipartUpload(kBucket, key, upload_id, all).ok());
  auto head = after->HeadObject(kBucket, key);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->size, 2 * kMinPartSize + 4096);
  auto last = after->GetObjectRange(kBucket, key, kMinPartSize - 10, 20);
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->data == chunks[0].substr(kMinPartSize - 10) + chunks[1].substr(0, 10));
  ASSERT_TRUE(after->DeleteObject(kBucket, key).ok());
}

TEST_F(S3Moto, AbortedUploadsAreNotListedAndRefuseParts) {
  auto s3 = Device();
  auto open = s3->CreateMultipartUpload(kBucket, "orphans/open");
  auto aborted = s3->CreateMultipartUpload(kBucket, "orphans/aborted");
  auto elsewhere = s3->CreateMultipartUpload(kBucket, "elsewhere/open");
  ASSERT_TRUE(open.ok() && aborted.ok() && elsewhere.ok());
  auto first = s3->UploadPart(kBucket, "orphans/aborted", *aborted, 1, "x");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(s3->AbortMultipartUpload(kBucket, "orphans/aborted", *aborted).ok());

  auto listed = s3->ListMultipartUploads(kBucket, "orphans/");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].key, "orphans/open");
  EXPECT_EQ((*listed)[0].upload_id, *open);

  EXPECT_EQ(s3->ListParts(kBucket, "orphans/aborted", *aborted).status().code(), Code::kNotFound);
  // S3 answers 404 NoSuchUpload (NotFound, s3_client_test.cc); moto 5 answers
  // 500 (a KeyError in its upload_part), retried and then Unavailable.
  EXPECT_FALSE(s3->UploadPart(kBucket, "orphans/aborted", *aborted, 2, "y").ok());
  EXPECT_EQ(s3->AbortMultipartUpload(kBucket, "orphans/aborted", *aborted).code(), Code::kNotFound);

  ASSERT_TRUE(s3->AbortMultipartUpload(kBucket, "orphans/open", *open).ok());
  ASSERT_TRUE(s3->AbortMultipartUpload(kBucket, "elsewhere/open", *elsewhere).ok());
  auto none = s3->ListMultipartUploads(kBucket, "orphans/");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(S3Moto, CompleteRefusesSmallPartsAndUnknownETags) {
  auto s3 = Device();
  const std::string key = "attachments/small";
  auto upload = s3->CreateMultipartUpload(kBucket, key);
  ASSERT_TRUE(upload.ok());
  auto e1 = s3->UploadPart(kBucket, key, *upload, 1, "small one");
  auto e2 = s3->UploadPart(kBucket, key, *upload, 2, "small two");
  ASSERT_TRUE(e1.ok() && e2.ok());
  std::vector<PartInfo> parts = {{1, *e1, 0}, {2, *e2, 0}};
  auto small = s3->CompleteMultipartUpload(kBucket, key, *upload, parts);
  EXPECT_EQ(small.status().code(), Code::kInvalidArgument) << small.status().ToString();
  EXPECT_NE(small.status().message().find("EntityTooSmall"), std::string::npos);
  std::vector<PartInfo> wrong = {{1, "\"0123456789abcdef0123456789abcdef\"", 0}};
  auto unknown = s3->CompleteMultipartUpload(kBucket, key, *upload, wrong);
  EXPECT_EQ(unknown.status().code(), Code::kInvalidArgument) << unknown.status().ToString();
  EXPECT_NE(unknown.status().message().find("InvalidPart"), std::string::npos);
  ASSERT_TRUE(s3->AbortMultipartUpload(kBucket, key, *upload).ok());
}

TEST_F(S3Moto, WrongCredentialsAreUnauthenticated) {
  aws::Credentials unknown{"AKIAUNKNOWNKEY000000", "not-a-secret", "", 0};
  auto stranger = Client(unknown);
  ASSERT_TRUE(stranger.ok());
  auto r = (*stranger)->PutObject(kBucket, "k", "x");
  EXPECT_EQ(r.status().code(), Code::kUnauthenticated) << r.status().ToString();
  EXPECT_NE(r.status().message().find("InvalidAccessKeyId"), std::string::npos);

  aws::Credentials wrong_secret = server_->credentials();
  wrong_secret.secret_access_key = crypto::SharedSecret(std::string("wrong-secret-value"));
  auto forger = Client(wrong_secret);
  ASSERT_TRUE(forger.ok());
  auto g = (*forger)->GetObjectRange(kBucket, "k", 0, 1);
  EXPECT_EQ(g.status().code(), Code::kUnauthenticated) << g.status().ToString();
  EXPECT_NE(g.status().message().find("SignatureDoesNotMatch"), std::string::npos);
  EXPECT_EQ(g.status().message().find("wrong-secret-value"), std::string::npos);
}

TEST_F(S3Moto, ActionsOutsideThePolicyArePermissionDenied) {
  auto s3 = Device();
  const std::string other = std::string(kBucket) + "-other";
  auto put = s3->PutObject(other, "k", "x");
  EXPECT_EQ(put.status().code(), Code::kPermissionDenied) << put.status().ToString();
  EXPECT_NE(put.status().message().find("AccessDenied"), std::string::npos);
  EXPECT_EQ(s3->CreateMultipartUpload(other, "k").status().code(), Code::kPermissionDenied);
  EXPECT_EQ(s3->ListMultipartUploads(other, "").status().code(), Code::kPermissionDenied);
  EXPECT_EQ(s3->CreateBucket("tidings-s3-test-new").code(), Code::kPermissionDenied);
  // The admin may; in us-east-1 creating a bucket one owns again is a no-op.
  auto admin = Client(server_->admin_credentials());
  ASSERT_TRUE(admin.ok());
  EXPECT_TRUE((*admin)->CreateBucket(kBucket).ok());
}

}  // namespace
}  // namespace tidings::s3
