// Opening a store: the header, the keys, RocksDB with its options, the
// store's identity; and Store::Open. See engine/store.h for the contract.
#include <rocksdb/convenience.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "common/lines.h"
#include "engine/encrypted_env.h"
#include "engine/open_retry.h"
#include "engine/search_index.h"
#include "engine/settle.h"
#include "engine/store_dir.h"
#include "engine/store_impl.h"
#include "engine/store_keys.h"

namespace tidings::engine {
namespace {

namespace fs = std::filesystem;

// How long a closing writer waits for RocksDB's compactions (settle.h): ample
// for the few small level-0 tables a short-lived writer leaves; a larger
// compaction is abandoned and runs again in a later writer.
constexpr std::chrono::milliseconds kSettleBudget{1000};

// Read-only opens that raced a writer's file deletions: 16 attempts back off
// for 5 + 10 + ... + 320 ms, then 320 ms each, ~3.5 s in all, before the
// open gives up with UNAVAILABLE.
constexpr int kReadOnlyOpenAttempts = 16;

}  // namespace

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string detail = s.ToString();
  if (s.IsCorruption()) {
    return DataLoss(std::string(what) + ": the store's files are corrupt or were tampered with (" +
                    detail + "); run `tidings verify` and restore from a backup");
  }
  if (s.IsIOError() && detail.find("lock") != std::string::npos) {
    return Busy(std::string(what) +
                ": the store is open for writing in another process (a running daemon?); "
                "open it read-only or stop that process");
  }
  if (s.IsIOError() && detail.find("No space") != std::string::npos) {
    return ResourceExhausted(std::string(what) + ": the disk is full (" + detail + ")");
  }
  if (s.IsIOError()) return IOError(std::string(what) + ": " + detail);
  if (s.IsNotFound()) return NotFound(std::string(what) + ": " + detail);
  if (s.IsTryAgain()) return Unavailable(std::string(what) + ": " + detail);
  if (s.IsInvalidArgument()) return InvalidArgument(std::string(what) + ": " + detail);
  return Internal(std::string(what) + ": " + detail);
}

Status StoreImpl::Init(crypto::KeySource key) {
  TIDINGS_RETURN_IF_ERROR(crypto::Init());
  const std::string header_path = path_ + "/" + kHeaderFile;
  bool exists = fs::exists(header_path);
  if (!exists && !options_.create_if_missing) {
    return NotFound("no Tidings store at " + path_ + "; create one with `tidings init`");
  }
  if (exists && options_.error_if_exists) {
    return AlreadyExists("a Tidings store already exists at " + path_);
  }
  if (key.kind() == crypto::KeySource::Kind::kNone) {
    return InvalidArgument("no key given: pass a key file, a passphrase or raw key bytes");
  }
  if (!exists && !options_.read_only) TIDINGS_RETURN_IF_ERROR(CheckNewStoreDirectory(path_));
  Header header;
  if (exists) {
    TIDINGS_ASSIGN_OR_RETURN(std::string raw, ReadFile(header_path));
    TIDINGS_RETURN_IF_ERROR(DecodeHeader(raw, &header, header_path));
  } else {
    TIDINGS_RETURN_IF_ERROR(CreateDirectoryAndHeader(key, &header));
  }
  TIDINGS_RETURN_IF_ERROR(UnlockKeys(key, exists, &header));

  if (!exists) {
    // Only a creation this code marked as begun is ever cleared (store_dir.h).
    TIDINGS_RETURN_IF_ERROR(BeginCreation(path_));
  } else if (!fs::exists(path_ + "/" + db_dir_ + "/CURRENT")) {
    return DataLoss("the store at " + path_ + " has a header but no database files; restore it");
  }
  TIDINGS_RETURN_IF_ERROR(OpenDb(!exists));
  if (!options_.read_only) RemoveStaleDbDirs();
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kPending]));
    it->SeekToFirst();
    TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
    may_have_waiting_ops_ = it->Valid();
  }

  // Identity and schema.
  Txn txn;
  auto version = TxnRead(txn, kMeta, "schema_version");
  if (!version.ok()) return version.status();
  if (!exists || !version->has_value()) {
    if (options_.read_only) return DataLoss("the store at " + path_ + " has no schema version");
    TIDINGS_RETURN_IF_ERROR(CreateIdentity(header_path, header));
    EndCreation(path_);
    return Status::Ok();
  }
  if (!options_.read_only) EndCreation(path_);
  return UpgradeSchema(**version);  // loads the identity too
}

