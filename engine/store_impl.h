// StoreImpl: the one implementation of Store (the app's interface) and
// SyncLog (sync's), for the engine/*.cc files that implement its parts:
//
//   store_open.cc    Open, Init, the RocksDB options, Refresh
//   schema.cc        schema versions and migrations
//   txn.cc           the transaction overlay, commit, group commit, listeners
//   apply.cc         applying one operation (local or remote) to the records
//   local_writes.cc  Send, Edit, Delete, React, MarkRead, PutConversation
//   reads.cc         Get, Page, conversations and unread counts, export
//   outbox.cc        the outbox: entries, acks, failures, fan-out
//   merge.cc         Merge, cursors, sync state, remote ids
//   verify.cc        Verify
//   maintenance.cc   Stats, Flush, Compact
//   backup.cc        Backup, Restore
//   retention.cc     retention policies, purges, the purge watermarks
//   search_index.cc  the full-text index: postings kept with the messages
//   search_build.cc  building the index of a store made before it; verify
//   search.cc        Search: running a query over the index
//
// Not part of the engine's interface: include engine/store.h or
// engine/sync_log.h instead.
#pragma once

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "crypto/hash.h"
#include "crypto/sealer.h"
#include "engine/codec.h"
#include "engine/corruption_watch.h"
#include "engine/hlc.h"
#include "engine/records.h"
#include "engine/search_index.h"
#include "engine/store.h"
#include "engine/store_header.h"
#include "engine/store_keys.h"
#include "engine/sync_log.h"
#include "search/analyzer.h"

namespace tidings::engine {

// v2: a local send's outbox entry may refer to its message's body, and
// message records may end with the sequence of that entry. v1 data is valid
// v2 data, so v1 stores open read-only too; v1 code refuses v2 stores.
// v3: the search family; a writable open builds the index of older stores
// (search_build.cc). v2 data is valid v3 data.
// v4: the attachments family; message records and outbox operations may end
// with attachment references. v3 data is valid v4 data.
// v5: a conversation record is a checkpoint: the summary is the record plus
// the conversation's messages ordered after its last_order (at most
// kSummaryLag of them), which an in-order send no longer rewrites. The
// migration makes every record's last_order its newest message's (an old
// clamp could leave it lower). v4 code would show (and write back) lagging
// counts, so it must refuse v5.
// v6: a conversation record carries the local user's unread count over the
// messages up to its last_order (a summary adds those after it), kept by
// every write that changes one; the migration counts it once. v5 code would
// write records back without keeping it, so it must refuse v6. A read-only
// handle on an older store counts from the messages, as before.
inline constexpr uint32_t kSchemaVersion = 6;
// The most messages a conversation record may lag behind its newest (see
// v5 above): a read of the summary decodes up to this many messages.
inline constexpr uint32_t kSummaryLag = 32;
inline constexpr uint32_t kOldestSchemaReadable = 1;
inline constexpr char kDbDir[] = "db";

// The column families. Values are sealed or authenticated with the family's
// name and the key as associated data (StoreImpl::Ad).
enum Cf : int {
  kDefault,
  kMessages,
  kById,
  kOutbox,
  kConversations,
  kCursors,
  kMeta,
  kPending,
  kSearch,       // the full-text index (engine/search_index.h)
  kAttachments,  // attachments' objects (engine/attachment_records.cc)
  kNumCf
};
inline constexpr const char* kCfNames[kNumCf] = {"default",       "messages",   "by_id", "outbox",
                                                 "conversations", "cursors",    "meta",  "pending",
                                                 "search",        "attachments"};
// Families added by a schema upgrade: a read-only open of a store no writer
// opened since lacks them, from the first on.
inline constexpr int kFirstAddedCf = kSearch;

// Meta keys of retention (engine/retention.cc) that Verify checks against:
// + ConvKey, a conversation's purge watermark; + IdKey, a purged message.
inline constexpr char kWatermarkPrefix[] = "purge_wm:";
inline constexpr char kPurgedPrefix[] = "purged:";

// History gaps (engine/merge.cc, SyncLog::GetGap): family "cursors", key
// kGapPrefix + Hash16('g', backend NUL conversation) - 17 bytes, where
// cursors and sync state are 16 - and the value kGapFormat, then the
// backward position as bytes (never empty: no gap, no record).
inline constexpr char kGapPrefix = 'g';
inline constexpr uint8_t kGapFormat = 1;
inline constexpr size_t kMaxPositionBytes = 4096;  // a backend's page token
std::string EncodeGap(std::string_view before);
bool DecodeGap(std::string_view in, std::string* before);

// The wall clock as the HLC reads it: Unix milliseconds.
inline uint64_t WallMillis() { return static_cast<uint64_t>(WallMs()); }

// A RocksDB status as ours, saying what to do: `what` is the failed action.
Status FromRocks(const rocksdb::Status& s, std::string_view what);
// InvalidArgument (empty) or TooLarge (over kMaxIdBytes), naming `what`.
Status ValidateId(std::string_view what, std::string_view id);
// TooLarge over kMaxBodyBytes or the metadata limits.
Status ValidateContent(std::string_view body, const std::map<std::string, std::string>& metadata);
Status ValidateAttachments(const std::vector<AttachmentInput>& inputs);

// The writes of one local call or one merged page, applied atomically. Reads
// through a Txn see its own uncommitted writes.
struct Txn {
  rocksdb::WriteBatch batch;
  std::map<std::pair<int, std::string>, std::optional<std::string>> overlay;  // plaintext
  std::vector<ChangeEvent> events;
  // What the batch's postings add to the index's totals (search_index.cc).
  int64_t indexed_messages = 0;
  int64_t indexed_terms = 0;
  // The index's tail records the batch writes (postings) or deletes
  // (nullopt), in order, for the writer's in-memory copy; clear: all go.
  std::vector<std::pair<std::string, std::optional<search_index::MessagePostings>>> search_tail;
  bool search_tail_clear = false;
  // Objects whose last reference the batch removed (or that a send found
  // already stored): their files go once it committed.
  std::vector<std::string> freed_objects;
  // Conversation records the batch loaded, by ConvKey: how many messages
  // their stored record lags behind (this batch's in-order sends included),
  // whether anything but such sends changed them (then they are written),
  // and the summary as the batch left it. A page of sends to one
  // conversation changes it once per message: later loads copy it instead
  // of decoding it, and the commit encodes it once (into the overlay, over
  // any record put there directly: summaries go through StoreConversation
  // and AppendToConversation only).
  struct SummaryState {
    uint32_t lag = 0;
    bool rewrite = false;
    std::optional<Conversation> current;
  };
  std::map<std::string, SummaryState> summaries;
};

class StoreImpl final : public Store, public SyncLog {
  friend class Rekeyer;  // rekey.cc: reads one store's records into another

