// Rewrapping and rotating a store's keys; see engine/rekey.h.
#include "engine/rekey.h"

#include <filesystem>

#include "engine/store_impl.h"

namespace tidings::engine {

namespace fs = std::filesystem;

namespace {

// "db" or "db-<digits>": the names a database directory can have.
bool IsDbDirName(const std::string& name) {
  if (name == kDbDir) return true;
  if (name.size() < 4 || name.compare(0, 3, "db-") != 0) return false;
  return name.find_first_not_of("0123456789", 3) == std::string::npos;
}

Result<crypto::KeySource> CloneKeySource(const crypto::KeySource& k) {
  switch (k.kind()) {
    case crypto::KeySource::Kind::kRaw: {
      TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey raw, k.raw().Clone());
      return crypto::KeySource::Raw(std::move(raw));
    }
    case crypto::KeySource::Kind::kPassphrase:
      return crypto::KeySource::Passphrase(k.passphrase());
    case crypto::KeySource::Kind::kKeyFile:
      return crypto::KeySource::KeyFile(k.path());
    case crypto::KeySource::Kind::kNone:
      break;
  }
  return InvalidArgument("no key given: pass the store's key file, passphrase or raw key");
}

constexpr size_t kBatchBytes = 4 << 20;

}  // namespace

void StoreImpl::RemoveStaleDbDirs() const {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(path_, ec)) {
    const std::string name = e.path().filename().string();
    if (name == db_dir_ || !IsDbDirName(name) || !e.is_directory(ec)) continue;
    fs::remove_all(e.path(), ec);
  }
}

// Does a rekey with access to both stores' internals.
class Rekeyer {
 public:
  Rekeyer(std::string path, RekeyOptions options)
      : path_(std::move(path)), options_(std::move(options)) {}

  Result<RekeyReport> Run(crypto::KeySource current) {
    if (path_.empty()) return InvalidArgument("no store path given (use --store or TIDINGS_STORE)");
    crypto::KeySource next;
    if (options_.new_key.kind() == crypto::KeySource::Kind::kNone) {
      TIDINGS_ASSIGN_OR_RETURN(next, CloneKeySource(current));
    } else {
      next = std::move(options_.new_key);
    }
    // A writable open: the writer lock keeps every other writer out, and the
    // key is checked the usual way.
    src_ = std::make_unique<StoreImpl>(path_, StoreOptions{});
    src_->keep_data_key_ = true;
    TIDINGS_RETURN_IF_ERROR(src_->Init(std::move(current)));
    const std::string header_path = path_ + "/" + kHeaderFile;
    Header old;
    TIDINGS_ASSIGN_OR_RETURN(std::string raw, ReadFile(header_path));
    TIDINGS_RETURN_IF_ERROR(DecodeHeader(raw, &old, header_path));

    Header next_header = old;
    crypto::DataKeys data;
    TIDINGS_ASSIGN_OR_RETURN(data.data, src_->data_key_.Clone());
    TIDINGS_ASSIGN_OR_RETURN(data.naming, src_->hash_key_.Clone());
    if (old.format < 4) {
      next_header.store_id = NewStoreId();
      next_header.db_dir = kDbDir;
      next_header.generation = 0;
      next_header.store_id_in_ad = false;  // the records do not bind it yet
    }
    if (options_.rotate_data_key) {
      TIDINGS_ASSIGN_OR_RETURN(data.data, crypto::SecretKey::Random());
      next_header.generation += 1;
      next_header.db_dir = "db-" + std::to_string(next_header.generation);
      next_header.store_id_in_ad = true;
    }
    TIDINGS_RETURN_IF_ERROR(WrapForKeySource(next, Limits(old, next), data, &next_header));
    TIDINGS_ASSIGN_OR_RETURN(StoreKeys keys, DeriveStoreKeys(std::move(data), next_header.records));
    const std::string encoded = EncodeHeader(next_header, keys.header_mac);

    RekeyReport report;
    if (options_.rotate_data_key) {
      TIDINGS_ASSIGN_OR_RETURN(report.records, CopyInto(std::move(keys), next_header));
    }
    // The commit point: the new header, atomically.
    TIDINGS_RETURN_IF_ERROR(WriteFileAtomically(header_path, encoded));
    src_->db_dir_ = next_header.db_dir;
    src_->CloseDb();
    src_->RemoveStaleDbDirs();
    report.format = next_header.format;
    report.generation = next_header.generation;
    return report;
  }

