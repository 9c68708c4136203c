// Attachments in the store (engine/attachment_records.cc): a send imports
// its files, objects are counted by the messages that hold them, the same
// file is stored once, the last delete frees the file, received objects wait
// for a fetch, the quota evicts downloaded copies, and verify checks it all.
#include <gtest/gtest.h>

#include <cstring>

#include "crypto/attachment_cipher.h"
#include "store_test_util.h"
#include "tests/common/test_files.h"

namespace tidings::engine {
namespace {

using testing::RandomBytes;
using testing::ReadWholeFile;
using testing::WriteWholeFile;

size_t ObjectFiles(const std::string& store) {
  std::error_code ec;
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(store + "/attachments/objects", ec)) {
    n += e.is_regular_file();
  }
  return n;
}

SendRequest WithFile(const std::string& conv, const std::string& path, std::string name) {
  SendRequest r = Msg(conv, "see attached");
  r.attachments.push_back(
      {.path = path, .name = std::move(name), .content_type = "image/jpeg", .preview = "tiny"});
  return r;
}

struct AttachmentsFixture {
  TempDir dir;
  TempDir files;
  std::unique_ptr<Store> store = MustOpen(dir.path() + "/s");
  std::string photo = files.path() + "/photo.jpg";
  std::string data = RandomBytes(200'000, 1);
  AttachmentsFixture() { WriteWholeFile(photo, data); }

  std::string Export(const std::string& object) {
    const std::string out = files.path() + "/out-" + std::to_string(exports++);
    Status s = store->ExportAttachment(object, out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return ReadWholeFile(out);
  }
  int exports = 0;
};

TEST(Attachments, ASendKeepsItsFileEncryptedAndCounted) {
  AttachmentsFixture f;
  EXPECT_FALSE(fs::exists(f.dir.path() + "/s/attachments")) << "made before any attachment";
  auto m = f.store->Send(WithFile("visit", f.photo, "rash.jpg"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->attachments.size(), 1u);
  const Attachment& a = m->attachments[0];
  EXPECT_EQ(a.name, "rash.jpg");
  EXPECT_EQ(a.content_type, "image/jpeg");
  EXPECT_EQ(a.size, f.data.size());
  EXPECT_EQ(a.object_size, crypto::AttachmentCipherSize(f.data.size()));
  EXPECT_EQ(a.preview, "tiny");
  EXPECT_TRUE(a.location.empty());

  auto info = f.store->GetAttachment(a.object);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->state, AttachmentState::kQueued);
  EXPECT_EQ(info->references, 1u);
  EXPECT_EQ(f.Export(a.object), f.data);

  // The object on disk is not the file, and holds no run of it.
  ASSERT_EQ(ObjectFiles(f.dir.path() + "/s"), 1u);
  ExpectOwnerOnly(f.dir.path() + "/s");
  const std::string object =
      ReadWholeFile(f.dir.path() + "/s/attachments/objects/" + crypto::HexEncode(a.object));
  EXPECT_EQ(object.size(), a.object_size);
  EXPECT_EQ(object.find(f.data.substr(1000, 32)), std::string::npos);

  // The message as read back carries it; so does its outbox entry.
  auto read = f.store->Get(m->id);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->attachments, m->attachments);
  auto outbox = f.store->Outbox(0);
  ASSERT_TRUE(outbox.ok());
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ(outbox->front().op.attachments, m->attachments);
}

TEST(Attachments, TheSameFileIsStoredOnceAndFreedWithItsLastMessage) {
  AttachmentsFixture f;
  auto first = f.store->Send(WithFile("visit", f.photo, "a.jpg"));
  auto second = f.store->Send(WithFile("other", f.photo, "b.jpg"));
  ASSERT_TRUE(first.ok() && second.ok());
  const std::string object = first->attachments[0].object;
  EXPECT_EQ(second->attachments[0].object, object);
  EXPECT_EQ(second->attachments[0].name, "b.jpg");
  EXPECT_EQ(ObjectFiles(f.dir.path() + "/s"), 1u);
  EXPECT_EQ(f.store->GetAttachment(object)->references, 2u);

  ASSERT_TRUE(f.store->Delete(first->id).ok());
  EXPECT_EQ(f.store->GetAttachment(object)->references, 1u);
  EXPECT_TRUE(f.store->Get(first->id)->attachments.empty());
  EXPECT_EQ(f.Export(object), f.data);

  ASSERT_TRUE(f.store->Delete(second->id).ok());
  EXPECT_EQ(f.store->GetAttachment(object).status().code(), Code::kNotFound);
  EXPECT_EQ(ObjectFiles(f.dir.path() + "/s"), 0u);
  auto verify = f.store->Verify(nullptr);
  ASSERT_TRUE(verify.ok());
  EXPECT_EQ(verify->problems, 0u) << verify->details.front();

  // Sent again after that: a new object (nothing points at the freed one).
  auto third = f.store->Send(WithFile("visit", f.photo, "c.jpg"));
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_NE(third->attachments[0].object, object);
  EXPECT_EQ(f.Export(third->attachments[0].object), f.data);
}

TEST(Attachments, AFailedSendLeavesNoObject) {
  AttachmentsFixture f;
  SendRequest r = WithFile("visit", f.photo, "a.jpg");
  r.attachments.push_back({.path = f.files.path() + "/missing.pdf", .name = "missing.pdf"});
  auto m = f.store->Send(r);
  EXPECT_EQ(m.status().code(), Code::kNotFound) << m.status().ToString();
  EXPECT_EQ(ObjectFiles(f.dir.path() + "/s"), 0u);
  EXPECT_TRUE(f.store->Attachments()->empty());

  SendRequest big = WithFile("visit", f.photo, "a.jpg");
  big.attachments[0].preview.assign(kMaxPreviewBytes + 1, 'p');
  EXPECT_EQ(f.store->Send(big).status().code(), Code::kTooLarge);
  SendRequest none = Msg("visit", "x");
  none.attachments.push_back({.name = "nothing"});
  EXPECT_EQ(f.store->Send(none).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ObjectFiles(f.dir.path() + "/s"), 0u);
}

TEST(Attachments, FromAReadCallback) {
  AttachmentsFixture f;
  SendRequest r = Msg("visit", "");
  size_t at = 0;
  r.attachments.push_back({.read = [&](char* buf, size_t cap) -> Result<size_t> {
                             const size_t n = std::min<size_t>({cap, 777, f.data.size() - at});
                             std::memcpy(buf, f.data.data() + at, n);
                             at += n;
                             return n;
                           },
                           .name = "scan.pdf"});
  auto m = f.store->Send(r);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->attachments[0].content_type, "application/octet-stream");
  EXPECT_EQ(f.Export(m->attachments[0].object), f.data);
}

// A device that receives a message knows its objects but holds none of
// them until a fetch; the transfer's steps move the record along.
TEST(Attachments, ReceivedObjectsWaitForAFetch) {
  AttachmentsFixture f;
  TempDir other_dir;
  auto other = MustOpen(other_dir.path() + "/t", CreateOptions("pat"));
  auto sent = other->Send(WithFile("visit", f.photo, "a.jpg"));
  ASSERT_TRUE(sent.ok());
  auto entry = other->Outbox(0)->front();

  SyncLog& log = f.store->sync_log();
  ASSERT_TRUE(log.Merge("test", "visit", std::span(&entry.op, 1), "c1").ok());
  const std::string object = sent->attachments[0].object;
  auto info = f.store->GetAttachment(object);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->state, AttachmentState::kRemote);
  EXPECT_EQ(info->references, 1u);
  EXPECT_EQ(f.store->ExportAttachment(object, f.files.path() + "/x").code(),
            Code::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(f.files.path() + "/x"));