 public:
  StoreImpl(std::string path, StoreOptions options)
      : path_(std::move(path)),
        options_(std::move(options)),
        clock_(options_.wall_clock_ms ? options_.wall_clock_ms : WallMillis,
               options_.max_clock_drift_ms),
        analyzer_(
            search::AnalyzerOptions{.stem_english = options_.search_stem_english.value_or(false)}),
        search_enabled_(options_.search_index) {}

  ~StoreImpl() override { CloseDb(/*settle=*/true); }

  Status Init(crypto::KeySource key);
  // After Init. A writer builds or rebuilds the search index when its state
  // record says it is missing, partial or made with other settings
  // (resumable); a reader takes the writer's settings (search_build.cc).
  Status PrepareSearchIndex();

  const std::string& user_id() const override { return user_id_; }
  uint64_t replica_id() const override { return replica_id_; }
  const std::string& path() const override { return path_; }
  SyncLog& sync_log() override { return *this; }

  Result<Conversation> PutConversation(const std::string& id, const std::string& title,
                                       const std::vector<std::string>& members) override;
  Result<Message> Send(const SendRequest& request) override;
  Result<std::vector<Message>> SendMany(std::span<const SendRequest> requests) override;
  Result<Message> Edit(const std::string& message_id, std::string_view new_body) override;
  Status Delete(const std::string& message_id) override;
  Status React(const std::string& message_id, const std::string& reaction, bool add) override;
  Status MarkRead(const std::string& conversation_id, const OrderKey& up_to) override;

  Result<Message> Get(const std::string& message_id) override;
  Result<std::vector<Message>> Page(const PageRequest& request) override;
  Result<Conversation> GetConversation(const std::string& id) override;
  Result<std::vector<Conversation>> Conversations(size_t limit) override;
  Result<std::vector<OutboxEntry>> Outbox(size_t limit, const std::string& conversation_id,
                                          std::string_view unacked_by) override;
  Status SetOutboxBackends(std::vector<std::string> backend_names) override;
  Result<OutboxCounts> CountOutbox(const std::string& conversation_id, std::string_view unacked_by,
                                   uint64_t limit) override;
  Result<OutboxEntry> GetOutboxEntry(uint64_t seq) override;
  // Outbox() for callers that count or look at acks only: by-reference
  // entries keep their empty body, which saves two reads each.
  Result<std::vector<OutboxEntry>> ScanOutbox(size_t limit, const std::string& conversation_id,
                                              std::string_view unacked_by, bool with_bodies);
  // Calls `visit` with each entry of `conversation_id` (all when empty) that
  // `unacked_by` (if given) has not accepted, in order, until it returns
  // false. Bodies are filled in only when `with_bodies`.
  Status VisitOutbox(const std::string& conversation_id, std::string_view unacked_by,
                     bool with_bodies, const std::function<bool(OutboxEntry&&)>& visit);
  std::vector<std::string> OutboxBackends() const override {
    std::lock_guard<std::mutex> lock(outbox_backends_mu_);
    return outbox_backends_;
  }

