#include "api/e2e_limits.h"

#include <algorithm>
#include <charconv>
#include <vector>

#include "api/e2e_mode.h"
#include "crypto/hash.h"
#include "sync/chime/chime_backend.h"
#include "sync/chime/chime_json.h"
#include "sync/e2e/session.h"

namespace tidings::capi {
namespace {

// Until a push, an operation's id is not known; the engine makes UUIDv7s,
// always this long.
const std::string kIdShape(36, '0');

// Chime carries a sealed frame base64-encoded in a message's Content.
constexpr size_t kChimeSealedFrameBytes = chime::kMaxContentBytes / 4 * 3;

struct Recorded {
  std::string backend;
  BackendLimits limits;
};

std::vector<Recorded> ParseLimits(std::string_view text) {
  std::vector<Recorded> out;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    const size_t a = line.find(' '), b = a == line.npos ? a : line.find(' ', a + 1);
    if (b == line.npos) continue;
    Recorded r{std::string(line.substr(0, a)), {}};
    std::from_chars(line.data() + a + 1, line.data() + b, r.limits.sealed_frame_bytes);
    std::from_chars(line.data() + b + 1, line.data() + line.size(), r.limits.plain_content_bytes);
    out.push_back(std::move(r));
  }
  return out;
}

// The smallest non-zero value of `field` over every backend, and its backend.
struct Smallest {
  size_t bytes = 0;
  std::string backend;
};
Smallest SmallestOf(const std::vector<Recorded>& all, size_t BackendLimits::*field) {
  Smallest s;
  for (const auto& r : all) {
    const size_t v = r.limits.*field;
    if (v != 0 && (s.bytes == 0 || v < s.bytes)) s = {v, r.backend};
  }
  return s;
}

std::string OnBackend(const std::string& name) {
  if (name == "chime") return "Chime";
  if (name == "dynamodb") return "DynamoDB";
  return name;
}

Status TooLargeFor(size_t limit, const Smallest& on, size_t needs, std::string_view note) {
  return TooLarge("this conversation can carry at most " + std::to_string(limit) +
                  " bytes per message on " + OnBackend(on.backend) + "; this one is " +
                  std::to_string(needs) + " bytes" + std::string(note) +
                  ". Shorten it or split it into several messages");
}

Result<bool> IsPlaintext(engine::Store& store, const std::string& conversation_id) {
  TIDINGS_ASSIGN_OR_RETURN(Mode mode, ModeOf(store, conversation_id));
  return mode == Mode::kPlaintext;
}

// The end-to-end limit: the body of an operation shaped like `shape` must
// fit a sealed frame.
Status CheckSealed(const Smallest& frame, const engine::Operation& shape, size_t body) {
  if (frame.bytes == 0) return Status::Ok();
  const size_t limit = e2e::MaxSealedBody(frame.bytes, shape);
  if (body <= limit) return Status::Ok();
  return TooLargeFor(limit, frame, body, " (the conversation is end-to-end encrypted)");
}

// What the Chime backend writes for a plaintext send: as Content the body,
// UTF-8 text as is (an empty body as one space), anything else base64; as
// Metadata Tidings' envelope, with the ids, author, content type and the
// message's own metadata.
Status CheckPlainSend(const Smallest& content, const engine::Operation& shape,
                      std::string_view body) {
  if (content.bytes == 0) return Status::Ok();
  const bool text = chime::IsUtf8(body);
  const size_t needs = text ? std::max<size_t>(body.size(), 1) : (body.size() + 2) / 3 * 4;
  if (needs > content.bytes) {
    if (text) return TooLargeFor(content.bytes, content, body.size(), "");
    return TooLargeFor(content.bytes / 4 * 3, content, body.size(),
                       " (a binary body travels base64-encoded)");
  }
  if (content.backend != "chime") return Status::Ok();
  chime::Envelope e;
  e.kind = "send";
  e.op_id = e.message_id = shape.message_id;
  e.author = shape.author;
  e.content_type = shape.content_type;
  e.encoding = body.empty() ? "empty" : text ? "" : "b64";
  e.metadata = shape.metadata;
  const size_t metadata = chime::WriteEnvelope(e, /*with_payload=*/false).size();
  if (metadata <= chime::kMaxMetadataBytes) return Status::Ok();
  return TooLarge("this conversation's messages carry at most " +
                  std::to_string(chime::kMaxMetadataBytes) +
                  " bytes of metadata on Chime, with the message's ids, author and content "
                  "type; this one's is " +
                  std::to_string(metadata) + " bytes. Shorten the message metadata");
}

// A plaintext edit travels as Tidings' JSON envelope in the Content, its
// body a JSON string (or base64): measured exactly as the backend writes it.
Status CheckPlainEdit(const Smallest& content, const engine::Message& target, std::string user,
                      std::string_view body) {
  if (content.bytes == 0) return Status::Ok();
  chime::Envelope e;
  e.kind = "edit";
  e.op_id = kIdShape;
  e.message_id = target.id;
  e.author = std::move(user);
  e.content_type = target.content_type;
  e.body = "x";
  const size_t overhead = chime::WriteEnvelope(e, /*with_payload=*/true).size() - 1;
  if (body.empty()) {
    e.body = " ";
    e.encoding = "empty";
  } else if (chime::IsUtf8(body)) {
    e.body = std::string(body);
  } else {
    e.body = crypto::Base64Encode(body);
    e.encoding = "b64";
  }
  const size_t needs = chime::WriteEnvelope(e, /*with_payload=*/true).size();
  if (needs <= content.bytes) return Status::Ok();
  const size_t limit = content.bytes > overhead ? content.bytes - overhead : 0;
  return TooLargeFor(limit, content, body.size(),
                     " (an edit travels in a JSON envelope: characters JSON escapes and "
                     "binary bodies, base64-encoded, count more)");
}

}  // namespace

