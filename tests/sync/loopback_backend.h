// LoopbackBackend: the simulator's server behind a mutex, as a Backend the
// sync thread and the test thread use at once (tests/sync/sync_engine_test.cc,
// realtime_engine_test.cc).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "sim_backend.h"
#include "sync/backend.h"
#include "tests/common/eventually.h"

namespace tidings::sync {

using namespace std::chrono_literals;

// Thread-safe: the test thread adds remote operations while the sync thread
// pushes and pulls.
class LoopbackBackend : public Backend {
 public:
  explicit LoopbackBackend(std::string name = "loop") : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  size_t max_batch() const override { return 10; }
  Result<std::string> EnsureConversation(const engine::Conversation& c) override {
    requests++;
    return "loop:" + c.id;
  }
  Result<std::vector<PushAck>> Push(const std::string& conv,
                                    std::span<const engine::Operation> ops) override {
    requests++;
    if (push_hold.count() > 0) HoldOnTheWire();
    std::lock_guard<std::mutex> lock(mu_);
    pushes++;
    if (!fail_with.ok()) return fail_with;
    std::vector<PushAck> acks;
    for (const auto& op : ops) {
      const auto& stored = server_.Apply(conv, op, static_cast<uint64_t>(WallMs()));
      acks.push_back({.remote_id = stored.remote_id, .server_time_ms = stored.server_time_ms});
    }
    return acks;
  }
  Result<PullPage> Pull(const std::string& conv, std::string_view cursor, size_t limit) override {
    requests++;
    std::lock_guard<std::mutex> lock(mu_);
    pulls++;
    pulls_of_[conv]++;
    if (!fail_with.ok()) return fail_with;
    PullPage page;
    const size_t from = cursor.empty() ? 0 : std::stoul(std::string(cursor));
    auto it = server_.logs().find(conv);
    const size_t size = it == server_.logs().end() ? 0 : it->second.size();
    const size_t to = std::min(size, from + limit);
    for (size_t i = from; i < to; ++i) page.ops.push_back(it->second[i]);
    page.next_cursor = std::to_string(to);
    page.has_more = to < size;
    return page;
  }
  Result<std::vector<std::string>> ListConversations() override {
    requests++;
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& [c, log] : server_.logs()) out.push_back(c);
    return out;
  }

  int PullsOf(const std::string& conv) {
    std::lock_guard<std::mutex> lock(mu_);
    return pulls_of_[conv];
  }
  void AddRemote(const engine::Operation& op) {
    std::lock_guard<std::mutex> lock(mu_);
    server_.Apply(op.conversation_id, op, static_cast<uint64_t>(WallMs()));
  }
  size_t Count(const std::string& conv, const std::string& op_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = server_.logs().find(conv);
    if (it == server_.logs().end()) return 0;
    return static_cast<size_t>(std::count_if(it->second.begin(), it->second.end(),
                                             [&](const auto& op) { return op.op_id == op_id; }));
  }
  void SetFailure(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_with = std::move(s);
  }

  // Waits until a push has reached the backend (and is held there).
  bool AwaitPushOnTheWire(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(wire_mu_);
    return wire_cv_.wait_for(lock, limit, [&] { return pushes_arrived_ > 0; });
  }
  // When the last held push returned its answer.
  std::chrono::steady_clock::time_point answered_at() {
    std::lock_guard<std::mutex> lock(wire_mu_);
    return answered_at_;
  }

  std::atomic<int> pushes{0}, pulls{0};
  std::atomic<int> requests{0};  // calls of any kind
  // Each push is held this long after it arrives, like a slow request that
  // cannot be cancelled.
  std::chrono::milliseconds push_hold{0};

 private:
  void HoldOnTheWire() {
    {
      std::lock_guard<std::mutex> lock(wire_mu_);
      pushes_arrived_++;
    }
    wire_cv_.notify_all();
    std::this_thread::sleep_for(push_hold);
    std::lock_guard<std::mutex> lock(wire_mu_);
    answered_at_ = std::chrono::steady_clock::now();
  }

  const std::string name_;
  std::mutex mu_;
  sim::SimServer server_;
  std::map<std::string, int> pulls_of_;  // REQUIRES: mu_
  Status fail_with;
  std::mutex wire_mu_;
  std::condition_variable wire_cv_;
  int pushes_arrived_ = 0;                             // REQUIRES: wire_mu_
  std::chrono::steady_clock::time_point answered_at_;  // REQUIRES: wire_mu_
};

using tidings::testing::Eventually;

}  // namespace tidings::sync
