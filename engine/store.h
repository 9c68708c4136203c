// Store: the encrypted, durable message log on the device.
//
// A store is a directory holding a small plaintext header (format version,
// key derivation parameters, the data keys wrapped under the key source's
// key, a store id; authenticated, nothing secret in the clear) and a RocksDB
// database whose every file (WAL, SST, MANIFEST, OPTIONS) is encrypted with a
// per-file XChaCha20 stream and whose values are additionally authenticated
// with a SipHash-128 tag bound to their keys (older stores: a BLAKE2b tag, or
// sealed with XChaCha20-Poly1305). See docs/engine.md.
//
// Two interfaces over one store: Store, here, is what an app calls (open,
// local writes, reads, notifications, maintenance); SyncLog
// (engine/sync_log.h) is what sync calls (outbox acks, cursors, merge, sync
// state). Both extend StoreReader (engine/store_reader.h), the reads they
// share. The implementation is spread over engine/*.cc by job; see
// docs/engine.md.
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

#include "common/status.h"
#include "crypto/keys.h"
#include "crypto/sealer.h"
#include "engine/retention.h"
#include "engine/search.h"
#include "engine/store_reader.h"
#include "engine/types.h"

namespace tidings::engine {

enum class Durability {
  kSync,     // a write returns after its WAL record is fsynced; concurrent
             // writers share fsyncs (the store's own group commit: one
             // writer syncs the WAL for all written so far)
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
  // The store's memory budget: decrypted blocks, and the memtables (below)
  // reserved in it as they grow. The newest page of a conversation is a few
  // blocks; 32 MiB holds the newest pages of ~1,000 conversations.
  size_t block_cache_bytes = 32 << 20;
  // Writes not yet in tables (RocksDB's memtables), every family together,
  // counted in block_cache_bytes: past it the fullest is flushed. A family's
  // own memtable holds half. 0: RocksDB's defaults (64 MiB per family, no
  // total, not counted in the cache).
  size_t write_buffer_bytes = 16 << 20;
  // How a new store protects record values (an existing store keeps what its
  // header says). kAuthenticatedSipHash: a SipHash-128 tag only,
  // confidentiality from the file cipher, blocks LZ4-compressed - smaller and
  // faster. kAuthenticated: the same with BLAKE2b tags (format 2). kSealed:
  // each value also encrypted on its own (format 1, the oldest stores).
  crypto::RecordProtection record_protection = crypto::RecordProtection::kAuthenticatedSipHash;
  // How hard Argon2id works when a new store is unlocked with a passphrase
  // (crypto/keys.h): interactive for phones, moderate or sensitive for
  // kiosks and servers. An existing store keeps its header's limits.
  crypto::PassphraseProfile passphrase_profile = crypto::PassphraseProfile::kInteractive;
  // The full-text index (engine/search.h, docs/search.md), kept in the same
  // batch as every message change. Off: writes skip it and Search fails; the
  // next open with it on rebuilds it. English stemming: a store's index is
  // rebuilt when this changes.
  bool search_index = true;
  // Downloaded attachments this device keeps, in bytes of their objects:
  // past it, the least recently used downloaded ones are evicted (a fetch
  // brings them back). Objects this device sent are kept until uploaded
  // and do not count. 0: no limit.
  uint64_t attachment_quota_bytes = 1ull << 30;
  // nullopt: as the store's index was built (off for a new store).
  std::optional<bool> search_stem_english;
  // Messages the index keeps as one record each (its tail, also held in the
  // writer's memory, ~1 KB a message) before folding them into per-term
  // blocks (engine/search_index.h). Fewer: less memory, more blocks a term.
  size_t search_fold_every = 2048;
  // Called while a writable open builds the search index of a store made
  // before it (or after the settings changed): messages done, of about total.
  std::function<void(uint64_t done, uint64_t total)> open_progress;
  // Testing seam: create the store in an older header format (1-3, the
  // format its record protection had) as older Tidings did. 0: the newest.
  uint32_t create_format = 0;
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
  // Files sent with it (up to kMaxAttachments), encrypted into the store's
  // attachment objects before the message is written; the send pushes once
  // they are uploaded (docs/attachments.md).
  std::vector<AttachmentInput> attachments;
  // The body travels as an attachment (`message.txt`, Attachment::body):
  // for a body longer than a backend carries in one message. This store
  // keeps it as the body; the operation goes without it, and a receiving
  // store makes the fetched file its body (SyncLog::SetBodyFromAttachment).
  bool body_as_attachment = false;
};

struct PageRequest {
  std::string conversation_id;
  size_t limit = 50;
  // At most one of these. Neither: the newest page.
  std::optional<OrderKey> before;  // messages strictly older than this
  std::optional<OrderKey> after;   // messages strictly newer than this
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

class SyncLog;

// The app's interface to a store. Reads shared with sync (Get, conversations,
// the outbox, Subscribe) are in StoreReader.
class Store : public virtual StoreReader {
 public:
  // Opens (or creates) the store in directory `path`.
  // Errors: NotFound (no store, create_if_missing false), AlreadyExists,
  // WrongKey (the key does not open this store; nothing is modified),
  // DataLoss (corrupt or tampered header, absurd Argon2id limits in it, or
  // corrupt files), Busy (another process holds the
  // writer lock; open read-only instead), PermissionDenied / NotFound for key
  // files, IOError.
  static Result<std::unique_ptr<Store>> Open(const std::string& path, crypto::KeySource key,
                                             const StoreOptions& options);

