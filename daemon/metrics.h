// The daemon's /metrics page: Prometheus text exposition of what the sync
// handle and the store report, plus the daemon's own counters. The names are
// documented in docs/daemon.md and are part of its interface.
//
// Thread safety: a pure function of its input.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tidings/tidings_sync.hpp"

namespace tidings::daemon {

struct MetricsInput {
  int64_t now_ms = 0;
  int64_t started_ms = 0;
  uint64_t outbox_pending = 0;  // store-wide
  uint64_t outbox_failed = 0;
  // Backends of the running handle (none while stopped), counters since the
  // daemon started (carried over reloads).
  std::vector<api::SyncBackend> backends;
  std::vector<api::SyncStatus> conversations;                               // every backend's
  std::map<std::pair<std::string, std::string>, uint64_t> socket_requests;  // (op, result)
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
};

std::string RenderMetrics(const MetricsInput& in);

}  // namespace tidings::daemon
