// Commit and notifications (engine/txn.cc).
#include <gtest/gtest.h>

#include <mutex>

#include "store_test_util.h"

namespace tidings::engine {
namespace {

TEST(Store, NotificationsAfterCommit) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  std::vector<ChangeEvent> events;
  std::mutex mu;
  Store* raw = store.get();
  uint64_t token = store->Subscribe([&](const ChangeEvent& e) {
    if (e.kind == ChangeEvent::Kind::kMessageAdded) {
      // Visible to readers when the listener runs.
      EXPECT_TRUE(raw->Get(e.message_id).ok());
    }
    std::lock_guard<std::mutex> l(mu);
    events.push_back(e);
  });
  auto m = store->Send(Msg("c", "hi"));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(store->Edit(m->id, "hi!").ok());
  store->Unsubscribe(token);
  ASSERT_TRUE(store->Send(Msg("c", "unseen")).ok());
  std::lock_guard<std::mutex> l(mu);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0].kind, ChangeEvent::Kind::kMessageAdded);
  EXPECT_EQ(events[0].message_id, m->id);
  int added = 0;
  for (auto& e : events) added += e.kind == ChangeEvent::Kind::kMessageAdded;
  EXPECT_EQ(added, 1);
}

}  // namespace
}  // namespace tidings::engine
