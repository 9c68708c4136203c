// The outbox (engine/outbox.cc): acks, failures, counts, bodies by reference,
// fan-out.
#include <gtest/gtest.h>

#include <map>

#include "store_test_util.h"

namespace tidings::engine {
namespace {

TEST(Store, OutboxAckFailRetryDiscard) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  auto a = store->Send(Msg("c", "a"));
  auto b = store->Send(Msg("c", "b"));
  auto outbox = store->Outbox(0);
  ASSERT_EQ(outbox->size(), 2u);
  EXPECT_EQ((*outbox)[0].op.message_id, a->id);
  ASSERT_TRUE(store->sync_log().AckOutbox((*outbox)[0].seq, {"sim", "r-1", 1234}).ok());
  EXPECT_EQ(store->Get(a->id)->state, MessageState::kSent);
  EXPECT_EQ(store->Get(a->id)->remote_ids.at("sim"), "r-1");
  uint64_t seq_b = (*outbox)[1].seq;
  ASSERT_TRUE(store->sync_log().FailOutbox(seq_b, "throttled", false, 99).ok());
  EXPECT_EQ(store->Get(b->id)->state, MessageState::kPending);
  ASSERT_TRUE(store->sync_log().FailOutbox(seq_b, "access denied", true, 0).ok());
  EXPECT_EQ(store->Get(b->id)->state, MessageState::kFailed);
  EXPECT_EQ(store->Get(b->id)->failure_reason, "access denied");
  EXPECT_TRUE(store->Outbox(0)->front().failed);
  ASSERT_TRUE(store->RetryFailed(seq_b).ok());
  EXPECT_EQ(store->Get(b->id)->state, MessageState::kPending);
  EXPECT_EQ(store->DiscardFailed(seq_b).code(), Code::kFailedPrecondition);
  ASSERT_TRUE(store->sync_log().FailOutbox(seq_b, "denied", true, 0).ok());
  ASSERT_TRUE(store->DiscardFailed(seq_b).ok());
  EXPECT_TRUE(store->Outbox(0)->empty());
}

// CountOutbox counts what Outbox lists - per state, conversation, backend
// and limit - and GetOutboxEntry returns one entry as Outbox does.
TEST(Store, OutboxCountsAndSingleEntriesMatchTheList) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store->sync_log().SetOutboxBackends({"chime", "dynamodb"}).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->Send(Msg("c", "c" + std::to_string(i))).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store->Send(Msg("d", "d" + std::to_string(i))).ok());
  auto outbox = store->Outbox(0);
  ASSERT_EQ(outbox->size(), 8u);
  ASSERT_TRUE(store->sync_log().FailOutbox((*outbox)[1].seq, "denied", true, 0).ok());
  ASSERT_TRUE(store->sync_log().FailOutbox((*outbox)[6].seq, "denied", true, 0).ok());
  ASSERT_TRUE(store->sync_log().AckOutbox((*outbox)[0].seq, {"chime", "m-0", 1}).ok());
  const auto counts = [&](const std::string& conv, std::string_view backend, uint64_t limit = 0) {
    auto c = store->CountOutbox(conv, backend, limit);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::pair<uint64_t, uint64_t>(c->pending, c->failed);
  };
  using P = std::pair<uint64_t, uint64_t>;
  EXPECT_EQ(counts("", ""), (P{6, 2}));
  EXPECT_EQ(counts("c", ""), (P{4, 1}));
  EXPECT_EQ(counts("d", ""), (P{2, 1}));
  EXPECT_EQ(counts("c", "chime"), (P{3, 1}));  // entry 0 is chime's already
  EXPECT_EQ(counts("c", "dynamodb"), (P{4, 1}));
  EXPECT_EQ(counts("nobody", ""), (P{0, 0}));
  EXPECT_EQ(counts("", "", 3), (P{2, 1}));  // stops at the limit
  for (const char* conv : {"", "c", "d"}) {
    for (const char* backend : {"", "chime", "dynamodb"}) {
      auto c = store->CountOutbox(conv, backend);
      EXPECT_EQ(c->total(), store->Outbox(0, conv, backend)->size()) << conv << "/" << backend;
    }
  }
  auto stats = store->Stats();
  EXPECT_EQ(stats->outbox, 8u);
  EXPECT_EQ(stats->outbox_failed, 2u);

  auto one = store->GetOutboxEntry((*outbox)[6].seq);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->op.message_id, (*outbox)[6].op.message_id);
  EXPECT_EQ(one->op.body, "d1");  // the body the entry refers to, filled in
  EXPECT_TRUE(one->failed);
  EXPECT_EQ(store->GetOutboxEntry(999999).status().code(), Code::kNotFound);
}

