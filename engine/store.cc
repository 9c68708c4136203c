// Store implementation over RocksDB. See engine/store.h for the contract and
// docs/engine.md for the on-disk format.
#include "engine/store.h"

#include <fcntl.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>

#include "crypto/hash.h"
#include "crypto/sealer.h"
#include "engine/codec.h"
#include "engine/encrypted_env.h"
#include "engine/hlc.h"

namespace tidings::engine {
namespace {

namespace fs = std::filesystem;

// v2: a local send's outbox entry may refer to its message's body, and
// message records may end with the sequence of that entry. v1 data is valid
// v2 data, so v1 stores open read-only too; v1 code refuses v2 stores.
constexpr uint32_t kSchemaVersion = 2;
constexpr uint32_t kOldestSchemaReadable = 1;
constexpr char kHeaderFile[] = "TIDINGS";
constexpr char kDbDir[] = "db";
constexpr char kHeaderMagic[8] = {'T', 'I', 'D', 'I', 'N', 'G', 'S', '1'};
constexpr char kKeyCheckAd[] = "tidings-key-check";
constexpr char kKeyCheckPlain[] = "tidings key check v1";
constexpr uint64_t kUnreadCap = 10000;

enum Cf : int {
  kDefault,
  kMessages,
  kById,
  kOutbox,
  kConversations,
  kCursors,
  kMeta,
  kPending,
  kNumCf
};
const char* const kCfNames[kNumCf] = {"default",       "messages", "by_id", "outbox",
                                      "conversations", "cursors",  "meta",  "pending"};

// ---------------------------------------------------------------------------
// Store header: plaintext, nothing secret, checksummed.

// Format 1: sealed records. Format 2 adds the record protection byte
// (BLAKE2b tags). Format 3: SipHash tags - older Tidings refuses it with
// "upgrade Tidings" instead of reading the byte as corruption.
struct Header {
  uint32_t format = 2;
  uint8_t key_kind = 0;  // crypto::KeySource::Kind
  crypto::PassphraseParams params;
  std::string key_check;  // sealed kKeyCheckPlain
  crypto::RecordProtection records = crypto::RecordProtection::kSealed;
};

std::string EncodeHeader(const Header& h) {
  std::string out(kHeaderMagic, sizeof(kHeaderMagic));
  Writer w(&out);
  w.Varint(h.format);
  w.U8(h.key_kind);
  w.Varint(h.params.ops_limit);
  w.Varint(h.params.mem_limit);
  w.Bytes(
      std::string_view(reinterpret_cast<const char*>(h.params.salt.data()), h.params.salt.size()));
  w.Bytes(h.key_check);
  if (h.format >= 2) w.U8(static_cast<uint8_t>(h.records));
  auto digest = crypto::Sha256(out);
  out.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return out;
}

Status DecodeHeader(std::string_view in, Header* h, const std::string& path) {
  Status corrupt = DataLoss("the store header " + path +
                            " is corrupt; restore the store from a backup or re-create it");
  if (in.size() < sizeof(kHeaderMagic) + 32) return corrupt;
  std::string_view body = in.substr(0, in.size() - 32);
  auto digest = crypto::Sha256(body);
  if (std::memcmp(digest.data(), in.data() + body.size(), 32) != 0) return corrupt;
  if (std::memcmp(body.data(), kHeaderMagic, sizeof(kHeaderMagic)) != 0) return corrupt;
  Reader r(body.substr(sizeof(kHeaderMagic)));
  uint64_t format, ops, mem;
  std::string salt;
  if (!r.Varint(&format) || !r.U8(&h->key_kind) || !r.Varint(&ops) || !r.Varint(&mem) ||
      !r.Bytes(&salt) || salt.size() != crypto::kSaltBytes || !r.Bytes(&h->key_check)) {
    return corrupt;
  }
  if (format < 1 || format > 3) {
    return FailedPrecondition("store format " + std::to_string(format) +
                              " is newer than this Tidings understands; upgrade Tidings");
  }
  h->records = crypto::RecordProtection::kSealed;
  if (format >= 2) {
    uint8_t records;
    if (!r.U8(&records) || records > (format == 2 ? 1 : 2)) return corrupt;
    h->records = static_cast<crypto::RecordProtection>(records);
  }
  h->format = static_cast<uint32_t>(format);
  h->params.ops_limit = ops;
  h->params.mem_limit = mem;
  std::memcpy(h->params.salt.data(), salt.data(), salt.size());
  return Status::Ok();
}

// Each record protection has its own sub-key.
crypto::Purpose RecordKeyPurpose(crypto::RecordProtection p) {
  switch (p) {
    case crypto::RecordProtection::kSealed:
      return crypto::Purpose::kRecordSeal;
    case crypto::RecordProtection::kAuthenticated:
      return crypto::Purpose::kRecordMac;
    case crypto::RecordProtection::kAuthenticatedSipHash:
      break;
  }
  return crypto::Purpose::kRecordMacSipHash;
}

Status WriteFileAtomically(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IOError("cannot create " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return IOError("cannot write " + tmp + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return IOError("cannot sync " + tmp + ": " + std::strerror(errno));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return IOError("cannot rename " + tmp + ": " + std::strerror(errno));
  }
  // Make the rename itself durable.
  const std::string dir = fs::path(path).parent_path().string();
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(path + " does not exist");
    return IOError("cannot open " + path + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return IOError("cannot read " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1 << 20)) break;
  }
  ::close(fd);
  return out;
}

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string detail = s.ToString();
  if (s.IsCorruption()) {
    return DataLoss(std::string(what) + ": the store's files are corrupt or were tampered with (" +
                    detail + "); run `tidings verify` and restore from a backup");
  }
  if (s.IsIOError() && detail.find("lock") != std::string::npos) {
    return Busy(std::string(what) +
                ": the store is open for writing in another process (a running daemon?); "
                "open it read-only or stop that process");
  }
  if (s.IsIOError() && detail.find("No space") != std::string::npos) {
    return ResourceExhausted(std::string(what) + ": the disk is full (" + detail + ")");
  }
  if (s.IsIOError()) return IOError(std::string(what) + ": " + detail);
  if (s.IsNotFound()) return NotFound(std::string(what) + ": " + detail);
  if (s.IsInvalidArgument()) return InvalidArgument(std::string(what) + ": " + detail);
  return Internal(std::string(what) + ": " + detail);
}

uint64_t SystemMillis() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// A RocksDB info logger that drops everything: RocksDB's LOG bypasses the
// file cipher and was seen to contain user keys in hex.
class NullLogger final : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};

// ---------------------------------------------------------------------------
// Records.

struct ReactionState {
  OrderKey at;
  bool present = false;
};

// A message plus the merge state the public struct does not show.
struct MessageRecord {
  Message m;
  std::map<std::pair<std::string, std::string>, ReactionState> reactions;  // (user, reaction)
  // The outbox entry of this local send while it may still refer to the body
  // here instead of carrying a copy (see OutboxRecord); 0 if none. May name an
  // entry already gone: readers check.
  uint64_t send_seq = 0;

  void RefreshVisibleReactions() {
    m.reactions.clear();
    for (const auto& [k, v] : reactions) {
      if (v.present) m.reactions.push_back(Reaction{k.first, k.second});
    }
    std::sort(m.reactions.begin(), m.reactions.end());
  }
};

constexpr uint8_t kRecordVersion = 1;

std::string EncodeMessage(const MessageRecord& r) {
  const Message& m = r.m;
  std::string out;
  out.reserve(96 + m.id.size() + m.conversation_id.size() + m.sender.size() + m.body.size() +
              m.content_type.size());  // grows on for metadata, reactions
  Writer w(&out);
  w.U8(kRecordVersion);
  w.Bytes(m.id);
  w.Bytes(m.conversation_id);
  w.Bytes(m.sender);
  w.Key(m.order);
  w.Bytes(m.body);
  w.Bytes(m.content_type);
  w.Map(m.metadata);
  w.U8(static_cast<uint8_t>(m.state));
  w.Bytes(m.failure_reason);
  w.Map(m.remote_ids);
  w.Varint(m.server_time_ms);
  w.Key(m.edited_at);
  w.U8(m.deleted ? 1 : 0);
  w.Varint(r.reactions.size());
  for (const auto& [k, v] : r.reactions) {
    w.Bytes(k.first);
    w.Bytes(k.second);
    w.Key(v.at);
    w.U8(v.present ? 1 : 0);
  }
  // Appended field (schema v2): records without it simply end here.
  if (r.send_seq != 0) w.Varint(r.send_seq);
  return out;
}

bool DecodeMessage(std::string_view in, MessageRecord* r) {
  Reader rd(in);
  Message& m = r->m;
  uint8_t version, state, deleted;
  uint64_t n;
  if (!rd.U8(&version) || version != kRecordVersion || !rd.Bytes(&m.id) ||
      !rd.Bytes(&m.conversation_id) || !rd.Bytes(&m.sender) || !rd.Key(&m.order) ||
      !rd.Bytes(&m.body) || !rd.Bytes(&m.content_type) || !rd.Map(&m.metadata) || !rd.U8(&state) ||
      state > 2 || !rd.Bytes(&m.failure_reason) || !rd.Map(&m.remote_ids) ||
      !rd.Varint(&m.server_time_ms) || !rd.Key(&m.edited_at) || !rd.U8(&deleted) ||
      !rd.Varint(&n) || n > in.size()) {
    return false;
  }
  m.state = static_cast<MessageState>(state);
  m.deleted = deleted != 0;
  r->reactions.clear();
  for (uint64_t i = 0; i < n; ++i) {
    std::string user, reaction;
    ReactionState st;
    uint8_t present;
    if (!rd.Bytes(&user) || !rd.Bytes(&reaction) || !rd.Key(&st.at) || !rd.U8(&present))
      return false;
    st.present = present != 0;
    r->reactions[{user, reaction}] = st;
  }
  r->send_seq = 0;
  if (!rd.done() && (!rd.Varint(&r->send_seq) || r->send_seq == 0)) return false;
  if (!rd.done()) return false;
  r->RefreshVisibleReactions();
  return true;
}

std::string EncodeConversation(const Conversation& c) {
  std::string out;
  out.reserve(128 + c.id.size() + c.title.size() + c.last_message_id.size());
  Writer w(&out);
  w.U8(kRecordVersion);
  w.Bytes(c.id);
  w.Bytes(c.title);
  w.Varint(c.members.size());
  for (const auto& m : c.members) w.Bytes(m);
  w.Key(c.last_order);
  w.Bytes(c.last_message_id);
  w.Varint(c.message_count);
  w.Varint(c.read_markers.size());
  for (const auto& [u, k] : c.read_markers) {
    w.Bytes(u);
    w.Key(k);
  }
  w.Map(c.remote_ids);
  return out;
}

