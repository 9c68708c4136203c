// The record codecs (engine/records.cc): what is stored in the messages,
// conversations and outbox families. The layouts are the on-disk format:
// a change here must come with a record version or a schema migration.
#include "engine/records.h"

#include <gtest/gtest.h>

#include <string>

#include "crypto/hash.h"

namespace tidings::engine {
namespace {

std::string Hex(std::string_view bytes) { return crypto::HexEncode(bytes); }

TEST(Records, ConversationLayoutIsFixed) {
  Conversation c;
  c.id = "c";
  c.title = "T";
  c.members = {"a", "b"};
  c.last_order = OrderKey{5, 2};
  c.last_message_id = "m";
  c.message_count = 3;
  c.read_markers["a"] = OrderKey{1, 2};
  c.remote_ids["x"] = "y";
  c.unread_count = 2;
  const std::string bytes = EncodeConversation(c);
  // version, id, title, members, last order, last id, count, markers, remote
  // ids, unread count (schema v6)
  EXPECT_EQ(Hex(bytes), "010163015402016101620502016d030101610102010178017902");
  Conversation back;
  ASSERT_TRUE(DecodeConversation(bytes, &back));
  EXPECT_EQ(back.id, c.id);
  EXPECT_EQ(back.members, c.members);
  EXPECT_EQ(back.read_markers, c.read_markers);
  EXPECT_EQ(back.remote_ids, c.remote_ids);
  bool counted = false;
  ASSERT_TRUE(DecodeConversation(bytes, &back, &counted));
  EXPECT_TRUE(counted);
  EXPECT_EQ(back.unread_count, 2u);
  // A v5 record ends before the count: read, and said to lack it.
  ASSERT_TRUE(DecodeConversation(bytes.substr(0, bytes.size() - 1), &back, &counted));
  EXPECT_FALSE(counted);
  EXPECT_EQ(back.unread_count, 0u);
  EXPECT_FALSE(DecodeConversation(bytes + "x", &back)) << "trailing bytes";
  EXPECT_FALSE(DecodeConversation("\x02" + bytes.substr(1), &back)) << "unknown version";
}

MessageRecord SampleMessage() {
  MessageRecord r;
  r.m.id = "m1";
  r.m.conversation_id = "c";
  r.m.sender = "alice";
  r.m.order = OrderKey{7, 1};
  r.m.body = "hi";
  r.m.content_type = "text/plain";
  r.m.metadata["k"] = "v";
  r.m.state = MessageState::kSent;
  r.m.remote_ids["dynamodb"] = "9";
  r.reactions[{"bob", "+1"}] = ReactionState{OrderKey{8, 2}, true};
  r.reactions[{"carol", "ok"}] = ReactionState{OrderKey{9, 3}, false};
  return r;
}

// Schema v2 appended send_seq; a record without it is a v1 record, byte for
// byte, and both decode.
TEST(Records, MessageSendSeqIsAnAppendedField) {
  MessageRecord r = SampleMessage();
  const std::string v1 = EncodeMessage(r);
  r.send_seq = 300;
  const std::string v2 = EncodeMessage(r);
  ASSERT_EQ(v2.substr(0, v1.size()), v1);
  EXPECT_EQ(Hex(v2.substr(v1.size())), "ac02");  // varint 300

  MessageRecord back;
  ASSERT_TRUE(DecodeMessage(v1, &back));
  EXPECT_EQ(back.send_seq, 0u);
  EXPECT_EQ(back.m.reactions, (std::vector<Reaction>{{"bob", "+1"}}))
      << "only present reactions are visible";
  ASSERT_TRUE(DecodeMessage(v2, &back));
  EXPECT_EQ(back.send_seq, 300u);
  EXPECT_EQ(back.m.remote_ids, r.m.remote_ids);
  EXPECT_FALSE(DecodeMessage(v1 + std::string(1, '\0'), &back)) << "send_seq 0 is never written";
  EXPECT_FALSE(DecodeMessage(v2 + "x", &back)) << "trailing bytes";
  EXPECT_FALSE(DecodeMessage(v2.substr(0, v2.size() / 2), &back)) << "truncated";
}

TEST(Records, OutboxBodyByReferenceAndAcks) {
  OutboxRecord r;
  r.e.op.kind = OpKind::kSend;
  r.e.op.op_id = r.e.op.message_id = "m1";
  r.e.op.conversation_id = "c";
  r.e.op.author = "alice";
  r.e.attempts = 2;
  r.e.next_attempt_ms = 1234;
  r.e.last_error = "throttled";
  r.body_by_ref = true;
  std::string bytes = EncodeOutbox(r);
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), kOutboxBodyByRef);
  OutboxRecord back;
  ASSERT_TRUE(DecodeOutbox(bytes, &back));
  EXPECT_TRUE(back.body_by_ref);
  EXPECT_EQ(back.e.attempts, 2u);
  EXPECT_EQ(back.e.next_attempt_ms, 1234);
  EXPECT_EQ(back.e.last_error, "throttled");
  EXPECT_TRUE(back.e.acked_by.empty());

  // acked_by is appended only when there is one: entries without fan-out
  // keep the layout they had before it existed.
  r.body_by_ref = false;
  r.e.op.body = "hi";
  const std::string plain = EncodeOutbox(r);
  EXPECT_EQ(static_cast<uint8_t>(plain[0]), kRecordVersion);
  r.e.acked_by = {"chime"};
  const std::string acked = EncodeOutbox(r);
  ASSERT_EQ(acked.substr(0, plain.size()), plain);
  ASSERT_TRUE(DecodeOutbox(acked, &back));
  EXPECT_EQ(back.e.acked_by, std::vector<std::string>{"chime"});
  EXPECT_FALSE(back.body_by_ref);

  // A by-reference entry carries no body of its own.
  std::string bad = plain;
  bad[0] = static_cast<char>(kOutboxBodyByRef);
  EXPECT_FALSE(DecodeOutbox(bad, &back));
}

}  // namespace
}  // namespace tidings::engine
