// The outbox: local operations waiting for backends to accept them. Entries
// of local sends may refer to their message's body instead of copying it
// (OutboxRecord); acks, failures and fan-out to several backends.
#include <algorithm>

#include "engine/store_impl.h"

namespace tidings::engine {
namespace {

// Whether `e` may leave the outbox: accepted by every required backend, or
// by any one when there is no fan-out. Both lists are sorted.
bool AckedByAll(const OutboxEntry& e, const std::vector<std::string>& required) {
  if (required.empty()) return !e.acked_by.empty();
  return std::includes(e.acked_by.begin(), e.acked_by.end(), required.begin(), required.end());
}

}  // namespace

Result<std::optional<OutboxRecord>> StoreImpl::LoadOutbox(Txn& txn, uint64_t seq) {
  TIDINGS_ASSIGN_OR_RETURN(auto value, TxnRead(txn, kOutbox, SeqKey(seq)));
  if (!value.has_value()) return std::optional<OutboxRecord>();
  OutboxRecord r;
  if (!DecodeOutbox(*value, &r))
    return DataLoss("an outbox record is corrupt; run `tidings verify`");
  r.e.seq = seq;
  return std::optional<OutboxRecord>(std::move(r));
}

Result<OutboxRecord> StoreImpl::EntryToChange(Txn& txn, uint64_t seq) {
  TIDINGS_ASSIGN_OR_RETURN(auto entry, LoadOutbox(txn, seq));
  if (!entry.has_value()) return NotFound("no outbox entry " + std::to_string(seq));
  return std::move(*entry);
}

Result<OutboxRecord> StoreImpl::ParkedEntry(Txn& txn, uint64_t seq, std::string_view hint) {
  TIDINGS_ASSIGN_OR_RETURN(OutboxRecord entry, EntryToChange(txn, seq));
  if (!entry.e.failed) {
    return FailedPrecondition("outbox entry " + std::to_string(seq) + " has not failed" +
                              std::string(hint));
  }
  return entry;
}

void StoreImpl::PutOutbox(Txn& txn, const OutboxRecord& r) {
  TxnPut(txn, kOutbox, SeqKey(r.e.seq), EncodeOutbox(r));
  txn.events.push_back({ChangeEvent::Kind::kOutboxChanged, r.e.op.conversation_id, ""});
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
  const bool was_indexed = Indexed(*rec);
  rec->m.state = to;
  rec->m.failure_reason = to == MessageState::kFailed ? std::string(reason) : std::string();
  StoreMessage(txn, key, *rec);
  IndexStateChange(txn, key, *rec, was_indexed);
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
  TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
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
  TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
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
    // A backend that parked it keeps its reason (`tidings outbox` shows it
    // beside the parked entry until a retry or discard).
    if (!e.failed) e.last_error.clear();
    PutOutbox(txn, *entry);
  }
  if (e.op.kind == OpKind::kSend) {
    std::string key;
    TIDINGS_ASSIGN_OR_RETURN(auto rec, LoadMessage(txn, e.op.message_id, &key));
    if (rec.has_value()) {
      const bool was_indexed = Indexed(*rec);
      rec->m.state = MessageState::kSent;
      rec->m.failure_reason.clear();
      if (!ack.remote_id.empty()) rec->m.remote_ids[ack.backend] = ack.remote_id;
      if (rec->m.server_time_ms == 0) rec->m.server_time_ms = ack.server_time_ms;
      if (done && rec->send_seq == seq) rec->send_seq = 0;  // nothing refers to it now
      StoreMessage(txn, key, *rec);
      IndexStateChange(txn, key, *rec, was_indexed);
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
  TIDINGS_ASSIGN_OR_RETURN(OutboxRecord entry, EntryToChange(txn, seq));
  OutboxEntry& e = entry.e;
  e.attempts++;
  e.last_error = std::string(reason.substr(0, 512));
  // With fan-out each backend's reconciler keeps its own backoff; a shared
  // per-entry time would let one backend's outage hold back the others.
  e.next_attempt_ms = OutboxBackends().empty() ? next_attempt_ms : 0;
  e.failed = permanent;
  PutOutbox(txn, entry);
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
  TIDINGS_ASSIGN_OR_RETURN(OutboxRecord entry, ParkedEntry(txn, seq, ""));
  OutboxEntry& e = entry.e;
  e.failed = false;
  e.next_attempt_ms = 0;
  e.attempts = 0;
  PutOutbox(txn, entry);
  TIDINGS_RETURN_IF_ERROR(MoveSendState(txn, e, MessageState::kFailed, MessageState::kPending, ""));
  return Commit(txn, lock);
}

Status StoreImpl::DiscardFailed(uint64_t seq) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(OutboxRecord entry,
                           ParkedEntry(txn, seq, "; only failed entries can be discarded"));
  RemoveFromOutbox(txn, entry.e);
  return Commit(txn, lock);
}

}  // namespace tidings::engine
