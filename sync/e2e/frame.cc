#include "sync/e2e/frame.h"

#include "sync/wire/bytes.h"

namespace tidings::e2e {
namespace {

using wire::ByteReader;
using wire::ByteWriter;

constexpr size_t kMaxListEntries = 10'000;

void Header(ByteWriter& w, FrameType type) {
  w.U8(kFrameFormat);
  w.U8(static_cast<uint8_t>(type));
}

Status ExpectHeader(ByteReader& r, FrameType type) {
  uint8_t format = 0, raw = 0;
  TIDINGS_RETURN_IF_ERROR(r.U8("format", &format));
  if (format != kFrameFormat) return r.Error("format", "is not an end-to-end frame");
  TIDINGS_RETURN_IF_ERROR(r.U8("type", &raw));
  if (raw != static_cast<uint8_t>(type)) return r.Error("type", "is not the expected one");
  return Status::Ok();
}

Status ExpectEnd(const ByteReader& r) {
  if (!r.done()) return r.Error("end", "expected, but bytes are left over");
  return Status::Ok();
}

// The signed body is every byte up to the signature field.
Status SplitSignature(ByteReader& r, std::string_view frame, std::string* body,
                      std::string* signature) {
  if (body) *body = std::string(frame.substr(0, r.position()));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("signature", signature));
  return ExpectEnd(r);
}

}  // namespace

Result<FrameType> PeekFrameType(std::string_view frame) {
  ByteReader r(frame, "end-to-end frame");
  uint8_t format = 0, raw = 0;
  TIDINGS_RETURN_IF_ERROR(r.U8("format", &format));
  if (format != kFrameFormat) {
    return FailedPrecondition("a frame has format " + std::to_string(format) +
                              ", which this build does not read (upgrade Tidings)");
  }
  TIDINGS_RETURN_IF_ERROR(r.U8("type", &raw));
  if (raw < 1 || raw > 3) return r.Error("type", "is unknown");
  return static_cast<FrameType>(raw);
}

std::string EncodeAnnouncement(std::string_view device_record) {
  std::string out;
  ByteWriter w(&out);
  Header(w, FrameType::kAnnouncement);
  w.Bytes(device_record);
  return out;
}

Result<std::string> DecodeAnnouncement(std::string_view frame) {
  ByteReader r(frame, "announcement frame");
  TIDINGS_RETURN_IF_ERROR(ExpectHeader(r, FrameType::kAnnouncement));
  std::string record;
  TIDINGS_RETURN_IF_ERROR(r.Bytes("device record", &record));
  TIDINGS_RETURN_IF_ERROR(ExpectEnd(r));
  return record;
}

std::string EncodeKeyShareBody(const KeyShareFrame& f) {
  std::string out;
  ByteWriter w(&out);
  Header(w, FrameType::kKeyShare);
  w.Bytes(f.log_id);
  w.Varint(f.epoch);
  w.Bytes(f.epoch_sharer);
  w.Bytes(f.signer);
  w.Varint(f.sealed.size());
  for (const auto& [device, sealed] : f.sealed) {
    w.Bytes(device);
    w.Bytes(sealed);
  }
  w.Bytes(f.info);
  return out;
}

std::string EncodeKeyShare(const KeyShareFrame& f) {
  std::string out = EncodeKeyShareBody(f);
  ByteWriter(&out).Bytes(f.signature);
  return out;
}

Result<KeyShareFrame> DecodeKeyShare(std::string_view frame, std::string* signed_body) {
  ByteReader r(frame, "key share frame");
  TIDINGS_RETURN_IF_ERROR(ExpectHeader(r, FrameType::kKeyShare));
  KeyShareFrame f;
  TIDINGS_RETURN_IF_ERROR(r.Bytes("log id", &f.log_id));
  TIDINGS_RETURN_IF_ERROR(r.Varint("epoch", &f.epoch));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("epoch sharer", &f.epoch_sharer));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("signer", &f.signer));
  uint64_t n = 0;
  TIDINGS_RETURN_IF_ERROR(r.Varint("recipients", &n));
  if (n > kMaxListEntries) return r.Error("recipients", "are too many");
  f.sealed.resize(n);
  for (auto& [device, sealed] : f.sealed) {
    TIDINGS_RETURN_IF_ERROR(r.Bytes("recipient", &device));
    TIDINGS_RETURN_IF_ERROR(r.Bytes("sealed key", &sealed));
  }
  TIDINGS_RETURN_IF_ERROR(r.Bytes("info", &f.info));
  TIDINGS_RETURN_IF_ERROR(SplitSignature(r, frame, signed_body, &f.signature));
  return f;
}

