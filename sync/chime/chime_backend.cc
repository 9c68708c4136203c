#include "sync/chime/chime_backend.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <optional>
#include <set>

#include "common/clock.h"
#include "common/json_string.h"
#include "crypto/hash.h"
#include "sync/aws/base64.h"
#include "sync/aws_protocol/sigv4.h"
#include "sync/chime/chime_internal.h"
#include "sync/chime/chime_json.h"

namespace tidings::chime {
namespace {

constexpr size_t kMaxSeen = 256;    // boundary ids kept in the cursor
constexpr size_t kMaxKnown = 4096;  // message id -> Chime id cache
constexpr char kCursorVersion[] = "c2";
constexpr char kHistoryVersion[] = "h1";

using internal::DecodeBody;
using internal::Enc;
using internal::EncodeBody;
using internal::Hash64;
using internal::KindName;
using internal::KindOf;
using internal::StartsWith;
using internal::Token;

// The query-string timestamp format botocore uses for rest-json:
// ISO 8601, microseconds only when there is a fraction.
std::string Iso8601(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (ms % 1000 != 0) {
    char frac[16];
    std::snprintf(frac, sizeof(frac), ".%03d000", static_cast<int>(ms % 1000));
    out += frac;
  }
  return out + "Z";
}

Status TooLargeContent(const engine::Operation& op, size_t bytes, bool base64) {
  return TooLarge(std::string("Chime SDK Messaging accepts at most 4096 bytes of message content; "
                              "this ") +
                  KindName(op.kind) + " needs " + std::to_string(bytes) + " bytes" +
                  (base64 ? " (binary bodies are base64-encoded, so at most 3072 bytes)" : "") +
                  ": shorten it or send it as an attachment");
}

// Redacted messages of unknown origin a listing found: MessageId ->
// CreatedTimestamp and sender ARN.
using Redactions = std::map<std::string, std::pair<int64_t, std::string>>;

// ---- cursor: "c2;<high>;<id~age,...>;<listing from>;<settled>;<listing at>;
//               <redacted id*created*sender,...>;<token>" ----
//
// Chime may make a message visible to ListChannelMessages a little after a
// later one (CreatedTimestamp order is not visibility order), so a listing
// starts kOverlapMs before the point known complete, and ids seen there are
// skipped. That point is measured in the server's time: a listing whose
// first page the server answered at T saw every message created before
// T - kOverlapMs. A caught-up conversation therefore re-reads nothing once
// its newest message is kOverlapMs old (docs/chime.md).
struct Cursor {
  int64_t high = -1;                    // newest CreatedTimestamp merged, -1 none
  std::map<std::string, int64_t> seen;  // MessageId -> CreatedTimestamp, >= the next start
  int64_t listing_from = -1;            // NotBefore of the listing in progress
  int64_t settled = -1;                 // every message created before this was listed
  int64_t listing_at = -1;              // server time of the listing's first page, -1 unknown
  // Redacted messages of unknown origin this listing found (MessageId ->
  // CreatedTimestamp and sender ARN): tombstones once the listing caught up,
  // unless a Tidings delete operation in it claimed them (see Pull).
  Redactions redacted;
  std::string token;  // its NextToken, "" between listings
};

bool ParseI64(std::string_view s, int64_t* out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned v = 0;
    if (s[i] == '%' && i + 2 < s.size() + 0 &&
        std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ptr == s.data() + i + 3) {
      out.push_back(static_cast<char>(v));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool DecodeRedacted(std::string_view s,
                    std::map<std::string, std::pair<int64_t, std::string>>* out) {
  while (!s.empty()) {
    size_t comma = s.find(',');
    std::string_view one = s.substr(0, comma);
    size_t a = one.find('*'), b = one.rfind('*');
    int64_t created = 0;
    if (a == std::string_view::npos || a == b ||
        !ParseI64(one.substr(a + 1, b - a - 1), &created)) {
      return false;
    }
    (*out)[Unescape(one.substr(0, a))] = {created, Unescape(one.substr(b + 1))};
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return true;
}

// A redacted message whose Metadata is gone (Chime strips it): another
// client's, or a Tidings message deleted natively - which the Tidings delete
// operation that follows it in the channel claims.
bool UnknownRedaction(const ChimeMessage& m) {
  Envelope e;
  return m.redacted && m.content_type != kOpContentType && m.type != "CONTROL" &&
         !(ParseEnvelope(m.metadata, &e) && e.kind == "send");
}

// A redaction of unknown origin waits in `held` (true); a Tidings delete
// operation claims its own message's redaction from it.
bool HoldRedaction(const ChimeMessage& m, Redactions* held) {
  if (UnknownRedaction(m)) {
    (*held)[m.message_id] = {m.created_ms, m.sender_arn};
    return true;
  }
  Envelope e;
  if (m.content_type == kOpContentType && internal::ParseOpMessage(m, &e) &&
      !e.target_chime_id.empty()) {
    held->erase(e.target_chime_id);
  }
  return false;
}

// The held redactions no delete claimed, as tombstones.
void AppendTombstones(Redactions* held, std::vector<ChimeMessage>* out) {
  for (auto& [id, r] : *held) {
    ChimeMessage m;
    m.message_id = id;
    m.created_ms = r.first;
    m.sender_arn = std::move(r.second);
    m.redacted = true;
    out->push_back(std::move(m));
  }
  held->clear();
}

// Where the next listing starts: kOverlapMs before the point known complete
// (-1: from the beginning).
int64_t NextListingStart(const Cursor& c) { return c.settled < 0 ? -1 : c.settled; }

// A cursor that does not parse starts over from the beginning: slower, never
// wrong (merges are idempotent). A "c1" cursor (the overlap measured from the
// newest message) resumes from high - kOverlapMs.
Cursor DecodeCursor(std::string_view s) {
  Cursor c;
  const bool v1 = StartsWith(s, "c1;");
  std::vector<std::string_view> parts;
  for (int i = 0; i < (v1 ? 4 : 7); ++i) {
    size_t semi = s.find(';');
    if (semi == std::string_view::npos) return Cursor{};
    parts.push_back(s.substr(0, semi));
    s.remove_prefix(semi + 1);
  }
  if ((!v1 && parts[0] != kCursorVersion) || !ParseI64(parts[1], &c.high)) return Cursor{};
  std::string_view ids = parts[2];
  while (!ids.empty()) {
    size_t comma = ids.find(',');
    std::string_view one = ids.substr(0, comma);
    size_t tilde = one.find('~');
    int64_t age = 0;
    if (tilde == std::string_view::npos || !ParseI64(one.substr(tilde + 1), &age)) return Cursor{};
    c.seen[std::string(one.substr(0, tilde))] = c.high - age;
    if (comma == std::string_view::npos) break;
    ids.remove_prefix(comma + 1);
  }
  if (!parts[3].empty() && !ParseI64(parts[3], &c.listing_from)) return Cursor{};
  if (v1) {
    c.settled = c.high < 0 ? -1 : std::max<int64_t>(0, c.high - kOverlapMs);
  } else if (!ParseI64(parts[4], &c.settled) || !ParseI64(parts[5], &c.listing_at) ||
             !DecodeRedacted(parts[6], &c.redacted)) {
    return Cursor{};
  }
  c.token = std::string(s);
  if (c.token.empty()) c.listing_from = c.listing_at = -1;
  return c;
}

std::string EncodeCursor(const Cursor& c) {
  std::string out = std::string(kCursorVersion) + ";" + std::to_string(c.high) + ";";
  bool first = true;
  for (const auto& [id, created] : c.seen) {
    if (!first) out += ",";
    first = false;
    out += id + "~" + std::to_string(c.high - created);
  }
  out += ";";
  if (!c.token.empty()) out += std::to_string(c.listing_from);
  out +=
      ";" + std::to_string(c.settled) + ";" + std::to_string(c.token.empty() ? -1 : c.listing_at);
  out += ";";
  first = true;
  for (const auto& [id, r] : c.redacted) {
    out += (first ? "" : ",") + Enc(id) + "*" + std::to_string(r.first) + "*" + Enc(r.second);
    first = false;
  }
  out += ";" + c.token;
  return out;
}

// A listing reached its last page: everything created before its first
// page's time minus the overlap was listed. Without a server time (no Date
// header) the overlap is measured back from the newest message instead.
void Settle(Cursor* c) {
  int64_t complete = c->listing_at >= 0 ? c->listing_at - kOverlapMs
                     : c->high >= 0     ? c->high - kOverlapMs
                                        : -1;
  c->settled = std::max(c->settled, complete);
}

// Keeps the ids that the next listing can return again.
void Prune(Cursor* c) {
  const int64_t from = c->token.empty() ? NextListingStart(*c) : c->listing_from;
  for (auto it = c->seen.begin(); it != c->seen.end();) {
    it = it->second < from ? c->seen.erase(it) : std::next(it);
  }
  while (c->seen.size() > kMaxSeen) {  // a very busy channel: drop the oldest
    auto oldest =
        std::min_element(c->seen.begin(), c->seen.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    c->seen.erase(oldest);
  }
}

// ---- history position: "h1;<oldest>;<id,...>;<listing not-after>;<token>" ----
//
// Where a newest-first listing stopped: the oldest CreatedTimestamp it
// returned and the ids created then, the NotAfter the listing was made with
// (-1: none, the newest page's own listing) and its NextToken. A token the
// server refuses starts the listing again at NotAfter = that oldest time,
// which Chime includes, so the ids created then are skipped.
struct HistoryPosition {
  int64_t oldest = -1;
  std::set<std::string> at_oldest;
  int64_t listing_not_after = -1;
  std::string token;
};

std::optional<HistoryPosition> DecodeHistory(std::string_view s) {
  std::vector<std::string_view> parts;
  for (int i = 0; i < 4; ++i) {
    size_t semi = s.find(';');
    if (semi == std::string_view::npos) return std::nullopt;
    parts.push_back(s.substr(0, semi));
    s.remove_prefix(semi + 1);
  }
  HistoryPosition p;
  if (parts[0] != kHistoryVersion || !ParseI64(parts[1], &p.oldest) ||
      !ParseI64(parts[3], &p.listing_not_after) || (s.empty() && p.listing_not_after < 0)) {
    return std::nullopt;  // a token, or a time to list from
  }
  for (std::string_view ids = parts[2]; !ids.empty();) {
    size_t comma = ids.find(',');
    p.at_oldest.insert(std::string(ids.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    ids.remove_prefix(comma + 1);
  }
  p.token = std::string(s);
  return p;
}

std::string EncodeHistory(const HistoryPosition& p) {
  std::string out = std::string(kHistoryVersion) + ";" + std::to_string(p.oldest) + ";";
  bool first = true;
  for (const std::string& id : p.at_oldest) {
    out += (first ? "" : ",") + id;
    first = false;
  }
  return out + ";" + std::to_string(p.listing_not_after) + ";" + p.token;
}

}  // namespace

namespace internal {

std::string Token(std::string_view id) {
  bool ok = id.size() >= 2 && id.size() <= 64;
  for (char c : id) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
  }
  if (ok) return std::string(id);
  return "t" + crypto::Sha256Hex(id).substr(0, 40);
}

uint64_t Hash64(std::string_view s) {
  auto d = crypto::Sha256(s);
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | d[i];
  return v;
}

const char* KindName(engine::OpKind k) {
  switch (k) {
    case engine::OpKind::kSend:
      return "send";
    case engine::OpKind::kEdit:
      return "edit";
    case engine::OpKind::kDelete:
      return "delete";
    case engine::OpKind::kReact:
      return "react";
    case engine::OpKind::kUnreact:
      return "unreact";
    case engine::OpKind::kReadMarker:
      return "read";
  }
  return "";
}

std::optional<engine::OpKind> KindOf(std::string_view k) {
  if (k == "send") return engine::OpKind::kSend;
  if (k == "edit") return engine::OpKind::kEdit;
  if (k == "delete") return engine::OpKind::kDelete;
  if (k == "react") return engine::OpKind::kReact;
  if (k == "unreact") return engine::OpKind::kUnreact;
  if (k == "read") return engine::OpKind::kReadMarker;
  return std::nullopt;
}

void EncodeBody(const std::string& body, std::string* content, std::string* encoding) {
  if (body.empty()) {
    *content = " ";
    *encoding = "empty";
  } else if (IsUtf8(body)) {
    *content = body;
    encoding->clear();
  } else {
    *content = aws::Base64Encode(body);
    *encoding = "b64";
  }
}

bool DecodeBody(const std::string& content, const std::string& encoding, std::string* body) {
  if (encoding.empty()) {
    *body = content;
    return true;
  }
  if (encoding == "empty") {
    body->clear();
    return true;
  }
  if (encoding == "b64") return aws::Base64Decode(content, body);
  return false;
}

}  // namespace internal

Result<std::unique_ptr<ChimeBackend>> ChimeBackend::Create(
    ChimeConfig config, std::shared_ptr<aws::CredentialsProvider> credentials,
    std::unique_ptr<http::HttpClient> http) {
  if (!StartsWith(config.app_instance_arn, "arn:") ||
      config.app_instance_arn.find(":app-instance/") == std::string::npos) {
    return InvalidArgument(
        "Chime needs the AppInstance ARN (arn:aws:chime:<region>:<account>:app-instance/<id>); "
        "got '" +
        config.app_instance_arn.substr(0, 200) + "'");
  }
  if (!StartsWith(config.user_arn, "arn:")) {
    return InvalidArgument(
        "Chime needs the user's AppInstanceUser ARN (the x-amz-chime-bearer every call is made "
        "as); got '" +
        config.user_arn.substr(0, 200) + "'");
  }
  while (!config.app_instance_arn.empty() && config.app_instance_arn.back() == '/') {
    config.app_instance_arn.pop_back();
  }
  aws::ServiceConfig service;
  service.signing_name = "chime";
  service.region = aws::ResolveRegion(config.region);
  service.endpoint = aws::ResolveEndpoint(config.endpoint, "CHIME_SDK_MESSAGING", "messaging-chime",
                                          service.region);
  TIDINGS_RETURN_IF_ERROR(aws::CheckEndpoint(service.endpoint));
  service.content_type = "application/json";
  service.verify_crc32 = false;
  service.wall_clock_ms = config.wall_clock_ms;
  if (!credentials) credentials = aws::DefaultCredentialsChain();
  if (!http) http = http::NewCurlHttpClient();
  MessagingSessionConfig realtime = internal::RealtimeConfigFor(config, service, credentials);
  auto client =
      std::make_unique<aws::AwsRestClient>(service, std::move(credentials), std::move(http));
  auto backend =
      std::unique_ptr<ChimeBackend>(new ChimeBackend(std::move(config), std::move(client)));
  backend->realtime_config_ = std::move(realtime);
  return backend;
}

ChimeBackend::ChimeBackend(ChimeConfig config, std::unique_ptr<aws::AwsRestClient> client)
    : config_(std::move(config)), client_(std::move(client)) {}

std::string ChimeBackend::DefaultChannelArn(const std::string& conversation_id) const {
  return config_.app_instance_arn + "/channel/tidings-" +
         crypto::Sha256Hex(conversation_id).substr(0, 40);
}

std::string ChimeBackend::MemberArn(const std::string& member) const {
  if (StartsWith(member, "arn:")) return member;
  return config_.app_instance_arn + "/user/" + member;
}

std::optional<std::string> ChimeBackend::ChannelIdOf(const std::string& arn) const {
  size_t at = arn.rfind("/channel/");
  if (at == std::string::npos || at + 9 >= arn.size()) return std::nullopt;
  return arn.substr(at + 9);
}

std::string ChimeBackend::ConversationIdFor(const std::string& arn,
                                            const std::string& metadata) const {
  if (auto id = ParseChannelMetadata(metadata)) return *id;
  if (auto channel = ChannelIdOf(arn)) return "chime:" + *channel;
  return "chime:" + crypto::Sha256Hex(arn).substr(0, 40);
}

Result<std::string> ChimeBackend::Call(std::string_view method, const std::string& path,
                                       const std::string& body) {
  auto result = client_->Call(method, path, {{"x-amz-chime-bearer", config_.user_arn}}, body);
  last_retry_after_ms_ = result.ok() ? std::nullopt : client_->last_retry_after_ms();
  return result;
}

void ChimeBackend::Remember(const std::string& message_id, Known known) {
  auto [it, inserted] = known_.insert_or_assign(message_id, std::move(known));
  if (!inserted) return;
  known_order_.push_back(message_id);
  while (known_order_.size() > kMaxKnown) {
    known_.erase(known_order_.front());
    known_order_.pop_front();
  }
}

void ChimeBackend::AddDeleteTarget(const std::string& channel_arn, const engine::Operation& op,
                                   Envelope* e) {
  // The target's order key travels with the delete: the native redaction
  // may strip the target's metadata before another device pulls it. And its
  // Chime MessageId and time, so a device listing the redacted message knows
  // it for this delete's (ListNewMessages).
  auto known = TargetOf(channel_arn, op, /*need_created=*/true);
  if (!known) return;
  Envelope target;
  if (ParseEnvelope(known->envelope, &target)) {
    e->target_hlc = target.hlc;
    e->target_replica = target.replica;
    e->target_content_type = target.content_type;
  }
  if (known->created_ms > 0) {
    e->target_chime_id = known->chime_message_id;
    e->target_created_ms = known->created_ms;
  }
}

Result<sync::PushAck> ChimeBackend::PushOne(const std::string& channel_arn,
                                            const engine::Operation& op) {
  // A plaintext Chime message has no room for attachment references (and
  // would show their content keys to Chime): they travel sealed.
  if (!op.attachments.empty()) {
    return FailedPrecondition(
        "attachments travel through Chime SDK Messaging only in end-to-end encrypted "
        "conversations; turn end-to-end encryption on for this conversation");
  }
  Envelope e;
  e.kind = KindName(op.kind);
  e.op_id = op.op_id;
  e.message_id = op.message_id;
  e.author = op.author;
  e.hlc = op.at.hlc;
  e.replica = op.at.replica;
  e.content_type = op.content_type;
  for (const auto& [k, v] : op.metadata) {
    if (!IsUtf8(k) || !IsUtf8(v)) {
      return InvalidArgument(
          "message metadata must be UTF-8 text to travel through Chime SDK Messaging");
    }
  }
  if (!IsUtf8(op.author) || !IsUtf8(op.message_id) || !IsUtf8(op.reaction)) {
    return InvalidArgument("ids and reactions must be UTF-8 text for Chime SDK Messaging");
  }
  std::string content, content_type, metadata;
  if (op.kind == engine::OpKind::kSend) {
    e.metadata = op.metadata;
    EncodeBody(op.body, &content, &e.encoding);
    content_type = e.encoding == "b64"                                      ? kBase64ContentType
                   : op.content_type.empty() || op.content_type.size() > 45 ? "text/plain"
                                                                            : op.content_type;
    metadata = WriteEnvelope(e, /*with_payload=*/false);
  } else {
    if (op.kind == engine::OpKind::kEdit) {
      std::string encoding;
      EncodeBody(op.body, &e.body, &encoding);
      e.encoding = encoding;
    }
    if (op.kind == engine::OpKind::kDelete) AddDeleteTarget(channel_arn, op, &e);
    e.reaction = op.reaction;
    e.read_hlc = op.read_up_to.hlc;
    e.read_replica = op.read_up_to.replica;
    content_type = kOpContentType;
    // What other clients show is a line of text, not JSON: the operation
    // rides in Metadata (an edit's new body in Content, after
    // kEditPrefix). When that does not fit, the whole operation is the
    // Content, as JSON, and Metadata its header.
    Envelope header = e;
    header.body.clear();
    metadata = WriteEnvelope(header, /*with_payload=*/true);
    content = internal::OpText(op.kind, e.reaction, e.body);
    if (metadata.size() > kMaxMetadataBytes || content.size() > kMaxContentBytes) {
      content = WriteEnvelope(e, /*with_payload=*/true);
      metadata = WriteEnvelope(header, /*with_payload=*/false);
    }
  }
  if (content.size() > kMaxContentBytes) {
    return TooLargeContent(op, content.size(), e.encoding == "b64");
  }
  if (metadata.size() > kMaxMetadataBytes) {
    return TooLarge("Chime SDK Messaging accepts at most 1024 bytes of message metadata; this " +
                    std::string(KindName(op.kind)) + " needs " + std::to_string(metadata.size()) +
                    " (ids, author and the message's own metadata): shorten the metadata");
  }
  TIDINGS_ASSIGN_OR_RETURN(sync::PushAck ack,
                           SendMessage(channel_arn, content, metadata, content_type, op.op_id));
  if (op.kind == engine::OpKind::kSend) Remember(op.message_id, {ack.remote_id, metadata, 0});
  return ack;
}

Result<sync::PushAck> ChimeBackend::SendMessage(const std::string& channel_arn,
                                                const std::string& content,
                                                const std::string& metadata,
                                                const std::string& content_type,
                                                std::string_view token_of) {
  std::string body =
      "{\"Content\":" + JsonString(content) +
      ",\"Type\":\"STANDARD\",\"Persistence\":\"PERSISTENT\",\"Metadata\":" + JsonString(metadata) +
      ",\"ClientRequestToken\":" + JsonString(Token(token_of)) +
      ",\"ContentType\":" + JsonString(content_type) + "}";
  TIDINGS_ASSIGN_OR_RETURN(std::string resp,
                           Call("POST", "/channels/" + Enc(channel_arn) + "/messages", body));
  sync::PushAck ack;
  TIDINGS_ASSIGN_OR_RETURN(ack.remote_id, ParseStringField(resp, "MessageId"));
  ack.server_time_ms = static_cast<uint64_t>(client_->ServerNowMs());
  return ack;
}

Result<std::vector<sync::PushAck>> ChimeBackend::PushEach(
    size_t n, const std::function<Result<sync::PushAck>(size_t)>& push_one,
    const std::function<Status(const Status&)>& refused) {
  std::vector<sync::PushAck> acks;
  std::optional<Status> stop;  // a transient or channel-wide failure: the rest waits
  for (size_t i = 0; i < n; ++i) {
    if (stop) {
      sync::PushAck waiting;
      waiting.status = *stop;
      waiting.retry_after_ms = last_retry_after_ms_;
      acks.push_back(std::move(waiting));
      continue;
    }
    auto ack = push_one(i);
    if (ack.ok()) {
      acks.push_back(std::move(*ack));
      continue;
    }
    const Status& error = ack.status();
    const bool channel_wide = error.code() == Code::kPermissionDenied ||
                              error.code() == Code::kNotFound ||
                              error.code() == Code::kUnauthenticated;
    if (channel_wide && (i == 0 || error.code() == Code::kUnauthenticated)) {
      if (error.code() == Code::kUnauthenticated) return error;
      // Removed from the channel (or it is gone): the reconciler parks the
      // conversation's pending items with this reason.
      return refused(error);
    }
    sync::PushAck failed;
    if (channel_wide) {
      // Accepted ones stay accepted; the rest is retried and the next
      // attempt's first request gets (and reports) the channel-wide error.
      stop = Unavailable("not sent: Chime refused an earlier item of this batch (" +
                         std::string(error.message()) + ")");
      failed.status = *stop;
    } else {
      failed.status = error;
      failed.retry_after_ms = last_retry_after_ms_;
      if (sync::Classify(error) == sync::ErrorClass::kTransient) stop = error;
    }
    acks.push_back(std::move(failed));
  }
  return acks;
}

Result<std::vector<sync::PushAck>> ChimeBackend::Push(const std::string& conversation_id,
                                                      std::span<const engine::Operation> ops) {
  if (auto it = refused_.find(conversation_id); it != refused_.end()) return it->second;
  bool guessed = false;
  TIDINGS_ASSIGN_OR_RETURN(std::string arn, ResolveChannel(conversation_id, &guessed));
  auto refused = [&](const Status& error) { return ChannelRefused(conversation_id, error); };
  // Nothing goes into a channel made or joined by someone outside the
  // conversation.
  if (Status verified = VerifyChannel(conversation_id, arn); !verified.ok()) {
    return refused(verified);
  }
  return PushEach(
      ops.size(),
      [&](size_t i) -> Result<sync::PushAck> {
        auto ack = PushOne(arn, ops[i]);
        if (ack.ok()) Mirror(arn, ops[i]);
        return ack;
      },
      refused);
}

Result<ChimeBackend::NewMessages> ChimeBackend::ListNewMessages(const std::string& arn,
                                                                std::string_view cursor_text,
                                                                size_t limit) {
  Cursor cursor = DecodeCursor(cursor_text);
  const size_t max_results = std::clamp<size_t>(limit, 1, kPageSize);
  Result<std::string> body = std::string();
  int64_t from = -1;
  for (int attempt = 0; attempt < 2; ++attempt) {
    from = !cursor.token.empty() ? cursor.listing_from : NextListingStart(cursor);
    std::string path = "/channels/" + Enc(arn) +
                       "/messages?sort-order=ASCENDING&max-results=" + std::to_string(max_results);
    if (from >= 0) path += "&not-before=" + Enc(Iso8601(from));
    if (!cursor.token.empty()) path += "&next-token=" + Enc(cursor.token);
    body = Call("GET", path);
    // A NextToken the server no longer accepts (expired, server restarted):
    // start the listing again from the cursor's time; dedupe absorbs it.
    if (!body.ok() && body.status().code() == Code::kInvalidArgument && !cursor.token.empty()) {
      cursor.token.clear();
      continue;
    }
    break;
  }
  if (!body.ok()) return body.status();
  if (cursor.token.empty()) {
    // The first page of a listing: when the server answered it (the Date
    // header has whole seconds, so a second earlier to be safe).
    const int64_t date = client_->last_response_date_ms();
    cursor.listing_at = date > 0 ? date - 1000 : -1;
  }
  TIDINGS_ASSIGN_OR_RETURN(MessagesPage page, ParseListChannelMessages(*body));
  messages_listed_ += page.messages.size();
  NewMessages out;
  for (ChimeMessage& m : page.messages) {
    if (cursor.seen.count(m.message_id)) continue;  // already returned (overlap)
    cursor.seen[m.message_id] = m.created_ms;
    cursor.high = std::max(cursor.high, m.created_ms);
    if (HoldRedaction(m, &cursor.redacted)) continue;
    out.messages.push_back(std::move(m));
  }
  cursor.token = page.next_token;
  cursor.listing_from = cursor.token.empty() ? -1 : from;
  if (cursor.token.empty()) {
    Settle(&cursor);
    // Caught up: the redactions no Tidings delete claimed are tombstones.
    AppendTombstones(&cursor.redacted, &out.messages);
  }
  Prune(&cursor);
  out.has_more = !cursor.token.empty();
  out.next_cursor = EncodeCursor(cursor);
  return out;
}

Status ChimeBackend::ChannelRefused(const std::string& conversation_id, const Status& error) const {
  const bool unreadable =
      error.code() == Code::kPermissionDenied || error.code() == Code::kNotFound;
  // A refusal for squatting says so itself.
  if (!unreadable || refused_.count(conversation_id)) return error;
  return Status(error.code(),
                "Chime refused access to the channel of conversation " + conversation_id +
                    " (removed from it, or it was deleted): " + std::string(error.message()));
}

Result<std::string> ChimeBackend::ReadableChannel(const std::string& conversation_id,
                                                  bool* guessed) {
  if (auto it = refused_.find(conversation_id); it != refused_.end()) return it->second;
  TIDINGS_ASSIGN_OR_RETURN(std::string arn, ResolveChannel(conversation_id, guessed));
  if (*guessed) return arn;
  if (Status verified = VerifyChannel(conversation_id, arn); !verified.ok()) {
    return ChannelRefused(conversation_id, verified);
  }
  return arn;
}

Result<sync::PullPage> ChimeBackend::Pull(const std::string& conversation_id,
                                          std::string_view cursor, size_t limit) {
  bool guessed = false;
  TIDINGS_ASSIGN_OR_RETURN(std::string arn, ReadableChannel(conversation_id, &guessed));
  sync::PullPage out;
  if (guessed) {
    // Not among the user's channels: nothing to read (yet). Pushing to it
    // reports a removal; a channel made later shows up in the listing.
    out.next_cursor = std::string(cursor);
    return out;
  }
  auto listed = ListNewMessages(arn, cursor, limit);
  if (!listed.ok()) return ChannelRefused(conversation_id, listed.status());
  TakeMessages(conversation_id, listed->messages, &out.ops, &out.skipped);
  out.next_cursor = std::move(listed->next_cursor);
  out.has_more = listed->has_more;
  TIDINGS_RETURN_IF_ERROR(AppendChangesBehind(conversation_id, arn, &out));
  return out;
}

void ChimeBackend::TakeMessages(const std::string& conversation_id,
                                const std::vector<ChimeMessage>& messages,
                                std::vector<engine::Operation>* ops, uint64_t* skipped) {
  // Where this device knows the members, only their messages count.
  auto allowed = allowed_.find(conversation_id);
  for (const ChimeMessage& m : messages) {
    if (m.type == "CONTROL" || m.status == "DENIED" || m.status == "FAILED") continue;
    if (allowed != allowed_.end() && !allowed->second.count(m.sender_arn)) {
      ++*skipped;
      continue;
    }
    if (!AppendOperations(conversation_id, m, ops)) ++*skipped;
  }
}

Result<sync::HistoryPage> ChimeBackend::PullHistory(const std::string& conversation_id,
                                                    std::string_view before, size_t limit) {
  bool guessed = false;
  TIDINGS_ASSIGN_OR_RETURN(std::string arn, ReadableChannel(conversation_id, &guessed));
  sync::HistoryPage out;
  if (guessed) {
    // Not among the user's channels: no newest page yet (the reconciler asks
    // again), and older history waits until the channel is listed again.
    if (before.empty()) return out;
    return Unavailable("the Chime channel of conversation " + conversation_id +
                       " is not among this user's channels; its older history is read once it is");
  }
  auto listed = ListOlderMessages(arn, before, limit);
  if (!listed.ok()) return ChannelRefused(conversation_id, listed.status());
  TakeMessages(conversation_id, listed->messages, &out.ops, &out.skipped);
  out.before = std::move(listed->before);
  out.forward_cursor = std::move(listed->forward_cursor);
  return out;
}

Result<ChimeBackend::OlderMessages> ChimeBackend::ListOlderMessages(const std::string& arn,
                                                                    std::string_view before_text,
                                                                    size_t limit, bool split) {
  const bool newest = before_text.empty();
  HistoryPosition at;
  if (!newest) {
    auto decoded = DecodeHistory(before_text);
    if (!decoded) {
      return InvalidArgument("Chime history position does not parse; start from the newest page");
    }
    at = std::move(*decoded);
  }
  const size_t max_results = std::clamp<size_t>(limit, 1, kPageSize);
  Result<std::string> body = std::string();
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string path = "/channels/" + Enc(arn) +
                       "/messages?sort-order=DESCENDING&max-results=" + std::to_string(max_results);
    if (at.listing_not_after >= 0) path += "&not-after=" + Enc(Iso8601(at.listing_not_after));
    if (!at.token.empty()) path += "&next-token=" + Enc(at.token);
    body = Call("GET", path);
    // A NextToken the server no longer accepts (expired, server restarted):
    // list again from the oldest time already returned, skipping its ids.
    if (!body.ok() && body.status().code() == Code::kInvalidArgument && !at.token.empty()) {
      at.token.clear();
      at.listing_not_after = at.oldest;
      continue;
    }
    break;
  }
  if (!body.ok()) return body.status();
  const int64_t date = client_->last_response_date_ms();
  TIDINGS_ASSIGN_OR_RETURN(MessagesPage page, ParseListChannelMessages(*body));
  messages_listed_ += page.messages.size();

  OlderMessages out;
  HistoryPosition next = at;
  next.token = page.next_token;
  Cursor forward;  // the newest page's: continues after its newest message
  // Oldest first, as a forward listing reads them, so that a Tidings delete
  // claims the redaction of its message before it on the same page. (A
  // delete on a newer page cannot: that redaction becomes a tombstone, which
  // deletes the same message.)
  Redactions redacted;
  for (auto it = page.messages.rbegin(); it != page.messages.rend(); ++it) {
    ChimeMessage& m = *it;
    if (at.at_oldest.count(m.message_id)) continue;  // the page before returned it
    if (next.oldest < 0 || m.created_ms < next.oldest) {
      next.oldest = m.created_ms;
      next.at_oldest.clear();
    }
    if (m.created_ms == next.oldest) next.at_oldest.insert(m.message_id);
    forward.seen[m.message_id] = m.created_ms;
    forward.high = std::max(forward.high, m.created_ms);
    if (HoldRedaction(m, &redacted)) continue;
    out.messages.push_back(std::move(m));
  }
  AppendTombstones(&redacted, &out.messages);
  if (split && newest && !page.messages.empty()) {
    // The newest page splits the channel at B: its listing saw every
    // message created before its server time minus the overlap, and every
    // one from its oldest on; B is the earlier of the two. Forward listings
    // start at B (a message made visible late after it is still found) and
    // skip the ids of this page, all at or after B; older pages are a new
    // listing of what was created before B. So the two never list the same
    // message, whatever their timing.
    forward.listing_at = date > 0 ? date - 1000 : -1;
    Settle(&forward);
    forward.settled = std::min(forward.settled, next.oldest);
    Prune(&forward);
    out.forward_cursor = EncodeCursor(forward);
    // Without a NextToken the page holds the whole channel: no older page.
    if (!page.next_token.empty() && forward.settled > 0) {
      out.before = EncodeHistory({.oldest = forward.settled - 1,
                                  .at_oldest = {},
                                  .listing_not_after = forward.settled - 1,
                                  .token = ""});
    }
  } else if (!page.next_token.empty()) {
    out.before = EncodeHistory(next);
  }
  return out;
}

}  // namespace tidings::chime
