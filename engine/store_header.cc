// The store header and the small-file I/O it needs; see engine/store_header.h.
#include "engine/store_header.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "crypto/hash.h"
#include "engine/codec.h"

namespace tidings::engine {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMacBytes = 32;
constexpr uint8_t kFlagStoreIdInAd = 1;

crypto::Digest256 HeaderMac(const crypto::SecretKey& key, std::string_view body) {
  return crypto::HmacSha256(std::span<const uint8_t>(key.data(), key.size()), body);
}

// "db" or "db-" and decimal digits: never a path that leaves the store.
bool ValidDbDir(std::string_view dir) {
  if (dir == "db") return true;
  if (dir.size() < 4 || dir.size() > 24 || dir.substr(0, 3) != "db-") return false;
  for (char c : dir.substr(3)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::string EncodeHeader(const Header& h, const crypto::SecretKey& mac_key) {
  std::string out(kHeaderMagic, sizeof(kHeaderMagic));
  Writer w(&out);
  w.Varint(h.format);
  w.U8(h.key_kind);
  w.Varint(h.params.ops_limit);
  w.Varint(h.params.mem_limit);
  w.Bytes(
      std::string_view(reinterpret_cast<const char*>(h.params.salt.data()), h.params.salt.size()));
  w.Bytes(h.key_check);
  if (h.format >= 2) w.U8(static_cast<uint8_t>(h.records));
  if (h.format >= 4) {
    w.Bytes(h.wrapped_keys);
    w.Bytes(h.store_id);
    w.Bytes(h.db_dir);
    w.Varint(h.generation);
    w.U8(h.store_id_in_ad ? kFlagStoreIdInAd : 0);
    const auto mac = HeaderMac(mac_key, out);
    out.append(reinterpret_cast<const char*>(mac.data()), mac.size());
  }
  auto digest = crypto::Sha256(out);
  out.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return out;
}

Status DecodeHeader(std::string_view in, Header* h, const std::string& path) {
  Status corrupt = DataLoss("the store header " + path +
                            " is corrupt; restore the store from a backup or re-create it");
  if (in.size() < sizeof(kHeaderMagic) + 32) return corrupt;
  std::string_view body = in.substr(0, in.size() - 32);
  auto digest = crypto::Sha256(body);
  if (std::memcmp(digest.data(), in.data() + body.size(), 32) != 0) return corrupt;
  if (std::memcmp(body.data(), kHeaderMagic, sizeof(kHeaderMagic)) != 0) return corrupt;
  Reader r(body.substr(sizeof(kHeaderMagic)));
  uint64_t format, ops, mem;
  std::string salt;
  if (!r.Varint(&format) || !r.U8(&h->key_kind) || !r.Varint(&ops) || !r.Varint(&mem) ||
      !r.Bytes(&salt) || salt.size() != crypto::kSaltBytes || !r.Bytes(&h->key_check)) {
    return corrupt;
  }
  if (format < 1 || format > kNewestFormat) {
    return FailedPrecondition("store format " + std::to_string(format) +
                              " is newer than this Tidings understands; upgrade Tidings");
  }
  h->records = crypto::RecordProtection::kSealed;
  if (format >= 2) {
    uint8_t records;
    if (!r.U8(&records) || records > (format == 2 ? 1 : 2)) return corrupt;
    h->records = static_cast<crypto::RecordProtection>(records);
  }
  if (format >= 4) {
    uint8_t flags;
    if (!r.Bytes(&h->wrapped_keys) || !r.Bytes(&h->store_id) ||
        h->store_id.size() != kStoreIdBytes || !r.Bytes(&h->db_dir) || !ValidDbDir(h->db_dir) ||
        !r.Varint(&h->generation) || !r.U8(&flags) || (flags & ~kFlagStoreIdInAd) != 0 ||
        r.remaining() != kMacBytes) {
      return corrupt;
    }
    h->store_id_in_ad = (flags & kFlagStoreIdInAd) != 0;
    h->authenticated.assign(body.substr(0, body.size() - kMacBytes));
    h->mac.assign(body.substr(body.size() - kMacBytes));
  }
  h->format = static_cast<uint32_t>(format);
  h->params.ops_limit = ops;
  h->params.mem_limit = mem;
  std::memcpy(h->params.salt.data(), salt.data(), salt.size());
  if (h->key_kind == static_cast<uint8_t>(crypto::KeySource::Kind::kPassphrase)) {
    // Unauthenticated until unlocked: refuse limits that would hang the
    // derivation before deriving anything.
    Status params = crypto::CheckPassphraseParams(h->params);
    if (!params.ok()) {
      return DataLoss("the store header " + path + " asks for absurd passphrase limits (" +
                      params.message() +
                      "); it is corrupt or was tampered with: restore it from a backup");
    }
  }
  return Status::Ok();
}

Status VerifyHeaderMac(const Header& h, const crypto::SecretKey& mac_key, const std::string& path) {
  if (h.format < 4) return Status::Ok();
  const auto mac = HeaderMac(mac_key, h.authenticated);
  if (h.mac.size() != mac.size() ||
      !crypto::ConstantTimeEquals(
          h.mac, std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()))) {
    return DataLoss("the store header " + path +
                    " was changed without the store's key (tampered); restore it from a backup");
  }
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view data) {
  const std::string tmp = path + kAtomicWriteSuffix;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IOError("cannot create " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return IOError("cannot write " + tmp + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return IOError("cannot sync " + tmp + ": " + std::strerror(errno));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return IOError("cannot rename " + tmp + ": " + std::strerror(errno));
  }
  SyncParentDirectory(path);  // the rename itself durable
  return Status::Ok();
}

void SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void SyncParentDirectory(const std::string& path) {
  const std::string dir = fs::path(path).parent_path().string();
  SyncDirectory(dir.empty() ? "." : dir);
}

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(path + " does not exist");
    return IOError("cannot open " + path + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return IOError("cannot read " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1 << 20)) break;
  }
  ::close(fd);
  return out;
}

}  // namespace tidings::engine
