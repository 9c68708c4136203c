// Sync's writes besides the outbox: merging a page of remote operations with
// its cursor, sync's own state, and conversations' remote ids.
#include "engine/store_impl.h"

namespace tidings::engine {

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
