// Schema versions: what the records in the database mean (kSchemaVersion in
// engine/store_impl.h), and the migrations from each version to the next.
#include <functional>

#include "engine/store_impl.h"

namespace tidings::engine {
namespace {

// Migrations from schema version N to N+1, applied in order at open.
using Migration = std::function<Status(rocksdb::DB*, rocksdb::WriteBatch*)>;
std::vector<Migration>& Migrations() {
  static std::vector<Migration> migrations = {
      // v1 -> v2: nothing to rewrite, only the version moves on.
      [](rocksdb::DB*, rocksdb::WriteBatch*) { return Status::Ok(); },
      // v2 -> v3: the search family. Its index is built after the schema
      // moved on (PrepareSearchIndex, engine/search_build.cc): resumable,
      // in chunks, with progress - not one batch.
      [](rocksdb::DB*, rocksdb::WriteBatch*) { return Status::Ok(); },
      // v3 -> v4: the attachments family, created by the open; nothing to
      // rewrite (no record has attachments yet).
      [](rocksdb::DB*, rocksdb::WriteBatch*) { return Status::Ok(); },
      // v4 -> v5: conversation records become checkpoints; the records
      // whose last_order is below their newest message are repaired in the
      // version's own batch (RepairConversationOrder).
      [](rocksdb::DB*, rocksdb::WriteBatch*) { return Status::Ok(); },
      // v5 -> v6: records carry their unread count, counted once in the
      // version's own batch (CountUnreadInRecords).
      [](rocksdb::DB*, rocksdb::WriteBatch*) { return Status::Ok(); },
  };
  return migrations;
}

}  // namespace

Status StoreImpl::UpgradeSchema(const std::string& version) {
  if (version.size() != 8) return DataLoss("the store's schema version record is corrupt");
  uint64_t schema = GetFixed64BE(version.data());
  if (schema > kSchemaVersion) {
    return FailedPrecondition("the store has schema v" + std::to_string(schema) +
                              ", newer than this Tidings (v" + std::to_string(kSchemaVersion) +
                              "); upgrade Tidings");
  }
  if (options_.read_only && schema < kOldestSchemaReadable) {
    return FailedPrecondition("the store needs a schema upgrade; open it for writing once");
  }
  // The migrations read as the store's user (v5 -> v6 counts its unread).
  TIDINGS_RETURN_IF_ERROR(LoadIdentity());
  if (schema < kSchemaVersion && !options_.read_only) {
    for (uint64_t v = schema; v < kSchemaVersion; ++v) {
      rocksdb::WriteBatch batch;
      TIDINGS_RETURN_IF_ERROR(Migrations().at(static_cast<size_t>(v - 1))(db_, &batch));
      Txn mt;
      mt.batch = std::move(batch);
      if (v == 4) TIDINGS_RETURN_IF_ERROR(RepairConversationOrder(mt));
      if (v == 5) TIDINGS_RETURN_IF_ERROR(CountUnreadInRecords(mt));
      std::string nv;
      PutFixed64BE(&nv, v + 1);
      TxnPut(mt, kMeta, "schema_version", nv);
      std::unique_lock<std::mutex> lock(write_mu_);
      TIDINGS_RETURN_IF_ERROR(Commit(mt, lock));
    }
  }
  return Status::Ok();
}

// A v4 record is a whole summary, but a message clamped to server time used
// to set last_order to its new, lower key even with other messages above it:
// read as a v5 checkpoint, those would count twice. Their newest message's
// order is what v5 needs (and what a v4 reader should have shown).
Status StoreImpl::RepairConversationOrder(Txn& txn) {
  TIDINGS_ASSIGN_OR_RETURN(std::vector<Conversation> records, AllConversations(/*as_stored=*/true));
  for (auto& c : records) {
    std::string key, id;
    TIDINGS_RETURN_IF_ERROR(NewestMessage(txn, c.id, &key, &id));
    OrderKey newest;
    if (key.size() != 32 || !OrderKey::Decode(std::string_view(key).substr(16), &newest) ||
        !(c.last_order < newest)) {
      continue;
    }
    c.last_order = newest;
    c.last_message_id = id;
    StoreConversation(txn, c);
  }
  return Status::Ok();
}

// A v5 record has no unread count: each becomes its summary (caught up with
// the messages after it), counted from the messages once. Every record is
// counted, not only those without a count: the v4 -> v5 repair wrote its
// records in the current format, with a count of 0.
Status StoreImpl::CountUnreadInRecords(Txn& txn) {
  TIDINGS_ASSIGN_OR_RETURN(std::vector<Conversation> summaries, AllConversations());
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kMessages]));
  for (auto& c : summaries) {
    TIDINGS_ASSIGN_OR_RETURN(c.unread_count, CountUnread(c, it.get()));
    StoreConversation(txn, c);
  }
  return Status::Ok();
}

}  // namespace tidings::engine
