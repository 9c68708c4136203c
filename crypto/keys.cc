#include "crypto/keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crypto/hash.h"

namespace tidings::crypto {
namespace {

constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "tidings1";

}  // namespace

static_assert(crypto_pwhash_OPSLIMIT_SENSITIVE * 4 == kMaxOpsLimit);
static_assert(uint64_t{crypto_pwhash_MEMLIMIT_SENSITIVE} * 4 == kMaxMemLimit);

Result<PassphraseProfile> ParsePassphraseProfile(std::string_view name) {
  if (name == "interactive") return PassphraseProfile::kInteractive;
  if (name == "moderate") return PassphraseProfile::kModerate;
  if (name == "sensitive") return PassphraseProfile::kSensitive;
  return InvalidArgument("unknown passphrase profile '" + std::string(name) +
                         "'; use interactive, moderate or sensitive");
}

PassphraseParams PassphraseParams::New(PassphraseProfile profile) {
  PassphraseParams p;
  Init().IgnoreError();
  switch (profile) {
    case PassphraseProfile::kInteractive:
      p.ops_limit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
      p.mem_limit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
      break;
    case PassphraseProfile::kModerate:
      p.ops_limit = crypto_pwhash_OPSLIMIT_MODERATE;
      p.mem_limit = crypto_pwhash_MEMLIMIT_MODERATE;
      break;
    case PassphraseProfile::kSensitive:
      p.ops_limit = crypto_pwhash_OPSLIMIT_SENSITIVE;
      p.mem_limit = crypto_pwhash_MEMLIMIT_SENSITIVE;
      break;
  }
  randombytes_buf(p.salt.data(), p.salt.size());
  return p;
}

Status CheckPassphraseParams(const PassphraseParams& params) {
  if (params.ops_limit < crypto_pwhash_OPSLIMIT_MIN || params.ops_limit > kMaxOpsLimit) {
    return InvalidArgument("Argon2id passes " + std::to_string(params.ops_limit) +
                           " are outside 1.." + std::to_string(kMaxOpsLimit));
  }
  if (params.mem_limit < crypto_pwhash_MEMLIMIT_MIN || params.mem_limit > kMaxMemLimit) {
    return InvalidArgument("Argon2id memory " + std::to_string(params.mem_limit >> 20) +
                           " MiB is outside 8 KiB..4 GiB");
  }
  return Status::Ok();
}

Result<SecretKey> DeriveFromPassphrase(std::string_view passphrase,
                                       const PassphraseParams& params) {
  TIDINGS_RETURN_IF_ERROR(Init());
  if (passphrase.empty()) return InvalidArgument("the passphrase is empty");
  TIDINGS_RETURN_IF_ERROR(CheckPassphraseParams(params));
  TIDINGS_ASSIGN_OR_RETURN(SecretKey key, SecretKey::Random());
  if (crypto_pwhash(key.mutable_data(), kKeyBytes, passphrase.data(), passphrase.size(),
                    params.salt.data(), params.ops_limit, static_cast<size_t>(params.mem_limit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return ResourceExhausted(
        "not enough memory to derive the key from the passphrase (Argon2id needs " +
        std::to_string(params.mem_limit >> 20) + " MiB)");
  }
  return key;
}

Result<SecretKey> LoadKeyFile(const std::string& path) {
  TIDINGS_RETURN_IF_ERROR(Init());
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT)
      return NotFound("key file " + path + " does not exist; pass the right --key-file");
    if (err == EACCES)
      return PermissionDenied("cannot read key file " + path + ": permission denied");
    return IOError("cannot open key file " + path + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return IOError("cannot stat key file " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("key file " + path + " is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    ::close(fd);
    return PermissionDenied("key file " + path +
                            " is accessible by group or others; run: chmod 600 " + path);
  }
  std::string buf;
  Status s = ReadSecretFile(fd, "key file " + path, 128, &buf);
  ::close(fd);
  Result<SecretKey> result =
      InvalidArgument("key file " + path + " must hold 32 raw bytes or 64 hex digits");
  if (s.ok()) {
    if (buf.size() == kKeyBytes) {
      result = SecretKey::FromBytes(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf.data()), buf.size()));
    } else {
      std::string_view text(buf);
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
      std::string raw;
      if (text.size() == 2 * kKeyBytes && HexDecode(text, &raw)) {
        result = SecretKey::FromBytes(
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(raw.data()), raw.size()));
      }
      sodium_memzero(raw.data(), raw.size());
    }
  } else {
    result = s;
  }
  sodium_memzero(buf.data(), buf.size());
  return result;
}

Status WriteKeyFile(const std::string& path, const SecretKey& key) {
  TIDINGS_RETURN_IF_ERROR(Init());
  if (!key.valid()) return InvalidArgument("cannot write an empty key");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int err = errno;
    if (err == EEXIST)
      return AlreadyExists("key file " + path + " already exists; not overwriting it");
    return IOError("cannot create key file " + path + ": " + std::strerror(err));
  }
  ::fchmod(fd, 0600);  // in case the umask was unusual
  std::string hex = HexEncode(std::span<const uint8_t>(key.data(), kKeyBytes));
  hex.push_back('\n');
  size_t done = 0;
  Status s;
  while (done < hex.size()) {
    ssize_t n = ::write(fd, hex.data() + done, hex.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      s = IOError("cannot write key file " + path + ": " + std::strerror(errno));
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (s.ok() && ::fsync(fd) != 0)
    s = IOError("cannot sync key file " + path + ": " + std::strerror(errno));
  ::close(fd);
  sodium_memzero(hex.data(), hex.size());
  if (!s.ok()) ::unlink(path.c_str());
  return s;
}

Result<SecretKey> DeriveSubkey(const SecretKey& master, Purpose purpose) {
  if (!master.valid()) return InvalidArgument("cannot derive from an empty key");
  TIDINGS_ASSIGN_OR_RETURN(SecretKey sub, SecretKey::Random());
  crypto_kdf_derive_from_key(sub.mutable_data(), kKeyBytes, static_cast<uint64_t>(purpose),
                             kKdfContext, master.data());
  return sub;
}

KeySource::~KeySource() {
  if (!secret_.empty()) sodium_memzero(secret_.data(), secret_.size());
}

KeySource::KeySource(KeySource&& o) noexcept
    : kind_(o.kind_), raw_(std::move(o.raw_)), secret_(o.secret_), path_(std::move(o.path_)) {
  // Copy then wipe: a moved-from short string may keep its bytes in place.
  if (!o.secret_.empty()) sodium_memzero(o.secret_.data(), o.secret_.size());
  o.secret_.clear();
  o.kind_ = Kind::kNone;
}

KeySource& KeySource::operator=(KeySource&& o) noexcept {
  if (this != &o) {
    if (!secret_.empty()) sodium_memzero(secret_.data(), secret_.size());
    kind_ = o.kind_;
    raw_ = std::move(o.raw_);
    secret_ = o.secret_;
    if (!o.secret_.empty()) sodium_memzero(o.secret_.data(), o.secret_.size());
    o.secret_.clear();
    path_ = std::move(o.path_);
    o.kind_ = Kind::kNone;
  }
  return *this;
}

KeySource KeySource::Raw(SecretKey key) {
  KeySource k;
  k.kind_ = Kind::kRaw;
  k.raw_ = std::move(key);
  return k;
}

KeySource KeySource::Passphrase(std::string_view phrase) {
  KeySource k;
  k.kind_ = Kind::kPassphrase;
  k.secret_.assign(phrase);
  return k;
}

KeySource KeySource::KeyFile(std::string path) {
  KeySource k;
  k.kind_ = Kind::kKeyFile;
  k.path_ = std::move(path);
  return k;
}

}  // namespace tidings::crypto
