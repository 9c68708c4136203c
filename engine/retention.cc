// Retention: the policies (local configuration in the meta family), the
// purge of what they no longer keep, and the per-conversation purge
// watermarks that keep purged messages from coming back through a merge.
//
// Meta keys (values sealed like every record):
//   "retention"                 the store-wide policy
//   "retention:" + ConvKey      a conversation's policy, with its id
//   kWatermarkPrefix + ConvKey  the conversation's watermark (OrderKey)
//   kPurgedPrefix + IdKey       a purged message (empty value): late edits,
//                               reactions and deletes of it are dropped
//   "retention_skipped"         remote operations merges skipped (count)
#include <rocksdb/options.h>

#include <algorithm>
#include <set>

#include "engine/store_impl.h"

namespace tidings::engine {
namespace {

constexpr char kStorePolicyKey[] = "retention";
constexpr char kConvPolicyPrefix[] = "retention:";
constexpr char kSkippedKey[] = "retention_skipped";
// Messages removed per committed batch: bounds the batch and how long the
// write lock is held.
constexpr size_t kPurgeChunk = 512;
constexpr size_t kConvKeyBytes = 16;

std::string EncodePolicy(const RetentionPolicy& p, const std::string& conversation_id) {
  std::string out;
  Writer w(&out);
  w.U8(1);
  w.Varint(p.keep_days);
  w.Varint(p.keep_last);
  w.Bytes(conversation_id);
  return out;
}

bool DecodePolicy(std::string_view in, RetentionPolicy* p, std::string* conversation_id) {
  Reader r(in);
  uint8_t version;
  uint64_t days;
  if (!r.U8(&version) || version != 1 || !r.Varint(&days) || days > kMaxKeepDays ||
      !r.Varint(&p->keep_last) || !r.Bytes(conversation_id) || !r.done()) {
    return false;
  }
  p->keep_days = static_cast<uint32_t>(days);
  return true;
}

Status BadRetentionRecord() {
  return DataLoss("a retention record is corrupt; run `tidings verify`");
}

}  // namespace

OrderKey TimeHorizon(const RetentionPolicy& policy, uint64_t now_ms) {
  const uint64_t keep_ms = uint64_t{policy.keep_days} * kMillisPerDay;
  if (policy.keep_days == 0 || now_ms <= keep_ms) return OrderKey{};
  // Every key whose millis are before now - keep_ms is at or below this.
  return OrderKey{((now_ms - keep_ms) << 16) - 1, ~uint64_t{0}};
}

struct StoreImpl::RetentionState {
  RetentionPolicy store;
  std::map<std::string, ConversationRetention> conversations;  // by ConvKey
  std::map<std::string, OrderKey> watermarks;                  // by ConvKey
};

Result<std::shared_ptr<const StoreImpl::RetentionState>> StoreImpl::LoadRetention() {
  std::lock_guard<std::mutex> guard(retention_mu_);
  if (retention_ && !options_.read_only) return retention_;
  auto state = std::make_shared<RetentionState>();
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kMeta]));
  for (const char* prefix : {kConvPolicyPrefix, kWatermarkPrefix}) {
    const bool policy = prefix == kConvPolicyPrefix;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      const std::string key = it->key().ToString();
      auto plain = sealer_->Open(Ad(kMeta, key), it->value().ToStringView());
      if (!plain.ok()) return BadRetentionRecord();
      const std::string conv_key = key.substr(std::string_view(prefix).size());
      if (policy) {
        ConversationRetention c;
        if (!DecodePolicy(*plain, &c.policy, &c.conversation_id)) return BadRetentionRecord();
        state->conversations[conv_key] = std::move(c);
      } else if (!OrderKey::Decode(*plain, &state->watermarks[conv_key])) {
        return BadRetentionRecord();
      }
    }
    TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
  }
  std::string sealed;
  auto s = db_->Get(rocksdb::ReadOptions(), cfs_[kMeta], kStorePolicyKey, &sealed);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read failed");
  if (s.ok()) {
    auto plain = sealer_->Open(Ad(kMeta, kStorePolicyKey), sealed);
    std::string none;
    if (!plain.ok() || !DecodePolicy(*plain, &state->store, &none)) return BadRetentionRecord();
  }
  retention_ = state;
  return retention_;
}