  // What a download does: the object's bytes into the partial file, then
  // finished (checked) and recorded.
  auto t = log.GetAttachmentTransfer(object);
  ASSERT_TRUE(t.ok());
  auto files = log.attachment_files();
  ASSERT_TRUE(files.ok());
  const std::string bytes =
      ReadWholeFile(other_dir.path() + "/t/attachments/objects/" + crypto::HexEncode(object));
  ASSERT_TRUE((*files)->AppendPartial(object, bytes.substr(0, 1000)).ok());
  EXPECT_EQ(f.store->GetAttachment(object)->state, AttachmentState::kDownloading);
  ASSERT_TRUE((*files)->AppendPartial(object, bytes.substr(1000)).ok());
  ASSERT_TRUE((*files)->FinishPartial(object, t->content_key).ok());
  ASSERT_TRUE(log.AttachmentDownloaded(object).ok());
  EXPECT_EQ(f.store->GetAttachment(object)->state, AttachmentState::kAvailable);
  EXPECT_EQ(f.Export(object), f.data);

  // The same message again (the server's echo, a second pull): one reference.
  ASSERT_TRUE(log.Merge("test", "visit", std::span(&entry.op, 1), "c2").ok());
  EXPECT_EQ(f.store->GetAttachment(object)->references, 1u);
  auto verify = f.store->Verify(nullptr);
  ASSERT_TRUE(verify.ok());
  EXPECT_EQ(verify->problems, 0u) << verify->details.front();

