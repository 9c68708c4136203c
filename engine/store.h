// Store: the encrypted, durable message log on the device.
//
// A store is a directory holding a small plaintext header (format version,
// key derivation parameters, a sealed key check; nothing secret) and a RocksDB
// database whose every file (WAL, SST, MANIFEST, OPTIONS) is encrypted with a
// per-file XChaCha20 stream and whose values are additionally authenticated
// with a SipHash-128 tag bound to their keys (older stores: a BLAKE2b tag, or
// sealed with XChaCha20-Poly1305). See docs/engine.md.
//
// Thread safety: all methods may be called from any thread concurrently.
// Writes are serialized per store in the order RocksDB commits them; reads
// never block writes. Listeners run on the writing thread after the commit,
// outside internal locks; they must not call back into a write of the same
// store synchronously for long.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/keys.h"
#include "crypto/sealer.h"
#include "engine/types.h"
#include "tidings/status.h"

namespace tidings::engine {

enum class Durability {
  kSync,     // a write returns after its WAL record is fsynced; concurrent
             // writers share fsyncs (RocksDB group commit)
  kRelaxed,  // a write returns after the OS has it; a power cut may lose the
             // last writes, a process crash does not
};

struct StoreOptions {
  bool create_if_missing = false;
  bool error_if_exists = false;
  // Opens without taking the writer lock, so a second process (the CLI) can
  // inspect a store a daemon holds open. Writes return FailedPrecondition.
  bool read_only = false;
  Durability durability = Durability::kSync;
  // The local user (sender of local messages). Required when creating a
  // store; stored in it. On open, empty means "as stored".
  std::string user_id;
  uint64_t max_clock_drift_ms = kDefaultMaxDriftMs;
  // Decrypted blocks kept in memory. The newest page of a conversation is a
  // few blocks; 32 MiB holds the newest pages of ~1,000 conversations.
  size_t block_cache_bytes = 32 << 20;
  // How a new store protects record values (an existing store keeps what its
  // header says). kAuthenticatedSipHash: a SipHash-128 tag only,
  // confidentiality from the file cipher, blocks LZ4-compressed - smaller and
  // faster. kAuthenticated: the same with BLAKE2b tags (format 2). kSealed:
  // each value also encrypted on its own (format 1, the oldest stores).
  crypto::RecordProtection record_protection = crypto::RecordProtection::kAuthenticatedSipHash;
  // Seam for tests and simulation: Unix milliseconds. Default: system clock.
  std::function<uint64_t()> wall_clock_ms;
  // Seam for deterministic simulation only: the random bits of the message
  // and operation ids this store makes and of a new store's replica id, so
  // that a seed replays a run exactly. Called under the store's write lock.
  // Default: the OS CSPRNG. Keys and nonces never come from here.
  RandomBytes id_random;
};

struct SendRequest {
  std::string conversation_id;
  std::string body;  // up to kMaxBodyBytes
  std::string content_type = "text/plain";
  std::map<std::string, std::string> metadata;
  std::string message_id;  // empty: a new UUIDv7
};

struct PageRequest {
  std::string conversation_id;
  size_t limit = 50;
  // At most one of these. Neither: the newest page.
  std::optional<OrderKey> before;  // messages strictly older than this
  std::optional<OrderKey> after;   // messages strictly newer than this
};

// What a backend said about a pushed operation.
struct RemoteAck {
  std::string backend;    // backend name, e.g. "dynamodb"
  std::string remote_id;  // the backend's id, may be empty
  uint64_t server_time_ms = 0;
};

struct ChangeEvent {
  enum class Kind {
    kMessageAdded,
    kMessageChanged,
    kMessageStateChanged,
    kConversationChanged,
    kOutboxChanged
  };
  Kind kind;
  std::string conversation_id;
  std::string message_id;  // empty for conversation/outbox events
};

struct StoreStats {
  uint64_t messages = 0;
  uint64_t conversations = 0;
  uint64_t outbox = 0;
  uint64_t outbox_failed = 0;
  uint64_t disk_bytes = 0;
  uint32_t schema_version = 0;
  uint64_t replica_id = 0;
  std::string user_id;
};

struct VerifyReport {
  uint64_t records_checked = 0;
  uint64_t problems = 0;
  std::vector<std::string> details;  // keys in hex, never contents
};

class Store {
 public:
  // Opens (or creates) the store in directory `path`.
  // Errors: NotFound (no store, create_if_missing false), AlreadyExists,
  // WrongKey (the key does not open this store; nothing is modified),
  // DataLoss (corrupt header or files), Busy (another process holds the
  // writer lock; open read-only instead), PermissionDenied / NotFound for key
  // files, IOError.
  static Result<std::unique_ptr<Store>> Open(const std::string& path, crypto::KeySource key,
                                             const StoreOptions& options);
  virtual ~Store() = default;

  virtual const std::string& user_id() const = 0;
  virtual uint64_t replica_id() const = 0;
  virtual const std::string& path() const = 0;

  // ---- Local writes: each is one atomic batch with its outbox entry. ----