Status StoreImpl::CreateDirectoryAndHeader(const crypto::KeySource& key, Header* header) {
  if (options_.read_only) return NotFound("no Tidings store at " + path_);
  if (options_.user_id.empty()) return InvalidArgument("a new store needs the local user id");
  TIDINGS_RETURN_IF_ERROR(ValidateId("user id", options_.user_id));
  if (key.kind() == crypto::KeySource::Kind::kNone) return InvalidArgument("no key given");
  std::error_code ec;
  fs::create_directories(path_, ec);
  if (ec) return IOError("cannot create store directory " + path_ + ": " + ec.message());
  ::chmod(path_.c_str(), 0700);
  header->records = options_.record_protection;
  return Status::Ok();
}

Status StoreImpl::UnlockKeys(const crypto::KeySource& key, bool exists, Header* header) {
  StoreKeys keys;
  if (exists) {
    TIDINGS_ASSIGN_OR_RETURN(keys, UnlockHeader(*header, key, path_));
  } else {
    TIDINGS_ASSIGN_OR_RETURN(
        keys, NewStoreKeys(key, crypto::PassphraseParams::New(options_.passphrase_profile),
                           options_.create_format, header));
  }
  InstallKeys(std::move(keys), *header);
  return Status::Ok();
}

Status StoreImpl::CreateIdentity(const std::string& header_path, const Header& header) {
  if (options_.id_random) {
    options_.id_random(reinterpret_cast<uint8_t*>(&replica_id_), sizeof(replica_id_));
  } else {
    replica_id_ = crypto::RandomU64();
  }
  user_id_ = options_.user_id;
  Txn txn;
  std::string v, r;
  PutFixed64BE(&v, kSchemaVersion);
  PutFixed64BE(&r, replica_id_);
  TxnPut(txn, kMeta, "schema_version", v);
  TxnPut(txn, kMeta, "replica_id", r);
  TxnPut(txn, kMeta, "user_id", user_id_);
  TxnPut(txn, kMeta, "id_keys", "time-prefixed");
  time_prefixed_ids_ = true;
  {
    std::unique_lock<std::mutex> lock(write_mu_);
    TIDINGS_RETURN_IF_ERROR(Commit(txn, lock));
  }
  TIDINGS_RETURN_IF_ERROR(FromRocks(db_->SyncWAL(), "cannot sync the new store"));
  // The header goes last, atomically: its presence means "created".
  return WriteFileAtomically(header_path, EncodeHeader(header, header_mac_key_));
}

Status StoreImpl::LoadIdentity() {
  Txn txn;
  auto replica = TxnRead(txn, kMeta, "replica_id");
  auto user = TxnRead(txn, kMeta, "user_id");
  if (!replica.ok()) return replica.status();
  if (!user.ok()) return user.status();
  if (!replica->has_value() || (*replica)->size() != 8 || !user->has_value()) {
    return DataLoss("the store's identity records are missing or corrupt");
  }
  replica_id_ = GetFixed64BE((*replica)->data());
  user_id_ = **user;
  auto hlc = TxnRead(txn, kMeta, "hlc");
  if (!hlc.ok()) return hlc.status();
  if (hlc->has_value() && (*hlc)->size() == 8) clock_.Restore(GetFixed64BE((*hlc)->data()));
  auto seq = TxnRead(txn, kMeta, "outbox_seq");
  if (!seq.ok()) return seq.status();
  if (seq->has_value() && (*seq)->size() == 8) outbox_seq_ = GetFixed64BE((*seq)->data());
  auto id_keys = TxnRead(txn, kMeta, "id_keys");
  if (!id_keys.ok()) return id_keys.status();
  time_prefixed_ids_ = id_keys->has_value() && **id_keys == "time-prefixed";
  auto fan_out = TxnRead(txn, kMeta, "outbox_backends");
  if (!fan_out.ok()) return fan_out.status();
  if (fan_out->has_value()) outbox_backends_ = SplitLines(**fan_out);  // one name per line
  return RecoverHighWater();
}

