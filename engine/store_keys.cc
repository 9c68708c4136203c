// Unlocking a store header and wrapping its keys; see engine/store_keys.h.
#include "engine/store_keys.h"

#include "crypto/hash.h"
#include "engine/encrypted_env.h"
#include "engine/store_impl.h"

namespace tidings::engine {
namespace {

using crypto::KeySource;

// Each record protection has its own sub-key.
crypto::Purpose RecordKeyPurpose(crypto::RecordProtection p) {
  switch (p) {
    case crypto::RecordProtection::kSealed:
      return crypto::Purpose::kRecordSeal;
    case crypto::RecordProtection::kAuthenticated:
      return crypto::Purpose::kRecordMac;
    case crypto::RecordProtection::kAuthenticatedSipHash:
      break;
  }
  return crypto::Purpose::kRecordMacSipHash;
}

bool IsPassphrase(uint8_t kind) {
  return kind == static_cast<uint8_t>(KeySource::Kind::kPassphrase);
}

// A passphrase for a key store or a key for a passphrase store is the wrong
// kind; a key file and raw bytes are interchangeable (the same 32 bytes).
Status CheckKeyKind(const Header& header, const KeySource& key) {
  if (IsPassphrase(header.key_kind) == (key.kind() == KeySource::Kind::kPassphrase)) {
    return Status::Ok();
  }
  return WrongKey(
      std::string("this store is unlocked with ") +
      (IsPassphrase(header.key_kind) ? "a passphrase" : "a key (key file or raw key bytes)"));
}

Status WrongKeyFor(const std::string& store_path) {
  return WrongKey("the key does not open the store at " + store_path +
                  " (wrong key file or passphrase); nothing was changed");
}

}  // namespace

Result<crypto::SecretKey> SourceKey(const KeySource& key, const crypto::PassphraseParams& params) {
  switch (key.kind()) {
    case KeySource::Kind::kRaw:
      return key.raw().Clone();
    case KeySource::Kind::kKeyFile:
      return crypto::LoadKeyFile(key.path());
    case KeySource::Kind::kPassphrase:
      return crypto::DeriveFromPassphrase(key.passphrase(), params);
    case KeySource::Kind::kNone:
      break;
  }
  return InvalidArgument("no key given: pass a key file, a passphrase or raw key bytes");
}

Result<StoreKeys> DeriveStoreKeys(crypto::DataKeys data, crypto::RecordProtection records) {
  StoreKeys keys;
  TIDINGS_ASSIGN_OR_RETURN(keys.file,
                           crypto::DeriveSubkey(data.data, crypto::Purpose::kFileCipher));
  TIDINGS_ASSIGN_OR_RETURN(keys.record, crypto::DeriveSubkey(data.data, RecordKeyPurpose(records)));
  TIDINGS_ASSIGN_OR_RETURN(keys.header_mac,
                           crypto::DeriveSubkey(data.data, crypto::Purpose::kHeaderMac));
  TIDINGS_ASSIGN_OR_RETURN(keys.backup, crypto::DeriveSubkey(data.data, crypto::Purpose::kBackup));
  keys.data = std::move(data);
  return keys;
}

Result<StoreKeys> UnlockHeader(const Header& header, const KeySource& key,
                               const std::string& store_path) {
  TIDINGS_RETURN_IF_ERROR(CheckKeyKind(header, key));
  TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey source, SourceKey(key, header.params));
  TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey kek,
                           crypto::DeriveSubkey(source, crypto::Purpose::kKeyWrap));
  crypto::DataKeys data;
  if (header.format >= 4) {
    auto unwrapped = crypto::UnwrapKeys(kek, header.wrapped_keys);
    if (unwrapped.status().code() == Code::kWrongKey) return WrongKeyFor(store_path);
    if (!unwrapped.ok()) {
      return DataLoss("the store header at " + store_path + " is corrupt (" +
                      unwrapped.status().message() + "); restore it from a backup");
    }
    data = std::move(*unwrapped);
  } else {
    // Formats 1-3: the source key is the data key, proven by the key check.
    TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey check_key,
                             crypto::DeriveSubkey(source, crypto::Purpose::kKeyCheck));
    crypto::RecordSealer checker(std::move(check_key));
    auto opened = checker.Open(kKeyCheckAd, header.key_check);
    if (!opened.ok() || *opened != kKeyCheckPlain) return WrongKeyFor(store_path);
    TIDINGS_ASSIGN_OR_RETURN(data.naming,
                             crypto::DeriveSubkey(source, crypto::Purpose::kKeyedHash));
    data.data = std::move(source);
  }
  TIDINGS_ASSIGN_OR_RETURN(StoreKeys keys, DeriveStoreKeys(std::move(data), header.records));
  // Nothing else in the header is trusted before this.
  TIDINGS_RETURN_IF_ERROR(VerifyHeaderMac(header, keys.header_mac, store_path + "/" + kHeaderFile));
  return keys;
}

