// Reads for the app and for sync: messages, pages, conversations with their
// unread counts, and the export walk.
#include <algorithm>

#include "engine/store_impl.h"

namespace tidings::engine {

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
  TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
  return out;
}

Result<Conversation> StoreImpl::GetConversation(const std::string& id) {
  TIDINGS_RETURN_IF_ERROR(ValidateId("conversation id", id));
  Txn txn;
  bool existed = false;
  TIDINGS_ASSIGN_OR_RETURN(Conversation c, LoadConversation(txn, id, &existed));
  if (!existed) return NotFound("no conversation with this id in the store");
  return c;
}

Result<std::vector<Conversation>> StoreImpl::AllConversations(bool as_stored) {
  std::vector<Conversation> all;
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  // Records and the messages they lag behind, as of one state.
  auto view = ConsistentView();
  rocksdb::ReadOptions ro;
  if (view) ro.snapshot = view->snapshot();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kConversations]));
  std::unique_ptr<rocksdb::Iterator> messages(db_->NewIterator(ro, cfs_[kMessages]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto plain =
        sealer_->Open(Ad(kConversations, it->key().ToString()), it->value().ToStringView());
    Conversation c;
    bool counted = false;
    if (!plain.ok() || !DecodeConversation(*plain, &c, &counted)) {
      return DataLoss("a conversation record failed authentication; run `tidings verify`");
    }
    uint32_t lag = 0;
    if (!as_stored) TIDINGS_RETURN_IF_ERROR(CatchUpConversation(&c, messages.get(), &lag));
    if (!as_stored && !counted) {
      TIDINGS_ASSIGN_OR_RETURN(c.unread_count, CountUnread(c, messages.get()));
    }
    all.push_back(std::move(c));
  }
  TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
  return all;
}

Result<std::vector<Conversation>> StoreImpl::Conversations(size_t limit) {
  TIDINGS_ASSIGN_OR_RETURN(std::vector<Conversation> all, AllConversations());
  std::sort(all.begin(), all.end(), [](const Conversation& a, const Conversation& b) {
    if (a.last_order != b.last_order) return b.last_order < a.last_order;
    return a.id < b.id;
  });
  if (limit != 0 && all.size() > limit) all.resize(limit);
  return all;
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
  return ReadDone(*it);
}

}  // namespace tidings::engine