std::string EncodeSealedOpBody(const SealedOpFrame& f) {
  std::string out;
  ByteWriter w(&out);
  Header(w, FrameType::kSealedOp);
  w.Bytes(f.log_id);
  w.Varint(f.epoch);
  w.Bytes(f.epoch_sharer);
  w.Bytes(f.author_device);
  w.Bytes(f.op_id);
  w.Bytes(f.ciphertext);
  return out;
}

std::string EncodeSealedOp(const SealedOpFrame& f) {
  std::string out = EncodeSealedOpBody(f);
  ByteWriter(&out).Bytes(f.signature);
  return out;
}

Result<SealedOpFrame> DecodeSealedOp(std::string_view frame, std::string* signed_body) {
  ByteReader r(frame, "sealed operation frame");
  TIDINGS_RETURN_IF_ERROR(ExpectHeader(r, FrameType::kSealedOp));
  SealedOpFrame f;
  TIDINGS_RETURN_IF_ERROR(r.Bytes("log id", &f.log_id));
  TIDINGS_RETURN_IF_ERROR(r.Varint("epoch", &f.epoch));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("epoch sharer", &f.epoch_sharer));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("author device", &f.author_device));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("op id", &f.op_id));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("ciphertext", &f.ciphertext));
  TIDINGS_RETURN_IF_ERROR(SplitSignature(r, frame, signed_body, &f.signature));
  return f;
}

std::string EncodeShareSecret(const ShareSecret& s) {
  std::string out;
  ByteWriter w(&out);
  w.U8(1);
  w.Bytes(s.conversation_id);
  w.Bytes(s.log_secret);
  w.Varint(s.epoch);
  w.Bytes(s.epoch_sharer);
  w.Bytes(s.epoch_key);
  w.Bytes(s.signer_user);
  return out;
}

Result<ShareSecret> DecodeShareSecret(std::string_view bytes) {
  ByteReader r(bytes, "key share secret");
  uint8_t version = 0;
  TIDINGS_RETURN_IF_ERROR(r.U8("version", &version));
  if (version != 1) return r.Error("version", "is not 1");
  ShareSecret s;
  TIDINGS_RETURN_IF_ERROR(r.Bytes("conversation id", &s.conversation_id));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("log secret", &s.log_secret));
  TIDINGS_RETURN_IF_ERROR(r.Varint("epoch", &s.epoch));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("epoch sharer", &s.epoch_sharer));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("epoch key", &s.epoch_key));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("signer user", &s.signer_user));
  TIDINGS_RETURN_IF_ERROR(ExpectEnd(r));
  if (s.log_secret.size() != 32 || s.epoch_key.size() != 32) {
    return DataLoss("key share secret: a key is not 32 bytes");
  }
  return s;
}

std::string EncodeEpochInfo(const EpochInfo& info) {
  std::string out;
  ByteWriter w(&out);
  w.U8(1);
  w.Bytes(info.conversation_id);
  w.Bytes(info.title);
  w.BytesList(info.members);
  w.BytesList(info.devices);
  w.BytesList(info.removed);
  return out;
}

Result<EpochInfo> DecodeEpochInfo(std::string_view bytes) {
  ByteReader r(bytes, "epoch info");
  uint8_t version = 0;
  TIDINGS_RETURN_IF_ERROR(r.U8("version", &version));
  if (version != 1) return r.Error("version", "is not 1");
  EpochInfo info;
  TIDINGS_RETURN_IF_ERROR(r.Bytes("conversation id", &info.conversation_id));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("title", &info.title));
  TIDINGS_RETURN_IF_ERROR(r.BytesList("members", kMaxListEntries, &info.members));
  TIDINGS_RETURN_IF_ERROR(r.BytesList("devices", kMaxListEntries, &info.devices));
  TIDINGS_RETURN_IF_ERROR(r.BytesList("removed", kMaxListEntries, &info.removed));
  TIDINGS_RETURN_IF_ERROR(ExpectEnd(r));
  return info;
}

}  // namespace tidings::e2e
