// The bytes of a sealed log's frames (sync/backend.h Frame::bytes), format 1.
// Codec only: sealing, signing and the checks are in sync/e2e/session.h.
// Every integer as wire::ByteWriter writes it; every frame starts
// u8 0xE1 (format 1) | u8 type.
//
//   announcement (1)  bytes device_record            (identity.h; no user)
//   key share (2)     bytes log_id | varint epoch | bytes epoch_sharer
//                     | bytes signer | varint n | n x (bytes device_id,
//                     bytes sealed) | bytes info | bytes signature
//   sealed op (3)     bytes log_id | varint epoch | bytes epoch_sharer
//                     | bytes author_device | bytes op_id | bytes ciphertext
//                     | bytes signature
//
// An epoch is named by (epoch, epoch_sharer): the number and the device that
// made its key, so two members starting epoch N at once make two epochs,
// never one key for two. A key share signed by a device other than the
// epoch's sharer is a re-share (the epoch's key given to a device that
// appeared later). `sealed` is crypto_box_seal of a ShareSecret to one
// device; `info` is the EpochInfo under the epoch key. Signatures cover a
// context string, the conversation id (known to members only) and every
// byte before the signature, so a frame replayed into another log or another
// conversation fails.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tidings::e2e {

inline constexpr uint8_t kFrameFormat = 0xE1;

enum class FrameType : uint8_t { kAnnouncement = 1, kKeyShare = 2, kSealedOp = 3 };

struct KeyShareFrame {
  std::string log_id;
  uint64_t epoch = 0;
  std::string epoch_sharer;                                 // device id
  std::string signer;                                       // device id
  std::vector<std::pair<std::string, std::string>> sealed;  // device id -> sealed ShareSecret
  std::string info;                                         // EpochInfo, AEAD under the epoch key
  std::string signature;
};

struct SealedOpFrame {
  std::string log_id;
  uint64_t epoch = 0;
  std::string epoch_sharer;
  std::string author_device;
  std::string op_id;
  std::string ciphertext;  // AEAD under the epoch key of wire::EncodeOperation
  std::string signature;
};

// What a key share gives each recipient device (inside its sealed box).
struct ShareSecret {
  std::string conversation_id;
  std::string log_secret;  // 32 bytes: the log id is derived from it
  uint64_t epoch = 0;
  std::string epoch_sharer;
  std::string epoch_key;    // 32 bytes
  std::string signer_user;  // whose device signed the share
};

// The epoch's conversation facts, readable only with its key.
struct EpochInfo {
  std::string conversation_id;
  std::string title;
  std::vector<std::string> members;  // users, sorted
  std::vector<std::string> devices;  // device ids the epoch was made for, sorted
  std::vector<std::string> removed;  // device ids removed from the conversation, sorted
};

// DataLoss for anything malformed; FailedPrecondition for another format.
Result<FrameType> PeekFrameType(std::string_view frame);

std::string EncodeAnnouncement(std::string_view device_record);
Result<std::string> DecodeAnnouncement(std::string_view frame);

// Everything before the signature (what the signer signs, after the context).
std::string EncodeKeyShareBody(const KeyShareFrame& f);
std::string EncodeKeyShare(const KeyShareFrame& f);
Result<KeyShareFrame> DecodeKeyShare(std::string_view frame, std::string* signed_body);

std::string EncodeSealedOpBody(const SealedOpFrame& f);
std::string EncodeSealedOp(const SealedOpFrame& f);
Result<SealedOpFrame> DecodeSealedOp(std::string_view frame, std::string* signed_body);

// Plaintext; the caller wipes it after sealing.
std::string EncodeShareSecret(const ShareSecret& s);
Result<ShareSecret> DecodeShareSecret(std::string_view bytes);
std::string EncodeEpochInfo(const EpochInfo& info);
Result<EpochInfo> DecodeEpochInfo(std::string_view bytes);

}  // namespace tidings::e2e