bool DecodeConversation(std::string_view in, Conversation* c) {
  Reader r(in);
  uint8_t version;
  uint64_t n;
  if (!r.U8(&version) || version != kRecordVersion || !r.Bytes(&c->id) || !r.Bytes(&c->title) ||
      !r.Varint(&n) || n > in.size()) {
    return false;
  }
  c->members.resize(static_cast<size_t>(n));
  for (auto& m : c->members) {
    if (!r.Bytes(&m)) return false;
  }
  if (!r.Key(&c->last_order) || !r.Bytes(&c->last_message_id) || !r.Varint(&c->message_count) ||
      !r.Varint(&n) || n > in.size()) {
    return false;
  }
  c->read_markers.clear();
  for (uint64_t i = 0; i < n; ++i) {
    std::string u;
    OrderKey k;
    if (!r.Bytes(&u) || !r.Key(&k)) return false;
    c->read_markers[u] = k;
  }
  return r.Map(&c->remote_ids) && r.done();
}

// Names stored one per line (meta "outbox_backends").
std::vector<std::string> SplitNames(std::string_view joined) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < joined.size()) {
    size_t end = joined.find('\n', start);
    if (end == std::string_view::npos) end = joined.size();
    if (end > start) out.emplace_back(joined.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Whether `e` may leave the outbox: accepted by every required backend, or
// by any one when there is no fan-out. Both lists are sorted.
bool AckedByAll(const OutboxEntry& e, const std::vector<std::string>& required) {
  if (required.empty()) return !e.acked_by.empty();
  return std::includes(e.acked_by.begin(), e.acked_by.end(), required.begin(), required.end());
}

// An outbox entry as stored. A local send's entry normally does not copy the
// message body (half of a pending message's bytes): it refers to the body of
// the message record, which Apply keeps unchanged until the entry is gone or
// has been given its own copy (MaterializeOutboxBody, before any edit or
// delete of that message). Record version 2 marks such entries; the operation
// inside has an empty body, filled in by readers that hand the entry out.
struct OutboxRecord {
  OutboxEntry e;
  bool body_by_ref = false;
};

constexpr uint8_t kOutboxBodyByRef = 2;

std::string EncodeOutbox(const OutboxRecord& r) {
  const OutboxEntry& e = r.e;
  std::string out;
  Writer w(&out);
  w.U8(r.body_by_ref ? kOutboxBodyByRef : kRecordVersion);
  w.Bytes(EncodeOperation(e.op));
  w.Varint(e.attempts);
  w.Varint(static_cast<uint64_t>(e.next_attempt_ms));
  w.Bytes(e.last_error);
  w.U8(e.failed ? 1 : 0);
  // Appended field: entries written before fan-out existed simply end here.
  if (!e.acked_by.empty()) {
    w.Varint(e.acked_by.size());
    for (const auto& b : e.acked_by) w.Bytes(b);
  }
  return out;
}

bool DecodeOutbox(std::string_view in, OutboxRecord* out) {
  OutboxEntry* e = &out->e;
  Reader r(in);
  uint8_t version, failed;
  std::string op;
  uint64_t attempts, next;
  if (!r.U8(&version) || (version != kRecordVersion && version != kOutboxBodyByRef) ||
      !r.Bytes(&op) || !r.Varint(&attempts) || !r.Varint(&next) || !r.Bytes(&e->last_error) ||
      !r.U8(&failed) || !DecodeOperation(op, &e->op)) {
    return false;
  }
  out->body_by_ref = version == kOutboxBodyByRef;
  if (out->body_by_ref && (e->op.kind != OpKind::kSend || !e->op.body.empty())) return false;
  e->acked_by.clear();
  if (!r.done()) {
    uint64_t n;
    if (!r.Varint(&n) || n > 64) return false;
    e->acked_by.resize(n);
    for (auto& b : e->acked_by) {
      if (!r.Bytes(&b)) return false;
    }
    if (!r.done()) return false;
  }
  e->attempts = static_cast<uint32_t>(attempts);
  e->next_attempt_ms = static_cast<int64_t>(next);
  e->failed = failed != 0;
  return true;
}

Status ValidateId(std::string_view what, std::string_view id) {
  if (id.empty()) return InvalidArgument(std::string(what) + " is empty");
  if (id.size() > kMaxIdBytes) {
    return TooLarge(std::string(what) + " is " + std::to_string(id.size()) +
                    " bytes; the limit is " + std::to_string(kMaxIdBytes));
  }
  return Status::Ok();
}

Status ValidateContent(std::string_view body, const std::map<std::string, std::string>& metadata) {
  if (body.size() > kMaxBodyBytes) {
    return TooLarge("message body is " + std::to_string(body.size()) +
                    " bytes; the limit is 65536 bytes (64 KiB): split it or send it as an "
                    "attachment");
  }
  if (metadata.size() > kMaxMetadataEntries) {
    return TooLarge("message metadata has " + std::to_string(metadata.size()) +
                    " entries; the limit is " + std::to_string(kMaxMetadataEntries));
  }
  size_t bytes = 0;
  for (const auto& [k, v] : metadata) bytes += k.size() + v.size();
  if (bytes > kMaxMetadataBytes) {
    return TooLarge("message metadata is " + std::to_string(bytes) + " bytes; the limit is " +
                    std::to_string(kMaxMetadataBytes));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------

class StoreImpl;

// The writes of one local call or one merged page, applied atomically. Reads
// through a Txn see its own uncommitted writes.
struct Txn {
  rocksdb::WriteBatch batch;
  std::map<std::pair<int, std::string>, std::optional<std::string>> overlay;  // plaintext
  std::vector<ChangeEvent> events;
};

class StoreImpl final : public Store {
 public:
  StoreImpl(std::string path, StoreOptions options)
      : path_(std::move(path)),
        options_(std::move(options)),
        clock_(options_.wall_clock_ms ? options_.wall_clock_ms : SystemMillis,
               options_.max_clock_drift_ms) {}

  ~StoreImpl() override { CloseDb(); }

  Status Init(crypto::KeySource key);

  const std::string& user_id() const override { return user_id_; }
  uint64_t replica_id() const override { return replica_id_; }
  const std::string& path() const override { return path_; }

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
  Status PutSyncState(std::string_view key, std::string_view value) override;
  Result<std::string> GetSyncState(std::string_view key) override;
  Status SetConversationRemoteId(const std::string& conversation_id, std::string_view backend,
                                 std::string_view remote_id) override;

  uint64_t Subscribe(Listener listener) override;
  void Unsubscribe(uint64_t token) override;

  Result<StoreStats> Stats() override;
  Result<VerifyReport> Verify(std::function<void(uint64_t, uint64_t)> progress) override;
  Status ForEachMessage(std::function<Status(const Message&)> visit) override;
  Status Flush() override;
  Status Compact() override;
  Status Refresh() override;

 private:
  // Keys: ids never appear in RocksDB keys, only their keyed hashes.
  std::string Hash16(char domain, std::string_view data) const {
    std::string in(1, domain);
    in.append(data);
    auto h = siphash_keys_ ? crypto::SipHash16(hash_key_, in) : crypto::KeyedHash16(hash_key_, in);
    return std::string(reinterpret_cast<const char*>(h.data()), h.size());
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
  // Reuses *ad's capacity: read loops build one per record.
  static void AdInto(std::string* ad, int cf, std::string_view key) {
    ad->assign(kCfNames[cf]);
    ad->push_back('\0');
    ad->append(key);
  }

  // A snapshot for reads that must agree with each other (REQUIRES: db_mu_
  // held). Null for a read-only instance, which sees a fixed state anyway.
  std::unique_ptr<rocksdb::ManagedSnapshot> ConsistentView() const {
    if (options_.read_only) return nullptr;
    return std::make_unique<rocksdb::ManagedSnapshot>(db_);
  }

  Status OpenDb(bool create);
  void CloseDb();
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
  Status Commit(Txn& txn, std::unique_lock<std::mutex>& write_lock);
  // After a successful write (REQUIRES: write_mu_): the conversation records
  // it wrote become the cached ones.
  void CacheSummaries(const Txn& txn);
  Status WaitDurable(uint64_t ticket);
  void Notify(const std::vector<ChangeEvent>& events);

  Result<std::optional<MessageRecord>> LoadMessage(Txn& txn, const std::string& id,
                                                   std::string* msg_key);
  Result<Conversation> LoadConversation(Txn& txn, const std::string& id, bool* existed);
  void StoreConversation(Txn& txn, const Conversation& c) {
    TxnPut(txn, kConversations, ConvKey(c.id), EncodeConversation(c));
  }
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
  // For a send entry whose message is in state `from`: moves it to `to` with
  // `reason` (kept only for kFailed). Other entries and states: no change.
  Status MoveSendState(Txn& txn, const OutboxEntry& e, MessageState from, MessageState to,
                       std::string_view reason);
  void PutClock(Txn& txn) {
    std::string v;
    PutFixed64BE(&v, clock_.Current());
    TxnPut(txn, kMeta, "hlc", v);
  }
  Result<uint64_t> CountUnread(const Conversation& c);
  Result<Message> SendInTxn(Txn& txn, const SendRequest& req);  // REQUIRES: write_mu_
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

  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<crypto::RecordSealer> sealer_;
  crypto::SecretKey hash_key_;
  bool siphash_keys_ = false;        // format 3: Hash16 is SipHash, else BLAKE2b
  mutable std::shared_mutex db_mu_;  // exclusive only to reopen (Refresh)
  rocksdb::DB* db_ = nullptr;
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
  static constexpr size_t kSummaryCacheEntries = 16384;
  std::mutex summary_cache_mu_;
  std::unordered_map<std::string, std::string> summary_cache_;
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

  std::mutex listeners_mu_;
  std::map<uint64_t, Listener> listeners_;
  uint64_t next_token_ = 1;
};

// Migrations from schema version N to N+1, applied in order at open.
using Migration = std::function<Status(rocksdb::DB*, rocksdb::WriteBatch*)>;
std::vector<Migration>& Migrations() {
  static std::vector<Migration> migrations = {
      // v1 -> v2: nothing to rewrite, only the version moves on.
      [](rocksdb::DB*, rocksdb::WriteBatch*) { return Status::Ok(); },
  };
  return migrations;
}

Status StoreImpl::Init(crypto::KeySource key) {
  TIDINGS_RETURN_IF_ERROR(crypto::Init());
  const std::string header_path = path_ + "/" + kHeaderFile;
  bool exists = fs::exists(header_path);
  if (!exists && !options_.create_if_missing) {
    return NotFound("no Tidings store at " + path_ + "; create one with `tidings init`");
  }
  if (exists && options_.error_if_exists) {
    return AlreadyExists("a Tidings store already exists at " + path_);
  }
  if (key.kind() == crypto::KeySource::Kind::kNone) {
    return InvalidArgument("no key given: pass a key file, a passphrase or raw key bytes");
  }
  Header header;
  if (exists) {
    TIDINGS_ASSIGN_OR_RETURN(std::string raw, ReadFile(header_path));
    TIDINGS_RETURN_IF_ERROR(DecodeHeader(raw, &header, header_path));
    if (header.key_kind != static_cast<uint8_t>(key.kind())) {
      const char* want =
          header.key_kind == static_cast<uint8_t>(crypto::KeySource::Kind::kPassphrase)
              ? "a passphrase"
              : "a key (key file or raw key bytes)";
      if (!(header.key_kind != static_cast<uint8_t>(crypto::KeySource::Kind::kPassphrase) &&
            key.kind() != crypto::KeySource::Kind::kPassphrase)) {
        return WrongKey(std::string("this store is unlocked with ") + want);
      }
    }
  } else {
    if (options_.read_only) return NotFound("no Tidings store at " + path_);
    if (options_.user_id.empty()) return InvalidArgument("a new store needs the local user id");
    TIDINGS_RETURN_IF_ERROR(ValidateId("user id", options_.user_id));
    std::error_code ec;
    fs::create_directories(path_, ec);
    if (ec) return IOError("cannot create store directory " + path_ + ": " + ec.message());
    ::chmod(path_.c_str(), 0700);
    header.key_kind = static_cast<uint8_t>(key.kind() == crypto::KeySource::Kind::kPassphrase
                                               ? crypto::KeySource::Kind::kPassphrase
                                               : key.kind());
    if (key.kind() == crypto::KeySource::Kind::kPassphrase) {
      header.params = crypto::PassphraseParams::NewInteractive();
    }
    header.records = options_.record_protection;
    header.format = header.records == crypto::RecordProtection::kSealed          ? 1
                    : header.records == crypto::RecordProtection::kAuthenticated ? 2
                                                                                 : 3;
  }

  crypto::SecretKey master;
  switch (key.kind()) {
    case crypto::KeySource::Kind::kRaw: {
      TIDINGS_ASSIGN_OR_RETURN(master, key.raw().Clone());
      break;
    }
    case crypto::KeySource::Kind::kKeyFile: {
      TIDINGS_ASSIGN_OR_RETURN(master, crypto::LoadKeyFile(key.path()));
      break;
    }
    case crypto::KeySource::Kind::kPassphrase: {
      TIDINGS_ASSIGN_OR_RETURN(master,
                               crypto::DeriveFromPassphrase(key.passphrase(), header.params));
      break;
    }
    case crypto::KeySource::Kind::kNone:
      return InvalidArgument("no key given");
  }

  TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey check_key,
                           crypto::DeriveSubkey(master, crypto::Purpose::kKeyCheck));
  crypto::RecordSealer checker(std::move(check_key));
  if (exists) {
    auto opened = checker.Open(kKeyCheckAd, header.key_check);
    if (!opened.ok() || *opened != kKeyCheckPlain) {
      return WrongKey("the key does not open the store at " + path_ +
                      " (wrong key file or passphrase); nothing was changed");
    }
  } else {
    header.key_check = checker.Seal(kKeyCheckAd, kKeyCheckPlain);
  }

  TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey file_key,
                           crypto::DeriveSubkey(master, crypto::Purpose::kFileCipher));
  TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey seal_key,
                           crypto::DeriveSubkey(master, RecordKeyPurpose(header.records)));
  TIDINGS_ASSIGN_OR_RETURN(hash_key_, crypto::DeriveSubkey(master, crypto::Purpose::kKeyedHash));
  siphash_keys_ = header.records == crypto::RecordProtection::kAuthenticatedSipHash;
  sealer_ = std::make_unique<crypto::RecordSealer>(std::move(seal_key), header.records);
  env_ = NewXChaChaEnv(std::move(file_key));

  if (!exists) {
    // A database without a header is an interrupted creation (the header is
    // written last): nothing in it was ever acknowledged, start over.
    std::error_code ec;
    fs::remove_all(path_ + "/" + kDbDir, ec);
  } else if (!fs::exists(path_ + "/" + kDbDir + "/CURRENT")) {
    return DataLoss("the store at " + path_ + " has a header but no database files; restore it");
  }
  TIDINGS_RETURN_IF_ERROR(OpenDb(!exists));
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kPending]));
    it->SeekToFirst();
    may_have_waiting_ops_ = it->Valid() || !it->status().ok();
  }

  // Identity and schema.
  Txn txn;
  auto version = TxnRead(txn, kMeta, "schema_version");
  if (!version.ok()) return version.status();
  if (!exists || !version->has_value()) {
    if (options_.read_only) return DataLoss("the store at " + path_ + " has no schema version");
    if (options_.id_random) {
      options_.id_random(reinterpret_cast<uint8_t*>(&replica_id_), sizeof(replica_id_));
    } else {
      replica_id_ = crypto::RandomU64();
    }
    user_id_ = options_.user_id;
    std::string v, r;
    PutFixed64BE(&v, kSchemaVersion);
    PutFixed64BE(&r, replica_id_);
    TxnPut(txn, kMeta, "schema_version", v);
    TxnPut(txn, kMeta, "replica_id", r);
    TxnPut(txn, kMeta, "user_id", user_id_);
    TxnPut(txn, kMeta, "id_keys", "time-prefixed");
    time_prefixed_ids_ = true;
    {
      std::unique_lock<std::mutex> lock(write_mu_);
      TIDINGS_RETURN_IF_ERROR(Commit(txn, lock));
    }
    TIDINGS_RETURN_IF_ERROR(FromRocks(db_->SyncWAL(), "cannot sync the new store"));
    // The header goes last, atomically: its presence means "created".
    return WriteFileAtomically(header_path, EncodeHeader(header));
  }
  if ((*version)->size() != 8) return DataLoss("the store's schema version record is corrupt");
  uint64_t schema = GetFixed64BE((*version)->data());
  if (schema > kSchemaVersion) {
    return FailedPrecondition("the store has schema v" + std::to_string(schema) +
                              ", newer than this Tidings (v" + std::to_string(kSchemaVersion) +
                              "); upgrade Tidings");
  }
  if (options_.read_only && schema < kOldestSchemaReadable) {
    return FailedPrecondition("the store needs a schema upgrade; open it for writing once");
  }
  if (schema < kSchemaVersion && !options_.read_only) {
    for (uint64_t v = schema; v < kSchemaVersion; ++v) {
      rocksdb::WriteBatch batch;
      TIDINGS_RETURN_IF_ERROR(Migrations().at(static_cast<size_t>(v - 1))(db_, &batch));
      Txn mt;
      mt.batch = std::move(batch);
      std::string nv;
      PutFixed64BE(&nv, v + 1);
      TxnPut(mt, kMeta, "schema_version", nv);
      std::unique_lock<std::mutex> lock(write_mu_);
      TIDINGS_RETURN_IF_ERROR(Commit(mt, lock));
    }
  }
  auto replica = TxnRead(txn, kMeta, "replica_id");
  auto user = TxnRead(txn, kMeta, "user_id");
  if (!replica.ok()) return replica.status();
  if (!user.ok()) return user.status();
  if (!replica->has_value() || (*replica)->size() != 8 || !user->has_value()) {
    return DataLoss("the store's identity records are missing or corrupt");
  }
  replica_id_ = GetFixed64BE((*replica)->data());
  user_id_ = **user;
  auto hlc = TxnRead(txn, kMeta, "hlc");
  if (!hlc.ok()) return hlc.status();
  if (hlc->has_value() && (*hlc)->size() == 8) clock_.Restore(GetFixed64BE((*hlc)->data()));
  auto seq = TxnRead(txn, kMeta, "outbox_seq");
  if (!seq.ok()) return seq.status();
  if (seq->has_value() && (*seq)->size() == 8) outbox_seq_ = GetFixed64BE((*seq)->data());
  auto id_keys = TxnRead(txn, kMeta, "id_keys");
  if (!id_keys.ok()) return id_keys.status();
  time_prefixed_ids_ = id_keys->has_value() && **id_keys == "time-prefixed";
  auto fan_out = TxnRead(txn, kMeta, "outbox_backends");
  if (!fan_out.ok()) return fan_out.status();
  if (fan_out->has_value()) outbox_backends_ = SplitNames(**fan_out);
  return RecoverHighWater();
}

