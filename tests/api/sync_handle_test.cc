// The handle behind tidings_sync (internal: api/sync_handle.h) over an
// in-process backend whose older history pages wait at a gate the test
// opens, like a slow network: loading older history does not hold up the
// handle's other calls.
#include "api/sync_handle.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/gate.h"
#include "tests/engine/test_util.h"

namespace tidings::capi {
namespace {

using namespace std::chrono_literals;

using tidings::testing::Gate;  // older history pages wait there

// One conversation, "c", of kMessages remote messages, read newest-first.
class GatedHistoryBackend final : public sync::Backend {
 public:
  static constexpr size_t kMessages = 30;

  GatedHistoryBackend(std::unique_ptr<http::HttpClient> http, Gate* gate)
      : http_(std::move(http)), gate_(gate) {
    for (size_t i = 0; i < kMessages; ++i) {
      engine::Operation op;
      op.kind = engine::OpKind::kSend;
      op.op_id = op.message_id = "remote-" + std::to_string(i);
      op.conversation_id = "c";
      op.author = "them";
      op.at = {(uint64_t{1'000'000} + i) << 16, 9};
      op.body = "older history";
      op.server_time_ms = 1'000'000 + i;
      op.remote_id = "r" + std::to_string(i);
      log_.push_back(std::move(op));
    }
  }
  std::string_view name() const override { return "gated"; }
  size_t max_batch() const override { return 10; }
  Result<std::string> EnsureConversation(const engine::Conversation& c) override {
    return "gated:" + c.id;
  }
  Result<std::vector<sync::PushAck>> Push(const std::string&,
                                          std::span<const engine::Operation> ops) override {
    return std::vector<sync::PushAck>(ops.size());
  }
  Result<sync::PullPage> Pull(const std::string&, std::string_view cursor, size_t) override {
    sync::PullPage page;  // nothing after the newest page
    page.next_cursor = std::string(cursor);
    return page;
  }
  // Positions are log indexes: the newest page is [size - limit, size).
  Result<sync::HistoryPage> PullHistory(const std::string&, std::string_view before,
                                        size_t limit) override {
    size_t to = log_.size();
    sync::HistoryPage page;
    if (before.empty()) {
      page.forward_cursor = std::to_string(to);
    } else {
      const std::thread::id gated = gated_thread.load();
      if (offline || (gated != std::thread::id() && gated != std::this_thread::get_id())) {
        return Unavailable("the network is down");
      }
      gate_->Pass();
      to = std::stoul(std::string(before));
    }
    const size_t from = to > limit ? to - limit : 0;
    page.ops.assign(log_.begin() + static_cast<ptrdiff_t>(from),
                    log_.begin() + static_cast<ptrdiff_t>(to));
    if (from > 0) page.before = std::to_string(from);
    return page;
  }
  Result<std::vector<std::string>> ListConversations() override {
    return std::vector<std::string>{"c"};
  }

  std::atomic<bool> offline{false};  // older pages fail at once
  // When set, only this thread's older pages reach the gate; other threads'
  // fail at once.
  std::atomic<std::thread::id> gated_thread{};

 private:
  std::unique_ptr<http::HttpClient> http_;  // the handle keeps a view of it
  Gate* gate_;
  std::vector<engine::Operation> log_;
};

// A fresh store, and the gated backends a handle over it built. A stop that
// gives up on a request cancels its transport, and the handle builds a new
// backend on a new one before the next use. Outlives the handle.
struct World {
  World() {
    auto opened = engine::Store::Open(dir.path(), testing::TestKey(), testing::CreateOptions("me"));
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    if (opened.ok()) store = std::move(*opened);
  }
  static SyncOptions Options() {
    SyncOptions options;
    options.config.pull_page_size = 10;
    return options;
  }
  // The messages of "c" the store holds.
  size_t Held() {
    auto page = store->Page({.conversation_id = "c", .limit = 100});
    return page.ok() ? page->size() : 0;
  }

