// The hybrid logical clock (engine/hlc.cc).
#include "engine/hlc.h"

#include <gtest/gtest.h>

#include "store_test_util.h"

namespace tidings::engine {
namespace {

TEST(Hlc, DriftBoundRefusesRemoteTimesTooFarAhead) {
  uint64_t wall = 1'000'000;
  HybridClock clock([&] { return wall; }, 5000);
  EXPECT_TRUE(clock.Observe((wall + 4000) << 16));
  EXPECT_GE(clock.Tick(), (wall + 4000) << 16);
  EXPECT_FALSE(clock.Observe((wall + 3'600'000) << 16));  // an hour ahead: not adopted
  EXPECT_LT(clock.Tick(), (wall + 5001) << 16);
  wall = 10;  // the wall clock goes backwards: the hlc does not
  uint64_t a = clock.Tick(), b = clock.Tick();
  EXPECT_LT(a, b);
}

}  // namespace
}  // namespace tidings::engine
