// ChimeBackend's mapping between Tidings operations and Chime messages beyond
// a plain send: the native mirror of edits, deletes and read markers (what
// other Chime clients show), and the operations a listed, evented or
// rescanned message carries - its send, and the edit or tombstone its
// current state implies. Every device derives the same operations (ids,
// order keys, bodies) from the same Chime state, so devices converge
// whichever way they learn of a change.
#include "common/json_string.h"
#include "sync/chime/chime_backend.h"
#include "sync/chime/chime_internal.h"

namespace tidings::chime {
namespace {

using internal::DecodeBody;
using internal::Enc;
using internal::EncodeBody;
using internal::Hash64;
using internal::KindOf;
using internal::StartsWith;

// Another client's message (or a redacted one, whose Metadata Chime
// stripped) is ordered by its server time and sender, identically on every
// replica.
engine::OrderKey ServerOrder(const ChimeMessage& m) {
  return {static_cast<uint64_t>(m.created_ms) << 16, Hash64(m.sender_arn)};
}

}  // namespace

namespace internal {

std::string OpText(engine::OpKind kind, const std::string& reaction,
                   const std::string& encoded_body) {
  switch (kind) {
    case engine::OpKind::kEdit:
      return kEditPrefix + encoded_body;
    case engine::OpKind::kDelete:
      return "\U0001F5D1\uFE0F deleted a message";
    case engine::OpKind::kReact:
      return "reacted " + reaction;
    case engine::OpKind::kUnreact:
      return "took back a reaction " + reaction;
    case engine::OpKind::kReadMarker:
      return "\u2713 read";
    case engine::OpKind::kSend:
      break;
  }
  return " ";
}

bool ParseOpMessage(const ChimeMessage& m, Envelope* e) {
  if (!m.content.empty() && m.content.front() == '{') return ParseEnvelope(m.content, e);
  if (!ParseEnvelope(m.metadata, e)) return false;
  if (e->kind == "edit") {
    if (!StartsWith(m.content, kEditPrefix)) return false;
    e->body = m.content.substr(sizeof(kEditPrefix) - 1);
  }
  return true;
}

}  // namespace internal

std::optional<ChimeBackend::Known> ChimeBackend::TargetOf(const std::string& channel_arn,
                                                          const engine::Operation& op,
                                                          bool need_created) {
  auto it = known_.find(op.message_id);
  if (it != known_.end() && (it->second.created_ms > 0 || !need_created)) return it->second;
  std::string chime_id = it != known_.end()                    ? it->second.chime_message_id
                         : !op.remote_id.empty()               ? op.remote_id
                         : StartsWith(op.message_id, "chime:") ? op.message_id.substr(6)
                                                               : "";
  if (chime_id.empty()) return std::nullopt;
  // Its Metadata (the envelope an edit keeps) and time (a delete's
  // tombstone): one GetChannelMessage, once per process and message.
  auto got = Call("GET", "/channels/" + Enc(channel_arn) + "/messages/" + Enc(chime_id));
  last_retry_after_ms_.reset();  // a hint for this read is not the operation's
  if (!got.ok()) {
    if (it == known_.end() || need_created) return std::nullopt;
    return it->second;
  }
  auto m = ParseChannelMessage(*got, /*wrapped=*/true);
  if (!m.ok() || m->redacted) return std::nullopt;
  Known known{chime_id, "", m->created_ms};
  Envelope e;
  if (ParseEnvelope(m->metadata, &e) && e.kind == "send" && e.message_id == op.message_id) {
    known.envelope = m->metadata;
  } else if (!StartsWith(op.message_id, "chime:")) {
    return std::nullopt;  // not the message (a remote id of another backend)
  }
  Remember(op.message_id, known);
  return known;
}

void ChimeBackend::Mirror(const std::string& channel_arn, const engine::Operation& op) {
  if (op.kind != engine::OpKind::kEdit && op.kind != engine::OpKind::kDelete &&
      op.kind != engine::OpKind::kReadMarker) {
    return;  // sends are the message itself; reactions have no native form
  }
  const std::string channel = "/channels/" + Enc(channel_arn);
  Result<std::string> done = std::string();
  if (op.kind == engine::OpKind::kReadMarker) {
    done = Call("PUT", channel + "/readMarker");
  } else {
    // A delete redacts only a target whose time its operation message
    // carried (PushOne read it): devices listing the redacted message then
    // know it for that delete's (ListNewMessages).
    std::optional<Known> target =
        TargetOf(channel_arn, op, /*need_created=*/op.kind == engine::OpKind::kDelete);
    if (!target) {
      ++mirror_failures_;  // its MessageId is unknown: the op message only
      return;
    }
    const std::string path = channel + "/messages/" + Enc(target->chime_message_id);
    if (op.kind == engine::OpKind::kDelete) {
      done = Call("POST", path + "?operation=redact");
    } else {
      std::string content, encoding;
      EncodeBody(op.body, &content, &encoding);
      if (content.size() > kMaxContentBytes) {
        ++mirror_failures_;
        return;
      }
      std::string body = "{\"Content\":" + JsonString(content);
      if (!target->envelope.empty()) {
        // Keep the Tidings envelope (id, order, author): without it a device
        // pulling later would take the message for another client's. Its
        // encoding now describes the new content, and the edit operation
        // rides along, so whoever sees the edited message merges this very
        // operation.
        Envelope e;
        if (!ParseEnvelope(target->envelope, &e)) {
          ++mirror_failures_;
          return;
        }
        e.encoding = encoding;
        e.edit_op_id = op.op_id;
        e.edit_hlc = op.at.hlc;
        e.edit_replica = op.at.replica;
        e.edit_content_type = op.content_type;
        e.content_hash = ContentHash(content);
        std::string metadata = WriteEnvelope(e, false);
        if (metadata.size() > kMaxMetadataBytes) {
          ++mirror_failures_;
          return;
        }
        body += ",\"Metadata\":" + JsonString(metadata);
        Remember(op.message_id, {target->chime_message_id, metadata, target->created_ms});
      }
      body +=
          ",\"ContentType\":" + JsonString(encoding == "b64" ? kBase64ContentType : "text/plain") +
          "}";
      done = Call("PUT", path, body);
    }
  }
  if (!done.ok()) ++mirror_failures_;
  last_retry_after_ms_.reset();  // the mirror's hints are not the operation's
}

void ChimeBackend::AppendStateOperations(const std::string& conversation_id, const ChimeMessage& m,
                                         bool placeholder, std::vector<engine::Operation>* ops) {
  if (m.content_type == kOpContentType || m.type == "CONTROL") return;  // never edited
  engine::Operation op;
  op.conversation_id = conversation_id;
  op.server_time_ms = static_cast<uint64_t>(m.created_ms);
  op.remote_id = m.message_id;
  op.author = UserOf(m.sender_arn);
  if (op.author.empty()) op.author = "chime:unknown";
  if (m.redacted) {
    // Chime stripped its Metadata: another client's message, whose tombstone
    // is "chime:<MessageId>" on every device. Where it was in fact a Tidings
    // message, the delete waits for a message that never comes (invisible);
    // the Tidings delete operation brings that message's own tombstone.
    op.kind = engine::OpKind::kSend;
    op.op_id = op.message_id = "chime:" + m.message_id;
    op.at = ServerOrder(m);
    op.content_type = "text/plain";
    if (placeholder) ops->push_back(op);  // its place, for a device that never had it
    op.kind = engine::OpKind::kDelete;
    op.op_id = "chime-tombstone:" + m.message_id;
    op.content_type.clear();
    ops->push_back(std::move(op));
    return;
  }
  if (m.edited_ms <= 0) return;
  op.kind = engine::OpKind::kEdit;
  Envelope e;
  const bool tidings = ParseEnvelope(m.metadata, &e) && e.kind == "send";
  if (tidings && !e.edit_op_id.empty() && e.content_hash == ContentHash(m.content) &&
      DecodeBody(m.content, e.encoding, &op.body)) {
    // Tidings' own native edit: the very operation its author pushed.
    op.op_id = e.edit_op_id;
    op.message_id = e.message_id;
    op.at = {e.edit_hlc, e.edit_replica};
    op.content_type = e.edit_content_type;
  } else {
    // Another client's edit (of its message, or of a Tidings message by the
    // same Chime user): ordered at its LastEditedTimestamp.
    op.op_id = "chime-edit:" + m.message_id + ":" + std::to_string(m.edited_ms);
    op.message_id = tidings ? e.message_id : "chime:" + m.message_id;
    op.at = {static_cast<uint64_t>(m.edited_ms) << 16, Hash64(m.sender_arn)};
    op.body = m.content;
    op.content_type = m.content_type.empty() ? "text/plain" : m.content_type;
  }
  ops->push_back(std::move(op));
}

bool ChimeBackend::AppendOperationMessage(engine::Operation op, const ChimeMessage& m,
                                          std::vector<engine::Operation>* ops) {
  // Malformed or unknown ones are skipped (an op's JSON shown as a chat
  // message would help nobody).
  if (m.redacted) return true;
  Envelope e;
  auto kind = internal::ParseOpMessage(m, &e) ? KindOf(e.kind) : std::nullopt;
  if (!kind || *kind == engine::OpKind::kSend) return false;
  op.kind = *kind;
  op.op_id = e.op_id;
  op.message_id = e.message_id;
  if (op.author.empty()) op.author = e.author;
  op.at = {e.hlc, e.replica};
  if (op.kind == engine::OpKind::kEdit && !DecodeBody(e.body, e.encoding, &op.body)) {
    return false;
  }
  if (op.kind == engine::OpKind::kEdit) op.content_type = e.content_type;
  op.reaction = e.reaction;
  op.read_up_to = {e.read_hlc, e.read_replica};
  if (op.kind == engine::OpKind::kDelete && (e.target_hlc != 0 || e.target_replica != 0)) {
    // The target as a placeholder first: ignored where the message exists
    // (inserts are idempotent by id), the tombstone's place where the
    // redaction left nothing to merge.
    engine::Operation target = op;
    target.kind = engine::OpKind::kSend;
    target.op_id = op.message_id;
    target.at = {e.target_hlc, e.target_replica};
    target.content_type = e.target_content_type;
    ops->push_back(std::move(target));
  }
  ops->push_back(std::move(op));
  return true;
}

bool ChimeBackend::AppendOperations(const std::string& conversation_id, const ChimeMessage& m,
                                    std::vector<engine::Operation>* ops) {
  engine::Operation op;
  op.conversation_id = conversation_id;
  op.server_time_ms = static_cast<uint64_t>(m.created_ms);
  op.remote_id = m.message_id;
  // Who Chime says sent it (it authenticated them), as a member id. The
  // envelope's author is only a claim: a member could write another's name
  // in it and so edit or delete their messages. Chime's sender wins.
  const std::string sender = UserOf(m.sender_arn);
  if (m.content_type == kOpContentType) {
    op.author = sender;
    return AppendOperationMessage(std::move(op), m, ops);  // a Tidings operation
  }
  Envelope e;
  std::string body_text;
  if (ParseEnvelope(m.metadata, &e) && e.kind == "send" &&
      (m.redacted || DecodeBody(m.content, e.encoding, &body_text))) {
    op.kind = engine::OpKind::kSend;
    op.op_id = op.message_id = e.message_id;
    op.author = sender.empty() ? e.author : sender;
    op.at = {e.hlc, e.replica};
    op.body = m.redacted ? "" : body_text;
    op.content_type = e.content_type;
    op.metadata = e.metadata;
    Remember(op.message_id, {m.message_id, m.metadata, m.created_ms});
    ops->push_back(op);
    if (m.redacted) {
      // Redacted with its Metadata kept (Chime strips it; a redaction that
      // did not): a tombstone, the same on every device that sees it.
      engine::Operation del = op;
      del.kind = engine::OpKind::kDelete;
      del.op_id = "chime-redacted:" + m.message_id;
      del.body.clear();
      del.content_type.clear();
      del.metadata.clear();
      ops->push_back(std::move(del));
    } else {
      AppendStateOperations(conversation_id, m, false, ops);  // its edit, if any
    }
    return true;
  }
  if (m.redacted) {
    // Unclaimed by a Tidings delete in the listing (ListNewMessages): a
    // tombstone at its place.
    AppendStateOperations(conversation_id, m, /*placeholder=*/true, ops);
    return true;
  }
  // Another Chime client's message (or Tidings metadata that does not
  // parse): a plain message ordered by the server's time, identically on
  // every replica.
  op.kind = engine::OpKind::kSend;
  op.op_id = op.message_id = "chime:" + m.message_id;
  op.author = sender.empty() ? "chime:unknown" : sender;
  op.at = ServerOrder(m);
  op.body = m.content;
  op.content_type = m.content_type.empty() ? "text/plain" : m.content_type;
  Remember(op.message_id, {m.message_id, "", m.created_ms});
  ops->push_back(std::move(op));
  AppendStateOperations(conversation_id, m, false, ops);  // its edit, if any
  return true;
}

}  // namespace tidings::chime
