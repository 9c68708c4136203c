// SyncLog: a store as sync sees it - the outbox to push and its acks, the
// remote operations to merge and the cursors they came to, and sync's own
// persisted state. sync/ (the Reconciler and the SyncEngine) takes a SyncLog,
// never a Store: it cannot send, edit or read pages as the app does, and the
// app's interface (engine/store.h) has none of these methods.
//
// Getting one: the owner of a Store (the C API, the daemon) hands sync
// `store.sync_log()`: the same store, valid as long as the Store is.
//
// Thread safety: as Store (engine/store.h).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/store_reader.h"
#include "engine/types.h"

namespace tidings::engine {

// One write of sync's own state (SyncLog::PutSyncState); an empty value
// deletes the key.
struct SyncStateWrite {
  std::string key;
  std::string value;
};

// Where a merged page leaves a conversation's positions on one backend
// (SyncLog::MergeAt). Each is written in the page's batch, or left alone.
struct PagePositions {
  // The forward cursor after the page (as Merge's new_cursor).
  std::optional<std::string> cursor;
  // The history gap (SyncLog::GetGap): the backward position still to fetch;
  // "" closes the gap (the beginning of the log is merged).
  std::optional<std::string> gap;
  // The gap the page was fetched at: if the stored gap is not this any more
  // (another fill moved it), nothing is written and MergeAt is Aborted.
  std::optional<std::string> gap_from;
};

// What a backend said about a pushed operation.
struct RemoteAck {
  std::string backend;    // backend name, e.g. "dynamodb"
  std::string remote_id;  // the backend's id, may be empty
  uint64_t server_time_ms = 0;
};

class SyncLog : public virtual StoreReader {
 public:
  // ---- The outbox: the reconciler decides, the store records ----

  // The operation reached the backend: removes the outbox entry and, for a
  // send, marks the message sent with the remote id - in one batch. With
  // several outbox backends the entry stays until every one of them acked
  // it; the message is sent (delivered) from the first ack.
  virtual Status AckOutbox(uint64_t seq, const RemoteAck& ack) = 0;
  // Records a failed attempt. permanent: parks the entry as failed (and a
  // sent message's state becomes failed with `reason`).
  virtual Status FailOutbox(uint64_t seq, std::string_view reason, bool permanent,
                            int64_t next_attempt_ms) = 0;
  // As Store::RetryFailed and Store::DiscardFailed, for sync's
  // RetryFailedOperation / DiscardFailedOperation, which also resume the
  // conversation's sync.
  virtual Status RetryFailed(uint64_t seq) = 0;
  virtual Status DiscardFailed(uint64_t seq) = 0;
  // Fan-out (e.g. deliver through Chime and persist through DynamoDB): every
  // operation must be accepted by each named backend before it leaves the
  // outbox. Empty (the default): the first backend to accept it is enough.
  // Persisted. Entries already accepted by every backend of the new list are
  // removed. Backoff and parking stay per entry, shared by the backends: a
  // permanent refusal by one parks the operation for all (docs/engine.md).
  virtual Status SetOutboxBackends(std::vector<std::string> backend_names) = 0;
  virtual std::vector<std::string> OutboxBackends() const = 0;

  // ---- Pulling ----

  // Cursor bytes for (backend, conversation); empty string if none yet.
  virtual Result<std::string> GetCursor(std::string_view backend,
                                        const std::string& conversation_id) = 0;
  // Merges remote operations and sets the cursor in one atomic batch:
  // idempotent, order-independent (DESIGN section 4). Remote times advance the
  // local clock within the drift bound.
  virtual Status Merge(std::string_view backend, const std::string& conversation_id,
                       std::span<const Operation> ops, std::string_view new_cursor) = 0;
  // The same, with sync-state writes in the same atomic batch: state that
  // must move together with the cursor (end-to-end keys learned from the
  // page, frames kept until their key arrives).
  virtual Status Merge(std::string_view backend, const std::string& conversation_id,
                       std::span<const Operation> ops, std::string_view new_cursor,
                       std::span<const SyncStateWrite> state) = 0;

