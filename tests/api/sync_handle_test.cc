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
#include <vector>

#include "tests/engine/test_util.h"

namespace tidings::capi {
namespace {

using namespace std::chrono_literals;

// Older history pages wait here until Open().
class Gate {
 public:
  void Pass() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  bool AwaitSomeoneWaiting(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return waiting_ > 0; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

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
      if (offline) return Unavailable("the network is down");
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

 private:
  std::unique_ptr<http::HttpClient> http_;  // the handle keeps a view of it
  Gate* gate_;
  std::vector<engine::Operation> log_;
};

TEST(SyncHandle, StatusAndPokesAnswerWhileLoadOlderWaitsOnTheNetwork) {
  testing::TempDir dir;
  auto store = engine::Store::Open(dir.path(), testing::TestKey(), testing::CreateOptions("me"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Gate gate;
  GatedHistoryBackend* backend = nullptr;
  SyncOptions options;
  options.config.pull_page_size = 10;
  SyncHandle handle(&(*store)->sync_log(), options);
  ASSERT_TRUE(handle
                  .Add("gated",
                       [&](std::unique_ptr<http::HttpClient> http)
                           -> Result<std::unique_ptr<sync::Backend>> {
                         auto made = std::make_unique<GatedHistoryBackend>(std::move(http), &gate);
                         backend = made.get();
                         backend->offline = true;
                         return std::unique_ptr<sync::Backend>(std::move(made));
                       })
                  .ok());
  // The newest page, 10 of the 30; the background fill of the rest fails.
  ASSERT_TRUE(handle.Once().ok());
  backend->offline = false;

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

}  // namespace
}  // namespace tidings::capi