  Status AckOutbox(uint64_t seq, const RemoteAck& ack) override;
  Status FailOutbox(uint64_t seq, std::string_view reason, bool permanent,
                    int64_t next_attempt_ms) override;
  Status RetryFailed(uint64_t seq) override;
  Status DiscardFailed(uint64_t seq) override;
  Result<std::string> GetCursor(std::string_view backend,
                                const std::string& conversation_id) override;
  Status Merge(std::string_view backend, const std::string& conversation_id,
               std::span<const Operation> ops, std::string_view new_cursor) override;
  Status Merge(std::string_view backend, const std::string& conversation_id,
               std::span<const Operation> ops, std::string_view new_cursor,
               std::span<const SyncStateWrite> state) override;
  Result<std::string> GetGap(std::string_view backend, const std::string& conversation_id) override;
  Status MergeAt(std::string_view backend, const std::string& conversation_id,
                 std::span<const Operation> ops, const PagePositions& at,
                 std::span<const SyncStateWrite> state) override;
  Status PutSyncStates(std::span<const SyncStateWrite> writes) override;
  Status SetConversationInfo(const std::string& conversation_id, const std::string& title,
                             const std::vector<std::string>& members) override;
  Status PutSyncState(std::string_view key, std::string_view value) override;
  Result<std::string> GetSyncState(std::string_view key) override;
  Status SetConversationRemoteId(const std::string& conversation_id, std::string_view backend,
                                 std::string_view remote_id) override;

  uint64_t Subscribe(Listener listener) override;
  void Unsubscribe(uint64_t token) override;

  Result<StoreStats> Stats() override;
  Result<VerifyReport> Verify(std::function<void(uint64_t, uint64_t)> progress) override;
  Status ForEachMessage(std::function<Status(const Message&)> visit) override;
  Status Backup(const std::string& backup_path,
                std::function<void(uint64_t, uint64_t)> progress) override;
  // Store::Restore's work, in this (new, empty) directory (backup.cc).
  Status RestoreFrom(crypto::KeySource key, const std::string& backup_path,
                     std::function<void(uint64_t, uint64_t)> progress);
  Status Flush() override;
  Status Compact() override;
  Status Refresh() override;

  Status SetRetention(const std::string& conversation_id, const RetentionPolicy& policy) override;
  Result<RetentionPolicy> GetRetention(const std::string& conversation_id) override;
  Result<std::vector<ConversationRetention>> RetentionPolicies() override;
  Result<RetentionPolicy> EffectiveRetention(const std::string& conversation_id) override;
  Result<PurgeReport> PurgeExpired() override;

  Result<SearchResult> Search(const SearchRequest& request) override;
  Status RebuildSearchIndex(std::function<void(uint64_t, uint64_t)> progress) override;

  // Attachments (attachment_records.cc).
  // After Init, writers: objects no record names (a crash between a commit
  // and removing the file, an import whose send never committed) removed.
  // The directories are made on first use (EnsureAttachmentFiles), so a
  // store without attachments has none.
  Status OpenAttachments();
  Status EnsureAttachmentFiles();
  Result<std::vector<AttachmentObject>> Attachments() override;
  Result<AttachmentObject> GetAttachment(std::string_view object) override;
  Status ExportAttachment(std::string_view object, const std::string& path,
                          const AttachmentProgress& progress,
                          const std::atomic<bool>* cancel) override;
  Status EvictAttachment(std::string_view object) override;
  Result<AttachmentTransfer> GetAttachmentTransfer(std::string_view object) override;
  Status SaveUploadProgress(std::string_view object, std::string_view progress) override;
  Status AttachmentUploaded(std::string_view object, std::string_view location) override;
  Status AttachmentUploadFailed(std::string_view object, std::string_view reason) override;
  Status AttachmentDownloaded(std::string_view object) override;
  Status SetBodyFromAttachment(const std::string& message_id, std::string_view object) override;
  Result<OutboxEntry> CarryBodyAsAttachment(uint64_t seq) override;
  Result<AttachmentFiles*> attachment_files() override;

