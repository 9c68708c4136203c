// The object behind a tidings_sync: one store, several backends, one
// SyncEngine per backend (the daemon's ["chime", "dynamodb"] fan-out, or one
// backend for an app). It adds to the engines what a long-running process
// needs from them together: start and stop in parallel with a grace period,
// restarting one backend, request counters per backend, one listener that
// reports each message event once, the limits of its backends recorded in
// the store (api/e2e_limits.h) and the key-change listener.
//
// Thread safety: every method may be called from any thread; mu_ serialises
// them (a SyncOnce round holds it), except LoadOlder's pages: they wait on
// the network, so they hold only engines_mu_, and status reads and pokes
// answer meanwhile. The listener runs on engine threads and never
// takes mu_, so Stop() may join them while holding it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "api/sync_counters.h"
#include "engine/store.h"
#include "sync/aws/credentials.h"
#include "sync/core/attachment_sync.h"
#include "sync/core/sync_engine.h"
#include "sync/s3/s3_client.h"
#include "tidings/tidings_sync.h"

namespace tidings::capi {

struct SyncOptions {
  sync::SyncConfig config;
  http::HttpOptions http;
  int64_t stop_grace_ms = 0;  // 0: wait for the request in flight
  bool require_every_backend = false;
  // The app's credentials callback (tidings_sync_options.credentials); null:
  // the default chain.
  std::shared_ptr<aws::CredentialsProvider> credentials;
};

class SyncHandle {
 public:
  // Makes a backend over the given transport (the handle wraps it to count).
  using BackendFactory =
      std::function<Result<std::unique_ptr<sync::Backend>>(std::unique_ptr<http::HttpClient>)>;

  struct BackendState {
    std::string name;
    bool running = false;
    Status stopped_by;
    uint64_t outbox_depth = 0;
    uint64_t requests = 0;
    uint64_t retries = 0;
    int64_t last_ok_ms = 0;
    std::map<Code, uint64_t> errors;
    sync::RealtimeStatus realtime;
  };

  // `store` must outlive the handle.
  SyncHandle(engine::SyncLog* store, SyncOptions options);
  ~SyncHandle();  // Stop()s; engines go before their backends

  // Builds the backend at once, so a bad configuration fails here.
  Status Add(const std::string& name, BackendFactory make);
  Status SetListener(tidings_sync_event_fn callback, void* context);
  Status SetKeyListener(tidings_key_event_fn callback, void* context);

  Status Once();
  Status Start();
  void Stop();
  Status Restart(const std::string& backend);  // "": those an error stopped
  void Poke();
  // SyncEngine::SendTyping on every engine (a backend without typing
  // indicators ignores it). FailedPrecondition when not started.
  Status Typing(const std::string& conversation_id);
  Status RetryFailed(uint64_t seq);
  Status DiscardFailed(uint64_t seq);
  // SyncEngine::LoadOlder on every backend: the operations merged, summed,
  // and whether any has older history left. FailedPrecondition only if
  // every backend refuses (end-to-end everywhere); the first other error
  // is returned. No backend: nothing to fetch.
  Result<sync::HistoryFill> LoadOlder(const std::string& conversation_id, size_t pages);

  // Attachments (tidings_attachments.h): the S3 bucket sends upload to
  // and fetches download from, handed to every engine (set while stopped).
  Status SetAttachmentStore(const s3::S3Config& config, const std::string& bucket,
                            uint64_t auto_fetch_max_bytes);
  // FailedPrecondition when no attachment store is set.
  Status FetchAttachment(std::string_view object, const engine::AttachmentProgress& progress,
                         const std::atomic<bool>* cancel);

  // Backend name and conversation status, backend by backend.
  std::vector<std::pair<std::string, sync::ConversationStatus>> Statuses();
  Result<std::vector<BackendState>> Backends();

 private:
  struct Slot {
    std::string name;
    BackendFactory make;
    std::shared_ptr<BackendCounters> counters = std::make_shared<BackendCounters>();
    http::HttpClient* http = nullptr;  // owned by backend
    bool cancelled = false;            // http was cancelled: rebuild before the next use
    std::unique_ptr<sync::Backend> backend;
    std::unique_ptr<sync::SyncEngine> engine;  // declared after: destroyed first
  };

  // (Re)creates the slot's transport, backend and engine. REQUIRES: mu_
  Status Build(Slot& slot, bool first);
  // FailedPrecondition when started or without backends; else records the
  // backends in the store when asked to (require_every_backend). REQUIRES: mu_
  Status BeforeSyncing();
  void StopLocked();  // REQUIRES: mu_
  void Emit(const tidings_sync_event& event) const;
  // Hands the key listener every key-change event after the last one
  // delivered (persisted, so none is dropped across handles or restarts).
  // Runs on engine threads after their rounds; serialised by key_mu_.
  void DeliverKeyEvents();

  engine::SyncLog* const store_;
  const SyncOptions options_;
  // Set only while stopped, read by engine threads started after.
  tidings_sync_event_fn listener_ = nullptr;
  void* listener_context_ = nullptr;

  tidings_key_event_fn key_listener_ = nullptr;
  void* key_listener_context_ = nullptr;
  std::mutex key_mu_;  // one delivery at a time; never held with mu_ wanted

  std::mutex mu_;
  // Shared while LoadOlder uses the engines without mu_; exclusive while
  // Build replaces one. Taken after mu_, never before.
  std::shared_mutex engines_mu_;
  // Declared before the slots, so their engines go first. Set while
  // stopped (REQUIRES: mu_), then used by engine threads and fetches.
  std::shared_ptr<sync::AttachmentSync> attachments_;
  std::vector<std::unique_ptr<Slot>> slots_;  // REQUIRES: mu_
  bool started_ = false;                      // REQUIRES: mu_
};

}  // namespace tidings::capi

// What a tidings_sync* points to (tidings_sync.h).
struct tidings_sync {
  tidings::engine::Store* store = nullptr;
  // The app's credentials callback, or null for the default chain.
  std::shared_ptr<tidings::aws::CredentialsProvider> credentials;
  std::unique_ptr<tidings::capi::SyncHandle> handle;
};
