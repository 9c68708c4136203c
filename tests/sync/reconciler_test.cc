// Reconciler decisions with a scripted in-process backend and a fake clock.
#include "sync/core/reconciler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <thread>

#include "../engine/merge_test_peer.h"
#include "../engine/test_util.h"
#include "common/clock.h"
#include "memory_objects.h"
#include "sync/core/attachment_sync.h"
#include "sync/core/held_operations.h"
#include "sync/core/read_ahead.h"
#include "sync/wire/operation_codec.h"
#include "tests/common/eventually.h"

namespace tidings::sync {
namespace {

class ScriptedBackend final : public Backend {
 public:
  std::string_view name() const override { return "scripted"; }
  size_t max_batch() const override { return 3; }
  Result<std::string> EnsureConversation(const engine::Conversation& c) override {
    ensured.push_back(c.id);
    return "remote-" + c.id;
  }
  Status AddMembers(const engine::Conversation& c, const std::string& remote_id) override {
    added_members.push_back(remote_id + ":" + std::to_string(c.members.size()));
    if (!add_members_error.ok()) return add_members_error;
    return Status::Ok();
  }
  Result<std::vector<PushAck>> Push(const std::string&,
                                    std::span<const engine::Operation> ops) override {
    batches.push_back(ops.size());
    if (on_push) on_push();
    if (!push_script.empty()) {
      Status s = push_script.front();
      push_script.pop_front();
      if (!s.ok()) return s;
    }
    for (const auto& op : ops) {
      if (reject_whole.count(op.body)) return InvalidArgument("ValidationException: batch");
    }
    std::vector<PushAck> acks;
    for (const auto& op : ops) {
      PushAck a;
      if (throttle_retry_after > 0) {
        a.status = ResourceExhausted("ThrottlingException");
        a.retry_after_ms = throttle_retry_after;
        acks.push_back(std::move(a));
        continue;
      }
      if (reject_body.count(op.body)) a.status = InvalidArgument("ValidationException: rejected");
      if (busy_body.count(op.body)) {
        a.status = Unavailable("InternalServerError");
        a.retry_after_ms = 7000;
        acks.push_back(std::move(a));
        continue;
      }
      a.server_time_ms = static_cast<uint64_t>(WallMs());
      a.remote_id = "r-" + op.op_id;
      pushed.push_back(op.op_id);
      pushed_ops.push_back(op);
      acks.push_back(std::move(a));
    }
    return acks;
  }
  Result<PullPage> Pull(const std::string&, std::string_view cursor, size_t limit) override {
    pulls++;
    if (history) requests.push_back("pull:" + std::string(cursor));
    if (on_pull) on_pull();
    if (!pull_error.ok()) return pull_error;
    size_t from = cursor.empty() ? 0 : std::stoul(std::string(cursor));
    PullPage page;
    const size_t to = std::min(remote.size(), from + limit);
    for (size_t i = from; i < to; ++i) {
      // As the DynamoDB backend decodes: what this build cannot read is
      // handed over as bytes.
      std::string bytes = wire::EncodeOperation(remote[i]);
      if (reads_up_to != 0 && static_cast<uint8_t>(bytes[0]) > reads_up_to) {
        page.too_new.push_back({bytes, remote[i].server_time_ms, "r" + std::to_string(i)});
      } else {
        page.ops.push_back(remote[i]);
      }
    }
    page.next_cursor = std::to_string(to);
    page.has_more = to < remote.size();
    return page;
  }
  // Newest-first reading when `history` is set (positions are indexes, as
  // the cursors): each call is logged in `requests` as "history:<before>".
  Result<HistoryPage> PullHistory(const std::string&, std::string_view before,
                                  size_t limit) override {
    if (!history) return Unimplemented("oldest-first only");
    requests.push_back("history:" + std::string(before));
    if (on_history) on_history();
    if (!history_error.ok()) return history_error;
    HistoryPage page;
    size_t to = remote.size();
    if (before.empty()) {
      page.forward_cursor = std::to_string(to);
    } else {
      to = std::stoul(std::string(before));
    }
    const size_t from = to > limit ? to - limit : 0;
    for (size_t i = to; i > from; --i) page.ops.push_back(remote[i - 1]);  // newest first
    if (from > 0) page.before = std::to_string(from);
    return page;
  }
  Result<std::vector<std::string>> ListConversations() override {
    return std::vector<std::string>{"c"};
  }
  bool history = false;
  Status history_error;
  std::function<void()> on_history;
  std::vector<std::string> requests;  // PullHistory and (when history is set) Pull, in order
  uint8_t reads_up_to = 0;            // nonzero: newer operations come as too_new

  std::optional<int64_t> last_retry_after_ms() const override { return retry_after_hint; }

  std::deque<Status> push_script;
  std::optional<int64_t> retry_after_hint;
  std::set<std::string> reject_whole, busy_body;
  std::function<void()> on_push, on_pull;
  int64_t throttle_retry_after = 0;
  std::set<std::string> reject_body;
  Status pull_error;
  std::vector<engine::Operation> remote;
  std::vector<size_t> batches;
  std::vector<std::string> pushed, ensured, added_members;
  std::vector<engine::Operation> pushed_ops;
  Status add_members_error;
  int pulls = 0;
};

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = engine::Store::Open(dir_.path(), testing::TestKey(), testing::CreateOptions("me"));
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    Remake();
  }
  // A new reconciler on the same store (a restart; or after config_ changed).
  void Remake() {
    rec_ = std::make_unique<Reconciler>(
        &store_->sync_log(), &backend_, config_, [this] { return now_; },
        [this] { return random_; });
  }
  void Send(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(store_->Send({.conversation_id = "c", .body = "m" + std::to_string(i)}).ok());
    }
  }
  testing::TempDir dir_;
  std::unique_ptr<engine::Store> store_;
  ScriptedBackend backend_;
  SyncConfig config_;
  std::unique_ptr<Reconciler> rec_;
  int64_t now_ = 1'000'000;
  uint64_t random_ = ~uint64_t{0};  // jitter picks the top of the range
};

TEST_F(ReconcilerTest, PushesInOrderInBatchesAndMarksSent) {
  Send(7);
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(backend_.batches, (std::vector<size_t>{3, 3, 1}));
  EXPECT_EQ(backend_.ensured, std::vector<std::string>{"c"});
  EXPECT_TRUE(store_->Outbox(0)->empty());
  auto page = store_->Page({.conversation_id = "c"});
  for (const auto& m : *page) EXPECT_EQ(m.state, engine::MessageState::kSent);
  EXPECT_EQ(page->front().remote_ids.at("scripted"), "r-" + page->front().id);
  EXPECT_EQ(store_->GetConversation("c")->remote_ids.at("scripted"), "remote-c");
}

// Members added after the conversation was made remotely are added with the
// next push, once; an unchanged list (in any order) adds nobody; a transient
// failure to add them holds the push back and retries.
TEST_F(ReconcilerTest, MembersAddedLaterAreAddedOnceWithTheNextPush) {
  ASSERT_TRUE(store_->PutConversation("c", "", {"me", "bob"}).ok());
  Send(1);
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(backend_.ensured, std::vector<std::string>{"c"});
  EXPECT_TRUE(backend_.added_members.empty());                        // made with its members
  ASSERT_TRUE(store_->PutConversation("c", "", {"bob", "me"}).ok());  // same set
  Send(1);
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_TRUE(backend_.added_members.empty());

  ASSERT_TRUE(store_->PutConversation("c", "", {"me", "bob", "carol"}).ok());
  backend_.add_members_error = Unavailable("HTTP 503");
  Send(1);
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(backend_.added_members, std::vector<std::string>{"remote-c:3"});
  EXPECT_EQ(store_->Outbox(0)->size(), 1u) << "held back until the members are in";
  EXPECT_EQ(rec_->GetStatus("c").consecutive_failures, 1u);
  backend_.add_members_error = Status::Ok();
  now_ = rec_->GetStatus("c").next_attempt_ms;
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(backend_.added_members.size(), 2u);
  EXPECT_TRUE(store_->Outbox(0)->empty());
  Send(1);
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(backend_.added_members.size(), 2u) << "added once";
  EXPECT_EQ(backend_.ensured.size(), 1u);
}

TEST_F(ReconcilerTest, TransientFailureBacksOffWithJitterAndKeepsOrder) {
  Send(4);
  backend_.push_script = {Unavailable("HTTP 503")};
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(backend_.pushed.size(), 0u);
  auto st = rec_->GetStatus("c");
  EXPECT_EQ(st.consecutive_failures, 1u);
  EXPECT_GT(st.next_attempt_ms, now_);
  EXPECT_LE(st.next_attempt_ms, now_ + config_.base_backoff_ms * 2);
  // Not due yet: nothing is sent, however often we are called.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(backend_.batches.size(), 1u);
  now_ = st.next_attempt_ms;
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(backend_.pushed.size(), 4u);
  EXPECT_EQ(rec_->GetStatus("c").consecutive_failures, 0u);
}

