// Record codecs; see engine/records.h.
#include "engine/records.h"

#include "engine/codec.h"

namespace tidings::engine {

std::string EncodeMessage(const MessageRecord& r) {
  const Message& m = r.m;
  std::string out;
  out.reserve(96 + m.id.size() + m.conversation_id.size() + m.sender.size() + m.body.size() +
              m.content_type.size());  // grows on for metadata, reactions
  Writer w(&out);
  w.U8(kRecordVersion);
  w.Bytes(m.id);
  w.Bytes(m.conversation_id);
  w.Bytes(m.sender);
  w.Key(m.order);
  w.Bytes(m.body);
  w.Bytes(m.content_type);
  w.Map(m.metadata);
  w.U8(static_cast<uint8_t>(m.state));
  w.Bytes(m.failure_reason);
  w.Map(m.remote_ids);
  w.Varint(m.server_time_ms);
  w.Key(m.edited_at);
  w.U8(m.deleted ? 1 : 0);
  w.Varint(r.reactions.size());
  for (const auto& [k, v] : r.reactions) {
    w.Bytes(k.first);
    w.Bytes(k.second);
    w.Key(v.at);
    w.U8(v.present ? 1 : 0);
  }
  // Appended fields: records without them simply end here. send_seq
  // (schema v2) is 0 only when attachments (schema v4) follow.
  if (r.send_seq != 0 || !m.attachments.empty()) w.Varint(r.send_seq);
  if (!m.attachments.empty()) w.Attachments(m.attachments);
  return out;
}

bool DecodeMessage(std::string_view in, MessageRecord* r) {
  Reader rd(in);
  Message& m = r->m;
  uint8_t version, state, deleted;
  uint64_t n;
  if (!rd.U8(&version) || version != kRecordVersion || !rd.Bytes(&m.id) ||
      !rd.Bytes(&m.conversation_id) || !rd.Bytes(&m.sender) || !rd.Key(&m.order) ||
      !rd.Bytes(&m.body) || !rd.Bytes(&m.content_type) || !rd.Map(&m.metadata) || !rd.U8(&state) ||
      state > 2 || !rd.Bytes(&m.failure_reason) || !rd.Map(&m.remote_ids) ||
      !rd.Varint(&m.server_time_ms) || !rd.Key(&m.edited_at) || !rd.U8(&deleted) ||
      !rd.Varint(&n) || n > in.size()) {
    return false;
  }
  m.state = static_cast<MessageState>(state);
  m.deleted = deleted != 0;
  r->reactions.clear();
  for (uint64_t i = 0; i < n; ++i) {
    std::string user, reaction;
    ReactionState st;
    uint8_t present;
    if (!rd.Bytes(&user) || !rd.Bytes(&reaction) || !rd.Key(&st.at) || !rd.U8(&present))
      return false;
    st.present = present != 0;
    r->reactions[{user, reaction}] = st;
  }
  r->send_seq = 0;
  m.attachments.clear();
  if (!rd.done()) {
    if (!rd.Varint(&r->send_seq)) return false;
    if (rd.done() ? r->send_seq == 0 : !rd.Attachments(&m.attachments)) return false;
    if (!rd.done()) return false;
  }
  r->RefreshVisibleReactions();
  return true;
}

std::string EncodeConversation(const Conversation& c) {
  std::string out;
  out.reserve(128 + c.id.size() + c.title.size() + c.last_message_id.size());
  Writer w(&out);
  w.U8(kRecordVersion);
  w.Bytes(c.id);
  w.Bytes(c.title);
  w.Varint(c.members.size());
  for (const auto& m : c.members) w.Bytes(m);
  w.Key(c.last_order);
  w.Bytes(c.last_message_id);
  w.Varint(c.message_count);
  w.Varint(c.read_markers.size());
  for (const auto& [u, k] : c.read_markers) {
    w.Bytes(u);
    w.Key(k);
  }
  w.Map(c.remote_ids);
  w.Varint(c.unread_count);  // since schema v6; older records end above
  return out;
}

bool DecodeConversation(std::string_view in, Conversation* c, bool* has_unread) {
  Reader r(in);
  uint8_t version;
  uint64_t n;
  if (!r.U8(&version) || version != kRecordVersion || !r.Bytes(&c->id) || !r.Bytes(&c->title) ||
      !r.Varint(&n) || n > in.size()) {
    return false;
  }
  c->members.resize(static_cast<size_t>(n));
  for (auto& m : c->members) {
    if (!r.Bytes(&m)) return false;
  }
  if (!r.Key(&c->last_order) || !r.Bytes(&c->last_message_id) || !r.Varint(&c->message_count) ||
      !r.Varint(&n) || n > in.size()) {
    return false;
  }
  c->read_markers.clear();
  for (uint64_t i = 0; i < n; ++i) {
    std::string u;
    OrderKey k;
    if (!r.Bytes(&u) || !r.Key(&k)) return false;
    c->read_markers[u] = k;
  }
  if (!r.Map(&c->remote_ids)) return false;
  c->unread_count = 0;
  const bool counted = !r.done();
  if (counted && (!r.Varint(&c->unread_count) || !r.done())) return false;
  if (has_unread != nullptr) *has_unread = counted;
  return true;
}

std::string EncodeOutbox(const OutboxRecord& r) {
  const OutboxEntry& e = r.e;
  std::string out;
  Writer w(&out);
  w.U8(r.body_by_ref ? kOutboxBodyByRef : kRecordVersion);
  w.Bytes(EncodeOperation(e.op));
  w.Varint(e.attempts);
  w.Varint(static_cast<uint64_t>(e.next_attempt_ms));
  w.Bytes(e.last_error);
  w.U8(e.failed ? 1 : 0);
  // Appended field: entries written before fan-out existed simply end here.
  if (!e.acked_by.empty()) {
    w.Varint(e.acked_by.size());
    for (const auto& b : e.acked_by) w.Bytes(b);
  }
  return out;
}

bool DecodeOutbox(std::string_view in, OutboxRecord* out) {
  OutboxEntry* e = &out->e;
  Reader r(in);
  uint8_t version, failed;
  std::string op;
  uint64_t attempts, next;
  if (!r.U8(&version) || (version != kRecordVersion && version != kOutboxBodyByRef) ||
      !r.Bytes(&op) || !r.Varint(&attempts) || !r.Varint(&next) || !r.Bytes(&e->last_error) ||
      !r.U8(&failed) || !DecodeOperation(op, &e->op)) {
    return false;
  }
  out->body_by_ref = version == kOutboxBodyByRef;
  if (out->body_by_ref && (e->op.kind != OpKind::kSend || !e->op.body.empty())) return false;
  e->acked_by.clear();
  if (!r.done()) {
    uint64_t n;
    if (!r.Varint(&n) || n > 64) return false;
    e->acked_by.resize(n);
    for (auto& b : e->acked_by) {
      if (!r.Bytes(&b)) return false;
    }
    if (!r.done()) return false;
  }
  e->attempts = static_cast<uint32_t>(attempts);
  e->next_attempt_ms = static_cast<int64_t>(next);
  e->failed = failed != 0;
  return true;
}

std::string EncodeAttachment(const AttachmentRecord& r) {
  const AttachmentObject& a = r.info;
  std::string out;
  Writer w(&out);
  w.U8(kRecordVersion);
  w.Bytes(a.object);
  w.Varint(a.size);
  w.Varint(a.object_size);
  w.U8(static_cast<uint8_t>(a.state));
  w.Bytes(a.failure_reason);
  w.Varint(a.references);
  w.Bytes(a.location);
  w.Varint(a.last_used_ms);
  w.Bytes(r.content_key);
  w.Bytes(r.upload_progress);
  w.Bytes(r.fingerprint);
  return out;
}

bool DecodeAttachment(std::string_view in, AttachmentRecord* r) {
  Reader rd(in);
  AttachmentObject& a = r->info;
  uint8_t version, state;
  if (!rd.U8(&version) || version != kRecordVersion || !rd.Bytes(&a.object) ||
      !rd.Varint(&a.size) || !rd.Varint(&a.object_size) || !rd.U8(&state) ||
      state > static_cast<uint8_t>(AttachmentState::kEvicted) || !rd.Bytes(&a.failure_reason) ||
      !rd.Varint(&a.references) || !rd.Bytes(&a.location) || !rd.Varint(&a.last_used_ms) ||
      !rd.Bytes(&r->content_key) || !rd.Bytes(&r->upload_progress) || !rd.Bytes(&r->fingerprint) ||
      !rd.done() || a.object.size() != 32 || r->content_key.size() != 32) {
    return false;
  }
  a.state = static_cast<AttachmentState>(state);
  return true;
}

}  // namespace tidings::engine
