// SyncEngine: the production scheduler around a Reconciler, and the sync API
// for embedders (the C/C++ API and the CLI wrap it).
//
// One thread per engine. It pushes right after a local write (it subscribes
// to the store's outbox changes), polls active conversations every
// active_poll_ms (2 s) and idle ones less often, backing off to idle_poll_ms
// (60 s); it re-lists the backend's conversations every idle_poll_ms.
//
// A backend with a push channel (Backend::StartRealtime: Chime's messaging
// WebSocket) replaces the polling while its session is established: on
// kEstablished every conversation is pulled from its durable cursor (gap
// fill) and periodic pulls stop; an event is interpreted on the sync thread
// (Backend::AcceptEvent) and the conversations it names are pulled at once,
// one pull per conversation for a burst of events; on kLost polling resumes.
// Pushes go out right after local writes either way. A send's files upload
// on the attachment transfers' own thread while the engine runs
// (AttachmentTransfers::AddUploadWaker), so rounds go on meanwhile; the
// upload's end pushes its conversation. Stop()
// is prompt: the thread finishes or abandons the request in flight (an HTTP
// backend bounds it by its timeouts) and records nothing of an abandoned
// answer; nothing is lost because the outbox and the cursors are durable and
// a re-sent operation is deduplicated by its id.
//
// An Unauthenticated answer stops the thread: last_error() and the status of
// the conversation say so, and a kAuthError event is emitted. Call Stop() and
// Start() again once the app has new credentials. A store error stops it the
// same way (kStoreError).
//
// Thread safety: every method may be called from any thread, except that the
// listener must be set before Start(). Listener callbacks run on the thread
// that made the change (the sync thread for remote changes and state
// transitions); they must be quick and must not call Stop().
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "sync/core/reconciler.h"

namespace tidings::sync {

struct SyncEvent {
  enum class Kind {
    kMessageAdded,     // a remote message arrived (merge)
    kMessageChanged,   // edited, deleted, reacted to (local or remote)
    kMessageState,     // pending -> sent / failed, or failed -> pending (retry)
    kStatusChanged,    // a conversation's ConversationStatus changed
    kAuthError,        // sync stopped: credentials refused (error has why)
    kStoreError,       // sync stopped: the store failed (error has why)
    kRealtimeChanged,  // the push channel came up or went down (see realtime())
    kTyping,           // `user` is typing in `conversation_id` (never stored)
  };
  Kind kind;
  std::string conversation_id;
  std::string message_id;                                       // message events
  engine::MessageState state = engine::MessageState::kPending;  // kMessageState
  std::string failure_reason;                                   // kMessageState, failed
  tidings::Status error;                                        // kAuthError, kStoreError
  std::string user;                                             // kTyping
};

// The backend's push channel as the engine sees it.
struct RealtimeStatus {
  bool available = false;  // the backend has one and it is started
  bool connected = false;  // established: no periodic pulls meanwhile
  std::string detail;      // why it is down ("" while connected); no secrets
  int64_t changed_ms = 0;  // when `connected` last changed (Unix ms), 0 never
};

class SyncEngine {
 public:
  using Listener = std::function<void(const SyncEvent&)>;

  // The store and backend must outlive the engine. Clock and random default
  // to the system clock and a random_device-seeded generator.
  SyncEngine(engine::SyncLog* store, Backend* backend, SyncConfig config = {});
  SyncEngine(engine::SyncLog* store, Backend* backend, SyncConfig config, Reconciler::Clock clock,
             Reconciler::Random random);
  ~SyncEngine();  // Stop()s
  SyncEngine(const SyncEngine&) = delete;
  SyncEngine& operator=(const SyncEngine&) = delete;

  // Events for new/changed messages, delivery state changes and status
  // changes. Set before Start(); FailedPrecondition while running.
  Status SetListener(Listener listener);
  // Where sends with attachments upload them first (Reconciler::
  // set_attachment_transfers); outlives the engine. Set before Start().
  Status SetAttachmentTransfers(AttachmentTransfers* uploader);

  // Starts the sync thread. FailedPrecondition if already running.
  Status Start();
  // Stops and joins the thread. Idempotent; prompt (see above).
  void Stop();
  bool running();
  // One full round (push then pull every conversation) on the caller's
  // thread; with the thread running, FailedPrecondition (it is syncing
  // already; Poke() it). Returns the first auth or store error, else OK
  // (backend failures are recorded per conversation: see Status()).
  Status SyncOnce();
  // Asks the thread to push and pull every conversation now (e.g. after a
  // write it cannot see), and, for the network coming back or an app coming
  // to the foreground, to retry at once: backoffs are skipped once and the
  // push channel reconnects without waiting out its backoff.
  void Poke();

  // Tells the conversation's other members this user is typing (the backend
  // sends it from the sync thread; never stored). At most one per
  // conversation per kTypingIntervalMs: calls in between are dropped (OK).
  // FailedPrecondition when not running. A backend without typing
  // indicators ignores it.
  Status SendTyping(const std::string& conversation_id);
  static constexpr int64_t kTypingIntervalMs = 3'000;

  // The push channel now.
  RealtimeStatus realtime();

  // Status of every conversation synced so far (as persisted; outbox counts
  // capped at max_push_per_round).
  std::vector<ConversationStatus> Snapshot();
  // The error that stopped the thread (auth or store), or OK.
  Status last_error();