Status StoreImpl::SetRetention(const std::string& conversation_id, const RetentionPolicy& policy) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  if (!conversation_id.empty()) {
    TIDINGS_RETURN_IF_ERROR(ValidateId("conversation id", conversation_id));
  }
  if (policy.keep_days > kMaxKeepDays) {
    return InvalidArgument("keep at most " + std::to_string(kMaxKeepDays) +
                           " days, or 0 for no time limit");
  }
  std::unique_lock<std::mutex> lock(write_mu_);
  TIDINGS_ASSIGN_OR_RETURN(auto old, LoadRetention());
  auto state = std::make_shared<RetentionState>(*old);
  const std::string key = conversation_id.empty() ? std::string(kStorePolicyKey)
                                                  : kConvPolicyPrefix + ConvKey(conversation_id);
  Txn txn;
  if (policy.empty()) {
    TxnDelete(txn, kMeta, key);
  } else {
    TxnPut(txn, kMeta, key, EncodePolicy(policy, conversation_id));
  }
  if (conversation_id.empty()) {
    state->store = policy;
  } else if (policy.empty()) {
    state->conversations.erase(ConvKey(conversation_id));
  } else {
    state->conversations[ConvKey(conversation_id)] = {conversation_id, policy};
  }
  return CommitRetention(txn, lock, std::move(state));
}

Status StoreImpl::CommitRetention(Txn& txn, std::unique_lock<std::mutex>& write_lock,
                                  std::shared_ptr<const RetentionState> state) {
  // Swapped in before the commit releases write_mu_, so the next writer's
  // LoadRetention sees it; dropped (reloaded later) if the commit fails.
  {
    std::lock_guard<std::mutex> guard(retention_mu_);
    retention_ = std::move(state);
  }
  Status s = Commit(txn, write_lock);
  if (!s.ok()) {
    std::lock_guard<std::mutex> guard(retention_mu_);
    retention_ = nullptr;
  }
  return s;
}

Result<RetentionPolicy> StoreImpl::GetRetention(const std::string& conversation_id) {
  TIDINGS_ASSIGN_OR_RETURN(auto state, LoadRetention());
  if (conversation_id.empty()) return state->store;
  auto it = state->conversations.find(ConvKey(conversation_id));
  return it == state->conversations.end() ? RetentionPolicy{} : it->second.policy;
}

Result<std::vector<ConversationRetention>> StoreImpl::RetentionPolicies() {
  TIDINGS_ASSIGN_OR_RETURN(auto state, LoadRetention());
  std::vector<ConversationRetention> out;
  for (const auto& [k, c] : state->conversations) out.push_back(c);
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.conversation_id < b.conversation_id; });
  return out;
}

Result<RetentionPolicy> StoreImpl::EffectiveRetention(const std::string& conversation_id) {
  TIDINGS_ASSIGN_OR_RETURN(auto state, LoadRetention());
  auto it = state->conversations.find(ConvKey(conversation_id));
  return it == state->conversations.end() ? state->store : it->second.policy;
}

Result<OrderKey> StoreImpl::PurgeHorizon(const std::string& conversation_id) {
  TIDINGS_ASSIGN_OR_RETURN(auto state, LoadRetention());
  const std::string conv_key = ConvKey(conversation_id);
  OrderKey horizon;
  if (auto wm = state->watermarks.find(conv_key); wm != state->watermarks.end()) {
    horizon = wm->second;
  }
  auto own = state->conversations.find(conv_key);
  const RetentionPolicy& p = own == state->conversations.end() ? state->store : own->second.policy;
  return std::max(horizon, TimeHorizon(p, clock_.WallMs()));
}

void StoreImpl::CountSkipped(Txn& txn) {
  uint64_t n = 0;
  auto v = TxnRead(txn, kMeta, kSkippedKey);
  if (v.ok() && v->has_value() && (*v)->size() == 8) n = GetFixed64BE((*v)->data());
  std::string out;
  PutFixed64BE(&out, n + 1);
  TxnPut(txn, kMeta, kSkippedKey, out);
}