Status StoreImpl::OpenDb(bool create) {
  rocksdb::Options& o = db_options_;
  o.env = env_.get();
  o.create_if_missing = create;
  o.create_missing_column_families = !options_.read_only;
  o.info_log = std::make_shared<NullLogger>();
  o.recycle_log_file_num = 0;  // recycling rewrites a file under the same nonce
  o.keep_log_file_num = 1;
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  o.paranoid_checks = true;
  o.max_open_files = 256;
  o.max_background_jobs = 2;
  o.skip_stats_update_on_db_open = true;
  o.max_file_opening_threads = 1;  // a thread per column family per open otherwise

  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
  // 8 KiB blocks (before compression): the newest page of a conversation
  // (50 x ~450 bytes) is three or four blocks, so the default 32 MiB cache
  // holds the newest pages of ~1,000 conversations. With 16 KiB blocks the
  // same pages needed ~40 MiB and a page read missed the cache: p50 1.5x
  // slower, for 4% less disk.
  table.block_size = 8 << 10;
  table.whole_key_filtering = true;
  rocksdb::ColumnFamilyOptions cf_options(o);
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Authenticated values are plaintext inside the encrypted files, so blocks
  // compress (chat text ~2x) before the file cipher sees them; sealed values
  // are ciphertext and would only cost the compressor's time.
  cf_options.compression = rocksdb::kNoCompression;
  if (crypto::IsAuthenticatedOnly(sealer_->mode())) {
    for (auto c : rocksdb::GetSupportedCompressions()) {
      if (c == rocksdb::kLZ4Compression) cf_options.compression = c;
    }
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (int i = 0; i < kNumCf; ++i) {
    descs.emplace_back(kCfNames[i], cf_options);
    // Memtable insert hints: a send inserts next to the last key written with
    // the same prefix (the conversation's newest message and summary, the
    // newest outbox entry and id), so the skiplist search starts there
    // instead of at the top: appends 15-20% faster.
    size_t hint_prefix = 0;
    if (i == kMessages || i == kConversations) hint_prefix = 16;  // H(conversation)
    if (i == kById || i == kOutbox) hint_prefix = 4;              // high bytes of time / sequence
    if (hint_prefix != 0) {
      descs.back().options.memtable_insert_with_hint_prefix_extractor.reset(
          rocksdb::NewFixedPrefixTransform(hint_prefix));
    }
    // Every merged message first asks by_id whether it is a duplicate, and
    // the answer is almost always no: a Bloom filter over the memtable
    // answers that without searching the skiplist (SST files have theirs).
    if (i == kById) {
      descs.back().options.memtable_whole_key_filtering = true;
      descs.back().options.memtable_prefix_bloom_size_ratio = 0.02;
    }
  }
  const std::string db_path = path_ + "/" + kDbDir;
  rocksdb::Status s;
  if (options_.read_only) {
    s = rocksdb::DB::OpenForReadOnly(o, db_path, descs, &cfs_, &db_);
  } else if (create) {
    // One manifest write and one OPTIONS file for all families, instead of
    // one each: creating a store is 4x faster.
    std::vector<rocksdb::ColumnFamilyDescriptor> first(descs.begin(), descs.begin() + 1);
    s = rocksdb::DB::Open(o, db_path, first, &cfs_, &db_);
    if (s.ok()) {
      std::vector<rocksdb::ColumnFamilyHandle*> rest;
      s = db_->CreateColumnFamilies(
          std::vector<rocksdb::ColumnFamilyDescriptor>(descs.begin() + 1, descs.end()), &rest);
      cfs_.insert(cfs_.end(), rest.begin(), rest.end());
    }
  } else {
    s = rocksdb::DB::Open(o, db_path, descs, &cfs_, &db_);
  }
  if (!s.ok()) {
    CloseDb();
    return FromRocks(s, "cannot open the store at " + path_);
  }
  ::chmod(db_path.c_str(), 0700);
  if (!options_.read_only) {
    // Files of stores made before RocksDB's files were created 0600
    // (engine/encrypted_env.cc), or copied with looser modes, become private.
    const auto tighten = [](const fs::path& file) {
      struct stat st {};
      if (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
        ::chmod(file.c_str(), S_IRUSR | S_IWUSR);
      }
    };
    ::chmod(path_.c_str(), 0700);
    tighten(fs::path(path_) / kHeaderFile);
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(db_path, ec)) tighten(e.path());
  }
  return Status::Ok();
}