TEST_F(ReconcilerTest, BackoffGrowsExponentiallyAndIsCapped) {
  Send(1);
  int64_t last_wait = 0;
  for (int i = 0; i < 12; ++i) {
    backend_.push_script = {Unavailable("down")};
    ASSERT_TRUE(rec_->Push("c").ok());
    int64_t wait = rec_->GetStatus("c").next_attempt_ms - now_;
    EXPECT_GE(wait, std::min<int64_t>(last_wait, config_.max_backoff_ms));
    EXPECT_LE(wait, config_.max_backoff_ms);
    last_wait = wait;
    now_ += wait;
  }
  EXPECT_GE(last_wait, config_.max_backoff_ms - 1);
}

TEST_F(ReconcilerTest, RetryAfterIsHonoured) {
  Send(2);
  random_ = 0;  // full jitter alone would allow an immediate retry
  backend_.throttle_retry_after = 5000;
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(rec_->GetStatus("c").next_attempt_ms, now_ + 5000);
  EXPECT_EQ(store_->Outbox(0)->size(), 2u);
  EXPECT_FALSE(store_->Outbox(0)->front().failed) << "throttling is transient";
}

TEST_F(ReconcilerTest, PermanentFailureParksOnlyThatOperation) {
  Send(3);
  backend_.reject_body = {"m1"};
  ASSERT_TRUE(rec_->Push("c").ok());
  auto outbox = store_->Outbox(0);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_TRUE(outbox->front().failed);
  EXPECT_NE(outbox->front().last_error.find("ValidationException"), std::string::npos);
  auto page = store_->Page({.conversation_id = "c"});
  EXPECT_EQ((*page)[0].state, engine::MessageState::kSent);
  EXPECT_EQ((*page)[1].state, engine::MessageState::kFailed);
  EXPECT_EQ((*page)[2].state, engine::MessageState::kSent) << "the failure did not block the rest";
  // Retry through the API: back to pending, pushed again once accepted.
  backend_.reject_body.clear();
  ASSERT_TRUE(store_->RetryFailed(outbox->front().seq).ok());
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_TRUE(store_->Outbox(0)->empty());
}

TEST_F(ReconcilerTest, AuthErrorStopsAndSurfaces) {
  Send(2);
  backend_.push_script = {Unauthenticated("UnrecognizedClientException")};
  Status s = rec_->Push("c");
  EXPECT_EQ(s.code(), Code::kUnauthenticated);
  EXPECT_EQ(store_->Outbox(0)->size(), 2u);
  EXPECT_FALSE(store_->Outbox(0)->front().failed);
}

TEST_F(ReconcilerTest, PermissionLossParksTheConversationAndStopsPolling) {
  Send(2);
  backend_.pull_error = PermissionDenied("ForbiddenException: not a member");
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_TRUE(rec_->GetStatus("c").stopped);
  auto outbox = store_->Outbox(0);
  ASSERT_EQ(outbox->size(), 2u);
  EXPECT_TRUE(outbox->front().failed);
  int pulls = backend_.pulls;
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(backend_.pulls, pulls) << "a stopped conversation is not polled";
  EXPECT_EQ(store_->Page({.conversation_id = "c"})->size(), 2u) << "nothing lost locally";
}

TEST_F(ReconcilerTest, PullsPagesAndAdvancesTheDurableCursor) {
  for (int i = 0; i < 250; ++i) {
    engine::Operation op;
    op.kind = engine::OpKind::kSend;
    op.op_id = op.message_id = "remote-" + std::to_string(i);
    op.author = "them";
    op.at = {(uint64_t{1'000'000} + static_cast<uint64_t>(i)) << 16, 9};
    op.body = "x";
    op.server_time_ms = 1'000'000;
    backend_.remote.push_back(op);
  }
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(store_->sync_log().GetCursor("scripted", "c").value(), "250");
  EXPECT_EQ(store_->GetConversation("c")->message_count, 250u);
  // Reopened reconciler resumes from the cursor: nothing re-fetched.
  Reconciler again(
      &store_->sync_log(), &backend_, config_, [this] { return now_; }, [] { return 1; });
  int before = backend_.pulls;
  ASSERT_TRUE(again.Pull("c").ok());
  EXPECT_EQ(backend_.pulls, before + 1);
  auto status = ReadSyncStatus(store_->sync_log(), "scripted");
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 1u);
  EXPECT_EQ(status->front().cursor, "250");
}

TEST_F(ReconcilerTest, RetryBudgetStopsADeadNetworkFromSpinning) {
  config_.retry_budget = 10;  // two retries' worth
  Reconciler rec(
      &store_->sync_log(), &backend_, config_, [this] { return now_; },
      [] { return ~uint64_t{0}; });
  Send(1);
  std::vector<int64_t> waits;
  for (int i = 0; i < 4; ++i) {
    backend_.push_script = {Unavailable("down")};
    ASSERT_TRUE(rec.Push("c").ok());
    waits.push_back(rec.GetStatus("c").next_attempt_ms - now_);
    now_ = rec.GetStatus("c").next_attempt_ms;
  }
  EXPECT_LT(waits[0], config_.max_backoff_ms);
  EXPECT_GE(waits[2], config_.max_backoff_ms - 1) << "budget spent: wait the maximum";
  EXPECT_GE(waits[3], config_.max_backoff_ms - 1);
}

TEST_F(ReconcilerTest, BatchRefusedAsAWholeIsRetriedOneByOneToFindTheCulprit) {
  Send(7);
  backend_.reject_whole = {"m1"};
  ASSERT_TRUE(rec_->Push("c").ok());
  // m0-m2 refused as a whole -> one at a time (m1 is the culprit) -> back to
  // full batches for the rest.
  EXPECT_EQ(backend_.batches, (std::vector<size_t>{3, 1, 1, 1, 3, 1}));
  auto outbox = store_->Outbox(0);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_TRUE(outbox->front().failed);
  EXPECT_EQ(outbox->front().op.body, "m1");
  auto page = store_->Page({.conversation_id = "c"});
  for (const auto& m : *page) {
    EXPECT_EQ(m.state, m.body == "m1" ? engine::MessageState::kFailed : engine::MessageState::kSent)
        << m.body;
  }
}

TEST_F(ReconcilerTest, AcceptedNeighboursOfATransientRefusalAreAcked) {
  Send(5);
  backend_.busy_body = {"m1"};
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(backend_.batches, (std::vector<size_t>{3})) << "the next batch waits";
  auto outbox = store_->Outbox(0);
  ASSERT_EQ(outbox->size(), 3u);  // m1 (retry later), m3, m4 (not tried)
  EXPECT_EQ(outbox->front().op.body, "m1");
  EXPECT_FALSE(outbox->front().failed);
  EXPECT_EQ(rec_->GetStatus("c").next_attempt_ms, now_ + 7000) << "per-op retry-after";
  EXPECT_EQ(store_->Page({.conversation_id = "c"})->at(2).state, engine::MessageState::kSent);
  backend_.busy_body.clear();
  now_ += 7000;
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_TRUE(store_->Outbox(0)->empty());
}