BackendLimits LimitsOf(const std::string& name, const sync::Backend& backend) {
  BackendLimits l;
  l.sealed_frame_bytes = backend.max_frame_bytes();
  if (name == "chime") {
    // A backend that does not report its frame size yet still carries frames
    // as base64 in the same Content.
    if (l.sealed_frame_bytes == 0) l.sealed_frame_bytes = kChimeSealedFrameBytes;
    l.plain_content_bytes = chime::kMaxContentBytes;
  }
  return l;
}

Status RecordLimits(engine::SyncLog& store, const std::string& name, const BackendLimits& limits) {
  TIDINGS_ASSIGN_OR_RETURN(std::string text, store.GetSyncState(kLimitsKey));
  std::vector<Recorded> all = ParseLimits(text);
  std::erase_if(all, [&](const Recorded& r) { return r.backend == name; });
  all.push_back({name, limits});
  std::string out;
  for (const auto& r : all) {
    out += r.backend + " " + std::to_string(r.limits.sealed_frame_bytes) + " " +
           std::to_string(r.limits.plain_content_bytes) + "\n";
  }
  if (out == text) return Status::Ok();
  return store.PutSyncState(kLimitsKey, out);
}

Status CheckSend(engine::Store& store, const engine::SendRequest& request) {
  TIDINGS_ASSIGN_OR_RETURN(std::string text, store.sync_log().GetSyncState(kLimitsKey));
  if (text.empty()) return Status::Ok();  // never synced: nothing to check against
  const auto all = ParseLimits(text);
  TIDINGS_ASSIGN_OR_RETURN(bool plain, IsPlaintext(store, request.conversation_id));
  engine::Operation shape;
  shape.kind = engine::OpKind::kSend;
  shape.message_id = request.message_id.empty() ? kIdShape : request.message_id;
  shape.op_id = shape.message_id;
  shape.conversation_id = request.conversation_id;
  shape.author = store.user_id();
  shape.content_type = request.content_type;
  shape.metadata = request.metadata;
  // Each attachment's reference as it will travel: the real name, type and
  // preview; ids, key, sizes and the bucket (S3 names have up to 63
  // characters) at their longest. Checked here, before any upload.
  for (const auto& in : request.attachments) {
    shape.attachments.push_back(
        {.name = in.name,
         .content_type = in.content_type.empty() ? "application/octet-stream" : in.content_type,
         .size = uint64_t{1} << 48,
         .object = std::string(32, 'o'),
         .object_size = uint64_t{1} << 48,
         .content_key = std::string(32, 'k'),
         .location = std::string(63, 'b'),
         .preview = in.preview});
  }
  if (plain && !shape.attachments.empty() &&
      std::any_of(all.begin(), all.end(), [](const Recorded& r) { return r.backend == "chime"; })) {
    return FailedPrecondition(
        "attachments travel through Chime SDK Messaging only in end-to-end encrypted "
        "conversations; this one is plaintext: upgrade it (`tidings conversation upgrade`) or "
        "send the file elsewhere");
  }
  if (plain) {
    return CheckPlainSend(SmallestOf(all, &BackendLimits::plain_content_bytes), shape,
                          request.body);
  }
  const Smallest frame = SmallestOf(all, &BackendLimits::sealed_frame_bytes);
  if (!shape.attachments.empty() && frame.bytes != 0 &&
      e2e::MaxSealedBody(frame.bytes, shape) == 0) {
    return TooLarge(
        "the attachments' references (their names and previews) do not fit in one "
        "message on " +
        OnBackend(frame.backend) + ": send fewer files at once, or smaller previews");
  }
  return CheckSealed(frame, shape, request.body.size());
}

Status CheckEdit(engine::Store& store, const std::string& message_id, std::string_view body) {
  TIDINGS_ASSIGN_OR_RETURN(std::string text, store.sync_log().GetSyncState(kLimitsKey));
  if (text.empty()) return Status::Ok();
  auto target = store.Get(message_id);
  if (!target.ok()) return Status::Ok();  // the edit itself reports it
  const auto all = ParseLimits(text);
  TIDINGS_ASSIGN_OR_RETURN(bool plain, IsPlaintext(store, target->conversation_id));
  if (plain) {
    return CheckPlainEdit(SmallestOf(all, &BackendLimits::plain_content_bytes), *target,
                          store.user_id(), body);
  }
  engine::Operation shape;
  shape.kind = engine::OpKind::kEdit;
  shape.op_id = kIdShape;
  shape.message_id = message_id;
  shape.conversation_id = target->conversation_id;
  shape.author = store.user_id();
  shape.content_type = target->content_type;
  return CheckSealed(SmallestOf(all, &BackendLimits::sealed_frame_bytes), shape, body.size());
}

}  // namespace tidings::capi
