// Backups: an encrypted, authenticated, consistent snapshot of a store in one
// file, and the restore of one into a new directory.
//
// A backup file (format 1, docs/engine.md "Backups"):
//
//   "TIDBAK01"                  magic
//   u32 BE n, n bytes           the store header (the file TIDINGS), verbatim:
//                               nothing in it is secret, and the restore needs
//                               its salt and key check before any key exists
//   24 bytes                    the secretstream header
//   { u32 BE n, n bytes }...    crypto_secretstream_xchacha20poly1305 chunks
//                               under the store's backup sub-key
//
// The first chunk says "start" and is bound to the magic and the header, so
// neither can be swapped; the chunks after it hold records, each a family
// name, a key and the value as stored (already tagged or sealed under the
// store's record key, so the restore checks every one); then the files of
// the attachments the device holds, in pieces named "file" with the object
// id as key (each object's pieces in order, one piece per chunk); the last
// chunk, marked final, holds the count of records and pieces. A cut,
// reordered or altered file fails.
//
// The snapshot is one RocksDB snapshot (a read-only open is a fixed state
// anyway), so a backup taken while the store is written is consistent.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "crypto/secret_stream.h"
#include "engine/records.h"
#include "engine/store_impl.h"

namespace tidings::engine {
namespace {

namespace fs = std::filesystem;

constexpr char kBackupMagic[] = "TIDBAK01";
constexpr size_t kMagicBytes = 8;
constexpr char kStartText[] = "tidings backup start";
constexpr char kEndText[] = "tidings backup end";
constexpr size_t kChunkTarget = 64 << 10;      // plaintext bytes per chunk, about
constexpr uint32_t kMaxChunkBytes = 16 << 20;  // a record is at most ~100 KiB
constexpr size_t kFilePieceBytes = 1 << 20;    // an attachment file's piece
constexpr char kFileEntry[] = "file";          // not a family name
constexpr uint32_t kMaxHeaderBytes = 64 << 10;

std::string HeaderAd(std::string_view header) {
  std::string ad(kBackupMagic, kMagicBytes);
  ad.append(header);
  return ad;
}

// The backup file being written: under `path`.partial until it is whole,
// then linked to `path` (which never replaces an existing file).
class BackupFile {
 public:
  ~BackupFile() {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(partial_.c_str());
    }
  }
  Status Create(const std::string& path) {
    path_ = path;
    partial_ = path + ".partial";
    if (fs::exists(path)) {
      return AlreadyExists(path + " already exists. Choose another backup file");
    }
    fd_ = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) return IOError("cannot create " + partial_ + ": " + std::strerror(errno));
    ::fchmod(fd_, 0600);
    return Status::Ok();
  }
  Status Append(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return errno == ENOSPC ? ResourceExhausted("the disk is full: the backup is incomplete")
                               : IOError("cannot write " + partial_ + ": " + std::strerror(errno));
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }
  // Syncs, names it `path` (never over an existing file) and syncs the name.
  Status Finish() {
    if (::fsync(fd_) != 0) return IOError("cannot sync " + partial_ + ": " + std::strerror(errno));
    if (::link(partial_.c_str(), path_.c_str()) != 0) {
      return errno == EEXIST ? AlreadyExists(path_ + " appeared while backing up; choose another")
                             : IOError("cannot create " + path_ + ": " + std::strerror(errno));
    }
    SyncParentDirectory(path_);
    return Status::Ok();
  }

 private:
  std::string path_, partial_;
  int fd_ = -1;
};