TEST_F(ReconcilerTest, RequestLevelRetryAfterHintIsHonoured) {
  Send(1);
  random_ = 0;
  backend_.push_script = {Unavailable("HTTP 503")};
  backend_.retry_after_hint = 12'000;
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(rec_->GetStatus("c").next_attempt_ms, now_ + 12'000);
  now_ += 11'999;
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(backend_.batches.size(), 1u) << "not before the server said";
}

TEST_F(ReconcilerTest, StopWithTheAnswerInHandRecordsNothingAndTheRetryReusesTheIds) {
  Send(2);
  bool stop = false;
  rec_->set_cancelled([&] { return stop; });
  backend_.on_push = [&] { stop = true; };  // the process dies while the server commits
  EXPECT_EQ(rec_->Push("c").code(), Code::kCancelled);
  ASSERT_EQ(backend_.pushed.size(), 2u);
  auto outbox = store_->Outbox(0);
  ASSERT_EQ(outbox->size(), 2u) << "nothing acked, nothing lost";
  EXPECT_EQ(outbox->front().attempts, 0u) << "nothing recorded at all";
  stop = false;
  backend_.on_push = nullptr;
  ASSERT_TRUE(rec_->Push("c").ok());
  ASSERT_EQ(backend_.pushed.size(), 4u);
  EXPECT_EQ(backend_.pushed[0], backend_.pushed[2]) << "same idempotency key on the retry";
  EXPECT_EQ(backend_.pushed[1], backend_.pushed[3]);
  EXPECT_TRUE(store_->Outbox(0)->empty());
}

engine::Operation RemoteSend(int i) {
  engine::Operation op;
  op.kind = engine::OpKind::kSend;
  op.op_id = op.message_id = "remote-" + std::to_string(i);
  op.author = "them";
  op.at = {(uint64_t{1'000'000} + static_cast<uint64_t>(i)) << 16, 9};
  op.body = "x";
  op.server_time_ms = 1'000'000;
  return op;
}

// A device on an older build (reading wire version 2) pulls a send with a
// file (version 3): it is not merged and not lost. The cursor moves on, the
// status says it waits for an upgrade, and the upgraded build merges it.
TEST_F(ReconcilerTest, AnOperationFromANewerBuildIsKeptUntilAnUpgradeReadsIt) {
  for (int i = 0; i < 3; ++i) backend_.remote.push_back(RemoteSend(i));
  backend_.remote[1].attachments.push_back({.name = "rash.jpg",
                                            .content_type = "image/jpeg",
                                            .size = 2'000,
                                            .object = std::string(32, '\x11'),
                                            .object_size = 2'100,
                                            .content_key = std::string(32, '\x22'),
                                            .location = "clinic-media"});
  backend_.reads_up_to = 2;
  config_.newest_operation_version = 2;
  auto old_build = std::make_unique<Reconciler>(
      &store_->sync_log(), &backend_, config_, [this] { return now_; }, [this] { return random_; });
  ASSERT_TRUE(old_build->Pull("c").ok());
  EXPECT_EQ(store_->sync_log().GetCursor("scripted", "c").value(), "3");
  EXPECT_EQ(store_->GetConversation("c")->message_count, 2u);
  EXPECT_EQ(old_build->GetStatus("c").waiting_for_upgrade, 1u);
  EXPECT_EQ(old_build->GetStatus("c").skipped_ops, 0u) << "held, not skipped";
  EXPECT_EQ(ReadSyncStatus(store_->sync_log(), "scripted")->front().waiting_for_upgrade, 1u)
      << "persisted";
  // A second one, on a later page, joins it (the record is appended to).
  backend_.remote.push_back(backend_.remote[1]);
  backend_.remote[3].op_id = backend_.remote[3].message_id = "remote-3";
  backend_.remote[3].at = RemoteSend(3).at;
  old_build = std::make_unique<Reconciler>(
      &store_->sync_log(), &backend_, config_, [this] { return now_; }, [this] { return random_; });
  ASSERT_TRUE(old_build->Pull("c").ok());
  EXPECT_EQ(old_build->GetStatus("c").waiting_for_upgrade, 2u);
  EXPECT_EQ(store_->GetConversation("c")->message_count, 2u);
  old_build.reset();

  // The upgrade: this build reads version 3.
  backend_.reads_up_to = 0;
  config_.newest_operation_version = 0;
  rec_ = std::make_unique<Reconciler>(
      &store_->sync_log(), &backend_, config_, [this] { return now_; }, [this] { return random_; });
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(store_->GetConversation("c")->message_count, 4u);
  EXPECT_TRUE(store_->Get("remote-3").ok());
  auto held = store_->Get("remote-1");
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  ASSERT_EQ(held->attachments.size(), 1u);
  EXPECT_EQ(held->attachments[0].name, "rash.jpg");
  EXPECT_EQ(rec_->GetStatus("c").waiting_for_upgrade, 0u);
  EXPECT_EQ(ReadSyncStatus(store_->sync_log(), "scripted")->front().waiting_for_upgrade, 0u);
  EXPECT_EQ(store_->sync_log().GetSyncState("held/scripted/c").value(), "") << "record removed";
}

// Held operations are bounded in bytes, not only in count: anyone who can
// write the conversation's items can make "too new" bytes. One over 2 MiB
// is refused, and beyond 16 MiB the oldest go; each counted as skipped.
TEST_F(ReconcilerTest, HeldOperationsAreBoundedInBytes) {
  for (int i = 0; i < 21; ++i) {
    engine::Operation op = RemoteSend(i);
    op.body = std::string(i == 20 ? 3 << 20 : 1 << 20, 'x');  // the last is over 2 MiB
    op.attachments.push_back({.name = "f",
                              .content_type = "a/b",
                              .size = 1,
                              .object = std::string(32, '\x11'),
                              .object_size = 2,
                              .content_key = std::string(32, '\x22'),
                              .location = "b"});
    backend_.remote.push_back(op);
  }
  backend_.reads_up_to = 2;
  config_.newest_operation_version = 2;
  config_.pull_page_size = 1;
  config_.max_pull_pages_per_round = 100;
  auto old_build = std::make_unique<Reconciler>(
      &store_->sync_log(), &backend_, config_, [this] { return now_; }, [this] { return random_; });
  ASSERT_TRUE(old_build->Pull("c").ok());
  const ConversationStatus st = old_build->GetStatus("c");
  EXPECT_EQ(st.waiting_for_upgrade, 15u) << "16 MiB of 1 MiB operations";
  EXPECT_EQ(st.skipped_ops, 6u) << "the 5 oldest, and the one over 2 MiB";
  auto raw = store_->sync_log().GetSyncState("held/scripted/c");
  ASSERT_TRUE(raw.ok());
  EXPECT_LE(raw->size(), kMaxHeldBytes + 4096);
}

TEST_F(ReconcilerTest, CrashBetweenPagesKeepsCursorAndMessagesInStep) {
  for (int i = 0; i < 35; ++i) backend_.remote.push_back(RemoteSend(i));
  config_.pull_page_size = 10;
  Reconciler rec(
      &store_->sync_log(), &backend_, config_, [this] { return now_; }, [] { return 1; });
  std::atomic<bool> stop = false;  // flipped by the read-ahead's thread
  rec.set_cancelled([&] { return stop.load(); });
  backend_.on_pull = [&] { stop = backend_.pulls == 3; };  // dies holding page 3
  EXPECT_EQ(rec.Pull("c").code(), Code::kCancelled);
  EXPECT_EQ(store_->sync_log().GetCursor("scripted", "c").value(), "20");
  EXPECT_EQ(store_->GetConversation("c")->message_count, 20u)
      << "merged exactly the cursor's pages";
  stop = false;
  backend_.on_pull = nullptr;
  ASSERT_TRUE(rec.Pull("c").ok());
  EXPECT_EQ(store_->sync_log().GetCursor("scripted", "c").value(), "35");
  EXPECT_EQ(store_->GetConversation("c")->message_count, 35u);
}

TEST_F(ReconcilerTest, PullIsBoundedPerRoundAndAsksToComeBackAtOnce) {
  for (int i = 0; i < 50; ++i) backend_.remote.push_back(RemoteSend(i));
  config_.pull_page_size = 10;
  config_.max_pull_pages_per_round = 2;
  Reconciler rec(
      &store_->sync_log(), &backend_, config_, [this] { return now_; }, [] { return 1; });
  ASSERT_TRUE(rec.Pull("c").ok());
  EXPECT_EQ(backend_.pulls, 2);
  EXPECT_EQ(store_->sync_log().GetCursor("scripted", "c").value(), "20");
  EXPECT_LE(rec.NextPollMs("c"), now_) << "more is waiting: poll again now";
  ASSERT_TRUE(rec.Pull("c").ok());
  ASSERT_TRUE(rec.Pull("c").ok());
  EXPECT_EQ(store_->sync_log().GetCursor("scripted", "c").value(), "50");
  EXPECT_GT(rec.NextPollMs("c"), now_);
}

// Whether the page after the first was asked for before the first page's
// merge committed: the store's listener, on the committing thread, waits up
// to `wait` for that request.
bool ReadWhileMerging(engine::Store& store, ScriptedBackend& backend, Reconciler& rec,
                      std::chrono::milliseconds wait) {
  std::promise<void> asked;
  std::future<void> asked_future = asked.get_future();
  backend.on_pull = [&] {
    if (backend.pulls == 2) asked.set_value();
  };
  bool overlapped = false, seen = false;
  uint64_t id = store.Subscribe([&](const engine::ChangeEvent& e) {
    if (seen || e.kind != engine::ChangeEvent::Kind::kMessageAdded) return;
    seen = true;  // the first page's first message
    overlapped = asked_future.wait_for(wait) == std::future_status::ready;
  });
  EXPECT_TRUE(rec.Pull("c").ok());
  store.Unsubscribe(id);
  backend.on_pull = nullptr;
  return overlapped;
}

TEST_F(ReconcilerTest, TheNextPageIsReadWhileThePageBeforeMerges) {
  for (int i = 0; i < 35; ++i) backend_.remote.push_back(RemoteSend(i));
  config_.pull_page_size = 10;
  Remake();
  EXPECT_TRUE(ReadWhileMerging(*store_, backend_, *rec_, std::chrono::seconds(10)));
  EXPECT_EQ(backend_.pulls, 4) << "one request per page, none past the last";
  EXPECT_EQ(store_->sync_log().GetCursor("scripted", "c").value(), "35");
  EXPECT_EQ(store_->GetConversation("c")->message_count, 35u);
}

TEST_F(ReconcilerTest, WithoutReadAheadEachPageIsReadAfterThePageBeforeMerged) {
  for (int i = 0; i < 35; ++i) backend_.remote.push_back(RemoteSend(i));
  config_.pull_page_size = 10;
  config_.read_ahead = false;
  Remake();
  EXPECT_FALSE(ReadWhileMerging(*store_, backend_, *rec_, std::chrono::milliseconds(0)));
  EXPECT_EQ(store_->GetConversation("c")->message_count, 35u);
}

TEST_F(ReconcilerTest, AFailedReadAheadIsAFailedReadAfterThePagesBeforeIt) {
  for (int i = 0; i < 35; ++i) backend_.remote.push_back(RemoteSend(i));
  config_.pull_page_size = 10;
  Remake();
  // The third page, read while the second merges, fails.
  backend_.on_pull = [&] {
    if (backend_.pulls == 3) backend_.pull_error = Unavailable("connection reset");
  };
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(store_->sync_log().GetCursor("scripted", "c").value(), "20");
  EXPECT_EQ(store_->GetConversation("c")->message_count, 20u) << "the pages before it merged";
  auto status = rec_->GetStatus("c");
  EXPECT_NE(status.last_error.find("connection reset"), std::string::npos) << status.last_error;
  EXPECT_GT(rec_->NextPollMs("c"), now_) << "backs off like any failed read";
  backend_.on_pull = nullptr;
  backend_.pull_error = Status::Ok();
  now_ = rec_->NextPollMs("c");
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(store_->sync_log().GetCursor("scripted", "c").value(), "35");
  EXPECT_EQ(store_->GetConversation("c")->message_count, 35u);
}

TEST(ReadAhead, UsesAPageOnlyFromItsCursorAndThrowsWhatTheReadThrew) {
  std::vector<std::string> reads;
  std::mutex mu;
  ReadAhead<std::string> ahead(
      [&](std::string_view cursor) -> Result<std::string> {
        if (cursor == "boom") throw std::bad_alloc();
        std::lock_guard<std::mutex> lock(mu);
        reads.emplace_back(cursor);
        return "page after " + std::string(cursor);
      },
      /*enabled=*/true);
  ahead.Start("1");
  EXPECT_EQ(ahead.Take("1").value(), "page after 1");
  ahead.Start("2");
  EXPECT_EQ(ahead.Take("3").value(), "page after 3") << "a read from elsewhere is dropped";
  EXPECT_EQ(reads, (std::vector<std::string>{"1", "2", "3"}));
  // What a read made ahead throws, Take throws, as a read made there would;
  // the ReadAhead stays usable and its destructor has nothing to wait for.
  ahead.Start("boom");
  EXPECT_THROW(static_cast<void>(ahead.Take("boom")), std::bad_alloc);
  ahead.Start("4");
  EXPECT_EQ(ahead.Take("4").value(), "page after 4");
  ahead.Start("5");  // left in flight: the destructor waits for it
}

TEST_F(ReconcilerTest, PollIntervalBacksOffFromActiveToIdle) {
  backend_.remote.push_back(RemoteSend(0));
  ASSERT_TRUE(rec_->Pull("c").ok());  // activity now
  EXPECT_EQ(rec_->NextPollMs("c"), now_ + config_.active_poll_ms);
  // Quiet polls: the interval grows with the silence, capped at idle_poll_ms.
  int64_t last = 0;
  for (int i = 0; i < 300; ++i) {  // 2 s polls for active_window_ms, then longer
    now_ = rec_->NextPollMs("c");
    ASSERT_TRUE(rec_->Pull("c").ok());
    int64_t interval = rec_->NextPollMs("c") - now_;
    EXPECT_GE(interval, last);
    EXPECT_LE(interval, config_.idle_poll_ms);
    last = interval;
  }
  EXPECT_EQ(last, config_.idle_poll_ms);
  backend_.remote.push_back(RemoteSend(1));
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(rec_->NextPollMs("c"), now_ + config_.active_poll_ms) << "active again";
}

TEST_F(ReconcilerTest, AuthErrorIsPersistedForStatus) {
  Send(1);
  backend_.push_script = {Unauthenticated("ExpiredTokenException")};
  EXPECT_EQ(rec_->Push("c").code(), Code::kUnauthenticated);
  auto status = ReadSyncStatus(store_->sync_log(), "scripted");
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 1u);
  EXPECT_NE(status->front().last_error.find("UNAUTHENTICATED"), std::string::npos);
  EXPECT_EQ(status->front().outbox_depth, 1u);
  EXPECT_EQ(SyncedBackends(store_->sync_log()).value(), std::vector<std::string>{"scripted"});
}

