// The production scheduler: pushes right after a local write, polls, stops
// promptly. Uses an in-process backend (a unit test; the integration tests
// use moto).
#include "sync/core/sync_engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "../engine/test_util.h"

namespace tidings::sync {
namespace {

using namespace std::chrono_literals;

class CountingBackend final : public Backend {
 public:
  std::string_view name() const override { return "counting"; }
  size_t max_batch() const override { return 10; }
  Result<std::string> EnsureConversation(const engine::Conversation&) override {
    return std::string("r");
  }
  Result<std::vector<PushAck>> Push(const std::string&,
                                    std::span<const engine::Operation> ops) override {
    pushed += static_cast<int>(ops.size());
    std::vector<PushAck> acks(ops.size());
    for (auto& a : acks)
      a.server_time_ms =
          static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count());
    return acks;
  }
  Result<PullPage> Pull(const std::string&, std::string_view cursor, size_t) override {
    pulls++;
    PullPage p;
    p.next_cursor = std::string(cursor);
    return p;
  }
  Result<std::vector<std::string>> ListConversations() override {
    return std::vector<std::string>{"c"};
  }
  std::atomic<int> pushed{0}, pulls{0};
};

template <typename F>
bool WaitFor(F&& cond, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

TEST(SyncEngine, PushesRightAfterALocalWriteAndStopsPromptly) {
  testing::TempDir dir;
  auto store = engine::Store::Open(dir.path(), testing::TestKey(), testing::CreateOptions("me"));
  ASSERT_TRUE(store.ok());
  CountingBackend backend;
  SyncConfig config;
  config.active_poll_ms = 60'000;  // so only the write can trigger the push
  config.idle_poll_ms = 60'000;
  SyncEngine engine(store->get(), &backend, config);
  ASSERT_TRUE(engine.Start().ok());
  EXPECT_EQ(engine.Start().code(), Code::kFailedPrecondition);
  ASSERT_TRUE(WaitFor([&] { return backend.pulls.load() > 0; }, 2000ms)) << "first round";
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE((*store)->Send({.conversation_id = "c", .body = "now"}).ok());
  ASSERT_TRUE(WaitFor([&] { return backend.pushed.load() == 1; }, 2000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms) << "pushed without waiting for a poll";
  ASSERT_TRUE(WaitFor([&] { return (*store)->Outbox(0)->empty(); }, 2000ms));
  EXPECT_EQ((*store)->Page({.conversation_id = "c"})->front().state, engine::MessageState::kSent);

  auto s0 = std::chrono::steady_clock::now();
  engine.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - s0, 1000ms) << "stop is prompt";
  engine.Stop();  // idempotent
  EXPECT_TRUE(engine.SyncOnce().ok());
  auto status = ReadSyncStatus(**store, "counting");
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 1u);
  EXPECT_GT(status->front().last_success_ms, 0);
}

}  // namespace
}  // namespace tidings::sync