// A send's outbox entry does not copy the body (it refers to the message),
// yet what is pushed is always the body as sent: edits and deletes, local or
// merged from the user's other device, and failed attempts do not change it.
TEST(Store, OutboxSendsTheBodyAsSentWhateverHappensToTheMessage) {
  TempDir dir;
  std::string edited_id, deleted_id, remote_edited_id;
  {
    auto store = MustOpen(dir.path());
    auto a = store->Send(Msg("c", "first words"));
    auto b = store->Send(Msg("c", "regrettable words"));
    auto c = store->Send(Msg("c", "typo'd words"));
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    edited_id = a->id, deleted_id = b->id, remote_edited_id = c->id;
    auto first = store->Outbox(0);
    ASSERT_EQ(first->size(), 3u);
    ASSERT_TRUE(store->sync_log().FailOutbox((*first)[0].seq, "throttled", false, 0).ok());
    ASSERT_TRUE(store->Edit(a->id, "better words").ok());
    ASSERT_TRUE(store->Edit(a->id, "best words").ok());
    ASSERT_TRUE(store->Delete(b->id).ok());
    Operation edit;  // the same user, on another device
    edit.kind = OpKind::kEdit;
    edit.op_id = "other-device-edit";
    edit.conversation_id = "c";
    edit.author = "alice";
    edit.at = OrderKey{c->order.hlc + 1, c->order.replica + 1};
    edit.message_id = c->id;
    edit.body = "typo fixed";
    ASSERT_TRUE(
        store->sync_log().Merge("sim", "c", std::span<const Operation>(&edit, 1), "x").ok());
    EXPECT_EQ(store->Get(c->id)->body, "typo fixed");
  }
  auto store = MustOpen(dir.path());
  auto outbox = store->Outbox(0);
  ASSERT_TRUE(outbox.ok()) << outbox.status().ToString();
  std::map<std::string, std::string> sent;  // message id -> body of its send
  std::vector<std::string> edits;
  for (const auto& e : *outbox) {
    if (e.op.kind == OpKind::kSend) sent[e.op.message_id] = e.op.body;
    if (e.op.kind == OpKind::kEdit) edits.push_back(e.op.body);
  }
  EXPECT_EQ(sent[edited_id], "first words");
  EXPECT_EQ(sent[deleted_id], "regrettable words");
  EXPECT_EQ(sent[remote_edited_id], "typo'd words");
  EXPECT_EQ(edits, (std::vector<std::string>{"better words", "best words"}));
  EXPECT_EQ(store->Get(edited_id)->body, "best words");
  EXPECT_TRUE(store->Get(deleted_id)->body.empty());
  auto report = store->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u) << (report->details.empty() ? "" : report->details[0]);

  // Acknowledged, then edited: the next edit needs no copy and verify agrees.
  ASSERT_TRUE(store->sync_log().AckOutbox(outbox->front().seq, {"sim", "r-1", 1234}).ok());
  ASSERT_TRUE(store->Edit(edited_id, "final words").ok());
  EXPECT_EQ(store->Verify(nullptr)->problems, 0u);
}

