// Deterministic simulation: 3-5 replicas (real encrypted stores on disk) work
// offline and partitioned, crash and restart, one with a clock hours or a day
// off, over a faulty network; after healing they must converge byte for byte
// with nothing lost and nothing doubled.
//
//   TIDINGS_SIM_SEEDS=N   number of seeds (default 2000; 200 under sanitizers)
//   TIDINGS_SIM_SEED=S    replay exactly one seed
//   TIDINGS_SIM_SHARD=i/n run the i-th of n interleaved slices of the seeds
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <sstream>

#include "../engine/test_util.h"
#include "sim_backend.h"
#include "sync/core/reconciler.h"

namespace tidings::sim {
namespace {

constexpr uint64_t kDay = 86'400'000;

struct Replica {
  std::string path;
  std::string user;
  int64_t skew_ms = 0;
  std::unique_ptr<engine::Store> store;
  std::unique_ptr<SimBackend> backend;
  std::unique_ptr<sync::Reconciler> reconciler;
  std::vector<std::string> acknowledged;  // sends that returned OK to the caller
};

class Simulation {
 public:
  explicit Simulation(uint64_t seed) : seed_(seed), world_(seed) {}

  // Returns an empty string on success, else a description of the failure.
  std::string Run() {
    std::mt19937_64& rng = world_.rng;
    const int n = 3 + static_cast<int>(rng() % 3);
    const int convs = 1 + static_cast<int>(rng() % 3);
    for (int c = 0; c < convs; ++c) conversations_.push_back("conv-" + std::to_string(c));
    for (int i = 0; i < n; ++i) {
      Replica r;
      r.path = dir_ / ("r" + std::to_string(i));
      // Pairs of replicas share a user (a phone and a laptop), so one user's
      // edits and reactions race each other from two devices.
      r.user = "user-" + std::to_string(i / 2);
      replicas_.push_back(std::move(r));
    }
    // One replica's clock is off by hours or a day, either way.
    const int64_t skews[] = {int64_t(kDay), -3 * 3'600'000, 5 * 3'600'000, -int64_t(kDay)};
    replicas_[0].skew_ms = skews[rng() % 4];
    for (int i = 0; i < n; ++i) {
      if (auto err = Open(i); !err.empty()) return err;
    }
    world_.faults = {.drop = 5,
                     .server_error = 5,
                     .throttle = 5,
                     .lose_response = 8,
                     .delay = 4,
                     .duplicate = 5};

    const int steps = 60 + static_cast<int>(rng() % 60);
    for (int step = 0; step < steps; ++step) {
      world_.now_ms += rng() % 3000;
      world_.DeliverDelayed(false);
      if (rng() % 10 == 0) {  // partitions come and go
        int r = static_cast<int>(rng() % replicas_.size());
        if (!world_.partitioned.erase(r)) world_.partitioned.insert(r);
      }
      const int r = static_cast<int>(rng() % replicas_.size());
      const uint64_t action = rng() % 100;
      if (action < 45) {
        if (auto err = LocalOp(r); !err.empty()) return err;
      } else if (action < 92) {
        const std::string& c = conversations_[rng() % conversations_.size()];
        if (auto s = replicas_[r].reconciler->Push(c); !s.ok()) return "push: " + s.ToString();
        if (auto s = replicas_[r].reconciler->Pull(c); !s.ok()) return "pull: " + s.ToString();
      } else {
        // Crash: close the store mid-sync and reopen it from disk.
        replicas_[r].reconciler.reset();
        replicas_[r].store.reset();
        if (auto err = Open(r); !err.empty()) return err;
      }
    }

    // Heal, then sync until quiet.
    world_.partitioned.clear();
    world_.faults = {};
    world_.DeliverDelayed(true);
    for (int round = 0; round < 12; ++round) {
      world_.now_ms += 120'000;  // past every backoff
      for (auto& rep : replicas_) {
        auto all = rep.reconciler->Conversations();
        if (!all.ok()) return "conversations: " + all.status().ToString();
        for (const auto& c : *all) {
          if (auto s = rep.reconciler->Push(c); !s.ok()) return "push: " + s.ToString();
          if (auto s = rep.reconciler->Pull(c); !s.ok()) return "pull: " + s.ToString();
        }
      }
      if (round >= 1 && Quiet()) break;
    }
    return Check();
  }

 private:
  std::string Open(int i) {
    Replica& r = replicas_[static_cast<size_t>(i)];
    engine::StoreOptions o = testing::CreateOptions(r.user);
    SimWorld* w = &world_;
    const int64_t skew = r.skew_ms;
    o.wall_clock_ms = [w, skew] {
      return static_cast<uint64_t>(static_cast<int64_t>(w->now_ms) + skew);
    };
    auto store = engine::Store::Open(r.path, testing::TestKey(), o);
    if (!store.ok()) return "open: " + store.status().ToString();
    r.store = std::move(*store);
    r.backend = std::make_unique<SimBackend>(&world_, i);
    sync::SyncConfig config;
    config.pull_page_size = 7;  // small pages: exercise paging and cursors
    r.reconciler = std::make_unique<sync::Reconciler>(
        r.store.get(), r.backend.get(), config,
        [w, skew] { return static_cast<int64_t>(w->now_ms) + skew; }, [w] { return w->rng(); });
    return "";
  }