void StoreImpl::CloseDb() {
  if (db_ == nullptr) return;
  for (auto* h : cfs_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  cfs_.clear();
  db_->Close().PermitUncheckedError();
  delete db_;
  db_ = nullptr;
}

Result<std::optional<std::string>> StoreImpl::ReadSealed(int cf, const std::string& key) {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  return ReadSealedLocked(cf, key, rocksdb::ReadOptions());
}

Result<std::optional<std::string>> StoreImpl::ReadSealedLocked(int cf, const std::string& key,
                                                               const rocksdb::ReadOptions& ro) {
  std::string sealed;
  rocksdb::Status s = db_->Get(ro, cfs_[static_cast<size_t>(cf)], key, &sealed);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "read failed");
  auto plain = sealer_->Open(Ad(cf, key), sealed);
  if (!plain.ok()) {
    return DataLoss(std::string("a ") + kCfNames[cf] +
                    " record failed authentication (corrupt or tampered); run `tidings verify`");
  }
  return std::optional<std::string>(std::move(*plain));
}

Result<std::optional<std::string>> StoreImpl::TxnRead(Txn& txn, int cf, const std::string& key) {
  auto it = txn.overlay.find({cf, key});
  if (it != txn.overlay.end()) return it->second;
  if (cf == kConversations && !options_.read_only) {
    std::lock_guard<std::mutex> lock(summary_cache_mu_);
    auto hit = summary_cache_.find(key);
    if (hit != summary_cache_.end()) return std::optional<std::string>(hit->second);
  }
  return ReadSealed(cf, key);
}

// Writes are collected in the overlay (each key once, last value wins) and
// sealed into the WriteBatch at commit: a page that touches a conversation
// record a hundred times writes it once.
void StoreImpl::TxnPut(Txn& txn, int cf, const std::string& key, std::string plain) {
  txn.overlay[{cf, key}] = std::move(plain);
}

void StoreImpl::TxnDelete(Txn& txn, int cf, const std::string& key) {
  txn.overlay[{cf, key}] = std::nullopt;
}

Status StoreImpl::Commit(Txn& txn, std::unique_lock<std::mutex>& write_lock) {
  rocksdb::WriteOptions wo;
  wo.sync = false;
  rocksdb::Status s;
  {
    std::shared_lock<std::shared_mutex> lock(db_mu_);
    std::string sealed, ad;
    for (const auto& [where, value] : txn.overlay) {
      rocksdb::ColumnFamilyHandle* cf = cfs_[static_cast<size_t>(where.first)];
      if (value.has_value()) {
        sealed.clear();
        AdInto(&ad, where.first, where.second);
        sealer_->SealTo(ad, *value, &sealed);
        txn.batch.Put(cf, where.second, sealed).PermitUncheckedError();
      } else {
        txn.batch.Delete(cf, where.second).PermitUncheckedError();
      }
    }
    s = db_->Write(wo, &txn.batch);
  }
  if (!s.ok()) return FromRocks(s, "write failed");
  if (!options_.read_only) CacheSummaries(txn);
  const uint64_t ticket = written_.fetch_add(1) + 1;
  write_lock.unlock();
  if (options_.durability == Durability::kSync) TIDINGS_RETURN_IF_ERROR(WaitDurable(ticket));
  Notify(txn.events);
  return Status::Ok();
}

void StoreImpl::CacheSummaries(const Txn& txn) {
  std::lock_guard<std::mutex> lock(summary_cache_mu_);
  auto first = txn.overlay.lower_bound({kConversations, std::string()});
  for (auto it = first; it != txn.overlay.end() && it->first.first == kConversations; ++it) {
    if (!it->second.has_value()) {
      summary_cache_.erase(it->first.second);
      continue;
    }
    if (summary_cache_.size() >= kSummaryCacheEntries) summary_cache_.clear();
    summary_cache_[it->first.second] = *it->second;
  }
}

Status StoreImpl::WaitDurable(uint64_t ticket) {
  std::unique_lock<std::mutex> lock(sync_mu_);
  while (synced_ < ticket) {
    if (syncing_) {
      sync_cv_.wait(lock);
      continue;
    }
    syncing_ = true;
    const uint64_t target = written_.load();
    lock.unlock();
    rocksdb::Status s;
    {
      std::shared_lock<std::shared_mutex> db_lock(db_mu_);
      s = db_->SyncWAL();
    }
    lock.lock();
    syncing_ = false;
    if (s.ok()) {
      synced_ = std::max(synced_, target);
    } else {
      sync_error_ = FromRocks(s, "cannot sync the write-ahead log");
    }
    sync_cv_.notify_all();
    if (!s.ok()) return sync_error_;
  }
  return Status::Ok();
}

void StoreImpl::Notify(const std::vector<ChangeEvent>& events) {
  if (events.empty()) return;
  std::vector<Listener> listeners;
  {
    std::lock_guard<std::mutex> lock(listeners_mu_);
    for (auto& [token, l] : listeners_) listeners.push_back(l);
  }
  for (const auto& e : events) {
    for (auto& l : listeners) l(e);
  }
}

uint64_t StoreImpl::Subscribe(Listener listener) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  uint64_t token = next_token_++;
  listeners_[token] = std::move(listener);
  return token;
}

void StoreImpl::Unsubscribe(uint64_t token) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  listeners_.erase(token);
}

Result<std::optional<MessageRecord>> StoreImpl::LoadMessage(Txn& txn, const std::string& id,
                                                            std::string* msg_key) {
  TIDINGS_ASSIGN_OR_RETURN(auto loc, TxnRead(txn, kById, IdKey(id)));
  if (!loc.has_value()) return std::optional<MessageRecord>();
  TIDINGS_ASSIGN_OR_RETURN(auto value, TxnRead(txn, kMessages, *loc));
  MessageRecord rec;
  if (!value.has_value() || !DecodeMessage(*value, &rec) || rec.m.id != id) {
    return DataLoss(
        "the index entry of a message points to a missing or wrong record; run "
        "`tidings verify`");
  }
  if (msg_key != nullptr) *msg_key = *loc;
  return std::optional<MessageRecord>(std::move(rec));
}

Result<Conversation> StoreImpl::LoadConversation(Txn& txn, const std::string& id, bool* existed) {
  TIDINGS_ASSIGN_OR_RETURN(auto value, TxnRead(txn, kConversations, ConvKey(id)));
  Conversation c;
  if (!value.has_value()) {
    if (existed != nullptr) *existed = false;
    c.id = id;
    return c;
  }
  if (!DecodeConversation(*value, &c) || c.id != id) {
    return DataLoss("a conversation record is corrupt; run `tidings verify`");
  }
  if (existed != nullptr) *existed = true;
  return c;
}

// Applies one edit/delete/reaction to a message. Returns true if it changed.
// The rules are commutative and idempotent (DESIGN section 4).
bool StoreImpl::ApplyToRecord(MessageRecord& r, const Operation& op) {
  Message& m = r.m;
  switch (op.kind) {
    case OpKind::kEdit:
      if (op.author != m.sender || m.deleted || !(m.edited_at < op.at)) return false;
      m.body = op.body;
      if (!op.content_type.empty()) m.content_type = op.content_type;
      m.edited_at = op.at;
      return true;
    case OpKind::kDelete:
      if (op.author != m.sender || m.deleted) return false;
      m.deleted = true;
      m.body.clear();
      m.metadata.clear();
      m.edited_at = OrderKey{};  // the tombstone beats every edit, in any order
      return true;
    case OpKind::kReact:
    case OpKind::kUnreact: {
      auto& st = r.reactions[{op.author, op.reaction}];
      const bool present = op.kind == OpKind::kReact;
      if (!st.at.IsZero() && !(st.at < op.at)) return false;
      st.at = op.at;
      st.present = present;
      r.RefreshVisibleReactions();
      return true;
    }
    default:
      return false;
  }
}