 private:
  friend struct MergeTestPeer;      // tests/engine/merge_test.cc: raw gap records
  friend struct RetentionTestPeer;  // tests/engine/retention_test.cc: SST files
  friend struct SearchTestPeer;     // tests/engine/search_test.cc: raw postings
  friend struct SchemaTestPeer;     // tests/engine/schema_test.cc: v4 and v5 stores
  friend struct VerifyTestPeer;     // tests/engine/verify_test.cc: wrong counts
  // Keys: ids never appear in RocksDB keys, only their keyed hashes.
  std::string Hash16(char domain, std::string_view data) const {
    std::string in(1, domain);
    in.append(data);
    auto h = siphash_keys_ ? crypto::SipHash16(hash_key_, in) : crypto::KeyedHash16(hash_key_, in);
    return std::string(reinterpret_cast<const char*>(h.data()), h.size());
  }
  // The search index's hashes (engine/search_index.h): T(domain, text), the
  // first 8 bytes of Hash16, and U(sender), its first 4 as a number.
  std::string TermHash(char domain, std::string_view text) const {
    return Hash16(domain, text).substr(0, search_index::kTermHashBytes);
  }
  // TermHash as a number (its bytes big-endian), without allocating: what
  // indexing a message calls for each of its terms.
  uint64_t TermNumber(char domain, std::string_view text) const;
  uint32_t SenderHash(std::string_view sender) const {
    const std::string h = Hash16(search_index::kSenderDomain, sender);
    return uint32_t{uint8_t(h[0])} << 24 | uint32_t{uint8_t(h[1])} << 16 |
           uint32_t{uint8_t(h[2])} << 8 | uint8_t(h[3]);
  }
  // A send hashes its conversation id three times (message key, summary read
  // and write): the last one is remembered per thread. `instance_id_`, not
  // `this`, names the store: a new store may reuse a freed one's address.
  std::string ConvKey(const std::string& conv) const {
    struct Memo {
      uint64_t store = 0;
      std::string conv, key;
    };
    thread_local Memo memo;
    if (memo.store != instance_id_ || memo.conv != conv) {
      memo.key = Hash16('c', conv);
      memo.conv = conv;
      memo.store = instance_id_;
    }
    return memo.key;
  }
  // Time-prefixed (stores created since the option existed): the id's UUIDv7
  // milliseconds (zeros for other ids), then the keyed hash. New messages
  // then land next to each other in the memtable and in SST files instead of
  // at random places - 30-40% faster appends. The time is no secret: the
  // order key in every message key carries it already.
  std::string IdKey(const std::string& id) const {
    if (!time_prefixed_ids_) return Hash16('m', id);
    std::string key;
    PutFixed64BE(&key, UuidV7Millis(id) << 16);
    key.resize(6);
    key.append(Hash16('m', id));
    return key;
  }
  std::string MsgKey(const std::string& conv, const OrderKey& k) const {
    return ConvKey(conv) + k.Encode();
  }
  // The order key a messages key ends with.
  static OrderKey OrderOfMsgKey(std::string_view msg_key) {
    OrderKey k;
    if (msg_key.size() >= 16) (void)OrderKey::Decode(msg_key.substr(msg_key.size() - 16), &k);
    return k;
  }
  static std::string SeqKey(uint64_t seq) {
    std::string k;
    PutFixed64BE(&k, seq);
    return k;
  }
  std::string Ad(int cf, std::string_view key) const {
    std::string ad;
    AdInto(&ad, cf, key);
    return ad;
  }
  // Reuses *ad's capacity: read loops build one per record. Stores whose
  // header says so (new and rotated stores) bind the store id too, so one
  // store's records do not verify under another's header.
  void AdInto(std::string* ad, int cf, std::string_view key) const {
    ad->assign(ad_prefix_);
    ad->append(kCfNames[cf]);
    ad->push_back('\0');
    ad->append(key);
  }

  // A snapshot for reads that must agree with each other (REQUIRES: db_mu_
  // held). Null for a read-only instance, which sees a fixed state anyway.
  std::unique_ptr<rocksdb::ManagedSnapshot> ConsistentView() const {
    if (options_.read_only) return nullptr;
    return std::make_unique<rocksdb::ManagedSnapshot>(db_);
  }

  // Attachments' records (attachment_records.cc). Import encrypts a send's
  // files into new objects before the write lock is taken; a send then
  // counts its references (Ref, new records for objects not known yet) and
  // a delete or purge releases them (Release: at zero the record goes and
  // the file after the commit). Dedupe swaps a new object for the one the
  // same file became before, if the device still holds it.
  Result<std::vector<Attachment>> ImportAttachments(const std::vector<AttachmentInput>& inputs,
                                                    std::vector<std::string>* fingerprints);
  Status DedupeAttachments(Txn& txn, std::vector<Attachment>* list,
                           const std::vector<std::string>& fingerprints);
  Status RefAttachments(Txn& txn, const std::vector<Attachment>& list, bool remote);
  // Each of `list` loses `each` references (1: a message's; 0: frees only
  // the objects nothing refers to).
  Status ReleaseAttachments(Txn& txn, const std::vector<Attachment>& list, uint64_t each = 1);
  Result<std::optional<AttachmentRecord>> LoadAttachment(Txn& txn, std::string_view object);
  void StoreAttachment(Txn& txn, const AttachmentRecord& r);
  // Changes one record under the write lock; NotFound if there is none.
  Status UpdateAttachment(std::string_view object,
                          const std::function<Status(AttachmentRecord&)>& change);
  Status EnforceAttachmentQuota(std::string_view keep);
  void ShowDownloading(AttachmentObject* a) const;
  // After a commit: removes the files of txn.freed_objects.
  void RemoveFreedObjects(const Txn& txn);