namespace {

// The options of every column family: Bloom filters, an 8 KiB-block cache,
// LZ4 for authenticated-only stores, and per-family memtable tuning.
std::vector<rocksdb::ColumnFamilyDescriptor> FamilyDescriptors(
    const rocksdb::Options& o, std::shared_ptr<rocksdb::Cache> block_cache,
    bool authenticated_only) {
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_cache = std::move(block_cache);
  // 8 KiB blocks (before compression): the newest page of a conversation
  // (50 x ~450 bytes) is three or four blocks, so the default 32 MiB cache
  // holds the newest pages of ~1,000 conversations. With 16 KiB blocks the
  // same pages needed ~40 MiB and a page read missed the cache: p50 1.5x
  // slower, for 4% less disk.
  table.block_size = 8 << 10;
  table.whole_key_filtering = true;
  rocksdb::ColumnFamilyOptions cf_options(o);
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Authenticated values are plaintext inside the encrypted files, so blocks
  // compress (chat text ~2x) before the file cipher sees them; sealed values
  // are ciphertext and would only cost the compressor's time.
  cf_options.compression = rocksdb::kNoCompression;
  if (authenticated_only) {
    for (auto c : rocksdb::GetSupportedCompressions()) {
      if (c == rocksdb::kLZ4Compression) cf_options.compression = c;
    }
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (int i = 0; i < kNumCf; ++i) {
    descs.emplace_back(kCfNames[i], cf_options);
    // Memtable insert hints: a send inserts next to the last key written with
    // the same prefix (the conversation's newest message and summary, the
    // newest outbox entry and id), so the skiplist search starts there
    // instead of at the top: appends 15-20% faster.
    size_t hint_prefix = 0;
    if (i == kMessages || i == kConversations) hint_prefix = 16;  // H(conversation)
    if (i == kById || i == kOutbox) hint_prefix = 4;              // high bytes of time / sequence
    if (hint_prefix != 0) {
      descs.back().options.memtable_insert_with_hint_prefix_extractor.reset(
          rocksdb::NewFixedPrefixTransform(hint_prefix));
    }
    // Every merged message first asks by_id whether it is a duplicate, and
    // the answer is almost always no: a Bloom filter over the memtable
    // answers that without searching the skiplist (SST files have theirs).
    if (i == kById) {
      descs.back().options.memtable_whole_key_filtering = true;
      descs.back().options.memtable_prefix_bloom_size_ratio = 0.02;
    }
    // The index is read by term (a key prefix): a prefix Bloom filter
    // answers "no such word" without a block read. Whole keys (a fold's docs
    // and ranks records) are looked up for found candidates only.
    if (i == kSearch) {
      rocksdb::BlockBasedTableOptions by_term = table;
      by_term.whole_key_filtering = false;
      descs.back().options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(by_term));
      descs.back().options.prefix_extractor.reset(
          rocksdb::NewFixedPrefixTransform(search_index::kTermHashBytes));
    }
  }
  return descs;
}

}  // namespace

Status StoreImpl::OpenDb(bool create) {
  rocksdb::Options& o = db_options_;
  o.env = env_.get();
  o.create_if_missing = create;
  o.create_missing_column_families = !options_.read_only;
  // RocksDB's LOG bypasses the file cipher and was seen to contain user keys
  // in hex: no log is written, but corruption it reports becomes an error.
  o.info_log = watch_.NewLogger();
  o.listeners = {watch_.NewListener()};
  o.recycle_log_file_num = 0;  // recycling rewrites a file under the same nonce
  o.keep_log_file_num = 1;
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  o.paranoid_checks = true;
  // Every table is opened, and its meta blocks checked, at open (and at
  // creation by a flush or compaction): a damaged table fails the open
  // instead of a later read, and no read path opens tables lazily.
  o.max_open_files = -1;
  o.max_background_jobs = 2;
  o.skip_stats_update_on_db_open = true;
  o.max_file_opening_threads = 1;  // a thread per column family per open otherwise
  // One cache for every family's blocks and the search index's documents
  // (engine/search.cc).
  if (block_cache_ == nullptr) block_cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes);
  if (options_.write_buffer_bytes != 0) {
    // The memtables' memory is reserved in the block cache as they grow, so
    // the cache's size bounds blocks and unflushed writes together: one
    // memory budget for the store (docs/engine.md, "RocksDB tuning").
    o.write_buffer_manager =
        std::make_shared<rocksdb::WriteBufferManager>(options_.write_buffer_bytes, block_cache_);
    o.write_buffer_size = std::max<size_t>(options_.write_buffer_bytes / 2, 1 << 20);
  }
  const auto descs =
      FamilyDescriptors(o, block_cache_, crypto::IsAuthenticatedOnly(sealer_->mode()));
  const std::string db_path = path_ + "/" + db_dir_;
  watch_.Reset();
  rocksdb::Status s;
  if (options_.read_only) {
    // A writer may delete files between the MANIFEST read and their open: a
    // race, tried again on a fresh MANIFEST (open_retry.h).
    s = OpenRetryingVanishedFiles(
        [&] {
          CloseDb();
          cfs_.clear();
          watch_.Reset();
          return OpenReadOnly(o, db_path, descs);
        },
        db_path, kReadOnlyOpenAttempts);
  } else if (create) {
    // One manifest write and one OPTIONS file for all families, instead of
    // one each: creating a store is 4x faster.
    std::vector<rocksdb::ColumnFamilyDescriptor> first(descs.begin(), descs.begin() + 1);
    s = rocksdb::DB::Open(o, db_path, first, &cfs_, &db_);
    if (s.ok()) {
      std::vector<rocksdb::ColumnFamilyHandle*> rest;
      s = db_->CreateColumnFamilies(
          std::vector<rocksdb::ColumnFamilyDescriptor>(descs.begin() + 1, descs.end()), &rest);
      cfs_.insert(cfs_.end(), rest.begin(), rest.end());
    }
  } else {
    s = rocksdb::DB::Open(o, db_path, descs, &cfs_, &db_);
  }
  if (!s.ok()) {
    CloseDb();
    return FromRocks(s, "cannot open the store at " + path_);
  }
  if (Status damaged = watch_.status(); !damaged.ok()) {
    CloseDb();
    return damaged;
  }
  ::chmod(db_path.c_str(), 0700);
  if (!options_.read_only) TightenFileModes(db_path);
  return Status::Ok();
}