  // Creates or updates a conversation's title and members (local only).
  virtual Result<Conversation> PutConversation(const std::string& id, const std::string& title,
                                               const std::vector<std::string>& members) = 0;
  // TooLarge over kMaxBodyBytes or metadata limits; InvalidArgument for an
  // empty conversation id. The message is pending until a backend acks it.
  virtual Result<Message> Send(const SendRequest& request) = 0;
  // Several sends in one atomic batch (an imported backlog, a burst): all or
  // nothing, one WAL write and at most one fsync.
  virtual Result<std::vector<Message>> SendMany(std::span<const SendRequest> requests) = 0;
  // Only the sender may edit (PermissionDenied); FailedPrecondition once deleted.
  virtual Result<Message> Edit(const std::string& message_id, std::string_view new_body) = 0;
  virtual Status Delete(const std::string& message_id) = 0;
  virtual Status React(const std::string& message_id, const std::string& reaction, bool add) = 0;
  // Moves the local user's read marker forward to `up_to` (never back).
  virtual Status MarkRead(const std::string& conversation_id, const OrderKey& up_to) = 0;

  // ---- Reads ----

  // NotFound if absent; DataLoss if the record fails authentication.
  virtual Result<Message> Get(const std::string& message_id) = 0;
  // Messages in ascending order.
  virtual Result<std::vector<Message>> Page(const PageRequest& request) = 0;
  virtual Result<Conversation> GetConversation(const std::string& id) = 0;
  // Most recently active first.
  virtual Result<std::vector<Conversation>> Conversations(size_t limit) = 0;
  // Outbox in order; `conversation_id` empty means all conversations.
  // `unacked_by` non-empty: only entries that backend has not accepted yet
  // (what its reconciler still has to push).
  virtual Result<std::vector<OutboxEntry>> Outbox(size_t limit,
                                                  const std::string& conversation_id = "",
                                                  std::string_view unacked_by = "") = 0;
  // What Outbox(0, conversation_id, unacked_by) returns, counted, without
  // reading the message bodies entries refer to or holding the entries: for
  // gauges and status lines. limit != 0: stops counting at limit entries.
  virtual Result<OutboxCounts> CountOutbox(const std::string& conversation_id = "",
                                           std::string_view unacked_by = "",
                                           uint64_t limit = 0) = 0;
  // One entry, as Outbox() returns it; NotFound once it left the outbox.
  virtual Result<OutboxEntry> GetOutboxEntry(uint64_t seq) = 0;

  // ---- Sync (used by sync/; the reconciler makes the decisions) ----

  // The operation reached the backend: removes the outbox entry and, for a
  // send, marks the message sent with the remote id - in one batch. With
  // several outbox backends the entry stays until every one of them acked
  // it; the message is sent (delivered) from the first ack.
  virtual Status AckOutbox(uint64_t seq, const RemoteAck& ack) = 0;
  // Fan-out (e.g. deliver through Chime and persist through DynamoDB): every
  // operation must be accepted by each named backend before it leaves the
  // outbox. Empty (the default): the first backend to accept it is enough.
  // Persisted. Entries already accepted by every backend of the new list are
  // removed. Backoff and parking stay per entry, shared by the backends: a
  // permanent refusal by one parks the operation for all (docs/engine.md).
  virtual Status SetOutboxBackends(std::vector<std::string> backend_names) = 0;
  virtual std::vector<std::string> OutboxBackends() const = 0;
  // Records a failed attempt. permanent: parks the entry as failed (and a
  // sent message's state becomes failed with `reason`).
  virtual Status FailOutbox(uint64_t seq, std::string_view reason, bool permanent,
                            int64_t next_attempt_ms) = 0;
  virtual Status RetryFailed(uint64_t seq) = 0;    // back to pending
  virtual Status DiscardFailed(uint64_t seq) = 0;  // drop the operation
  // Cursor bytes for (backend, conversation); empty string if none yet.
  virtual Result<std::string> GetCursor(std::string_view backend,
                                        const std::string& conversation_id) = 0;
  // Merges remote operations and sets the cursor in one atomic batch:
  // idempotent, order-independent (DESIGN section 4). Remote times advance the
  // local clock within the drift bound.
  virtual Status Merge(std::string_view backend, const std::string& conversation_id,
                       std::span<const Operation> ops, std::string_view new_cursor) = 0;
  // Opaque per-key state the sync engine keeps (status, backoff); readable by
  // other processes.
  virtual Status PutSyncState(std::string_view key, std::string_view value) = 0;
  virtual Result<std::string> GetSyncState(std::string_view key) = 0;  // "" if none
  virtual Status SetConversationRemoteId(const std::string& conversation_id,
                                         std::string_view backend, std::string_view remote_id) = 0;

  // ---- Notifications ----
  using Listener = std::function<void(const ChangeEvent&)>;
  virtual uint64_t Subscribe(Listener listener) = 0;
  virtual void Unsubscribe(uint64_t token) = 0;

  // ---- Maintenance ----
  virtual Result<StoreStats> Stats() = 0;
  // Decrypts and checks every record and index entry.
  virtual Result<VerifyReport> Verify(
      std::function<void(uint64_t done, uint64_t total)> progress) = 0;
  // Visits every message of every conversation in order (for export).
  virtual Status ForEachMessage(std::function<Status(const Message&)> visit) = 0;
  virtual Status Flush() = 0;    // memtables to SST files
  virtual Status Compact() = 0;  // full compaction (tests, maintenance)
  // Re-reads the files from disk: read-only instances use this to see writes
  // made by the writer process since they opened.
  virtual Status Refresh() = 0;
};

}  // namespace tidings::engine
