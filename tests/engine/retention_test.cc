// Retention (engine/retention.cc): time and count policies, what a purge
// removes and adjusts, merges that never bring purged messages back, and the
// text leaving the disk.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <atomic>
#include <set>

#include "engine/store_impl.h"
#include "store_test_util.h"

namespace tidings::engine {

// Reaches into the store for what the public interface cannot show: the
// files that hold the messages family, and raw records.
struct RetentionTestPeer {
  static StoreImpl& Impl(Store& s) { return dynamic_cast<StoreImpl&>(s); }
  static std::set<std::string> MessageFiles(Store& s) {
    StoreImpl& impl = Impl(s);
    rocksdb::ColumnFamilyMetaData md;
    impl.db_->GetColumnFamilyMetaData(impl.cfs_[kMessages], &md);
    std::set<std::string> out;
    for (const auto& level : md.levels) {
      for (const auto& f : level.files) out.insert(f.name);
    }
    return out;
  }
  // Every record of `cf`, decrypted and authenticated.
  static std::vector<std::pair<std::string, std::string>> Records(Store& s, int cf) {
    StoreImpl& impl = Impl(s);
    std::vector<std::pair<std::string, std::string>> out;
    std::unique_ptr<rocksdb::Iterator> it(
        impl.db_->NewIterator(rocksdb::ReadOptions(), impl.cfs_[static_cast<size_t>(cf)]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto plain =
          impl.sealer_->Open(impl.Ad(cf, it->key().ToString()), it->value().ToStringView());
      EXPECT_TRUE(plain.ok());
      out.emplace_back(it->key().ToString(), plain.ok() ? *plain : "");
    }
    EXPECT_TRUE(it->status().ok());
    return out;
  }
  // Raw (sealed) writes, to put back what a purge removed.
  static void PutRaw(Store& s, int cf, const std::string& key, const std::string& sealed) {
    StoreImpl& impl = Impl(s);
    ASSERT_TRUE(
        impl.db_->Put(rocksdb::WriteOptions(), impl.cfs_[static_cast<size_t>(cf)], key, sealed)
            .ok());
  }
  static std::string GetRaw(Store& s, int cf, const std::string& key) {
    StoreImpl& impl = Impl(s);
    std::string v;
    EXPECT_TRUE(
        impl.db_->Get(rocksdb::ReadOptions(), impl.cfs_[static_cast<size_t>(cf)], key, &v).ok());
    return v;
  }
};

namespace {

constexpr uint64_t kDay = kMillisPerDay;
constexpr uint64_t kStart = 1'700'000'000'000;

// A store on a wall clock the test moves.
struct Clocked {
  TempDir dir;
  std::shared_ptr<std::atomic<uint64_t>> now = std::make_shared<std::atomic<uint64_t>>(kStart);
  std::unique_ptr<Store> store;

