// Reconciler: decides what to push and what to pull for one backend, and
// records the outcome in the store. It owns no socket and no clock, and no
// thread but a forward pull's read-ahead (SyncConfig::read_ahead), joined
// before the call returns: a scheduler (SyncEngine) drives it in
// production, the seeded simulator in tests, through the same calls. All
// waiting is expressed as "next attempt at time T", never as sleeping.
//
// Decisions (docs/sync.md has the long form):
//   push   the outbox of a conversation in outbox order, up to
//          Backend::max_batch() operations per request. A transient failure
//          (Classify) stops the conversation's push until a capped,
//          full-jitter exponential backoff (never sooner than a server's
//          retry-after) has passed, so nothing behind it overtakes it. A
//          permanent failure parks only the operation it concerns (a batch
//          refused as a whole is retried one operation at a time to find it);
//          later operations and other conversations go on. PermissionDenied /
//          NotFound for the conversation itself parks all its pending
//          operations and stops polling it (`stopped`) until Resume().
//          Unauthenticated is returned to the caller, which stops syncing.
//   pull   pages of at most pull_page_size after the durable cursor, each
//          merged together with its new cursor in one atomic SyncLog::Merge, at
//          most max_pull_pages_per_round pages per call (flat memory), the
//          next page read while the one before it merges (read_ahead). A
//          remote operation the store refuses as malformed (InvalidArgument,
//          TooLarge) is skipped and counted (skipped_ops), not retried
//          forever.
//   newest a plaintext conversation this device never pulled (no cursor)
//          starts with its newest page (Backend::PullHistory), merged with
//          the forward cursor after it and the history gap before it in one
//          batch; forward pulls go on from that cursor. Older pages then
//          fill the gap backwards, each merged with the gap's next value in
//          one batch: at most max_history_pages_per_round per Pull, after
//          its forward pages (so after pushes and new messages), or on
//          demand (LoadOlder). End-to-end conversations stay oldest-first.
//   budget a retry costs kRetryCost tokens, a success refunds one; with the
//          bucket empty every failure waits the full capped backoff window,
//          so a dead network costs one request per conversation per
//          max_backoff_ms on average instead of spinning.
//
// Thread safety: one thread at a time per Reconciler (the cancellation
// predicate may be flipped from any thread).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "engine/sync_log.h"
#include "sync/backend.h"
#include "sync/e2e/session.h"