  virtual uint64_t replica_id() const = 0;
  virtual const std::string& path() const = 0;

  // The same store as sync sees it (engine/sync_log.h): what the owner of a
  // Store hands the sync engine that pushes and pulls it. Valid as long as
  // this Store; apps do not call it.
  virtual SyncLog& sync_log() = 0;

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

  // ---- Reads (and StoreReader's) ----

  // Messages in ascending order.
  virtual Result<std::vector<Message>> Page(const PageRequest& request) = 0;
  // Visits every message of every conversation in order (for export).
  virtual Status ForEachMessage(std::function<Status(const Message&)> visit) = 0;
  // Full-text search over the local plaintext (engine/search.h), the same
  // for end-to-end encrypted conversations. InvalidArgument for a query
  // search/query.h refuses (saying what to type), Cancelled if
  // request.cancel was set, FailedPrecondition while the index of a store
  // made before it is still being built.
  virtual Result<SearchResult> Search(const SearchRequest& request) = 0;
  // Builds the search index again from the messages (after `verify` found it
  // differs from them). Resumable: an interrupted rebuild goes on at the next
  // writable open. FailedPrecondition read-only or with the index off.
  virtual Status RebuildSearchIndex(
      std::function<void(uint64_t done, uint64_t total)> progress) = 0;

  // ---- Attachments (engine/attachments.h) ----

  // Decrypts object `object` to the new file `path` (0600), which appears
  // only once the whole object opened. FailedPrecondition if the device
  // does not hold it (fetch it: sync downloads it); DataLoss if it was
  // changed on the device.
  virtual Status ExportAttachment(std::string_view object, const std::string& path,
                                  const AttachmentProgress& progress = nullptr,
                                  const std::atomic<bool>* cancel = nullptr) = 0;
  // Removes a downloaded object's file (a later fetch brings it back).
  // FailedPrecondition for an object this device sent that is not uploaded.
  virtual Status EvictAttachment(std::string_view object) = 0;

  // ---- Parked operations: the user decides ----

  // A failed (parked) outbox entry goes back to pending; FailedPrecondition
  // if it has not failed, NotFound if it is gone.
  virtual Status RetryFailed(uint64_t seq) = 0;
  // Drops a failed entry's operation; FailedPrecondition if it has not failed.
  virtual Status DiscardFailed(uint64_t seq) = 0;

  // ---- Maintenance ----
  virtual Result<StoreStats> Stats() = 0;
  // Decrypts and checks every record and index entry.
  virtual Result<VerifyReport> Verify(
      std::function<void(uint64_t done, uint64_t total)> progress) = 0;
  // Writes an encrypted, authenticated, consistent snapshot of the store to
  // the new file `backup_path` (mode 0600), readable only with this store's
  // key (engine/backup.cc has the format). AlreadyExists if the file exists;
  // DataLoss if a record fails authentication (the backup would carry it).
  virtual Status Backup(const std::string& backup_path,
                        std::function<void(uint64_t done, uint64_t total)> progress) = 0;
  // Makes the store in `store_path` (new, or an empty directory) from a
  // backup, unlocked with the key of the store it was made from. Nothing
  // appears at `store_path` unless the whole backup verified. The restored
  // store is the same device as the original (replica id, device keys):
  // restore a lost store, do not run both. WrongKey, DataLoss (a damaged,
  // cut or altered backup), AlreadyExists (`store_path` is not empty),
  // InvalidArgument (not a backup), FailedPrecondition (a newer format).
  static Status Restore(const std::string& backup_path, const std::string& store_path,
                        crypto::KeySource key,
                        std::function<void(uint64_t done, uint64_t total)> progress);
  virtual Status Flush() = 0;    // memtables to SST files
  virtual Status Compact() = 0;  // full compaction (tests, maintenance)
  // Re-reads the files from disk: read-only instances use this to see writes
  // made by the writer process since they opened.
  virtual Status Refresh() = 0;

  // ---- Retention (engine/retention.h, docs/engine.md "Retention") ----

  // Sets the policy of `conversation_id`, or the store-wide one when it is
  // empty; an empty policy removes it (the conversation then follows the
  // store-wide policy). Local configuration, not synced: every replica purges
  // by its own policy. Takes effect at the next purge. InvalidArgument over
  // kMaxKeepDays or for a bad conversation id; FailedPrecondition read-only.
  virtual Status SetRetention(const std::string& conversation_id,
                              const RetentionPolicy& policy) = 0;
  // The policy as set for `conversation_id` (store-wide when empty); an empty
  // policy if none is.
  virtual Result<RetentionPolicy> GetRetention(const std::string& conversation_id) = 0;
  // Every per-conversation policy, by conversation id.
  virtual Result<std::vector<ConversationRetention>> RetentionPolicies() = 0;
  // Purges what the policies no longer keep - messages with their edits,
  // reactions and index entries, outbox entries that refer to them, parked
  // operations at or below a horizon - then flushes and compacts the purged
  // ranges so their text leaves the disk (the WAL files that held it are
  // deleted by the flush). Raises each purged conversation's watermark, below
  // which merges skip remote operations. Cheap when nothing is due; runs at
  // every writable open. FailedPrecondition read-only.
  virtual Result<PurgeReport> PurgeExpired() = 0;
};

}  // namespace tidings::engine
