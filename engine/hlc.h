// Hybrid logical clock: 48-bit Unix milliseconds << 16 | 16-bit counter.
// Local events tick it; remote events advance it to max(local, remote),
// except that a remote time more than `max_drift_ms` ahead of the wall clock
// is not adopted, so one device with a wrong clock cannot drag the others into
// the future.
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>

namespace tidings::engine {

class HybridClock {
 public:
  HybridClock(std::function<uint64_t()> wall_ms, uint64_t max_drift_ms)
      : wall_ms_(std::move(wall_ms)), max_drift_ms_(max_drift_ms) {}

  // A new timestamp, larger than every one returned or observed before.
  uint64_t Tick();
  // Advances past `remote` unless it is beyond wall clock + drift. Returns
  // true if adopted.
  bool Observe(uint64_t remote);
  // Restores the persisted high-water mark at open: never go back.
  void Restore(uint64_t high_water);
  uint64_t Current() const;
  uint64_t max_drift_ms() const { return max_drift_ms_; }
  uint64_t WallMs() const { return wall_ms_(); }

 private:
  std::function<uint64_t()> wall_ms_;
  const uint64_t max_drift_ms_;
  mutable std::mutex mu_;
  uint64_t last_ = 0;  // REQUIRES: mu_ held
};

}  // namespace tidings::engine