namespace tidings::sync {

struct SyncConfig {
  size_t pull_page_size = 100;           // operations per pull request
  size_t max_pull_pages_per_round = 20;  // bounds one round's memory and time
  size_t max_push_per_round = 500;       // outbox entries read per push round
  int64_t base_backoff_ms = 500;         // first retry waits up to this (full jitter)
  int64_t max_backoff_ms = 60'000;       // cap of the exponential backoff
  // A forward pull reads its next page while the page before it merges
  // (sync/core/read_ahead.h): two pages in memory, one request that may go
  // unused when a round ends early. false: one after the other.
  bool read_ahead = true;
  // Retry budget (AWS standard-mode style): a retry costs 5 tokens, a success
  // refunds one; with the bucket empty, failures draw from the whole capped
  // window, so a dead network does not spin.
  int retry_budget = 500;
  int64_t active_poll_ms = 2'000;         // poll interval of an active conversation
  int64_t idle_poll_ms = 60'000;          // ... backing off to this when idle
  int64_t active_window_ms = 5 * 60'000;  // activity this recent means "active"
  // New conversations (never synced, no mode set) are end-to-end encrypted
  // on a backend that carries sealed logs. false: plaintext unless a
  // conversation is set to end-to-end (tests that read the server in clear).
  bool end_to_end_default = true;
  // How often the sync engine runs the store's retention purge
  // (SyncLog::PurgeExpired; cheap when nothing is due). 0: never.
  int64_t purge_interval_ms = 3'600'000;
  // The newest wire operation version read; 0: this build's
  // (wire::kOperationVersion). Tests set an older one to play an older build.
  uint8_t newest_operation_version = 0;
  // A plaintext conversation never pulled starts with its newest page on a
  // backend that reads newest-first (Backend::PullHistory); an end-to-end
  // log about to be read again from its start for a new device shows its
  // newest pages first (Backend::PullFrameHistory, docs/sync.md). False:
  // oldest-first only (the benchmark's baseline).
  bool newest_first = true;
  // Older pages one Pull fetches, after its forward pages, while a
  // conversation's history is still being filled (the background fill).
  // 0: the history fills on demand only (LoadOlder), and HasMore leaves it out.
  size_t max_history_pages_per_round = 2;
  // Pulled frames of an end-to-end log kept waiting for their key, per log
  // (e2e::SessionOptions::max_pending_frames).
  size_t max_pending_frames = 5'000;
};

// What Reconciler::LoadOlder did.
struct HistoryFill {
  uint64_t merged = 0;  // remote operations merged (messages and changes to them)
  bool more = false;    // older history is still to fetch
};

// What the reconciler knows about one conversation on one backend; persisted
// (SyncLog::PutSyncState) so `tidings status` in another process can show it.
struct ConversationStatus {
  std::string conversation_id;
  std::string cursor;            // last merged position (as in SyncLog::GetCursor)
  uint64_t outbox_depth = 0;     // entries waiting (pending + failed); exact in
                                 // ReadSyncStatus, capped at max_push_per_round
                                 // in a live Reconciler
  int64_t last_success_ms = 0;   // last round without error (Unix ms), 0 never
  int64_t last_activity_ms = 0;  // last time something was pushed or pulled
  std::string last_error;        // "CODE: reason" of the last failure; empty
                                 // after a success. Never message text.
  int64_t next_attempt_ms = 0;   // no push/pull before this (backoff)
  uint32_t consecutive_failures = 0;
  bool stopped = false;        // permission lost: not polled until Resume()
  uint64_t outbox_failed = 0;  // parked entries (need retry or discard)
  uint64_t skipped_ops = 0;    // remote operations the store refused as
                               // malformed (skipped so sync goes on)
  // End-to-end encryption (docs/security.md):
  bool end_to_end = false;       // the conversation's operations travel sealed
  uint64_t rejected_frames = 0;  // pulled frames skipped as forged, foreign or broken
  uint64_t pending_frames = 0;   // pulled frames waiting for the key that opens them
  std::string last_rejection;    // why the newest rejected frame was (no content)
  // Pulled operations a newer Tidings wrote, kept (not merged, not lost)
  // until an upgrade reads them (sync/core/held_operations.h).
  uint64_t waiting_for_upgrade = 0;
  // Pulled newest-first, the older history is still being filled: the
  // store holds a gap for it (SyncLog::GetGap), or a new device is reading
  // an end-to-end log again from its start (e2e::LogState::rereading).
  // Read from the store, not part of the persisted status record.
  bool filling_history = false;
};

// What moves attachments for the reconciler (sync/core/attachment_sync.h):
// a send's files onto the object store before the send is pushed, and the
// files of merged sends down when a policy wants them at once.
class AttachmentTransfers {
 public:
  enum class Progress {
    kDone,      // every attachment of the send is on the object store
    kUnderWay,  // on the transfers' own thread; a waker hears when it ends
  };
  // Called with the conversation of a send whose upload ended, ok or not,
  // on the transfers' thread. Quick; takes no lock the caller of UploadFor
  // holds.
  using UploadWaker = std::function<void(const std::string& conversation_id)>;

  virtual ~AttachmentTransfers() = default;
  // kDone: every attachment of `op` uploaded, its location set in `op`.
  // While a waker is registered, an upload runs on the transfers' own
  // thread instead of the caller's: kUnderWay until it ends, and the
  // wakers are called then. The error's code says whether to retry
  // (sync/backend.h Classify).
  virtual tidings::Result<Progress> UploadFor(engine::Operation* op) = 0;
  // Uploads move to the transfers' thread while at least one waker is
  // registered (a running SyncEngine registers itself), so that a large
  // file does not hold up the rounds that deliver messages. `owner` names
  // the registration; Remove returns once no call of its waker is running.
  virtual void AddUploadWaker(const void* /*owner*/, UploadWaker /*wake*/) {}
  virtual void RemoveUploadWaker(const void* /*owner*/) {}
  // Called with each page of remote operations once merged. Errors are its
  // own (a fetch on demand tries again): sync goes on.
  virtual void AfterMerge(std::span<const engine::Operation> /*ops*/) {}
};

class Reconciler {
 public:
  using Clock = std::function<int64_t()>;    // Unix ms
  using Random = std::function<uint64_t()>;  // uniform 64-bit

  // store and backend must outlive the reconciler. clock and random are the
  // seams the simulator and unit tests replace.
  Reconciler(engine::SyncLog* store, Backend* backend, SyncConfig config, Clock clock,
             Random random);

