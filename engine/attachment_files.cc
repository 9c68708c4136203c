#include "engine/attachment_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "crypto/attachment_cipher.h"

namespace tidings::engine {
namespace fs = std::filesystem;

namespace {

constexpr size_t kIoBytes = 1 << 20;  // read and write in 1 MiB pieces
constexpr size_t kIdBytes = 32;

Status IoFailure(const std::string& what, const std::string& path) {
  const int e = errno;
  if (e == ENOSPC) return ResourceExhausted("the disk is full: cannot " + what + " " + path);
  return IOError("cannot " + what + " " + path + ": " + std::strerror(e));
}

// An open file descriptor, closed when it goes.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return IoFailure("write", path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Reads up to `cap` bytes at `offset` (fewer only at the end of the file).
Result<size_t> ReadAt(int fd, char* buf, size_t cap, uint64_t offset, const std::string& path) {
  size_t got = 0;
  while (got < cap) {
    const ssize_t n = ::pread(fd, buf + got, cap - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoFailure("read", path);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

Status SyncFile(Fd& fd, const std::string& path) {
  if (::fsync(fd.get()) != 0) return IoFailure("sync", path);
  return Status::Ok();
}

// Makes the names in `dir` durable (a rename, a new file).
Status SyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.ok() || ::fsync(fd.get()) != 0) return IoFailure("sync", dir);
  return Status::Ok();
}

Status SyncParent(const std::string& path) {
  const std::string dir = fs::path(path).parent_path().string();
  return SyncDir(dir.empty() ? "." : dir);
}

Status Renamed(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return IoFailure("name", to);
  return SyncParent(to);
}

Status CheckId(std::string_view id) {
  if (id.size() != kIdBytes) return InvalidArgument("an attachment object id is 32 bytes");
  return Status::Ok();
}

bool Cancelled(const std::atomic<bool>* cancel) {
  return cancel != nullptr && cancel->load(std::memory_order_relaxed);
}

std::string RandomName() {
  uint8_t r[12];
  crypto::RandomBytes(r, sizeof r);
  return crypto::HexEncode(r);
}

}  // namespace

std::string AttachmentFiles::ObjectPath(std::string_view id) const {
  return dir_ + "/objects/" + crypto::HexEncode(id);
}

std::string AttachmentFiles::PartialPath(std::string_view id) const {
  return dir_ + "/partial/" + crypto::HexEncode(id);
}

Status AttachmentFiles::Open() {
  for (const char* sub : {"", "/objects", "/partial", "/tmp"}) {
    const std::string d = dir_ + sub;
    if (::mkdir(d.c_str(), 0700) == 0) {
      TIDINGS_RETURN_IF_ERROR(SyncParent(d));  // the new directory survives a crash
    } else if (errno != EEXIST) {
      return IoFailure("create", d);
    }
    ::chmod(d.c_str(), 0700);
  }
  // Imports a crash interrupted. Only the store's writer opens the files,
  // so none of these is in flight.
  std::error_code ec;
  fs::directory_iterator it(dir_ + "/tmp", ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (std::error_code rm; !fs::remove(it->path(), rm) && rm) ec = rm;
  }
  if (ec) return IOError("cannot clear " + dir_ + "/tmp: " + ec.message());
  return Status::Ok();
}

Result<ImportedObject> AttachmentFiles::Import(const AttachmentSource& source,
                                               const crypto::SecretKey& content_key,
                                               const crypto::SecretKey& plain_hash_key,
                                               const AttachmentProgress& progress,
                                               const std::atomic<bool>* cancel) {
  // An empty hash key would make the fingerprint an unkeyed BLAKE2b (the
  // libsodium default), which anyone holding a guess of the file can match.
  if (!content_key.valid() || !plain_hash_key.valid()) {
    return InvalidArgument("an attachment import needs its content key and fingerprint key");
  }
  const std::string tmp = dir_ + "/tmp/" + RandomName();
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.ok()) return IoFailure("create", tmp);
  struct Cleanup {
    const std::string& path;
    bool keep = false;
    ~Cleanup() {
      if (!keep) ::unlink(path.c_str());
    }
  } cleanup{tmp};

