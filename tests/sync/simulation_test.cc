// Deterministic simulation: 3-5 replicas (real encrypted stores on disk) work
// offline and partitioned, crash and restart, one with a clock hours or a day
// off, over a faulty network; after healing they must converge byte for byte
// with nothing lost and nothing doubled. Some replicas join late: in
// plaintext runs (where others are also wiped and start again) they read
// each conversation newest-first and fill the history behind it
// (docs/sync.md, "Newest first"); in sealed runs they read each log before
// they hold a key and again after (docs/sync.md, "A new device's first
// read"), crashing between pages like any other pull.
//
//   TIDINGS_SIM_SEEDS=N   number of seeds (default 600 sealed and 300 plaintext;
//                         50 and 25 under sanitizers; 10x with TIDINGS_SOAK=1)
//   TIDINGS_SIM_SEED=S    replay exactly one seed
//   TIDINGS_SIM_FIRST=S   start at seed S (soak runs beyond the regular ones)
//   TIDINGS_SIM_SHARD=i/n run the i-th of n interleaved slices of the seeds
//                         (a slice with no seed fails; with TIDINGS_SIM_SEED,
//                         the other shards skip)
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "../engine/test_util.h"
#include "sim_adversary.h"
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
  // The random bits of the replica's ids (and its replica id), seeded, kept
  // across crashes: a seed replays a run exactly.
  std::shared_ptr<std::mt19937_64> id_rng;
};

