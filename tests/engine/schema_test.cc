// Schema versions and migrations (engine/schema.cc).
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/store_impl.h"
#include "store_test_util.h"

namespace tidings::engine {

// Makes a store of the current format look as schema v4 wrote it: the
// version record, and every conversation record written whole as v4 did -
// here with last_order (and the newest id) set back to `order`, as a
// message clamped to server time could leave it in v4.
struct SchemaTestPeer {
  static void MakeV4(Store& s, const std::string& conversation_id, const OrderKey& order,
                     const std::string& id) {
    MakeOlder(s, 4, conversation_id, order, id, /*with_count=*/true);
  }
  // As MakeV4, but the record is byte for byte what v4 wrote: no unread
  // count at its end (v4 and v5 records end with the remote ids).
  static void MakeV4Exact(Store& s, const std::string& conversation_id, const OrderKey& order,
                          const std::string& id) {
    MakeOlder(s, 4, conversation_id, order, id, /*with_count=*/false);
  }
  // Makes every conversation record look as schema v5 wrote it: without
  // its unread count (the record's last field).
  static void MakeV5(Store& s) {
    auto all = dynamic_cast<StoreImpl&>(s).AllConversations();
    ASSERT_TRUE(all.ok());
    Rewrite(s, 5, *all, /*with_count=*/false);
  }

 private:
  // Conversation `conversation_id`'s record with last_order (and the newest
  // id) set back to `order`, in a store of schema `version`.
  static void MakeOlder(Store& s, uint64_t version, const std::string& conversation_id,
                        const OrderKey& order, const std::string& id, bool with_count) {
    Txn txn;
    auto c = dynamic_cast<StoreImpl&>(s).LoadConversation(txn, conversation_id, nullptr);
    ASSERT_TRUE(c.ok());
    c->last_order = order;
    c->last_message_id = id;
    Rewrite(s, version, {*c}, with_count);
  }
  // Writes `records` and the schema version in one batch; without the
  // count, each record ends before it, as before schema v6.
  static void Rewrite(Store& s, uint64_t version, std::vector<Conversation> records,
                      bool with_count) {
    auto& impl = dynamic_cast<StoreImpl&>(s);
    std::unique_lock<std::mutex> lock(impl.write_mu_);
    Txn txn;
    for (Conversation& c : records) {
      if (with_count) {
        impl.StoreConversation(txn, c);
        continue;
      }
      c.unread_count = 0;  // one byte, dropped
      std::string record = EncodeConversation(c);
      record.pop_back();
      impl.TxnPut(txn, kConversations, impl.ConvKey(c.id), record);
    }
    std::string v;
    PutFixed64BE(&v, version);
    impl.TxnPut(txn, kMeta, "schema_version", v);
    ASSERT_TRUE(impl.Commit(txn, lock).ok());
  }
};

namespace {

// A store written by the last release before schema v2 - by that release's
// own CLI (tests/engine/data/make_schema_v1_store.sh), not a simulation of
// it: pending sends whose outbox entries hold their bodies, an edit, a
// delete, a reaction, a read marker, two conversations, data in SST files
// and in the WAL, files 0644. It opens read-only as it is, then migrates on
// the first writable open, and old and new entries both send what was sent.
TEST(Store, SchemaV1StoreFromTheLastReleaseOpensAndMigrates) {
  TempDir dir;
  const fs::path data = TIDINGS_ENGINE_TEST_DATA;
  fs::copy(data / "schema-v1-store", dir / "s", fs::copy_options::recursive);
  for (const auto& e : fs::recursive_directory_iterator(dir / "s")) {  // as git checks out
    fs::permissions(e.path(), e.is_directory() ? fs::perms(0755) : fs::perms(0644));
  }
  fs::copy_file(data / "schema-v1-store.key", dir / "k");
  fs::permissions(dir / "k", fs::perms::owner_read | fs::perms::owner_write);
  const auto key = [&] { return crypto::KeySource::KeyFile(dir / "k"); };

  const auto check = [](Store& s) {
    auto ward = s.Page({.conversation_id = "ward-7"});
    ASSERT_TRUE(ward.ok()) << ward.status().ToString();
    ASSERT_EQ(ward->size(), 3u);
    EXPECT_EQ((*ward)[0].body, "first, edited");
    EXPECT_FALSE((*ward)[0].edited_at.IsZero());
    EXPECT_TRUE((*ward)[1].deleted);
    EXPECT_EQ((*ward)[2].body, "third");
    EXPECT_EQ((*ward)[2].reactions, (std::vector<Reaction>{{"alice", "ok"}}));
    for (const auto& m : *ward) EXPECT_EQ(m.sender, "alice");
    auto conv = s.GetConversation("ward-7");
    ASSERT_TRUE(conv.ok());
    EXPECT_EQ(conv->title, "Ward 7");
    EXPECT_EQ(conv->members, (std::vector<std::string>{"alice", "dr-bob"}));
    auto clinic = s.Page({.conversation_id = "clinic"});
    ASSERT_EQ(clinic->size(), 1u);
    EXPECT_EQ(clinic->front().body, "hello clinic");
    auto outbox = s.Outbox(0);
    ASSERT_TRUE(outbox.ok()) << outbox.status().ToString();
    ASSERT_GE(outbox->size(), 8u);
    const std::vector<OpKind> kinds = {OpKind::kSend, OpKind::kSend,      OpKind::kSend,
                                       OpKind::kEdit, OpKind::kDelete,    OpKind::kReact,
                                       OpKind::kSend, OpKind::kReadMarker};
    for (size_t i = 0; i < kinds.size(); ++i) EXPECT_EQ((*outbox)[i].op.kind, kinds[i]) << i;
    EXPECT_EQ((*outbox)[0].op.body, "first, as typed");  // the send, as sent
    EXPECT_EQ((*outbox)[1].op.body, "second");
    EXPECT_EQ((*outbox)[2].op.body, "third");
    EXPECT_EQ((*outbox)[3].op.body, "first, edited");
    EXPECT_EQ((*outbox)[6].op.body, "hello clinic");
    auto report = s.Verify(nullptr);
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->problems, 0u) << (report->details.empty() ? "" : report->details[0]);
  };

