// Reads (engine/reads.cc): unread counts, lookups by id.
#include <gtest/gtest.h>

#include "engine/store_impl.h"
#include "store_test_util.h"

namespace tidings::engine {
namespace {

// Sends by bob, one a millisecond: ids `id_prefix` + i, bodies "b" + i.
std::vector<Operation> SendsFromBob(const std::string& id_prefix, int n) {
  std::vector<Operation> ops;
  for (int i = 0; i < n; ++i) {
    Operation op;
    op.kind = OpKind::kSend;
    op.message_id = op.op_id = id_prefix + std::to_string(i);
    op.author = "bob";
    op.at = OrderKey{(uint64_t{1'700'000'000'000} + static_cast<uint64_t>(i)) << 16, 42};
    op.body = "b" + std::to_string(i);
    ops.push_back(op);
  }
  return ops;
}

TEST(Store, UnreadCountsFollowTheReadMarker) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  const std::vector<Operation> ops = SendsFromBob("remote-", 5);
  ASSERT_TRUE(store->sync_log().Merge("sim", "c", ops, "cursor-5").ok());
  EXPECT_EQ(store->sync_log().GetCursor("sim", "c").value(), "cursor-5");
  EXPECT_EQ(store->GetConversation("c")->unread_count, 5u);
  ASSERT_TRUE(store->MarkRead("c", ops[2].at).ok());
  EXPECT_EQ(store->GetConversation("c")->unread_count, 2u);
  ASSERT_TRUE(store->MarkRead("c", ops[0].at).ok());  // never goes back
  EXPECT_EQ(store->GetConversation("c")->unread_count, 2u);
  // Re-merging the same page is idempotent.
  ASSERT_TRUE(store->sync_log().Merge("sim", "c", ops, "cursor-5").ok());
  EXPECT_EQ(store->GetConversation("c")->message_count, 5u);
}

// Ids from other clients (not UUIDv7) share the zero time prefix; lookups by
// id must still find each one exactly.
TEST(Store, LooksUpForeignAndLocalIdsAlike) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  const std::vector<Operation> ops = SendsFromBob("chime:", 50);
  ASSERT_TRUE(store->sync_log().Merge("sim", "c", ops, "x").ok());
  auto mine = store->Send(Msg("c", "mine"));
  ASSERT_TRUE(mine.ok());
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(store->Get("chime:" + std::to_string(i))->body, "b" + std::to_string(i));
  }
  EXPECT_EQ(store->Get(mine->id)->body, "mine");
  EXPECT_EQ(store->Get("chime:50").status().code(), Code::kNotFound);
  auto report = store->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u);
}

// Sends in order leave the stored conversation record behind (up to
// kSummaryLag messages); every reader - this writer, a cold writer, another
// process's read-only handle - still sees the summary as of the last send.
TEST(Store, ConversationSummaryIsCurrentForEveryReader) {
  TempDir dir;
  auto writer = MustOpen(dir.path());
  StoreOptions ro;
  ro.read_only = true;
  auto reader = Store::Open(dir.path(), TestKey(), ro);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_TRUE(writer->sync_log().Merge("sim", "c", SendsFromBob("bob-", 3), "x").ok());
  std::vector<std::string> ids;
  uint64_t visible = 3;
  for (int i = 0; i < 3 * static_cast<int>(kSummaryLag) + 5; ++i) {
    auto m = writer->Send(Msg(i % 2 == 0 ? "c" : "d", "m" + std::to_string(i)));
    ASSERT_TRUE(m.ok());
    if (i % 2 != 0) continue;
    ids.push_back(m->id);
    ++visible;
    if (i % 10 == 4) {  // a delete in the window the record lags behind
      ASSERT_TRUE(writer->Delete(ids[ids.size() - 2]).ok());
      --visible;
    }
    if (i % 7 != 0) continue;
    ASSERT_TRUE((*reader)->Refresh().ok());
    for (Store* s : {writer.get(), reader->get()}) {
      auto c = s->GetConversation("c");
      ASSERT_TRUE(c.ok());
      EXPECT_EQ(c->message_count, visible) << i;
      EXPECT_EQ(c->last_message_id, m->id) << i;
      EXPECT_EQ(c->last_order, m->order) << i;
      auto all = s->Conversations(0);
      ASSERT_TRUE(all.ok());
      ASSERT_EQ(all->size(), i == 0 ? 1u : 2u);
      const Conversation& listed = all->front().id == "c" ? all->front() : all->back();
      EXPECT_EQ(listed.message_count, visible) << i;
      EXPECT_EQ(listed.last_message_id, m->id) << i;
    }
  }
  const Message last = writer->Page({.conversation_id = "c", .limit = 1})->back();
  writer.reset();  // a new writer starts without the summaries in memory
  writer = MustOpen(dir.path());
  ASSERT_TRUE(writer->Send(Msg("c", "after reopen")).ok());
  ASSERT_TRUE(writer->Delete(last.id).ok());
  EXPECT_EQ(writer->GetConversation("c")->message_count, visible);
  auto report = writer->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u);
}

}  // namespace
}  // namespace tidings::engine