  // Init's steps (store_open.cc, store_keys.cc, rekey.cc, schema.cc).
  Status CreateDirectoryAndHeader(const crypto::KeySource& key, Header* header);
  // Checks the key against the header's key check (or makes the check for a
  // new header) and derives the file, record and hash sub-keys.
  Status UnlockKeys(const crypto::KeySource& key, bool exists, Header* header);
  // Makes the unlocked keys the ones this store runs with, and takes the
  // database directory and record binding from `header` (store_keys.cc).
  void InstallKeys(StoreKeys keys, const Header& header);
  // A writer's open removes database directories the header does not name:
  // what an interrupted or finished data-key rotation left (rekey.cc).
  void RemoveStaleDbDirs() const;
  // A new store: replica id, user, schema version; then the header, last.
  Status CreateIdentity(const std::string& header_path, const Header& header);
  // `version`: the stored schema_version record. Refuses newer schemas,
  // loads the store's identity, and migrates older ones in order (writers
  // only).
  Status UpgradeSchema(const std::string& version);
  Status LoadIdentity();
  Status OpenDb(bool create);
  // OpenForReadOnly of the families the database has (search may not yet).
  rocksdb::Status OpenReadOnly(const rocksdb::Options& o, const std::string& db_path,
                               std::vector<rocksdb::ColumnFamilyDescriptor> descs);
  // Files of stores made before RocksDB's files were created 0600, or copied
  // with looser modes, become private.
  void TightenFileModes(const std::string& db_path) const;
  // settle: a writer first merges small tables and lets compactions finish (bounded,
  // engine/settle.h), so short-lived writers keep the file count bounded.
  void CloseDb(bool settle = false);
  // After a scan: the iterator's error, else a corruption RocksDB reported
  // only in its log or in the background while the scan ran (a table it
  // opened despite a bad properties block may have hidden records). Every
  // read ends with this, so a damaged file is never a shorter history.
  Status ReadDone(const rocksdb::Iterator& it) const {
    if (!it.status().ok()) return FromRocks(it.status(), "read failed");
    return watch_.status();
  }
  Status CheckWritable() const {
    if (options_.read_only) {
      return FailedPrecondition("the store is open read-only; open it for writing to change it");
    }
    return Status::Ok();
  }

  // Reads and opens a sealed value. nullopt if absent.
  Result<std::optional<std::string>> ReadSealed(int cf, const std::string& key);
  // The same with db_mu_ already held (shared).
  Result<std::optional<std::string>> ReadSealedLocked(int cf, const std::string& key,
                                                      const rocksdb::ReadOptions& ro);
  Result<std::optional<std::string>> TxnRead(Txn& txn, int cf, const std::string& key);
  void TxnPut(Txn& txn, int cf, const std::string& key, std::string plain);
  void TxnDelete(Txn& txn, int cf, const std::string& key);
  void PutStates(Txn& txn, std::span<const SyncStateWrite> writes);
  std::string GapKey(std::string_view backend, const std::string& conversation_id) const;
  Status Commit(Txn& txn, std::unique_lock<std::mutex>& write_lock);
  // After a successful write (REQUIRES: write_mu_): the conversation records
  // it wrote become the cached ones.
  void CacheSummaries(const Txn& txn);
  // At a clean close: writes the cached summaries whose records lag, so the
  // next open lists conversations without reading messages to catch up.
  Status WriteLaggingSummaries();
  Status WaitDurable(uint64_t ticket);
  void Notify(const std::vector<ChangeEvent>& events);

