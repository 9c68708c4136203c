// Attachments from one store to another through real servers: DynamoDB
// (the operations, end-to-end encrypted) and S3 (the objects), each a
// moto_server on 127.0.0.1 with SigV4 and IAM on, started here and stopped
// after. A 10 MB photo and a 200 MB file arrive byte for byte; neither the
// bucket nor the table holds a file's bytes or name in the clear; a byte
// changed on the server is refused; deleting the message frees the files
// on both devices; an evicted copy comes back with the next fetch; a running
// sync uploads on its own thread.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "crypto/hash.h"
#include "engine/store.h"
#include "sync/attachments/s3_object_store.h"
#include "sync/core/attachment_sync.h"
#include "sync/core/reconciler.h"
#include "sync/core/sync_engine.h"
#include "sync/dynamodb/dynamodb_backend.h"
#include "tests/attachments/transfer_test_util.h"
#include "tests/common/eventually.h"
#include "tests/dynamodb/moto_fixture.h"
#include "tests/engine/test_util.h"

namespace tidings::attachments {
namespace {

using tidings::testing::Eventually;

constexpr char kTable[] = "tidings";
constexpr char kBucket[] = "tidings-attachments-test";
const std::string kNameMarker = "CANARY-NAME-jdoe-rash";
const std::string kBodyMarker = "CANARY-BYTES-7f3a9c";

testing::MotoServer* dynamo = nullptr;
testing::MotoServer* s3 = nullptr;

class Servers : public ::testing::Environment {
 public:
  void SetUp() override {
    dynamo = new testing::MotoServer();
    s3 = new testing::MotoServer();
    std::string why;
    if (!dynamo->Start(kTable, &why) || !s3->Start(kBucket, &why, S3_MOTO_SETUP)) {
      std::fprintf(stderr, "%s\n", why.c_str());
      std::abort();
    }
    auto admin = S3Client(s3->admin_credentials());
    ASSERT_TRUE(admin->CreateBucket(kBucket).ok());
  }
  void TearDown() override {
    delete dynamo;
    delete s3;
  }
  static std::unique_ptr<s3::S3Client> S3Client(const aws::Credentials& credentials) {
    s3::S3Config config;
    config.endpoint = s3->endpoint();
    config.region = "us-east-1";
    config.request_timeout_ms = 120'000;
    auto c = s3::S3Client::Create(config, aws::StaticCredentials(credentials));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
};
::testing::Environment* const env = ::testing::AddGlobalTestEnvironment(new Servers);

// One device: its store, the DynamoDB backend acting as `user`, the S3
// attachment store and the reconciler that uses both.
struct Device {
  explicit Device(const std::string& path, const std::string& user) {
    auto opened = engine::Store::Open(path, tidings::testing::TestKey(),
                                      tidings::testing::CreateOptions(user));
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    store = std::move(opened).value();
    dynamodb::DynamoConfig c;
    c.table = kTable;
    c.user_id = user;
    c.region = "us-east-1";
    c.endpoint = dynamo->endpoint();
    backend =
        dynamodb::DynamoBackend::Create(c, aws::StaticCredentials(dynamo->CredentialsFor(user)));
    client = Servers::S3Client(s3->credentials());
    attachments = std::make_unique<sync::AttachmentSync>(
        &store->sync_log(), std::make_unique<S3ObjectStore>(*client, kBucket), kBucket);
    rec = std::make_unique<sync::Reconciler>(
        &store->sync_log(), backend.get(), sync::SyncConfig{},
        [] { return int64_t{1'700'000'000'000}; }, [] { return uint64_t{1}; });
    rec->set_attachment_transfers(attachments.get());
  }
  std::unique_ptr<engine::Store> store;
  std::unique_ptr<dynamodb::DynamoBackend> backend;
  std::unique_ptr<s3::S3Client> client;
  std::unique_ptr<sync::AttachmentSync> attachments;
  std::unique_ptr<sync::Reconciler> rec;
};

void SyncBoth(Device& a, Device& b) {
  for (int round = 0; round < 3; ++round) {
    Status sa = a.rec->SyncAll();
    Status sb = b.rec->SyncAll();
    ASSERT_TRUE(sa.ok() && sb.ok()) << sa.ToString() << " / " << sb.ToString();
  }
}

// Writes `n` bytes of seeded randomness (a marker every MiB when asked) to
// `path` a MiB at a time, and returns their SHA-256.
crypto::Digest256 WriteFile(const std::string& path, size_t n, uint32_t seed, bool marked) {
  std::ofstream out(path, std::ios::binary);
  crypto::Sha256Hasher hash;
  for (size_t at = 0; at < n; at += 1 << 20) {
    std::string chunk = testing_util::Bytes(std::min<size_t>(1 << 20, n - at), seed + at);
    if (marked && chunk.size() > kBodyMarker.size())
      chunk.replace(0, kBodyMarker.size(), kBodyMarker);
    out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    hash.Update(chunk);
  }
  return hash.Finish();
}

crypto::Digest256 HashFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  crypto::Sha256Hasher hash;
  std::string buf(1 << 20, '\0');
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    hash.Update(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
  }
  return hash.Finish();
}

std::string Hex(std::string_view bytes) { return crypto::HexEncode(bytes); }

// Whether the object `key` in the bucket holds `needle`, read as the admin a
// range at a time (ranges overlap by the needle's length).
bool ObjectHolds(s3::S3Client& admin, const std::string& key, uint64_t size,
                 const std::string& needle) {
  const uint64_t range = 8 << 20;
  for (uint64_t at = 0; at < size; at += range - needle.size()) {
    auto got = admin.GetObjectRange(kBucket, key, at, std::min(range, size - at));
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok() || got->data.find(needle) != std::string::npos) return true;
    if (at + range >= size) break;
  }
  return false;
}

TEST(AttachmentRoundTrip, APhotoAndALargeFileArriveWholeAndOnlyCiphertextLeaves) {
  tidings::testing::TempDir dir;
  Device a(dir / "hana", "hana"), b(dir / "ivan", "ivan");
  const std::string photo = dir / (kNameMarker + ".jpg");
  const std::string big = dir / "scan.tiff";
  const crypto::Digest256 photo_hash = WriteFile(photo, 10'000'000, 1, /*marked=*/true);
  const crypto::Digest256 big_hash = WriteFile(big, 200'000'000, 2, /*marked=*/false);

  ASSERT_TRUE(a.store->PutConversation("consult", "Visit", {"hana", "ivan"}).ok());
  engine::SendRequest r{.conversation_id = "consult", .body = "the rash, and the scan"};
  r.attachments.push_back({.path = photo,
                           .name = kNameMarker + ".jpg",
                           .content_type = "image/jpeg",
                           .preview = "thumb"});
  r.attachments.push_back({.path = big, .name = "scan.tiff", .content_type = "image/tiff"});
  auto sent = a.store->Send(r);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  SyncBoth(a, b);

  // The sender's objects went up; the message reached the other device.
  for (const auto& at : sent->attachments) {
    auto info = a.store->GetAttachment(at.object);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->state, engine::AttachmentState::kSent);
    EXPECT_EQ(info->location, kBucket);
  }
  EXPECT_TRUE(a.store->Outbox(0)->empty());
  auto got = b.store->Get(sent->id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->attachments.size(), 2u);
  EXPECT_EQ(got->attachments[0].name, kNameMarker + ".jpg");
  EXPECT_EQ(got->attachments[0].preview, "thumb");
  EXPECT_EQ(got->attachments[1].size, 200'000'000u);
  for (const auto& at : got->attachments) {
    EXPECT_EQ(b.store->GetAttachment(at.object)->state, engine::AttachmentState::kRemote);
  }

