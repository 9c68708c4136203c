// JSON of the Chime SDK Messaging wire protocol (rest-json) and of Tidings'
// own message envelopes. simdjson is included only by chime_json.cc and its
// types never leave it. Every parser returns InvalidArgument ("malformed
// Chime response ...") or false on bad input, never crashes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tidings::chime {

// One ChannelMessageSummary of ListChannelMessages (or the ChannelMessage of
// GetChannelMessage and of a messaging-session event).
struct ChimeMessage {
  std::string channel_arn;  // events and GetChannelMessage only
  std::string message_id;
  std::string content;
  std::string metadata;
  std::string content_type;
  std::string sender_arn;
  std::string type;         // STANDARD / CONTROL
  std::string status;       // Status.Value (SENT, PENDING, FAILED, DENIED), "" if absent
  std::string persistence;  // PERSISTENT / NON_PERSISTENT, "" if absent
  int64_t created_ms = 0;
  int64_t edited_ms = 0;  // LastEditedTimestamp, 0 if never edited
  bool redacted = false;
};

struct MessagesPage {
  std::vector<ChimeMessage> messages;
  std::string next_token;  // "" on the last page
};
Result<MessagesPage> ParseListChannelMessages(std::string_view body);
// A ChannelMessage object: a messaging-session event's Payload, or (with
// `wrapped`) GetChannelMessage's {"ChannelMessage":{...}}.
Result<ChimeMessage> ParseChannelMessage(std::string_view json, bool wrapped);

// One ChannelMembershipForAppInstanceUserSummary.ChannelSummary.
struct ChannelInfo {
  std::string arn;
  std::string name;
  std::string metadata;
};
struct ChannelsPage {
  std::vector<ChannelInfo> channels;
  std::string next_token;
};
Result<ChannelsPage> ParseListChannelMemberships(std::string_view body);

// DescribeChannel: the ARN of Channel.CreatedBy.
Result<std::string> ParseChannelCreator(std::string_view body);

// One page of ListChannelMemberships: the members' ARNs.
struct MembersPage {
  std::vector<std::string> member_arns;
  std::string next_token;
};
Result<MembersPage> ParseChannelMemberships(std::string_view body);

// A top-level string field of a response ("ChannelArn", "MessageId").
Result<std::string> ParseStringField(std::string_view body, std::string_view field);

// True if `s` is valid UTF-8 (Chime content and metadata must be).
bool IsUtf8(std::string_view s);

// Tidings' envelope: what a Tidings client writes into a channel message's
// Metadata (and, for operations other than sends, into its Content). Fields
// absent on the wire are empty / zero. docs/chime.md lists the keys.
struct Envelope {
  std::string kind;        // "send", "edit", "delete", "react", "unreact", "read"
  std::string op_id;       // equals message_id for sends
  std::string message_id;  // the message created or targeted
  std::string author;
  uint64_t hlc = 0;
  uint64_t replica = 0;
  std::string content_type;
  std::string encoding;  // "" (UTF-8 text), "b64" (binary, base64), "empty"
  std::string body;      // op messages only (edit); sends carry it in Content
  std::string reaction;
  uint64_t read_hlc = 0, read_replica = 0;
  std::map<std::string, std::string> metadata;
  // Deletes: the target's order key and content type, so a device that finds
  // the target redacted (metadata gone) still places its tombstone.
  uint64_t target_hlc = 0, target_replica = 0;
  std::string target_content_type;
  std::string target_chime_id;    // deletes: the target's Chime MessageId, if known,
  int64_t target_created_ms = 0;  // and its CreatedTimestamp
  // A send's Metadata after a native edit (UpdateChannelMessage by Tidings):
  // the edit operation, so a device that sees the edited message (an event,
  // a rescan) merges that very operation; `content_hash` tells it from a
  // later edit by another client (ContentHash of the Content it wrote).
  std::string edit_op_id;
  uint64_t edit_hlc = 0, edit_replica = 0;
  std::string edit_content_type;
  std::string content_hash;
};
// 16 hex digits of SHA-256(content).
std::string ContentHash(std::string_view content);
// Writes the envelope as compact JSON. `with_body` includes body, reaction and
// read marker fields (op message Content); without, the header only.
std::string WriteEnvelope(const Envelope& e, bool with_payload);
// False if `json` is not a Tidings envelope (not JSON, no "tidings":1, a
// field of the wrong type or a missing id/kind/author/hlc).
bool ParseEnvelope(std::string_view json, Envelope* out);

// Channel metadata written by Tidings: {"tidings":1,"conversation":"<id>"}.
std::string WriteChannelMetadata(std::string_view conversation_id);
// The conversation id, or nullopt if not Tidings channel metadata.
std::optional<std::string> ParseChannelMetadata(std::string_view json);

// A sealed log's channel Metadata: {"tidings":"e2e1"} (no conversation id,
// no title: docs/chime.md).
inline constexpr char kSealedChannelMetadata[] = "{\"tidings\":\"e2e1\"}";
bool IsSealedChannelMetadata(std::string_view json);

// A frame message's Metadata: {"tidings":"f1","id":"<frame id>"}. The id
// travels here because ListChannelMessages does not return the
// ClientRequestToken.
std::string WriteFrameMetadata(std::string_view frame_id);
// The frame id, or nullopt if `json` does not mark a frame.
std::optional<std::string> ParseFrameMetadata(std::string_view json);

}  // namespace tidings::chime