  {
    StoreOptions ro;
    ro.read_only = true;
    auto s = Store::Open(dir / "s", key(), ro);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    check(**s);
    // Made before the search index: a reader cannot search until a writer
    // built it.
    EXPECT_EQ((*s)->Search({.query = "clinic"}).status().code(), Code::kFailedPrecondition);
  }
  std::string first_id;
  {
    auto s = Store::Open(dir / "s", key(), StoreOptions{});  // migrates, builds the index
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    check(**s);
    auto found = [&](const std::string& q) {
      auto r = (*s)->Search({.query = q});
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      std::vector<std::string> bodies;
      for (const auto& h : r.ok() ? r->hits : std::vector<SearchHit>{}) {
        bodies.push_back((*s)->Get(h.message_id)->body);
      }
      return bodies;
    };
    EXPECT_EQ(found("clinic"), std::vector<std::string>{"hello clinic"});
    EXPECT_EQ(found("first"), std::vector<std::string>{"first, edited"});
    EXPECT_TRUE(found("second").empty()) << "deleted before the index existed";
    EXPECT_TRUE(found("typed").empty()) << "edited away before the index existed";
    first_id = (*s)->Page({.conversation_id = "ward-7"})->front().id;
    // An entry written by v1 keeps its own body through a later edit, and a
    // send after the migration refers to its message.
    ASSERT_TRUE((*s)->Edit(first_id, "first, again").ok());
    ASSERT_TRUE((*s)->Send(Msg("ward-7", "fourth")).ok());
    EXPECT_TRUE(found("edited").empty());
    EXPECT_EQ(found("again").size(), 1u);
    auto outbox = (*s)->Outbox(0);
    ASSERT_EQ(outbox->size(), 10u);
    EXPECT_EQ((*outbox)[0].op.body, "first, as typed");
    EXPECT_EQ((*outbox)[9].op.body, "fourth");
    ASSERT_TRUE((*s)->sync_log().AckOutbox((*outbox)[0].seq, {"sim", "r-1", 1}).ok());
    EXPECT_EQ((*s)->Get(first_id)->state, MessageState::kSent);
  }
  {
    auto s = Store::Open(dir / "s", key(), StoreOptions{});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ((*s)->Get(first_id)->body, "first, again");
    auto outbox = (*s)->Outbox(0);
    ASSERT_EQ(outbox->size(), 9u);
    EXPECT_EQ(outbox->front().op.body, "second");
    EXPECT_EQ(outbox->back().op.body, "fourth");
    auto report = (*s)->Verify(nullptr);
    EXPECT_EQ(report->problems, 0u) << (report->details.empty() ? "" : report->details[0]);
  }
  ExpectOwnerOnly(dir / "s");
}

// A store of schema v4 (the format before conversation records became
// checkpoints) opens read-only as it is and migrates on the first writable
// open: a record whose last_order a clamp left below newer messages gets its
// newest message's, so the messages above it are not counted twice.
TEST(Store, SchemaV4StoreMigrates) {
  TempDir dir;
  std::string second_id;
  OrderKey second_order;
  {
    auto s = MustOpen(dir.path());
    std::vector<Message> sent;
    for (int i = 0; i < 5; ++i) sent.push_back(*s->Send(Msg("c", "m" + std::to_string(i))));
    ASSERT_TRUE(s->Send(Msg("d", "other")).ok());
    second_id = sent[1].id;
    second_order = sent[1].order;
    SchemaTestPeer::MakeV4(*s, "c", second_order, second_id);
  }
  const auto check = [&](Store& s, uint64_t count) {
    auto c = s.GetConversation("c");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->message_count, count);
    EXPECT_EQ(c->last_message_id, s.Page({.conversation_id = "c", .limit = 1})->back().id);
    auto d = s.GetConversation("d");
    EXPECT_EQ(d->message_count, 1u);
  };
  {
    StoreOptions ro;
    ro.read_only = true;
    auto s = Store::Open(dir.path(), TestKey(), ro);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    // Unmigrated, the three messages above the old last_order count twice.
    EXPECT_EQ((*s)->GetConversation("c")->message_count, 8u);
  }
  {
    auto s = MustOpen(dir.path());
    check(*s, 5);
    ASSERT_TRUE(s->Send(Msg("c", "after")).ok());
    check(*s, 6);
  }
  {
    auto s = MustOpen(dir.path());
    check(*s, 6);
    auto report = s->Verify(nullptr);
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->problems, 0u);
  }
}

