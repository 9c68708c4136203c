// What the sync benchmarks share: the store key, made-up remote messages,
// RSS, and a backend that makes a conversation up page by page.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "../engine/bench_util.h"
#include "engine/store.h"
#include "sync/backend.h"

namespace bench::sync {

using tidings::engine::Operation;
using tidings::engine::OpKind;

inline constexpr uint64_t kT0 = 1'700'000'000'000;

inline tidings::crypto::KeySource Key() {
  uint8_t k[32] = {5};
  return tidings::crypto::KeySource::Raw(tidings::crypto::SecretKey::FromBytes(k).value());
}

// Message ids: opaque by default ("remote-" + i, like another Chime client's
// MessageId), or with TIDINGS_BENCH_IDS=uuid7 as Tidings makes them (UUIDv7,
// whose by-id keys the store prefixes with their time).
inline bool Uuid7Ids() {
  static const bool on = [] {
    const char* v = std::getenv("TIDINGS_BENCH_IDS");
    return v != nullptr && std::string(v) == "uuid7";
  }();
  return on;
}

inline std::string RemoteId(uint64_t i) {
  if (!Uuid7Ids()) return "remote-" + std::to_string(i);
  // xxxxxxxx-xxxx-7xxx-8xxx-xxxxxxxxxxxx: the first 12 hex digits are the
  // milliseconds of the message's order key (kT0 + i); the rest make it unique.
  const unsigned long long ms = kT0 + i, n = i;
  char id[64];
  std::snprintf(id, sizeof id, "%08llx-%04llx-7%03llx-8%03llx-%012llx", ms >> 16, ms & 0xffff,
                n & 0xfff, (n >> 12) & 0xfff, n & 0xffffffffffffULL);
  return id;
}

inline Operation Remote(const std::string& conv, uint64_t i) {
  Operation op;
  op.kind = OpKind::kSend;
  op.op_id = op.message_id = RemoteId(i);
  op.conversation_id = conv;
  op.author = "peer";
  op.at = {(kT0 + i) << 16, 77};
  op.body = bench::Body(i);
  op.content_type = "text/plain";
  op.server_time_ms = kT0 + i;
  return op;
}

inline double RssMB() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return static_cast<double>(resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE))) / 1048576.0;
}

// A backend that makes up an endless conversation: page i holds messages
// [i*P, (i+1)*P) after `base` (ids "remote-" + base + i); nothing is kept in memory.
class GeneratorBackend final : public tidings::sync::Backend {
 public:
  explicit GeneratorBackend(uint64_t base) : base_(base) {}
  std::string_view name() const override { return "gen"; }
  size_t max_batch() const override { return 100; }
  tidings::Result<std::string> EnsureConversation(const tidings::engine::Conversation&) override {
    return std::string();
  }
  tidings::Result<std::vector<tidings::sync::PushAck>> Push(const std::string&,
                                                            std::span<const Operation>) override {
    return tidings::Unimplemented("read-only");
  }
  tidings::Result<tidings::sync::PullPage> Pull(const std::string& conv, std::string_view cursor,
                                                size_t limit) override {
    const uint64_t from = cursor.empty() ? 0 : std::stoull(std::string(cursor));
    const uint64_t to = std::min(available, from + limit);
    tidings::sync::PullPage page;
    for (uint64_t i = from; i < to; ++i) page.ops.push_back(Remote(conv, base_ + i));
    page.next_cursor = std::to_string(to);
    page.has_more = to < available;
    return page;
  }
  tidings::Result<std::vector<std::string>> ListConversations() override {
    return std::vector<std::string>{};
  }
  // Newest first: positions are indexes, as the cursors.
  tidings::Result<tidings::sync::HistoryPage> PullHistory(const std::string& conv,
                                                          std::string_view before,
                                                          size_t limit) override {
    tidings::sync::HistoryPage page;
    uint64_t to = available;
    if (before.empty()) {
      page.forward_cursor = std::to_string(available);
    } else {
      to = std::stoull(std::string(before));
    }
    const uint64_t from = to > limit ? to - limit : 0;
    for (uint64_t i = from; i < to; ++i) page.ops.push_back(Remote(conv, base_ + i));
    if (from > 0) page.before = std::to_string(from);
    return page;
  }
  uint64_t available = 0;  // messages the server holds

 private:
  uint64_t base_;
};

}  // namespace bench::sync
