// Device identity for end-to-end encryption: each device (store) has an
// Ed25519 signing key and an X25519 box key, made on its first writable open
// and kept in the encrypted store; they never leave it. A device record - the
// two public keys and a creation time, signed by the device - is what other
// devices pin. A user is the set of their devices' records.
//
// Record bytes (format 1), every integer as wire::ByteWriter writes it:
//   u8 1 | bytes sign_pk (32) | bytes box_pk (32) | varint created_ms
//   | bytes signature (64)
// The signature covers "tidings-device-v1\0" || bytes(user) || everything
// before it. The user is not in the bytes (servers store records without
// naming anyone); a reader supplies the user the backend authenticated.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/public_key.h"
#include "crypto/secret_key.h"

namespace tidings::e2e {

// 32 lowercase hex digits: the first 16 bytes of BLAKE2b-256 of
// "tidings-device-v1" || sign_pk.
std::string DeviceIdOf(const crypto::PublicKey& sign_pk);

struct DeviceRecord {
  std::string user;
  crypto::PublicKey sign_pk{};
  crypto::PublicKey box_pk{};
  uint64_t created_ms = 0;
  std::string signature;  // 64 bytes

  std::string device_id() const { return DeviceIdOf(sign_pk); }
  std::string Encode() const;  // the record bytes above
  bool operator==(const DeviceRecord&) const = default;
};

// The record in `bytes`, as `user`'s: DataLoss if malformed or if the
// signature does not verify for that user.
Result<DeviceRecord> DecodeDeviceRecord(std::string_view bytes, std::string_view user);

// Safety fingerprints two people compare out of band: 30 decimal digits in
// six groups of five ("12345 67890 ..."), from BLAKE2b of the user and the
// public keys. A user's covers all their devices, in device id order.
std::string DeviceFingerprint(const DeviceRecord& device);
std::string UserFingerprint(std::string_view user, std::span<const DeviceRecord> devices);

// This device's secrets and its signed record. Move-only; the secrets live
// in sodium memory and are wiped on destruction.
class DeviceKeys {
 public:
  DeviceKeys() = default;
  static Result<DeviceKeys> Generate(std::string user, uint64_t now_ms);
  // From Serialize()'s bytes (the store's copy) for `user`.
  static Result<DeviceKeys> Deserialize(std::string_view bytes, std::string user);
  // u8 1 | sign seed (32) | box secret (32) | varint created_ms. Secret:
  // only the encrypted store may hold it; the caller wipes its copy.
  std::string Serialize() const;

  bool valid() const { return sign_seed_.valid(); }
  const DeviceRecord& record() const { return record_; }
  const std::string& device_id() const { return device_id_; }
  Result<std::string> Sign(std::string_view message) const;
  // Opens a crypto_box_seal'ed message to this device.
  Result<std::string> OpenSealed(std::string_view sealed) const;

 private:
  static Result<DeviceKeys> FromSecrets(std::string_view sign_seed, std::string_view box_secret,
                                        std::string user, uint64_t created_ms);
  crypto::SecretKey sign_seed_;
  crypto::SigningKey signing_;  // expanded once: every sealed frame is signed
  crypto::SecretKey box_secret_;
  DeviceRecord record_;
  std::string device_id_;
};

}  // namespace tidings::e2e
