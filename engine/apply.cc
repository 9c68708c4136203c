// Applying one operation, local or remote, to the records: the merge rules
// (commutative and idempotent, DESIGN section 4), operations that wait for
// their message, and ordering clamped to server time.
#include <algorithm>

#include "engine/store_impl.h"

namespace tidings::engine {
namespace {

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

// The record a send creates, before waiting operations apply to it.
MessageRecord NewRecord(const Operation& op, bool remote, uint64_t drift) {
  MessageRecord r;
  Message& m = r.m;
  m.id = op.message_id;
  m.conversation_id = op.conversation_id;
  m.sender = op.author;
  m.order = op.at;
  // A remote hlc implausibly far ahead of the server's acceptance time is
  // ordered at server time + drift: deterministic, as every replica sees
  // the same server time.
  if (remote && op.server_time_ms != 0 && op.at.millis() > op.server_time_ms + drift) {
    m.order = ClampedOrder(op.server_time_ms + drift, m.id);
  }
  m.body = op.body;
  m.content_type = op.content_type.empty() ? "text/plain" : op.content_type;
  m.metadata = op.metadata;
  m.attachments = op.attachments;
  m.state = remote ? MessageState::kSent : MessageState::kPending;
  m.server_time_ms = op.server_time_ms;
  if (!op.remote_id.empty()) m.remote_ids["origin"] = op.remote_id;
  return r;
}

}  // namespace

Result<std::optional<MessageRecord>> StoreImpl::LoadMessage(Txn& txn, const std::string& id,
                                                            const std::string& id_key,
                                                            std::string* msg_key) {
  TIDINGS_ASSIGN_OR_RETURN(auto loc, TxnRead(txn, kById, id_key));
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
  const std::string key = ConvKey(id);
  if (auto s = txn.summaries.find(key); s != txn.summaries.end() && s->second.current) {
    if (existed != nullptr) *existed = true;
    return *s->second.current;
  }
  std::optional<std::string> value;
  uint32_t lag = 0;
  bool caught_up = false;  // value is the summary already, not the stored record
  if (!options_.read_only) {
    std::lock_guard<std::mutex> lock(summary_cache_mu_);
    if (auto hit = summary_cache_.find(key); hit != summary_cache_.end()) {
      value = hit->second.plain;
      lag = hit->second.lag;
      caught_up = true;
    }
  }
  Conversation c;
  if (!caught_up) {
    // The record and the messages after it, as of one state of the database.
    std::shared_lock<std::shared_mutex> lock(db_mu_);
    auto view = ConsistentView();
    rocksdb::ReadOptions ro;
    if (view) ro.snapshot = view->snapshot();
    TIDINGS_ASSIGN_OR_RETURN(value, ReadSealedLocked(kConversations, key, ro));
    if (value.has_value()) {
      bool counted = false;
      if (!DecodeConversation(*value, &c, &counted) || c.id != id) {
        return DataLoss("a conversation record is corrupt; run `tidings verify`");
      }
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kMessages]));
      TIDINGS_RETURN_IF_ERROR(CatchUpConversation(&c, it.get(), &lag));
      if (!counted) {
        TIDINGS_ASSIGN_OR_RETURN(c.unread_count, CountUnread(c, it.get()));
      }
    }
  } else if (value.has_value() && (!DecodeConversation(*value, &c) || c.id != id)) {
    return DataLoss("a conversation record is corrupt; run `tidings verify`");
  }
  txn.summaries.try_emplace(key, Txn::SummaryState{.lag = lag});
  if (!value.has_value()) {
    if (existed != nullptr) *existed = false;
    c = Conversation{};
    c.id = id;
    return c;
  }
  if (existed != nullptr) *existed = true;
  return c;
}

Status StoreImpl::ForEachMessageAfter(const std::string& conversation_id, const OrderKey& after,
                                      rocksdb::Iterator* it,
                                      const std::function<void(const MessageRecord&)>& visit) {
  const std::string prefix = ConvKey(conversation_id);
  const std::string start = prefix + after.Encode();
  std::string ad, scratch;
  MessageRecord rec;
  for (it->Seek(start); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->key() == start) continue;
    AdInto(&ad, kMessages, it->key().ToStringView());
    auto plain = sealer_->OpenView(ad, it->value().ToStringView(), &scratch);
    if (!plain.ok() || !DecodeMessage(*plain, &rec)) {
      return DataLoss("a message record failed authentication; run `tidings verify`");
    }
    visit(rec);
  }
  return ReadDone(*it);
}

