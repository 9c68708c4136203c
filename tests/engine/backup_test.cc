// engine/backup.cc: Backup and Restore.
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <thread>

#include "store_test_util.h"
#include "tests/common/test_files.h"

namespace tidings::engine {
namespace {

using testing::ReadWholeFile;
using testing::WriteWholeFile;

// Every message of `s` as "conversation|id|body|state|reactions", in order.
std::vector<std::string> Dump(Store& s) {
  std::vector<std::string> out;
  EXPECT_TRUE(s.ForEachMessage([&](const Message& m) {
                 std::string line = m.conversation_id + "|" + m.id + "|" + m.body + "|" +
                                    std::to_string(static_cast<int>(m.state)) + "|" +
                                    std::to_string(m.deleted);
                 for (const auto& r : m.reactions) line += "|" + r.reaction + ":" + r.user;
                 out.push_back(line);
                 return Status::Ok();
               }).ok());
  return out;
}

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = MustOpen(dir_.path() + "/s");
    ASSERT_TRUE(store_->PutConversation("c1", "Clinic", {"alice", "bob"}).ok());
    for (int i = 0; i < 300; ++i) {
      auto m = store_->Send(Msg(i % 3 == 0 ? "c1" : "c2", "marker-zebra " + std::to_string(i)));
      ASSERT_TRUE(m.ok());
      if (i == 10) {
        ASSERT_TRUE(store_->Edit(m->id, "edited body").ok());
      } else if (i == 11) {
        ASSERT_TRUE(store_->Delete(m->id).ok());
      } else if (i == 12) {
        ASSERT_TRUE(store_->React(m->id, "+1", true).ok());
      }
    }
    backup_ = dir_.path() + "/b.tidbak";
  }

  // Restores backup_ into `to` with the store's key (7) or `key`.
  Status Restore(const std::string& to, uint8_t key = 7) {
    return Store::Restore(backup_, to, TestKey(key), nullptr);
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::string backup_;
};

TEST_F(BackupTest, RestoresTheSameStore) {
  uint64_t last_done = 0, last_total = 0;
  ASSERT_TRUE(store_
                  ->Backup(backup_,
                           [&](uint64_t d, uint64_t t) {
                             last_done = d;
                             last_total = t;
                           })
                  .ok());
  EXPECT_GT(last_done, 300u);
  EXPECT_EQ(last_done, last_total);
  struct stat st {};
  ASSERT_EQ(0, ::stat(backup_.c_str(), &st));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(fs::exists(backup_ + ".partial"));

  const std::string to = dir_.path() + "/restored";
  {
    Status rs = Restore(to);
    ASSERT_TRUE(rs.ok()) << rs.ToString();
  }
  auto restored = MustOpen(to, StoreOptions{});
  ASSERT_NE(restored, nullptr);
  EXPECT_EQ(Dump(*restored), Dump(*store_));
  EXPECT_EQ(restored->replica_id(), store_->replica_id());
  auto a = store_->Stats(), b = restored->Stats();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->messages, a->messages);
  EXPECT_EQ(b->conversations, a->conversations);
  EXPECT_EQ(b->outbox, a->outbox);  // pending sends survive: they will still be pushed
  EXPECT_EQ(b->user_id, "alice");
  auto conv = restored->GetConversation("c1");
  ASSERT_TRUE(conv.ok());
  EXPECT_EQ(conv->title, "Clinic");
  auto report = restored->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u);
  // The restored store takes writes.
  EXPECT_TRUE(restored->Send(Msg("c1", "after restore")).ok());
  ExpectOwnerOnly(to);
}

TEST_F(BackupTest, HoldsNoPlaintext) {
  ASSERT_TRUE(store_->Backup(backup_, nullptr).ok());
  const std::string bytes = ReadWholeFile(backup_);
  EXPECT_EQ(bytes.find("marker-zebra"), std::string::npos);
  EXPECT_EQ(bytes.find("Clinic"), std::string::npos);
  EXPECT_EQ(bytes.find("alice"), std::string::npos);
}

TEST_F(BackupTest, IsAConsistentSnapshotWhileWritesGoOn) {
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      if (!store_->Send(Msg("c" + std::to_string(i % 7), "during " + std::to_string(i))).ok()) {
        break;
      }
    }
  });
  Status s = store_->Backup(backup_, nullptr);
  stop = true;
  writer.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  const std::string to = dir_.path() + "/restored";
  {
    Status rs = Restore(to);
    ASSERT_TRUE(rs.ok()) << rs.ToString();
  }
  auto restored = MustOpen(to, StoreOptions{});
  auto report = restored->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u);  // indexes, summaries and outbox agree with the messages
}

