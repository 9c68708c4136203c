// The channel/message model of tidings-chime-local: pure logic, no HTTP, no
// I/O. A Call is one operation with its inputs as text (path, header, query
// and body fields under their botocore member names); Handle validates it
// against the model's limits, applies it and returns the response body.
// Mutations also carry the server-assigned "_at" (ms) and "_id", so the
// journal can replay exactly what was acknowledged.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace chime_local {

struct Call {
  std::string op;                        // botocore operation name
  std::map<std::string, std::string> f;  // lists (MemberArns) joined by '\n'

  const std::string& Get(const std::string& key) const;
  bool Has(const std::string& key) const { return f.count(key) != 0; }
};

// What the messaging WebSocket tells channel members about a change
// (realtime.h frames and fans it out).
struct Event {
  std::string type;          // x-amz-chime-event-type: CREATE_CHANNEL_MESSAGE, ...
  std::string message_type;  // x-amz-chime-message-type: STANDARD, CONTROL, SYSTEM
  std::string channel_arn;
  std::string payload;                  // the JSON object (ChannelMessage, Channel, ...)
  std::vector<std::string> recipients;  // AppInstanceUser ARNs
};

struct Reply {
  int status = 200;
  std::string body;      // JSON, empty for 204
  bool mutated = false;  // state changed: journal it before answering
  std::vector<Event> events;
};

// Errors: InvalidArgument -> 400 BadRequestException, PermissionDenied ->
// 403 ForbiddenException, NotFound -> 404, AlreadyExists -> 409 Conflict.
class State {
 public:
  tidings::Result<Reply> Handle(const Call& call);
  // True if a channel's expiration settings say it is gone at `now_ms`; the
  // server then applies the call {"_ExpireChannels", _at = now_ms}, which
  // deletes every such channel.
  bool AnyExpired(int64_t now_ms) const;

  static bool IsMutation(std::string_view op);
  // One journal record per line (JSON object), and back.
  static std::string Encode(const Call& call);
  static tidings::Result<Call> Decode(std::string_view line);
  // "2023-11-14T22:13:20.123Z" (also without fraction, or "+00:00") -> ms.
  static bool ParseIso8601(std::string_view text, int64_t* ms);
  // ms -> "2023-11-14T22:13:20.123Z" (the WebSocket payloads' timestamps).
  static std::string Iso8601(int64_t ms);

 private:
  struct Member {
    std::string type = "DEFAULT";
    bool moderator = false;
    int64_t created_ms = 0, read_ms = -1;
  };
  struct Message {
    std::string id, content, metadata, content_type, type, persistence, sender;
    int64_t created_ms = 0, updated_ms = 0, edited_ms = -1;
    bool redacted = false, deleted = false;
  };
  struct Channel {
    std::string arn, name, mode, privacy, metadata, created_by;
    int64_t created_ms = 0, updated_ms = 0, last_message_ms = -1;
    int64_t last_at = 0;               // server time is strictly increasing per channel
    int64_t expiration_days = 0;       // 0: never expires
    std::string expiration_criterion;  // CREATED_TIMESTAMP, LAST_MESSAGE_TIMESTAMP
    std::map<std::string, Member> members;
    std::vector<Message> messages;  // ascending created_ms
    std::unordered_map<std::string, size_t> by_id;
    std::map<std::string, std::string> tokens;  // sender '\n' token -> id
  };

  tidings::Result<Channel*> Find(const Call& call, bool member_only = true);
  tidings::Result<Message*> FindMessage(Channel& c, const Call& call);
  static int64_t Tick(Channel& c, const Call& call);
  static std::string Summary(const Channel& c);
  static std::string MessageJson(const Channel& c, const Message& m, bool full);
  static Event MessageEvent(const Channel& c, const Message& m, const std::string& type);
  static Event ChannelEvent(const Channel& c, const std::string& type);
  static Event MembershipEvent(const Channel& c, const std::string& member,
                               const std::string& invoked_by, const std::string& type);

  tidings::Result<Reply> CreateChannel(const Call& call);
  tidings::Result<Reply> DescribeChannel(const Call& call);
  tidings::Result<Reply> CreateMembership(const Call& call);
  tidings::Result<Reply> DeleteMembership(const Call& call);
  tidings::Result<Reply> ListMemberships(const Call& call);
  tidings::Result<Reply> ListForUser(const Call& call);
  tidings::Result<Reply> DescribeForUser(const Call& call);
  tidings::Result<Reply> SendMessage(const Call& call);
  tidings::Result<Reply> ListMessages(const Call& call);
  tidings::Result<Reply> GetMessage(const Call& call);
  tidings::Result<Reply> UpdateMessage(const Call& call);
  tidings::Result<Reply> RemoveMessage(const Call& call, bool redact);
  tidings::Result<Reply> UpdateReadMarker(const Call& call);
  tidings::Result<Reply> UpdateChannel(const Call& call);
  tidings::Result<Reply> DeleteChannel(const Call& call);
  tidings::Result<Reply> BatchCreateMembership(const Call& call);
  tidings::Result<Reply> MessageStatus(const Call& call);
  tidings::Result<Reply> DescribeModerated(const Call& call);
  tidings::Result<Reply> PutExpiration(const Call& call);
  tidings::Result<Reply> ExpireChannels(const Call& call);
  // When channel `c` expires (ms), or -1 if it does not.
  static int64_t ExpiresAt(const Channel& c);
  static std::string ExpirationJson(const Channel& c);
  // ExpirationSettings (flattened by the router): both fields, in the
  // model's bounds; absent is fine (no settings).
  static tidings::Status CheckExpirationSettings(const Call& call);

  std::map<std::string, Channel> channels_;            // by ARN
  std::map<std::string, std::string> channel_tokens_;  // app '\n' token -> ARN
};

}  // namespace chime_local