  // Once `cancelled` returns true, calls return Cancelled at the next step
  // boundary (before a request, or after a response and before anything of
  // it is written), leaving the store as a crash at that point would: the
  // outbox and cursors are durable and op ids make the retry safe. Used by
  // SyncEngine::Stop and by the simulator to crash a replica mid-sync.
  void set_cancelled(std::function<bool()> cancelled) { cancelled_ = std::move(cancelled); }
  // Sends with attachments are pushed once `transfers` put them on the
  // object store; without it they fail (parked) saying so. Merged pages are
  // handed to it. Must outlive the reconciler; set before the first Push.
  void set_attachment_transfers(AttachmentTransfers* transfers) { uploader_ = transfers; }

  // Whether the last push of `conversation_id` stopped at a send whose files
  // are being uploaded on the transfers' thread: the upload's waker pushes
  // it next, so a scheduler need not.
  bool WaitsForUpload(const std::string& conversation_id) const {
    return waiting_for_upload_.count(conversation_id) != 0;
  }
  // Pushes due outbox entries of the conversation, in order, batched.
  // Returns OK (every backend failure is recorded in the outbox and the
  // status), Unauthenticated (stop everything and surface it), Cancelled, or
  // a store error.
  tidings::Status Push(const std::string& conversation_id);
  // Pulls pages after the durable cursor and merges each page with its
  // cursor atomically. Bounded per call. Same error contract as Push.
  tidings::Status Pull(const std::string& conversation_id);
  // Push then pull every conversation known locally or remotely, repeating
  // bounded rounds, one conversation after another, until each is caught up
  // and its history filled where rounds fill it (or it is backing off).
  tidings::Status SyncAll();
  // The last Push or Pull of this conversation stopped at its per-call bound
  // (max_push_per_round entries, max_pull_pages_per_round pages) with more
  // waiting, or left older history that its rounds fill: call again now.
  bool HasMore(const std::string& conversation_id) const;

  // "The user scrolled up": fetches up to `pages` older pages of a
  // conversation pulled newest-first now, each merged with the gap's next
  // value in one batch, whatever the conversation's backoff. Returns how
  // many operations were merged and whether older history remains. Nothing
  // to fetch ({0, false}) if its history is complete or it was never pulled
  // (Pull brings the newest page first). FailedPrecondition for an
  // end-to-end conversation with no plaintext history to fill (they fill
  // oldest-first); a backend failure is returned as it is (the status and
  // backoff are left to Pull); Cancelled; store errors.
  Result<HistoryFill> LoadOlder(const std::string& conversation_id, size_t pages = 1);

  // Conversations this reconciler knows (local store + backend listing; a
  // failing listing other than Unauthenticated is ignored).
  Result<std::vector<std::string>> Conversations();
  // When this conversation should next be polled: soon after activity, then
  // backing off from active_poll_ms to idle_poll_ms; never before a backoff
  // ends; immediately if the last pull stopped at the page bound.
  int64_t NextPollMs(const std::string& conversation_id);

  ConversationStatus GetStatus(const std::string& conversation_id);

  // The network came back (SyncEngine::Poke): every conversation's backoff
  // and its outbox entries' are skipped once, so the next Push and Pull of
  // each go out at once. Stopped conversations stay stopped.
  void RetryNow();
  // The conversation a sealed log carries; "" if this device has not bound
  // the log to one (yet) or the backend carries no sealed logs.
  Result<std::string> ConversationOfLog(const std::string& log_id);
  // Where the backend addresses the conversation's typing signal: its
  // primary sealed log for an end-to-end conversation with one, else the
  // conversation itself.
  Result<std::string> TypingAddress(const std::string& conv);

  // Clears a stopped conversation's state and backoff so it is pushed and
  // pulled again (after the user regained access, say). Parked operations
  // stay parked; RetryFailed them.
  tidings::Status Resume(const std::string& conversation_id);
  // SyncLog::RetryFailed / DiscardFailed plus the bookkeeping: a retried
  // operation's conversation is resumed and becomes due now. NotFound for an
  // unknown seq, FailedPrecondition if the entry is not parked.
  tidings::Status RetryFailed(uint64_t seq);
  tidings::Status DiscardFailed(uint64_t seq);