TEST_F(ReconcilerTest, LargeBacklogIsPushedOverBoundedRounds) {
  config_.max_push_per_round = 4;
  Reconciler rec(
      &store_->sync_log(), &backend_, config_, [this] { return now_; }, [] { return 1; });
  Send(10);
  ASSERT_TRUE(rec.Push("c").ok());
  EXPECT_EQ(backend_.pushed.size(), 4u);
  EXPECT_TRUE(rec.HasMore("c"));
  EXPECT_LE(rec.NextPollMs("c"), now_) << "come back at once";
  ASSERT_TRUE(rec.Push("c").ok());
  ASSERT_TRUE(rec.Push("c").ok());
  EXPECT_EQ(backend_.pushed.size(), 10u);
  EXPECT_FALSE(rec.HasMore("c"));
  // SyncAll repeats bounded rounds until caught up.
  Send(9);
  ASSERT_TRUE(rec.SyncAll().ok());
  EXPECT_TRUE(store_->Outbox(0)->empty());
  EXPECT_EQ(backend_.pushed.size(), 19u);
  for (int i = 0; i < 10; ++i) {
    auto m = store_->Get(backend_.pushed[static_cast<size_t>(i)]);
    EXPECT_EQ(m->body, "m" + std::to_string(i)) << "outbox order kept across rounds";
  }
}

TEST_F(ReconcilerTest, RetryFailedOperationResumesAStoppedConversation) {
  Send(1);
  backend_.push_script = {PermissionDenied("ForbiddenException: not a member")};
  ASSERT_TRUE(rec_->Push("c").ok());
  ASSERT_TRUE(rec_->GetStatus("c").stopped);
  const uint64_t seq = store_->Outbox(0)->front().seq;
  // As the CLI does it, with no engine running: a fresh handle.
  rec_.reset();
  ASSERT_TRUE(RetryFailedOperation(store_->sync_log(), seq).ok());
  EXPECT_EQ(RetryFailedOperation(store_->sync_log(), seq).code(), Code::kFailedPrecondition);
  EXPECT_EQ(RetryFailedOperation(store_->sync_log(), 999).code(), Code::kNotFound);
  Reconciler rec(
      &store_->sync_log(), &backend_, config_, [this] { return now_; }, [] { return 1; });
  EXPECT_FALSE(rec.GetStatus("c").stopped);
  ASSERT_TRUE(rec.Push("c").ok());
  EXPECT_TRUE(store_->Outbox(0)->empty());
}

TEST_F(ReconcilerTest, DiscardFailedDropsOnlyParkedOperations) {
  Send(2);
  backend_.reject_body = {"m0"};
  ASSERT_TRUE(rec_->Push("c").ok());
  auto outbox = store_->Outbox(0);
  ASSERT_EQ(outbox->size(), 1u);
  ASSERT_TRUE(rec_->DiscardFailed(outbox->front().seq).ok());
  EXPECT_TRUE(store_->Outbox(0)->empty());
  EXPECT_EQ(rec_->GetStatus("c").outbox_depth, 0u);
  Send(1);
  EXPECT_EQ(rec_->DiscardFailed(store_->Outbox(0)->front().seq).code(), Code::kFailedPrecondition)
      << "a pending operation is not discarded";
}

TEST_F(ReconcilerTest, AnEntryWaitingOutItsBackoffHoldsBackTheOnesBehindIt) {
  Send(1);
  backend_.push_script = {Unavailable("HTTP 503")};
  ASSERT_TRUE(rec_->Push("c").ok());
  const int64_t retry_at = store_->Outbox(0)->front().next_attempt_ms;
  ASSERT_GT(retry_at, now_);
  // The conversation's backoff is cleared (Resume), a new message is queued:
  // it must not overtake the first.
  ASSERT_TRUE(rec_->Resume("c").ok());
  Send(1);
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(backend_.pushed.size(), 0u);
  now_ = retry_at;
  ASSERT_TRUE(rec_->Push("c").ok());
  ASSERT_EQ(backend_.pushed.size(), 2u);
  EXPECT_EQ(store_->Get(backend_.pushed[0])->body, "m0");
}

TEST_F(ReconcilerTest, AWallClockJumpBackDoesNotStallSync) {
  Send(1);
  now_ += 86'400'000;  // the device's clock was a day ahead...
  backend_.push_script = {Unavailable("HTTP 503")};
  ASSERT_TRUE(rec_->Push("c").ok());
  now_ -= 86'400'000;  // ...and the user fixed it
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_TRUE(store_->Outbox(0)->empty()) << "the day-long wait is not honoured";
  EXPECT_LE(rec_->NextPollMs("c"), now_ + config_.idle_poll_ms);
}