TEST_F(BackupTest, BacksUpFromAReadOnlyOpen) {
  store_.reset();
  StoreOptions ro;
  ro.read_only = true;
  auto reader = MustOpen(dir_.path() + "/s", ro);
  ASSERT_TRUE(reader->Backup(backup_, nullptr).ok());
  ASSERT_TRUE(Restore(dir_.path() + "/restored").ok());
  auto restored = MustOpen(dir_.path() + "/restored", StoreOptions{});
  EXPECT_EQ(Dump(*restored), Dump(*reader));
}

TEST_F(BackupTest, WrongKeyRestoresNothing) {
  ASSERT_TRUE(store_->Backup(backup_, nullptr).ok());
  const std::string to = dir_.path() + "/restored";
  Status s = Restore(to, 8);
  EXPECT_EQ(s.code(), Code::kWrongKey) << s.ToString();
  EXPECT_FALSE(fs::exists(to));
  EXPECT_FALSE(fs::exists(to + ".restoring"));
}

TEST_F(BackupTest, EveryAlteredByteIsRefused) {
  ASSERT_TRUE(store_->Backup(backup_, nullptr).ok());
  const std::string good = ReadWholeFile(backup_);
  // Magic, header, stream header, the start chunk, records and the end.
  std::vector<size_t> offsets = {
      0, 7, 9, 20, 60, good.size() / 3, good.size() / 2, good.size() - 30, good.size() - 1};
  for (size_t i = 100; i < good.size(); i += good.size() / 12) offsets.push_back(i);
  int n = 0;
  for (size_t at : offsets) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    WriteWholeFile(backup_, bad);
    const std::string to = dir_.path() + "/r" + std::to_string(n++);
    Status s = Restore(to);
    EXPECT_FALSE(s.ok()) << "a flip at byte " << at << " of " << good.size() << " restored";
    EXPECT_FALSE(fs::exists(to)) << at;
    EXPECT_FALSE(fs::exists(to + ".restoring")) << at;
  }
}

TEST_F(BackupTest, ACutBackupIsRefused) {
  ASSERT_TRUE(store_->Backup(backup_, nullptr).ok());
  const std::string good = ReadWholeFile(backup_);
  int n = 0;
  for (size_t keep : {size_t{4}, size_t{40}, good.size() / 2, good.size() - 40, good.size() - 1}) {
    WriteWholeFile(backup_, good.substr(0, keep));
    const std::string to = dir_.path() + "/r" + std::to_string(n++);
    Status s = Restore(to);
    EXPECT_FALSE(s.ok()) << "a backup cut to " << keep << " bytes restored";
    EXPECT_FALSE(fs::exists(to));
  }
  // A whole backup with bytes after its end is not a whole backup either:
  // the record count and the final chunk both stand, so only the end matters.
  WriteWholeFile(backup_, good);
  EXPECT_TRUE(Restore(dir_.path() + "/whole").ok());
}

TEST_F(BackupTest, NeverOverwrites) {
  WriteWholeFile(backup_, "something precious");
  EXPECT_EQ(store_->Backup(backup_, nullptr).code(), Code::kAlreadyExists);
  EXPECT_EQ(ReadWholeFile(backup_), "something precious");
  fs::remove(backup_);
  ASSERT_TRUE(store_->Backup(backup_, nullptr).ok());
  // Restoring over a store (or any non-empty directory) is refused.
  EXPECT_EQ(Restore(dir_.path() + "/s").code(), Code::kAlreadyExists);
  // An empty directory is fine, and so is the leftover of an interrupted restore.
  fs::create_directories(dir_.path() + "/empty");
  fs::create_directories(dir_.path() + "/empty.restoring/db");
  EXPECT_TRUE(Restore(dir_.path() + "/empty").ok());
  EXPECT_FALSE(fs::exists(dir_.path() + "/empty.restoring"));
}

TEST_F(BackupTest, NotABackup) {
  WriteWholeFile(backup_, "TIDINGS1 this is a store header, not a backup");
  EXPECT_EQ(Restore(dir_.path() + "/r").code(), Code::kInvalidArgument);
  EXPECT_EQ(
      Store::Restore(dir_.path() + "/missing", dir_.path() + "/r", TestKey(7), nullptr).code(),
      Code::kNotFound);
}

}  // namespace
}  // namespace tidings::engine
