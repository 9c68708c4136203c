// The transaction overlay and commit: a Txn collects one call's writes as
// plaintext, reads through it see them, and Commit seals them into one
// WriteBatch. Durable commits share WAL fsyncs by hand (group commit, see
// WaitDurable); listeners hear of a write after it committed.
#include "engine/search_index.h"
#include "engine/store_impl.h"

namespace tidings::engine {

Result<std::optional<std::string>> StoreImpl::ReadSealed(int cf, const std::string& key) {
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  return ReadSealedLocked(cf, key, rocksdb::ReadOptions());
}

Result<std::optional<std::string>> StoreImpl::ReadSealedLocked(int cf, const std::string& key,
                                                               const rocksdb::ReadOptions& ro) {
  std::string sealed;
  rocksdb::Status s = db_->Get(ro, cfs_[static_cast<size_t>(cf)], key, &sealed);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read failed");
  TIDINGS_RETURN_IF_ERROR(watch_.status());  // a NotFound may be a hidden record
  if (s.IsNotFound()) return std::optional<std::string>();
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
  for (const auto& [key, summary] : txn.summaries) {
    if (summary.current) TxnPut(txn, kConversations, key, EncodeConversation(*summary.current));
  }
  SearchTotals totals = search_totals_;
  if (txn.indexed_messages != 0 || txn.indexed_terms != 0) {
    totals.messages = static_cast<uint64_t>(
        std::max<int64_t>(0, static_cast<int64_t>(totals.messages) + txn.indexed_messages));
    totals.terms = static_cast<uint64_t>(
        std::max<int64_t>(0, static_cast<int64_t>(totals.terms) + txn.indexed_terms));
    std::string v;
    PutFixed64BE(&v, totals.messages);
    PutFixed64BE(&v, totals.terms);
    TxnPut(txn, kMeta, search_index::kTotalsKey, std::move(v));
  }
  {
    // A change of the index's tail is written and copied to memory together
    // (queries take their snapshot and read the copy under the shared lock).
    std::unique_lock<std::shared_mutex> tail_lock(search_tail_mu_, std::defer_lock);
    const bool tail_changes = !txn.search_tail.empty() || txn.search_tail_clear;
    if (tail_changes) tail_lock.lock();
    std::shared_lock<std::shared_mutex> lock(db_mu_);
    std::string sealed, ad;
    for (const auto& [where, value] : txn.overlay) {
      rocksdb::ColumnFamilyHandle* cf = cfs_[static_cast<size_t>(where.first)];
      if (value.has_value()) {
        // A summary readers derive from the messages stays unwritten.
        if (where.first == kConversations && SummaryDeferred(txn, where.second)) continue;
        sealed.clear();
        AdInto(&ad, where.first, where.second);
        sealer_->SealTo(ad, *value, &sealed);
        txn.batch.Put(cf, where.second, sealed).PermitUncheckedError();
      } else {
        txn.batch.Delete(cf, where.second).PermitUncheckedError();
      }
    }
    s = db_->Write(wo, &txn.batch);
    if (s.ok() && tail_changes) ApplySearchTail(txn);
    if (s.ok()) ForgetCachedIndexRecords(txn);
  }
  if (!s.ok()) return FromRocks(s, "write failed");
  search_totals_ = totals;
  FoldSearchTail();
  if (!options_.read_only) CacheSummaries(txn);
  const uint64_t ticket = written_.fetch_add(1) + 1;
  write_lock.unlock();
  if (options_.durability == Durability::kSync) TIDINGS_RETURN_IF_ERROR(WaitDurable(ticket));
  // Only once the batch that let them go is durable: a power cut before
  // must not leave a record whose file is gone.
  RemoveFreedObjects(txn);
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
    const bool deferred = SummaryDeferred(txn, it->first.second);
    summary_cache_[it->first.second] = {*it->second,
                                        deferred ? txn.summaries.at(it->first.second).lag : 0};
  }
}

Status StoreImpl::WriteLaggingSummaries() {
  std::unique_lock<std::mutex> lock(write_mu_);
  Txn txn;
  {
    std::lock_guard<std::mutex> cache_lock(summary_cache_mu_);
    for (const auto& [key, summary] : summary_cache_) {
      if (summary.lag != 0) TxnPut(txn, kConversations, key, summary.plain);
    }
  }
  if (txn.overlay.empty()) return Status::Ok();
  return Commit(txn, lock);
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

}  // namespace tidings::engine