 private:
  bool Waiting(int64_t next_attempt_ms, int64_t now) const;
  bool ShouldStop() const { return cancelled_ && cancelled_(); }
  int64_t Backoff(uint32_t failures, std::optional<int64_t> retry_after);
  void RecordFailure(ConversationStatus& st, const tidings::Status& error,
                     std::optional<int64_t> retry_after);
  tidings::Status RecordAuthError(ConversationStatus& st, const tidings::Status& error);
  tidings::Status RecordSuccess(ConversationStatus& st, bool activity);
  tidings::Status Save(ConversationStatus& st);
  ConversationStatus& Load(const std::string& conversation_id);
  tidings::Status ParkConversation(ConversationStatus& st, const tidings::Status& error);
  // Returns false (and records/returns `out`) when the push should stop.
  // Makes the conversation remotely on its first push; later pushes add the
  // members added since (Backend::AddMembers).
  bool EnsureRemote(ConversationStatus& st, tidings::Status* out);
  // Records a failed EnsureConversation/AddMembers by its class.
  void RemoteFailed(ConversationStatus& st, const tidings::Status& error, tidings::Status* out);
  tidings::Status CountOutbox(ConversationStatus& st);
  // The conversation's entries to push now, in outbox order; *read_full:
  // the read hit its per-round bound, so more may wait behind them.
  // Uploads the attachments of the due sends, in order (their locations
  // set in the entries' operations). A send that cannot go is parked and
  // taken out; one that must wait ends `due` there and says why in *hold.
  // Unauthenticated and store errors return.
  enum class Hold {
    kNone,        // every due send's files are up
    kBackingOff,  // an upload failed transiently: the conversation backs off
    kUploading,   // under way on the transfers' thread, whose waker pushes next
                  // (the conversation is marked: WaitsForUpload)
  };
  tidings::Status UploadAttachments(ConversationStatus& st, std::vector<engine::OutboxEntry>* due,
                                    Hold* hold);
  tidings::Result<std::vector<engine::OutboxEntry>> DueEntries(const std::string& conversation_id,
                                                               int64_t now, bool* read_full);
  // Records the backend's per-operation answers to one pushed batch. Returns
  // false (with `out` what Push returns) when the conversation stops here.
  bool RecordAcks(ConversationStatus& st, std::span<const engine::OutboxEntry> batch,
                  const std::vector<PushAck>& acks, tidings::Status* out);
  // Merges a page with what it moves (`to`: the cursor, the gap), keeping
  // the operations a newer build wrote in the same batch.
  tidings::Status MergePage(ConversationStatus& st, std::span<const engine::Operation> ops,
                            std::span<const HeldOperation> too_new,
                            const engine::PagePositions& to);
  // Merges `ops` with the positions `to` and `state` in one batch; an
  // operation the store refuses as malformed is skipped and counted instead.
  tidings::Status MergeValid(ConversationStatus& st, std::span<const engine::Operation> ops,
                             const engine::PagePositions& to,
                             std::span<const engine::SyncStateWrite> state);
  // The newest page of a conversation never pulled, merged with its forward
  // cursor and gap. *at: the cursor forward pulls go on from (unchanged if
  // the backend reads oldest-first only); *pulled: a request was made. A
  // backend failure ends it in *backend_error; the Status returned is
  // Cancelled or a store error.
  tidings::Status PullNewest(ConversationStatus& st, std::string* at, bool* merged, bool* pulled,
                             tidings::Status* backend_error);
  // Up to `pages` older pages before the gap, each merged with the gap's
  // next value. A backend failure ends it in *backend_error (OK otherwise);
  // the Status returned is Cancelled or a store error.
  tidings::Status FillHistory(ConversationStatus& st, size_t pages, uint64_t* merged,
                              tidings::Status* backend_error);
  // When the gap record does not decode (damaged, or written by a newer
  // format): the newest page again, merged with its gap only, so the fill
  // starts over from there. Pages merge idempotently: a restart costs
  // requests, never a hole or a duplicate.
  tidings::Status RestartFill(ConversationStatus& st, uint64_t* merged,
                              tidings::Status* backend_error);
  // Once per conversation and process: the held operations a build that
  // read fewer versions kept are decoded again, and those this build reads
  // are merged (cursor `at` unchanged).
  tidings::Status RetryHeld(ConversationStatus& st, const std::string& at);
  uint8_t Newest() const;  // the newest operation version this reconciler reads
  uint64_t HeldPlain(const std::string& conversation_id) const;
  // An edit or delete about to be pushed carries its target's remote id in
  // `remote_id` (as the store kept it from this backend's ack of the send,
  // or from the pull that brought it), so a backend can mirror it natively
  // in a later process (Chime: the target's MessageId).
  void AddTargetRemoteId(engine::Operation* op);
  tidings::Status PushPlain(ConversationStatus& st);
  tidings::Status PullPlain(ConversationStatus& st);
  // How a backend failure ends a push or pull; OK-or-error to return.
  // PermissionDenied parks the conversation, and NotFound too unless
  // !park_not_found (a plaintext pull: it backs off instead).
  tidings::Status Failed(ConversationStatus& st, const tidings::Status& error,
                         bool park_not_found = true);

