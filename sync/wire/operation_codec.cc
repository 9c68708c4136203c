#include "sync/wire/operation_codec.h"

#include <utility>

#include "sync/wire/bytes.h"

namespace tidings::wire {
namespace {

constexpr std::string_view kSubject = "malformed wire operation";

void PutKey(ByteWriter& w, const engine::OrderKey& k) {
  w.Fixed64BE(k.hlc);
  w.Fixed64BE(k.replica);
}

Status GetKey(ByteReader& r, std::string_view field, engine::OrderKey* k) {
  TIDINGS_RETURN_IF_ERROR(r.Fixed64BE(field, &k->hlc));
  return r.Fixed64BE(field, &k->replica);
}

Status GetKind(ByteReader& r, engine::OpKind* kind) {
  uint8_t raw = 0;
  TIDINGS_RETURN_IF_ERROR(r.U8("kind", &raw));
  if (raw < static_cast<uint8_t>(engine::OpKind::kSend) ||
      raw > static_cast<uint8_t>(engine::OpKind::kReadMarker)) {
    return r.Error("kind", "is unknown (" + std::to_string(raw) + ")");
  }
  *kind = static_cast<engine::OpKind>(raw);
  return Status::Ok();
}

// Canonical metadata: keys strictly ascending, so one map has one encoding.
// (The legacy encoding wrote a std::map in order too.)
Status GetMetadata(ByteReader& r, std::map<std::string, std::string>* m) {
  uint64_t n = 0;
  TIDINGS_RETURN_IF_ERROR(r.Varint("metadata count", &n));
  for (uint64_t i = 0; i < n; ++i) {
    std::string key, value;
    TIDINGS_RETURN_IF_ERROR(r.Bytes("metadata key", &key));
    if (!m->empty() && key <= m->rbegin()->first) {
      return r.Error("metadata key", "is out of order or repeated");
    }
    TIDINGS_RETURN_IF_ERROR(r.Bytes("metadata value", &value));
    m->emplace_hint(m->end(), std::move(key), std::move(value));
  }
  return Status::Ok();
}

// The legacy encoding's order keys: two varints.
Status GetLegacyKey(ByteReader& r, std::string_view field, engine::OrderKey* k) {
  TIDINGS_RETURN_IF_ERROR(r.Varint(field, &k->hlc));
  return r.Varint(field, &k->replica);
}

// Version 3: a send's attachment references (engine::Attachment), each
// within the limits the store enforces.
Status GetAttachments(ByteReader& r, engine::Operation* op) {
  uint64_t n = 0;
  TIDINGS_RETURN_IF_ERROR(r.Varint("attachment count", &n));
  if (n == 0 || n > engine::kMaxAttachments) {
    return r.Error("attachment count", "is " + std::to_string(n) + ", not 1 to " +
                                           std::to_string(engine::kMaxAttachments));
  }
  if (op->kind != engine::OpKind::kSend)
    return r.Error("attachments", "on an operation not a send");
  op->attachments.resize(n);
  for (auto& a : op->attachments) {
    TIDINGS_RETURN_IF_ERROR(r.Bytes("attachment name", &a.name));
    TIDINGS_RETURN_IF_ERROR(r.Bytes("attachment content type", &a.content_type));
    TIDINGS_RETURN_IF_ERROR(r.Varint("attachment size", &a.size));
    TIDINGS_RETURN_IF_ERROR(r.Bytes("attachment object", &a.object));
    TIDINGS_RETURN_IF_ERROR(r.Varint("attachment object size", &a.object_size));
    TIDINGS_RETURN_IF_ERROR(r.Bytes("attachment content key", &a.content_key));
    TIDINGS_RETURN_IF_ERROR(r.Bytes("attachment location", &a.location));
    TIDINGS_RETURN_IF_ERROR(r.Bytes("attachment preview", &a.preview));
    uint8_t flags = 0;
    TIDINGS_RETURN_IF_ERROR(r.U8("attachment flags", &flags));
    if (flags > 1) return r.Error("attachment flags", "has unknown bits");
    a.body = flags == 1;
    if (a.object.size() != 32 || a.content_key.size() != 32) {
      return r.Error("attachment", "has an object id or content key that is not 32 bytes");
    }
    if (a.name.size() > engine::kMaxAttachmentNameBytes ||
        a.preview.size() > engine::kMaxPreviewBytes) {
      return r.Error("attachment", "has a name or preview over the limit");
    }
  }
  return Status::Ok();
}

Status ExpectEnd(const ByteReader& r) {
  if (!r.done()) return r.Error("end", "expected, but bytes are left over");
  return Status::Ok();
}

// The fields every version has, in this order; versions differ in how order
// keys are written.
using KeyReader = Status (*)(ByteReader&, std::string_view, engine::OrderKey*);

Status GetFields(ByteReader& r, KeyReader get_key, engine::Operation* op) {
  TIDINGS_RETURN_IF_ERROR(GetKind(r, &op->kind));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("op_id", &op->op_id));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("conversation_id", &op->conversation_id));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("author", &op->author));
  TIDINGS_RETURN_IF_ERROR(get_key(r, "at", &op->at));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("message_id", &op->message_id));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("body", &op->body));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("content_type", &op->content_type));
  TIDINGS_RETURN_IF_ERROR(GetMetadata(r, &op->metadata));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("reaction", &op->reaction));
  return get_key(r, "read_up_to", &op->read_up_to);
}

}  // namespace