// A store of schema v5 (records without their unread count) counts from the
// messages when read as it is, and gets the counts in its records on the
// first writable open; later changes keep them.
TEST(Store, SchemaV5StoreMigrates) {
  TempDir dir;
  const std::vector<Operation> ops = SendsFromBob("bob-", 40);
  {
    auto s = MustOpen(dir.path());
    ASSERT_TRUE(s->sync_log().Merge("sim", "c", ops, "x").ok());
    ASSERT_TRUE(s->MarkRead("c", ops[9].at).ok());
    ASSERT_TRUE(s->Send(Msg("d", "mine")).ok());
    SchemaTestPeer::MakeV5(*s);
  }
  const auto unread = [](Store& s, const std::string& conv) {
    auto c = s.GetConversation(conv);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    auto all = s.Conversations(0);
    EXPECT_TRUE(all.ok());
    for (const auto& l : *all) {
      if (l.id == conv) {
        EXPECT_EQ(l.unread_count, c->unread_count);
      }
    }
    return c->unread_count;
  };
  {
    StoreOptions ro;
    ro.read_only = true;
    auto s = Store::Open(dir.path(), TestKey(), ro);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(unread(**s, "c"), 30u);
    EXPECT_EQ(unread(**s, "d"), 0u);
  }
  {
    auto s = MustOpen(dir.path());
    EXPECT_EQ(unread(*s, "c"), 30u);
    ASSERT_TRUE(s->MarkRead("c", ops[19].at).ok());
    EXPECT_EQ(unread(*s, "c"), 20u);
  }
  {
    auto s = MustOpen(dir.path());
    EXPECT_EQ(unread(*s, "c"), 20u);
    EXPECT_EQ(unread(*s, "d"), 0u);
    auto report = s->Verify(nullptr);
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->problems, 0u);
  }
}

// A v4 record that the v4 -> v5 repair rewrites (a clamp left its
// last_order below newer messages) must still get its unread count from
// the messages in v5 -> v6: the repair writes the record in the current
// encoding, with unread_count 0, and v5 -> v6 then takes that 0 as counted.
TEST(Store, SchemaV4RepairedRecordKeepsItsUnreadCountThroughV6) {
  TempDir dir;
  const std::vector<Operation> ops = SendsFromBob("bob-", 5);
  {
    auto s = MustOpen(dir.path());
    ASSERT_TRUE(s->sync_log().Merge("sim", "c", ops, "x").ok());
    ASSERT_TRUE(s->Send(Msg("c", "mine")).ok());
    ASSERT_EQ(s->GetConversation("c")->unread_count, 5u);
    // As v4 left it after a clamp: last_order at bob's second message.
    SchemaTestPeer::MakeV4Exact(*s, "c", ops[1].at, ops[1].message_id);
  }
  {
    StoreOptions ro;
    ro.read_only = true;
    auto s = Store::Open(dir.path(), TestKey(), ro);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ((*s)->GetConversation("c")->unread_count, 5u) << "counted from the messages";
  }
  auto s = MustOpen(dir.path());
  EXPECT_EQ(s->GetConversation("c")->message_count, 6u);
  EXPECT_EQ(s->GetConversation("c")->unread_count, 5u) << "bob's five messages are unread";
  auto report = s->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u) << (report->details.empty() ? "" : report->details[0]);
}

}  // namespace
}  // namespace tidings::engine