// Reads a backup file front to back.
class BackupInput {
 public:
  ~BackupInput() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Open(const std::string& path) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      if (errno == ENOENT) return NotFound("no backup file at " + path);
      return IOError("cannot open " + path + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }
  // Exactly n bytes; DataLoss if the file ends first.
  Status Read(size_t n, std::string* out) {
    out->resize(n);
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::read(fd_, out->data() + done, n - done);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return IOError("cannot read " + path_ + ": " + std::strerror(errno));
      if (r == 0) return Truncated();
      done += static_cast<size_t>(r);
    }
    return Status::Ok();
  }
  Status ReadSized(uint32_t max, std::string* out) {
    std::string len;
    TIDINGS_RETURN_IF_ERROR(Read(4, &len));
    uint32_t n = GetFixed32BE(len.data());
    if (n > max) return DataLoss(path_ + " is not a Tidings backup or is damaged (a bad length)");
    return Read(n, out);
  }
  Status Truncated() const {
    return DataLoss(path_ + " ends early: the backup is incomplete or was cut. Use another backup");
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace

Status StoreImpl::Backup(const std::string& backup_path,
                         std::function<void(uint64_t, uint64_t)> progress) {
  if (backup_path.empty()) return InvalidArgument("no backup file given");
  TIDINGS_ASSIGN_OR_RETURN(std::string header, ReadFile(path_ + "/" + kHeaderFile));
  BackupFile file;
  TIDINGS_RETURN_IF_ERROR(file.Create(backup_path));
  std::string stream_header, out;
  TIDINGS_ASSIGN_OR_RETURN(auto stream,
                           crypto::SecretStreamWriter::Start(backup_key_, &stream_header));
  out.append(kBackupMagic, kMagicBytes);
  PutFixed32BE(&out, static_cast<uint32_t>(header.size()));
  out += header;
  out += stream_header;
  auto push = [&](std::string* plain, std::string_view ad, bool final) -> Status {
    std::string chunk;
    stream.Push(*plain, ad, final, &chunk);
    crypto::Wipe(plain);
    PutFixed32BE(&out, static_cast<uint32_t>(chunk.size()));
    out += chunk;
    Status s = file.Append(out);
    out.clear();
    return s;
  };
  std::string plain = kStartText;
  TIDINGS_RETURN_IF_ERROR(push(&plain, HeaderAd(header), false));

  std::shared_lock<std::shared_mutex> lock(db_mu_);
  uint64_t total = 0, done = 0;
  for (auto* h : cfs_) {
    uint64_t n = 0;
    if (h == nullptr) continue;  // a family a read-only open found missing
    db_->GetIntProperty(h, "rocksdb.estimate-num-keys", &n);
    total += n;
  }
  auto snapshot = ConsistentView();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot ? snapshot->snapshot() : nullptr;
  ro.verify_checksums = true;
  ro.fill_cache = false;
  std::string ad;
  std::vector<std::string> held;  // objects whose files the device holds
  for (int cf = 0; cf < kNumCf; ++cf) {
    if (cfs_[static_cast<size_t>(cf)] == nullptr) continue;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[static_cast<size_t>(cf)]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      // A damaged record would restore as a damaged record: say so now.
      AdInto(&ad, cf, it->key().ToStringView());
      auto opened = sealer_->Open(ad, it->value().ToStringView());
      if (!opened.ok()) {
        return DataLoss(std::string("a record in ") + kCfNames[cf] +
                        " failed authentication, so the backup stopped. Run `tidings verify`");
      }
      AttachmentRecord object;
      if (cf == kAttachments && it->key().starts_with(std::string(1, kObjectPrefix)) &&
          DecodeAttachment(*opened, &object) && object.info.held()) {
        held.push_back(object.info.object);
      }
      crypto::Wipe(&object.content_key);
      crypto::Wipe(&*opened);
      Writer w(&plain);
      w.Bytes(kCfNames[cf]);
      w.Bytes(it->key().ToStringView());
      w.Bytes(it->value().ToStringView());
      if (plain.size() >= kChunkTarget) TIDINGS_RETURN_IF_ERROR(push(&plain, {}, false));
      if (++done % 1024 == 0 && progress) progress(done, total);
    }
    TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
  }
  if (!plain.empty()) TIDINGS_RETURN_IF_ERROR(push(&plain, {}, false));
  // The files: a file sent and not uploaded yet has no other copy. They are
  // carried as stored (encrypted under their content keys).
  std::string piece;
  for (const auto& id : held) {
    const std::string path = attachment_files_.ObjectPath(id);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    // Removed since the snapshot (its message was deleted), or missing
    // already (`verify` reports it): the restore has the record only.
    if (fd < 0 && errno == ENOENT) continue;
    if (fd < 0)
      return IOError("cannot read an attachment's file: " + std::string(std::strerror(errno)));
    Status read = Status::Ok();
    for (;;) {
      piece.resize(kFilePieceBytes);
      const ssize_t n = ::read(fd, piece.data(), piece.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        read = IOError("cannot read an attachment's file: " + std::string(std::strerror(errno)));
        break;
      }
      if (n == 0) break;
      piece.resize(static_cast<size_t>(n));
      Writer w(&plain);
      w.Bytes(kFileEntry);
      w.Bytes(id);
      w.Bytes(piece);
      read = push(&plain, {}, false);
      if (!read.ok()) break;
      ++done;
    }
    ::close(fd);
    TIDINGS_RETURN_IF_ERROR(read);
  }
  plain = kEndText;
  PutFixed64BE(&plain, done);
  TIDINGS_RETURN_IF_ERROR(push(&plain, {}, true));
  if (progress) progress(done, done);
  return file.Finish();
}

