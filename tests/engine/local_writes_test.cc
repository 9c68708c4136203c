// Local writes (engine/local_writes.cc): sends, batches, ordering and limits.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "store_test_util.h"

namespace tidings::engine {
namespace {

TEST(Store, SendGetPageRoundTripAndReopen) {
  TempDir dir;
  std::vector<std::string> ids;
  {
    auto store = MustOpen(dir.path());
    for (int i = 0; i < 120; ++i) {
      SendRequest r = Msg(i % 2 ? "conv-b" : "conv-a", "hello " + std::to_string(i));
      r.metadata["k"] = "v";
      auto m = store->Send(r);
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      EXPECT_EQ(m->state, MessageState::kPending);
      EXPECT_EQ(m->sender, "alice");
      ids.push_back(m->id);
    }
  }
  auto store = MustOpen(dir.path(), StoreOptions{});
  auto got = store->Get(ids[7]);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, "hello 7");
  EXPECT_EQ(got->conversation_id, "conv-b");
  EXPECT_EQ(got->metadata.at("k"), "v");

  auto page = store->Page({.conversation_id = "conv-a", .limit = 50});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 50u);
  EXPECT_EQ(page->back().body, "hello 118");
  EXPECT_TRUE(std::is_sorted(page->begin(), page->end(),
                             [](auto& a, auto& b) { return a.order < b.order; }));
  auto older =
      store->Page({.conversation_id = "conv-a", .limit = 50, .before = page->front().order});
  ASSERT_TRUE(older.ok());
  EXPECT_EQ(older->size(), 10u);
  EXPECT_EQ(older->front().body, "hello 0");
  auto newer = store->Page({.conversation_id = "conv-a", .limit = 5, .after = older->back().order});
  ASSERT_TRUE(newer.ok());
  ASSERT_EQ(newer->size(), 5u);
  EXPECT_EQ(newer->front().id, page->front().id);

  auto convs = store->Conversations(10);
  ASSERT_TRUE(convs.ok());
  ASSERT_EQ(convs->size(), 2u);
  EXPECT_EQ((*convs)[0].id, "conv-b");  // most recent activity first
  EXPECT_EQ((*convs)[0].message_count, 60u);

  auto outbox = store->Outbox(0);
  ASSERT_TRUE(outbox.ok());
  EXPECT_EQ(outbox->size(), 120u);
  EXPECT_EQ(store->Get("missing").status().code(), Code::kNotFound);
}

TEST(Store, BodyLimitIsAClearError) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  auto ok = store->Send(Msg("c", std::string(kMaxBodyBytes, 'x')));
  EXPECT_TRUE(ok.ok());
  auto big = store->Send(Msg("c", std::string(kMaxBodyBytes + 1, 'x')));
  EXPECT_EQ(big.status().code(), Code::kTooLarge);
  EXPECT_NE(big.status().message().find("64 KiB"), std::string::npos);
  EXPECT_EQ(store->Send(Msg("", "x")).status().code(), Code::kInvalidArgument);
}

TEST(Store, ConcurrentWritersGetATotalOrderMatchingIds) {
  TempDir dir;
  StoreOptions o = CreateOptions();
  o.durability = Durability::kSync;
  auto store = MustOpen(dir.path(), o);
  constexpr int kThreads = 8, kPer = 50;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        if (!store->Send(Msg("c", std::to_string(t) + ":" + std::to_string(i))).ok()) failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto page = store->Page({.conversation_id = "c", .limit = 1000});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), size_t{kThreads * kPer});
  std::set<uint64_t> hlcs;
  std::vector<int> last(kThreads, -1);
  for (const auto& m : *page) {
    hlcs.insert(m.order.hlc);
    int t = std::stoi(m.body.substr(0, m.body.find(':')));
    int i = std::stoi(m.body.substr(m.body.find(':') + 1));
    EXPECT_EQ(i, last[t] + 1) << "per-writer order must be preserved";
    last[t] = i;
  }
  EXPECT_EQ(hlcs.size(), page->size()) << "every local event has a distinct hlc";
}

TEST(Store, SameMillisecondWritesStayOrdered) {
  TempDir dir;
  StoreOptions o = CreateOptions();
  o.wall_clock_ms = [] { return uint64_t{1'700'000'000'000}; };  // frozen clock
  auto store = MustOpen(dir.path(), o);
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(store->Send(Msg("c", std::to_string(i)))->id);
  auto page = store->Page({.conversation_id = "c", .limit = 100});
  ASSERT_TRUE(page.ok());
  for (int i = 0; i < 100; ++i) EXPECT_EQ((*page)[static_cast<size_t>(i)].body, std::to_string(i));
  EXPECT_EQ(page->front().order.millis(), 1'700'000'000'000u);
}

TEST(Store, ClockNeverGoesBackAcrossReopen) {
  TempDir dir;
  uint64_t wall = 2'000'000'000'000;
  StoreOptions o = CreateOptions();
  o.wall_clock_ms = [&] { return wall; };
  OrderKey first;
  {
    auto store = MustOpen(dir.path(), o);
    first = store->Send(Msg("c", "a"))->order;
  }
  wall -= 3'600'000;  // the device clock was set back an hour
  auto store = MustOpen(dir.path(), o);
  EXPECT_LT(first, store->Send(Msg("c", "b"))->order);
}

TEST(Store, SendManyIsAtomicAndOrdered) {
  testing::TempDir dir;
  auto store = Store::Open(dir.path(), testing::TestKey(), testing::CreateOptions());
  ASSERT_TRUE(store.ok());
  std::vector<SendRequest> batch;
  for (int i = 0; i < 100; ++i)
    batch.push_back({.conversation_id = "c", .body = std::to_string(i)});
  auto sent = (*store)->SendMany(batch);
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(sent->size(), 100u);
  auto page = (*store)->Page({.conversation_id = "c", .limit = 200});
  ASSERT_EQ(page->size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ((*page)[static_cast<size_t>(i)].body, std::to_string(i));
  EXPECT_EQ((*store)->Outbox(0)->size(), 100u);
  EXPECT_EQ((*store)->GetConversation("c")->message_count, 100u);
  // One bad message: nothing is written.
  batch[50].body = std::string(kMaxBodyBytes + 1, 'x');
  EXPECT_EQ((*store)->SendMany(batch).status().code(), Code::kTooLarge);
  EXPECT_EQ((*store)->Page({.conversation_id = "c", .limit = 500})->size(), 100u);
}

}  // namespace
}  // namespace tidings::engine