  StoreOptions Options() {
    StoreOptions o = CreateOptions();
    auto clock = now;
    o.wall_clock_ms = [clock] { return clock->load(); };
    return o;
  }
  Clocked() { store = MustOpen(dir.path(), Options()); }
  void Reopen() {
    store.reset();
    store = MustOpen(dir.path(), Options());
  }
  std::vector<Message> All(const std::string& conv) {
    PageRequest r;
    r.conversation_id = conv;
    r.limit = 1000;
    auto page = store->Page(r);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    return page.ok() ? *page : std::vector<Message>{};
  }
  void ExpectVerifies() {
    auto report = store->Verify(nullptr);
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->problems, 0u) << report->details.front();
  }
};

std::vector<Message> SendN(Store& s, const std::string& conv, int n, const std::string& text) {
  std::vector<Message> out;
  for (int i = 0; i < n; ++i) {
    auto m = s.Send(Msg(conv, text + std::to_string(i)));
    EXPECT_TRUE(m.ok());
    if (m.ok()) out.push_back(*m);
  }
  return out;
}

// SendN, then every outbox entry acknowledged at the store's wall time, as
// a backend would: a count policy counts only acknowledged messages.
std::vector<Message> SendAcked(Clocked& c, const std::string& conv, int n,
                               const std::string& text) {
  auto sent = SendN(*c.store, conv, n, text);
  auto outbox = c.store->Outbox(0);
  EXPECT_TRUE(outbox.ok());
  for (const auto& e : outbox.ok() ? *outbox : std::vector<OutboxEntry>{}) {
    EXPECT_TRUE(c.store->sync_log().AckOutbox(e.seq, {"test", "", c.now->load()}).ok());
  }
  return sent;
}

Operation RemoteSend(const std::string& id, uint64_t millis, const std::string& body) {
  Operation op;
  op.kind = OpKind::kSend;
  op.op_id = id;
  op.message_id = id;
  op.author = "bob";
  op.at = OrderKey{millis << 16, 2};
  op.body = body;
  op.server_time_ms = millis;
  return op;
}

TEST(Retention, TimePolicyPurgesOlderMessagesAndAdjustsTheSummary) {
  Clocked c;
  SendN(*c.store, "a", 5, "old ");
  *c.now += 10 * kDay;
  auto fresh = SendN(*c.store, "a", 3, "new ");
  ASSERT_TRUE(c.store->SetRetention("", RetentionPolicy{.keep_days = 7}).ok());
  auto report = c.store->PurgeExpired();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->messages_purged, 5u);
  EXPECT_EQ(report->conversations, 1u);
  auto left = c.All("a");
  ASSERT_EQ(left.size(), 3u);
  EXPECT_EQ(left.front().id, fresh.front().id);
  auto conv = c.store->GetConversation("a");
  ASSERT_TRUE(conv.ok());
  EXPECT_EQ(conv->message_count, 3u);
  EXPECT_EQ(conv->last_message_id, fresh.back().id);
  c.ExpectVerifies();
  // Nothing more is due: a second purge does nothing.
  EXPECT_EQ(c.store->PurgeExpired()->messages_purged, 0u);
  // Time passes: everything goes, and the summary says so.
  *c.now += 8 * kDay;
  EXPECT_EQ(c.store->PurgeExpired()->messages_purged, 3u);
  conv = c.store->GetConversation("a");
  EXPECT_EQ(conv->message_count, 0u);
  EXPECT_EQ(conv->last_message_id, "");
  EXPECT_TRUE(c.All("a").empty());
  c.ExpectVerifies();
}

TEST(Retention, CountPolicyPerConversationOverridesTheStoreWideOne) {
  Clocked c;
  SendAcked(c, "a", 10, "a ");
  auto b = SendAcked(c, "b", 10, "b ");
  SendAcked(c, "c", 4, "c ");
  ASSERT_TRUE(c.store->Delete(b[9].id).ok());  // a tombstone counts as a record
  ASSERT_TRUE(c.store->SetRetention("", RetentionPolicy{.keep_last = 5}).ok());
  ASSERT_TRUE(c.store->SetRetention("a", RetentionPolicy{.keep_last = 2}).ok());
  EXPECT_EQ(c.store->GetRetention("a")->keep_last, 2u);
  EXPECT_EQ(c.store->EffectiveRetention("b")->keep_last, 5u);
  auto policies = c.store->RetentionPolicies();
  ASSERT_EQ(policies->size(), 1u);
  EXPECT_EQ(policies->front().conversation_id, "a");

  auto report = c.store->PurgeExpired();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->messages_purged, 8u + 5u);
  EXPECT_EQ(c.All("a").size(), 2u);
  auto left = c.All("b");
  ASSERT_EQ(left.size(), 5u);
  EXPECT_EQ(left.front().id, b[5].id);
  EXPECT_EQ(c.store->GetConversation("b")->message_count, 4u) << "the tombstone is not visible";
  EXPECT_EQ(c.All("c").size(), 4u);
  c.ExpectVerifies();
  // Removing the override: "a" follows the store-wide policy again.
  ASSERT_TRUE(c.store->SetRetention("a", RetentionPolicy{}).ok());
  EXPECT_TRUE(c.store->RetentionPolicies()->empty());
  EXPECT_EQ(c.store->EffectiveRetention("a")->keep_last, 5u);
}

// A local send counts towards keep_last only once a backend acknowledged
// it: until then the server's time may still move it down (a device clock
// ahead), and a horizon counted from it could pass the one other replicas
// reach (simulation seed 354 diverged that way). Unsent messages are kept.
TEST(Retention, CountPolicyCountsOnlyAcknowledgedSends) {
  Clocked c;
  auto acked = SendAcked(c, "a", 3, "acked ");
  auto unsent = SendN(*c.store, "a", 4, "unsent ");
  ASSERT_TRUE(c.store->SetRetention("a", RetentionPolicy{.keep_last = 2}).ok());
  auto report = c.store->PurgeExpired();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->messages_purged, 1u) << "the oldest acknowledged one only";
  EXPECT_EQ(report->outbox_dropped, 0u);
  EXPECT_EQ(c.All("a").size(), 6u);
  EXPECT_EQ(c.store->Get(acked[0].id).status().code(), Code::kNotFound);
  EXPECT_EQ(c.store->CountOutbox()->total(), 4u) << "every unsent message is still queued";
  c.ExpectVerifies();
}