TEST_F(ReconcilerTest, AMalformedRemoteOperationIsSkippedNotAStall) {
  for (int i = 0; i < 5; ++i) backend_.remote.push_back(RemoteSend(i));
  backend_.remote[2].op_id = backend_.remote[2].message_id = std::string(500, 'x');  // too long
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(store_->sync_log().GetCursor("scripted", "c").value(), "5");
  EXPECT_EQ(store_->GetConversation("c")->message_count, 4u);
  EXPECT_EQ(rec_->GetStatus("c").skipped_ops, 1u);
  EXPECT_EQ(ReadSyncStatus(store_->sync_log(), "scripted")->front().skipped_ops, 1u) << "persisted";
}

// Uploads as scripted: the next status, else done with the location set;
// under way while `under_way` is set.
class ScriptedUploader final : public AttachmentTransfers {
 public:
  Result<Progress> UploadFor(engine::Operation* op) override {
    calls++;
    if (!script.empty()) {
      Status s = script.front();
      script.pop_front();
      if (!s.ok()) return s;
    }
    if (under_way) return Progress::kUnderWay;
    for (auto& a : op->attachments) a.location = "bucket";
    return Progress::kDone;
  }
  std::deque<Status> script;
  bool under_way = false;
  int calls = 0;
};

// Sends `body` to conversation "c" of `store` with a small file ("a.pdf")
// attached; the file is written beside `dir` and removed once the store
// has it.
void SendFile(engine::Store& store, const std::string& dir, const std::string& body,
              engine::Message* sent = nullptr) {
  auto m = testing::SendWithFile(store, dir, "c", body, "a.pdf", "file bytes");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  if (sent) *sent = std::move(m).value();
}

class ReconcilerAttachmentTest : public ReconcilerTest {
 protected:
  void SendWithFile(const std::string& body) { SendFile(*store_, dir_.path(), body); }
  // Their send (TheirSend, below) merged here as pulled, its file on "bucket".
  template <typename Their>
  void MergeTheirSend(Their& their, engine::Operation* merged = nullptr) {
    engine::Operation send_op = their.store->Outbox(0)->front().op;
    for (auto& a : send_op.attachments) a.location = "bucket";
    ASSERT_TRUE(store_->sync_log().Merge("scripted", "c", std::span(&send_op, 1), "1").ok());
    if (merged != nullptr) *merged = std::move(send_op);
  }
  // A message, one with a file, another; a push, in which the first goes.
  void PushAroundAFile() {
    Send(1);
    SendWithFile("photo");
    Send(1);
    ASSERT_TRUE(rec_->Push("c").ok());
    EXPECT_EQ(backend_.pushed.size(), 1u);
  }
};

TEST_F(ReconcilerAttachmentTest, ASendGoesOnceItsAttachmentsAreUploaded) {
  ScriptedUploader uploader;
  rec_->set_attachment_transfers(&uploader);
  Send(1);
  SendWithFile("photo");
  Send(1);
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(uploader.calls, 1);
  ASSERT_EQ(backend_.pushed_ops.size(), 3u);
  ASSERT_EQ(backend_.pushed_ops[1].attachments.size(), 1u);
  EXPECT_EQ(backend_.pushed_ops[1].attachments[0].location, "bucket");
  EXPECT_EQ(backend_.pushed_ops[1].attachments[0].name, "a.pdf");
  EXPECT_TRUE(store_->Outbox(0)->empty());
}

// An upload that must wait holds back what was written after its send, as a
// transient push failure does; the earlier entries go.
TEST_F(ReconcilerAttachmentTest, AnUploadThatMustWaitHoldsBackWhatFollows) {
  ScriptedUploader uploader;
  rec_->set_attachment_transfers(&uploader);
  uploader.script = {Unavailable("S3: HTTP 503")};
  ASSERT_NO_FATAL_FAILURE(PushAroundAFile());
  auto st = rec_->GetStatus("c");
  EXPECT_EQ(st.consecutive_failures, 1u);
  EXPECT_GT(st.next_attempt_ms, now_);
  EXPECT_NE(st.last_error.find("HTTP 503"), std::string::npos);
  ASSERT_TRUE(rec_->Push("c").ok());  // not due yet
  EXPECT_EQ(uploader.calls, 1);
  now_ = st.next_attempt_ms;
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(backend_.pushed.size(), 3u);
  EXPECT_EQ(backend_.pushed_ops[1].body, "photo");
  EXPECT_EQ(rec_->GetStatus("c").consecutive_failures, 0u);
}

// An upload under way on the transfers' thread holds back its send and what
// follows it, as a failure would, but it is no failure: no backoff, no error,
// and the push goes as soon as the upload is done.
TEST_F(ReconcilerAttachmentTest, AnUploadUnderWayHoldsBackWhatFollowsWithoutAFailure) {
  ScriptedUploader uploader;
  rec_->set_attachment_transfers(&uploader);
  uploader.under_way = true;
  ASSERT_NO_FATAL_FAILURE(PushAroundAFile());
  auto st = rec_->GetStatus("c");
  EXPECT_EQ(st.consecutive_failures, 0u);
  EXPECT_EQ(st.next_attempt_ms, 0);
  EXPECT_EQ(st.last_error, "");
  auto outbox = store_->Outbox(0);
  ASSERT_EQ(outbox->size(), 2u);
  EXPECT_FALSE(outbox->front().failed);
  EXPECT_EQ(outbox->front().attempts, 0u);
  uploader.under_way = false;  // the upload ended; its wake pushes at once
  ASSERT_TRUE(rec_->Push("c").ok());
  ASSERT_EQ(backend_.pushed.size(), 3u);
  EXPECT_EQ(backend_.pushed_ops[1].body, "photo");
  EXPECT_EQ(backend_.pushed_ops[2].body, "m0");
}

// An upload that cannot succeed parks its send only; without an uploader
// the send is parked saying what to configure.
TEST_F(ReconcilerAttachmentTest, AnUploadThatCannotSucceedParksOnlyItsSend) {
  SendWithFile("photo");
  Send(1);
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(backend_.pushed.size(), 1u);
  auto outbox = store_->Outbox(0);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_TRUE(outbox->front().failed);
  EXPECT_NE(outbox->front().last_error.find("configure an S3 bucket"), std::string::npos);
  auto page = store_->Page({.conversation_id = "c"});
  EXPECT_EQ((*page)[0].state, engine::MessageState::kFailed);

  ScriptedUploader uploader;
  rec_->set_attachment_transfers(&uploader);
  uploader.script = {DataLoss("the attachment's object on this device was changed")};
  ASSERT_TRUE(store_->RetryFailed(outbox->front().seq).ok());
  ASSERT_TRUE(rec_->Push("c").ok());
  outbox = store_->Outbox(0);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_TRUE(outbox->front().failed);
  EXPECT_NE(outbox->front().last_error.find("was changed"), std::string::npos);
  ASSERT_TRUE(store_->RetryFailed(outbox->front().seq).ok());
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_TRUE(store_->Outbox(0)->empty());
  EXPECT_EQ(backend_.pushed.size(), 2u);
}

TEST(Classify, MapsCodesToDecisions) {
  EXPECT_EQ(Classify(Unavailable("")), ErrorClass::kTransient);
  EXPECT_EQ(Classify(DeadlineExceeded("")), ErrorClass::kTransient);
  EXPECT_EQ(Classify(ResourceExhausted("")), ErrorClass::kTransient);
  EXPECT_EQ(Classify(Aborted("")), ErrorClass::kTransient);
  EXPECT_EQ(Classify(Cancelled("")), ErrorClass::kTransient);
  EXPECT_EQ(Classify(Unauthenticated("")), ErrorClass::kAuth);
  EXPECT_EQ(Classify(PermissionDenied("")), ErrorClass::kPermanent);
  EXPECT_EQ(Classify(InvalidArgument("")), ErrorClass::kPermanent);
  EXPECT_EQ(Classify(TooLarge("")), ErrorClass::kPermanent);
  EXPECT_EQ(Classify(NotFound("")), ErrorClass::kPermanent);
}

}  // namespace
}  // namespace tidings::sync

