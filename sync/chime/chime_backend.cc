#include "sync/chime/chime_backend.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <set>

#include "common/clock.h"
#include "common/json_string.h"
#include "crypto/hash.h"
#include "sync/aws_protocol/sigv4.h"
#include "sync/chime/chime_json.h"

namespace tidings::chime {
namespace {

constexpr int64_t kListingMaxAgeMs = 30'000;  // refresh for unknown conversations
constexpr size_t kMaxSeen = 256;              // boundary ids kept in the cursor
constexpr size_t kMaxKnown = 4096;            // message id -> Chime id cache
constexpr char kCursorVersion[] = "c1";

std::string Enc(std::string_view s) { return aws::UriEncode(s, /*encode_slash=*/true); }

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

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

// ClientRequestToken: 2-64 of [-_a-zA-Z0-9]. Op ids (UUIDv7 text) already
// are; anything else is hashed, deterministically, so retries agree.
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

// A body as Chime Content: UTF-8 text as is, anything else base64; Content
// may not be empty, so an empty body is a marked single space.
void EncodeBody(const std::string& body, std::string* content, std::string* encoding) {
  if (body.empty()) {
    *content = " ";
    *encoding = "empty";
  } else if (IsUtf8(body)) {
    *content = body;
    encoding->clear();
  } else {
    *content = crypto::Base64Encode(body);
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
  if (encoding == "b64") return crypto::Base64Decode(content, body);
  return false;
}

Status TooLargeContent(const engine::Operation& op, size_t bytes, bool base64) {
  return TooLarge(std::string("Chime SDK Messaging accepts at most 4096 bytes of message content; "
                              "this ") +
                  KindName(op.kind) + " needs " + std::to_string(bytes) + " bytes" +
                  (base64 ? " (binary bodies are base64-encoded, so at most 3072 bytes)" : "") +
                  ": shorten it or send it as an attachment");
}

// ---- cursor: "c1;<high ms>;<id~age,...>;<listing from ms>;<next token>" ----
struct Cursor {
  int64_t high = -1;                    // newest CreatedTimestamp merged, -1 none
  std::map<std::string, int64_t> seen;  // MessageId -> CreatedTimestamp, >= high - overlap
  int64_t listing_from = -1;            // NotBefore of the listing in progress
  std::string token;                    // its NextToken, "" between listings
};

bool ParseI64(std::string_view s, int64_t* out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// A cursor that does not parse starts over from the beginning: slower, never
// wrong (merges are idempotent).
Cursor DecodeCursor(std::string_view s) {
  Cursor c;
  std::vector<std::string_view> parts;
  for (int i = 0; i < 4; ++i) {
    size_t semi = s.find(';');
    if (semi == std::string_view::npos) return Cursor{};
    parts.push_back(s.substr(0, semi));
    s.remove_prefix(semi + 1);
  }
  if (parts[0] != kCursorVersion || !ParseI64(parts[1], &c.high)) return Cursor{};
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
  c.token = std::string(s);
  if (c.token.empty()) c.listing_from = -1;
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
  out += ";" + c.token;
  return out;
}

// Keeps the ids that a listing from high - overlap can return again.
void Prune(Cursor* c) {
  for (auto it = c->seen.begin(); it != c->seen.end();) {
    it = it->second < c->high - kOverlapMs ? c->seen.erase(it) : std::next(it);
  }
  while (c->seen.size() > kMaxSeen) {  // a very busy channel: drop the oldest
    auto oldest =
        std::min_element(c->seen.begin(), c->seen.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    c->seen.erase(oldest);
  }
}

// Channel names: 1-256 printable characters; cut on a UTF-8 boundary.
std::string ChannelName(const engine::Conversation& c) {
  std::string name = c.title.empty() ? c.id : c.title;
  for (char& ch : name) {
    if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') ch = ' ';
  }
  if (name.size() > 256) {
    size_t cut = 256;
    while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
    name.resize(cut);
  }
  if (name.empty() || !IsUtf8(name)) name = c.id;
  return name;
}

}  // namespace

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
  service.content_type = "application/json";
  service.verify_crc32 = false;
  if (!credentials) credentials = aws::DefaultCredentialsChain();
  if (!http) http = http::NewCurlHttpClient();
  auto client =
      std::make_unique<aws::AwsRestClient>(service, std::move(credentials), std::move(http));
  return std::unique_ptr<ChimeBackend>(new ChimeBackend(std::move(config), std::move(client)));
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

Result<std::vector<std::string>> ChimeBackend::ListConversations() {
  std::map<std::string, std::string> found;  // conversation -> channel
  std::string token;
  for (int page = 0; page < 1000; ++page) {
    std::string path = "/channels?scope=app-instance-user-memberships&app-instance-user-arn=" +
                       Enc(config_.user_arn) + "&max-results=50";
    if (!token.empty()) path += "&next-token=" + Enc(token);
    TIDINGS_ASSIGN_OR_RETURN(std::string body, Call("GET", path));
    TIDINGS_ASSIGN_OR_RETURN(ChannelsPage channels, ParseListChannelMemberships(body));
    for (const auto& c : channels.channels) {
      std::string id = ConversationIdFor(c.arn, c.metadata);
      // Two channels claiming one conversation (made by clients that did not
      // use the deterministic ChannelId): every device picks the same one.
      auto it = found.find(id);
      if (it == found.end()) {
        found[id] = c.arn;
      } else if (it->second != DefaultChannelArn(id) &&
                 (c.arn == DefaultChannelArn(id) || c.arn < it->second)) {
        it->second = c.arn;
      }
    }
    token = channels.next_token;
    if (token.empty()) break;
  }
  std::vector<std::string> out;
  for (const auto& [id, arn] : found) {
    channels_[id] = arn;
    out.push_back(id);
  }
  listed_at_ms_ = MonotonicMs();
  return out;
}

Result<std::string> ChimeBackend::ResolveChannel(const std::string& conversation_id,
                                                 bool* guessed) {
  *guessed = false;
  if (auto it = channels_.find(conversation_id); it != channels_.end()) return it->second;
  if (StartsWith(conversation_id, "chime:")) {
    return config_.app_instance_arn + "/channel/" + conversation_id.substr(6);
  }
  if (listed_at_ms_ < 0 || MonotonicMs() - listed_at_ms_ > kListingMaxAgeMs) {
    TIDINGS_RETURN_IF_ERROR(ListConversations().status());
    if (auto it = channels_.find(conversation_id); it != channels_.end()) return it->second;
  }
  *guessed = true;
  return DefaultChannelArn(conversation_id);
}

Status ChimeBackend::AddMember(const std::string& channel_arn, const std::string& member_arn) {
  auto added = Call("POST", "/channels/" + Enc(channel_arn) + "/memberships",
                    "{\"MemberArn\":" + JsonString(member_arn) + ",\"Type\":\"DEFAULT\"}");
  if (added.ok()) return Status::Ok();
  // Already a member (Conflict), or a member Tidings may not add (unknown
  // user, restricted channel): the conversation goes on without them.
  if (sync::Classify(added.status()) == sync::ErrorClass::kPermanent) return Status::Ok();
  return added.status();
}

Result<std::string> ChimeBackend::EnsureConversation(const engine::Conversation& c) {
  if (auto it = channels_.find(c.id); it != channels_.end()) return it->second;
  // The first `joined` of the other members are in the channel already
  // because they joined with it (the creator, or a listed member, already is).
  const std::vector<std::string> members = OtherMemberArns(c);
  size_t joined = 0;
  std::string arn;
  if (StartsWith(c.id, "chime:")) {
    arn = config_.app_instance_arn + "/channel/" + c.id.substr(6);
  } else {
    // Another device (ours or a member's) may have made it already.
    TIDINGS_RETURN_IF_ERROR(ListConversations().status());
    if (auto it = channels_.find(c.id); it != channels_.end()) {
      arn = it->second;
    } else {
      std::string channel_id = DefaultChannelArn(c.id).substr(config_.app_instance_arn.size() + 9);
      std::string body = "{\"AppInstanceArn\":" + JsonString(config_.app_instance_arn) +
                         ",\"Name\":" + JsonString(ChannelName(c)) +
                         ",\"Mode\":\"UNRESTRICTED\",\"Privacy\":\"PRIVATE\",\"Metadata\":" +
                         JsonString(WriteChannelMetadata(c.id)) +
                         ",\"ClientRequestToken\":" + JsonString(channel_id) +
                         ",\"ChannelId\":" + JsonString(channel_id);
      // The first members join with the channel, atomically: a member's
      // device that finds the channel made (Conflict) must already be in it,
      // or its first push would be refused as if it had been removed.
      const size_t with_channel = std::min(members.size(), kMaxCreateMembers);
      if (with_channel > 0) {
        body += ",\"MemberArns\":[";
        for (size_t i = 0; i < with_channel; ++i) {
          body += (i ? "," : "") + JsonString(members[i]);
        }
        body += "]";
      }
      body += "}";
      auto created = Call("POST", "/channels", body);
      if (created.ok()) {
        TIDINGS_ASSIGN_OR_RETURN(arn, ParseStringField(*created, "ChannelArn"));
        joined = with_channel;
      } else if (client_->last_error_type() == "ConflictException") {
        arn = DefaultChannelArn(c.id);  // another device made it first
      } else {
        return created.status();
      }
    }
  }
  // The rest; idempotent (an existing member is a Conflict, ignored).
  for (size_t i = joined; i < members.size(); ++i) {
    TIDINGS_RETURN_IF_ERROR(AddMember(arn, members[i]));
  }
  channels_[c.id] = arn;
  return arn;
}

std::vector<std::string> ChimeBackend::OtherMemberArns(const engine::Conversation& c) const {
  std::set<std::string> others;
  for (const auto& m : c.members) others.insert(MemberArn(m));
  others.erase(config_.user_arn);
  return {others.begin(), others.end()};
}

Status ChimeBackend::AddMembers(const engine::Conversation& c, const std::string& channel_arn) {
  // Idempotent: an existing member is a Conflict, ignored by AddMember.
  for (const auto& member : OtherMemberArns(c)) {
    TIDINGS_RETURN_IF_ERROR(AddMember(channel_arn, member));
  }
  return Status::Ok();
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

Result<sync::PushAck> ChimeBackend::PushOne(const std::string& channel_arn,
                                            const engine::Operation& op) {
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
    if (op.kind == engine::OpKind::kDelete) {
      // The target's order key travels with the delete: the native redaction
      // may strip the target's metadata before another device pulls it.
      Envelope target;
      if (auto it = known_.find(op.message_id);
          it != known_.end() && ParseEnvelope(it->second.envelope, &target)) {
        e.target_hlc = target.hlc;
        e.target_replica = target.replica;
        e.target_content_type = target.content_type;
      }
    }
    e.reaction = op.reaction;
    e.read_hlc = op.read_up_to.hlc;
    e.read_replica = op.read_up_to.replica;
    content = WriteEnvelope(e, /*with_payload=*/true);
    content_type = kOpContentType;
    Envelope header = e;
    header.body.clear();
    metadata = WriteEnvelope(header, /*with_payload=*/false);
  }
  if (content.size() > kMaxContentBytes) {
    return TooLargeContent(op, content.size(), e.encoding == "b64");
  }
  if (metadata.size() > kMaxMetadataBytes) {
    return TooLarge("Chime SDK Messaging accepts at most 1024 bytes of message metadata; this " +
                    std::string(KindName(op.kind)) + " needs " + std::to_string(metadata.size()) +
                    " (ids, author and the message's own metadata): shorten the metadata");
  }
  std::string body =
      "{\"Content\":" + JsonString(content) +
      ",\"Type\":\"STANDARD\",\"Persistence\":\"PERSISTENT\",\"Metadata\":" + JsonString(metadata) +
      ",\"ClientRequestToken\":" + JsonString(Token(op.op_id)) +
      ",\"ContentType\":" + JsonString(content_type) + "}";
  TIDINGS_ASSIGN_OR_RETURN(std::string resp,
                           Call("POST", "/channels/" + Enc(channel_arn) + "/messages", body));
  TIDINGS_ASSIGN_OR_RETURN(std::string message_id, ParseStringField(resp, "MessageId"));
  sync::PushAck ack;
  ack.remote_id = message_id;
  ack.server_time_ms = static_cast<uint64_t>(client_->ServerNowMs());
  if (op.kind == engine::OpKind::kSend) Remember(op.message_id, {message_id, metadata});
  return ack;
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
    // The target's Chime MessageId: known from this process's sends and
    // pulls, or part of the id of another client's message.
    std::string target;
    Known known;
    if (auto it = known_.find(op.message_id); it != known_.end()) {
      known = it->second;
      target = known.chime_message_id;
    } else if (StartsWith(op.message_id, "chime:")) {
      target = op.message_id.substr(6);
    }
    if (target.empty()) {
      ++mirror_failures_;  // unknown here (sent before a restart): op message only
      return;
    }
    const std::string path = channel + "/messages/" + Enc(target);
    if (op.kind == engine::OpKind::kDelete) {
      done = Call("POST", path + "?operation=redact");
    } else {
      std::string content, encoding;
      EncodeBody(op.body, &content, &encoding);
      std::string body = "{\"Content\":" + JsonString(content);
      if (!known.envelope.empty()) {
        // Keep the Tidings envelope (id, order, author): without it a device
        // pulling later would take the message for another client's. Its
        // encoding now describes the new content.
        Envelope e;
        if (!ParseEnvelope(known.envelope, &e)) {
          ++mirror_failures_;
          return;
        }
        e.encoding = encoding;
        if (!op.content_type.empty()) e.content_type = op.content_type;
        std::string metadata = WriteEnvelope(e, false);
        if (metadata.size() > kMaxMetadataBytes) {
          ++mirror_failures_;
          return;
        }
        body += ",\"Metadata\":" + JsonString(metadata);
        Remember(op.message_id, {target, metadata});
      }
      body +=
          ",\"ContentType\":" + JsonString(encoding == "b64" ? kBase64ContentType : "text/plain") +
          "}";
      if (content.size() > kMaxContentBytes) {
        ++mirror_failures_;
        return;
      }
      done = Call("PUT", path, body);
    }
  }
  if (!done.ok()) ++mirror_failures_;
  last_retry_after_ms_.reset();  // the mirror's hints are not the operation's
}

Result<std::vector<sync::PushAck>> ChimeBackend::Push(const std::string& conversation_id,
                                                      std::span<const engine::Operation> ops) {
  bool guessed = false;
  TIDINGS_ASSIGN_OR_RETURN(std::string arn, ResolveChannel(conversation_id, &guessed));
  std::vector<sync::PushAck> acks;
  std::optional<Status> stop;  // a transient or channel-wide failure: the rest waits
  for (size_t i = 0; i < ops.size(); ++i) {
    if (stop) {
      sync::PushAck waiting;
      waiting.status = *stop;
      waiting.retry_after_ms = last_retry_after_ms_;
      acks.push_back(std::move(waiting));
      continue;
    }
    auto ack = PushOne(arn, ops[i]);
    if (ack.ok()) {
      acks.push_back(std::move(*ack));
      Mirror(arn, ops[i]);
      continue;
    }
    const Status& error = ack.status();
    const bool channel_wide = error.code() == Code::kPermissionDenied ||
                              error.code() == Code::kNotFound ||
                              error.code() == Code::kUnauthenticated;
    if (channel_wide && (i == 0 || error.code() == Code::kUnauthenticated)) {
      if (error.code() == Code::kUnauthenticated) return error;
      // Removed from the channel (or it is gone): the reconciler parks the
      // conversation's pending operations with this reason.
      return Status(error.code(),
                    "Chime refused access to the channel of conversation " + conversation_id +
                        " (removed from it, or it was deleted): " + std::string(error.message()));
    }
    sync::PushAck failed;
    if (channel_wide) {
      // Accepted ones stay accepted; the rest is retried and the next
      // attempt's first request gets (and reports) the channel-wide error.
      stop = Unavailable("not sent: Chime refused an earlier operation of this batch (" +
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

Result<sync::PullPage> ChimeBackend::Pull(const std::string& conversation_id,
                                          std::string_view cursor_text, size_t limit) {
  Cursor cursor = DecodeCursor(cursor_text);
  bool guessed = false;
  TIDINGS_ASSIGN_OR_RETURN(std::string arn, ResolveChannel(conversation_id, &guessed));
  sync::PullPage out;
  if (guessed) {
    // Not among the user's channels: nothing to read (yet). Pushing to it
    // reports a removal; a channel made later shows up in the listing.
    out.next_cursor = std::string(cursor_text);
    return out;
  }
  const size_t max_results = std::clamp<size_t>(limit, 1, kPageSize);
  Result<std::string> body = std::string();
  int64_t from = -1;
  for (int attempt = 0; attempt < 2; ++attempt) {
    from = !cursor.token.empty() ? cursor.listing_from
           : cursor.high < 0     ? -1
                                 : std::max<int64_t>(0, cursor.high - kOverlapMs);
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
  if (!body.ok()) {
    if (body.status().code() == Code::kPermissionDenied ||
        body.status().code() == Code::kNotFound) {
      return Status(
          body.status().code(),
          "Chime refused access to the channel of conversation " + conversation_id +
              " (removed from it, or it was deleted): " + std::string(body.status().message()));
    }
    return body.status();
  }
  TIDINGS_ASSIGN_OR_RETURN(MessagesPage page, ParseListChannelMessages(*body));
  const std::string user_prefix = config_.app_instance_arn + "/user/";
  for (const ChimeMessage& m : page.messages) {
    if (cursor.seen.count(m.message_id)) continue;  // already merged (overlap)
    cursor.seen[m.message_id] = m.created_ms;
    cursor.high = std::max(cursor.high, m.created_ms);
    if (m.type == "CONTROL" || m.status == "DENIED" || m.status == "FAILED") continue;

    engine::Operation op;
    op.conversation_id = conversation_id;
    op.server_time_ms = static_cast<uint64_t>(m.created_ms);
    op.remote_id = m.message_id;
    // Who Chime says sent it (it authenticated them), as a member id. The
    // envelope's author is only a claim: a member could write another's name
    // in it and so edit or delete their messages. Chime's sender wins.
    std::string sender = StartsWith(m.sender_arn, user_prefix)
                             ? m.sender_arn.substr(user_prefix.size())
                             : m.sender_arn;
    Envelope e;
    if (m.content_type == kOpContentType) {
      // A Tidings operation. Malformed or unknown ones are skipped (an
      // op's JSON shown as a chat message would help nobody).
      auto kind = ParseEnvelope(m.content, &e) ? KindOf(e.kind) : std::nullopt;
      if (m.redacted || !kind || *kind == engine::OpKind::kSend) continue;
      op.kind = *kind;
      op.op_id = e.op_id;
      op.message_id = e.message_id;
      op.author = sender.empty() ? e.author : sender;
      op.at = {e.hlc, e.replica};
      if (op.kind == engine::OpKind::kEdit && !DecodeBody(e.body, e.encoding, &op.body)) continue;
      if (op.kind == engine::OpKind::kEdit) op.content_type = e.content_type;
      op.reaction = e.reaction;
      op.read_up_to = {e.read_hlc, e.read_replica};
      if (op.kind == engine::OpKind::kDelete && (e.target_hlc != 0 || e.target_replica != 0)) {
        // The target as a placeholder first: ignored where the message
        // exists (inserts are idempotent by id), the tombstone's place where
        // the redaction left nothing to merge.
        engine::Operation target = op;
        target.kind = engine::OpKind::kSend;
        target.op_id = op.message_id;
        target.at = {e.target_hlc, e.target_replica};
        target.content_type = e.target_content_type;
        out.ops.push_back(std::move(target));
      }
      out.ops.push_back(std::move(op));
      continue;
    }
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
      Remember(op.message_id, {m.message_id, m.metadata});
      out.ops.push_back(op);
      if (m.redacted) {
        // Redacted by someone (a Tidings delete's native mirror, or another
        // client): a tombstone, the same on every device that sees it.
        engine::Operation del = op;
        del.kind = engine::OpKind::kDelete;
        del.op_id = "chime-redacted:" + m.message_id;
        del.body.clear();
        del.content_type.clear();
        del.metadata.clear();
        out.ops.push_back(std::move(del));
      }
      continue;
    }
    // Another Chime client's message (or Tidings metadata that does not
    // parse): a plain message ordered by the server's time, identically on
    // every replica.
    if (m.redacted) continue;
    op.kind = engine::OpKind::kSend;
    op.op_id = op.message_id = "chime:" + m.message_id;
    op.author = sender.empty() ? "chime:unknown" : sender;
    op.at = {static_cast<uint64_t>(m.created_ms) << 16, Hash64(m.sender_arn)};
    op.body = m.content;
    op.content_type = m.content_type.empty() ? "text/plain" : m.content_type;
    Remember(op.message_id, {m.message_id, ""});
    out.ops.push_back(std::move(op));
  }
  Prune(&cursor);
  cursor.token = page.next_token;
  cursor.listing_from = cursor.token.empty() ? -1 : from;
  out.has_more = !cursor.token.empty();
  out.next_cursor = EncodeCursor(cursor);
  return out;
}

}  // namespace tidings::chime