  std::string LocalOp(int i) {
    Replica& r = replicas_[static_cast<size_t>(i)];
    std::mt19937_64& rng = world_.rng;
    const std::string& conv = conversations_[rng() % conversations_.size()];
    auto page = r.store->Page({.conversation_id = conv, .limit = 30});
    if (!page.ok()) return "page: " + page.status().ToString();
    const uint64_t kind = rng() % 100;
    if (kind < 55 || page->empty()) {
      auto m = r.store->Send({.conversation_id = conv,
                              .body = "m" + std::to_string(rng() % 100000) + " from " + r.user});
      if (!m.ok()) return "send: " + m.status().ToString();
      r.acknowledged.push_back(m->id);
      return "";
    }
    const engine::Message& target = (*page)[rng() % page->size()];
    if (kind < 70) {
      if (target.sender != r.user || target.deleted) return "";
      auto e = r.store->Edit(target.id, "edited " + std::to_string(rng() % 1000));
      return e.ok() ? "" : "edit: " + e.status().ToString();
    }
    if (kind < 77) {
      if (target.sender != r.user) return "";
      auto s = r.store->Delete(target.id);
      return s.ok() ? "" : "delete: " + s.ToString();
    }
    if (kind < 92) {
      const char* reactions[] = {"+1", "heart", "eyes"};
      auto s = r.store->React(target.id, reactions[rng() % 3], rng() % 3 != 0);
      return s.ok() ? "" : "react: " + s.ToString();
    }
    auto s = r.store->MarkRead(conv, target.order);
    return s.ok() ? "" : "mark read: " + s.ToString();
  }

  bool Quiet() {
    for (auto& r : replicas_) {
      auto outbox = r.store->Outbox(0);
      if (!outbox.ok() || !outbox->empty()) return false;
    }
    std::string first;
    for (auto& r : replicas_) {
      std::string d = Digest(r);
      if (first.empty()) first = d;
      if (d != first) return false;
    }
    return true;
  }

  // The visible state: conversations, messages in order with bodies,
  // reactions and markers. Local-only fields (delivery state, remote ids,
  // unread counts, which depend on who "me" is) are left out on purpose.
  std::string Digest(Replica& r) {
    std::ostringstream out;
    for (const auto& conv : conversations_) {
      auto c = r.store->GetConversation(conv);
      if (!c.ok()) {
        out << conv << ": absent\n";
        continue;
      }
      out << conv << " count=" << c->message_count << " markers=";
      for (const auto& [u, k] : c->read_markers) out << u << "@" << k.ToString() << ",";
      out << "\n";
      auto page = r.store->Page({.conversation_id = conv, .limit = 10000});
      for (const auto& m : *page) {
        out << "  " << m.order.ToString() << " " << m.id << " " << m.sender << " [" << m.body
            << "] " << m.content_type << (m.deleted ? " deleted" : "")
            << " edited=" << m.edited_at.ToString();
        for (const auto& re : m.reactions) out << " " << re.user << ":" << re.reaction;
        out << "\n";
      }
    }
    return out.str();
  }

  std::string Check() {
    const std::string reference = Digest(replicas_[1]);
    for (size_t i = 0; i < replicas_.size(); ++i) {
      std::string d = Digest(replicas_[i]);
      if (d != reference) {
        return "replica " + std::to_string(i) + " diverged:\n--- replica 1\n" + reference +
               "--- replica " + std::to_string(i) + "\n" + d;
      }
      auto outbox = replicas_[i].store->Outbox(0);
      if (!outbox->empty()) return "replica " + std::to_string(i) + " still has an outbox";
    }
    // Every acknowledged send exists exactly once on the server and on every replica.
    std::map<std::string, int> on_server;
    for (const auto& [conv, log] : world_.server.logs()) {
      for (const auto& op : log) {
        if (op.kind == engine::OpKind::kSend) on_server[op.message_id]++;
      }
    }
    for (const auto& r : replicas_) {
      for (const auto& id : r.acknowledged) {
        if (on_server[id] != 1) {
          return "message " + id + " is on the server " + std::to_string(on_server[id]) + " times";
        }
        for (const auto& other : replicas_) {
          if (!other.store->Get(id).ok()) return "message " + id + " missing on " + other.user;
        }
      }
    }
    // The skewed replica did not drag the others' clocks beyond the drift bound.
    for (size_t i = 1; i < replicas_.size(); ++i) {
      auto probe = replicas_[i].store->Send({.conversation_id = "probe", .body = "p"});
      if (!probe.ok()) return "probe: " + probe.status().ToString();
      if (probe->order.millis() > world_.now_ms + engine::kDefaultMaxDriftMs) {
        return "replica " + std::to_string(i) + " clock dragged to " + probe->order.ToString();
      }
    }
    return "";
  }

  uint64_t seed_;
  SimWorld world_;
  testing::TempDir dir_;
  std::vector<std::string> conversations_;
  std::vector<Replica> replicas_;
};

TEST(Simulation, ReplicasConvergeWithNothingLostOrDoubled) {
  uint64_t seeds = std::getenv("TIDINGS_SANITIZED") ? 200 : 2000;
  if (const char* s = std::getenv("TIDINGS_SIM_SEEDS")) seeds = std::strtoull(s, nullptr, 10);
  uint64_t first = 1, shard = 0, shards = 1;
  if (const char* s = std::getenv("TIDINGS_SIM_SHARD")) {
    std::sscanf(s, "%lu/%lu", &shard, &shards);
  }
  if (const char* s = std::getenv("TIDINGS_SIM_SEED")) {
    first = std::strtoull(s, nullptr, 10);
    seeds = 1;
  }
  auto start = std::chrono::steady_clock::now();
  uint64_t ran = 0;
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    if (shards > 1 && seed % shards != shard) continue;
    std::string failure = Simulation(seed).Run();
    ++ran;
    ASSERT_EQ(failure, "") << "simulation seed " << seed
                           << " failed; replay with TIDINGS_SIM_SEED=" << seed;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("simulation: %lu seeds passed in %.1f s\n", ran, secs);
}

}  // namespace
}  // namespace tidings::sim