namespace tidings::sync {
namespace {

using tidings::testing::Eventually;
using tidings::testing::Gate;
using tidings::testing::MemoryObjects;

// The user deletes a message with an attachment before sync pushed it.
// Expected: the send and its delete both go (or neither), nothing parked.
// On HEAD the delete freed the object, the send's upload finds no record
// (NotFound: permanent), the send is parked for a message the user
// deleted, and the delete is pushed alone: every other device keeps it
// waiting for a message that never comes.
TEST_F(ReconcilerAttachmentTest, DeletingAnUnpushedSendWithAFileParksNothing) {
  AttachmentSync uploader(&store_->sync_log(), std::make_unique<MemoryObjects>(), "bucket");
  rec_->set_attachment_transfers(&uploader);
  SendWithFile("photo");
  auto page = store_->Page({.conversation_id = "c"});
  ASSERT_EQ(page->size(), 1u);
  ASSERT_TRUE(store_->Delete((*page)[0].id).ok());
  ASSERT_TRUE(rec_->Push("c").ok());
  auto outbox = store_->Outbox(0);
  ASSERT_TRUE(outbox.ok());
  for (const auto& e : *outbox) {
    ADD_FAILURE() << "left in the outbox: kind " << static_cast<int>(e.op.kind)
                  << (e.failed ? " (parked: " : " (") << e.last_error << ")";
  }
  EXPECT_EQ(backend_.pushed_ops.size(), 2u) << "the delete went without its send";
}

// On the upload thread (a running engine's waker registered), the push
// does not wait: the send is under way, no failure. The upload's failure
// wakes the conversation and answers its next push, which backs off as a
// failure on the caller's thread would.
TEST_F(ReconcilerAttachmentTest, AnUploadThatFailsOnTheUploadThreadAnswersTheNextPush) {
  std::mutex mu;  // before the uploader: its thread's waker uses them
  std::condition_variable cv;
  std::vector<std::string> woken;
  auto objects = std::make_unique<MemoryObjects>();
  objects->put_error = Unavailable("S3 PutObject: HTTP 503");
  AttachmentSync uploader(&store_->sync_log(), std::move(objects), "bucket");
  uploader.AddUploadWaker(this, [&](const std::string& conversation_id) {
    std::lock_guard<std::mutex> lock(mu);
    woken.push_back(conversation_id);
    cv.notify_all();
  });
  rec_->set_attachment_transfers(&uploader);
  SendWithFile("photo");
  ASSERT_TRUE(rec_->Push("c").ok());
  EXPECT_EQ(rec_->GetStatus("c").consecutive_failures, 0u) << "under way is no failure";
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return !woken.empty(); }));
    EXPECT_EQ(woken, std::vector<std::string>{"c"});
  }
  ASSERT_TRUE(rec_->Push("c").ok());
  auto st = rec_->GetStatus("c");
  EXPECT_EQ(st.consecutive_failures, 1u);
  EXPECT_NE(st.last_error.find("HTTP 503"), std::string::npos) << st.last_error;
  EXPECT_GT(st.next_attempt_ms, now_);
  EXPECT_TRUE(backend_.pushed.empty());
  uploader.RemoveUploadWaker(this);
}

// A 404 from S3 (NoSuchBucket: a typo in the bucket's name; NoSuchUpload:
// the lifecycle rule aborted a paused multipart upload) is read as "the
// device's own file is gone": the healthy object is marked failed with
// "send the file again".
TEST_F(ReconcilerAttachmentTest, AServerNotFoundDoesNotBlameTheLocalFile) {
  auto objects = std::make_unique<MemoryObjects>();
  objects->put_error = NotFound("S3 PutObject: NoSuchBucket");
  AttachmentSync uploader(&store_->sync_log(), std::move(objects), "bucket-typo");
  rec_->set_attachment_transfers(&uploader);
  SendWithFile("photo");
  ASSERT_TRUE(rec_->Push("c").ok());
  auto all = store_->Attachments();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_NE(all->front().state, engine::AttachmentState::kFailed)
      << "marked failed: " << all->front().failure_reason;
  auto outbox = store_->Outbox(0);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ(outbox->front().last_error.find("no longer on this device"), std::string::npos)
      << outbox->front().last_error;
}

// Another device's send of a file: its store, and the object where S3
// would hold it once the sender uploaded it.
struct TheirSend {
  testing::TempDir dir;
  std::unique_ptr<engine::Store> store;
  std::string message_id, object;
  std::unique_ptr<MemoryObjects> objects = std::make_unique<MemoryObjects>();
};
void SendTheirFile(TheirSend* t) {
  auto opened =
      engine::Store::Open(t->dir.path(), testing::TestKey(), testing::CreateOptions("pat"));
  ASSERT_TRUE(opened.ok());
  t->store = std::move(opened).value();
  engine::Message sent;
  ASSERT_NO_FATAL_FAILURE(SendFile(*t->store, t->dir.path(), "scan", &sent));
  t->message_id = sent.id;
  t->object = sent.attachments[0].object;
  auto files = t->store->sync_log().attachment_files();
  ASSERT_TRUE(files.ok());
  auto bytes = (*files)->ReadRange(t->object, 0, sent.attachments[0].object_size);
  ASSERT_TRUE(bytes.ok());
  t->objects->objects[attachments::ObjectKey(t->object)] = *bytes;
}

// The message is deleted (a merged delete, on the sync thread) while the
// app's fetch downloads its object: the record and the partial file go,
// the download goes on and leaves a whole object file no record names,
// kept until the next open (a daemon's next restart).
TEST_F(ReconcilerAttachmentTest, AFetchRacingADeleteLeavesNoOrphanFile) {
  TheirSend their;
  ASSERT_NO_FATAL_FAILURE(SendTheirFile(&their));
  const std::string& object = their.object;
  std::unique_ptr<MemoryObjects> mem = std::move(their.objects);
  ASSERT_TRUE(their.store->Delete(their.message_id).ok());
  auto ops = their.store->Outbox(0);
  ASSERT_EQ(ops->size(), 2u);
  engine::Operation send_op = (*ops)[0].op, delete_op = (*ops)[1].op;
  for (auto& a : send_op.attachments) a.location = "bucket";
  ASSERT_TRUE(store_->sync_log().Merge("scripted", "c", std::span(&send_op, 1), "1").ok());
  bool deleted = false;
  mem->on_get = [&] {
    if (deleted) return;
    deleted = true;
    ASSERT_TRUE(store_->sync_log().Merge("scripted", "c", std::span(&delete_op, 1), "2").ok());
  };
  AttachmentSync transfers(&store_->sync_log(), std::move(mem), "bucket");
  Status fetched = transfers.Fetch(object);
  EXPECT_TRUE(deleted);
  EXPECT_EQ(store_->GetAttachment(object).status().code(), Code::kNotFound);
  size_t files = 0;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(dir_.path() + "/attachments/objects", ec)) {
    files += e.is_regular_file();
  }
  EXPECT_EQ(files, 0u) << "an object file no record names (the fetch said: " << fetched.ToString()
                       << ")";
}

// The app fetches a received file while sync uploads another (a slow
// network): the fetch does not wait for the upload.
TEST_F(ReconcilerAttachmentTest, AFetchDoesNotWaitForAnotherFilesUpload) {
  TheirSend their;
  ASSERT_NO_FATAL_FAILURE(SendTheirFile(&their));
  const std::string received = their.object;
  std::unique_ptr<MemoryObjects> mem = std::move(their.objects);
  ASSERT_NO_FATAL_FAILURE(MergeTheirSend(their));

  // This device's own file, whose upload waits on the network until released.
  Gate gate;
  mem->on_put = gate.Hook();
  AttachmentSync transfers(&store_->sync_log(), std::move(mem), "bucket");
  rec_->set_attachment_transfers(&transfers);
  SendWithFile("photo");
  const auto kWait = std::chrono::seconds(10);
  auto push = std::async(std::launch::async, [&] { return rec_->Push("c"); });
  ASSERT_TRUE(gate.AwaitSomeoneWaiting()) << "the upload never started";
  auto fetch = std::async(std::launch::async, [&] { return transfers.Fetch(received); });
  const bool fetched_meanwhile = fetch.wait_for(kWait) == std::future_status::ready;
  gate.Open();
  EXPECT_TRUE(fetched_meanwhile) << "the fetch waited for the other file's upload";
  EXPECT_TRUE(fetch.get().ok());
  EXPECT_TRUE(push.get().ok());
  EXPECT_TRUE(store_->GetAttachment(received)->held());
  EXPECT_TRUE(store_->Outbox(0)->empty()) << "the send went once its file was up";
}

// While an engine runs (a waker registered), the automatic fetch of a
// merged send's file runs on the fetch thread: AfterMerge, inside the round,
// returns while the download waits on the network, and the file arrives
// after.
TEST_F(ReconcilerAttachmentTest, AnAutomaticFetchDoesNotHoldUpTheRound) {
  TheirSend their;
  ASSERT_NO_FATAL_FAILURE(SendTheirFile(&their));
  const std::string received = their.object;
  std::unique_ptr<MemoryObjects> mem = std::move(their.objects);
  engine::Operation send_op;
  ASSERT_NO_FATAL_FAILURE(MergeTheirSend(their, &send_op));

  Gate gate;
  mem->on_get = gate.Hook();
  AttachmentSync transfers(&store_->sync_log(), std::move(mem), "bucket");
  transfers.set_auto_fetch_max_bytes(1 << 20);
  transfers.AddUploadWaker(this, [](const std::string&) {});
  const auto kWait = std::chrono::seconds(10);
  auto merged =
      std::async(std::launch::async, [&] { transfers.AfterMerge(std::span(&send_op, 1)); });
  const bool returned_meanwhile = merged.wait_for(kWait) == std::future_status::ready;
  EXPECT_TRUE(gate.AwaitSomeoneWaiting()) << "the fetch never started";
  gate.Open();
  EXPECT_TRUE(returned_meanwhile) << "AfterMerge waited for the download";
  merged.get();
  EXPECT_TRUE(Eventually([&] { return store_->GetAttachment(received)->held(); }, kWait));
  transfers.RemoveUploadWaker(this);
}