Status StoreImpl::RestoreFrom(crypto::KeySource key, const std::string& backup_path,
                              std::function<void(uint64_t, uint64_t)> progress) {
  BackupInput in;
  TIDINGS_RETURN_IF_ERROR(in.Open(backup_path));
  std::string magic, header_bytes, stream_header, chunk, plain;
  TIDINGS_RETURN_IF_ERROR(in.Read(kMagicBytes, &magic));
  if (magic != std::string_view(kBackupMagic, kMagicBytes)) {
    return InvalidArgument(backup_path + " is not a Tidings backup (made by `tidings backup`)");
  }
  TIDINGS_RETURN_IF_ERROR(in.ReadSized(kMaxHeaderBytes, &header_bytes));
  Header header;
  TIDINGS_RETURN_IF_ERROR(DecodeHeader(header_bytes, &header, backup_path));
  TIDINGS_RETURN_IF_ERROR(UnlockKeys(key, /*exists=*/true, &header));
  TIDINGS_RETURN_IF_ERROR(in.Read(crypto::kSecretStreamHeaderBytes, &stream_header));
  TIDINGS_ASSIGN_OR_RETURN(auto stream,
                           crypto::SecretStreamReader::Start(backup_key_, stream_header));
  bool final = false;
  TIDINGS_RETURN_IF_ERROR(in.ReadSized(kMaxChunkBytes, &chunk));
  if (!stream.Pull(chunk, HeaderAd(header_bytes), &plain, &final).ok() || plain != kStartText ||
      final) {
    return DataLoss(backup_path + " is damaged or was altered (its start does not verify)");
  }

  TIDINGS_RETURN_IF_ERROR(OpenDb(/*create=*/true));
  // No WAL: a restore that stops half way is thrown away whole (the caller
  // restores into a staging directory), and the flush below makes it durable.
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  uint64_t records = 0;
  std::string ad;
  // Content keys of the objects the records name, to check each restored
  // file whole; the file being restored.
  std::map<std::string, crypto::SecretKey> content_keys;
  std::string restoring;
  auto finish_file = [&]() -> Status {
    if (restoring.empty()) return Status::Ok();
    Status s = attachment_files_.FinishPartial(restoring, content_keys.at(restoring));
    restoring.clear();
    // A file damaged on the device before the backup: left out (removed by
    // FinishPartial), as the device had no good copy either. Its record
    // stays: the next fetch brings it again from S3, and `verify` reports
    // it meanwhile. One damaged file must not cost the whole store.
    if (s.code() == Code::kDataLoss) return Status::Ok();
    return s;
  };
  while (!final) {
    Status read = in.ReadSized(kMaxChunkBytes, &chunk);
    if (!read.ok()) return read.code() == Code::kDataLoss ? in.Truncated() : read;
    if (!stream.Pull(chunk, {}, &plain, &final).ok()) {
      return DataLoss(backup_path + " is damaged or was altered (a chunk does not verify)");
    }
    if (final) break;
    rocksdb::WriteBatch batch;
    Reader r(plain);
    std::string family, k, v;
    while (!r.done()) {
      if (!r.Bytes(&family) || !r.Bytes(&k) || !r.Bytes(&v)) {
        return DataLoss(backup_path + " holds a record that does not decode");
      }
      if (family == kFileEntry) {
        if (!content_keys.count(k)) {
          return DataLoss(backup_path + " holds an attachment file that no record names");
        }
        if (k != restoring) {
          TIDINGS_RETURN_IF_ERROR(finish_file());
          TIDINGS_RETURN_IF_ERROR(attachment_files_.Open());
          TIDINGS_RETURN_IF_ERROR(attachment_files_.DropPartial(k));
          restoring = k;
        }
        TIDINGS_RETURN_IF_ERROR(attachment_files_.AppendPartial(k, v));
        ++records;
        continue;
      }
      const auto* name = std::find(kCfNames, kCfNames + kNumCf, family);
      if (name == kCfNames + kNumCf) {
        return FailedPrecondition(backup_path + " was made by a newer Tidings: upgrade Tidings");
      }
      const int cf = static_cast<int>(name - kCfNames);
      AdInto(&ad, cf, k);
      auto opened = sealer_->Open(ad, v);
      if (!opened.ok()) return DataLoss(backup_path + " holds a record that does not verify");
      AttachmentRecord object;
      if (cf == kAttachments && k.starts_with(kObjectPrefix) &&
          DecodeAttachment(*opened, &object)) {
        auto content_key = crypto::SecretKey::FromBytes(object.content_key);
        if (content_key.ok()) {
          content_keys.insert_or_assign(object.info.object, std::move(*content_key));
        }
      }
      crypto::Wipe(&object.content_key);
      crypto::Wipe(&*opened);
      batch.Put(cfs_[static_cast<size_t>(cf)], k, v);
      ++records;
    }
    crypto::Wipe(&plain);
    TIDINGS_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch), "cannot write the restored store"));
    if (progress) progress(records, 0);
  }
  TIDINGS_RETURN_IF_ERROR(finish_file());
  uint64_t counted = 0;
  if (plain.size() != sizeof(kEndText) - 1 + 8 ||
      plain.compare(0, sizeof(kEndText) - 1, kEndText) ||
      (counted = GetFixed64BE(plain.data() + sizeof(kEndText) - 1)) != records) {
    return DataLoss(backup_path + " is damaged (its record count does not match)");
  }
  TIDINGS_RETURN_IF_ERROR(
      FromRocks(db_->Flush(rocksdb::FlushOptions(), cfs_), "cannot write the restored store"));
  CloseDb();
  // The header goes last, as when a store is created: its presence means
  // "this directory is a whole store".
  return WriteFileAtomically(path_ + "/" + kHeaderFile, header_bytes);
}