  Result<std::optional<MessageRecord>> LoadMessage(Txn& txn, const std::string& id,
                                                   std::string* msg_key) {
    return LoadMessage(txn, id, IdKey(id), msg_key);
  }
  // The same, by the id's by-id key (IdKey(id)), when the caller has it.
  Result<std::optional<MessageRecord>> LoadMessage(Txn& txn, const std::string& id,
                                                   const std::string& id_key, std::string* msg_key);
  // The conversation's summary as of the txn: its record (the txn's, the
  // writer's cache, or the database's caught up with the messages after it).
  Result<Conversation> LoadConversation(Txn& txn, const std::string& id, bool* existed);
  // The txn writes `c` (any change but an in-order send).
  void StoreConversation(Txn& txn, const Conversation& c) {
    Txn::SummaryState& s = txn.summaries[ConvKey(c.id)];
    s.rewrite = true;
    s.current = c;
  }
  // `c` after a send ordered after every message of it, which readers can
  // derive from the messages: the commit writes it only once the stored
  // record would lag more than kSummaryLag messages (SummaryDeferred).
  void AppendToConversation(Txn& txn, const Conversation& c) {
    Txn::SummaryState& s = txn.summaries[ConvKey(c.id)];
    ++s.lag;
    s.current = c;
  }
  // Whether the commit of `txn` leaves conversation record `key` unwritten.
  static bool SummaryDeferred(const Txn& txn, const std::string& key) {
    auto it = txn.summaries.find(key);
    return it != txn.summaries.end() && !it->second.rewrite && it->second.lag != 0 &&
           it->second.lag <= kSummaryLag;
  }
  // Brings a stored record `c` up to date with the messages ordered after its
  // last_order, through `it` (a messages iterator); *lag: how many there
  // were. REQUIRES: db_mu_ held (shared).
  Status CatchUpConversation(Conversation* c, rocksdb::Iterator* it, uint32_t* lag);
  // Calls `visit` with each message of the conversation ordered after
  // `after`, oldest first, through `it` (a messages iterator). REQUIRES:
  // db_mu_ held (shared).
  Status ForEachMessageAfter(const std::string& conversation_id, const OrderKey& after,
                             rocksdb::Iterator* it,
                             const std::function<void(const MessageRecord&)>& visit);
  // The key and id of the conversation's newest message as of the txn (empty
  // key: none).
  Status NewestMessage(Txn& txn, const std::string& conversation_id, std::string* key,
                       std::string* id);
  // v4 -> v5: every record's last_order becomes its newest message's.
  Status RepairConversationOrder(Txn& txn);
  // v5 -> v6: every record becomes its summary, with its unread count.
  Status CountUnreadInRecords(Txn& txn);
  // Whether message `m`, stored at order `at`, is one of `c`'s unread: not
  // deleted, from someone else, after the local user's read marker.
  bool CountsAsUnread(const Conversation& c, const Message& m, const OrderKey& at) const;
  bool AfterReadMarker(const Conversation& c, const OrderKey& at) const;
  // How many of `c`'s messages ordered in (after, up_to] count as unread, as
  // of the txn (a read marker moving over them).
  Result<uint64_t> UnreadBetween(Txn& txn, const Conversation& c, const OrderKey& after,
                                 const OrderKey& up_to);
  void StoreMessage(Txn& txn, const std::string& key, const MessageRecord& r) {
    TxnPut(txn, kMessages, key, EncodeMessage(r));
  }
  // fresh_id: a new random id made by this call, which cannot exist yet nor
  // have operations waiting for it (saves two lookups per local send).
  // `created`, if given, receives the message a new send created.
  // send_seq: for a local send, the outbox entry that will carry it (see
  // OutboxRecord).
  Status Apply(Txn& txn, const Operation& op, bool remote, bool fresh_id = false,
               Message* created = nullptr, uint64_t send_seq = 0);
  // Apply's cases (apply.cc).
  Status ApplySend(Txn& txn, const Operation& op, bool remote, bool fresh_id, Message* created,
                   uint64_t send_seq);
  // A send of a message already here: a duplicate, or our own coming back.
  Status ApplyDuplicateSend(Txn& txn, const Operation& op, bool remote, MessageRecord& r,
                            const std::string& key);
  // Applies and removes the operations that arrived before message `r`,
  // whose IdKey is `prefix`.
  Status ApplyWaitingOps(Txn& txn, const std::string& prefix, bool fresh_id, MessageRecord& r);
  Status ApplyToMessage(Txn& txn, const Operation& op);  // edit, delete, (un)react
  Status ApplyReadMarker(Txn& txn, const Operation& op);
  bool ApplyToRecord(MessageRecord& r, const Operation& op);
  // A message whose hlc is beyond server time + drift moves to that position,
  // so the sender (who ordered it by its own fast clock) agrees with everyone.
  Status ClampToServerTime(Txn& txn, MessageRecord& r, const std::string& key,
                           uint64_t server_time_ms);
  // body_by_ref: the entry refers to the body of the message op created
  // (OutboxRecord).
  void AddToOutbox(Txn& txn, Operation op,
                   bool body_by_ref = false);             // REQUIRES: write_mu_
  void RemoveFromOutbox(Txn& txn, const OutboxEntry& e);  // REQUIRES: write_mu_
  // Before a message's body changes: if send entry `seq` still refers to it,
  // the entry gets its own copy of `body` (the body as sent).
  Status MaterializeOutboxBody(Txn& txn, uint64_t seq, std::string body);
  // Fills in the body of an entry that refers to its message, read as of
  // `ro` (the snapshot the entry was read at). REQUIRES: db_mu_ held shared.
  Status FillOutboxBody(OutboxRecord& r, const rocksdb::ReadOptions& ro);
  // At open: the clock and the outbox sequence also continue from the newest
  // outbox entry (local writes do not rewrite meta).
  Status RecoverHighWater();
  // nullopt if there is no entry `seq`; DataLoss if it does not decode. The
  // body of a by-reference entry stays empty (store it back as it is).
  Result<std::optional<OutboxRecord>> LoadOutbox(Txn& txn, uint64_t seq);
  // LoadOutbox for a change the caller asked for: NotFound if there is no
  // entry `seq`.
  Result<OutboxRecord> EntryToChange(Txn& txn, uint64_t seq);
  // EntryToChange for RetryFailed and DiscardFailed: FailedPrecondition
  // (ending in `hint`) unless the entry is parked as failed.
  Result<OutboxRecord> ParkedEntry(Txn& txn, uint64_t seq, std::string_view hint);
  // Writes back a changed entry (its seq) and tells listeners.
  void PutOutbox(Txn& txn, const OutboxRecord& r);
  // For a send entry whose message is in state `from`: moves it to `to` with
  // `reason` (kept only for kFailed). Other entries and states: no change.
  Status MoveSendState(Txn& txn, const OutboxEntry& e, MessageState from, MessageState to,
                       std::string_view reason);
  void PutClock(Txn& txn) {
    std::string v;
    PutFixed64BE(&v, clock_.Current());
    TxnPut(txn, kMeta, "hlc", v);
  }
  // Retention (retention.cc). The policies and watermarks as stored, loaded
  // once by writers (read-only instances read them every time).
  struct RetentionState;
  Result<std::shared_ptr<const RetentionState>> LoadRetention();
  // Everything of `conversation_id` at or below the returned key is purged
  // or due: the stored watermark, or the time policy's horizon now if later.
  Result<OrderKey> PurgeHorizon(const std::string& conversation_id);
  // For a remote send ordered at `order` (REQUIRES: write_mu_): true if it is
  // at or below its conversation's horizon; counts it skipped.
  Result<bool> SkipPurgedSend(Txn& txn, const std::string& conversation_id, const OrderKey& order);
  // For a remote edit, delete or (un)reaction whose message is absent: true if
  // that message was purged or the operation is at or below the horizon.
  Result<bool> SkipPurgedTarget(Txn& txn, const Operation& op);
  void CountSkipped(Txn& txn);  // REQUIRES: write_mu_
  // Removes one message record stored at `key` as a purge does (index entry,
  // purged mark, its send's outbox entry, the summary). REQUIRES: write_mu_.
  Status PurgeInTxn(Txn& txn, const MessageRecord& r, const std::string& key);
  // Commit for a write that changes the retention state to `state`.
  Status CommitRetention(Txn& txn, std::unique_lock<std::mutex>& write_lock,
                         std::shared_ptr<const RetentionState> state);
  // The purge's steps: the horizon a policy sets now, one conversation's
  // messages (chunked commits), outbox entries and parked operations.
  Result<OrderKey> DueHorizon(const std::string& conversation_id, const RetentionPolicy& p,
                              bool* due);
  Status PurgeConversation(const std::string& conversation_id, const OrderKey& horizon,
                           PurgeReport& report);
  Status PurgeReferences(PurgeReport& report);
  Status CompactPurged(const std::vector<std::string>& conversation_ids);
  // The search index (search_index.cc, search_build.cc, search.cc).
  struct SearchTotals {
    uint64_t messages = 0;  // messages indexed
    uint64_t terms = 0;     // their tokens, for BM25's average length
  };
  // Adds (or removes) the postings of message record `r` stored at `key`:
  // every change of a message's text, key or existence calls both, old
  // record out and new in. An add writes the message's tail record straight
  // to txn.batch; a removal deletes it, or rewrites the blocks of its fold.
  // REQUIRES: write_mu_.
  void IndexMessage(Txn& txn, const std::string& key, const MessageRecord& r, bool add);
  // Whether `key`'s postings are in the tail, counting the txn's changes.
  bool InSearchTail(const Txn& txn, const std::string& key) const;
  void RemoveFolded(Txn& txn, const std::string& key, const search_index::MessagePostings& m);
  // The in-memory tail follows a committed txn. REQUIRES: search_tail_mu_.
  void ApplySearchTail(Txn& txn);
  // After a commit: docs and ranks records it rewrote leave the block cache.
  void ForgetCachedIndexRecords(const Txn& txn);
  // The tail records at `ro` into `out`; a damaged one is DataLoss, or
  // skipped. REQUIRES: db_mu_ (shared).
  Status ReadSearchTail(const rocksdb::ReadOptions& ro, bool skip_damaged,
                        search_index::TailIndex* out);
  // The tail records into memory (a writer's open). REQUIRES: write_mu_ or
  // no writer yet.
  Status LoadSearchTail();
  // Once the tail holds StoreOptions::search_fold_every messages: its postings become blocks, in
  // one batch. REQUIRES: write_mu_.
  void FoldSearchTail();
  uint64_t NextFoldId();  // a fold id no fold with documents has
  // `r`'s postings by term hash; returns its token count (0: not indexed).
  size_t AnalyzePostings(const MessageRecord& r, search_index::MessagePostings* out) const;
  // Whether a record's text is in the index: not deleted, not failed, a
  // text/* body.
  static bool Indexed(const MessageRecord& r);
  // After a change of `r`'s state only: adds or removes its postings if that
  // moved it in or out of the index (was_indexed: Indexed before).
  void IndexStateChange(Txn& txn, const std::string& key, const MessageRecord& r, bool was_indexed);
  // From the state's cursor (resuming), or from nothing (the postings and
  // totals cleared first); commits every kBuildChunk messages.
  Status BuildSearchIndex(bool from_scratch, std::string cursor,
                          const std::function<void(uint64_t, uint64_t)>& progress);
  Status LoadSearchTotals();
  // Calls `visit` with each posting (key, plain value) of record `r` stored
  // at `key`; returns its token count (0 if not indexed).
  size_t ForEachPosting(
      const std::string& key, const MessageRecord& r,
      const std::function<void(const std::string&, const std::string&)>& visit) const;
  // Verify's check: the postings are exactly what the messages make.
  Status VerifySearchIndex(VerifyReport& report);
  // `c`'s unread messages, counted through `it` (a messages iterator): for
  // records older than schema v6. REQUIRES: db_mu_ held (shared).
  Result<uint64_t> CountUnread(const Conversation& c, rocksdb::Iterator* it);
  // Every conversation's summary, unsorted; as_stored: the records as they
  // are, not caught up with the messages (nor counted, if older than v6).
  Result<std::vector<Conversation>> AllConversations(bool as_stored = false);
  // Verify's steps (verify.cc): one record, then the indexes across records.
  struct VerifyScan;
  bool VerifyRecord(int cf, const std::string& key, std::string_view plain, VerifyScan& scan);
  static void CrossCheck(VerifyScan& scan);
  static void CheckCounts(const std::string& key, const Conversation& c, bool counted,
                          VerifyScan& scan);
  void CheckSearchIndex(VerifyScan& scan, const rocksdb::ReadOptions& ro);
  void CheckAttachments(VerifyScan& scan);
  // REQUIRES: write_mu_. `attachments`: the request's, imported.
  Result<Message> SendInTxn(Txn& txn, const SendRequest& req, std::vector<Attachment> attachments);
  Result<Message> LocalOp(const std::string& message_id, OpKind kind, std::string_view body,
                          const std::string& reaction);