Result<bool> StoreImpl::SkipPurgedSend(Txn& txn, const std::string& conversation_id,
                                       const OrderKey& order) {
  TIDINGS_ASSIGN_OR_RETURN(OrderKey horizon, PurgeHorizon(conversation_id));
  if (horizon.IsZero() || horizon < order) return false;
  CountSkipped(txn);
  return true;
}

Result<bool> StoreImpl::SkipPurgedTarget(Txn& txn, const Operation& op) {
  TIDINGS_ASSIGN_OR_RETURN(OrderKey horizon, PurgeHorizon(op.conversation_id));
  bool skip = !horizon.IsZero() && !(horizon < op.at);
  if (!skip) {
    TIDINGS_ASSIGN_OR_RETURN(auto mark, TxnRead(txn, kMeta, kPurgedPrefix + IdKey(op.message_id)));
    skip = mark.has_value();
  }
  if (skip) CountSkipped(txn);
  return skip;
}

Status StoreImpl::PurgeInTxn(Txn& txn, const MessageRecord& r, const std::string& key) {
  TxnDelete(txn, kMessages, key);
  IndexMessage(txn, key, r, /*add=*/false);
  TxnDelete(txn, kById, IdKey(r.m.id));
  TxnPut(txn, kMeta, kPurgedPrefix + IdKey(r.m.id), "");
  TIDINGS_RETURN_IF_ERROR(ReleaseAttachments(txn, r.m.attachments));
  if (r.send_seq != 0) {
    TIDINGS_ASSIGN_OR_RETURN(auto entry, LoadOutbox(txn, r.send_seq));
    if (entry.has_value() && entry->e.op.kind == OpKind::kSend) RemoveFromOutbox(txn, entry->e);
  }
  TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, r.m.conversation_id, nullptr));
  if (!r.m.deleted && c.message_count > 0) --c.message_count;
  // Where it was stored: a clamp purges it after moving its order down.
  if (CountsAsUnread(c, r.m, OrderOfMsgKey(key)) && c.unread_count > 0) --c.unread_count;
  if (c.last_message_id == r.m.id) c.last_message_id.clear();
  StoreConversation(txn, c);
  txn.events.push_back({ChangeEvent::Kind::kConversationChanged, r.m.conversation_id, ""});
  return Status::Ok();
}

// ---- The purge ----

Result<PurgeReport> StoreImpl::PurgeExpired() {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  PurgeReport report;
  TIDINGS_ASSIGN_OR_RETURN(auto state, LoadRetention());
  {
    Txn txn;
    TIDINGS_ASSIGN_OR_RETURN(auto skipped, TxnRead(txn, kMeta, kSkippedKey));
    if (skipped.has_value() && skipped->size() == 8) {
      report.remote_skipped = GetFixed64BE(skipped->data());
    }
  }
  if (state->store.empty() && state->conversations.empty()) return report;
  std::vector<std::string> ids;
  {
    TIDINGS_ASSIGN_OR_RETURN(std::vector<Conversation> all, AllConversations());
    for (auto& c : all) ids.push_back(std::move(c.id));
  }
  std::vector<std::string> purged;
  for (const auto& id : ids) {
    TIDINGS_ASSIGN_OR_RETURN(RetentionPolicy p, EffectiveRetention(id));
    if (p.empty()) continue;
    bool due = false;
    TIDINGS_ASSIGN_OR_RETURN(OrderKey horizon, DueHorizon(id, p, &due));
    if (!due) continue;
    const uint64_t before = report.messages_purged;
    TIDINGS_RETURN_IF_ERROR(PurgeConversation(id, horizon, report));
    if (report.messages_purged > before) {
      report.conversations++;
      purged.push_back(id);
    }
  }
  if (purged.empty()) return report;
  TIDINGS_RETURN_IF_ERROR(PurgeReferences(report));
  TIDINGS_RETURN_IF_ERROR(CompactPurged(purged));
  return report;
}