  // Evicted: the record stays, the file goes, export says to fetch.
  ASSERT_TRUE(f.store->EvictAttachment(object).ok());
  EXPECT_EQ(f.store->GetAttachment(object)->state, AttachmentState::kEvicted);
  EXPECT_EQ(f.store->ExportAttachment(object, f.files.path() + "/y").code(),
            Code::kFailedPrecondition);
  EXPECT_EQ(ObjectFiles(f.dir.path() + "/s"), 0u);
}

TEST(Attachments, UploadStatesAndTheSendersCopyIsKeptUntilSent) {
  AttachmentsFixture f;
  auto m = f.store->Send(WithFile("visit", f.photo, "a.jpg"));
  ASSERT_TRUE(m.ok());
  const std::string object = m->attachments[0].object;
  SyncLog& log = f.store->sync_log();
  EXPECT_EQ(f.store->EvictAttachment(object).code(), Code::kFailedPrecondition);
  ASSERT_TRUE(log.SaveUploadProgress(object, "state-1").ok());
  EXPECT_EQ(f.store->GetAttachment(object)->state, AttachmentState::kUploading);
  EXPECT_EQ(log.GetAttachmentTransfer(object)->upload_progress, "state-1");
  EXPECT_EQ(f.store->EvictAttachment(object).code(), Code::kFailedPrecondition);
  ASSERT_TRUE(log.AttachmentUploadFailed(object, "the object was damaged").ok());
  EXPECT_EQ(f.store->GetAttachment(object)->state, AttachmentState::kFailed);
  EXPECT_EQ(f.store->GetAttachment(object)->failure_reason, "the object was damaged");
  ASSERT_TRUE(log.AttachmentUploaded(object, "clinic-media").ok());
  auto info = f.store->GetAttachment(object);
  EXPECT_EQ(info->state, AttachmentState::kSent);
  EXPECT_EQ(info->location, "clinic-media");
  EXPECT_TRUE(info->failure_reason.empty());
  EXPECT_TRUE(log.GetAttachmentTransfer(object)->upload_progress.empty());
  EXPECT_TRUE(f.store->EvictAttachment(object).ok());
}