  // ---- History read newest-first (docs/sync.md, "Newest first") ----
  //
  // A conversation pulled newest-first has its newest page and the forward
  // cursor after it, and a gap: the backward position of the older history
  // still to fetch. Every operation of the remote log is merged, or at or
  // after the forward cursor, or older than the gap - never anywhere else -
  // because each page moves its position in the page's own batch.

  // The backward position still to fetch for (backend, conversation); ""
  // if there is no gap (never pulled newest-first, or filled to the start).
  virtual Result<std::string> GetGap(std::string_view backend,
                                     const std::string& conversation_id) = 0;
  // Merges remote operations and moves the positions `at` names, with the
  // sync-state writes, in one atomic batch. As Merge otherwise (idempotent,
  // order-independent; operations at or below a purge horizon are skipped).
  // Aborted (nothing written) if at.gap_from is set and differs from the
  // stored gap.
  virtual Status MergeAt(std::string_view backend, const std::string& conversation_id,
                         std::span<const Operation> ops, const PagePositions& at,
                         std::span<const SyncStateWrite> state) = 0;

  // ---- Sync's own state ----

  // Opaque per-key state the sync engine keeps (status, backoff); readable by
  // other processes.
  virtual Status PutSyncState(std::string_view key, std::string_view value) = 0;
  // Several writes (SyncStateWrite: empty value deletes) in one atomic batch.
  virtual Status PutSyncStates(std::span<const SyncStateWrite> writes) = 0;
  virtual Result<std::string> GetSyncState(std::string_view key) = 0;  // "" if none
  // A conversation's title and members as the remote side now has them (an
  // end-to-end epoch carries both); creates the conversation if this device
  // has not seen it yet.
  virtual Status SetConversationInfo(const std::string& conversation_id, const std::string& title,
                                     const std::vector<std::string>& members) = 0;
  virtual Status SetConversationRemoteId(const std::string& conversation_id,
                                         std::string_view backend, std::string_view remote_id) = 0;

  // ---- Attachments' transfers (sync/core/attachment_sync.h) ----

  // The object with its content key and saved upload state; NotFound if no
  // message refers to it any more.
  virtual Result<AttachmentTransfer> GetAttachmentTransfer(std::string_view object) = 0;
  // An upload's state after a step (durable before it returns): uploading.
  virtual Status SaveUploadProgress(std::string_view object, std::string_view progress) = 0;
  // The object is on the server, in `location` (its bucket): sent.
  virtual Status AttachmentUploaded(std::string_view object, std::string_view location) = 0;
  // The upload cannot succeed (the local object is damaged or gone): failed.
  virtual Status AttachmentUploadFailed(std::string_view object, std::string_view reason) = 0;
  // The object's file was downloaded whole (into attachment_files()):
  // available; then downloaded objects used least recently are evicted
  // while the device holds more than StoreOptions::attachment_quota_bytes.
  virtual Status AttachmentDownloaded(std::string_view object) = 0;
  // A message whose text travelled as attachment `object` (Attachment::body)
  // gets it as its body, from the file the device now holds, indexed for
  // search in the same batch. Nothing changes if the message has a body
  // already, was edited or deleted, or does not hold that attachment.
  // DataLoss if the file does not open; TooLarge over kMaxBodyBytes.
  virtual Status SetBodyFromAttachment(const std::string& message_id, std::string_view object) = 0;
  // A pending send whose text is longer than a backend carries in one
  // operation (a sealed Chime frame) sends it as SendRequest::
  // body_as_attachment would have: the text becomes a `message.txt` object
  // flagged as the body, counted by the message (which keeps its text and
  // lists the file), and the entry's operation carries the file instead of
  // the text. Returns the rewritten entry. FailedPrecondition unless the
  // entry is a send with text, not a file already, that no backend took and
  // whose message is not deleted; NotFound for no entry.
  virtual Result<OutboxEntry> CarryBodyAsAttachment(uint64_t seq) = 0;
  // The objects' files (their directories made on first use); a download
  // writes its partial file here. FailedPrecondition read-only.
  virtual Result<AttachmentFiles*> attachment_files() = 0;

  // ---- Retention ----

  // As Store::PurgeExpired: the sync engine runs it now and then
  // (SyncConfig::purge_interval_ms).
  virtual Result<PurgeReport> PurgeExpired() = 0;
};

}  // namespace tidings::engine