  // ---- End-to-end (sealed_sync.cc) ----
  // The session, made on first use on a backend that carries sealed logs;
  // null on one that does not.
  Result<e2e::Session*> Session();
  void ReloadIfStale();
  // Whether the conversation travels sealed; decides and records the mode of
  // a conversation that has none.
  Result<bool> Sealed(const std::string& conversation_id);
  tidings::Status PushSealed(ConversationStatus& st);
  // A due send whose text is too long for the backend's sealed frame (a send
  // written before any sync handle recorded the backends' limits, so the API
  // could not move its text into a file at once) carries its text as a file
  // instead (SyncLog::CarryBodyAsAttachment), when there is an object store
  // to upload it to. Otherwise it is parked as too large when sealed.
  tidings::Status CarryLongBodies(std::vector<engine::OutboxEntry>* due);
  tidings::Status PullSealed(ConversationStatus& st);
  // Logs the backend lists that no conversation here is bound to yet: pulls
  // them until a key share names their conversation, announcing this device
  // so members re-share the keys. Returns the conversations bound.
  Result<std::vector<std::string>> DiscoverLogs();
  tidings::Status PullLog(e2e::LogState& log, ConversationStatus* st);
  // Before a re-read from the log's start: its newest pages, newest first,
  // merging what every position's judgement accepts (Session::PreviewPage).
  // Optional: a read that fails leaves everything to the re-read.
  tidings::Status PreviewLog(e2e::LogState& log, ConversationStatus* st);
  tidings::Status CommitPage(e2e::LogState& log, const e2e::OpenResult& opened,
                             const std::string& cursor, ConversationStatus* st);
  tidings::Status SaveLog(e2e::LogState& log);
  bool GapOpen(const std::string& conv);  // a plaintext history gap is open
  e2e::FetchDevices Fetcher();
  void NoteLog(ConversationStatus& st, const e2e::LogState& log);

  engine::SyncLog* store_;
  Backend* backend_;
  AttachmentTransfers* uploader_ = nullptr;
  std::set<std::string> waiting_for_upload_;  // see WaitsForUpload
  SyncConfig config_;
  Clock clock_;
  Random random_;
  std::function<bool()> cancelled_;
  int retry_tokens_;
  std::map<std::string, ConversationStatus> status_;  // cache of persisted status
  std::map<std::string, std::string> persisted_;      // last written encoding
  std::set<std::string> indexed_;                     // in the persisted index
  std::set<std::string> behind_;                      // pull stopped at the page bound
  std::set<std::string> push_behind_;                 // push stopped at its bound
  std::set<std::string> previewed_;  // "<log id>/<re-read's share>" shown newest first
  std::set<std::string> filling_;    // a gap left by a successful pull
  bool oldest_first_only_ = false;   // PullHistory is Unimplemented
  std::set<std::string> retry_now_;  // entries due despite backoff (RetryNow)
  // Plaintext operations held per conversation; present once RetryHeld
  // checked the conversation (read it with HeldPlain, which inserts nothing).
  std::map<std::string, uint64_t> held_;
  std::unique_ptr<e2e::Session> session_;
  // A write of the session's state failed: what it holds in memory is ahead
  // of the store, so it is dropped (and reopened from the store) at the start
  // of the next Push, Pull or listing (ReloadIfStale).
  bool session_stale_ = false;
  bool published_ = false;  // this device's record is in the backend's directory
  std::map<std::string, std::string> saved_state_;  // sync-state key -> digest last written
};

// ---- For the CLI and embedders: persisted status, no running sync needed ----

// Status of every conversation the named backend has synced, from any store
// handle (a read-only one opened while a daemon syncs the store is enough;
// call Store::Refresh first to see its latest writes). outbox_depth and
// outbox_failed are counted exactly from the store. Empty if never synced.
Result<std::vector<ConversationStatus>> ReadSyncStatus(engine::SyncLog& store,
                                                       std::string_view backend);
// Names of the backends that have persisted status in this store.
Result<std::vector<std::string>> SyncedBackends(engine::SyncLog& store);
// For a writable store with no SyncEngine running on it (e.g. `tidings outbox
// retry|discard`): SyncLog::RetryFailed / DiscardFailed, and for a retry also
// clears the stopped flag and backoff of that conversation on every backend
// so the next sync pushes it at once. With a SyncEngine running in this
// process, call SyncEngine::RetryFailed / DiscardFailed instead.
tidings::Status RetryFailedOperation(engine::SyncLog& store, uint64_t seq);
tidings::Status DiscardFailedOperation(engine::SyncLog& store, uint64_t seq);

}  // namespace tidings::sync