Status StoreImpl::CatchUpConversation(Conversation* c, rocksdb::Iterator* it, uint32_t* lag) {
  *lag = 0;
  return ForEachMessageAfter(c->id, c->last_order, it, [&](const MessageRecord& rec) {
    c->last_order = rec.m.order;
    c->last_message_id = rec.m.id;
    if (!rec.m.deleted) ++c->message_count;
    if (CountsAsUnread(*c, rec.m, rec.m.order)) ++c->unread_count;
    ++*lag;
  });
}

bool StoreImpl::AfterReadMarker(const Conversation& c, const OrderKey& at) const {
  auto marker = c.read_markers.find(user_id_);
  return marker == c.read_markers.end() || marker->second < at;
}

bool StoreImpl::CountsAsUnread(const Conversation& c, const Message& m, const OrderKey& at) const {
  return !m.deleted && m.sender != user_id_ && AfterReadMarker(c, at);
}

Result<uint64_t> StoreImpl::CountUnread(const Conversation& c, rocksdb::Iterator* it) {
  OrderKey marker;
  if (auto m = c.read_markers.find(user_id_); m != c.read_markers.end()) marker = m->second;
  uint64_t unread = 0;
  TIDINGS_RETURN_IF_ERROR(ForEachMessageAfter(c.id, marker, it, [&](const MessageRecord& rec) {
    if (CountsAsUnread(c, rec.m, rec.m.order)) ++unread;
  }));
  return unread;
}

Result<uint64_t> StoreImpl::UnreadBetween(Txn& txn, const Conversation& c, const OrderKey& after,
                                          const OrderKey& up_to) {
  const std::string prefix = ConvKey(c.id);
  const std::string first = prefix + after.Encode(), last = prefix + up_to.Encode();
  // The database's messages in range that the txn left alone, read as they
  // are stored; then the txn's own (added or rewritten; nullopt: deleted).
  uint64_t unread = 0;
  MessageRecord rec;
  {
    std::shared_lock<std::shared_mutex> lock(db_mu_);
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cfs_[kMessages]));
    std::string ad, scratch;
    for (it->Seek(first); it->Valid() && it->key().compare(last) <= 0; it->Next()) {
      if (it->key() == first || txn.overlay.contains({kMessages, it->key().ToString()})) continue;
      AdInto(&ad, kMessages, it->key().ToStringView());
      auto plain = sealer_->OpenView(ad, it->value().ToStringView(), &scratch);
      if (!plain.ok() || !DecodeMessage(*plain, &rec)) {
        return DataLoss("a message record failed authentication; run `tidings verify`");
      }
      if (CountsAsUnread(c, rec.m, OrderOfMsgKey(it->key().ToStringView()))) ++unread;
    }
    TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
  }
  for (auto it = txn.overlay.upper_bound({kMessages, first});
       it != txn.overlay.end() && it->first.first == kMessages && it->first.second <= last; ++it) {
    if (!it->second.has_value()) continue;
    if (!DecodeMessage(*it->second, &rec)) {
      return DataLoss("a message record is corrupt; run `tidings verify`");
    }
    if (CountsAsUnread(c, rec.m, OrderOfMsgKey(it->first.second))) ++unread;
  }
  return unread;
}

Status StoreImpl::NewestMessage(Txn& txn, const std::string& conversation_id, std::string* key,
                                std::string* id) {
  const std::string prefix = ConvKey(conversation_id);
  const std::string end = prefix + std::string(16, '\xff');
  key->clear();
  // The txn's own newest, then the database's newest the txn did not delete.
  for (auto it = txn.overlay.upper_bound({kMessages, end}); it != txn.overlay.begin();) {
    --it;
    if (it->first.first != kMessages || !it->first.second.starts_with(prefix)) break;
    if (it->second.has_value()) {
      *key = it->first.second;
      break;
    }
  }
  {
    std::shared_lock<std::shared_mutex> lock(db_mu_);
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cfs_[kMessages]));
    for (it->SeekForPrev(end); it->Valid() && it->key().starts_with(prefix); it->Prev()) {
      const std::string k = it->key().ToString();
      if (k <= *key) break;
      auto o = txn.overlay.find({kMessages, k});
      if (o != txn.overlay.end() && !o->second.has_value()) continue;  // deleted by the txn
      *key = k;
      break;
    }
    TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
  }
  if (key->empty()) return Status::Ok();
  TIDINGS_ASSIGN_OR_RETURN(auto value, TxnRead(txn, kMessages, *key));
  MessageRecord rec;
  if (!value.has_value() || !DecodeMessage(*value, &rec)) {
    return DataLoss("a message record is corrupt; run `tidings verify`");
  }
  *id = rec.m.id;
  return Status::Ok();
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
      m.attachments.clear();     // the caller releases their objects
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

