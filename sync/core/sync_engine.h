// SyncEngine: the production scheduler around a Reconciler. One thread per
// engine pushes right after a local write (it subscribes to the store's
// outbox changes), polls active conversations every 2 s and idle ones less
// often (backing off to 60 s), and stops promptly on Stop(): the request in
// flight finishes or times out (the HTTP client has timeouts), nothing is
// lost because the outbox and cursors are durable.
//
// Events for new/changed messages and pending -> sent/failed transitions are
// the store's own change notifications (engine::Store::Subscribe).
//
// Thread safety: Start/Stop/Poke/Snapshot may be called from any thread.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "sync/core/reconciler.h"

namespace tidings::sync {

class SyncEngine {
 public:
  // The store and backend must outlive the engine.
  SyncEngine(engine::Store* store, Backend* backend, SyncConfig config = {});
  ~SyncEngine();
  SyncEngine(const SyncEngine&) = delete;
  SyncEngine& operator=(const SyncEngine&) = delete;

  // Starts the sync thread. FailedPrecondition if already running.
  Status Start();
  // Stops and joins the thread. Idempotent.
  void Stop();
  // One full round (push then pull every conversation) on the caller's
  // thread. FailedPrecondition while the thread runs.
  Status SyncOnce();
  // Asks the thread to push now (e.g. another process wrote to the store).
  void Poke();

  std::vector<ConversationStatus> Snapshot();
  // The last auth error (sync stops until Start() again), or OK.
  Status last_error();

 private:
  void Run();

  engine::Store* store_;
  Backend* backend_;
  SyncConfig config_;
  std::unique_ptr<Reconciler> reconciler_;
  uint64_t subscription_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = false;                      // REQUIRES: mu_
  bool stop_ = false;                         // REQUIRES: mu_
  bool push_now_ = false;                     // REQUIRES: mu_
  Status last_error_;                         // REQUIRES: mu_
  std::vector<ConversationStatus> snapshot_;  // REQUIRES: mu_
  std::thread thread_;
};

}  // namespace tidings::sync
