// Reads (engine/reads.cc): unread counts, lookups by id.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tidings::engine
