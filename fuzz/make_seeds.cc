// Writes the seed corpora in fuzz/corpus/<target>/ from real encodings: what
// the encoders of this build write, and responses shaped as the services send
// them. Each seed starts with the byte that picks its decoder
// (fuzz/fuzz_check.h). Run by scripts/fuzz.sh --seeds after a format changes;
// the seeds are committed.
//   tidings_fuzz_seeds <corpus dir>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/json_string.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "daemon/protocol.h"
#include "engine/records.h"
#include "engine/store_header.h"
#include "engine/types.h"
#include "sync/chime/chime_internal.h"
#include "sync/chime/chime_json.h"
#include "sync/dynamodb/log_items.h"
#include "sync/e2e/frame.h"
#include "sync/wire/bytes.h"
#include "sync/wire/operation_codec.h"

namespace {

using namespace tidings;
namespace fs = std::filesystem;

fs::path g_root;

void Seed(const std::string& target, const std::string& name, uint8_t choice,
          std::string_view bytes, bool with_choice = true) {
  fs::create_directories(g_root / target);
  std::ofstream out(g_root / target / name, std::ios::binary | std::ios::trunc);
  if (with_choice) out.put(static_cast<char>(choice));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<engine::Operation> SampleOperations() {
  engine::Operation send;
  send.kind = engine::OpKind::kSend;
  send.op_id = send.message_id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
  send.conversation_id = "team";
  send.author = "alice";
  send.at = {0x0193a1b2c3d40001, 7};
  send.body = "hello, fuzz";
  send.content_type = "text/plain";
  send.metadata = {{"lang", "en"}, {"thread", "t1"}};
  engine::Operation edit = send;
  edit.kind = engine::OpKind::kEdit;
  edit.op_id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c";
  edit.body = "hello, fuzzer";
  edit.metadata.clear();
  engine::Operation del = edit;
  del.kind = engine::OpKind::kDelete;
  del.body.clear();
  del.content_type.clear();
  engine::Operation react = del;
  react.kind = engine::OpKind::kReact;
  react.reaction = "\xf0\x9f\x91\x8d";
  engine::Operation unreact = react;
  unreact.kind = engine::OpKind::kUnreact;
  engine::Operation read = del;
  read.kind = engine::OpKind::kReadMarker;
  read.message_id.clear();
  read.read_up_to = send.at;
  return {send, edit, del, react, unreact, read};
}

void Records(const std::vector<engine::Operation>& ops) {
  engine::MessageRecord m;
  m.m.id = ops[0].message_id;
  m.m.conversation_id = ops[0].conversation_id;
  m.m.sender = ops[0].author;
  m.m.order = ops[0].at;
  m.m.body = ops[0].body;
  m.m.metadata = ops[0].metadata;
  m.m.state = engine::MessageState::kSent;
  m.m.remote_ids = {{"dynamodb", "12/0"}};
  m.m.server_time_ms = 1733370000123;
  m.m.edited_at = ops[1].at;
  m.reactions[{"bob", "\xf0\x9f\x91\x8d"}] = {ops[3].at, true};
  m.RefreshVisibleReactions();
  m.send_seq = 3;
  Seed("records", "message", 0, engine::EncodeMessage(m));
  engine::Conversation c;
  c.id = "team";
  c.title = "The team";
  c.members = {"alice", "bob"};
  c.last_order = ops[0].at;
  c.last_message_id = ops[0].message_id;
  c.message_count = 1;
  c.read_markers = {{"bob", ops[0].at}};
  c.remote_ids = {{"chime", "arn:aws:chime:us-east-1:1:app-instance/a/channel/c"}};
  Seed("records", "conversation", 1, engine::EncodeConversation(c));
  engine::OutboxRecord o;
  o.e.seq = 3;
  o.e.op = ops[0];
  o.e.attempts = 2;
  o.e.next_attempt_ms = 1733370001000;
  o.e.last_error = "backend unavailable";
  o.e.acked_by = {"dynamodb"};
  Seed("records", "outbox", 2, engine::EncodeOutbox(o));
  o.body_by_ref = true;
  o.e.op.body.clear();
  Seed("records", "outbox_by_ref", 2, engine::EncodeOutbox(o));
  for (size_t i = 0; i < ops.size(); ++i) {
    Seed("records", "operation_" + std::to_string(i), 3, engine::EncodeOperation(ops[i]));
  }
  Seed("records", "order_key", 4, ops[0].at.Encode());
}

void Wire(const std::vector<engine::Operation>& ops) {
  for (size_t i = 0; i < ops.size(); ++i) {
    Seed("operation_codec", "v2_" + std::to_string(i), 0, wire::EncodeOperation(ops[i]));
    Seed("operation_codec", "legacy_" + std::to_string(i), 1, engine::EncodeOperation(ops[i]));
  }
}

std::string DynamoItemJson(const std::string& pk, const std::string& attr, const std::string& b64,
                           int format) {
  return "{\"pk\":{\"S\":" + JsonString(pk) + "},\"sk\":{\"N\":\"12\"},\"" + attr + "\":{\"B\":\"" +
         b64 + "\"},\"v\":{\"N\":\"" + std::to_string(format) +
         "\"},\"t\":{\"N\":\"1733370000123\"}}";
}

void Dynamo(const std::vector<engine::Operation>& ops) {
  std::string packed, legacy;
  for (const auto& op : ops) packed += dynamodb::PackOperation(op).encoded;
  // Format 0 items: the same length-prefixed run, of the store's encoding.
  for (const auto& op : ops) wire::ByteWriter(&legacy).Bytes(engine::EncodeOperation(op));
  std::string frames =
      dynamodb::PackFrame({.id = "f-1", .bytes = e2e::EncodeAnnouncement("dev")}).encoded;
  Seed("dynamodb_items", "query_ops", 0,
       "{\"Items\":[" + DynamoItemJson("c#team", "o", crypto::Base64Encode(packed), 1) + "," +
           DynamoItemJson("c#team", "o", crypto::Base64Encode(legacy), 0) +
           "],\"Count\":2,\"LastEvaluatedKey\":{\"pk\":{\"S\":\"c#team\"},\"sk\":{\"N\":\"12\"}}}");
  Seed("dynamodb_items", "query_frames", 0,
       "{\"Items\":[" + DynamoItemJson("l#abc", "f", crypto::Base64Encode(frames), 2) +
           "],\"Count\":1}");
  Seed("dynamodb_items", "ops_v1", 1, std::string(1, '\x01') + packed);
  Seed("dynamodb_items", "ops_v0", 1, std::string(1, '\x00') + legacy);
  Seed("dynamodb_items", "frames_v2", 2, std::string(1, '\x02') + frames);
}

std::string ChimeMessageJson(const std::string& content, const std::string& metadata) {
  return "{\"ChannelArn\":\"arn:aws:chime:us-east-1:1:app-instance/a/channel/c\","
         "\"MessageId\":\"m-1\",\"Content\":" +
         JsonString(content) + ",\"Metadata\":" + JsonString(metadata) +
         ",\"ContentType\":\"text/plain\",\"Type\":\"STANDARD\",\"CreatedTimestamp\":"
         "1733370000.123,\"LastEditedTimestamp\":1733370001.5,\"Redacted\":false,"
         "\"Persistence\":\"PERSISTENT\",\"Status\":{\"Value\":\"SENT\"},"
         "\"Sender\":{\"Arn\":\"arn:aws:chime:us-east-1:1:app-instance/a/user/alice\","
         "\"Name\":\"alice\"}}";
}

chime::Envelope SampleEnvelope(const engine::Operation& op) {
  chime::Envelope e;
  e.kind = engine::OpKindName(op.kind);
  e.op_id = op.op_id;
  e.message_id = op.message_id;
  e.author = op.author;
  e.hlc = op.at.hlc;
  e.replica = op.at.replica;
  e.content_type = op.content_type;
  e.body = op.body;
  e.reaction = op.reaction;
  e.read_hlc = op.read_up_to.hlc;
  e.read_replica = op.read_up_to.replica;
  e.metadata = op.metadata;
  return e;
}

void Chime(const std::vector<engine::Operation>& ops) {
  chime::Envelope send = SampleEnvelope(ops[0]);
  std::string send_meta = chime::WriteEnvelope(send, false);
  std::string message = ChimeMessageJson(ops[0].body, send_meta);
  std::string react = chime::WriteEnvelope(SampleEnvelope(ops[3]), true);
  std::string react_message = ChimeMessageJson(react, "");
  Seed("chime_json", "list_messages", 0,
       "{\"ChannelArn\":\"arn:aws:chime:us-east-1:1:app-instance/a/channel/c\","
       "\"ChannelMessages\":[" +
           message + "," + react_message + "],\"NextToken\":\"tok\"}");
  Seed("chime_json", "channel_message", 1, message);
  Seed("chime_json", "get_channel_message", 2, "{\"ChannelMessage\":" + message + "}");
  Seed("chime_json", "list_memberships", 3,
       "{\"ChannelMemberships\":[{\"ChannelSummary\":{\"Name\":\"team\",\"ChannelArn\":"
       "\"arn:aws:chime:us-east-1:1:app-instance/a/channel/c\",\"Metadata\":" +
           JsonString(chime::WriteChannelMetadata("team")) + "}}],\"NextToken\":\"n\"}");
  Seed("chime_json", "channel_memberships", 3,
       "{\"ChannelArn\":\"arn:aws:chime:us-east-1:1:app-instance/a/channel/c\","
       "\"ChannelMemberships\":[{\"Type\":\"DEFAULT\",\"Member\":{\"Arn\":"
       "\"arn:aws:chime:us-east-1:1:app-instance/a/user/bob\",\"Name\":\"bob\"}}],"
       "\"NextToken\":\"n\"}");
  Seed("chime_json", "describe_channel", 4,
       "{\"Channel\":{\"ChannelArn\":\"arn:aws:chime:us-east-1:1:app-instance/a/channel/c\","
       "\"CreatedBy\":{\"Arn\":\"arn:aws:chime:us-east-1:1:app-instance/a/user/alice\"}}}");
  for (size_t i = 0; i < ops.size(); ++i) {
    Seed("chime_json", "envelope_" + std::to_string(i), 5,
         chime::WriteEnvelope(SampleEnvelope(ops[i]), true));
  }
  Seed("chime_json", "channel_metadata", 6, chime::WriteChannelMetadata("team"));
  Seed("chime_json", "sealed_metadata", 6, chime::kSealedChannelMetadata);
  Seed("chime_json", "frame_metadata", 7, chime::WriteFrameMetadata("f-1"));
  std::string content, encoding;
  chime::internal::EncodeBody(std::string("\x00\xff binary", 9), &content, &encoding);
  Seed("chime_json", "b64_body", 8, content);

  Seed("messaging_events", "create_message", 0,
       "{\"Headers\":{\"x-amz-chime-event-type\":\"CREATE_CHANNEL_MESSAGE\","
       "\"x-amz-chime-message-type\":\"STANDARD\"},\"Payload\":" +
           JsonString(message) + "}");
  Seed("messaging_events", "session_established", 0,
       "{\"Headers\":{\"x-amz-chime-event-type\":\"SESSION_ESTABLISHED\","
       "\"x-amz-chime-message-type\":\"SYSTEM\"},\"Payload\":null}");
  Seed("messaging_events", "endpoint", 1,
       "{\"Endpoint\":{\"Url\":\"node001.ue1.ws-messaging.chime.aws\"}}");
}

void E2e() {
  Seed("e2e_frames", "announcement", 0, e2e::EncodeAnnouncement("device record bytes"));
  e2e::KeyShareFrame share;
  share.log_id = "log-1";
  share.epoch = 3;
  share.epoch_sharer = share.signer = "dev-a";
  share.sealed = {{"dev-a", std::string(80, 's')}, {"dev-b", std::string(80, 't')}};
  share.info = std::string(60, 'i');
  share.signature = std::string(64, 'g');
  Seed("e2e_frames", "key_share", 0, e2e::EncodeKeyShare(share));
  e2e::SealedOpFrame op;
  op.log_id = "log-1";
  op.epoch = 3;
  op.epoch_sharer = op.author_device = "dev-a";
  op.op_id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
  op.ciphertext = std::string(90, 'c');
  op.signature = std::string(64, 'g');
  Seed("e2e_frames", "sealed_op", 0, e2e::EncodeSealedOp(op));
  e2e::ShareSecret secret{"team", std::string(32, 'k'), 3, "dev-a", std::string(32, 'e'), "alice"};
  Seed("e2e_frames", "share_secret", 1, e2e::EncodeShareSecret(secret));
  e2e::EpochInfo info{"team", "The team", {"alice", "bob"}, {"dev-a", "dev-b"}, {"dev-c"}};
  Seed("e2e_frames", "epoch_info", 2, e2e::EncodeEpochInfo(info));
}

void Daemon() {
  std::vector<daemon::Fields> frames = {
      {{"op", "hello"}, {"version", "1"}, {"nonce", std::string(32, 'n')}},
      {{"op", "auth"}, {"nonce", std::string(32, 'c')}, {"mac", std::string(32, 'm')}},
      {{"op", "send"}, {"conversation", "team"}, {"body", "hi"}, {"meta", "k=v"}},
      daemon::ErrorFields(NotFound("no conversation team; create it first")),
  };
  for (size_t i = 0; i < frames.size(); ++i) {
    std::string payload = daemon::EncodeFields(frames[i]);
    Seed("daemon_frames", "fields_" + std::to_string(i), 0, payload);
    std::string framed(4, '\0');
    for (int b = 0; b < 4; ++b) framed[b] = static_cast<char>(payload.size() >> (24 - 8 * b));
    Seed("daemon_frames", "frame_" + std::to_string(i), 1, framed + payload);
  }
  Seed("daemon_frames", "error_status", 2, daemon::EncodeFields(frames.back()));
}

void Header() {
  engine::Header h;
  h.format = 3;
  h.key_kind = static_cast<uint8_t>(crypto::KeySource::Kind::kPassphrase);
  h.params = crypto::PassphraseParams::NewInteractive();
  h.key_check = std::string(60, 'k');
  h.records = crypto::RecordProtection::kAuthenticatedSipHash;
  Seed("store_header", "passphrase_siphash", 0, engine::EncodeHeader(h), false);
  h.format = 2;
  h.key_kind = static_cast<uint8_t>(crypto::KeySource::Kind::kKeyFile);
  h.params = {};
  h.records = crypto::RecordProtection::kSealed;
  Seed("store_header", "key_file_sealed", 0, engine::EncodeHeader(h), false);
}

void KeyFile() {
  std::string raw(32, '\0');
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>(i * 7 + 1);
  Seed("key_file", "raw", 0, raw, false);
  std::string hex = crypto::HexEncode(raw);
  Seed("key_file", "hex_newline", 0, hex + "\n", false);
  Seed("key_file", "hex_crlf", 0, hex + "\r\n", false);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: tidings_fuzz_seeds <corpus dir>\n");
    return 2;
  }
  g_root = argv[1];
  auto ops = SampleOperations();
  Records(ops);
  Wire(ops);
  Dynamo(ops);
  Chime(ops);
  E2e();
  Daemon();
  Header();
  KeyFile();
  return 0;
}