// A text too long for a backend travels as a file (SendRequest::
// body_as_attachment): the sender keeps it as the body and pushes the
// operation without it; the receiving device fetches the file as soon as
// the message is merged and makes it the body, searchable.
TEST(LongText, ATextSentAsAFileBecomesTheBodyOnTheOtherDevice) {
  testing::TempDir a_dir, b_dir;
  auto a = engine::Store::Open(a_dir.path(), testing::TestKey(), testing::CreateOptions("pat"));
  auto b = engine::Store::Open(b_dir.path(), testing::TestKey(), testing::CreateOptions("doc"));
  ASSERT_TRUE(a.ok() && b.ok());
  std::string text;
  for (int i = 0; i < 600; ++i) text += "word" + std::to_string(i) + " ";
  text += "ibuprofen";
  engine::SendRequest r{.conversation_id = "c", .body = text};
  r.body_as_attachment = true;
  auto sent = (*a)->Send(r);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_EQ(sent->body, text);
  ASSERT_EQ(sent->attachments.size(), 1u);
  EXPECT_TRUE(sent->attachments[0].body);
  EXPECT_EQ(sent->attachments[0].name, "message.txt");
  engine::Operation op = (*a)->Outbox(0)->front().op;
  EXPECT_TRUE(op.body.empty()) << "the operation goes without the text";
  // What S3 holds after the sender's upload.
  const engine::Attachment& at = op.attachments[0];
  auto mem = std::make_unique<MemoryObjects>();
  auto files = (*a)->sync_log().attachment_files();
  ASSERT_TRUE(files.ok());
  mem->objects[attachments::ObjectKey(at.object)] =
      *(*files)->ReadRange(at.object, 0, at.object_size);
  op.attachments[0].location = "bucket";

  ASSERT_TRUE((*b)->sync_log().Merge("scripted", "c", std::span(&op, 1), "1").ok());
  EXPECT_TRUE((*b)->Get(sent->id)->body.empty());
  AttachmentSync transfers(&(*b)->sync_log(), std::move(mem), "bucket");
  transfers.AfterMerge(std::span(&op, 1));  // no automatic-fetch size: the text comes anyway
  auto got = (*b)->Get(sent->id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, text);
  auto hits = (*b)->Search({.query = "ibuprofen"});
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  EXPECT_EQ(hits->total, 1u);
  // Merged again (a second pull): the body is not set twice, nothing changes.
  ASSERT_TRUE((*b)->sync_log().Merge("scripted", "c", std::span(&op, 1), "2").ok());
  transfers.AfterMerge(std::span(&op, 1));
  EXPECT_EQ((*b)->Get(sent->id)->body, text);
  auto verify = (*b)->Verify(nullptr);
  ASSERT_TRUE(verify.ok());
  EXPECT_EQ(verify->problems, 0u) << verify->details.front();
}

}  // namespace
}  // namespace tidings::sync

namespace tidings::sync {
namespace {

// ---- Newest first ----

class NewestFirstTest : public ReconcilerTest {
 protected:
  void SetUp() override {
    config_.pull_page_size = 10;
    config_.max_history_pages_per_round = 0;  // each test says how much it fills
    ReconcilerTest::SetUp();
    backend_.history = true;
    for (int i = 0; i < 45; ++i) backend_.remote.push_back(RemoteSend(i));
  }
  // Ids of the conversation's messages ("remote-<n>"), by n.
  std::vector<std::string> Ids() {
    auto page = store_->Page({.conversation_id = "c", .limit = 1000});
    EXPECT_TRUE(page.ok());
    std::vector<std::string> ids;
    for (const auto& m : page.ok() ? *page : std::vector<engine::Message>{}) ids.push_back(m.id);
    std::sort(ids.begin(), ids.end(), [](const std::string& a, const std::string& b) {
      return std::stoi(a.substr(7)) < std::stoi(b.substr(7));
    });
    return ids;
  }
  static std::vector<std::string> Expected(int from, int to) {
    std::vector<std::string> ids;
    for (int i = from; i < to; ++i) ids.push_back("remote-" + std::to_string(i));
    return ids;
  }
  std::string Gap() { return *store_->sync_log().GetGap("scripted", "c"); }
};

TEST_F(NewestFirstTest, ANeverPulledConversationStartsWithItsNewestPage) {
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(Ids(), Expected(35, 45)) << "one request: the newest page, nothing older";
  EXPECT_EQ(backend_.requests, (std::vector<std::string>{"history:", "pull:45"}))
      << "then forward from the cursor after the newest page";
  EXPECT_EQ(*store_->sync_log().GetCursor("scripted", "c"), "45");
  EXPECT_EQ(Gap(), "35");
  EXPECT_TRUE(rec_->GetStatus("c").filling_history);
  auto persisted = ReadSyncStatus(store_->sync_log(), "scripted");
  ASSERT_TRUE(persisted.ok());
  ASSERT_EQ(persisted->size(), 1u);
  EXPECT_TRUE(persisted->front().filling_history) << "what `tidings status` shows";
  EXPECT_FALSE(rec_->HasMore("c"))
      << "older history is still to fill, but with no history pages per round only on demand";
  // Pulled again: forward only (no newest page again), never older history
  // while max_history_pages_per_round is 0.
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(backend_.requests.back(), "pull:45");
  EXPECT_EQ(Gap(), "35");
}

// With no history pages per round, a sync to the end (SyncAll, the engine's
// SyncOnce) stops once forward is caught up; it used to loop forever on the
// history no round fetches.
TEST_F(NewestFirstTest, SyncAllEndsWhenHistoryFillsOnDemandOnly) {
  ASSERT_TRUE(rec_->SyncAll().ok());
  EXPECT_EQ(Ids(), Expected(35, 45));
  EXPECT_EQ(Gap(), "35");
  EXPECT_TRUE(rec_->GetStatus("c").filling_history);
  auto older = rec_->LoadOlder("c", 1);
  ASSERT_TRUE(older.ok()) << older.status().ToString();
  EXPECT_EQ(Ids(), Expected(25, 45)) << "the fill still runs when asked";
  config_.max_history_pages_per_round = 1;
  Remake();
  ASSERT_TRUE(rec_->SyncAll().ok());
  EXPECT_EQ(Ids(), Expected(0, 45)) << "with a page per round, the sync fills the rest";
  EXPECT_FALSE(rec_->HasMore("c"));
}

TEST_F(NewestFirstTest, ForwardPullsComeBeforeOlderPagesAndTheGapClosesWithNothingMissing) {
  config_.max_history_pages_per_round = 2;
  Remake();
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(backend_.requests,
            (std::vector<std::string>{"history:", "pull:45", "history:35", "history:25"}));
  EXPECT_EQ(Gap(), "15");
  for (int i = 45; i < 48; ++i) backend_.remote.push_back(RemoteSend(i));
  backend_.requests.clear();
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(backend_.requests, (std::vector<std::string>{"pull:45", "history:15", "history:5"}))
      << "what is new first, then older pages, bounded per round";
  EXPECT_EQ(Gap(), "");
  EXPECT_FALSE(rec_->GetStatus("c").filling_history);
  EXPECT_FALSE(rec_->HasMore("c"));
  EXPECT_EQ(Ids(), Expected(0, 48));
  EXPECT_EQ(store_->GetConversation("c")->message_count, 48u);
  backend_.requests.clear();
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(backend_.requests, std::vector<std::string>{"pull:48"}) << "a filled gap is done";
}

// A gap record that does not decode (damaged, or written by a newer format)
// stops neither the status list nor the fill: the fill reads the newest page
// again and goes on from it, and the history ends whole, nothing doubled.
TEST_F(NewestFirstTest, AGapRecordThatDoesNotDecodeRestartsTheFillFromTheNewestPage) {
  config_.max_history_pages_per_round = 1;
  Remake();
  ASSERT_TRUE(rec_->Pull("c").ok());
  ASSERT_EQ(Gap(), "25");
  engine::MergeTestPeer::PutGapRecord(*store_, "scripted", "c", std::string("\x02\x01x"));
  ASSERT_EQ(store_->sync_log().GetGap("scripted", "c").status().code(), Code::kDataLoss);
  auto listed = ReadSyncStatus(store_->sync_log(), "scripted");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE(listed->front().filling_history) << "it will be filled again";

  // A round that fills no page (history on demand only) goes on: forward
  // only, the record left for the next fill that fetches.
  config_.max_history_pages_per_round = 0;
  Remake();
  backend_.requests.clear();
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(backend_.requests, std::vector<std::string>{"pull:45"});
  EXPECT_TRUE(rec_->GetStatus("c").last_error.empty()) << rec_->GetStatus("c").last_error;
  EXPECT_TRUE(rec_->GetStatus("c").filling_history);
  EXPECT_EQ(store_->sync_log().GetGap("scripted", "c").status().code(), Code::kDataLoss);

  // The periodic fill: the newest page again (its gap written over the bad
  // record), then one older page, as the round allows.
  for (int i = 45; i < 47; ++i) backend_.remote.push_back(RemoteSend(i));
  config_.max_history_pages_per_round = 1;
  Remake();
  backend_.requests.clear();
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(backend_.requests, (std::vector<std::string>{"pull:45", "history:", "history:37"}));
  EXPECT_EQ(Gap(), "27");
  EXPECT_TRUE(rec_->GetStatus("c").last_error.empty()) << rec_->GetStatus("c").last_error;

  // On demand, a bad record again: the newest page, then older pages to the
  // beginning.
  engine::MergeTestPeer::PutGapRecord(*store_, "scripted", "c", std::string());
  backend_.requests.clear();
  auto fill = rec_->LoadOlder("c", 10);
  ASSERT_TRUE(fill.ok()) << fill.status().ToString();
  EXPECT_EQ(backend_.requests.front(), "history:");
  EXPECT_FALSE(fill->more);
  EXPECT_EQ(Gap(), "");
  EXPECT_EQ(Ids(), Expected(0, 47));
  EXPECT_EQ(store_->GetConversation("c")->message_count, 47u);
  auto verify = store_->Verify(nullptr);
  ASSERT_TRUE(verify.ok());
  EXPECT_EQ(verify->problems, 0u);
}

// A crash with an older page in hand writes nothing of it: the gap stays,
// the page is fetched again, and nothing is missing or doubled.
TEST_F(NewestFirstTest, ACrashBetweenPagesNeitherSkipsNorDoubles) {
  config_.max_history_pages_per_round = 3;
  Remake();
  bool crash = false;
  int history_calls = 0;
  rec_->set_cancelled([&] { return crash; });
  backend_.on_history = [&] {
    if (++history_calls == 3) crash = true;  // the second older page's answer is lost
  };
  EXPECT_EQ(rec_->Pull("c").code(), Code::kCancelled);
  EXPECT_EQ(Gap(), "25") << "the first older page is in, the second is not";
  EXPECT_EQ(Ids(), Expected(25, 45));
  crash = false;
  Remake();  // the restarted process
  backend_.on_history = nullptr;
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(Gap(), "");
  EXPECT_EQ(Ids(), Expected(0, 45));
  EXPECT_EQ(store_->GetConversation("c")->message_count, 45u);
  auto report = store_->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u);
}

// A crash with the newest page in hand: no cursor and no gap were written,
// so the next process starts newest-first again.
TEST_F(NewestFirstTest, ACrashWithTheNewestPageInHandStartsOverNewestFirst) {
  bool crash = false;
  rec_->set_cancelled([&] { return crash; });
  backend_.on_history = [&] { crash = true; };
  EXPECT_EQ(rec_->Pull("c").code(), Code::kCancelled);
  EXPECT_EQ(*store_->sync_log().GetCursor("scripted", "c"), "");
  EXPECT_EQ(Gap(), "");
  EXPECT_TRUE(Ids().empty());
  crash = false;
  backend_.on_history = nullptr;
  Remake();
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(Ids(), Expected(35, 45));
  EXPECT_EQ(Gap(), "35");
}

TEST_F(NewestFirstTest, AFailedOlderPageBacksOffAndKeepsTheGap) {
  config_.max_history_pages_per_round = 1;
  Remake();
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(Gap(), "25");
  backend_.history_error = Unavailable("HTTP 503");
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(Gap(), "25");
  const ConversationStatus st = rec_->GetStatus("c");
  EXPECT_EQ(st.consecutive_failures, 1u);
  EXPECT_GT(st.next_attempt_ms, now_);
  EXPECT_TRUE(st.filling_history);
  EXPECT_FALSE(rec_->HasMore("c")) << "waits out the backoff";
  backend_.history_error = Status::Ok();
  now_ = st.next_attempt_ms;
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(Gap(), "15");
  EXPECT_EQ(rec_->GetStatus("c").consecutive_failures, 0u);
}

TEST_F(NewestFirstTest, ABackendThatReadsOldestFirstOnlyIsPulledFromTheBeginning) {
  backend_.history = false;
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(Ids(), Expected(0, 45));
  EXPECT_EQ(Gap(), "");
  EXPECT_FALSE(rec_->GetStatus("c").filling_history);
}

TEST_F(NewestFirstTest, ConfiguredOldestFirstNeverAsksForTheNewestPage) {
  config_.newest_first = false;
  Remake();
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_EQ(backend_.requests.front(), "pull:");
  EXPECT_EQ(Ids(), Expected(0, 45));
}

TEST_F(NewestFirstTest, LoadOlderFetchesOnDemandAndSaysWhetherMoreRemains) {
  EXPECT_EQ(rec_->LoadOlder("c")->merged, 0u) << "never pulled: nothing to fill yet";
  ASSERT_TRUE(rec_->Pull("c").ok());
  auto one = rec_->LoadOlder("c");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->merged, 10u);
  EXPECT_TRUE(one->more);
  EXPECT_EQ(Ids(), Expected(25, 45));
  // Whatever the conversation's backoff: the user is waiting.
  backend_.pull_error = Unavailable("HTTP 503");
  ASSERT_TRUE(rec_->Pull("c").ok());
  ASSERT_GT(rec_->GetStatus("c").next_attempt_ms, now_);
  backend_.pull_error = Status::Ok();
  auto rest = rec_->LoadOlder("c", 5);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->merged, 25u);
  EXPECT_FALSE(rest->more);
  EXPECT_EQ(Ids(), Expected(0, 45));
  EXPECT_FALSE(rec_->LoadOlder("c")->more);
  // A backend failure is the caller's to see.
  ASSERT_TRUE(store_->sync_log().MergeAt("scripted", "c", {}, {.gap = "5"}, {}).ok());
  backend_.history_error = Unavailable("HTTP 503");
  EXPECT_EQ(rec_->LoadOlder("c").status().code(), Code::kUnavailable);
}