TEST(Attachments, TheQuotaEvictsTheLeastRecentlyUsedDownloads) {
  TempDir dir, files;
  uint64_t now = 1'800'000'000'000;
  StoreOptions o = CreateOptions();
  o.wall_clock_ms = [&] { return now; };
  o.attachment_quota_bytes = 2 * crypto::AttachmentCipherSize(100'000) + 10;
  auto store = MustOpen(dir.path() + "/s", o);
  std::vector<std::string> objects;
  for (uint32_t i = 0; i < 3; ++i) {
    const std::string path = files.path() + "/" + std::to_string(i);
    WriteWholeFile(path, RandomBytes(100'000, 10 + i));
    now += 1000;
    auto m = store->Send(WithFile("visit", path, "f"));
    ASSERT_TRUE(m.ok());
    objects.push_back(m->attachments[0].object);
  }
  SyncLog& log = store->sync_log();
  // Unsent objects do not count and are never evicted.
  for (const auto& id : objects) {
    now += 1000;
    ASSERT_TRUE(log.AttachmentDownloaded(id).ok());
  }
  for (const auto& id : objects) EXPECT_TRUE(store->GetAttachment(id)->held());
  for (const auto& id : objects) ASSERT_TRUE(log.AttachmentUploaded(id, "b").ok());
  // Now they count, three over a quota of two. Object 0 was imported
  // first but is used now: object 1 is the least recently used.
  now += 1000;
  ASSERT_TRUE(log.AttachmentDownloaded(objects[0]).ok());
  EXPECT_EQ(store->GetAttachment(objects[0])->state, AttachmentState::kAvailable);
  EXPECT_EQ(store->GetAttachment(objects[1])->state, AttachmentState::kEvicted);
  EXPECT_EQ(store->GetAttachment(objects[2])->state, AttachmentState::kSent);
  EXPECT_EQ(ObjectFiles(dir.path() + "/s"), 2u);
}

TEST(Attachments, VerifyFindsADamagedObjectAndOpenRemovesOrphans) {
  AttachmentsFixture f;
  auto m = f.store->Send(WithFile("visit", f.photo, "a.jpg"));
  ASSERT_TRUE(m.ok());
  const std::string hex = crypto::HexEncode(
      std::span(reinterpret_cast<const uint8_t*>(m->attachments[0].object.data()), 32));
  const std::string path = f.dir.path() + "/s/attachments/objects/" + hex;
  std::string bytes = ReadWholeFile(path);
  bytes[bytes.size() / 2] ^= 1;
  WriteWholeFile(path, bytes);
  auto verify = f.store->Verify(nullptr);
  ASSERT_TRUE(verify.ok());
  ASSERT_EQ(verify->problems, 1u);
  EXPECT_NE(verify->details[0].find("attachment object " + hex), std::string::npos)
      << verify->details[0];
  EXPECT_EQ(f.store->ExportAttachment(m->attachments[0].object, f.files.path() + "/out").code(),
            Code::kDataLoss);
  EXPECT_FALSE(fs::exists(f.files.path() + "/out"));

  // A file no record names (an import whose send never committed) goes at
  // the next writable open; the named one stays.
  const std::string orphan = f.dir.path() + "/s/attachments/objects/" + std::string(64, 'a');
  WriteWholeFile(orphan, "left over");
  f.store.reset();
  f.store = MustOpen(f.dir.path() + "/s", {});
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_TRUE(fs::exists(path));
  EXPECT_EQ(f.store->Get(m->id)->attachments, m->attachments);
}

}  // namespace
}  // namespace tidings::engine

namespace tidings::engine {
namespace {

// Retention's purge (PurgeConversation) deletes message records without
// releasing their attachments: the object's record keeps counting the
// purged message, its file (and content key) stay on the device forever,
// and verify reports the count as wrong.
TEST(Attachments, ARetentionPurgeFreesTheObjectsOfPurgedMessages) {
  AttachmentsFixture f;
  TempDir other_dir;
  auto other = MustOpen(other_dir.path() + "/t", CreateOptions("pat"));
  auto sent = other->Send(WithFile("visit", f.photo, "a.jpg"));
  ASSERT_TRUE(sent.ok());
  auto later = other->Send(Msg("visit", "a later message"));
  ASSERT_TRUE(later.ok());
  auto ops = other->Outbox(0);
  ASSERT_TRUE(ops.ok());
  ASSERT_EQ(ops->size(), 2u);
  std::vector<Operation> page = {(*ops)[0].op, (*ops)[1].op};
  SyncLog& log = f.store->sync_log();
  ASSERT_TRUE(log.Merge("test", "visit", page, "c1").ok());
  const std::string object = sent->attachments[0].object;
  // Downloaded, so the device holds the file.
  auto t = log.GetAttachmentTransfer(object);
  ASSERT_TRUE(t.ok());
  auto files = log.attachment_files();
  ASSERT_TRUE(files.ok());
  const std::string bytes =
      ReadWholeFile(other_dir.path() + "/t/attachments/objects/" + crypto::HexEncode(object));
  ASSERT_TRUE((*files)->AppendPartial(object, bytes).ok());
  ASSERT_TRUE((*files)->FinishPartial(object, t->content_key).ok());
  ASSERT_TRUE(log.AttachmentDownloaded(object).ok());
  ASSERT_EQ(ObjectFiles(f.dir.path() + "/s"), 1u);

  ASSERT_TRUE(f.store->SetRetention("visit", RetentionPolicy{.keep_last = 1}).ok());
  auto report = f.store->PurgeExpired();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->messages_purged, 1u);
  EXPECT_EQ(f.store->Get(sent->id).status().code(), Code::kNotFound);

  EXPECT_EQ(f.store->GetAttachment(object).status().code(), Code::kNotFound)
      << "the purged message's object is still counted";
  EXPECT_EQ(ObjectFiles(f.dir.path() + "/s"), 0u) << "the purged message's file is still here";
  auto verify = f.store->Verify(nullptr);
  ASSERT_TRUE(verify.ok());
  EXPECT_EQ(verify->problems, 0u) << verify->details.front();
}

// A stray 64-character file name that is not hex in attachments/objects
// (an editor's or a sync tool's file) makes the next writable open throw
// std::invalid_argument out of std::stoi (OpenAttachments).
TEST(Attachments, AStrayFileNameDoesNotBreakOpen) {
  AttachmentsFixture f;
  ASSERT_TRUE(f.store->Send(WithFile("visit", f.photo, "a.jpg")).ok());
  f.store.reset();
  WriteWholeFile(f.dir.path() + "/s/attachments/objects/" + std::string(64, 'z'), "x");
  EXPECT_NO_THROW({
    auto s = Store::Open(f.dir.path() + "/s", TestKey(7), {});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
  });
}

// A send whose id already had a delete waiting (merged from the sender's
// other device first): the delete applies at once, and the objects the send
// made are freed in the same batch rather than kept with no reference.
TEST(Attachments, ASendDeletedBeforeItArrivedKeepsNoObject) {
  AttachmentsFixture f;
  TempDir other_dir;
  auto other = MustOpen(other_dir.path() + "/t", CreateOptions("alice"));
  auto sent = other->Send(Msg("visit", "to be deleted"));
  ASSERT_TRUE(sent.ok());
  ASSERT_TRUE(other->Delete(sent->id).ok());
  auto ops = other->Outbox(0);
  ASSERT_EQ(ops->size(), 2u);
  ASSERT_TRUE(f.store->sync_log().Merge("test", "visit", std::span(&(*ops)[1].op, 1), "c").ok());
  SendRequest r = WithFile("visit", f.photo, "a.jpg");
  r.message_id = sent->id;
  auto m = f.store->Send(r);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->deleted);
  EXPECT_TRUE(f.store->Attachments()->empty());
  EXPECT_EQ(ObjectFiles(f.dir.path() + "/s"), 0u);
}

}  // namespace
}  // namespace tidings::engine

