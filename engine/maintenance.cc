// Maintenance: statistics, flush and compaction.
#include <filesystem>

#include "engine/store_impl.h"

namespace tidings::engine {
namespace {

namespace fs = std::filesystem;

}  // namespace

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
      TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
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

Status StoreImpl::Flush() {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  rocksdb::FlushOptions fo;
  return FromRocks(db_->Flush(fo, cfs_), "flush failed");
}

Status StoreImpl::Compact() {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  // The last level's tables are merged too: flushed tables whose keys do not
  // overlap (new messages, new ids) are moved down whole, so without it many
  // small tables stay small, each one more file every open must read.
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  for (auto* h : cfs_) {
    TIDINGS_RETURN_IF_ERROR(
        FromRocks(db_->CompactRange(options, h, nullptr, nullptr), "compaction failed"));
  }
  return Status::Ok();
}

}  // namespace tidings::engine
