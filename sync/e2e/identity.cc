#include "sync/e2e/identity.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "crypto/hash.h"
#include "sync/wire/bytes.h"

namespace tidings::e2e {
namespace {

constexpr uint8_t kRecordVersion = 1;
constexpr uint8_t kSecretsVersion = 1;
constexpr std::string_view kRecordContext{"tidings-device-v1\0", 18};

std::string_view View(const crypto::PublicKey& k) {
  return {reinterpret_cast<const char*>(k.data()), k.size()};
}

// Everything the record's signature covers.
std::string SignedPart(const DeviceRecord& r) {
  std::string out(kRecordContext);
  wire::ByteWriter w(&out);
  w.Bytes(r.user);
  w.U8(kRecordVersion);
  w.Bytes(View(r.sign_pk));
  w.Bytes(View(r.box_pk));
  w.Varint(r.created_ms);
  return out;
}

Status ReadKey(wire::ByteReader& r, std::string_view field, crypto::PublicKey* key) {
  std::string bytes;
  TIDINGS_RETURN_IF_ERROR(r.Bytes(field, &bytes));
  if (bytes.size() != key->size()) return r.Error(field, "is not 32 bytes");
  std::memcpy(key->data(), bytes.data(), key->size());
  return Status::Ok();
}

// Six groups of five digits from 30 bytes of hash: each group is 5 bytes
// (a 40-bit big-endian number) mod 100000, as Signal's safety numbers.
std::string Digits(std::string_view hash30) {
  std::string out;
  for (size_t g = 0; g < 6; ++g) {
    uint64_t v = 0;
    for (size_t i = 0; i < 5; ++i) v = v << 8 | static_cast<uint8_t>(hash30[g * 5 + i]);
    char group[8];
    std::snprintf(group, sizeof group, "%05u", static_cast<unsigned>(v % 100000));
    if (g) out.push_back(' ');
    out += group;
  }
  return out;
}

}  // namespace

std::string DeviceIdOf(const crypto::PublicKey& sign_pk) {
  std::string in = "tidings-device-v1";
  in.append(View(sign_pk));
  const std::string h = crypto::Blake2b(in, 32);
  return crypto::HexEncode(
      std::span(reinterpret_cast<const uint8_t*>(h.data()), static_cast<size_t>(16)));
}

std::string DeviceRecord::Encode() const {
  std::string out;
  wire::ByteWriter w(&out);
  w.U8(kRecordVersion);
  w.Bytes(View(sign_pk));
  w.Bytes(View(box_pk));
  w.Varint(created_ms);
  w.Bytes(signature);
  return out;
}

Result<DeviceRecord> DecodeDeviceRecord(std::string_view bytes, std::string_view user) {
  wire::ByteReader r(bytes, "device record");
  uint8_t version = 0;
  TIDINGS_RETURN_IF_ERROR(r.U8("version", &version));
  if (version != kRecordVersion) return r.Error("version", "is not 1");
  DeviceRecord rec;
  rec.user = std::string(user);
  TIDINGS_RETURN_IF_ERROR(ReadKey(r, "signing key", &rec.sign_pk));
  TIDINGS_RETURN_IF_ERROR(ReadKey(r, "box key", &rec.box_pk));
  TIDINGS_RETURN_IF_ERROR(r.Varint("created", &rec.created_ms));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("signature", &rec.signature));
  if (!r.done()) return r.Error("end", "expected, but bytes are left over");
  if (!crypto::VerifySignature(rec.sign_pk, SignedPart(rec), rec.signature)) {
    return DataLoss("a device record's signature does not verify for its user");
  }
  return rec;
}

std::string DeviceFingerprint(const DeviceRecord& device) {
  std::string in = "tidings-fingerprint-device-v1";
  wire::ByteWriter w(&in);
  w.Bytes(device.user);
  w.Bytes(View(device.sign_pk));
  w.Bytes(View(device.box_pk));
  return Digits(crypto::Blake2b(in, 30));
}