 private:
  // The Argon2id limits of the new header: the profile asked for, else the
  // current limits while the key stays a passphrase, else interactive.
  crypto::PassphraseParams Limits(const Header& old, const crypto::KeySource& next) const {
    if (options_.profile) return crypto::PassphraseParams::New(*options_.profile);
    if (next.kind() == crypto::KeySource::Kind::kPassphrase &&
        old.key_kind == static_cast<uint8_t>(crypto::KeySource::Kind::kPassphrase)) {
      return old.params;
    }
    return crypto::PassphraseParams::NewInteractive();
  }

  // Copies every record of every column family from src_ into a new
  // database `header.db_dir` under `keys`; the new files are durable when it
  // returns. On failure the new directory is removed.
  Result<uint64_t> CopyInto(StoreKeys keys, const Header& header) {
    dst_ = std::make_unique<StoreImpl>(path_, StoreOptions{});
    dst_->InstallKeys(std::move(keys), header);
    const std::string dir = path_ + "/" + header.db_dir;
    std::error_code ec;
    fs::remove_all(dir, ec);  // a leftover of an interrupted rotation
    auto copied = CopyRecords();
    if (copied.ok()) {
      Status flushed = FromRocks(dst_->db_->Flush(rocksdb::FlushOptions(), dst_->cfs_),
                                 "cannot write the re-encrypted store");
      if (!flushed.ok()) copied = flushed;
    }
    dst_->CloseDb();
    if (!copied.ok()) fs::remove_all(dir, ec);
    return copied;
  }

  Result<uint64_t> CopyRecords() {
    TIDINGS_RETURN_IF_ERROR(dst_->OpenDb(true));
    uint64_t total = 0, done = 0;
    for (auto* cf : src_->cfs_) {
      uint64_t n = 0;
      if (src_->db_->GetIntProperty(cf, "rocksdb.estimate-num-keys", &n)) total += n;
    }
    rocksdb::WriteOptions wo;
    wo.disableWAL = true;  // flushed at the end; a crash before that leaves a dir nobody names
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    std::string ad, scratch, sealed;
    for (int cf = 0; cf < kNumCf; ++cf) {
      rocksdb::WriteBatch batch;
      std::unique_ptr<rocksdb::Iterator> it(src_->db_->NewIterator(ro, src_->cfs_[cf]));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        src_->AdInto(&ad, cf, it->key().ToStringView());
        auto plain = src_->sealer_->OpenView(ad, it->value().ToStringView(), &scratch);
        if (!plain.ok()) {
          return DataLoss(std::string("a record in ") + kCfNames[cf] +
                          " failed authentication; nothing was changed: run `tidings verify`");
        }
        dst_->AdInto(&ad, cf, it->key().ToStringView());
        sealed.clear();
        dst_->sealer_->SealTo(ad, *plain, &sealed);
        batch.Put(dst_->cfs_[cf], it->key(), sealed).PermitUncheckedError();
        ++done;
        if (batch.GetDataSize() >= kBatchBytes) {
          TIDINGS_RETURN_IF_ERROR(WriteBatch(wo, &batch, done, total));
        }
      }
      TIDINGS_RETURN_IF_ERROR(src_->ReadDone(*it));
      TIDINGS_RETURN_IF_ERROR(WriteBatch(wo, &batch, done, total));
    }
    return done;
  }

  Status WriteBatch(const rocksdb::WriteOptions& wo, rocksdb::WriteBatch* batch, uint64_t done,
                    uint64_t total) {
    TIDINGS_RETURN_IF_ERROR(
        FromRocks(dst_->db_->Write(wo, batch), "cannot write the re-encrypted store"));
    batch->Clear();
    if (options_.progress) options_.progress(done, std::max(done, total));
    return Status::Ok();
  }

  const std::string path_;
  RekeyOptions options_;
  std::unique_ptr<StoreImpl> src_;
  std::unique_ptr<StoreImpl> dst_;
};

Result<RekeyReport> Rekey(const std::string& path, crypto::KeySource current,
                          RekeyOptions options) {
  return Rekeyer(path, std::move(options)).Run(std::move(current));
}

}  // namespace tidings::engine
