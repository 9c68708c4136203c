// The two clocks, in milliseconds. Pick by what the number is for:
//   WallMs       Unix time (system_clock): timestamps that leave the process
//                or are compared with another machine's (HLC, SigV4, server
//                time, persisted deadlines). It can jump back or forward.
//   MonotonicMs  time since an arbitrary start (steady_clock): durations and
//                deadlines inside one process. Never jumps, means nothing
//                outside the process.
// Code that must be testable takes a clock as a parameter (Reconciler::Clock,
// StoreOptions::wall_clock_ms) and uses these only as the default.
#pragma once

#include <chrono>
#include <cstdint>

namespace tidings {

inline int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t MonotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace tidings