class Simulation {
 public:
  // sealed: the conversations are end-to-end encrypted (every replica's
  // users are members, plus a "ghost" user with no device who joins and
  // leaves), titles change (each change is a new epoch), and an adversary
  // with valid credentials writes garbage and replays into the logs. Even
  // seeds run against a server that authenticates writers (Chime), odd ones
  // against one that does not (DynamoDB: the device directory vouches).
  // retention: every replica keeps the last kKeepLast messages of each
  // conversation and purges before one sync in four (as the sync engine does
  // now and then); no send is refused for good, so every device counts the
  // same messages.
  Simulation(uint64_t seed, bool sealed = false, bool retention = false)
      : seed_(seed), sealed_(sealed), retention_(retention), world_(seed) {
    world_.authenticates_senders = sealed && seed % 2 == 0;
  }

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
      r.id_rng = std::make_shared<std::mt19937_64>(seed_ * 1000 + static_cast<uint64_t>(i));
      replicas_.push_back(std::move(r));
    }
    // One replica's clock is off by hours or a day, either way.
    const int64_t skews[] = {int64_t(kDay), -3 * 3'600'000, 5 * 3'600'000, -int64_t(kDay)};
    replicas_[0].skew_ms = skews[rng() % 4];
    for (int i = 0; i < n; ++i) {
      if (auto err = Open(i); !err.empty()) return err;
    }
    if (sealed_) {
      for (int i = 0; i < n; ++i) {
        if (auto err = Members(i, "t0", true); !err.empty()) return err;
      }
    }
    world_.faults = {.drop = 5,
                     .server_error = 5,
                     .throttle = 5,
                     .lose_response = 8,
                     .delay = 4,
                     .duplicate = 5,
                     .crash = 2,
                     .auth = 1};

    const int steps = 50 + static_cast<int>(rng() % 50);
    // Half the runs have a replica that sits out the first half: it joins
    // conversations with history. Plaintext: newest first, then the gap.
    // Sealed: it can open nothing until a member re-shares it the keys, so
    // it keeps nothing it reads before (beyond a pending bound of 10 the
    // old way lost the oldest) and reads the log again (docs/sync.md, "A
    // new device's first read").
    const int late = rng() % 2 == 0 ? n - 1 : -1;
    for (int step = 0; step < steps; ++step) {
      world_.now_ms += rng() % 3000;
      world_.DeliverDelayed(false);
      if (rng() % 10 == 0) {  // partitions come and go
        int r = static_cast<int>(rng() % replicas_.size());
        if (!world_.partitioned.erase(r)) world_.partitioned.insert(r);
      }
      const int r = static_cast<int>(rng() % replicas_.size());
      const uint64_t action = rng() % 100;
      if (r == late && step < steps / 2) continue;
      if (!sealed_ && action == 99) {
        // A device wiped and set up again: its store is gone, so it reads
        // every conversation newest-first. Only with nothing left to push
        // (what it never sent would be lost with it, as on a real device).
        if (auto err = Wipe(r); !err.empty()) return err;
      } else if (sealed_ && action < 4) {
        if (auto err = SealedChange(r, action); !err.empty()) return err;
      } else if (action < 45) {
        if (auto err = LocalOp(r); !err.empty()) return err;
      } else if (action < 97) {
        const std::string& c = conversations_[rng() % conversations_.size()];
        if (auto err = SyncConversation(r, c); !err.empty()) return err;
      } else {
        // Crash between two steps (mid-sync crashes come from faults.crash).
        if (auto err = Crash(r); !err.empty()) return err;
      }
    }

    // Heal, then sync until quiet.
    world_.partitioned.clear();
    world_.faults = {};
    world_.DeliverDelayed(true);
    // End-to-end needs more rounds: a device announces, a member re-shares
    // the keys, then the device reads.
    for (int round = 0; round < (sealed_ ? 20 : 12); ++round) {
      world_.now_ms += 120'000;  // past every backoff
      for (size_t i = 0; i < replicas_.size(); ++i) {
        auto all = replicas_[i].reconciler->Conversations();
        if (!all.ok()) return "conversations: " + all.status().ToString();
        for (const auto& c : *all) {
          // As SyncAll: bounded rounds while one says more is ready (pages,
          // or older history to fill).
          for (int more = 0; more < 50; ++more) {
            if (auto err = SyncConversation(static_cast<int>(i), c); !err.empty()) return err;
            if (!replicas_[i].reconciler->HasMore(c)) break;
          }
        }
        // The user gives up on refused messages (`tidings outbox discard`).
        auto outbox = replicas_[i].store->Outbox(0);
        if (!outbox.ok()) return "outbox: " + outbox.status().ToString();
        for (const auto& e : *outbox) {
          if (!e.failed) continue;
          if (auto s = replicas_[i].reconciler->DiscardFailed(e.seq); !s.ok()) {
            return "discard: " + s.ToString();
          }
        }
      }
      if (round >= 1 && Quiet()) break;
    }
    if (retention_) {
      for (size_t i = 0; i < replicas_.size(); ++i) {
        auto purged = replicas_[i].store->PurgeExpired();
        if (!purged.ok()) return "purge: " + purged.status().ToString();
      }
      return CheckRetention();
    }
    return Check();
  }

  uint64_t requests() const { return world_.requests; }
  uint64_t previews() const { return world_.frame_history_pulls; }
  int crashes() const { return crashes_; }
  int wipes() const { return wipes_; }
  // Pulls that left a conversation's older history still to fill.
  int filling() const { return filling_; }
  // Every replica's visible state (ids, order keys, bodies), for replays.
  std::string FinalState() {
    std::string all;
    for (auto& r : replicas_) all += Digest(r);
    return all;
  }

 private:
  // Push then pull one conversation, as the scheduler does. A replica whose
  // process died mid-sync is reopened from disk; an expired credential is
  // "refreshed" (the app restarts sync); anything else is a failure.
  std::string SyncConversation(int r, const std::string& conv) {
    if (retention_ && world_.rng() % 4 == 0) {  // now and then, as the sync engine does
      auto purged = replicas_[static_cast<size_t>(r)].store->PurgeExpired();
      if (!purged.ok()) return "purge: " + purged.status().ToString();
    }
    sync::Reconciler& rec = *replicas_[static_cast<size_t>(r)].reconciler;
    Status s = rec.Push(conv);
    if (s.ok()) s = rec.Pull(conv);
    if (s.ok() && rec.GetStatus(conv).filling_history) ++filling_;
    if (s.ok() || s.code() == Code::kUnauthenticated) return "";
    if (s.code() == Code::kCancelled && world_.crashing.count(r)) return Crash(r);
    return "sync " + conv + ": " + s.ToString();
  }

  std::string Wipe(int r) {
    Replica& replica = replicas_[static_cast<size_t>(r)];
    auto outbox = replica.store->Outbox(0);
    if (!outbox.ok()) return "outbox: " + outbox.status().ToString();
    if (!outbox->empty()) return "";
    ++wipes_;
    replica.reconciler.reset();
    replica.store.reset();
    std::error_code ec;
    std::filesystem::remove_all(replica.path, ec);
    if (ec) return "wipe: " + ec.message();
    return Open(r);
  }

  std::string Crash(int r) {
    ++crashes_;
    world_.crashing.erase(r);
    replicas_[static_cast<size_t>(r)].reconciler.reset();
    replicas_[static_cast<size_t>(r)].store.reset();
    return Open(r);
  }

  std::string Open(int i) {
    Replica& r = replicas_[static_cast<size_t>(i)];
    engine::StoreOptions o = testing::CreateOptions(r.user);
    SimWorld* w = &world_;
    const int64_t skew = r.skew_ms;
    o.wall_clock_ms = [w, skew] {
      return static_cast<uint64_t>(static_cast<int64_t>(w->now_ms) + skew);
    };
    o.id_random = [rng = r.id_rng](uint8_t* out, size_t n) {
      for (size_t k = 0; k < n; ++k) out[k] = static_cast<uint8_t>((*rng)() >> 56);
    };
    // The search index's tail folds into blocks at different counts on
    // different replicas: their search results must agree all the same.
    constexpr size_t kFoldEvery[] = {1, 3, 16, 2048};
    o.search_fold_every = kFoldEvery[(seed_ + static_cast<uint64_t>(i)) % 4];
    auto store = engine::Store::Open(r.path, testing::TestKey(), o);
    if (!store.ok()) return "open: " + store.status().ToString();
    r.store = std::move(*store);
    if (retention_) {
      Status set = r.store->SetRetention("", {.keep_last = kKeepLast});
      if (!set.ok()) return "retention: " + set.ToString();
    }
    r.backend = std::make_unique<SimBackend>(&world_, i, r.user);
    sync::SyncConfig config;
    config.pull_page_size = 7;  // small pages: exercise paging and cursors
    // One older page per pull: a newest-first reader's gap stays open
    // across several syncs, crashes and wipes.
    config.max_history_pages_per_round = 1;
    // Plaintext conversations: the checks read operations on the server.
    config.end_to_end_default = sealed_;
    config.max_pending_frames = 10;
    r.reconciler = std::make_unique<sync::Reconciler>(
        &r.store->sync_log(), r.backend.get(), config,
        [w, skew] { return static_cast<int64_t>(w->now_ms) + skew; }, [w] { return w->rng(); });
    r.reconciler->set_cancelled([w, i] { return w->crashing.count(i) > 0; });
    return "";
  }

  // Every user of the run (and the ghost, when `ghost`) is a member of every
  // conversation, under `title`, on replica i.
  std::string Members(int i, const std::string& title, bool ghost) {
    std::set<std::string> users;
    for (const auto& r : replicas_) users.insert(r.user);
    if (ghost) users.insert("ghost");
    std::vector<std::string> members(users.begin(), users.end());
    for (const auto& conv : conversations_) {
      auto c = replicas_[static_cast<size_t>(i)].store->PutConversation(conv, title, members);
      if (!c.ok()) return "members: " + c.status().ToString();
    }
    return "";
  }

  // A membership or title change (a new epoch), or the adversary at work.
  std::string SealedChange(int r, uint64_t action) {
    std::mt19937_64& rng = world_.rng;
    if (action < 2) {
      return Members(r, "t" + std::to_string(rng() % 1000), rng() % 2 == 0);
    }
    // The adversary: a user with valid credentials outside the conversations.
    const auto& logs = world_.server.sealed_logs();
    if (logs.empty()) return "";
    auto it = logs.begin();
    std::advance(it, static_cast<long>(rng() % logs.size()));
    SimAdversary mallory(&world_, "mallory");
    if (world_.authenticates_senders) {
      // Chime lets only members write: mallory can only make her own logs.
      (void)mallory.EnsureLog(it->first, {"mallory"});
      return "";
    }
    if (rng() % 2 == 0 || it->second.entries.empty()) {
      (void)mallory.AppendGarbage(it->first);
      return "";
    }
    // A replay: a frame of another log (or this one) under a new id.
    auto other = logs.begin();
    std::advance(other, static_cast<long>(rng() % logs.size()));
    if (other->second.entries.empty()) return "";
    sync::Frame copy = other->second.entries[rng() % other->second.entries.size()].frame;
    copy.id = "x" + std::to_string(rng() % 100000);
    (void)mallory.Append(it->first, copy);
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
      // One send in 20 is refused by the server for good ('!').
      auto m = r.store->Send({.conversation_id = conv,
                              .body = "m" + std::to_string(rng() % 100000) + " from " + r.user +
                                      (rng() % 20 == 0 && !retention_ ? "!" : "")});
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

  // The counts the store keeps in its conversation records (message and
  // unread counts, for this replica's user) against the messages: "" if
  // they agree.
  std::string Counts(Replica& r) {
    for (const auto& conv : conversations_) {
      auto c = r.store->GetConversation(conv);
      if (!c.ok()) continue;
      engine::OrderKey marker;
      if (auto m = c->read_markers.find(r.user); m != c->read_markers.end()) marker = m->second;
      auto page = r.store->Page({.conversation_id = conv, .limit = 10000});
      if (!page.ok()) return "page: " + page.status().ToString();
      uint64_t visible = 0, unread = 0;
      for (const auto& m : *page) {
        visible += !m.deleted;
        unread += !m.deleted && m.sender != r.user && marker < m.order;
      }
      if (c->message_count != visible || c->unread_count != unread) {
        return conv + " counts " + std::to_string(c->message_count) + " messages, " +
               std::to_string(c->unread_count) + " unread; its messages make " +
               std::to_string(visible) + " and " + std::to_string(unread);
      }
    }
    return "";
  }

  // The visible state: messages in order with ids, senders, bodies, content
  // types, edit times, tombstones and reactions, and every user's read
  // marker. Left out on purpose, because they legitimately differ per device:
  // delivery state and remote ids (only the origin has "sent" via an ack),
  // unread counts (they depend on who "me" is), titles and members
  // (PutConversation is local-only), and messages the server refused for good
  // (state failed: they never left their device and are shown as failed
  // there until retried or discarded). Conversation existence is not
  // compared either: a device whose only message was refused has the
  // conversation, with nothing visible in it.
  std::string Digest(Replica& r) {
    std::ostringstream out;
    for (const auto& conv : conversations_) {
      auto c = r.store->GetConversation(conv);
      out << conv << " markers=";
      if (c.ok()) {
        for (const auto& [u, k] : c->read_markers) out << u << "@" << k.ToString() << ",";
      }
      out << "\n";
      auto page = r.store->Page({.conversation_id = conv, .limit = 10000});
      if (!page.ok()) {
        out << "  page: " << page.status().ToString() << "\n";
        continue;
      }
      for (const auto& m : *page) {
        if (m.state == engine::MessageState::kFailed) continue;
        out << "  " << m.order.ToString() << " " << m.id << " " << m.sender << " [" << m.body
            << "] " << m.content_type << (m.deleted ? " deleted" : "")
            << " edited=" << m.edited_at.ToString();
        for (const auto& re : m.reactions) out << " " << re.user << ":" << re.reaction;
        out << "\n";
      }
    }
    return out.str();
  }

  // What a few searches return on replica `r`: ids, scores, snippets and
  // marks, in order, for both orders. Replicas with the same messages must
  // agree exactly (the index and its statistics follow the messages only).
  std::string Searches(Replica& r) {
    std::ostringstream out;
    out.precision(17);  // scores must agree to the last bit
    for (const char* q : {"from", "user 1", "edited", "\"from user\"", "use*", "edit*", "user-0"}) {
      for (auto order : {engine::SearchOrder::kRelevance, engine::SearchOrder::kNewest}) {
        auto res = r.store->Search({.query = q, .order = order, .limit = 30});
        out << q << ": ";
        if (!res.ok()) {
          out << res.status().ToString() << "\n";
          continue;
        }
        out << res->total << "\n";
        for (const auto& h : res->hits) {
          out << "  " << h.message_id << " " << h.score << " [" << h.snippet << "]";
          for (auto [b, e] : h.marks) out << " " << b << "-" << e;
          out << "\n";
        }
      }
    }
    return out.str();
  }

  std::string Check() {
    const std::string reference = Digest(replicas_[1]);
    const std::string searched = Searches(replicas_[1]);
    for (size_t i = 0; i < replicas_.size(); ++i) {
      std::string d = Digest(replicas_[i]);
      if (d != reference) {
        std::string why;
        for (size_t k = 0; k < replicas_.size(); ++k) {
          for (const auto& conv : conversations_) {
            auto st = replicas_[k].reconciler->GetStatus(conv);
            why += "replica " + std::to_string(k) + " " + conv +
                   ": e2e=" + std::to_string(st.end_to_end) +
                   " pending=" + std::to_string(st.pending_frames) +
                   " rejected=" + std::to_string(st.rejected_frames) + " (" + st.last_rejection +
                   ") error=" + st.last_error + "\n";
          }
        }
        return why + "replica " + std::to_string(i) + " diverged:\n--- replica 1\n" + reference +
               "--- replica " + std::to_string(i) + "\n" + d;
      }
      auto outbox = replicas_[i].store->Outbox(0);
      if (!outbox->empty()) return "replica " + std::to_string(i) + " still has an outbox";
      for (const auto& conv : conversations_) {
        auto gap = replicas_[i].store->sync_log().GetGap("sim", conv);
        if (!gap.ok() || !gap->empty()) {
          return "replica " + std::to_string(i) + " still has history to fill in " + conv;
        }
      }
      if (std::string wrong = Counts(replicas_[i]); !wrong.empty()) {
        return "replica " + std::to_string(i) + ": " + wrong;
      }
      if (std::string found = Searches(replicas_[i]); found != searched) {
        return "replica " + std::to_string(i) + " searches differently:\n--- replica 1\n" +
               searched + "--- replica " + std::to_string(i) + "\n" + found;
      }
    }
    // Every acknowledged send exists exactly once on the server and on every
    // replica. Sealed: once per log as its frame "o.<id>" (the conversation's
    // two logs, when two devices made it apart, may both hold a retried one).
    std::map<std::string, int> on_server;
    for (const auto& [conv, log] : world_.server.logs()) {
      for (const auto& op : log) {
        if (op.kind == engine::OpKind::kSend) on_server[op.message_id]++;
      }
    }
    for (const auto& [id, log] : world_.server.sealed_logs()) {
      std::map<std::string, int> in_log;
      for (const auto& e : log.entries) {
        if (e.frame.id.rfind("o.", 0) == 0) in_log[e.frame.id.substr(2)]++;
      }
      for (const auto& [msg, n] : in_log) {
        if (n > 1)
          return "message " + msg + " is in sealed log " + id + " " + std::to_string(n) + " times";
        on_server[msg] = 1;
      }
    }
    std::vector<std::map<std::string, int>> on_replica(replicas_.size());
    for (size_t i = 0; i < replicas_.size(); ++i) {
      for (const auto& conv : conversations_) {
        auto page = replicas_[i].store->Page({.conversation_id = conv, .limit = 10000});
        if (!page.ok()) return "page: " + page.status().ToString();
        for (const auto& m : *page) on_replica[i][m.id]++;
      }
    }
    for (const auto& r : replicas_) {
      for (const auto& id : r.acknowledged) {
        auto mine = r.store->Get(id);
        if (!mine.ok()) return "message " + id + " lost on its own device";
        if (mine->state == engine::MessageState::kFailed) {
          // Refused for good: it must not have leaked anywhere.
          if (on_server[id] != 0) return "refused message " + id + " is on the server";
          for (size_t j = 0; j < replicas_.size(); ++j) {
            if (&replicas_[j] != &r && on_replica[j][id] != 0) {
              return "refused message " + id + " reached replica " + std::to_string(j);
            }
          }
          continue;
        }
        if (mine->state != engine::MessageState::kSent) {
          return "message " + id + " is still " + engine::MessageStateName(mine->state);
        }
        if (on_server[id] != 1) {
          return "message " + id + " is on the server " + std::to_string(on_server[id]) + " times";
        }
        for (size_t j = 0; j < replicas_.size(); ++j) {
          if (on_replica[j][id] != 1) {
            return "message " + id + " is on replica " + std::to_string(j) + " " +
                   std::to_string(on_replica[j][id]) + " times";
          }
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

  // Under retention: after a replay of the server's whole history, the
  // replicas agree (Quiet's digest), nothing is left beyond the policy, no
  // message is on a replica twice, and every store verifies clean (no
  // leftovers of a purge).
  std::string CheckRetention() {
    // A pull that replays the whole history after the purges (a reset
    // cursor, a new backend) brings nothing back: merged with no purge after.
    for (auto& r : replicas_) {
      for (const auto& [conv, log] : world_.server.logs()) {
        std::vector<engine::Operation> ops(log.begin(), log.end());
        Status s = r.store->sync_log().Merge("replay", conv, ops, "end");
        if (!s.ok()) return "replay: " + s.ToString();
      }
    }
    const std::string reference = Digest(replicas_[0]);
    for (size_t i = 0; i < replicas_.size(); ++i) {
      if (Digest(replicas_[i]) != reference) {
        return "replica " + std::to_string(i) + " diverged after purging:\n--- replica 0\n" +
               reference + "--- replica " + std::to_string(i) + "\n" + Digest(replicas_[i]);
      }
      for (const auto& conv : conversations_) {
        auto page = replicas_[i].store->Page({.conversation_id = conv, .limit = 10000});
        if (!page.ok()) return "page: " + page.status().ToString();
        if (page->size() > kKeepLast) {
          return "replica " + std::to_string(i) + " keeps " + std::to_string(page->size()) +
                 " messages of " + conv;
        }
        std::set<std::string> ids;
        for (const auto& m : *page) {
          if (!ids.insert(m.id).second) return "message " + m.id + " twice";
        }
      }
      if (std::string wrong = Counts(replicas_[i]); !wrong.empty()) {
        return "replica " + std::to_string(i) + " after purging: " + wrong;
      }
      auto report = replicas_[i].store->Verify(nullptr);
      if (!report.ok() || report->problems != 0) {
        return "replica " + std::to_string(i) + " does not verify after purging: " +
               (report.ok() ? report->details.front() : report.status().ToString());
      }
    }
    return "";
  }

  static constexpr uint64_t kKeepLast = 6;
  uint64_t seed_;
  bool sealed_ = false;
  bool retention_ = false;
  SimWorld world_;
  testing::TempDir dir_;
  std::vector<std::string> conversations_;
  std::vector<Replica> replicas_;
  int crashes_ = 0;
  int wipes_ = 0;
  int filling_ = 0;
};

// A seed replays a run exactly - the same ids, order keys and requests - so
// a failure's printed seed reproduces it. (Before the stores took their id
// bits from the seed, CI's seed 1316 failed once and passed on every replay.)
TEST(Simulation, ASeedReplaysExactly) {
  for (uint64_t seed : {7u, 1316u}) {
    Simulation a(seed), b(seed);
    ASSERT_EQ(a.Run(), "") << "seed " << seed;
    ASSERT_EQ(b.Run(), "") << "seed " << seed;
    EXPECT_EQ(a.requests(), b.requests()) << "seed " << seed;
    const std::string state = a.FinalState();
    EXPECT_EQ(state, b.FinalState()) << "seed " << seed;
    EXPECT_NE(state.find("m"), std::string::npos) << "the run wrote messages";
  }
}

void RunSeeds(bool sealed) {
  // End-to-end runs the most seeds: it is the newer and larger state space.
  // The defaults fit the CI budget (docs/TESTING.md, "CI time"); a soak run
  // covers ten times as many.
  const bool sanitized = std::getenv("TIDINGS_SANITIZED") != nullptr;
  uint64_t seeds = sealed ? (sanitized ? 50 : 600) : (sanitized ? 25 : 300);
  if (std::getenv("TIDINGS_SOAK") != nullptr) seeds *= 10;
  if (const char* s = std::getenv("TIDINGS_SIM_SEEDS")) seeds = std::strtoull(s, nullptr, 10);
  uint64_t first = 1, shard = 0, shards = 1;
  if (const char* s = std::getenv("TIDINGS_SIM_SHARD")) {
    ASSERT_TRUE(std::sscanf(s, "%lu/%lu", &shard, &shards) == 2 && shard < shards)
        << "TIDINGS_SIM_SHARD=" << s << ": expected i/n with i < n";
  }
  if (const char* s = std::getenv("TIDINGS_SIM_FIRST")) first = std::strtoull(s, nullptr, 10);
  if (const char* s = std::getenv("TIDINGS_SIM_SEED")) {
    first = std::strtoull(s, nullptr, 10);
    seeds = 1;
    // One seed is one shard's: the others say so, and CTest counts them as
    // skipped (SKIP_REGULAR_EXPRESSION), not as passed.
    if (first % shards != shard) {
      GTEST_SKIP() << "seed " << first << " is run by shard " << first % shards << "/" << shards;
    }
  }
  auto start = std::chrono::steady_clock::now();
  uint64_t ran = 0, requests = 0, crashes = 0, wipes = 0, filling = 0, previews = 0;
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    if (shards > 1 && seed % shards != shard) continue;
    Simulation sim(seed, sealed);
    std::string failure = sim.Run();
    ++ran;
    requests += sim.requests();
    crashes += static_cast<uint64_t>(sim.crashes());
    wipes += static_cast<uint64_t>(sim.wipes());
    filling += static_cast<uint64_t>(sim.filling());
    previews += sim.previews();
    ASSERT_EQ(failure, "") << "simulation seed " << seed
                           << " failed; replay with TIDINGS_SIM_SEED=" << seed
                           << (sealed ? " (end-to-end)" : "");
  }
  ASSERT_GT(ran, 0u) << "no seed ran: TIDINGS_SIM_FIRST=" << first << " TIDINGS_SIM_SEEDS=" << seeds
                     << " select none of shard " << shard << "/" << shards << "; run at least "
                     << shards << " seeds";
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "simulation%s: %lu seeds passed in %.1f s (%lu requests, %lu crashes, %lu wipes, %lu pulls "
      "left history to fill, %lu newest-first reads of a sealed log)\n",
      sealed ? " (end-to-end)" : "", ran, secs, requests, crashes, wipes, filling, previews);
  // The runs must exercise newest-first reading, or its checks prove nothing.
  if (!sealed && ran >= 20) {
    EXPECT_GT(wipes, 0u);
    EXPECT_GT(filling, 0u) << "no replica ever read a conversation newest-first with a gap";
  }
  if (sealed && ran >= 20) {
    EXPECT_GT(previews, 0u) << "no re-read of a sealed log showed its newest pages first";
  }
}

TEST(Simulation, ReplicasConvergeWithNothingLostOrDoubled) { RunSeeds(/*sealed=*/false); }

// The same with end-to-end encrypted conversations: epochs, membership and
// title changes, devices whose keys arrive after the messages they open,
// forged and garbage frames, over both kinds of server.
TEST(Simulation, SealedReplicasConvergeWithNothingLostOrDoubled) { RunSeeds(/*sealed=*/true); }

// Retention converges: replicas that keep the last N messages end with the
// same messages after they sync, whatever each purged on the way and
// whatever a pull replayed after a purge. TIDINGS_SIM_SEEDS sets the count
// (default 8, ~10 s; TIDINGS_SOAK=1: 500); TIDINGS_SIM_SEED replays one.
TEST(Simulation, RetentionReplicasConvergeToTheSameMessages) {
  uint64_t seeds = std::getenv("TIDINGS_SOAK") != nullptr ? 500 : 8, first = 1;
  if (const char* s = std::getenv("TIDINGS_SIM_SEEDS")) seeds = std::strtoull(s, nullptr, 10);
  if (const char* s = std::getenv("TIDINGS_SIM_SEED")) {
    first = std::strtoull(s, nullptr, 10);
    seeds = 1;
  }
  auto start = std::chrono::steady_clock::now();
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    Simulation sim(seed, /*sealed=*/false, /*retention=*/true);
    ASSERT_EQ(sim.Run(), "") << "retention simulation seed " << seed
                             << " failed; replay with TIDINGS_SIM_SEED=" << seed;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("retention simulation: %lu seeds passed in %.1f s\n", seeds, secs);
}

TEST(Simulation, ASealedSeedReplaysExactly) {
  for (uint64_t seed : {8u, 11u}) {
    Simulation a(seed, true), b(seed, true);
    ASSERT_EQ(a.Run(), "") << "seed " << seed;
    ASSERT_EQ(b.Run(), "") << "seed " << seed;
    EXPECT_EQ(a.FinalState(), b.FinalState()) << "seed " << seed;
  }
}

}  // namespace
}  // namespace tidings::sim
