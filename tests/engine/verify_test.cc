// Verify (engine/verify.cc).
#include <gtest/gtest.h>

#include "engine/store_impl.h"
#include "store_test_util.h"

namespace tidings::engine {

// Writes conversation `id`'s record with other counts.
struct VerifyTestPeer {
  static void SetCounts(Store& s, const std::string& id, uint64_t messages, uint64_t unread) {
    auto& impl = dynamic_cast<StoreImpl&>(s);
    std::unique_lock<std::mutex> lock(impl.write_mu_);
    Txn txn;
    auto c = impl.LoadConversation(txn, id, nullptr);
    ASSERT_TRUE(c.ok());
    c->message_count = messages;
    c->unread_count = unread;
    impl.StoreConversation(txn, *c);
    ASSERT_TRUE(impl.Commit(txn, lock).ok());
  }
};

namespace {

// verify reads binary keys and values: no byte value may be taken for a
// marker. (It once was: 1 conversation in 256, the ones whose hashed key began
// with '?', made every message of theirs "missing from the by-id index".)
// 2,000 conversations cover every leading byte with near certainty; read-only
// and writable opens after an unclean stop both verify clean.
TEST(Store, VerifyIsCleanForEveryConversationKey) {
  TempDir dir;
  {
    auto store = MustOpen(dir.path());
    std::vector<SendRequest> batch;
    for (int i = 0; i < 2000; ++i) batch.push_back(Msg("conversation-" + std::to_string(i), "x"));
    ASSERT_TRUE(store->SendMany(batch).ok());
    ASSERT_TRUE(store->Send(Msg("conversation-7", "y")).ok());
  }
  for (bool read_only : {true, false}) {
    StoreOptions o;
    o.read_only = read_only;
    auto store = MustOpen(dir.path(), o);
    auto report = store->Verify(nullptr);
    ASSERT_TRUE(report.ok());
    EXPECT_GE(report->records_checked, 3u * 2001 + 2000) << "messages, index, outbox, summaries";
    EXPECT_EQ(report->problems, 0u) << read_only << " " << report->details.front();
  }
}

// Each conversation record's message and unread counts are checked against
// its messages (up to the record's last order: the rest is caught up).
TEST(Store, VerifyChecksTheConversationCounts) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store->sync_log().Merge("sim", "c", SendsFromBob("bob-", 1), "x").ok());
  ASSERT_TRUE(store->Send(Msg("c", "mine")).ok());
  auto clean = store->Verify(nullptr);
  ASSERT_TRUE(clean.ok());
  EXPECT_EQ(clean->problems, 0u) << clean->details.front();
  for (auto [messages, unread] : {std::pair<uint64_t, uint64_t>{2, 0}, {3, 1}}) {
    VerifyTestPeer::SetCounts(*store, "c", messages, unread);
    auto report = store->Verify(nullptr);
    ASSERT_TRUE(report.ok());
    ASSERT_EQ(report->problems, 1u) << messages << " " << unread;
    EXPECT_NE(report->details.front().find("its messages make 2 and 1"), std::string::npos)
        << report->details.front();
  }
}

}  // namespace
}  // namespace tidings::engine
