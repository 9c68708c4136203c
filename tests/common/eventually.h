// Eventually: polls a condition until it holds or a limit passes, for tests
// that wait on another thread (a sync engine's round, an upload, a push
// channel) without a hook to wait on.
#pragma once

#include <chrono>
#include <thread>

namespace tidings::testing {

// Whether `cond` held within `limit`, asked every `poll`.
template <typename F>
bool Eventually(F cond, std::chrono::milliseconds limit = std::chrono::seconds(5),
                std::chrono::milliseconds poll = std::chrono::milliseconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(poll);
  }
  return cond();
}

}  // namespace tidings::testing