  ImportedObject out;
  std::string cipher;
  TIDINGS_ASSIGN_OR_RETURN(auto encryptor,
                           crypto::AttachmentEncryptor::Start(content_key, &cipher));
  crypto::Sha256Hasher object_hash;
  crypto::KeyedHasher plain_hash(plain_hash_key);
  std::vector<char> buf(kIoBytes);
  for (;;) {
    if (Cancelled(cancel)) return tidings::Cancelled("the attachment import was cancelled");
    TIDINGS_ASSIGN_OR_RETURN(const size_t n, source(buf.data(), buf.size()));
    if (n > buf.size()) return InvalidArgument("an attachment source returned more than asked");
    if (n == 0) break;
    const std::string_view piece(buf.data(), n);
    plain_hash.Update(piece);
    TIDINGS_RETURN_IF_ERROR(encryptor.Update(piece, &cipher));
    if (cipher.size() >= kIoBytes) {
      object_hash.Update(cipher);
      TIDINGS_RETURN_IF_ERROR(WriteAll(fd.get(), cipher, tmp));
      out.cipher_bytes += cipher.size();
      cipher.clear();
    }
    if (progress) progress(encryptor.plain_bytes(), 0);
  }
  TIDINGS_RETURN_IF_ERROR(encryptor.Finish(&cipher));
  object_hash.Update(cipher);
  TIDINGS_RETURN_IF_ERROR(WriteAll(fd.get(), cipher, tmp));
  out.cipher_bytes += cipher.size();
  TIDINGS_RETURN_IF_ERROR(SyncFile(fd, tmp));
  const crypto::Digest256 id = object_hash.Finish();
  out.id.assign(reinterpret_cast<const char*>(id.data()), id.size());
  out.plain_bytes = encryptor.plain_bytes();
  out.plain_hash = plain_hash.Finish();
  TIDINGS_RETURN_IF_ERROR(Renamed(tmp, ObjectPath(out.id)));
  cleanup.keep = true;
  return out;
}

Result<ImportedObject> AttachmentFiles::ImportFile(const std::string& path,
                                                   const crypto::SecretKey& content_key,
                                                   const crypto::SecretKey& plain_hash_key,
                                                   const AttachmentProgress& progress,
                                                   const std::atomic<bool>* cancel) {
  // Opened without blocking: a FIFO or a device would wait for a writer
  // before the check below could refuse it.
  // Errors do not name the file: its name may say what it is (a patient's
  // scan), and errors reach logs. The caller knows which file it gave.
  const std::string what = "the attachment's file";
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd.ok()) {
    if (errno == ENOENT) return NotFound(what + " does not exist");
    if (errno == EACCES) return PermissionDenied(what + " cannot be read (permission denied)");
    return IoFailure("open", what);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return IoFailure("read", what);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(what + " is not a regular file");
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  const uint64_t total = static_cast<uint64_t>(st.st_size);
  uint64_t at = 0;
  auto source = [&](char* buf, size_t cap) -> Result<size_t> {
    TIDINGS_ASSIGN_OR_RETURN(const size_t n, ReadAt(fd.get(), buf, cap, at, what));
    at += n;
    return n;
  };
  AttachmentProgress with_total;
  if (progress) with_total = [&](uint64_t done, uint64_t) { progress(done, total); };
  return Import(source, content_key, plain_hash_key, with_total, cancel);
}

Status AttachmentFiles::ReadFile(const std::string& path,
                                 const std::function<Status(std::string_view)>& each,
                                 const std::atomic<bool>* cancel) const {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) {
    if (errno == ENOENT) return NotFound("this device does not hold the attachment");
    return IoFailure("open", path);
  }
  std::vector<char> buf(kIoBytes);
  uint64_t at = 0;
  for (;;) {
    if (Cancelled(cancel)) return tidings::Cancelled("reading the attachment was cancelled");
    TIDINGS_ASSIGN_OR_RETURN(const size_t n, ReadAt(fd.get(), buf.data(), buf.size(), at, path));
    if (n == 0) break;
    at += n;
    TIDINGS_RETURN_IF_ERROR(each(std::string_view(buf.data(), n)));
  }
  return Status::Ok();
}