// Where a message from a clock implausibly far ahead is ordered: at `millis`
// (server time + drift), then by its id's SHA-256 - 16 bits as the logical
// counter and 64 more as the replica. Every message of a batch the server
// accepted in one millisecond is clamped to the same millis, so 16 bits alone
// collided (a batch of 25: ~0.5%), and the later message overwrote the
// earlier one's record. Every replica computes the same key from the same
// server time and id.
OrderKey ClampedOrder(uint64_t millis, const std::string& id) {
  auto h = crypto::Sha256(id);
  const uint64_t replica = GetFixed64BE(reinterpret_cast<const char*>(h.data()) + 2);
  return OrderKey{(millis << 16) | (static_cast<uint64_t>(h[0]) << 8) | h[1], replica};
}

Status StoreImpl::ClampToServerTime(Txn& txn, MessageRecord& r, const std::string& key,
                                    uint64_t server_time_ms) {
  const uint64_t drift = clock_.max_drift_ms();
  if (server_time_ms == 0 || r.m.order.millis() <= server_time_ms + drift) return Status::Ok();
  r.m.order = ClampedOrder(server_time_ms + drift, r.m.id);
  const std::string new_key = MsgKey(r.m.conversation_id, r.m.order);
  TxnDelete(txn, kMessages, key);
  StoreMessage(txn, new_key, r);
  TxnPut(txn, kById, IdKey(r.m.id), new_key);
  TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, r.m.conversation_id, nullptr));
  if (c.last_message_id == r.m.id) {
    c.last_order = r.m.order;
    StoreConversation(txn, c);
  }
  txn.events.push_back({ChangeEvent::Kind::kMessageChanged, r.m.conversation_id, r.m.id});
  return Status::Ok();
}

Status StoreImpl::Apply(Txn& txn, const Operation& op, bool remote, bool fresh_id, Message* created,
                        uint64_t send_seq) {
  switch (op.kind) {
    case OpKind::kSend: {
      std::string key;
      std::optional<MessageRecord> existing;
      if (!fresh_id) {
        TIDINGS_ASSIGN_OR_RETURN(existing, LoadMessage(txn, op.message_id, &key));
      }
      if (existing.has_value()) {
        // Idempotent: a duplicate, or our own message coming back.
        MessageRecord& r = *existing;
        if (remote && r.m.state != MessageState::kSent) {
          r.m.state = MessageState::kSent;
          r.m.failure_reason.clear();
          if (r.m.server_time_ms == 0) r.m.server_time_ms = op.server_time_ms;
          StoreMessage(txn, key, r);
          txn.events.push_back(
              {ChangeEvent::Kind::kMessageStateChanged, r.m.conversation_id, r.m.id});
        }
        if (remote) TIDINGS_RETURN_IF_ERROR(ClampToServerTime(txn, r, key, op.server_time_ms));
        return Status::Ok();
      }
      MessageRecord r;
      Message& m = r.m;
      m.id = op.message_id;
      m.conversation_id = op.conversation_id;
      m.sender = op.author;
      m.order = op.at;
      // A remote hlc implausibly far ahead of the server's acceptance time is
      // ordered at server time + drift: deterministic, as every replica sees
      // the same server time.
      const uint64_t drift = clock_.max_drift_ms();
      if (remote && op.server_time_ms != 0 && op.at.millis() > op.server_time_ms + drift) {
        m.order = ClampedOrder(op.server_time_ms + drift, m.id);
      }
      m.body = op.body;
      m.content_type = op.content_type.empty() ? "text/plain" : op.content_type;
      m.metadata = op.metadata;
      m.state = remote ? MessageState::kSent : MessageState::kPending;
      m.server_time_ms = op.server_time_ms;
      if (!op.remote_id.empty()) m.remote_ids["origin"] = op.remote_id;

      // Operations that arrived before this message now apply.
      const std::string prefix = IdKey(m.id);
      std::vector<std::string> waiting_keys;
      if (!fresh_id && may_have_waiting_ops_.load(std::memory_order_relaxed)) {
        std::shared_lock<std::shared_mutex> lock(db_mu_);
        std::unique_ptr<rocksdb::Iterator> it(
            db_->NewIterator(rocksdb::ReadOptions(), cfs_[kPending]));
        for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
          waiting_keys.push_back(it->key().ToString());
        }
        if (!it->status().ok()) return FromRocks(it->status(), "read failed");
      }
      // Only the overlay's range for this prefix: a scan of the whole overlay
      // made a batch of n sends O(n^2).
      for (auto it = txn.overlay.lower_bound({kPending, prefix});
           it != txn.overlay.end() && it->first.first == kPending &&
           it->first.second.starts_with(prefix);
           ++it) {
        if (it->second.has_value()) waiting_keys.push_back(it->first.second);
      }
      std::sort(waiting_keys.begin(), waiting_keys.end());
      waiting_keys.erase(std::unique(waiting_keys.begin(), waiting_keys.end()), waiting_keys.end());
      for (const auto& wk : waiting_keys) {
        TIDINGS_ASSIGN_OR_RETURN(auto value, TxnRead(txn, kPending, wk));
        if (!value.has_value()) continue;
        Operation waiting;
        if (!DecodeOperation(*value, &waiting)) {
          return DataLoss("a waiting operation record is corrupt; run `tidings verify`");
        }
        ApplyToRecord(r, waiting);
        TxnDelete(txn, kPending, wk);
      }
      r.send_seq = send_seq;

      key = MsgKey(m.conversation_id, m.order);
      StoreMessage(txn, key, r);
      TxnPut(txn, kById, prefix, key);  // prefix == IdKey(m.id)
      bool existed = false;
      TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, m.conversation_id, &existed));
      if (!m.deleted) ++c.message_count;
      if (c.last_order < m.order) {
        c.last_order = m.order;
        c.last_message_id = m.id;
      }
      StoreConversation(txn, c);
      txn.events.push_back({ChangeEvent::Kind::kMessageAdded, m.conversation_id, m.id});
      if (created != nullptr) {
        r.RefreshVisibleReactions();  // as a read of the record would show it
        *created = m;
      }
      return Status::Ok();
    }
    case OpKind::kEdit:
    case OpKind::kDelete:
    case OpKind::kReact:
    case OpKind::kUnreact: {
      std::string key;
      TIDINGS_ASSIGN_OR_RETURN(auto existing, LoadMessage(txn, op.message_id, &key));
      if (!existing.has_value()) {
        // The target has not arrived yet: the operation waits for it.
        may_have_waiting_ops_.store(true, std::memory_order_relaxed);
        TxnPut(txn, kPending, IdKey(op.message_id) + Hash16('o', op.op_id), EncodeOperation(op));
        return Status::Ok();
      }
      MessageRecord& r = *existing;
      const bool was_deleted = r.m.deleted;
      if (r.send_seq != 0 && (op.kind == OpKind::kEdit || op.kind == OpKind::kDelete)) {
        // The send may still be in the outbox, referring to this body.
        std::string sent_body = r.m.body;
        if (!ApplyToRecord(r, op)) return Status::Ok();
        if (r.m.body != sent_body) {
          TIDINGS_RETURN_IF_ERROR(MaterializeOutboxBody(txn, r.send_seq, std::move(sent_body)));
          r.send_seq = 0;
        }
      } else if (!ApplyToRecord(r, op)) {
        return Status::Ok();
      }
      StoreMessage(txn, key, r);
      if (!was_deleted && r.m.deleted) {
        TIDINGS_ASSIGN_OR_RETURN(Conversation c,
                                 LoadConversation(txn, r.m.conversation_id, nullptr));
        if (c.message_count > 0) --c.message_count;
        StoreConversation(txn, c);
      }
      txn.events.push_back({ChangeEvent::Kind::kMessageChanged, r.m.conversation_id, r.m.id});
      return Status::Ok();
    }
    case OpKind::kReadMarker: {
      TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, op.conversation_id, nullptr));
      OrderKey& marker = c.read_markers[op.author];
      if (!(marker < op.read_up_to)) return Status::Ok();
      marker = op.read_up_to;
      StoreConversation(txn, c);
      txn.events.push_back({ChangeEvent::Kind::kConversationChanged, c.id, ""});
      return Status::Ok();
    }
  }
  return InvalidArgument("unknown operation kind");
}

Result<std::optional<OutboxRecord>> StoreImpl::LoadOutbox(Txn& txn, uint64_t seq) {
  TIDINGS_ASSIGN_OR_RETURN(auto value, TxnRead(txn, kOutbox, SeqKey(seq)));
  if (!value.has_value()) return std::optional<OutboxRecord>();
  OutboxRecord r;
  if (!DecodeOutbox(*value, &r))
    return DataLoss("an outbox record is corrupt; run `tidings verify`");
  r.e.seq = seq;
  return std::optional<OutboxRecord>(std::move(r));
}

Status StoreImpl::MaterializeOutboxBody(Txn& txn, uint64_t seq, std::string body) {
  TIDINGS_ASSIGN_OR_RETURN(auto entry, LoadOutbox(txn, seq));
  if (!entry.has_value() || !entry->body_by_ref) return Status::Ok();
  entry->e.op.body = std::move(body);
  entry->body_by_ref = false;
  TxnPut(txn, kOutbox, SeqKey(seq), EncodeOutbox(*entry));
  return Status::Ok();
}

Status StoreImpl::FillOutboxBody(OutboxRecord& r, const rocksdb::ReadOptions& ro) {
  if (!r.body_by_ref) return Status::Ok();
  const std::string& id = r.e.op.message_id;
  TIDINGS_ASSIGN_OR_RETURN(auto loc, ReadSealedLocked(kById, IdKey(id), ro));
  std::optional<std::string> value;
  if (loc.has_value()) {
    TIDINGS_ASSIGN_OR_RETURN(value, ReadSealedLocked(kMessages, *loc, ro));
  }
  MessageRecord rec;
  if (!value.has_value() || !DecodeMessage(*value, &rec) || rec.m.id != id ||
      rec.send_seq != r.e.seq) {
    return DataLoss(
        "an outbox entry refers to a message that is missing or changed; run `tidings verify`");
  }
  r.e.op.body = std::move(rec.m.body);
  r.body_by_ref = false;
  return Status::Ok();
}

