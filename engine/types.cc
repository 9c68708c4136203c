#include "engine/types.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "crypto/hash.h"
#include "engine/codec.h"

namespace tidings::engine {

void Writer::Varint(uint64_t v) {
  while (v >= 0x80) {
    out_->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out_->push_back(static_cast<char>(v));
}

void Writer::Fixed64BE(uint64_t v) { PutFixed64BE(out_, v); }

void Writer::Bytes(std::string_view s) {
  Varint(s.size());
  out_->append(s);
}

void Writer::Map(const std::map<std::string, std::string>& m) {
  Varint(m.size());
  for (const auto& [k, v] : m) {
    Bytes(k);
    Bytes(v);
  }
}

void Writer::Attachments(const std::vector<Attachment>& list) {
  Varint(list.size());
  for (const auto& a : list) {
    Bytes(a.name);
    Bytes(a.content_type);
    Varint(a.size);
    Bytes(a.object);
    Varint(a.object_size);
    Bytes(a.content_key);
    Bytes(a.location);
    Bytes(a.preview);
  }
}

bool Reader::U8(uint8_t* v) {
  if (in_.empty()) return false;
  *v = static_cast<uint8_t>(in_[0]);
  in_.remove_prefix(1);
  return true;
}

bool Reader::Varint(uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63; shift += 7) {
    if (in_.empty()) return false;
    auto byte = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

bool Reader::Fixed64BE(uint64_t* v) {
  if (in_.size() < 8) return false;
  *v = GetFixed64BE(in_.data());
  in_.remove_prefix(8);
  return true;
}

bool Reader::Bytes(std::string* s) {
  uint64_t n;
  if (!Varint(&n) || n > in_.size()) return false;
  s->assign(in_.data(), static_cast<size_t>(n));
  in_.remove_prefix(static_cast<size_t>(n));
  return true;
}

bool Reader::Raw(size_t n, std::string_view* s) {
  if (n > in_.size()) return false;
  *s = in_.substr(0, n);
  in_.remove_prefix(n);
  return true;
}

bool Reader::Map(std::map<std::string, std::string>* m) {
  uint64_t n;
  if (!Varint(&n) || n > in_.size()) return false;
  m->clear();
  for (uint64_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!Bytes(&k) || !Bytes(&v)) return false;
    (*m)[std::move(k)] = std::move(v);
  }
  return true;
}

bool Reader::Attachments(std::vector<Attachment>* list) {
  uint64_t n;
  if (!Varint(&n) || n == 0 || n > kMaxAttachments) return false;
  list->assign(n, Attachment{});
  for (auto& a : *list) {
    if (!Bytes(&a.name) || !Bytes(&a.content_type) || !Varint(&a.size) || !Bytes(&a.object) ||
        !Varint(&a.object_size) || !Bytes(&a.content_key) || !Bytes(&a.location) ||
        !Bytes(&a.preview) || a.object.size() != 32 || a.content_key.size() != 32 ||
        a.name.size() > kMaxAttachmentNameBytes || a.preview.size() > kMaxPreviewBytes) {
      return false;
    }
  }
  return true;
}

std::string OrderKey::Encode() const {
  std::string out;
  out.reserve(16);
  PutFixed64BE(&out, hlc);
  PutFixed64BE(&out, replica);
  return out;
}

bool OrderKey::Decode(std::string_view bytes, OrderKey* out) {
  if (bytes.size() != 16) return false;
  out->hlc = GetFixed64BE(bytes.data());
  out->replica = GetFixed64BE(bytes.data() + 8);
  return true;
}

std::string OrderKey::ToString() const {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%016llx-%016llx", static_cast<unsigned long long>(hlc),
                static_cast<unsigned long long>(replica));
  return buf;
}

namespace {

// Random bytes for ids, drawn from the OS 1 KiB at a time per thread (one
// getrandom call per ~100 ids instead of one per id). Refilled after a fork,
// so parent and child never hand out the same bytes.
void IdRandomBytes(uint8_t* out, size_t n) {
  struct Pool {
    uint8_t bytes[1024];
    size_t used = sizeof(bytes);
    pid_t pid = 0;
  };
  thread_local Pool pool;
  const pid_t pid = ::getpid();
  if (pool.pid != pid || pool.used + n > sizeof(pool.bytes)) {
    crypto::RandomBytes(pool.bytes, sizeof(pool.bytes));
    pool.used = 0;
    pool.pid = pid;
  }
  std::memcpy(out, pool.bytes + pool.used, n);
  pool.used += n;
}

}  // namespace

std::string NewMessageId(uint64_t unix_ms, const RandomBytes& random) {
  uint8_t b[16];
  if (random) {
    random(b + 6, 10);
  } else {
    IdRandomBytes(b + 6, 10);
  }
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(unix_ms >> (8 * (5 - i)));
  b[6] = static_cast<uint8_t>(0x70 | (b[6] & 0x0f));  // version 7
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));  // RFC 4122 variant
  std::string id = crypto::HexEncode(b);
  for (size_t dash : {8, 13, 18, 23}) id.insert(dash, 1, '-');  // 8-4-4-4-12
  return id;
}