  // Fetched and exported on the other device: the same bytes.
  const std::pair<const engine::Attachment*, crypto::Digest256> files[] = {
      {&got->attachments[0], photo_hash}, {&got->attachments[1], big_hash}};
  for (const auto& file : files) {
    const engine::Attachment* at = file.first;  // named: lambdas cannot capture bindings
    const crypto::Digest256& hash = file.second;
    uint64_t last = 0;
    Status fetched = b.attachments->Fetch(at->object, [&](uint64_t done, uint64_t total) {
      EXPECT_GE(done, last);
      EXPECT_EQ(total, at->object_size);
      last = done;
    });
    ASSERT_TRUE(fetched.ok()) << fetched.ToString();
    EXPECT_EQ(last, at->object_size);
    EXPECT_EQ(b.store->GetAttachment(at->object)->state, engine::AttachmentState::kAvailable);
    const std::string out = dir / ("out-" + at->name);
    ASSERT_TRUE(b.store->ExportAttachment(at->object, out).ok());
    EXPECT_EQ(HashFile(out), hash) << at->name;
    std::remove(out.c_str());
  }

  // The bucket: opaque keys, ciphertext only.
  auto admin = Servers::S3Client(s3->admin_credentials());
  for (const auto& at : got->attachments) {
    const std::string key = ObjectKey(at.object);
    EXPECT_EQ(key, "tidings/" + Hex(at.object));
    EXPECT_FALSE(ObjectHolds(*admin, key, at.object_size, kBodyMarker));
    EXPECT_FALSE(ObjectHolds(*admin, key, at.object_size, kNameMarker));
  }
  // The table: the references travelled sealed, names and keys included.
  auto logs = b.backend->ListLogs();
  ASSERT_TRUE(logs.ok());
  ASSERT_FALSE(logs->empty());
  for (const auto& log : *logs) {
    std::string cursor;
    for (int page = 0; page < 100; ++page) {
      auto frames = b.backend->PullFrames(log, cursor, 100);
      ASSERT_TRUE(frames.ok()) << frames.status().ToString();
      for (const auto& f : frames->frames) {
        EXPECT_EQ(f.bytes.find(kNameMarker), std::string::npos);
        EXPECT_EQ(f.bytes.find(got->attachments[0].content_key), std::string::npos);
      }
      cursor = frames->next_cursor;
      if (!frames->has_more) break;
    }
  }