Result<OrderKey> StoreImpl::DueHorizon(const std::string& conversation_id, const RetentionPolicy& p,
                                       bool* due) {
  const std::string prefix = ConvKey(conversation_id);
  OrderKey horizon = TimeHorizon(p, clock_.WallMs());
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kMessages]));
  OrderKey key;
  if (p.keep_last != 0) {
    // The newest keep_last records stay; the next older one is the horizon.
    // Only records whose place is final count, so that every device counts
    // the same records and no horizon ever passes the one all devices reach:
    // a message refused for good (failed) never reaches other devices, and a
    // local send not yet acknowledged (pending) may still move down when the
    // server's time comes back (ClampToServerTime).
    uint64_t kept = 0;
    for (it->SeekForPrev(prefix + std::string(16, '\xff'));
         it->Valid() && it->key().starts_with(prefix); it->Prev()) {
      auto plain = sealer_->Open(Ad(kMessages, it->key().ToString()), it->value().ToStringView());
      MessageRecord rec;
      if (!plain.ok() || !DecodeMessage(*plain, &rec)) {
        return DataLoss("a message record failed authentication; run `tidings verify`");
      }
      if (rec.m.state != MessageState::kSent) continue;
      // Accepted, but ordered beyond server time + drift (a device clock far
      // ahead): it moves down when it comes back (ClampToServerTime), to
      // where every other device has it; until then it does not count.
      if (rec.m.server_time_ms != 0 &&
          rec.m.order.millis() > rec.m.server_time_ms + clock_.max_drift_ms()) {
        continue;
      }
      if (kept++ < p.keep_last) continue;
      horizon = std::max(horizon, rec.m.order);
      break;
    }
  }
  *due = false;
  if (!horizon.IsZero()) {
    it->Seek(prefix);
    *due = it->Valid() && it->key().starts_with(prefix) &&
           OrderKey::Decode(it->key().ToStringView().substr(kConvKeyBytes), &key) &&
           !(horizon < key);
  }
  TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
  return horizon;
}

Status StoreImpl::PurgeConversation(const std::string& conversation_id, const OrderKey& horizon,
                                    PurgeReport& report) {
  const std::string prefix = ConvKey(conversation_id);
  const std::string end = prefix + horizon.Encode();
  for (bool more = true; more;) {
    std::unique_lock<std::mutex> lock(write_mu_);
    Txn txn;
    std::set<std::string> ids;
    std::vector<uint64_t> sends;          // outbox entries of purged local sends
    std::vector<Attachment> attachments;  // the purged messages' files
    uint64_t visible = 0;
    std::vector<OrderKey> from_others;  // visible messages of others: unread if after the marker
    {
      std::shared_lock<std::shared_mutex> db_lock(db_mu_);
      std::unique_ptr<rocksdb::Iterator> it(
          db_->NewIterator(rocksdb::ReadOptions(), cfs_[kMessages]));
      for (it->Seek(prefix);
           it->Valid() && it->key().starts_with(prefix) && it->key().compare(end) <= 0;
           it->Next()) {
        if (ids.size() == kPurgeChunk) break;
        const std::string key = it->key().ToString();
        auto plain = sealer_->Open(Ad(kMessages, key), it->value().ToStringView());
        MessageRecord rec;
        if (!plain.ok() || !DecodeMessage(*plain, &rec)) {
          return DataLoss("a message record failed authentication; run `tidings verify`");
        }
        TxnDelete(txn, kMessages, key);
        IndexMessage(txn, key, rec, /*add=*/false);
        TxnDelete(txn, kById, IdKey(rec.m.id));
        TxnPut(txn, kMeta, kPurgedPrefix + IdKey(rec.m.id), "");
        if (!rec.m.deleted) ++visible;
        if (!rec.m.deleted && rec.m.sender != user_id_) from_others.push_back(OrderOfMsgKey(key));
        ids.insert(rec.m.id);
        if (rec.send_seq != 0) sends.push_back(rec.send_seq);
        for (auto& a : rec.m.attachments) attachments.push_back(std::move(a));
      }
      TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
      more = ids.size() == kPurgeChunk;
    }
    TIDINGS_RETURN_IF_ERROR(ReleaseAttachments(txn, attachments));
    // A send still in the outbox may refer to a purged body: it goes in the
    // same batch, so no entry ever points at a missing message.
    for (uint64_t seq : sends) {
      TIDINGS_ASSIGN_OR_RETURN(auto entry, LoadOutbox(txn, seq));
      if (!entry.has_value() || entry->e.op.kind != OpKind::kSend) continue;
      entry->e.seq = seq;
      RemoveFromOutbox(txn, entry->e);
      report.outbox_dropped++;
    }
    TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, conversation_id, nullptr));
    c.message_count -= std::min(c.message_count, visible);
    for (const auto& at : from_others) {
      if (AfterReadMarker(c, at) && c.unread_count > 0) --c.unread_count;
    }
    if (ids.count(c.last_message_id) != 0) c.last_message_id.clear();
    StoreConversation(txn, c);
    // The watermark rises to the horizon once the range is empty; between
    // chunks the rest is still due, so nothing merged there survives anyway.
    TIDINGS_ASSIGN_OR_RETURN(auto state, LoadRetention());
    auto next = std::make_shared<RetentionState>(*state);
    OrderKey& wm = next->watermarks[prefix];
    wm = std::max(wm, horizon);
    TxnPut(txn, kMeta, kWatermarkPrefix + prefix, wm.Encode());
    txn.events.push_back({ChangeEvent::Kind::kConversationChanged, conversation_id, ""});
    report.messages_purged += ids.size();
    TIDINGS_RETURN_IF_ERROR(CommitRetention(txn, lock, std::move(next)));
  }
  return Status::Ok();
}