Status StoreImpl::MoveSendState(Txn& txn, const OutboxEntry& e, MessageState from, MessageState to,
                                std::string_view reason) {
  if (e.op.kind != OpKind::kSend) return Status::Ok();
  std::string key;
  TIDINGS_ASSIGN_OR_RETURN(auto rec, LoadMessage(txn, e.op.message_id, &key));
  if (!rec.has_value() || rec->m.state != from) return Status::Ok();
  rec->m.state = to;
  rec->m.failure_reason = to == MessageState::kFailed ? std::string(reason) : std::string();
  StoreMessage(txn, key, *rec);
  txn.events.push_back(
      {ChangeEvent::Kind::kMessageStateChanged, rec->m.conversation_id, rec->m.id});
  return Status::Ok();
}

void StoreImpl::AddToOutbox(Txn& txn, Operation op, bool body_by_ref) {
  OutboxRecord r;
  r.e.seq = ++outbox_seq_;
  r.e.op = std::move(op);
  if (body_by_ref) {
    r.e.op.body.clear();
    r.body_by_ref = true;
  }
  // No meta write per entry: the newest entry is the high-water mark of both
  // the outbox sequence and the clock (see RecoverHighWater).
  TxnPut(txn, kOutbox, SeqKey(r.e.seq), EncodeOutbox(r));
  txn.events.push_back({ChangeEvent::Kind::kOutboxChanged, r.e.op.conversation_id, ""});
}

void StoreImpl::RemoveFromOutbox(Txn& txn, const OutboxEntry& e) {
  TxnDelete(txn, kOutbox, SeqKey(e.seq));
  txn.events.push_back({ChangeEvent::Kind::kOutboxChanged, e.op.conversation_id, ""});
  // The entry may be the newest: keep its marks in meta.
  PutClock(txn);
  std::string v;
  PutFixed64BE(&v, outbox_seq_);
  TxnPut(txn, kMeta, "outbox_seq", v);
}

Status StoreImpl::RecoverHighWater() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kOutbox]));
  it->SeekToLast();
  if (!it->status().ok()) return FromRocks(it->status(), "read failed");
  if (!it->Valid()) return Status::Ok();
  auto plain = sealer_->Open(Ad(kOutbox, it->key().ToString()), it->value().ToStringView());
  OutboxRecord r;
  if (!plain.ok() || it->key().size() != 8 || !DecodeOutbox(*plain, &r)) {
    return DataLoss("an outbox record failed authentication; run `tidings verify`");
  }
  outbox_seq_ = std::max(outbox_seq_, GetFixed64BE(it->key().data()));
  clock_.Restore(r.e.op.at.hlc);
  return Status::Ok();
}

Result<Conversation> StoreImpl::PutConversation(const std::string& id, const std::string& title,
                                                const std::vector<std::string>& members) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  TIDINGS_RETURN_IF_ERROR(ValidateId("conversation id", id));
  if (title.size() > 1024) return TooLarge("conversation title is over 1024 bytes");
  if (members.size() > 1000) return TooLarge("a conversation has at most 1000 members");
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, id, nullptr));
  c.title = title;
  c.members = members;
  StoreConversation(txn, c);
  txn.events.push_back({ChangeEvent::Kind::kConversationChanged, id, ""});
  TIDINGS_RETURN_IF_ERROR(Commit(txn, lock));
  return c;
}

Result<Message> StoreImpl::Send(const SendRequest& req) {
  TIDINGS_ASSIGN_OR_RETURN(auto sent, SendMany(std::span<const SendRequest>(&req, 1)));
  return std::move(sent.front());
}

Result<std::vector<Message>> StoreImpl::SendMany(std::span<const SendRequest> requests) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  if (requests.size() > 10000) return TooLarge("at most 10000 messages per batch");
  for (const auto& req : requests) {
    TIDINGS_RETURN_IF_ERROR(ValidateId("conversation id", req.conversation_id));
    TIDINGS_RETURN_IF_ERROR(ValidateContent(req.body, req.metadata));
    if (req.content_type.size() > 128) return TooLarge("content type is over 128 bytes");
    if (!req.message_id.empty()) TIDINGS_RETURN_IF_ERROR(ValidateId("message id", req.message_id));
  }
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  std::vector<Message> out;
  for (const auto& req : requests) {
    TIDINGS_ASSIGN_OR_RETURN(Message m, SendInTxn(txn, req));
    out.push_back(std::move(m));
  }
  TIDINGS_RETURN_IF_ERROR(Commit(txn, lock));
  return out;
}

Result<Message> StoreImpl::SendInTxn(Txn& txn, const SendRequest& req) {
  Operation op;
  op.kind = OpKind::kSend;
  op.at = OrderKey{clock_.Tick(), replica_id_};
  op.message_id =
      req.message_id.empty() ? NewMessageId(op.at.millis(), options_.id_random) : req.message_id;
  op.op_id = op.message_id;
  op.conversation_id = req.conversation_id;
  op.author = user_id_;
  op.body = req.body;
  op.content_type = req.content_type;
  op.metadata = req.metadata;
  if (!req.message_id.empty()) {
    TIDINGS_ASSIGN_OR_RETURN(auto existing, LoadMessage(txn, op.message_id, nullptr));
    if (existing.has_value()) return AlreadyExists("a message with this id already exists");
  }
  Message created;
  const uint64_t seq = outbox_seq_ + 1;  // the entry AddToOutbox writes next
  TIDINGS_RETURN_IF_ERROR(
      Apply(txn, op, /*remote=*/false, /*fresh_id=*/req.message_id.empty(), &created, seq));
  // The entry refers to the message's body unless operations that were
  // waiting for this id already changed it.
  const bool body_by_ref = !op.body.empty() && created.body == op.body;
  AddToOutbox(txn, std::move(op), body_by_ref);
  return created;
}

Result<Message> StoreImpl::LocalOp(const std::string& message_id, OpKind kind,
                                   std::string_view body, const std::string& reaction) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  TIDINGS_RETURN_IF_ERROR(ValidateId("message id", message_id));
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(auto existing, LoadMessage(txn, message_id, nullptr));
  if (!existing.has_value()) return NotFound("no message with this id in the store");
  const Message& m = existing->m;
  if ((kind == OpKind::kEdit || kind == OpKind::kDelete) && m.sender != user_id_) {
    return PermissionDenied("only the sender of a message can edit or delete it");
  }
  if (kind == OpKind::kEdit && m.deleted) {
    return FailedPrecondition("the message was deleted and can no longer be edited");
  }
  Operation op;
  op.kind = kind;
  op.at = OrderKey{clock_.Tick(), replica_id_};
  op.op_id = NewMessageId(op.at.millis(), options_.id_random);
  op.conversation_id = m.conversation_id;
  op.author = user_id_;
  op.message_id = message_id;
  op.body = std::string(body);
  if (kind == OpKind::kEdit) op.content_type = m.content_type;
  op.reaction = reaction;
  TIDINGS_RETURN_IF_ERROR(Apply(txn, op, /*remote=*/false));
  AddToOutbox(txn, op);
  TIDINGS_ASSIGN_OR_RETURN(auto rec, LoadMessage(txn, message_id, nullptr));
  TIDINGS_RETURN_IF_ERROR(Commit(txn, lock));
  return std::move(rec->m);
}

Result<Message> StoreImpl::Edit(const std::string& message_id, std::string_view new_body) {
  TIDINGS_RETURN_IF_ERROR(ValidateContent(new_body, {}));
  return LocalOp(message_id, OpKind::kEdit, new_body, "");
}

Status StoreImpl::Delete(const std::string& message_id) {
  return LocalOp(message_id, OpKind::kDelete, "", "").status();
}

Status StoreImpl::React(const std::string& message_id, const std::string& reaction, bool add) {
  if (reaction.empty() || reaction.size() > 64) {
    return InvalidArgument("a reaction must be 1 to 64 bytes");
  }
  return LocalOp(message_id, add ? OpKind::kReact : OpKind::kUnreact, "", reaction).status();
}

Status StoreImpl::MarkRead(const std::string& conversation_id, const OrderKey& up_to) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  TIDINGS_RETURN_IF_ERROR(ValidateId("conversation id", conversation_id));
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  bool existed = false;
  TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, conversation_id, &existed));
  if (!existed) return NotFound("no conversation with this id in the store");
  auto it = c.read_markers.find(user_id_);
  if (it != c.read_markers.end() && !(it->second < up_to)) return Status::Ok();  // never back
  Operation op;
  op.kind = OpKind::kReadMarker;
  op.at = OrderKey{clock_.Tick(), replica_id_};
  op.op_id = NewMessageId(op.at.millis(), options_.id_random);
  op.conversation_id = conversation_id;
  op.author = user_id_;
  op.read_up_to = up_to;
  TIDINGS_RETURN_IF_ERROR(Apply(txn, op, false));
  AddToOutbox(txn, op);
  return Commit(txn, lock);
}

Result<Message> StoreImpl::Get(const std::string& message_id) {
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(auto rec, LoadMessage(txn, message_id, nullptr));
  if (!rec.has_value()) return NotFound("no message with this id in the store");
  return std::move(rec->m);
}

Result<std::vector<Message>> StoreImpl::Page(const PageRequest& req) {
  TIDINGS_RETURN_IF_ERROR(ValidateId("conversation id", req.conversation_id));
  if (req.before && req.after) return InvalidArgument("give at most one of before and after");
  const std::string prefix = ConvKey(req.conversation_id);
  const size_t limit = std::min<size_t>(req.limit == 0 ? 50 : req.limit, 10000);
  std::vector<Message> out;
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kMessages]));
  out.reserve(std::min<size_t>(limit, 256));
  std::string ad, scratch;
  // One record, decoded into again and again; its message moves out each time
  // (DecodeMessage sets every field).
  MessageRecord rec;
  auto append = [&]() -> Status {
    AdInto(&ad, kMessages, it->key().ToStringView());
    auto plain = sealer_->OpenView(ad, it->value().ToStringView(), &scratch);
    if (!plain.ok() || !DecodeMessage(*plain, &rec)) {
      return DataLoss(
          "a message record failed authentication (corrupt or tampered); run "
          "`tidings verify`");
    }
    out.push_back(std::move(rec.m));
    return Status::Ok();
  };
  if (req.after) {
    const std::string start = prefix + req.after->Encode();
    for (it->Seek(start); it->Valid() && it->key().starts_with(prefix) && out.size() < limit;
         it->Next()) {
      if (it->key() == start) continue;
      TIDINGS_RETURN_IF_ERROR(append());
    }
  } else {
    const std::string end =
        req.before ? prefix + req.before->Encode() : prefix + std::string(16, '\xff');
    for (it->SeekForPrev(end); it->Valid() && it->key().starts_with(prefix) && out.size() < limit;
         it->Prev()) {
      if (req.before && it->key() == end) continue;
      TIDINGS_RETURN_IF_ERROR(append());
    }
    std::reverse(out.begin(), out.end());
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read failed");
  return out;
}