// A send given its own id may find operations waiting for that id (made on
// the user's other device and merged first): the message shows them, the
// outbox still sends the body the caller gave.
TEST(Store, SendWithAnIdThatHasWaitingEditsSendsTheCallersBody) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  const std::string id = NewMessageId(1'700'000'000'000);
  Operation edit;
  edit.kind = OpKind::kEdit;
  edit.op_id = "early-edit";
  edit.conversation_id = "c";
  edit.author = "alice";
  edit.at = OrderKey{(uint64_t{1'800'000'000'000} << 16), 99};
  edit.message_id = id;
  edit.body = "edited elsewhere";
  ASSERT_TRUE(store->sync_log().Merge("sim", "c", std::span<const Operation>(&edit, 1), "x").ok());
  SendRequest r = Msg("c", "as typed");
  r.message_id = id;
  auto m = store->Send(r);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->body, "edited elsewhere");
  auto outbox = store->Outbox(0);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ(outbox->front().op.body, "as typed");
  ASSERT_TRUE(store->Delete(id).ok());
  EXPECT_EQ(store->Outbox(0)->front().op.body, "as typed");
  EXPECT_EQ(store->Verify(nullptr)->problems, 0u);
}

// Fan-out: deliver through one backend, persist through another. An entry
// leaves the outbox only once both accepted it; each sees only its own work.
TEST(Store, OutboxFansOutToEveryListedBackend) {
  TempDir dir;
  {
    auto store = MustOpen(dir.path());
    ASSERT_TRUE(store->sync_log().SetOutboxBackends({"dynamodb", "chime", "chime"}).ok());
    EXPECT_EQ(store->sync_log().OutboxBackends(), (std::vector<std::string>{"chime", "dynamodb"}));
    auto a = store->Send(Msg("c", "a"));
    auto b = store->Send(Msg("c", "b"));
    auto outbox = store->Outbox(0);
    ASSERT_EQ(outbox->size(), 2u);
    const uint64_t seq_a = (*outbox)[0].seq, seq_b = (*outbox)[1].seq;
    ASSERT_TRUE(store->sync_log().AckOutbox(seq_a, {"chime", "msg-1", 1234}).ok());
    // Delivered (sent) at the first ack, but still owed to dynamodb.
    EXPECT_EQ(store->Get(a->id)->state, MessageState::kSent);
    EXPECT_EQ(store->Outbox(0)->size(), 2u);
    EXPECT_EQ(store->Outbox(0, "c", "chime")->size(), 1u);
    EXPECT_EQ(store->Outbox(0, "c", "dynamodb")->size(), 2u);
    ASSERT_TRUE(
        store->sync_log().AckOutbox(seq_a, {"chime", "msg-1", 1234}).ok());  // a duplicate ack
    ASSERT_TRUE(store->sync_log().AckOutbox(seq_a, {"dynamodb", "7", 1235}).ok());
    EXPECT_EQ(store->Outbox(0)->size(), 1u);
    EXPECT_EQ(store->Get(a->id)->remote_ids.at("chime"), "msg-1");
    EXPECT_EQ(store->Get(a->id)->remote_ids.at("dynamodb"), "7");
    // One backend's backoff does not hold back the other.
    ASSERT_TRUE(store->sync_log().FailOutbox(seq_b, "throttled", false, INT64_MAX).ok());
    EXPECT_EQ(store->Outbox(0, "c", "dynamodb")->front().next_attempt_ms, 0);
    ASSERT_TRUE(store->sync_log().AckOutbox(seq_b, {"dynamodb", "8", 1236}).ok());
    EXPECT_EQ(store->Get(b->id)->state, MessageState::kSent);
  }
  {  // the list and the partial acks persist
    auto store = MustOpen(dir.path());
    EXPECT_EQ(store->sync_log().OutboxBackends(), (std::vector<std::string>{"chime", "dynamodb"}));
    auto left = store->Outbox(0);
    ASSERT_EQ(left->size(), 1u);
    EXPECT_EQ(left->front().acked_by, std::vector<std::string>{"dynamodb"});
    EXPECT_TRUE(store->Outbox(0, "", "dynamodb")->empty());
    // Dropping chime from the list completes what dynamodb already has.
    ASSERT_TRUE(store->sync_log().SetOutboxBackends({"dynamodb"}).ok());
    EXPECT_TRUE(store->Outbox(0)->empty());
    EXPECT_EQ(store->sync_log().SetOutboxBackends({""}).code(), Code::kInvalidArgument);
  }
}

}  // namespace
}  // namespace tidings::engine