TEST(Retention, OutboxEntriesOfPurgedMessagesGo) {
  Clocked c;
  auto old = SendN(*c.store, "a", 3, "unsent ");  // pending: in the outbox, by reference
  ASSERT_TRUE(c.store->React(old[0].id, "+1", true).ok());
  *c.now += 3 * kDay;
  SendN(*c.store, "a", 1, "kept ");
  ASSERT_EQ(c.store->CountOutbox()->total(), 5u);
  ASSERT_TRUE(c.store->SetRetention("a", RetentionPolicy{.keep_days = 1}).ok());
  auto report = c.store->PurgeExpired();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->messages_purged, 3u);
  EXPECT_EQ(report->outbox_dropped, 4u) << "three sends and the reaction";
  auto outbox = c.store->Outbox(0);
  ASSERT_TRUE(outbox.ok()) << outbox.status().ToString();
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ(outbox->front().op.body, "kept 0");
  c.ExpectVerifies();
}

TEST(Retention, MergesNeverBringPurgedMessagesBack) {
  Clocked c;
  SyncLog& log = c.store->sync_log();
  std::vector<Operation> history;
  for (int i = 0; i < 6; ++i) {
    history.push_back(RemoteSend("r" + std::to_string(i), kStart + uint64_t(i) * 1000, "old"));
  }
  ASSERT_TRUE(log.Merge("test", "a", history, "c1").ok());
  ASSERT_TRUE(c.store->SetRetention("a", RetentionPolicy{.keep_last = 2}).ok());
  ASSERT_EQ(c.store->PurgeExpired()->messages_purged, 4u);

  // A pull that replays the whole history, with an edit, a reaction and a
  // delete of purged messages - one of them made after the horizon.
  std::vector<Operation> replay = history;
  Operation edit = history[0];
  edit.kind = OpKind::kEdit;
  edit.op_id = "e0";
  edit.at.hlc += 1;
  edit.body = "edited";
  replay.push_back(edit);
  Operation react = history[1];
  react.kind = OpKind::kReact;
  react.op_id = "x1";
  react.reaction = "+1";
  react.at = OrderKey{(kStart + 9000) << 16, 2};  // after the horizon
  replay.push_back(react);
  Operation del = history[2];
  del.kind = OpKind::kDelete;
  del.op_id = "d2";
  del.at = OrderKey{(kStart + 9500) << 16, 2};
  replay.push_back(del);
  ASSERT_TRUE(log.Merge("test", "a", replay, "c2").ok());

  auto left = c.All("a");
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].id, "r4");
  EXPECT_EQ(c.store->Get("r0").status().code(), Code::kNotFound);
  EXPECT_EQ(c.store->GetConversation("a")->message_count, 2u);
  EXPECT_EQ(RetentionTestPeer::Records(*c.store, kPending).size(), 0u) << "nothing parked";
  auto report = c.store->PurgeExpired();
  EXPECT_EQ(report->messages_purged, 0u);
  EXPECT_EQ(report->remote_skipped, 7u);
  c.ExpectVerifies();

  // A time policy skips old history even before any purge ran.
  ASSERT_TRUE(c.store->SetRetention("b", RetentionPolicy{.keep_days = 30}).ok());
  *c.now = kStart + 40 * kDay;
  std::vector<Operation> b_history = {RemoteSend("b-old", kStart, "old"),
                                      RemoteSend("b-new", kStart + 35 * kDay, "new")};
  ASSERT_TRUE(log.Merge("test", "b", b_history, "c1").ok());
  auto b_left = c.All("b");
  ASSERT_EQ(b_left.size(), 1u);
  EXPECT_EQ(b_left[0].id, "b-new");
}

// History read newest-first: a page older than the purge horizon, merged
// after the purge (a backfill), brings nothing back, and the gap still closes.
TEST(Retention, ABackfilledPageOlderThanThePurgeHorizonIsSkipped) {
  Clocked c;
  SyncLog& log = c.store->sync_log();
  std::vector<Operation> history;
  for (int i = 0; i < 6; ++i) {
    history.push_back(RemoteSend("r" + std::to_string(i), kStart + uint64_t(i) * 1000, "old"));
  }
  const std::vector<Operation> newest(history.begin() + 3, history.end());
  const std::vector<Operation> older(history.begin(), history.begin() + 3);
  ASSERT_TRUE(log.MergeAt("test", "a", newest, {.cursor = "6", .gap = "3"}, {}).ok());
  ASSERT_TRUE(c.store->SetRetention("a", RetentionPolicy{.keep_last = 2}).ok());
  ASSERT_EQ(c.store->PurgeExpired()->messages_purged, 1u);
  ASSERT_TRUE(log.MergeAt("test", "a", older, {.gap = "", .gap_from = "3"}, {}).ok());
  auto left = c.All("a");
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].id, "r4");
  EXPECT_EQ(c.store->GetConversation("a")->message_count, 2u);
  EXPECT_EQ(*log.GetGap("test", "a"), "");
  EXPECT_EQ(c.store->PurgeExpired()->remote_skipped, 3u);
  c.ExpectVerifies();
}