  const std::string path_;
  StoreOptions options_;
  HybridClock clock_;
  std::string user_id_;
  uint64_t replica_id_ = 0;
  // Distinct for every StoreImpl of the process (see ConvKey).
  const uint64_t instance_id_ = [] {
    static std::atomic<uint64_t> next{1};
    return next.fetch_add(1);
  }();
  bool time_prefixed_ids_ = false;  // see IdKey; set once at open

  // Set from the header at open (InstallKeys).
  std::string db_dir_ = kDbDir;       // the database directory under path_
  std::string ad_prefix_;             // the store id, when record tags bind it
  crypto::SecretKey header_mac_key_;  // format 4: signs a header this store writes
  bool keep_data_key_ = false;        // a rekey needs the data key itself
  crypto::SecretKey data_key_;        // only when keep_data_key_
  std::unique_ptr<rocksdb::Env> env_;
  CorruptionWatch watch_;  // RocksDB's log and background errors; see ReadDone
  std::unique_ptr<crypto::RecordSealer> sealer_;
  crypto::SecretKey hash_key_;
  crypto::SecretKey fingerprint_key_;  // attachments' plaintext fingerprints
  AttachmentFiles attachment_files_{path_ + "/attachments"};
  std::mutex attachment_files_mu_;
  bool attachment_files_open_ = false;  // REQUIRES: attachment_files_mu_
  crypto::SecretKey backup_key_;        // backup files' stream key (backup.cc)
  bool siphash_keys_ = false;           // format 3: Hash16 is SipHash, else BLAKE2b
  mutable std::shared_mutex db_mu_;     // exclusive only to reopen (Refresh)
  rocksdb::DB* db_ = nullptr;
  // The blocks of every family, and the search index's authenticated docs
  // and ranks records (engine/search.cc), in one budget:
  // StoreOptions::block_cache_bytes. A commit that rewrites such a record
  // moves the epoch, then erases its cached copy.
  std::shared_ptr<rocksdb::Cache> block_cache_;
  std::atomic<uint64_t> search_cache_epoch_{0};
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  rocksdb::Options db_options_;

