// Reconciler: decides what to push and what to pull for one backend, and
// records the outcome in the store. It owns no thread, no socket and no clock:
// a scheduler (SyncEngine) drives it in production, the seeded simulator in
// tests, through the same calls. All waiting is expressed as "next attempt at
// time T", never as sleeping.
//
// Thread safety: one thread at a time per Reconciler.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "engine/store.h"
#include "sync/backend.h"

namespace tidings::sync {

struct SyncConfig {
  size_t pull_page_size = 100;           // operations per pull request
  size_t max_pull_pages_per_round = 20;  // bounds one round's memory and time
  int64_t base_backoff_ms = 500;         // first retry waits up to this (full jitter)
  int64_t max_backoff_ms = 60'000;       // cap of the exponential backoff
  // Retry budget (AWS standard-mode style): a retry costs kRetryCost tokens, a
  // success refunds one; with the bucket empty, failures wait the maximum
  // backoff, so a dead network does not spin.
  int retry_budget = 500;
  int64_t active_poll_ms = 2'000;         // poll interval of an active conversation
  int64_t idle_poll_ms = 60'000;          // ... backing off to this when idle
  int64_t active_window_ms = 5 * 60'000;  // activity this recent means "active"
};

// What a round found out; persisted so `tidings status` can show it.
struct ConversationStatus {
  std::string conversation_id;
  std::string cursor;
  uint64_t outbox_depth = 0;
  int64_t last_success_ms = 0;
  int64_t last_activity_ms = 0;  // last time something was pushed or pulled
  std::string last_error;        // empty when the last round succeeded
  int64_t next_attempt_ms = 0;   // no push/pull before this (backoff)
  uint32_t consecutive_failures = 0;
  bool stopped = false;  // permission lost: no more polling
};

class Reconciler {
 public:
  using Clock = std::function<int64_t()>;    // Unix ms
  using Random = std::function<uint64_t()>;  // uniform 64-bit

  Reconciler(engine::Store* store, Backend* backend, SyncConfig config, Clock clock, Random random);

  // Pushes due outbox entries of the conversation, in order, batched.
  // Returns Unauthenticated (stop everything and surface it) or OK; every
  // other failure is recorded in the outbox and the status.
  tidings::Status Push(const std::string& conversation_id);
  // Pulls pages after the durable cursor and merges each page with its
  // cursor atomically. Bounded per round. Same error contract as Push.
  tidings::Status Pull(const std::string& conversation_id);
  // Push then pull every conversation known locally or remotely.
  tidings::Status SyncAll();

  // Conversations this reconciler knows (local store + backend listing).
  Result<std::vector<std::string>> Conversations();
  // When this conversation should next be polled, by activity.
  int64_t NextPollMs(const std::string& conversation_id);

  ConversationStatus GetStatus(const std::string& conversation_id);

 private:
  int64_t Backoff(uint32_t failures, std::optional<int64_t> retry_after);
  void RecordFailure(ConversationStatus& st, const tidings::Status& error,
                     std::optional<int64_t> retry_after);
  tidings::Status Save(const ConversationStatus& st);
  ConversationStatus& Load(const std::string& conversation_id);
  tidings::Status ParkConversation(ConversationStatus& st, const tidings::Status& error);

  engine::Store* store_;
  Backend* backend_;
  SyncConfig config_;
  Clock clock_;
  Random random_;
  int retry_tokens_;
  std::map<std::string, ConversationStatus> status_;  // cache of persisted status
};

// Persisted status, readable from any process that can open the store
// (read-only is enough): what `tidings status` prints.
Result<std::vector<ConversationStatus>> ReadSyncStatus(engine::Store& store,
                                                       std::string_view backend);

}  // namespace tidings::sync