uint64_t UuidV7Millis(std::string_view id) {
  // xxxxxxxx-xxxx-7xxx-...: the first 12 hex digits are the milliseconds.
  if (id.size() != 36 || id[8] != '-' || id[13] != '-' || id[14] != '7') return 0;
  uint64_t ms = 0;
  for (size_t i = 0; i < 13; ++i) {
    if (i == 8) continue;
    const char c = id[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return 0;
    ms = ms << 4 | static_cast<uint64_t>(v);
  }
  return ms;
}

const char* MessageStateName(MessageState s) {
  switch (s) {
    case MessageState::kPending:
      return "pending";
    case MessageState::kSent:
      return "sent";
    case MessageState::kFailed:
      return "failed";
  }
  return "unknown";
}

const char* OpKindName(OpKind k) {
  switch (k) {
    case OpKind::kSend:
      return "send";
    case OpKind::kEdit:
      return "edit";
    case OpKind::kDelete:
      return "delete";
    case OpKind::kReact:
      return "react";
    case OpKind::kUnreact:
      return "unreact";
    case OpKind::kReadMarker:
      return "read_marker";
  }
  return "unknown";
}

namespace {
constexpr uint8_t kOpVersion = 1;
}

std::string EncodeOperation(const Operation& op) {
  std::string out;
  out.reserve(64 + op.op_id.size() + op.conversation_id.size() + op.author.size() +
              op.message_id.size() + op.body.size() + op.content_type.size());
  Writer w(&out);
  w.U8(kOpVersion);
  w.U8(static_cast<uint8_t>(op.kind));
  w.Bytes(op.op_id);
  w.Bytes(op.conversation_id);
  w.Bytes(op.author);
  w.Key(op.at);
  w.Bytes(op.message_id);
  w.Bytes(op.body);
  w.Bytes(op.content_type);
  w.Map(op.metadata);
  w.Bytes(op.reaction);
  w.Key(op.read_up_to);
  w.Varint(op.server_time_ms);
  w.Bytes(op.remote_id);
  // Appended field (schema v4): operations without attachments end here.
  if (!op.attachments.empty()) w.Attachments(op.attachments);
  return out;
}

bool DecodeOperation(std::string_view bytes, Operation* out) {
  Reader r(bytes);
  uint8_t version, kind;
  Operation op;
  if (!r.U8(&version) || version != kOpVersion || !r.U8(&kind)) return false;
  if (kind < static_cast<uint8_t>(OpKind::kSend) ||
      kind > static_cast<uint8_t>(OpKind::kReadMarker))
    return false;
  op.kind = static_cast<OpKind>(kind);
  if (!r.Bytes(&op.op_id) || !r.Bytes(&op.conversation_id) || !r.Bytes(&op.author) ||
      !r.Key(&op.at) || !r.Bytes(&op.message_id) || !r.Bytes(&op.body) ||
      !r.Bytes(&op.content_type) || !r.Map(&op.metadata) || !r.Bytes(&op.reaction) ||
      !r.Key(&op.read_up_to) || !r.Varint(&op.server_time_ms) || !r.Bytes(&op.remote_id)) {
    return false;
  }
  if (!r.done() && (op.kind != OpKind::kSend || !r.Attachments(&op.attachments))) return false;
  if (!r.done()) return false;
  *out = std::move(op);
  return true;
}

}  // namespace tidings::engine
