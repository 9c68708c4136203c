// Gate: holds the threads that Pass() it until the test opens it, like a
// slow network. Hooked into in-process fakes (an object store's requests, a
// backend's older pages).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

namespace tidings::testing {

class Gate {
 public:
  ~Gate() { Open(); }  // a failed test never leaves a thread waiting

  // Waits here until Open().
  void Pass() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  std::function<void()> Hook() {
    return [this] { Pass(); };
  }
  // Whether a thread reached the gate within `limit`.
  bool AwaitSomeoneWaiting(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return waiting_ > 0; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

}  // namespace tidings::testing