  std::mutex write_mu_;  // serializes read-modify-write of records
  // False while the pending family is known to be empty, which saves an
  // iterator per inserted message. Set before any waiting op is written.
  std::atomic<bool> may_have_waiting_ops_{true};
  uint64_t outbox_seq_ = 0;  // REQUIRES: write_mu_
  // Write-through cache of conversation records (plaintext, keyed like the
  // column family): every send reads and rewrites its conversation's record,
  // and reading it back from RocksDB and unsealing it was ~10% of a send.
  // Filled only by commits (under write_mu_), so it is never older than the
  // database; writers only (a read-only store sees another process's writes).
  // Holds the summaries (what readers derive), each with how many messages
  // its stored record lags behind.
  static constexpr size_t kSummaryCacheEntries = 16384;
  struct CachedSummary {
    std::string plain;
    uint32_t lag = 0;
  };
  std::mutex summary_cache_mu_;
  std::unordered_map<std::string, CachedSummary> summary_cache_;
  // Changed under write_mu_ too; the mutex lets readers skip write_mu_.
  mutable std::mutex outbox_backends_mu_;
  std::vector<std::string> outbox_backends_;  // sorted; see SetOutboxBackends

  // Group commit: writers write without sync under write_mu_, then one of
  // them syncs the WAL for everyone written so far.
  std::atomic<uint64_t> written_{0};
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  uint64_t synced_ = 0;   // REQUIRES: sync_mu_
  bool syncing_ = false;  // REQUIRES: sync_mu_
  Status sync_error_;     // REQUIRES: sync_mu_

  // The index: null family handle when a read-only open met a store made
  // before it. Totals change under write_mu_ (Commit).
  search::Analyzer analyzer_;
  bool search_enabled_ = true;             // false: StoreOptions::search_index off
  std::atomic<bool> search_ready_{false};  // the state record says complete
  bool building_ = false;                  // REQUIRES: write_mu_; a build runs, at build_cursor_
  std::string build_cursor_;               // REQUIRES: write_mu_; the last message key it indexed
  SearchTotals search_totals_;             // REQUIRES: write_mu_ (writers)
  // The writer's copy of the index's tail records. Exclusive: a commit that
  // changes them (the write and the copy change together); shared: a query
  // taking its snapshot and reading the copy. After write_mu_, before db_mu_.
  mutable std::shared_mutex search_tail_mu_;
  search_index::TailIndex search_tail_;  // REQUIRES: search_tail_mu_

  std::mutex retention_mu_;                          // after write_mu_, before db_mu_
  std::shared_ptr<const RetentionState> retention_;  // REQUIRES: retention_mu_; null: not loaded

  std::mutex listeners_mu_;
  std::map<uint64_t, Listener> listeners_;
  uint64_t next_token_ = 1;
};

}  // namespace tidings::engine