Status AttachmentFiles::Read(std::string_view id, const crypto::SecretKey& content_key,
                             const AttachmentSink& sink, const AttachmentProgress& progress,
                             const std::atomic<bool>* cancel) const {
  TIDINGS_RETURN_IF_ERROR(CheckId(id));
  crypto::AttachmentDecryptor decryptor(content_key);
  std::string plain;
  const Status read = ReadFile(
      ObjectPath(id),
      [&](std::string_view cipher) -> Status {
        plain.clear();
        TIDINGS_RETURN_IF_ERROR(decryptor.Update(cipher, &plain));
        if (!plain.empty()) TIDINGS_RETURN_IF_ERROR(sink(plain));
        if (progress) progress(decryptor.plain_bytes(), 0);
        return Status::Ok();
      },
      cancel);
  if (!read.ok()) return read;
  plain.clear();
  TIDINGS_RETURN_IF_ERROR(decryptor.Finish(&plain));
  if (!plain.empty()) TIDINGS_RETURN_IF_ERROR(sink(plain));
  return Status::Ok();
}

Status AttachmentFiles::Export(std::string_view id, const crypto::SecretKey& content_key,
                               const std::string& path, const AttachmentProgress& progress,
                               const std::atomic<bool>* cancel) const {
  // The plaintext is written to an unnamed file in the destination's
  // directory (O_TMPFILE), which a crash leaves nowhere, and given a name
  // only once the whole object opened; then renamed over `path`.
  std::string dir = fs::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const std::string tmp = path + ".tidings-" + RandomName();
  Fd fd(::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600));
  const bool unnamed = fd.ok();
  if (!unnamed) {  // a file system without O_TMPFILE: a named temporary file
    fd.reset(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.ok()) return IoFailure("create", tmp);
  }
  Status s = Read(
      id, content_key, [&](std::string_view plain) { return WriteAll(fd.get(), plain, path); },
      progress, cancel);
  if (s.ok()) s = SyncFile(fd, path);
  if (s.ok() && unnamed) {
    const std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      s = IoFailure("create", tmp);
    }
  }
  if (s.ok()) s = Renamed(tmp, path);
  if (!s.ok()) ::unlink(tmp.c_str());
  if (s.ok()) return s;
  // Errors do not name the file (its name may say what it is), as imports'.
  std::string message = s.message();
  for (const std::string* named : {&tmp, &path}) {
    for (size_t at; (at = message.find(*named)) != std::string::npos;) {
      message.replace(at, named->size(), "the export's file");
    }
  }
  return Status(s.code(), std::move(message));
}

Status AttachmentFiles::CheckWhole(const std::string& path, std::string_view id,
                                   const crypto::SecretKey& content_key,
                                   std::string_view mismatch) const {
  crypto::Sha256Hasher hash;
  crypto::AttachmentDecryptor decryptor(content_key);
  std::string plain;
  const Status read = ReadFile(
      path,
      [&](std::string_view cipher) {
        hash.Update(cipher);
        plain.clear();
        return decryptor.Update(cipher, &plain);
      },
      nullptr);
  if (!read.ok()) return read;
  TIDINGS_RETURN_IF_ERROR(decryptor.Finish(&plain));
  const crypto::Digest256 got = hash.Finish();
  if (std::string_view(reinterpret_cast<const char*>(got.data()), got.size()) != id) {
    return DataLoss(std::string(mismatch));
  }
  return Status::Ok();
}

Status AttachmentFiles::Check(std::string_view id, const crypto::SecretKey& content_key) const {
  TIDINGS_RETURN_IF_ERROR(CheckId(id));
  return CheckWhole(ObjectPath(id), id, content_key,
                    "an attachment object does not match its name: it was changed or damaged");
}