  // Evicted, then fetched again; then the message is deleted and both
  // devices free the files.
  const std::string& photo_object = got->attachments[0].object;
  ASSERT_TRUE(b.store->EvictAttachment(photo_object).ok());
  EXPECT_EQ(b.store->GetAttachment(photo_object)->state, engine::AttachmentState::kEvicted);
  ASSERT_TRUE(b.attachments->Fetch(photo_object).ok());
  EXPECT_EQ(b.store->GetAttachment(photo_object)->state, engine::AttachmentState::kAvailable);
  ASSERT_TRUE(a.store->Delete(sent->id).ok());
  SyncBoth(a, b);
  for (auto* d : {&a, &b}) {
    EXPECT_TRUE(d->store->Attachments()->empty());
    auto verify = d->store->Verify(nullptr);
    ASSERT_TRUE(verify.ok());
    EXPECT_EQ(verify->problems, 0u);
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "ivan/attachments/objects/" + Hex(photo_object)));
}

// A running sync (the daemon's way) uploads on AttachmentSync's upload
// thread, through the same S3 pool, and pushes the send when the upload's
// end wakes it: a message sent after a 40 MB file (seven parts), in another
// conversation, goes first; then the file's send, and the file arrives
// whole.
TEST(AttachmentRoundTrip, ARunningSyncUploadsOnItsOwnThread) {
  tidings::testing::TempDir dir;
  Device a(dir / "hana", "hana"), b(dir / "ivan", "ivan");
  const std::string file = dir / "scan.tiff";
  const crypto::Digest256 hash = WriteFile(file, 40'000'000, 3, /*marked=*/false);
  ASSERT_TRUE(a.store->PutConversation("consult", "Visit", {"hana", "ivan"}).ok());
  ASSERT_TRUE(a.store->PutConversation("chat", "Chat", {"hana", "ivan"}).ok());

  sync::SyncConfig config;
  config.active_poll_ms = config.idle_poll_ms = 3'600'000;  // pushes and wakes only
  sync::SyncEngine engine(&a.store->sync_log(), a.backend.get(), config);
  ASSERT_TRUE(engine.SetAttachmentTransfers(a.attachments.get()).ok());
  ASSERT_TRUE(engine.Start().ok());
  engine::SendRequest r{.conversation_id = "consult", .body = "the scan"};
  r.attachments.push_back({.path = file, .name = "scan.tiff", .content_type = "image/tiff"});
  auto sent = a.store->Send(r);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  auto text = a.store->Send({.conversation_id = "chat", .body = "sent it"});
  ASSERT_TRUE(text.ok());
  auto is_sent = [&](const std::string& id) {
    return a.store->Get(id)->state == engine::MessageState::kSent;
  };
  // Both waits share one two-minute budget.
  using std::chrono::milliseconds;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  auto left = [&] {
    return std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
  };
  Eventually([&] { return is_sent(text->id); }, left(), milliseconds(1));
  // Uploading on the sync thread, the round would push the file's send
  // first, its upload done, and the text after it.
  EXPECT_FALSE(is_sent(sent->id)) << "the text waited for the upload";
  Eventually([&] { return is_sent(sent->id); }, left(), milliseconds(20));
  engine.Stop();
  ASSERT_TRUE(is_sent(text->id) && is_sent(sent->id));
  for (const auto& st : engine.Snapshot()) {
    EXPECT_EQ(st.consecutive_failures, 0u) << st.conversation_id << ": " << st.last_error;
  }

  SyncBoth(a, b);  // ivan's device announces itself and gets hana's re-share
  ASSERT_TRUE(b.store->Get(text->id).ok());
  auto got = b.store->Get(sent->id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->attachments.size(), 1u);
  ASSERT_TRUE(b.attachments->Fetch(got->attachments[0].object).ok());
  const std::string out = dir / "out-scan.tiff";
  ASSERT_TRUE(b.store->ExportAttachment(got->attachments[0].object, out).ok());
  EXPECT_EQ(HashFile(out), hash);
}

