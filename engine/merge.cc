// Sync's writes besides the outbox: merging a page of remote operations with
// its cursor, sync's own state, and conversations' remote ids.
#include "engine/store_impl.h"

namespace tidings::engine {

namespace {

std::string PositionName(std::string_view backend, const std::string& conversation_id) {
  std::string k(backend);
  k.push_back('\0');
  k.append(conversation_id);
  return k;
}

}  // namespace

std::string EncodeGap(std::string_view before) {
  std::string out;
  Writer w(&out);
  w.U8(kGapFormat);
  w.Bytes(before);
  return out;
}

bool DecodeGap(std::string_view in, std::string* before) {
  Reader r(in);
  uint8_t v = 0;
  return r.U8(&v) && v == kGapFormat && r.Bytes(before) && !before->empty() && r.done();
}

std::string StoreImpl::GapKey(std::string_view backend, const std::string& conversation_id) const {
  return kGapPrefix + Hash16('g', PositionName(backend, conversation_id));
}

Result<std::string> StoreImpl::GetGap(std::string_view backend,
                                      const std::string& conversation_id) {
  TIDINGS_ASSIGN_OR_RETURN(auto value, ReadSealed(kCursors, GapKey(backend, conversation_id)));
  if (!value.has_value()) return std::string();
  std::string before;
  if (!DecodeGap(*value, &before)) {
    return DataLoss("a history gap record is corrupt; run `tidings verify`");
  }
  return before;
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
  return Merge(backend, conversation_id, ops, new_cursor, {});
}

Status StoreImpl::Merge(std::string_view backend, const std::string& conversation_id,
                        std::span<const Operation> ops, std::string_view new_cursor,
                        std::span<const SyncStateWrite> state) {
  return MergeAt(backend, conversation_id, ops, PagePositions{.cursor = std::string(new_cursor)},
                 state);
}

Status StoreImpl::MergeAt(std::string_view backend, const std::string& conversation_id,
                          std::span<const Operation> ops, const PagePositions& at,
                          std::span<const SyncStateWrite> state) {
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
  if (at.gap.has_value() && at.gap->size() > kMaxPositionBytes) {
    return TooLarge("a history position over " + std::to_string(kMaxPositionBytes) + " bytes");
  }
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  const std::string gap_key = GapKey(backend, conversation_id);
  if (at.gap_from.has_value()) {
    // The page was fetched at this gap; a fill that moved it since would be
    // undone (its pages fetched again: no hole, but wasted) - refuse.
    TIDINGS_ASSIGN_OR_RETURN(auto stored, TxnRead(txn, kCursors, gap_key));
    std::string before;
    if (stored.has_value() && !DecodeGap(*stored, &before)) {
      return DataLoss("a history gap record is corrupt; run `tidings verify`");
    }
    if (before != *at.gap_from) return Aborted("the history gap moved; fetch from where it is now");
  }
  for (const auto& in : ops) {
    Operation op = in;
    op.conversation_id = conversation_id;
    clock_.Observe(op.at.hlc);
    TIDINGS_RETURN_IF_ERROR(Apply(txn, op, /*remote=*/true));
  }
  if (at.cursor.has_value()) {
    TxnPut(txn, kCursors, Hash16('k', PositionName(backend, conversation_id)), *at.cursor);
  }
  if (at.gap.has_value()) {
    if (at.gap->empty()) {
      TxnDelete(txn, kCursors, gap_key);
    } else {
      TxnPut(txn, kCursors, gap_key, EncodeGap(*at.gap));
    }
  }
  PutStates(txn, state);
  PutClock(txn);
  return Commit(txn, lock);
}

void StoreImpl::PutStates(Txn& txn, std::span<const SyncStateWrite> writes) {
  for (const auto& w : writes) {
    if (w.value.empty()) {
      TxnDelete(txn, kCursors, Hash16('s', w.key));
    } else {
      TxnPut(txn, kCursors, Hash16('s', w.key), w.value);
    }
  }
}

Status StoreImpl::PutSyncStates(std::span<const SyncStateWrite> writes) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  PutStates(txn, writes);
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

Status StoreImpl::SetConversationInfo(const std::string& conversation_id, const std::string& title,
                                      const std::vector<std::string>& members) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  TIDINGS_RETURN_IF_ERROR(ValidateId("conversation id", conversation_id));
  if (title.size() > 1024 || members.size() > 1000) {
    return InvalidArgument("a remote conversation's title or member list is over the limits");
  }
  for (const auto& m : members) TIDINGS_RETURN_IF_ERROR(ValidateId("remote member", m));
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, conversation_id, nullptr));
  if (c.title == title && c.members == members) return Status::Ok();
  c.title = title;
  c.members = members;
  StoreConversation(txn, c);
  txn.events.push_back({ChangeEvent::Kind::kConversationChanged, conversation_id, ""});
  return Commit(txn, lock);
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

}  // namespace tidings::engine