  testing::TempDir dir;
  std::unique_ptr<engine::Store> store;
  Gate gate;
  std::vector<GatedHistoryBackend*> backends;
};

// Adds the gated backend to `handle` and syncs once: the newest page, 10 of
// the 30; the background fill of the rest fails (the first backend starts
// offline).
void AddAndSyncOnce(SyncHandle& handle, World* world) {
  Status added = handle.Add(
      "gated",
      [world](std::unique_ptr<http::HttpClient> http) -> Result<std::unique_ptr<sync::Backend>> {
        auto made = std::make_unique<GatedHistoryBackend>(std::move(http), &world->gate);
        made->offline = world->backends.empty();
        world->backends.push_back(made.get());
        return std::unique_ptr<sync::Backend>(std::move(made));
      });
  ASSERT_TRUE(added.ok()) << added.ToString();
  ASSERT_EQ(world->backends.size(), 1u);
  Status once = handle.Once();
  ASSERT_TRUE(once.ok()) << once.ToString();
  world->backends[0]->offline = false;
}

TEST(SyncHandle, StatusAndPokesAnswerWhileLoadOlderWaitsOnTheNetwork) {
  World world;
  ASSERT_NE(world.store, nullptr);
  Gate& gate = world.gate;
  SyncHandle handle(&world.store->sync_log(), World::Options());
  ASSERT_NO_FATAL_FAILURE(AddAndSyncOnce(handle, &world));

  auto fill = std::async(std::launch::async, [&] { return handle.LoadOlder("c", 2); });
  ASSERT_TRUE(gate.AwaitSomeoneWaiting(10s)) << "LoadOlder never asked for an older page";
  auto others = std::async(std::launch::async, [&] {
    handle.Poke();
    return handle.Statuses();
  });
  const bool answered = others.wait_for(10s) == std::future_status::ready;
  gate.Open();
  EXPECT_TRUE(answered) << "Poke and Statuses waited for the older page";

  auto filled = fill.get();
  ASSERT_TRUE(filled.ok()) << filled.status().ToString();
  EXPECT_EQ(filled->merged, GatedHistoryBackend::kMessages - 10);
  EXPECT_FALSE(filled->more);
  const auto statuses = others.get();
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0].first, "gated");
}

// A stop while LoadOlder waits for its page ends the fill with CANCELLED and
// merges nothing of that page; loading again afterwards fills the history.
TEST(SyncHandle, AStopWhileLoadOlderWaitsCancelsItAndMergesNothing) {
  World world;
  ASSERT_NE(world.store, nullptr);
  Gate& gate = world.gate;
  SyncOptions options = World::Options();
  // The stop gives up on the request in flight after this long and says so
  // (TIDINGS_SYNC_REQUEST_ABANDONED): then the page arrives, after the stop.
  options.stop_grace_ms = 200;
  SyncHandle handle(&world.store->sync_log(), options);
  ASSERT_TRUE(handle
                  .SetListener(
                      [](void* context, const tidings_sync_event* e) {
                        if (e->kind == TIDINGS_SYNC_REQUEST_ABANDONED) {
                          static_cast<Gate*>(context)->Open();
                        }
                      },
                      &gate)
                  .ok());
  ASSERT_NO_FATAL_FAILURE(AddAndSyncOnce(handle, &world));
  ASSERT_EQ(world.Held(), 10u);
  ASSERT_TRUE(handle.Start().ok());

  // Only LoadOlder's page waits: the sync thread's own fill fails fast.
  auto fill = std::async(std::launch::async, [&] {
    world.backends[0]->gated_thread = std::this_thread::get_id();
    return handle.LoadOlder("c", 2);
  });
  ASSERT_TRUE(gate.AwaitSomeoneWaiting(10s)) << "LoadOlder never asked for an older page";
  handle.Stop();
  auto filled = fill.get();
  EXPECT_EQ(filled.status().code(), Code::kCancelled) << filled.status().ToString();
  EXPECT_EQ(world.Held(), 10u) << "the page that came after the stop was merged";
  world.backends[0]->gated_thread = std::thread::id();

  // The user scrolls up again: the stopped handle fills on the caller's
  // thread, over a new transport (the stop cancelled the old one, which
  // would refuse every request).
  auto again = handle.LoadOlder("c", 2);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(world.backends.size(), 2u) << "the transport the stop cancelled was used again";
  EXPECT_EQ(again->merged, GatedHistoryBackend::kMessages - 10);
  EXPECT_EQ(world.Held(), GatedHistoryBackend::kMessages);
}

}  // namespace
}  // namespace tidings::capi