Result<std::string> AttachmentFiles::ReadRange(std::string_view id, uint64_t offset,
                                               uint64_t length) const {
  TIDINGS_RETURN_IF_ERROR(CheckId(id));
  const std::string path = ObjectPath(id);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) {
    if (errno == ENOENT) return NotFound("this device does not hold the attachment");
    return IoFailure("open", path);
  }
  std::string out(length, '\0');
  TIDINGS_ASSIGN_OR_RETURN(const size_t n, ReadAt(fd.get(), out.data(), length, offset, path));
  if (n != length) return DataLoss("an attachment object is shorter than its record says");
  return out;
}

Result<ObjectFile> AttachmentFiles::OpenObject(std::string_view id) const {
  TIDINGS_RETURN_IF_ERROR(CheckId(id));
  const std::string path = ObjectPath(id);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("this device does not hold the attachment");
    return IoFailure("open", path);
  }
  ObjectFile file;
  file.fd_ = std::shared_ptr<const int>(new int(fd), [](const int* p) {
    ::close(*p);
    delete p;
  });
  struct stat st {};
  if (::fstat(fd, &st) != 0) return IoFailure("read", path);
  file.size_ = static_cast<uint64_t>(st.st_size);
  return file;
}

Result<size_t> ObjectFile::ReadAt(uint64_t offset, char* buf, size_t cap) const {
  if (fd_ == nullptr) return FailedPrecondition("the attachment's file is not open");
  return tidings::engine::ReadAt(*fd_, buf, cap, offset, "an attachment object");
}

Result<uint64_t> AttachmentFiles::PartialBytes(std::string_view id) const {
  TIDINGS_RETURN_IF_ERROR(CheckId(id));
  struct stat st {};
  const std::string path = PartialPath(id);
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return uint64_t{0};
    return IoFailure("read", path);
  }
  return static_cast<uint64_t>(st.st_size);
}

Result<PartialFile> AttachmentFiles::OpenPartial(std::string_view id) {
  TIDINGS_RETURN_IF_ERROR(CheckId(id));
  const std::string path = PartialPath(id);
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  const bool created = fd.ok();
  if (!created) fd.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.ok()) return IoFailure("create", path);
  if (created) TIDINGS_RETURN_IF_ERROR(SyncParent(path));
  PartialFile file;
  file.path_ = path;
  file.fd_ = std::shared_ptr<const int>(new int(fd.release()), [](const int* p) {
    ::close(*p);
    delete p;
  });
  return file;
}

Status PartialFile::WriteAt(uint64_t offset, std::string_view bytes) const {
  if (fd_ == nullptr) return FailedPrecondition("the partial download is not open");
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(*fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return IoFailure("write", path_);
    bytes.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Result<size_t> PartialFile::ReadAt(uint64_t offset, char* buf, size_t cap) const {
  if (fd_ == nullptr) return FailedPrecondition("the partial download is not open");
  return tidings::engine::ReadAt(*fd_, buf, cap, offset, path_);
}

Result<uint64_t> PartialFile::Size() const {
  if (fd_ == nullptr) return FailedPrecondition("the partial download is not open");
  struct stat st {};
  if (::fstat(*fd_, &st) != 0) return IoFailure("read", path_);
  return static_cast<uint64_t>(st.st_size);
}

Status PartialFile::Truncate(uint64_t size) const {
  if (fd_ == nullptr) return FailedPrecondition("the partial download is not open");
  if (::ftruncate(*fd_, static_cast<off_t>(size)) != 0) return IoFailure("cut", path_);
  if (::fsync(*fd_) != 0) return IoFailure("sync", path_);
  return Status::Ok();
}

void PartialFile::StartWriteBack(uint64_t offset, uint64_t length) const {
  if (fd_ == nullptr) return;
#if defined(__linux__)
  (void)::sync_file_range(*fd_, static_cast<off_t>(offset), static_cast<off_t>(length),
                          SYNC_FILE_RANGE_WRITE);
#endif
}

Status AttachmentFiles::AppendPartial(std::string_view id, std::string_view bytes) {
  TIDINGS_RETURN_IF_ERROR(CheckId(id));
  const std::string path = PartialPath(id);
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600));
  const bool created = fd.ok();
  if (!created) fd.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (!fd.ok()) return IoFailure("create", path);
  TIDINGS_RETURN_IF_ERROR(WriteAll(fd.get(), bytes, path));
  // Synced (and a new file's name too) before the caller records the bytes
  // as downloaded: a crash never leaves a record ahead of the file.
  TIDINGS_RETURN_IF_ERROR(SyncFile(fd, path));
  return created ? SyncParent(path) : Status::Ok();
}