namespace tidings::engine {
namespace {

// A backup carries the files of the objects the device holds, so a restored
// store has them without a fetch: a file sent and not uploaded yet has no
// other copy. Each restored file is checked whole against its record.
TEST(Attachments, ABackupCarriesTheFilesAndTheRestoreChecksThem) {
  AttachmentsFixture f;
  const std::string big = f.files.path() + "/scan.pdf";
  const std::string big_data = RandomBytes(3'500'000, 2);  // several pieces
  WriteWholeFile(big, big_data);
  auto photo = f.store->Send(WithFile("visit", f.photo, "rash.jpg"));
  auto scan = f.store->Send(WithFile("visit", big, "scan.pdf"));
  ASSERT_TRUE(photo.ok() && scan.ok());
  const std::string backup = f.files.path() + "/store.tbak";
  ASSERT_TRUE(f.store->Backup(backup, nullptr).ok());

  const std::string to = f.dir.path() + "/restored";
  ASSERT_TRUE(Store::Restore(backup, to, TestKey(7), nullptr).ok());
  f.store = MustOpen(to, {});
  ASSERT_NE(f.store, nullptr);
  EXPECT_EQ(f.Export(photo->attachments[0].object), f.data);
  EXPECT_EQ(f.Export(scan->attachments[0].object), big_data);
  auto report = f.store->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u) << (report->details.empty() ? "" : report->details[0]);

  // A backup whose file was damaged on the device before it was taken
  // restores everything else: the damaged file is left out (its record
  // stays, for a fetch, and verify reports it), never handed over damaged.
  const std::string hex = crypto::HexEncode(
      std::span(reinterpret_cast<const uint8_t*>(scan->attachments[0].object.data()), 32));
  const std::string path = to + "/attachments/objects/" + hex;
  std::string bytes = ReadWholeFile(path);
  bytes[bytes.size() / 2] ^= 1;
  WriteWholeFile(path, bytes);
  const std::string damaged = f.files.path() + "/damaged.tbak";
  ASSERT_TRUE(f.store->Backup(damaged, nullptr).ok());
  const std::string again = f.dir.path() + "/again";
  Status restored = Store::Restore(damaged, again, TestKey(7), nullptr);
  ASSERT_TRUE(restored.ok()) << restored.ToString();
  f.store = MustOpen(again, {});
  ASSERT_NE(f.store, nullptr);
  EXPECT_EQ(f.Export(photo->attachments[0].object), f.data);
  EXPECT_FALSE(fs::exists(again + "/attachments/objects/" + hex));
  EXPECT_FALSE(f.store->ExportAttachment(scan->attachments[0].object, f.files.path() + "/x").ok());
  EXPECT_EQ(f.store->Get(scan->id)->attachments.size(), 1u) << "the message and record stay";
  auto after = f.store->Verify(nullptr);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->problems, 1u) << "the missing file is reported";
}

}  // namespace
}  // namespace tidings::engine

