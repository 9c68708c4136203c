#include "engine/hlc.h"

#include <algorithm>

namespace tidings::engine {

uint64_t HybridClock::Tick() {
  const uint64_t wall = wall_ms_() << 16;
  std::lock_guard<std::mutex> lock(mu_);
  last_ = std::max(last_ + 1, wall);
  return last_;
}

bool HybridClock::Observe(uint64_t remote) {
  const uint64_t limit = (wall_ms_() + max_drift_ms_) << 16;
  if (remote > limit) return false;
  std::lock_guard<std::mutex> lock(mu_);
  last_ = std::max(last_, remote);
  return true;
}

void HybridClock::Restore(uint64_t high_water) {
  std::lock_guard<std::mutex> lock(mu_);
  last_ = std::max(last_, high_water);
}

uint64_t HybridClock::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_;
}

}  // namespace tidings::engine