Status Store::Restore(const std::string& backup_path, const std::string& store_path,
                      crypto::KeySource key, std::function<void(uint64_t, uint64_t)> progress) {
  if (backup_path.empty()) return InvalidArgument("no backup file given");
  if (store_path.empty()) return InvalidArgument("no store path given (use --store)");
  TIDINGS_RETURN_IF_ERROR(crypto::Init());
  std::error_code ec;
  const bool target_exists = fs::exists(store_path, ec);
  if (target_exists && !(fs::is_directory(store_path, ec) && fs::is_empty(store_path, ec))) {
    return AlreadyExists(store_path +
                         " is not empty. Restore into a new directory (a restore never replaces "
                         "a store)");
  }
  // Built beside the target and renamed into place when whole, so a restore
  // that stops half way leaves no store that looks whole.
  const std::string staging = store_path + ".restoring";
  fs::remove_all(staging, ec);  // an interrupted restore's leftovers
  if (!fs::create_directories(staging, ec) || ec) {
    return IOError("cannot create " + staging + ": " + ec.message());
  }
  ::chmod(staging.c_str(), 0700);
  Status s;
  {
    StoreImpl impl(staging, StoreOptions{});
    s = impl.RestoreFrom(std::move(key), backup_path, std::move(progress));
  }
  if (s.ok() && target_exists) fs::remove(store_path, ec);
  if (s.ok() && ::rename(staging.c_str(), store_path.c_str()) != 0) {
    s = IOError("cannot move the restored store to " + store_path + ": " + std::strerror(errno));
  }
  if (!s.ok()) {
    fs::remove_all(staging, ec);
    return s;
  }
  SyncParentDirectory(store_path);
  return Status::Ok();
}

}  // namespace tidings::engine
