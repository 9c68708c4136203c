// The simulator's server and network: an in-memory per-conversation log with
// a seeded network that drops, delays (applies late), duplicates and fails
// requests, loses responses after the server committed, and partitions
// replicas. Used only by tests.
#pragma once

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "sync/backend.h"

namespace tidings::sim {

struct Faults {
  int drop = 0;           // percent: request lost, nothing applied
  int server_error = 0;   // percent: 503
  int throttle = 0;       // percent: throttled (per op or whole request) with retry-after
  int lose_response = 0;  // percent: applied, but the client times out
  int delay = 0;          // percent: applied later, the client times out
  int duplicate = 0;      // percent: applied twice
  int crash = 0;          // percent: the client process dies with the answer in hand
  int auth = 0;           // percent: credentials expired (401)
};

// The server refuses these operations for good (a validation error): a send
// whose body is
// containing '!'. Deterministic, so every retry is refused too.
// Only sends are refused: a refused edit would stay applied on its own
// device (the store does not roll local edits back), which is a documented
// local divergence, not a convergence failure (docs/sync.md).
inline bool Rejected(const engine::Operation& op) {
  return op.kind == engine::OpKind::kSend && op.body.find('!') != std::string::npos;
}

class SimServer {
 public:
  // Returns the stored copy (first acceptance wins: idempotent by op id).
  const engine::Operation& Apply(const std::string& conv, engine::Operation op, uint64_t now_ms) {
    auto& seen = seen_[conv];
    auto it = seen.find(op.op_id);
    auto& log = log_[conv];
    if (it != seen.end()) return log[it->second];
    op.conversation_id = conv;
    op.server_time_ms = now_ms;
    op.remote_id = "srv-" + std::to_string(log.size());
    seen[op.op_id] = log.size();
    log.push_back(std::move(op));
    return log.back();
  }
  const std::map<std::string, std::vector<engine::Operation>>& logs() const { return log_; }

 private:
  std::map<std::string, std::vector<engine::Operation>> log_;
  std::map<std::string, std::map<std::string, size_t>> seen_;
};

struct DelayedPush {
  uint64_t deliver_at;
  std::string conv;
  std::vector<engine::Operation> ops;
};

struct SimWorld {
  explicit SimWorld(uint64_t seed) : rng(seed) {}
  std::mt19937_64 rng;
  uint64_t now_ms = 1'700'000'000'000;
  SimServer server;
  Faults faults;
  std::set<int> partitioned;
  std::set<int> crashing;              // replicas whose process "died" mid-sync
  std::optional<int64_t> retry_after;  // of the last whole-request failure
  std::vector<DelayedPush> delayed;
  uint64_t requests = 0;

  bool Roll(int percent) { return percent > 0 && static_cast<int>(rng() % 100) < percent; }
  void DeliverDelayed(bool all) {
    for (auto it = delayed.begin(); it != delayed.end();) {
      if (all || it->deliver_at <= now_ms) {
        for (auto& op : it->ops) server.Apply(it->conv, op, now_ms);
        it = delayed.erase(it);
      } else {
        ++it;
      }
    }
  }
};

class SimBackend final : public sync::Backend {
 public:
  SimBackend(SimWorld* world, int replica) : world_(world), replica_(replica) {}

  std::string_view name() const override { return "sim"; }
  size_t max_batch() const override { return 5; }

  Result<std::string> EnsureConversation(const engine::Conversation& c) override {
    TIDINGS_RETURN_IF_ERROR(Network());
    return "sim:" + c.id;
  }

  Result<std::vector<sync::PushAck>> Push(const std::string& conv,
                                          std::span<const engine::Operation> ops) override {
    TIDINGS_RETURN_IF_ERROR(Network());
    if (world_->Roll(world_->faults.throttle)) {
      const int64_t wait = 500 + static_cast<int64_t>(world_->rng() % 3000);
      if (world_->rng() % 2) {
        world_->retry_after = wait;
        return ResourceExhausted("ThrottlingException: rate exceeded");
      }
      std::vector<sync::PushAck> acks(ops.size());
      for (auto& a : acks) {
        a.status = ResourceExhausted("ThrottlingException: rate exceeded");
        a.retry_after_ms = wait;
      }
      return acks;
    }
    // A refused operation fails the whole request half of the time (the
    // reconciler must find it by retrying one at a time) or only its own ack.
    const bool refuse_whole = world_->rng() % 2 == 0;
    if (refuse_whole && std::any_of(ops.begin(), ops.end(), Rejected)) {
      return InvalidArgument("ValidationException: invalid operation in batch");
    }
    if (world_->Roll(world_->faults.delay)) {
      world_->delayed.push_back({world_->now_ms + 1 + world_->rng() % 5000, conv,
                                 std::vector<engine::Operation>(ops.begin(), ops.end())});
      return DeadlineExceeded("request timed out");
    }
    std::vector<sync::PushAck> acks;
    for (const auto& op : ops) {
      if (Rejected(op)) {
        sync::PushAck refused;
        refused.status = InvalidArgument("ValidationException: invalid operation");
        acks.push_back(std::move(refused));
        continue;
      }
      const auto& stored = world_->server.Apply(conv, op, world_->now_ms);
      if (world_->Roll(world_->faults.duplicate)) world_->server.Apply(conv, op, world_->now_ms);
      sync::PushAck ack;
      ack.remote_id = stored.remote_id;
      ack.server_time_ms = stored.server_time_ms;
      acks.push_back(std::move(ack));
    }
    if (world_->Roll(world_->faults.lose_response)) {
      return DeadlineExceeded("response lost after the server committed");
    }
    if (world_->Roll(world_->faults.crash)) world_->crashing.insert(replica_);
    return acks;
  }

  Result<sync::PullPage> Pull(const std::string& conv, std::string_view cursor,
                              size_t limit) override {
    TIDINGS_RETURN_IF_ERROR(Network());
    size_t from = cursor.empty() ? 0 : std::stoul(std::string(cursor));
    sync::PullPage page;
    auto it = world_->server.logs().find(conv);
    size_t size = it == world_->server.logs().end() ? 0 : it->second.size();
    size_t to = std::min(size, from + limit);
    for (size_t i = from; i < to; ++i) page.ops.push_back(it->second[i]);
    // Responses may arrive reordered: the merge must not care.
    std::shuffle(page.ops.begin(), page.ops.end(), world_->rng);
    page.next_cursor = std::to_string(to);
    page.has_more = to < size;
    if (world_->Roll(world_->faults.crash)) world_->crashing.insert(replica_);
    return page;
  }

  Result<std::vector<std::string>> ListConversations() override {
    TIDINGS_RETURN_IF_ERROR(Network());
    std::vector<std::string> out;
    for (const auto& [c, log] : world_->server.logs()) out.push_back(c);
    return out;
  }

  std::optional<int64_t> last_retry_after_ms() const override { return world_->retry_after; }

 private:
  Status Network() {
    world_->requests++;
    world_->retry_after.reset();
    if (world_->partitioned.count(replica_)) return Unavailable("network unreachable (partition)");
    if (world_->Roll(world_->faults.drop)) return Unavailable("connection reset");
    if (world_->Roll(world_->faults.server_error)) {
      if (world_->rng() % 2) world_->retry_after = 1000;  // 503 with Retry-After
      return Unavailable("HTTP 503 from the server");
    }
    if (world_->Roll(world_->faults.auth)) return Unauthenticated("ExpiredTokenException");
    return Status::Ok();
  }

  SimWorld* world_;
  int replica_;
};

}  // namespace tidings::sim
