// Local writes: what the app's calls change, each in one atomic batch with
// its outbox entry.
#include "engine/store_impl.h"

namespace tidings::engine {

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

Status ValidateAttachments(const std::vector<AttachmentInput>& inputs) {
  if (inputs.size() > kMaxAttachments) {
    return TooLarge("a message has at most " + std::to_string(kMaxAttachments) +
                    " attachments; this one has " + std::to_string(inputs.size()));
  }
  for (const auto& in : inputs) {
    if (in.name.size() > kMaxAttachmentNameBytes) {
      return TooLarge("an attachment's name is over " + std::to_string(kMaxAttachmentNameBytes) +
                      " bytes");
    }
    if (in.content_type.size() > 128)
      return TooLarge("an attachment's content type is over 128 bytes");
    if (in.preview.size() > kMaxPreviewBytes) {
      return TooLarge("an attachment's preview is " + std::to_string(in.preview.size()) +
                      " bytes; the limit is " + std::to_string(kMaxPreviewBytes) +
                      ": make the thumbnail smaller");
    }
    if (in.path.empty() && !in.read) {
      return InvalidArgument("an attachment needs a file path or a read callback");
    }
  }
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
    TIDINGS_RETURN_IF_ERROR(ValidateAttachments(req.attachments));
  }
  // Files are encrypted into objects before the write lock is taken (a
  // 1 GiB file takes seconds); what the batch does not come to use goes.
  std::vector<std::vector<Attachment>> attachments(requests.size());
  std::vector<std::vector<std::string>> fingerprints(requests.size());
  std::vector<std::string> imported;
  auto drop_imported = [&] {
    for (const auto& id : imported) attachment_files_.Remove(id).IgnoreError();
  };
  for (size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].attachments.empty()) continue;
    auto list = ImportAttachments(requests[i].attachments, &fingerprints[i]);
    if (!list.ok()) {
      drop_imported();
      return list.status();
    }
    for (const auto& a : *list) imported.push_back(a.object);
    attachments[i] = std::move(*list);
  }
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  std::vector<Message> out;
  Status status;
  for (size_t i = 0; i < requests.size() && status.ok(); ++i) {
    if (!attachments[i].empty()) {
      status = DedupeAttachments(txn, &attachments[i], fingerprints[i]);
      if (!status.ok()) break;
    }
    std::vector<Attachment> sent = attachments[i];
    auto m = SendInTxn(txn, requests[i], std::move(attachments[i]));
    if (!m.ok()) {
      status = m.status();
      break;
    }
    // A delete of this id that was waiting applied at once: nothing holds
    // the objects made for it.
    if (!sent.empty() && m->attachments.empty()) status = ReleaseAttachments(txn, sent, 0);
    out.push_back(std::move(*m));
  }
  if (!status.ok()) {
    lock.unlock();
    drop_imported();
    return status;
  }
  // A commit that fails may still have written (its WAL sync failed): the
  // objects stay, and the next writable open removes those no record names.
  TIDINGS_RETURN_IF_ERROR(Commit(txn, lock));
  return out;
}

Result<Message> StoreImpl::SendInTxn(Txn& txn, const SendRequest& req,
                                     std::vector<Attachment> attachments) {
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
  op.attachments = std::move(attachments);
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

}  // namespace tidings::engine