Result<uint64_t> StoreImpl::CountUnread(const Conversation& c) {
  OrderKey marker;
  if (auto it = c.read_markers.find(user_id_); it != c.read_markers.end()) marker = it->second;
  const std::string prefix = ConvKey(c.id);
  const std::string start = prefix + marker.Encode();
  uint64_t unread = 0;
  std::string ad, scratch;
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kMessages]));
  for (it->Seek(start); it->Valid() && it->key().starts_with(prefix) && unread < kUnreadCap;
       it->Next()) {
    if (it->key() == start) continue;
    AdInto(&ad, kMessages, it->key().ToStringView());
    auto plain = sealer_->OpenView(ad, it->value().ToStringView(), &scratch);
    MessageRecord rec;
    if (!plain.ok() || !DecodeMessage(*plain, &rec)) {
      return DataLoss("a message record failed authentication; run `tidings verify`");
    }
    if (!rec.m.deleted && rec.m.sender != user_id_) ++unread;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read failed");
  return unread;
}

Result<Conversation> StoreImpl::GetConversation(const std::string& id) {
  TIDINGS_RETURN_IF_ERROR(ValidateId("conversation id", id));
  Txn txn;
  bool existed = false;
  TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, id, &existed));
  if (!existed) return NotFound("no conversation with this id in the store");
  TIDINGS_ASSIGN_OR_RETURN(c.unread_count, CountUnread(c));
  return c;
}

Result<std::vector<Conversation>> StoreImpl::Conversations(size_t limit) {
  std::vector<Conversation> all;
  {
    std::shared_lock<std::shared_mutex> lock(db_mu_);
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cfs_[kConversations]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto plain =
          sealer_->Open(Ad(kConversations, it->key().ToString()), it->value().ToStringView());
      Conversation c;
      if (!plain.ok() || !DecodeConversation(*plain, &c)) {
        return DataLoss("a conversation record failed authentication; run `tidings verify`");
      }
      all.push_back(std::move(c));
    }
    if (!it->status().ok()) return FromRocks(it->status(), "read failed");
  }
  std::sort(all.begin(), all.end(), [](const Conversation& a, const Conversation& b) {
    if (a.last_order != b.last_order) return b.last_order < a.last_order;
    return a.id < b.id;
  });
  if (limit != 0 && all.size() > limit) all.resize(limit);
  for (auto& c : all) {
    TIDINGS_ASSIGN_OR_RETURN(c.unread_count, CountUnread(c));
  }
  return all;
}

Result<std::vector<OutboxEntry>> StoreImpl::Outbox(size_t limit, const std::string& conversation_id,
                                                   std::string_view unacked_by) {
  return ScanOutbox(limit, conversation_id, unacked_by, /*with_bodies=*/true);
}

Result<std::vector<OutboxEntry>> StoreImpl::ScanOutbox(size_t limit,
                                                       const std::string& conversation_id,
                                                       std::string_view unacked_by,
                                                       bool with_bodies) {
  std::vector<OutboxEntry> out;
  TIDINGS_RETURN_IF_ERROR(
      VisitOutbox(conversation_id, unacked_by, with_bodies, [&](OutboxEntry&& e) {
        out.push_back(std::move(e));
        return limit == 0 || out.size() < limit;
      }));
  return out;
}

Result<OutboxCounts> StoreImpl::CountOutbox(const std::string& conversation_id,
                                            std::string_view unacked_by, uint64_t limit) {
  OutboxCounts counts;
  TIDINGS_RETURN_IF_ERROR(
      VisitOutbox(conversation_id, unacked_by, /*with_bodies=*/false, [&](OutboxEntry&& e) {
        ++(e.failed ? counts.failed : counts.pending);
        return limit == 0 || counts.total() < limit;
      }));
  return counts;
}

Status StoreImpl::VisitOutbox(const std::string& conversation_id, std::string_view unacked_by,
                              bool with_bodies, const std::function<bool(OutboxEntry&&)>& visit) {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  // Entries and the message bodies they refer to are read at one snapshot:
  // a concurrent edit gives the entry its own copy of the body in the same
  // batch that changes the message.
  auto snapshot = ConsistentView();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot ? snapshot->snapshot() : nullptr;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kOutbox]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto plain = sealer_->Open(Ad(kOutbox, it->key().ToString()), it->value().ToStringView());
    OutboxRecord r;
    if (!plain.ok() || it->key().size() != 8 || !DecodeOutbox(*plain, &r)) {
      return DataLoss("an outbox record failed authentication; run `tidings verify`");
    }
    OutboxEntry& e = r.e;
    e.seq = GetFixed64BE(it->key().data());
    if (!conversation_id.empty() && e.op.conversation_id != conversation_id) continue;
    if (!unacked_by.empty() && std::binary_search(e.acked_by.begin(), e.acked_by.end(), unacked_by))
      continue;
    if (with_bodies) TIDINGS_RETURN_IF_ERROR(FillOutboxBody(r, ro));
    if (!visit(std::move(e))) return Status::Ok();
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read failed");
  return Status::Ok();
}

Result<OutboxEntry> StoreImpl::GetOutboxEntry(uint64_t seq) {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  auto snapshot = ConsistentView();  // the entry and the body it refers to
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot ? snapshot->snapshot() : nullptr;
  TIDINGS_ASSIGN_OR_RETURN(auto plain, ReadSealedLocked(kOutbox, SeqKey(seq), ro));
  if (!plain.has_value()) {
    return NotFound("no outbox entry " + std::to_string(seq) +
                    " (it was sent or discarded; `tidings outbox` lists what is left)");
  }
  OutboxRecord r;
  if (!DecodeOutbox(*plain, &r)) {
    return DataLoss("an outbox record is corrupt; run `tidings verify`");
  }
  r.e.seq = seq;
  TIDINGS_RETURN_IF_ERROR(FillOutboxBody(r, ro));
  return std::move(r.e);
}

Status StoreImpl::SetOutboxBackends(std::vector<std::string> backend_names) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::sort(backend_names.begin(), backend_names.end());
  backend_names.erase(std::unique(backend_names.begin(), backend_names.end()), backend_names.end());
  for (const auto& name : backend_names) {
    if (name.empty() || name.find('\n') != std::string::npos || name.size() > kMaxIdBytes)
      return InvalidArgument("a backend name must be 1-128 bytes without newlines");
  }
  // Entries already accepted by every backend of the new list are done.
  TIDINGS_ASSIGN_OR_RETURN(auto outbox, ScanOutbox(0, "", "", /*with_bodies=*/false));
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  for (const auto& e : outbox) {
    if (!e.acked_by.empty() && AckedByAll(e, backend_names)) RemoveFromOutbox(txn, e);
  }
  std::string joined;
  for (const auto& name : backend_names) joined += name + "\n";
  TxnPut(txn, kMeta, "outbox_backends", joined);
  {
    std::lock_guard<std::mutex> guard(outbox_backends_mu_);
    outbox_backends_ = backend_names;
  }
  return Commit(txn, lock);
}

Status StoreImpl::AckOutbox(uint64_t seq, const RemoteAck& ack) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(auto entry, LoadOutbox(txn, seq));
  if (!entry.has_value()) return Status::Ok();  // already acknowledged
  OutboxEntry& e = entry->e;
  auto at = std::lower_bound(e.acked_by.begin(), e.acked_by.end(), ack.backend);
  if (at == e.acked_by.end() || *at != ack.backend) e.acked_by.insert(at, ack.backend);
  const bool done = AckedByAll(e, OutboxBackends());
  if (done) {
    RemoveFromOutbox(txn, e);
  } else {  // fan-out: the other backends still have to accept it
    e.attempts = 0;
    e.next_attempt_ms = 0;
    e.last_error.clear();
    TxnPut(txn, kOutbox, SeqKey(seq), EncodeOutbox(*entry));
    txn.events.push_back({ChangeEvent::Kind::kOutboxChanged, e.op.conversation_id, ""});
  }
  if (e.op.kind == OpKind::kSend) {
    std::string key;
    TIDINGS_ASSIGN_OR_RETURN(auto rec, LoadMessage(txn, e.op.message_id, &key));
    if (rec.has_value()) {
      rec->m.state = MessageState::kSent;
      rec->m.failure_reason.clear();
      if (!ack.remote_id.empty()) rec->m.remote_ids[ack.backend] = ack.remote_id;
      if (rec->m.server_time_ms == 0) rec->m.server_time_ms = ack.server_time_ms;
      if (done && rec->send_seq == seq) rec->send_seq = 0;  // nothing refers to it now
      StoreMessage(txn, key, *rec);
      TIDINGS_RETURN_IF_ERROR(ClampToServerTime(txn, *rec, key, ack.server_time_ms));
      txn.events.push_back(
          {ChangeEvent::Kind::kMessageStateChanged, rec->m.conversation_id, rec->m.id});
    }
  }
  if (ack.server_time_ms != 0) clock_.Observe(ack.server_time_ms << 16);
  return Commit(txn, lock);
}

Status StoreImpl::FailOutbox(uint64_t seq, std::string_view reason, bool permanent,
                             int64_t next_attempt_ms) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(auto entry, LoadOutbox(txn, seq));
  if (!entry.has_value()) return NotFound("no outbox entry " + std::to_string(seq));
  OutboxEntry& e = entry->e;
  e.attempts++;
  e.last_error = std::string(reason.substr(0, 512));
  // With fan-out each backend's reconciler keeps its own backoff; a shared
  // per-entry time would let one backend's outage hold back the others.
  e.next_attempt_ms = OutboxBackends().empty() ? next_attempt_ms : 0;
  e.failed = permanent;
  TxnPut(txn, kOutbox, SeqKey(seq), EncodeOutbox(*entry));
  txn.events.push_back({ChangeEvent::Kind::kOutboxChanged, e.op.conversation_id, ""});
  if (permanent) {
    TIDINGS_RETURN_IF_ERROR(
        MoveSendState(txn, e, MessageState::kPending, MessageState::kFailed, e.last_error));
  }
  return Commit(txn, lock);
}