Status StoreImpl::ClampToServerTime(Txn& txn, MessageRecord& r, const std::string& key,
                                    uint64_t server_time_ms) {
  const uint64_t drift = clock_.max_drift_ms();
  if (server_time_ms == 0 || r.m.order.millis() <= server_time_ms + drift) return Status::Ok();
  const OrderKey was = r.m.order;
  r.m.order = ClampedOrder(server_time_ms + drift, r.m.id);
  // Moved down to or below the purge horizon: it goes, as a purge would.
  TIDINGS_ASSIGN_OR_RETURN(bool purged, SkipPurgedSend(txn, r.m.conversation_id, r.m.order));
  if (purged) return PurgeInTxn(txn, r, key);
  const std::string new_key = MsgKey(r.m.conversation_id, r.m.order);
  TxnDelete(txn, kMessages, key);
  StoreMessage(txn, new_key, r);
  IndexMessage(txn, key, r, /*add=*/false);  // postings name the record's key
  IndexMessage(txn, new_key, r, /*add=*/true);
  TxnPut(txn, kById, IdKey(r.m.id), new_key);
  // The summary is written whatever moved: the message may be one a stored
  // record lags behind, and its newest message may now be another one.
  TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, r.m.conversation_id, nullptr));
  // It may move from after the read marker to before it.
  if (CountsAsUnread(c, r.m, was) && !CountsAsUnread(c, r.m, r.m.order) && c.unread_count > 0) {
    --c.unread_count;
  }
  std::string newest_key, newest_id;
  TIDINGS_RETURN_IF_ERROR(NewestMessage(txn, r.m.conversation_id, &newest_key, &newest_id));
  if (!newest_key.empty() &&
      (c.last_message_id == r.m.id || c.last_order < OrderOfMsgKey(newest_key))) {
    c.last_order = OrderOfMsgKey(newest_key);
    c.last_message_id = newest_id;
  }
  StoreConversation(txn, c);
  txn.events.push_back({ChangeEvent::Kind::kMessageChanged, r.m.conversation_id, r.m.id});
  return Status::Ok();
}

Status StoreImpl::Apply(Txn& txn, const Operation& op, bool remote, bool fresh_id, Message* created,
                        uint64_t send_seq) {
  switch (op.kind) {
    case OpKind::kSend:
      return ApplySend(txn, op, remote, fresh_id, created, send_seq);
    case OpKind::kEdit:
    case OpKind::kDelete:
    case OpKind::kReact:
    case OpKind::kUnreact:
      return ApplyToMessage(txn, op);
    case OpKind::kReadMarker:
      return ApplyReadMarker(txn, op);
  }
  return InvalidArgument("unknown operation kind");
}

Status StoreImpl::ApplySend(Txn& txn, const Operation& op, bool remote, bool fresh_id,
                            Message* created, uint64_t send_seq) {
  std::string key;
  std::optional<MessageRecord> existing;
  const std::string id_key = IdKey(op.message_id);
  if (!fresh_id) {
    TIDINGS_ASSIGN_OR_RETURN(existing, LoadMessage(txn, op.message_id, id_key, &key));
  }
  if (existing.has_value()) return ApplyDuplicateSend(txn, op, remote, *existing, key);
  MessageRecord r = NewRecord(op, remote, clock_.max_drift_ms());
  Message& m = r.m;
  if (remote) {  // a purged message stays purged (engine/retention.cc)
    TIDINGS_ASSIGN_OR_RETURN(bool purged, SkipPurgedSend(txn, m.conversation_id, m.order));
    if (purged) return Status::Ok();
  }
  // Operations that arrived before this message now apply.
  TIDINGS_RETURN_IF_ERROR(ApplyWaitingOps(txn, id_key, fresh_id, r));
  r.send_seq = send_seq;
  // What a waiting delete left (nothing, if it came first) is referred to.
  TIDINGS_RETURN_IF_ERROR(RefAttachments(txn, m.attachments, remote));

  key = MsgKey(m.conversation_id, m.order);
  StoreMessage(txn, key, r);
  IndexMessage(txn, key, r, /*add=*/true);
  TxnPut(txn, kById, id_key, key);
  bool existed = false;
  TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, m.conversation_id, &existed));
  // A visible message after every other one is what readers can derive
  // from the messages (LoadConversation): the record need not change.
  const bool in_order = existed && !m.deleted && c.last_order < m.order;
  if (!m.deleted) ++c.message_count;
  if (CountsAsUnread(c, m, m.order)) ++c.unread_count;
  if (c.last_order < m.order) {
    c.last_order = m.order;
    c.last_message_id = m.id;
  }
  if (in_order) {
    AppendToConversation(txn, c);
  } else {
    StoreConversation(txn, c);
  }
  txn.events.push_back({ChangeEvent::Kind::kMessageAdded, m.conversation_id, m.id});
  if (created != nullptr) {
    r.RefreshVisibleReactions();  // as a read of the record would show it
    *created = m;
  }
  return Status::Ok();
}