TEST(Retention, PurgeRunsAtOpen) {
  Clocked c;
  SendN(*c.store, "a", 4, "x");
  ASSERT_TRUE(c.store->SetRetention("", RetentionPolicy{.keep_days = 2}).ok());
  EXPECT_EQ(c.store->PurgeExpired()->messages_purged, 0u);
  *c.now += 3 * kDay;
  c.Reopen();
  EXPECT_TRUE(c.All("a").empty());
  EXPECT_EQ(c.store->GetRetention("")->keep_days, 2u) << "the policy is persisted";
}

// The purged text leaves the disk: the WAL files and the SST files that held
// it are deleted, and no record left decrypts to it. (The files are
// encrypted, so a byte scan of them proves nothing either way.)
TEST(Retention, PurgedTextLeavesTheDisk) {
  Clocked c;
  const std::string marker = "retention-marker-7f3a";
  SendN(*c.store, "a", 20, marker);
  ASSERT_TRUE(c.store->Flush().ok());
  const auto sst_before = RetentionTestPeer::MessageFiles(*c.store);
  ASSERT_FALSE(sst_before.empty());
  SendN(*c.store, "a", 5, marker);  // in the WAL and memtable only
  std::set<std::string> wal_before;
  for (const auto& e : fs::directory_iterator(c.dir / "db")) {
    if (e.path().extension() == ".log") wal_before.insert(e.path().filename());
  }
  ASSERT_FALSE(wal_before.empty());
  *c.now += 2 * kDay;
  SendN(*c.store, "a", 2, "kept");
  ASSERT_TRUE(c.store->SetRetention("", RetentionPolicy{.keep_days = 1}).ok());
  ASSERT_EQ(c.store->PurgeExpired()->messages_purged, 25u);

  for (const auto& f : RetentionTestPeer::MessageFiles(*c.store)) {
    EXPECT_EQ(sst_before.count(f), 0u) << f << " held purged text and is still live";
  }
  for (const auto& f : sst_before) {
    EXPECT_FALSE(fs::exists(fs::path(c.dir / "db") / f.substr(f.find_last_of('/') + 1))) << f;
  }
  for (const auto& f : wal_before) EXPECT_FALSE(fs::exists(fs::path(c.dir / "db") / f)) << f;
  for (int cf : {kMessages, kOutbox, kPending, kById, kMeta}) {
    for (const auto& [key, plain] : RetentionTestPeer::Records(*c.store, cf)) {
      EXPECT_EQ(plain.find(marker), std::string::npos) << kCfNames[cf];
    }
  }
  EXPECT_EQ(c.All("a").size(), 2u);
  c.ExpectVerifies();
}

// Verify accepts a purged store (above) and flags what a purge left behind.
TEST(Retention, VerifyFlagsRecordsAPurgeLeft) {
  Clocked c;
  auto sent = SendAcked(c, "a", 3, "x");
  auto kept = SendAcked(c, "a", 1, "y");
  auto messages = RetentionTestPeer::Records(*c.store, kMessages);
  ASSERT_EQ(messages.size(), 4u);
  const std::string first_key = messages.front().first;
  const std::string first_sealed = RetentionTestPeer::GetRaw(*c.store, kMessages, first_key);
  ASSERT_TRUE(c.store->SetRetention("a", RetentionPolicy{.keep_last = 1}).ok());
  ASSERT_EQ(c.store->PurgeExpired()->messages_purged, 3u);
  c.ExpectVerifies();
  RetentionTestPeer::PutRaw(*c.store, kMessages, first_key, first_sealed);
  auto report = c.store->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  std::string all;
  for (const auto& d : report->details) all += d + "\n";
  EXPECT_NE(all.find("purge watermark"), std::string::npos) << all;
  EXPECT_NE(all.find("purged, yet still stored"), std::string::npos) << all;
  EXPECT_NE(all.find("missing from the by-id index"), std::string::npos) << all;
}

TEST(Retention, PolicyLimitsAndReadOnlyStores) {
  Clocked c;
  EXPECT_EQ(c.store->SetRetention("", RetentionPolicy{.keep_days = kMaxKeepDays + 1}).code(),
            Code::kInvalidArgument);
  ASSERT_TRUE(c.store->SetRetention("", RetentionPolicy{.keep_days = 90}).ok());
  c.store.reset();
  StoreOptions ro;
  ro.read_only = true;
  auto reader = MustOpen(c.dir.path(), ro);
  EXPECT_EQ(reader->GetRetention("")->keep_days, 90u);
  EXPECT_EQ(reader->PurgeExpired().status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(reader->SetRetention("", {}).code(), Code::kFailedPrecondition);
}

}  // namespace
}  // namespace tidings::engine
