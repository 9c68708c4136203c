// TaskThread: one thread that runs posted tasks one at a time, in the order
// they were posted. AttachmentSync keeps two (uploads, automatic fetches) so
// that transfers never run inside a sync round.
//
// Thread safety: any thread. A task must not call Drain() or destroy its
// TaskThread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace tidings::sync {

class TaskThread {
 public:
  TaskThread() = default;
  // Drops the queued tasks, waits for the running one and joins.
  ~TaskThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
      queue_.clear();
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  TaskThread(const TaskThread&) = delete;
  TaskThread& operator=(const TaskThread&) = delete;

  // Queues `task`; the thread starts with the first. Dropped while closed.
  void Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      queue_.push_back(std::move(task));
      if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    }
    cv_.notify_all();
  }

  // Drops the queued tasks, closes (Post drops tasks until Reopen) and
  // returns once none is running.
  void Drain() {
    std::unique_lock<std::mutex> lock(mu_);
    closed_ = true;
    queue_.clear();
    cv_.wait(lock, [&] { return !busy_; });
  }
  void Reopen() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = false;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return shutdown_ || !queue_.empty(); });
      if (shutdown_) return;
      std::function<void()> task = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      task();
      lock.lock();
      busy_ = false;
      cv_.notify_all();  // a Drain waiting for it
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;               // posted, done, shutting down
  std::deque<std::function<void()>> queue_;  // REQUIRES: mu_
  bool busy_ = false;                        // a task is running; REQUIRES: mu_
  bool closed_ = false;                      // Drain()ed, not reopened; REQUIRES: mu_
  bool shutdown_ = false;                    // REQUIRES: mu_
  std::thread thread_;                       // REQUIRES: mu_
};

}  // namespace tidings::sync