void StoreImpl::TightenFileModes(const std::string& db_path) const {
  const auto tighten = [](const fs::path& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
      ::chmod(file.c_str(), S_IRUSR | S_IWUSR);
    }
  };
  ::chmod(path_.c_str(), 0700);
  tighten(fs::path(path_) / kHeaderFile);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(db_path, ec)) tighten(e.path());
}

void StoreImpl::CloseDb(bool settle) {
  if (db_ == nullptr) return;
  if (settle && !options_.read_only && watch_.status().ok()) {
    // Best effort: a record left lagging is caught up by its readers.
    WriteLaggingSummaries().IgnoreError();
    SettleBeforeClose(db_, cfs_, kSettleBudget);
  }
  for (auto* h : cfs_) {
    if (h != nullptr) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  cfs_.clear();
  db_->Close().PermitUncheckedError();
  delete db_;
  db_ = nullptr;
}

rocksdb::Status StoreImpl::OpenReadOnly(const rocksdb::Options& o, const std::string& db_path,
                                        std::vector<rocksdb::ColumnFamilyDescriptor> descs) {
  // A store no writer opened since a family was added (search, then
  // attachments) lacks it and those after: it opens without them (null
  // handles), and Search says to open it for writing once.
  std::vector<std::string> present;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(o, db_path, &present);
  if (!s.ok()) return s;
  size_t have = kFirstAddedCf;
  while (have < kNumCf &&
         std::find(present.begin(), present.end(), kCfNames[have]) != present.end()) {
    ++have;
  }
  descs.resize(have);
  s = rocksdb::DB::OpenForReadOnly(o, db_path, descs, &cfs_, &db_);
  if (s.ok()) cfs_.resize(kNumCf, nullptr);
  return s;
}

Status StoreImpl::Refresh() {
  if (!options_.read_only) return Status::Ok();  // a writer always sees its own writes
  {
    std::unique_lock<std::shared_mutex> lock(db_mu_);
    CloseDb();
    TIDINGS_RETURN_IF_ERROR(OpenDb(false));
  }
  // The writer may have built, rebuilt or turned off the index since.
  return PrepareSearchIndex();
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, crypto::KeySource key,
                                           const StoreOptions& options) {
  if (path.empty()) return InvalidArgument("no store path given (use --store or TIDINGS_STORE)");
  auto store = std::make_unique<StoreImpl>(path, options);
  TIDINGS_RETURN_IF_ERROR(store->Init(std::move(key)));
  TIDINGS_RETURN_IF_ERROR(store->PrepareSearchIndex());
  if (!options.read_only) {
    TIDINGS_RETURN_IF_ERROR(store->OpenAttachments());
    TIDINGS_RETURN_IF_ERROR(store->PurgeExpired().status());
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace tidings::engine