Status AttachmentFiles::FinishPartial(std::string_view id, const crypto::SecretKey& content_key) {
  return ClaimPartial(id, [&](const std::string& claimed) {
    return CheckWhole(claimed, id, content_key,
                      "a downloaded attachment does not match its reference: it was changed on "
                      "the server or on the way");
  });
}

Status AttachmentFiles::AdoptPartial(std::string_view id, uint64_t bytes) {
  return ClaimPartial(id, [&](const std::string& claimed) -> Status {
    Fd fd(::open(claimed.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd.ok() || ::fstat(fd.get(), &st) != 0) return IoFailure("read", claimed);
    if (static_cast<uint64_t>(st.st_size) != bytes) {
      return DataLoss("a downloaded attachment's file is not the length that was checked");
    }
    // Its bytes on disk before it is named the object (they were written
    // at offsets, unsynced, as the ranges came).
    return SyncFile(fd, claimed);
  });
}

Status AttachmentFiles::ClaimPartial(
    std::string_view id, const std::function<Status(const std::string& claimed)>& check) {
  TIDINGS_RETURN_IF_ERROR(CheckId(id));
  // The partial file is first moved out of partial/, so a download of the
  // same object appending meanwhile starts a file of its own instead of
  // growing the one being checked. (Downloads of one object are meant to
  // run one at a time; this keeps a second from making an unchecked object.)
  const std::string partial = PartialPath(id), claimed = dir_ + "/tmp/" + RandomName();
  if (::rename(partial.c_str(), claimed.c_str()) != 0) {
    if (errno == ENOENT) return NotFound("no download of this attachment is in progress");
    return IoFailure("name", claimed);
  }
  Status s = check(claimed);
  if (s.ok()) s = Renamed(claimed, ObjectPath(id));
  if (!s.ok()) ::unlink(claimed.c_str());  // the next fetch starts over
  return s;
}

Status AttachmentFiles::ScanPartial(std::string_view id,
                                    const std::function<Status(std::string_view)>& each) const {
  TIDINGS_RETURN_IF_ERROR(CheckId(id));
  const Status s = ReadFile(PartialPath(id), each, nullptr);
  return s.code() == Code::kNotFound ? Status::Ok() : s;
}

Status AttachmentFiles::DropPartial(std::string_view id) {
  TIDINGS_RETURN_IF_ERROR(CheckId(id));
  const std::string path = PartialPath(id);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return IoFailure("remove", path);
  return Status::Ok();
}

bool AttachmentFiles::Has(std::string_view id) const {
  struct stat st {};
  return id.size() == kIdBytes && ::stat(ObjectPath(id).c_str(), &st) == 0;
}

Result<uint64_t> AttachmentFiles::Size(std::string_view id) const {
  TIDINGS_RETURN_IF_ERROR(CheckId(id));
  struct stat st {};
  const std::string path = ObjectPath(id);
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return NotFound("this device does not hold the attachment");
    return IoFailure("read", path);
  }
  return static_cast<uint64_t>(st.st_size);
}

Status AttachmentFiles::Remove(std::string_view id) {
  TIDINGS_RETURN_IF_ERROR(CheckId(id));
  for (const std::string& path : {ObjectPath(id), PartialPath(id)}) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return IoFailure("remove", path);
  }
  return SyncParent(ObjectPath(id));
}

}  // namespace tidings::engine