  // Parked-operation handling with the engine's bookkeeping (see
  // Reconciler::RetryFailed); safe while running; a retry pokes the thread.
  Status RetryFailed(uint64_t seq);
  Status DiscardFailed(uint64_t seq);
  Status Resume(const std::string& conversation_id);

  // "The user scrolled up": up to `pages` older pages of a conversation
  // pulled newest-first, fetched and merged now on the caller's thread (the
  // sync thread's round waits for it, or it for the round), as
  // Reconciler::LoadOlder: how many operations were merged and whether older
  // history remains; FailedPrecondition for an end-to-end conversation;
  // a backend failure as it is. Safe while running or not.
  Result<HistoryFill> LoadOlder(const std::string& conversation_id, size_t pages = 1);

 private:
  // What the sync thread takes from the queues for one round.
  struct Work {
    bool push_all = false;
    bool retry_now = false;
    std::set<std::string> dirty;        // local writes
    std::vector<RealtimeEvent> events;  // from the push channel, in order
    bool overflow = false;              // events were dropped: pull everything
    bool pull_all = false;              // Poke: pull every conversation now
    std::set<std::string> typing;       // SendTyping requests
  };
  void Run();
  // On the sync thread as it starts: starts the backend's push channel and
  // records whether there is one.
  void StartRealtime();
  // One pass over the conversations; returns the wake-up time, or the error
  // that stops the thread (auth/store). Cancelled when stopping.
  Result<int64_t> Round(Work& work);
  // Interprets the queued push-channel events: connection state, what to
  // pull (owed_), whether to re-list, whether to pull everything (a gap
  // fill). REQUIRES: reconciler_mu_
  void TakeEvents(Work& work, bool* relist, bool* pull_all);
  // Push and/or pull one conversation as the schedule says; lowers *wake to
  // when it is next due. REQUIRES: reconciler_mu_
  Status Visit(const std::string& conv, bool push, int64_t* wake);
  // Whether `conv`'s outbox needs a push from the schedule: entries not
  // parked, and not held by an upload whose end pokes it. REQUIRES:
  // reconciler_mu_
  bool PushOwed(const std::string& conv, const ConversationStatus& st, int64_t now);
  // Pulls `conv` now if its backoff allows; it stays owed until a pull
  // succeeds. REQUIRES: reconciler_mu_
  Status PullOwed(const std::string& conv);
  // The push channel's listener: queues (any thread).
  void OnRealtime(RealtimeEvent e);
  void SetConnected(bool connected, const std::string& detail);
  // A local write queued something in this conversation: push it now.
  void PokeConversation(const std::string& conversation_id);
  // After the reconciler worked on `conv`: refresh the snapshot and emit a
  // kStatusChanged if it changed. REQUIRES: reconciler_mu_
  void Report(const std::string& conv);
  void OnStoreEvent(const engine::ChangeEvent& e);
  void Emit(const SyncEvent& e);

  engine::SyncLog* store_;
  Backend* backend_;
  SyncConfig config_;
  Reconciler::Clock clock_;
  Listener listener_;
  AttachmentTransfers* uploader_ = nullptr;  // set before Start()

  std::mutex reconciler_mu_;                          // one user of the reconciler at a time
  std::unique_ptr<Reconciler> reconciler_;            // REQUIRES: reconciler_mu_
  std::map<std::string, std::string> last_reported_;  // REQUIRES: reconciler_mu_
  std::vector<std::string> convs_;                    // REQUIRES: reconciler_mu_
  int64_t next_listing_ms_ = 0;                       // REQUIRES: reconciler_mu_
  int64_t next_purge_ms_ = 0;                         // REQUIRES: reconciler_mu_
  bool healthy_ = false;        // push channel established: no polling; REQUIRES: reconciler_mu_
  bool down_reported_ = false;  // a kRealtimeChanged said it is down; REQUIRES: reconciler_mu_
  std::set<std::string> owed_;  // to pull now (events, gap fill); REQUIRES: reconciler_mu_

  std::atomic<bool> stopping_{false};
  std::atomic<std::thread::id> sync_thread_id_{};
  uint64_t subscription_ = 0;
  // The store may still be running a copy of our store listener on a writer
  // thread after Unsubscribe() returns; the listener reaches the engine only
  // through this relay, which Stop() disconnects.
  struct Relay {
    std::mutex mu;
    SyncEngine* engine = nullptr;  // REQUIRES: mu
  };
  std::shared_ptr<Relay> relay_;

  // Start and Stop one at a time, so that the upload waker is registered
  // exactly while the engine runs. Taken before every other lock.
  std::mutex start_stop_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = false;               // REQUIRES: mu_
  bool push_now_ = false;              // REQUIRES: mu_
  std::set<std::string> dirty_;        // conversations with new local writes; REQUIRES: mu_
  bool retry_now_ = false;             // Poke: skip backoffs once; REQUIRES: mu_
  bool pull_all_now_ = false;          // Poke: pull everything once; REQUIRES: mu_
  std::vector<RealtimeEvent> events_;  // queued by the push channel; REQUIRES: mu_
  bool events_overflow_ = false;       // REQUIRES: mu_
  std::set<std::string> typing_;       // to send; REQUIRES: mu_
  std::map<std::string, int64_t> typing_sent_;          // conversation -> last sent; REQUIRES: mu_
  RealtimeStatus realtime_;                             // REQUIRES: mu_
  Status last_error_;                                   // REQUIRES: mu_
  std::map<std::string, ConversationStatus> snapshot_;  // REQUIRES: mu_
  std::thread thread_;
};

}  // namespace tidings::sync