TEST(AttachmentRoundTrip, AByteChangedOnTheServerIsRefusedAndNothingIsKept) {
  tidings::testing::TempDir dir;
  Device a(dir / "hana", "hana"), b(dir / "ivan", "ivan");
  const std::string photo = dir / "photo.jpg";
  WriteFile(photo, 3'000'000, 3, /*marked=*/false);
  ASSERT_TRUE(a.store->PutConversation("tamper", "Visit", {"hana", "ivan"}).ok());
  engine::SendRequest r{.conversation_id = "tamper", .body = "photo"};
  r.attachments.push_back({.path = photo, .name = "photo.jpg"});
  auto sent = a.store->Send(r);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  SyncBoth(a, b);
  const engine::Attachment& at = sent->attachments[0];
  ASSERT_EQ(b.store->GetAttachment(at.object)->state, engine::AttachmentState::kRemote);

  auto admin = Servers::S3Client(s3->admin_credentials());
  auto object = admin->GetObjectRange(kBucket, ObjectKey(at.object), 0, at.object_size);
  ASSERT_TRUE(object.ok()) << object.status().ToString();
  std::string changed = object->data;
  changed[changed.size() / 2] ^= 0x01;
  ASSERT_TRUE(admin->PutObject(kBucket, ObjectKey(at.object), changed).ok());

  Status fetched = b.attachments->Fetch(at.object);
  EXPECT_EQ(fetched.code(), Code::kDataLoss) << fetched.ToString();
  EXPECT_EQ(b.store->GetAttachment(at.object)->state, engine::AttachmentState::kRemote);
  EXPECT_EQ(b.store->ExportAttachment(at.object, dir / "out").code(), Code::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(dir / "out"));

  // Put right on the server: the next fetch starts over and succeeds.
  ASSERT_TRUE(admin->PutObject(kBucket, ObjectKey(at.object), object->data).ok());
  ASSERT_TRUE(b.attachments->Fetch(at.object).ok());
  ASSERT_TRUE(b.store->ExportAttachment(at.object, dir / "out").ok());
  EXPECT_EQ(HashFile(dir / "out"), HashFile(photo));
}

// With an automatic-fetch size, the small file of a merged message is
// downloaded by the sync itself; the larger one waits for a fetch.
TEST(AttachmentRoundTrip, SmallFilesComeDownWithTheirMessage) {
  tidings::testing::TempDir dir;
  Device a(dir / "hana", "hana"), b(dir / "ivan", "ivan");
  b.attachments->set_auto_fetch_max_bytes(1'000'000);
  const std::string small = dir / "note.pdf", large = dir / "scan.pdf";
  WriteFile(small, 100'000, 4, /*marked=*/false);
  WriteFile(large, 2'000'000, 5, /*marked=*/false);
  ASSERT_TRUE(a.store->PutConversation("auto", "Visit", {"hana", "ivan"}).ok());
  engine::SendRequest r{.conversation_id = "auto", .body = "two files"};
  r.attachments.push_back({.path = small, .name = "note.pdf"});
  r.attachments.push_back({.path = large, .name = "scan.pdf"});
  auto sent = a.store->Send(r);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  SyncBoth(a, b);
  EXPECT_EQ(b.store->GetAttachment(sent->attachments[0].object)->state,
            engine::AttachmentState::kAvailable);
  EXPECT_EQ(b.store->GetAttachment(sent->attachments[1].object)->state,
            engine::AttachmentState::kRemote);
  ASSERT_TRUE(b.store->ExportAttachment(sent->attachments[0].object, dir / "out").ok());
  EXPECT_EQ(HashFile(dir / "out"), HashFile(small));
}

}  // namespace
}  // namespace tidings::attachments
