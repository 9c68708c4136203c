// The attachment transfer (sync/attachments/transfer.h) against a real
// moto_server on 127.0.0.1 (an ephemeral port, started here and stopped
// after) with SigV4 and IAM on: the device user may only touch objects and
// multipart uploads in one bucket (tests/s3/s3_moto_setup.py). An object
// goes up in parts, survives a crash between parts, comes down byte for
// byte on another device, and a changed byte on the server is refused.
#include <gtest/gtest.h>

#include <cstring>

#include "sync/attachments/s3_object_store.h"
#include "sync/attachments/transfer.h"
#include "tests/attachments/transfer_test_util.h"
#include "tests/dynamodb/moto_fixture.h"

namespace tidings::attachments {
namespace {

constexpr char kBucket[] = "tidings-attachments-test";

class S3Transfer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new testing::MotoServer();
    std::string why;
    if (!server_->Start(kBucket, &why)) {
      skip_reason_ = new std::string(why);
      return;
    }
    auto admin = Client(server_->admin_credentials());
    Status created = admin->CreateBucket(kBucket);
    if (!created.ok()) skip_reason_ = new std::string("CreateBucket: " + created.ToString());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (skip_reason_) FAIL() << *skip_reason_;
  }
  static s3::S3Config Config() {
    s3::S3Config config;
    config.endpoint = server_->endpoint();
    config.region = "us-east-1";
    config.request_timeout_ms = 60'000;
    return config;
  }
  static std::unique_ptr<s3::S3Client> Client(const aws::Credentials& credentials) {
    auto c = s3::S3Client::Create(Config(), aws::StaticCredentials(credentials));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  // The device's store: a pool of clients, one per part in flight.
  static std::unique_ptr<S3ObjectStore> DeviceStore() {
    auto s =
        S3ObjectStore::Create(Config(), aws::StaticCredentials(server_->credentials()), kBucket);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }

  static testing::MotoServer* server_;
  static std::string* skip_reason_;
};

testing::MotoServer* S3Transfer::server_ = nullptr;
std::string* S3Transfer::skip_reason_ = nullptr;

using namespace testing_util;

const TransferOptions kOptions{
    .part_bytes = 5 << 20, .multipart_from_bytes = 5 << 20, .range_bytes = 5 << 20};

TEST_F(S3Transfer, AnUploadCutByACrashResumesAndTheOtherDeviceGetsEveryByte) {
  Device sender, receiver;
  // A "photo" whose bytes carry a marker, and 12 MiB of it: three parts.
  std::string data = Bytes(12 << 20, 1);
  const std::string marker = "CANARY-PATIENT-PHOTO-7f3a";
  for (size_t at = 0; at + marker.size() < data.size(); at += 1 << 20) {
    data.replace(at, marker.size(), marker);
  }
  const Sent sent = Import(sender, data);
  const std::string key = ObjectKey(sent.object.id);

  // The sending process "dies" once the state after part 2 is saved (part 3
  // may have gone out beside part 2, or not).
  UploadState persisted;
  {
    auto store = DeviceStore();
    ASSERT_NE(store, nullptr);
    UploadState state;
    EXPECT_EQ(
        Upload(
            sender.files, sent.object.id, sent.key, sent.object.cipher_bytes, key, *store, &state,
            [&](const UploadState& s) {
              persisted = s;
              return s.parts.size() == 2 ? Aborted("killed") : Status::Ok();
            },
            kOptions)
            .code(),
        Code::kAborted);
  }
  ASSERT_EQ(persisted.parts.size(), 2u);
  // A new process (a new store) goes on from the saved state.
  auto store = DeviceStore();
  ASSERT_NE(store, nullptr);
  const uint64_t requests_before = store->requests();
  ASSERT_TRUE(Upload(
                  sender.files, sent.object.id, sent.key, sent.object.cipher_bytes, key, *store,
                  &persisted, [](const UploadState&) { return Status::Ok(); }, kOptions)
                  .ok());
  EXPECT_TRUE(persisted.done);
  // ListParts, at most one part, Complete: the two parts done were not sent
  // again, nor the third if it had reached the server.
  EXPECT_GE(store->requests() - requests_before, 2u);
  EXPECT_LE(store->requests() - requests_before, 3u);
  auto s3 = Client(server_->credentials());
  auto open = s3->ListMultipartUploads(kBucket, "tidings/");
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  EXPECT_TRUE(open->empty()) << "an orphaned multipart upload";

  // The bucket holds ciphertext under an opaque key.
  auto admin = Client(server_->admin_credentials());
  auto whole = admin->GetObjectRange(kBucket, key, 0, sent.object.cipher_bytes);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(whole->data.size(), sent.object.cipher_bytes);
  EXPECT_EQ(whole->data.find(marker), std::string::npos);
  EXPECT_EQ(key.find(marker), std::string::npos);

  ASSERT_TRUE(Download(receiver.files, sent.object.id, sent.key, sent.object.cipher_bytes, key,
                       *store, kOptions)
                  .ok());
  EXPECT_EQ(ReadAll(receiver, sent), data);
}

TEST_F(S3Transfer, AChangedByteOnTheServerIsRefusedAndNeverKept) {
  Device sender, receiver;
  const std::string data = Bytes(7 << 20, 2);
  const Sent sent = Import(sender, data);
  const std::string key = ObjectKey(sent.object.id);
  auto store = DeviceStore();
  ASSERT_NE(store, nullptr);
  UploadState state;
  ASSERT_TRUE(Upload(
                  sender.files, sent.object.id, sent.key, sent.object.cipher_bytes, key, *store,
                  &state, [](const UploadState&) { return Status::Ok(); }, kOptions)
                  .ok());
  // Someone with write access to the bucket flips one byte.
  auto admin = Client(server_->admin_credentials());
  auto whole = admin->GetObjectRange(kBucket, key, 0, sent.object.cipher_bytes);
  ASSERT_TRUE(whole.ok());
  std::string changed = whole->data;
  changed[6 << 20] ^= 0x01;
  ASSERT_TRUE(admin->PutObject(kBucket, key, changed).ok());
  EXPECT_EQ(Download(receiver.files, sent.object.id, sent.key, sent.object.cipher_bytes, key,
                     *store, kOptions)
                .code(),
            Code::kDataLoss);
  EXPECT_FALSE(receiver.files.Has(sent.object.id));
  EXPECT_EQ(*receiver.files.PartialBytes(sent.object.id), 0u);
  // Put back, it downloads whole.
  ASSERT_TRUE(admin->PutObject(kBucket, key, whole->data).ok());
  ASSERT_TRUE(Download(receiver.files, sent.object.id, sent.key, sent.object.cipher_bytes, key,
                       *store, kOptions)
                  .ok());
  EXPECT_EQ(ReadAll(receiver, sent), data);
}

}  // namespace
}  // namespace tidings::attachments