// Outbox entries whose message was purged (or that are at or below their
// conversation's horizon) can never apply anywhere that keeps the policy,
// and parked remote operations at or below a horizon wait for a message
// that merges now skip.
Status StoreImpl::PurgeReferences(PurgeReport& report) {
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  std::vector<OutboxEntry> doomed;
  Status inner = Status::Ok();
  TIDINGS_RETURN_IF_ERROR(VisitOutbox("", "", false, [&](OutboxEntry&& e) {
    if (e.op.kind == OpKind::kReadMarker) return true;
    auto mark = TxnRead(txn, kMeta, kPurgedPrefix + IdKey(e.op.message_id));
    if (!mark.ok()) inner = mark.status();
    if (mark.ok() && mark->has_value()) doomed.push_back(std::move(e));
    return inner.ok();
  }));
  TIDINGS_RETURN_IF_ERROR(inner);
  for (const auto& e : doomed) RemoveFromOutbox(txn, e);
  report.outbox_dropped += doomed.size();

  std::vector<std::pair<std::string, Operation>> waiting;
  {
    std::shared_lock<std::shared_mutex> db_lock(db_mu_);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kPending]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string key = it->key().ToString();
      auto plain = sealer_->Open(Ad(kPending, key), it->value().ToStringView());
      Operation op;
      if (!plain.ok() || !DecodeOperation(*plain, &op)) {
        return DataLoss("a waiting operation record is corrupt; run `tidings verify`");
      }
      waiting.emplace_back(key, std::move(op));
    }
    TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
  }
  for (const auto& [key, op] : waiting) {
    TIDINGS_ASSIGN_OR_RETURN(OrderKey horizon, PurgeHorizon(op.conversation_id));
    if (horizon.IsZero() || horizon < op.at) continue;
    TxnDelete(txn, kPending, key);
    report.waiting_dropped++;
  }
  if (txn.overlay.empty()) return Status::Ok();
  return Commit(txn, lock);
}

// The purged records are deletions in the memtable; the text is still in
// SST files (and in WAL files until a flush). A flush retires the WAL files,
// and a forced compaction of the purged ranges rewrites every SST holding
// them without the deleted records, then deletes the old files.
Status StoreImpl::CompactPurged(const std::vector<std::string>& conversation_ids) {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  TIDINGS_RETURN_IF_ERROR(FromRocks(db_->Flush(rocksdb::FlushOptions(), cfs_), "flush failed"));
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  for (const auto& id : conversation_ids) {
    const std::string begin = ConvKey(id);
    const std::string end = begin + std::string(16, '\xff');
    rocksdb::Slice b(begin), e(end);
    TIDINGS_RETURN_IF_ERROR(
        FromRocks(db_->CompactRange(co, cfs_[kMessages], &b, &e), "compaction failed"));
  }
  for (int cf : {kById, kOutbox, kPending}) {
    TIDINGS_RETURN_IF_ERROR(
        FromRocks(db_->CompactRange(co, cfs_[static_cast<size_t>(cf)], nullptr, nullptr),
                  "compaction failed"));
  }
  return Status::Ok();
}

}  // namespace tidings::engine