// A conversation filling its history whose push then fails transiently
// backs off, and its Pull is skipped by the backoff: HasMore is false while
// it waits, so SyncAll (and SyncEngine::SyncOnce) do not go round it without
// a request (a busy loop, endless with a fixed clock).
TEST_F(NewestFirstTest, APushFailureWhileFillingEndsTheRoundsThroughTheBackoff) {
  config_.max_history_pages_per_round = 1;
  Remake();
  ASSERT_TRUE(rec_->Pull("c").ok());
  ASSERT_TRUE(rec_->HasMore("c")) << "older history to fill";
  Send(1);
  backend_.push_script.push_back(Unavailable("HTTP 503"));
  ASSERT_TRUE(rec_->Push("c").ok());
  ASSERT_GT(rec_->GetStatus("c").next_attempt_ms, now_) << "backing off";
  ASSERT_TRUE(rec_->Pull("c").ok());  // skipped: the backoff
  EXPECT_FALSE(rec_->HasMore("c")) << "waits out the backoff, as a failed pull does";

  // SyncAll: a clock that ends the backoff after many reads, so the test
  // ends either way; going round without a request reads it every time.
  now_ = rec_->GetStatus("c").next_attempt_ms;  // the backoff is over
  int64_t clock_reads = 0;
  const int64_t give_up_at = 100'000;
  rec_ = std::make_unique<Reconciler>(
      &store_->sync_log(), &backend_, config_,
      [&] {
        if (++clock_reads == give_up_at) now_ += 24 * 3600 * 1000;
        return now_;
      },
      [this] { return random_; });
  ASSERT_TRUE(rec_->Pull("c").ok());  // filling again
  ASSERT_TRUE(rec_->HasMore("c"));
  backend_.push_script.push_back(Unavailable("HTTP 503"));
  const size_t batches = backend_.batches.size();
  ASSERT_TRUE(rec_->SyncAll().ok());
  EXPECT_LT(clock_reads, give_up_at)
      << "SyncAll went round a backing-off conversation " << clock_reads << " times";
  EXPECT_GT(backend_.batches.size(), batches);
}

// Parked (PermissionDenied on a push) while filling: Push and Pull return at
// once for a stopped conversation, without reading the clock or asking the
// backend, so HasMore must be false for it, or SyncAll /
// SyncEngine::SyncOnce (`tidings sync`) would go round it forever. (Not run
// through SyncAll here: with the defect it would not return.)
TEST_F(NewestFirstTest, AConversationParkedWhileFillingHasNoMore) {
  config_.max_history_pages_per_round = 1;
  Remake();
  ASSERT_TRUE(rec_->Pull("c").ok());
  ASSERT_TRUE(rec_->HasMore("c")) << "older history to fill";
  Send(1);
  backend_.push_script.push_back(PermissionDenied("AccessDeniedException"));
  ASSERT_TRUE(rec_->Push("c").ok());
  ASSERT_TRUE(rec_->GetStatus("c").stopped) << "parked";
  ASSERT_TRUE(rec_->Pull("c").ok());
  EXPECT_FALSE(rec_->HasMore("c")) << "a stopped conversation has nothing more to do now";
}

}  // namespace
}  // namespace tidings::sync
