// Retention: how long a store keeps messages, and what a purge did. The
// purge itself is engine/retention.cc; docs/engine.md ("Retention") has the
// rules and why a policy is local configuration.
#pragma once

#include <cstdint>
#include <string>

#include "engine/types.h"

namespace tidings::engine {

inline constexpr uint64_t kMillisPerDay = 24ull * 60 * 60 * 1000;
inline constexpr uint32_t kMaxKeepDays = 36500;

// What a store or a conversation keeps. Both limits may apply at once: a
// message goes as soon as either says so. All zero: keep everything.
struct RetentionPolicy {
  // Keep messages ordered (by their order key's time) within this many days
  // of now; 0: no time limit.
  uint32_t keep_days = 0;
  // Keep the newest N messages of each conversation; 0: no limit. A deleted
  // message's tombstone counts (records only ever grow, so every replica
  // computes the same horizon once it has the same records); a message
  // refused for good (failed) does not, as it never leaves its device, and
  // nor does a local send until a backend acknowledges it (its place can
  // still change), so an offline device keeps its unsent messages on top.
  uint64_t keep_last = 0;

  bool empty() const { return keep_days == 0 && keep_last == 0; }
  bool operator==(const RetentionPolicy&) const = default;
};

// One conversation's policy as configured (Store::RetentionPolicies).
struct ConversationRetention {
  std::string conversation_id;
  RetentionPolicy policy;
};

// What Store::PurgeExpired did.
struct PurgeReport {
  uint64_t messages_purged = 0;  // message records removed (tombstones too)
  uint64_t conversations = 0;    // conversations that lost messages
  uint64_t outbox_dropped = 0;   // outbox entries that referred to them
  uint64_t waiting_dropped = 0;  // parked remote operations at or below a horizon
  uint64_t remote_skipped = 0;   // remote operations merges skipped (store lifetime)
};

// The horizon `policy` sets at wall time `now_ms` by time alone: every order
// key at or below it is older than keep_days. Zero when keep_days is 0.
OrderKey TimeHorizon(const RetentionPolicy& policy, uint64_t now_ms);

}  // namespace tidings::engine