std::string UserFingerprint(std::string_view user, std::span<const DeviceRecord> devices) {
  std::vector<const DeviceRecord*> sorted;
  for (const auto& d : devices) sorted.push_back(&d);
  std::sort(sorted.begin(), sorted.end(), [](const DeviceRecord* a, const DeviceRecord* b) {
    return a->device_id() < b->device_id();
  });
  std::string in = "tidings-fingerprint-user-v1";
  wire::ByteWriter w(&in);
  w.Bytes(user);
  for (const auto* d : sorted) {
    w.Bytes(View(d->sign_pk));
    w.Bytes(View(d->box_pk));
  }
  return Digits(crypto::Blake2b(in, 30));
}

Result<DeviceKeys> DeviceKeys::FromSecrets(std::string_view sign_seed, std::string_view box_secret,
                                           std::string user, uint64_t created_ms) {
  auto as_span = [](std::string_view s) {
    return std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  DeviceKeys keys;
  TIDINGS_ASSIGN_OR_RETURN(keys.sign_seed_, crypto::SecretKey::FromBytes(as_span(sign_seed)));
  TIDINGS_ASSIGN_OR_RETURN(keys.box_secret_, crypto::SecretKey::FromBytes(as_span(box_secret)));
  DeviceRecord& rec = keys.record_;
  rec.user = std::move(user);
  rec.created_ms = created_ms;
  TIDINGS_ASSIGN_OR_RETURN(keys.signing_, crypto::SigningKey::FromSeed(keys.sign_seed_));
  rec.sign_pk = keys.signing_.public_key();
  TIDINGS_ASSIGN_OR_RETURN(rec.box_pk, crypto::BoxPublicKey(keys.box_secret_));
  rec.signature = keys.signing_.Sign(SignedPart(rec));
  keys.device_id_ = rec.device_id();
  return keys;
}

Result<DeviceKeys> DeviceKeys::Generate(std::string user, uint64_t now_ms) {
  TIDINGS_ASSIGN_OR_RETURN(auto sign_seed, crypto::SecretKey::Random());
  TIDINGS_ASSIGN_OR_RETURN(auto box_secret, crypto::SecretKey::Random());
  auto view = [](const crypto::SecretKey& k) {
    return std::string_view(reinterpret_cast<const char*>(k.data()), k.size());
  };
  return FromSecrets(view(sign_seed), view(box_secret), std::move(user), now_ms);
}

Result<DeviceKeys> DeviceKeys::Deserialize(std::string_view bytes, std::string user) {
  wire::ByteReader r(bytes, "device keys");
  uint8_t version = 0;
  TIDINGS_RETURN_IF_ERROR(r.U8("version", &version));
  if (version != kSecretsVersion) return r.Error("version", "is not 1");
  if (bytes.size() < 1 + 2 * crypto::kKeyBytes) return r.Error("keys", "are truncated");
  const std::string_view sign = bytes.substr(1, crypto::kKeyBytes);
  const std::string_view box = bytes.substr(1 + crypto::kKeyBytes, crypto::kKeyBytes);
  wire::ByteReader tail(bytes.substr(1 + 2 * crypto::kKeyBytes), "device keys");
  uint64_t created = 0;
  TIDINGS_RETURN_IF_ERROR(tail.Varint("created", &created));
  return FromSecrets(sign, box, std::move(user), created);
}

std::string DeviceKeys::Serialize() const {
  std::string out;
  out.push_back(static_cast<char>(kSecretsVersion));
  out.append(reinterpret_cast<const char*>(sign_seed_.data()), crypto::kKeyBytes);
  out.append(reinterpret_cast<const char*>(box_secret_.data()), crypto::kKeyBytes);
  wire::ByteWriter(&out).Varint(record_.created_ms);
  return out;
}

Result<std::string> DeviceKeys::Sign(std::string_view message) const {
  if (!valid()) return FailedPrecondition("this device has no signing key");
  return signing_.Sign(message);
}

Result<std::string> DeviceKeys::OpenSealed(std::string_view sealed) const {
  return crypto::OpenBox(box_secret_, record_.box_pk, sealed);
}

}  // namespace tidings::e2e