Status StoreImpl::ApplyDuplicateSend(Txn& txn, const Operation& op, bool remote, MessageRecord& r,
                                     const std::string& key) {
  if (remote && r.m.state != MessageState::kSent) {
    const bool was_indexed = Indexed(r);
    r.m.state = MessageState::kSent;
    r.m.failure_reason.clear();
    if (r.m.server_time_ms == 0) r.m.server_time_ms = op.server_time_ms;
    StoreMessage(txn, key, r);
    IndexStateChange(txn, key, r, was_indexed);
    txn.events.push_back({ChangeEvent::Kind::kMessageStateChanged, r.m.conversation_id, r.m.id});
  }
  if (remote) TIDINGS_RETURN_IF_ERROR(ClampToServerTime(txn, r, key, op.server_time_ms));
  return Status::Ok();
}

Status StoreImpl::ApplyWaitingOps(Txn& txn, const std::string& prefix, bool fresh_id,
                                  MessageRecord& r) {
  std::vector<std::string> waiting_keys;
  if (!fresh_id && may_have_waiting_ops_.load(std::memory_order_relaxed)) {
    std::shared_lock<std::shared_mutex> lock(db_mu_);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kPending]));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      waiting_keys.push_back(it->key().ToString());
    }
    TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
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
  return Status::Ok();
}

Status StoreImpl::ApplyToMessage(Txn& txn, const Operation& op) {
  std::string key;
  TIDINGS_ASSIGN_OR_RETURN(auto existing, LoadMessage(txn, op.message_id, &key));
  if (!existing.has_value()) {
    TIDINGS_ASSIGN_OR_RETURN(bool purged, SkipPurgedTarget(txn, op));
    if (purged) return Status::Ok();
    // The target has not arrived yet: the operation waits for it.
    may_have_waiting_ops_.store(true, std::memory_order_relaxed);
    TxnPut(txn, kPending, IdKey(op.message_id) + Hash16('o', op.op_id), EncodeOperation(op));
    return Status::Ok();
  }
  MessageRecord& r = *existing;
  const bool was_deleted = r.m.deleted;
  const std::vector<Attachment> attachments = r.m.attachments;
  // An edit or delete changes what the index holds: the old text leaves it.
  const bool text_changes = op.kind == OpKind::kEdit || op.kind == OpKind::kDelete;
  std::optional<MessageRecord> before;
  if (text_changes && Indexed(r)) before = r;
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
  if (before.has_value() &&
      (before->m.body != r.m.body || r.m.deleted || before->m.content_type != r.m.content_type)) {
    IndexMessage(txn, key, *before, /*add=*/false);
    IndexMessage(txn, key, r, /*add=*/true);
  } else if (text_changes && !before.has_value()) {
    IndexMessage(txn, key, r, /*add=*/true);  // e.g. an empty body edited to text
  }
  if (!was_deleted && r.m.deleted) {
    TIDINGS_RETURN_IF_ERROR(ReleaseAttachments(txn, attachments));
    TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, r.m.conversation_id, nullptr));
    if (c.message_count > 0) --c.message_count;
    if (r.m.sender != user_id_ && AfterReadMarker(c, OrderOfMsgKey(key)) && c.unread_count > 0) {
      --c.unread_count;
    }
    StoreConversation(txn, c);
  }
  txn.events.push_back({ChangeEvent::Kind::kMessageChanged, r.m.conversation_id, r.m.id});
  return Status::Ok();
}

Status StoreImpl::ApplyReadMarker(Txn& txn, const Operation& op) {
  TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, op.conversation_id, nullptr));
  OrderKey& marker = c.read_markers[op.author];
  if (!(marker < op.read_up_to)) return Status::Ok();
  if (op.author == user_id_) {
    // The messages it moves over are read now.
    TIDINGS_ASSIGN_OR_RETURN(uint64_t read, UnreadBetween(txn, c, marker, op.read_up_to));
    c.unread_count -= std::min(c.unread_count, read);
  }
  marker = op.read_up_to;
  StoreConversation(txn, c);
  txn.events.push_back({ChangeEvent::Kind::kConversationChanged, c.id, ""});
  return Status::Ok();
}

}  // namespace tidings::engine