std::string EncodeOperation(const engine::Operation& op) {
  std::string out;
  out.reserve(64 + op.op_id.size() + op.conversation_id.size() + op.author.size() +
              op.message_id.size() + op.body.size() + op.content_type.size());
  ByteWriter w(&out);
  // Version 2 while there is nothing only version 3 says: readers of
  // version 2 still read every operation without attachments.
  w.U8(op.attachments.empty() ? kFirstOperationVersion : kOperationVersion);
  w.U8(static_cast<uint8_t>(op.kind));
  w.Bytes(op.op_id);
  w.Bytes(op.conversation_id);
  w.Bytes(op.author);
  PutKey(w, op.at);
  w.Bytes(op.message_id);
  w.Bytes(op.body);
  w.Bytes(op.content_type);
  w.Varint(op.metadata.size());
  for (const auto& [key, value] : op.metadata) {
    w.Bytes(key);
    w.Bytes(value);
  }
  w.Bytes(op.reaction);
  PutKey(w, op.read_up_to);
  if (!op.attachments.empty()) {
    w.Varint(op.attachments.size());
    for (const auto& a : op.attachments) {
      w.Bytes(a.name);
      w.Bytes(a.content_type);
      w.Varint(a.size);
      w.Bytes(a.object);
      w.Varint(a.object_size);
      w.Bytes(a.content_key);
      w.Bytes(a.location);
      w.Bytes(a.preview);
      w.U8(a.body ? 1 : 0);
    }
  }
  return out;
}

Result<engine::Operation> DecodeOperation(std::string_view bytes, uint8_t newest) {
  ByteReader r(bytes, kSubject);
  uint8_t version = 0;
  TIDINGS_RETURN_IF_ERROR(r.U8("version", &version));
  if (version < kFirstOperationVersion) {
    return r.Error("version", "is " + std::to_string(version) +
                                  ", which no wire operation is written with (1 is the store's "
                                  "own encoding: a legacy item read as a wire one?)");
  }
  if (version > newest) {
    return FailedPrecondition("a wire operation has version " + std::to_string(version) +
                              " but this build reads up to version " + std::to_string(newest) +
                              ": it was written by a newer Tidings; upgrade this one");
  }
  engine::Operation op;
  TIDINGS_RETURN_IF_ERROR(GetFields(r, GetKey, &op));
  if (version >= 3) TIDINGS_RETURN_IF_ERROR(GetAttachments(r, &op));
  TIDINGS_RETURN_IF_ERROR(ExpectEnd(r));
  return op;
}

Result<engine::Operation> DecodeLegacyOperation(std::string_view bytes) {
  ByteReader r(bytes, "malformed legacy (version 0) operation");
  uint8_t engine_version = 0;
  TIDINGS_RETURN_IF_ERROR(r.U8("version", &engine_version));
  if (engine_version != 1) return r.Error("version", "is not the legacy encoding's 1");
  engine::Operation op;
  TIDINGS_RETURN_IF_ERROR(GetFields(r, GetLegacyKey, &op));
  // The store's server_time_ms and remote_id followed; the backend that
  // delivers an operation sets its own, so these are read and dropped.
  uint64_t server_time_ms = 0;
  std::string remote_id;
  TIDINGS_RETURN_IF_ERROR(r.Varint("server_time_ms", &server_time_ms));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("remote_id", &remote_id));
  TIDINGS_RETURN_IF_ERROR(ExpectEnd(r));
  return op;
}

}  // namespace tidings::wire