std::string NewStoreId() {
  std::string id(kStoreIdBytes, '\0');
  crypto::RandomBytes(reinterpret_cast<uint8_t*>(id.data()), id.size());
  return id;
}

void StoreImpl::InstallKeys(StoreKeys keys, const Header& header) {
  hash_key_ = std::move(keys.data.naming);
  siphash_keys_ = header.records == crypto::RecordProtection::kAuthenticatedSipHash;
  sealer_ = std::make_unique<crypto::RecordSealer>(std::move(keys.record), header.records);
  env_ = NewXChaChaEnv(std::move(keys.file));
  header_mac_key_ = std::move(keys.header_mac);
  backup_key_ = std::move(keys.backup);
  ad_prefix_ = header.store_id_in_ad ? header.store_id : std::string();
  db_dir_ = header.format >= 4 ? header.db_dir : kDbDir;
  if (keep_data_key_) data_key_ = std::move(keys.data.data);
}

Result<crypto::DataKeys> NewDataKeys() {
  crypto::DataKeys keys;
  TIDINGS_ASSIGN_OR_RETURN(keys.data, crypto::SecretKey::Random());
  TIDINGS_ASSIGN_OR_RETURN(keys.naming, crypto::SecretKey::Random());
  return keys;
}

Result<StoreKeys> NewStoreKeys(const KeySource& key, const crypto::PassphraseParams& limits,
                               uint32_t format, Header* header) {
  if (format == 0 || format == kNewestFormat) {
    TIDINGS_ASSIGN_OR_RETURN(crypto::DataKeys data, NewDataKeys());
    TIDINGS_RETURN_IF_ERROR(WrapForKeySource(key, limits, data, header));
    header->store_id = NewStoreId();
    header->db_dir = "db";
    header->generation = 0;
    header->store_id_in_ad = true;
    return DeriveStoreKeys(std::move(data), header->records);
  }
  if (format > 3 || (format == 1) != (header->records == crypto::RecordProtection::kSealed) ||
      (format == 2) != (header->records == crypto::RecordProtection::kAuthenticated)) {
    return InvalidArgument("format " + std::to_string(format) +
                           " does not hold this record protection");
  }
  header->format = format;
  header->key_kind = static_cast<uint8_t>(key.kind());
  header->params = crypto::PassphraseParams::NewInteractive();
  header->params.ops_limit = limits.ops_limit;
  header->params.mem_limit = limits.mem_limit;
  if (key.kind() != KeySource::Kind::kPassphrase) header->params = crypto::PassphraseParams{};
  TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey source, SourceKey(key, header->params));
  TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey check_key,
                           crypto::DeriveSubkey(source, crypto::Purpose::kKeyCheck));
  header->key_check = crypto::RecordSealer(std::move(check_key)).Seal(kKeyCheckAd, kKeyCheckPlain);
  crypto::DataKeys data;
  TIDINGS_ASSIGN_OR_RETURN(data.naming, crypto::DeriveSubkey(source, crypto::Purpose::kKeyedHash));
  data.data = std::move(source);
  return DeriveStoreKeys(std::move(data), header->records);
}

Status WrapForKeySource(const KeySource& key, const crypto::PassphraseParams& limits,
                        const crypto::DataKeys& data, Header* header) {
  header->format = kNewestFormat;
  header->key_kind = static_cast<uint8_t>(key.kind());
  header->params = crypto::PassphraseParams{};
  if (key.kind() == KeySource::Kind::kPassphrase) {
    header->params = crypto::PassphraseParams::NewInteractive();  // a fresh salt
    header->params.ops_limit = limits.ops_limit;
    header->params.mem_limit = limits.mem_limit;
    TIDINGS_RETURN_IF_ERROR(crypto::CheckPassphraseParams(header->params));
  }
  header->key_check.clear();
  TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey source, SourceKey(key, header->params));
  TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey kek,
                           crypto::DeriveSubkey(source, crypto::Purpose::kKeyWrap));
  header->wrapped_keys = crypto::WrapKeys(kek, data);
  return Status::Ok();
}

}  // namespace tidings::engine