namespace tidings::engine {
namespace {

// A pending send's text moved into a file at push time
// (SyncLog::CarryBodyAsAttachment): the entry carries the file, the message
// keeps its text and lists the file, which it counts; once only; and a
// delete before the push frees it.
TEST(Attachments, APendingSendCarriesItsTextAsAFileOnce) {
  AttachmentsFixture f;
  auto m = f.store->Send(Msg("visit", "a long text, as far as this test is concerned"));
  ASSERT_TRUE(m.ok());
  auto outbox = f.store->Outbox(0);
  ASSERT_TRUE(outbox.ok());
  ASSERT_EQ(outbox->size(), 1u);
  const uint64_t seq = outbox->front().seq;
  SyncLog& log = dynamic_cast<SyncLog&>(*f.store);

  auto carried = log.CarryBodyAsAttachment(seq);
  ASSERT_TRUE(carried.ok()) << carried.status().ToString();
  EXPECT_TRUE(carried->op.body.empty());
  ASSERT_EQ(carried->op.attachments.size(), 1u);
  const Attachment& a = carried->op.attachments[0];
  EXPECT_TRUE(a.body);
  EXPECT_EQ(a.name, "message.txt");
  EXPECT_EQ(a.size, m->body.size());
  EXPECT_EQ(f.Export(a.object), m->body);
  EXPECT_EQ(f.store->Outbox(0)->front().op.attachments, carried->op.attachments) << "durable";
  EXPECT_TRUE(f.store->Outbox(0)->front().op.body.empty());
  auto kept = f.store->Get(m->id);
  EXPECT_EQ(kept->body, m->body);
  ASSERT_EQ(kept->attachments.size(), 1u);
  EXPECT_EQ(f.store->GetAttachment(a.object)->references, 1u);

  EXPECT_EQ(log.CarryBodyAsAttachment(seq).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(log.CarryBodyAsAttachment(seq + 100).status().code(), Code::kNotFound);
  EXPECT_EQ(f.store->Verify(nullptr)->problems, 0u);

  ASSERT_TRUE(f.store->Delete(m->id).ok());
  EXPECT_TRUE(f.store->Attachments()->empty()) << "freed with its unsent message";
  EXPECT_EQ(ObjectFiles(f.dir.path() + "/s"), 0u);
}

}  // namespace
}  // namespace tidings::engine

namespace tidings::engine {
namespace {

// One attachment file damaged on the device (bit rot, a bad sector) costs
// only that file at restore, never the store: every message comes back.
TEST(Attachments, OneDamagedFileDoesNotCostTheWholeRestore) {
  AttachmentsFixture f;
  ASSERT_TRUE(f.store->Send(Msg("visit", "the only copy of this text")).ok());
  auto photo = f.store->Send(WithFile("visit", f.photo, "rash.jpg"));
  ASSERT_TRUE(photo.ok());
  const std::string hex = crypto::HexEncode(
      std::span(reinterpret_cast<const uint8_t*>(photo->attachments[0].object.data()), 32));
  const std::string path = f.dir.path() + "/s/attachments/objects/" + hex;
  std::string bytes = ReadWholeFile(path);
  bytes[bytes.size() / 2] ^= 1;
  WriteWholeFile(path, bytes);

  const std::string backup = f.files.path() + "/store.tbak";
  Status made = f.store->Backup(backup, nullptr);
  ASSERT_TRUE(made.ok()) << made.ToString();  // no warning, no error
  const std::string to = f.dir.path() + "/restored";
  Status restored = Store::Restore(backup, to, TestKey(7), nullptr);
  ASSERT_TRUE(restored.ok()) << "the messages are lost with the file: " << restored.ToString();
  f.store = MustOpen(to, {});
  ASSERT_NE(f.store, nullptr);
  EXPECT_EQ(f.store->Conversations(0)->front().message_count, 2u);
}

}  // namespace
}  // namespace tidings::engine