Status StoreImpl::RetryFailed(uint64_t seq) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(auto entry, LoadOutbox(txn, seq));
  if (!entry.has_value()) return NotFound("no outbox entry " + std::to_string(seq));
  OutboxEntry& e = entry->e;
  if (!e.failed)
    return FailedPrecondition("outbox entry " + std::to_string(seq) + " has not failed");
  e.failed = false;
  e.next_attempt_ms = 0;
  e.attempts = 0;
  TxnPut(txn, kOutbox, SeqKey(seq), EncodeOutbox(*entry));
  txn.events.push_back({ChangeEvent::Kind::kOutboxChanged, e.op.conversation_id, ""});
  TIDINGS_RETURN_IF_ERROR(MoveSendState(txn, e, MessageState::kFailed, MessageState::kPending, ""));
  return Commit(txn, lock);
}

Status StoreImpl::DiscardFailed(uint64_t seq) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(auto entry, LoadOutbox(txn, seq));
  if (!entry.has_value()) return NotFound("no outbox entry " + std::to_string(seq));
  OutboxEntry& e = entry->e;
  if (!e.failed) {
    return FailedPrecondition("outbox entry " + std::to_string(seq) +
                              " has not failed; only failed entries can be discarded");
  }
  RemoveFromOutbox(txn, e);
  return Commit(txn, lock);
}

Result<std::string> StoreImpl::GetCursor(std::string_view backend,
                                         const std::string& conversation_id) {
  std::string k(backend);
  k.push_back('\0');
  k.append(conversation_id);
  TIDINGS_ASSIGN_OR_RETURN(auto value, ReadSealed(kCursors, Hash16('k', k)));
  return value.value_or("");
}

Status StoreImpl::Merge(std::string_view backend, const std::string& conversation_id,
                        std::span<const Operation> ops, std::string_view new_cursor) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  TIDINGS_RETURN_IF_ERROR(ValidateId("conversation id", conversation_id));
  for (const auto& op : ops) {
    if (op.kind != OpKind::kReadMarker) {
      TIDINGS_RETURN_IF_ERROR(ValidateId("remote message id", op.message_id));
    }
    TIDINGS_RETURN_IF_ERROR(ValidateId("remote operation id", op.op_id));
    TIDINGS_RETURN_IF_ERROR(ValidateId("remote author", op.author));
    TIDINGS_RETURN_IF_ERROR(ValidateContent(op.body, op.metadata));
    if (!op.conversation_id.empty() && op.conversation_id != conversation_id) {
      return InvalidArgument("a remote operation belongs to another conversation");
    }
  }
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  for (const auto& in : ops) {
    Operation op = in;
    op.conversation_id = conversation_id;
    clock_.Observe(op.at.hlc);
    TIDINGS_RETURN_IF_ERROR(Apply(txn, op, /*remote=*/true));
  }
  std::string k(backend);
  k.push_back('\0');
  k.append(conversation_id);
  TxnPut(txn, kCursors, Hash16('k', k), std::string(new_cursor));
  PutClock(txn);
  return Commit(txn, lock);
}

Status StoreImpl::PutSyncState(std::string_view key, std::string_view value) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  TxnPut(txn, kCursors, Hash16('s', key), std::string(value));
  return Commit(txn, lock);
}

Result<std::string> StoreImpl::GetSyncState(std::string_view key) {
  TIDINGS_ASSIGN_OR_RETURN(auto value, ReadSealed(kCursors, Hash16('s', key)));
  return value.value_or("");
}

Status StoreImpl::SetConversationRemoteId(const std::string& conversation_id,
                                          std::string_view backend, std::string_view remote_id) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, conversation_id, nullptr));
  c.remote_ids[std::string(backend)] = std::string(remote_id);
  StoreConversation(txn, c);
  return Commit(txn, lock);
}

Result<StoreStats> StoreImpl::Stats() {
  StoreStats st;
  st.schema_version = kSchemaVersion;
  st.replica_id = replica_id_;
  st.user_id = user_id_;
  {
    std::shared_lock<std::shared_mutex> lock(db_mu_);
    auto count = [&](int cf) -> Result<uint64_t> {
      uint64_t n = 0;
      std::unique_ptr<rocksdb::Iterator> it(
          db_->NewIterator(rocksdb::ReadOptions(), cfs_[static_cast<size_t>(cf)]));
      for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
      if (!it->status().ok()) return FromRocks(it->status(), "read failed");
      return n;
    };
    TIDINGS_ASSIGN_OR_RETURN(st.messages, count(kMessages));
    TIDINGS_ASSIGN_OR_RETURN(st.conversations, count(kConversations));
  }
  TIDINGS_ASSIGN_OR_RETURN(auto outbox, CountOutbox("", "", 0));
  st.outbox = outbox.total();
  st.outbox_failed = outbox.failed;
  std::error_code ec;
  for (auto& entry : fs::recursive_directory_iterator(path_, ec)) {
    if (entry.is_regular_file(ec)) st.disk_bytes += entry.file_size(ec);
  }
  return st;
}

Result<VerifyReport> StoreImpl::Verify(std::function<void(uint64_t, uint64_t)> progress) {
  VerifyReport report;
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  uint64_t total = 0;
  for (int cf = 1; cf < kNumCf; ++cf) {
    uint64_t n = 0;
    db_->GetIntProperty(cfs_[static_cast<size_t>(cf)], "rocksdb.estimate-num-keys", &n);
    total += n;
  }
  auto problem = [&](std::string detail) {
    report.problems++;
    if (report.details.size() < 100) report.details.push_back(std::move(detail));
  };
  std::map<std::string, std::string> indexed;            // by_id key -> message key, as stored
  std::map<std::string, std::string> expected;           // IdKey(message id) -> its message key
  std::map<std::string, uint64_t> message_keys;          // -> the send entry it may back
  std::vector<std::pair<std::string, uint64_t>> by_ref;  // (by_id key, seq) of such entries
  // One snapshot, so records written while verifying do not look inconsistent.
  auto snapshot = ConsistentView();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot ? snapshot->snapshot() : nullptr;
  ro.verify_checksums = true;
  ro.fill_cache = false;
  for (int cf = 1; cf < kNumCf; ++cf) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[static_cast<size_t>(cf)]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      report.records_checked++;
      if (progress && report.records_checked % 1024 == 0) progress(report.records_checked, total);
      const std::string key = it->key().ToString();
      auto plain = sealer_->Open(Ad(cf, key), it->value().ToStringView());
      const std::string where =
          std::string(kCfNames[cf]) + " record " +
          crypto::HexEncode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(key.data()),
                                                     std::min<size_t>(key.size(), 32)));
      if (!plain.ok()) {
        problem(where + ": failed authentication");
        continue;
      }
      bool ok = true;
      switch (cf) {
        case kMessages: {
          MessageRecord rec;
          ok = DecodeMessage(*plain, &rec) && key == MsgKey(rec.m.conversation_id, rec.m.order);
          if (ok && rec.m.id.empty()) ok = false;
          if (ok) {
            message_keys.emplace(key, rec.send_seq);
            expected.emplace(IdKey(rec.m.id), key);
          }
          break;
        }
        case kById:
          indexed[key] = *plain;
          break;
        case kOutbox: {
          OutboxRecord r;
          ok = key.size() == 8 && DecodeOutbox(*plain, &r);
          if (ok && r.body_by_ref)
            by_ref.emplace_back(IdKey(r.e.op.message_id), GetFixed64BE(key.data()));
          break;
        }
        case kConversations: {
          Conversation c;
          ok = DecodeConversation(*plain, &c) && key == ConvKey(c.id);
          break;
        }
        case kPending: {
          Operation op;
          ok = DecodeOperation(*plain, &op);
          break;
        }
        default:
          break;
      }
      if (!ok) problem(where + ": undecodable or misplaced record");
    }
    if (!it->status().ok()) {
      problem(std::string(kCfNames[cf]) + ": " + it->status().ToString());
    }
  }
  // Cross-check the by-id index against the messages.
  auto hex = [](const std::string& bytes) {
    return crypto::HexEncode(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  };
  for (const auto& [id_key, msg_key] : expected) {
    auto entry = indexed.find(id_key);
    if (entry == indexed.end()) {
      problem("message " + hex(id_key) + ": missing from the by-id index");
    } else if (entry->second != msg_key) {
      problem("by-id entry " + hex(id_key) + ": points to another message's key");
    }
  }
  for (const auto& [id_key, msg_key] : indexed) {
    if (message_keys.count(msg_key) == 0) {
      problem("by-id entry " + hex(id_key) + ": points to a missing message");
    }
  }
  // An outbox entry that refers to its message's body needs that message,
  // still marked as backing it.
  for (const auto& [id_key, seq] : by_ref) {
    auto loc = expected.find(id_key);
    auto msg = loc == expected.end() ? message_keys.end() : message_keys.find(loc->second);
    if (msg == message_keys.end() || msg->second != seq) {
      problem("outbox entry " + std::to_string(seq) +
              ": refers to the body of a message that is missing or was changed");
    }
  }
  if (progress) progress(report.records_checked, std::max(total, report.records_checked));
  return report;
}

Status StoreImpl::ForEachMessage(std::function<Status(const Message&)> visit) {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kMessages]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto plain = sealer_->Open(Ad(kMessages, it->key().ToString()), it->value().ToStringView());
    MessageRecord rec;
    if (!plain.ok() || !DecodeMessage(*plain, &rec)) {
      return DataLoss("a message record failed authentication; run `tidings verify`");
    }
    TIDINGS_RETURN_IF_ERROR(visit(rec.m));
  }
  return FromRocks(it->status(), "read failed");
}

Status StoreImpl::Flush() {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  rocksdb::FlushOptions fo;
  return FromRocks(db_->Flush(fo, cfs_), "flush failed");
}

Status StoreImpl::Compact() {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  for (auto* h : cfs_) {
    TIDINGS_RETURN_IF_ERROR(
        FromRocks(db_->CompactRange(rocksdb::CompactRangeOptions(), h, nullptr, nullptr),
                  "compaction failed"));
  }
  return Status::Ok();
}

Status StoreImpl::Refresh() {
  if (!options_.read_only) return Status::Ok();  // a writer always sees its own writes
  std::unique_lock<std::shared_mutex> lock(db_mu_);
  CloseDb();
  return OpenDb(false);
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, crypto::KeySource key,
                                           const StoreOptions& options) {
  if (path.empty()) return InvalidArgument("no store path given (use --store or TIDINGS_STORE)");
  auto store = std::make_unique<StoreImpl>(path, options);
  TIDINGS_RETURN_IF_ERROR(store->Init(std::move(key)));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace tidings::engine
