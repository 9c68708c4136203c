// The merge rules (DESIGN section 4) in every delivery order, duplicates
// included: the visible state must not depend on arrival order.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <map>
#include <random>
#include <sstream>

#include "crypto/hash.h"
#include "engine/store_impl.h"
#include "engine/sync_log.h"
#include "merge_test_peer.h"
#include "test_util.h"

namespace tidings::engine {

namespace {

using testing::CreateOptions;
using testing::TempDir;
using testing::TestKey;

constexpr uint64_t kBase = uint64_t{1'700'000'000'000} << 16;

Operation Op(OpKind kind, std::string op_id, std::string author, uint64_t tick,
             std::string target = "m1") {
  Operation op;
  op.kind = kind;
  op.op_id = std::move(op_id);
  op.author = std::move(author);
  op.at = OrderKey{kBase + tick, author == "alice" ? 1u : author == "bob" ? 2u : 3u};
  op.message_id = std::move(target);
  op.server_time_ms = 1'700'000'000'000;
  return op;
}

std::vector<Operation> Scenario() {
  std::vector<Operation> ops;
  Operation send = Op(OpKind::kSend, "m1", "alice", 1);
  send.body = "original";
  ops.push_back(send);
  Operation e1 = Op(OpKind::kEdit, "e1", "alice", 5);
  e1.body = "first edit";
  ops.push_back(e1);
  Operation e2 = Op(OpKind::kEdit, "e2", "alice", 9);
  e2.body = "second edit";
  ops.push_back(e2);
  Operation intruder = Op(OpKind::kEdit, "e3", "bob", 20);  // not the sender: ignored
  intruder.body = "bob was here";
  ops.push_back(intruder);
  Operation r1 = Op(OpKind::kReact, "r1", "bob", 3);
  r1.reaction = "+1";
  ops.push_back(r1);
  Operation r2 = Op(OpKind::kUnreact, "r2", "bob", 7);
  r2.reaction = "+1";
  ops.push_back(r2);
  Operation r3 = Op(OpKind::kReact, "r3", "carol", 4);
  r3.reaction = "heart";
  ops.push_back(r3);
  Operation rm1 = Op(OpKind::kReadMarker, "rm1", "bob", 6);
  rm1.read_up_to = OrderKey{kBase + 1, 1};
  ops.push_back(rm1);
  Operation rm0 = Op(OpKind::kReadMarker, "rm0", "bob", 2);
  rm0.read_up_to = OrderKey{kBase, 1};
  ops.push_back(rm0);
  Operation send2 = Op(OpKind::kSend, "m2", "bob", 2, "m2");
  send2.body = "reply";
  ops.push_back(send2);
  return ops;
}

std::string Digest(Store& store) {
  std::ostringstream out;
  auto page = store.Page({.conversation_id = "c", .limit = 100});
  EXPECT_TRUE(page.ok());
  for (const auto& m : *page) {
    out << m.id << "|" << m.sender << "|" << m.order.ToString() << "|" << m.body << "|" << m.deleted
        << "|" << m.edited_at.ToString() << "|";
    for (const auto& r : m.reactions) out << r.user << ":" << r.reaction << ",";
    out << "\n";
  }
  auto conv = store.GetConversation("c");
  EXPECT_TRUE(conv.ok());
  out << conv->message_count << "|" << conv->last_message_id << "|";
  for (const auto& [u, k] : conv->read_markers) out << u << "=" << k.ToString() << ",";
  return out.str();
}

std::string MergeInOrder(const std::string& dir, const std::vector<Operation>& ops,
                         bool one_batch) {
  auto store = Store::Open(dir, TestKey(), CreateOptions("dave"));
  EXPECT_TRUE(store.ok());
  if (one_batch) {
    EXPECT_TRUE((*store)->sync_log().Merge("sim", "c", ops, "x").ok());
  } else {
    for (const auto& op : ops) {
      EXPECT_TRUE(
          (*store)->sync_log().Merge("sim", "c", std::span<const Operation>(&op, 1), "x").ok());
    }
  }
  return Digest(**store);
}

TEST(Merge, AnyOrderWithDuplicatesGivesTheSameState) {
  TempDir dir;
  const auto ops = Scenario();
  const std::string expected = MergeInOrder(dir / "reference", ops, false);
  EXPECT_NE(expected.find("second edit"), std::string::npos) << expected;
  EXPECT_EQ(expected.find("bob was here"), std::string::npos);
  EXPECT_NE(expected.find("carol:heart"), std::string::npos);
  EXPECT_EQ(expected.find("bob:+1"), std::string::npos);

  const int seed = 20261124;
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<Operation> order = ops;
    // Duplicates: some operations delivered twice.
    for (int d = 0; d < 3; ++d) order.push_back(ops[rng() % ops.size()]);
    std::shuffle(order.begin(), order.end(), rng);
    EXPECT_EQ(MergeInOrder(dir / ("t" + std::to_string(trial)), order, trial % 2 == 0), expected)
        << "seed " << seed << " trial " << trial;
  }
}

// A page's lookups by id are read ahead in one batch (PrefetchTargets): a
// second page that redelivers, edits and reacts to what the first stored,
// and to what it carries itself, must give the state of one-by-one merges.
TEST(Merge, ASecondPageOverStoredMessagesGivesTheSameState) {
  TempDir dir;
  const auto ops = Scenario();
  const std::string expected = MergeInOrder(dir / "reference", ops, false);
  const int seed = 20261206;
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<Operation> order = ops;
    std::shuffle(order.begin(), order.end(), rng);
    const size_t split = 1 + rng() % (order.size() - 1);
    std::vector<Operation> first(order.begin(), order.begin() + static_cast<ptrdiff_t>(split));
    std::vector<Operation> second(order.begin() + static_cast<ptrdiff_t>(split), order.end());
    for (int d = 0; d < 3; ++d) second.push_back(first[rng() % first.size()]);
    std::shuffle(second.begin(), second.end(), rng);
    auto store = Store::Open(dir / ("t" + std::to_string(trial)), TestKey(), CreateOptions("dave"));
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->sync_log().Merge("sim", "c", first, "1").ok());
    ASSERT_TRUE((*store)->sync_log().Merge("sim", "c", second, "2").ok());
    EXPECT_EQ(Digest(**store), expected) << "seed " << seed << " trial " << trial;
  }
}

// A far-ahead message is moved to server time + drift when it is merged; its
// redelivery in a later page (found by id in the database, read ahead) is
// the same message, not a second one.
TEST(Merge, ARedeliveryOfAMovedMessageInALaterPageIsADuplicate) {
  TempDir dir;
  auto store = Store::Open(dir.path(), TestKey(), CreateOptions("dave"));
  ASSERT_TRUE(store.ok());
  Operation ahead = Op(OpKind::kSend, "far", "bob", uint64_t{3'600'000} << 16, "far");
  ahead.body = "from the future";
  Operation other = Op(OpKind::kSend, "m9", "carol", 4, "m9");
  other.body = "now";
  ASSERT_TRUE(
      (*store)->sync_log().Merge("sim", "c", std::vector<Operation>{ahead, other}, "1").ok());
  Operation edit = Op(OpKind::kEdit, "e9", "bob", 8, "far");
  edit.body = "edited";
  ASSERT_TRUE(
      (*store)->sync_log().Merge("sim", "c", std::vector<Operation>{other, ahead, edit}, "2").ok());
  auto page = (*store)->Page({.conversation_id = "c", .limit = 10});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[1].id, "far");
  EXPECT_EQ((*page)[1].body, "edited");
  EXPECT_EQ((*store)->GetConversation("c")->message_count, 2u);
}

TEST(Merge, DeleteBeatsEditsInEveryOrder) {
  TempDir dir;
  auto ops = Scenario();
  ops.push_back(Op(OpKind::kDelete, "d1", "alice", 6));  // between the two edits
  std::sort(ops.begin(), ops.end(), [](auto& a, auto& b) { return a.op_id < b.op_id; });
  std::string expected;
  int n = 0;
  do {
    if (n++ % 97 != 0) continue;  // a spread of the 11! orders
    std::string got = MergeInOrder(dir / ("p" + std::to_string(n)), ops, n % 2 == 0);
    if (expected.empty()) expected = got;
    EXPECT_EQ(got, expected);
    if (n > 97 * 30) break;
  } while (std::next_permutation(ops.begin(), ops.end(),
                                 [](auto& a, auto& b) { return a.op_id < b.op_id; }));
  EXPECT_NE(expected.find("m1|alice|"), std::string::npos);
  EXPECT_EQ(expected.find("second edit"), std::string::npos) << "the tombstone erases the body";
  EXPECT_EQ(expected.find("original"), std::string::npos);
}

TEST(Merge, OperationsWaitForTheirTarget) {
  TempDir dir;
  auto store = Store::Open(dir.path(), TestKey(), CreateOptions("dave"));
  ASSERT_TRUE(store.ok());
  auto ops = Scenario();
  Operation edit = ops[2];
  ASSERT_TRUE(
      (*store)->sync_log().Merge("sim", "c", std::span<const Operation>(&edit, 1), "1").ok());
  EXPECT_EQ((*store)->Get("m1").status().code(), Code::kNotFound);
  ASSERT_TRUE(
      (*store)->sync_log().Merge("sim", "c", std::span<const Operation>(&ops[0], 1), "2").ok());
  EXPECT_EQ((*store)->Get("m1")->body, "second edit");
  auto report = (*store)->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u);
}

TEST(Merge, RemoteClockFarAheadIsOrderedAtServerTimePlusDrift) {
  TempDir dir;
  StoreOptions o = CreateOptions("dave");
  constexpr uint64_t now = 1'700'000'000'000;
  o.wall_clock_ms = [] { return now; };
  auto store = Store::Open(dir.path(), TestKey(), o);
  ASSERT_TRUE(store.ok());
  Operation skewed;
  skewed.kind = OpKind::kSend;
  skewed.message_id = skewed.op_id = "future";
  skewed.author = "eve";
  skewed.at = OrderKey{(now + 86'400'000) << 16, 5};  // a day ahead
  skewed.server_time_ms = now;
  ASSERT_TRUE(
      (*store)->sync_log().Merge("sim", "c", std::span<const Operation>(&skewed, 1), "1").ok());
  auto m = (*store)->Get("future");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->order.millis(), now + kDefaultMaxDriftMs);
  // The local clock was not dragged a day ahead.
  auto local = (*store)->Send({.conversation_id = "c", .body = "after"});
  ASSERT_TRUE(local.ok());
  EXPECT_LT(local->order.millis(), now + kDefaultMaxDriftMs + 1000);
}

// A device whose clock runs far ahead pushes a batch; the server accepts it
// in one millisecond, so every message of it is ordered at the same server
// time + drift. Messages whose ids share the bits the clamp takes from them
// must still keep their own places: none overwrites another, every replica
// orders them alike, and verify stays clean. (Found by the simulation: the
// clamp used 16 bits of the id, and a batch of 25 collided ~0.5% of the time;
// the later message overwrote the earlier one.)
TEST(Merge, FarAheadMessagesClampedToOneMillisecondKeepTheirOwnPlaces) {
  // Ids whose SHA-256 agree in their first two bytes.
  std::map<uint16_t, std::string> seen;
  std::string first, second;
  for (int i = 0; second.empty(); ++i) {
    std::string id = "clamped-" + std::to_string(i);
    auto h = crypto::Sha256(id);
    uint16_t top = static_cast<uint16_t>((h[0] << 8) | h[1]);
    auto [it, fresh] = seen.emplace(top, id);
    if (!fresh) first = it->second, second = id;
  }
  constexpr uint64_t now = 1'700'000'000'000;
  std::vector<Operation> ops;
  for (const std::string& id : {first, second}) {
    Operation op;
    op.kind = OpKind::kSend;
    op.message_id = op.op_id = id;
    op.author = "eve";
    op.at = OrderKey{(now + 86'400'000) << 16 | ops.size(), 5};  // a day ahead
    op.body = "body of " + id;
    op.server_time_ms = now;  // one batch, one server millisecond
    ops.push_back(op);
  }
  std::vector<std::vector<Message>> pages;
  for (bool reversed : {false, true}) {
    TempDir dir;
    StoreOptions o = CreateOptions("dave");
    o.wall_clock_ms = [] { return now; };
    auto store = Store::Open(dir.path(), TestKey(), o);
    ASSERT_TRUE(store.ok());
    std::vector<Operation> in = ops;
    if (reversed) std::reverse(in.begin(), in.end());
    for (const auto& op : in) {
      ASSERT_TRUE((*store)
                      ->sync_log()
                      .Merge("sim", "c", std::span<const Operation>(&op, 1), op.op_id)
                      .ok());
    }
    for (const std::string& id : {first, second}) {
      auto m = (*store)->Get(id);
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      EXPECT_EQ(m->body, "body of " + id);
      EXPECT_EQ(m->order.millis(), now + kDefaultMaxDriftMs);
    }
    auto page = (*store)->Page({.conversation_id = "c"});
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->size(), 2u);
    pages.push_back(*page);
    auto report = (*store)->Verify(nullptr);
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->problems, 0u) << (report->details.empty() ? "" : report->details[0]);
  }
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(pages[0][i].id, pages[1][i].id) << "same order whatever the arrival order";
    EXPECT_EQ(pages[0][i].order, pages[1][i].order);
  }
}

TEST(Merge, OwnMessageEchoedBackBecomesSent) {
  TempDir dir;
  auto store = Store::Open(dir.path(), TestKey(), CreateOptions("alice"));
  ASSERT_TRUE(store.ok());
  auto m = (*store)->Send({.conversation_id = "c", .body = "mine"});
  ASSERT_TRUE(m.ok());
  Operation echo = (*store)->Outbox(0)->front().op;
  echo.server_time_ms = 5;
  ASSERT_TRUE(
      (*store)->sync_log().Merge("sim", "c", std::span<const Operation>(&echo, 1), "1").ok());
  EXPECT_EQ((*store)->Get(m->id)->state, MessageState::kSent);
  EXPECT_EQ((*store)->GetConversation("c")->message_count, 1u);
}

}  // namespace
}  // namespace tidings::engine

namespace tidings::engine {
namespace {

Operation Numbered(int i) {
  Operation op =
      Op(OpKind::kSend, "n" + std::to_string(i), "bob", 100 + uint64_t(i), "n" + std::to_string(i));
  op.body = "message " + std::to_string(i);
  return op;
}

std::vector<Operation> Range(int from, int to) {
  std::vector<Operation> out;
  for (int i = from; i < to; ++i) out.push_back(Numbered(i));
  return out;
}

// Newest page with its cursor and gap, then older pages with the gap's next
// value: each in one batch, and the result is the state a full oldest-first
// merge gives.
TEST(MergeAt, NewestFirstPagesGiveTheStateOfAnOldestFirstMerge) {
  TempDir full_dir, newest_dir;
  auto full = Store::Open(full_dir.path(), TestKey(), CreateOptions("dave"));
  ASSERT_TRUE(full.ok());
  ASSERT_TRUE((*full)->sync_log().Merge("sim", "c", Range(0, 25), "25").ok());

  auto store = Store::Open(newest_dir.path(), TestKey(), CreateOptions("dave"));
  ASSERT_TRUE(store.ok());
  SyncLog& log = (*store)->sync_log();
  EXPECT_EQ(*log.GetGap("sim", "c"), "") << "never pulled: no gap";
  ASSERT_TRUE(log.MergeAt("sim", "c", Range(15, 25), {.cursor = "25", .gap = "15"}, {}).ok());
  EXPECT_EQ(*log.GetCursor("sim", "c"), "25");
  EXPECT_EQ(*log.GetGap("sim", "c"), "15");
  EXPECT_EQ((*store)->GetConversation("c")->message_count, 10u);
  ASSERT_TRUE(log.MergeAt("sim", "c", Range(5, 15), {.gap = "5", .gap_from = "15"}, {}).ok());
  EXPECT_EQ(*log.GetCursor("sim", "c"), "25") << "an older page leaves the cursor alone";
  EXPECT_EQ(*log.GetGap("sim", "c"), "5");
  // A page merged twice (a crash after the commit, before the caller knew)
  // is refused by its stale gap, and would be harmless anyway.
  EXPECT_EQ(log.MergeAt("sim", "c", Range(5, 15), {.gap = "5", .gap_from = "15"}, {}).code(),
            Code::kAborted);
  ASSERT_TRUE(log.MergeAt("sim", "c", Range(0, 5), {.gap = "", .gap_from = "5"}, {}).ok());
  EXPECT_EQ(*log.GetGap("sim", "c"), "") << "the beginning is merged: the gap is closed";
  EXPECT_EQ(Digest(**store), Digest(**full));
  auto report = (*store)->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u);
}

TEST(MergeAt, AStaleGapWritesNothingAtAll) {
  TempDir dir;
  auto store = Store::Open(dir.path(), TestKey(), CreateOptions("dave"));
  ASSERT_TRUE(store.ok());
  SyncLog& log = (*store)->sync_log();
  ASSERT_TRUE(log.MergeAt("sim", "c", Range(10, 20), {.cursor = "20", .gap = "10"}, {}).ok());
  const SyncStateWrite state{"k", "v"};
  EXPECT_EQ(
      log.MergeAt("sim", "c", Range(0, 10), {.gap = "", .gap_from = "12"}, std::span(&state, 1))
          .code(),
      Code::kAborted);
  EXPECT_EQ(*log.GetGap("sim", "c"), "10");
  EXPECT_EQ((*store)->GetConversation("c")->message_count, 10u) << "no operation of the page";
  EXPECT_EQ(*log.GetSyncState("k"), "") << "no state of the page";
  // Positions are per backend and conversation.
  EXPECT_EQ(*log.GetGap("other", "c"), "");
  EXPECT_EQ(*log.GetGap("sim", "d"), "");
  EXPECT_EQ(log.MergeAt("sim", "c", {}, {.gap = std::string(5000, 'x')}, {}).code(),
            Code::kTooLarge);
}

TEST(MergeAt, VerifyFindsAGapRecordThatDoesNotDecode) {
  TempDir dir;
  auto store = Store::Open(dir.path(), TestKey(), CreateOptions("dave"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(
      (*store)->sync_log().MergeAt("sim", "c", Range(0, 3), {.cursor = "3", .gap = "1"}, {}).ok());
  auto clean = (*store)->Verify(nullptr);
  ASSERT_TRUE(clean.ok());
  EXPECT_EQ(clean->problems, 0u);
  for (const std::string& bad : {std::string("\x02\x01x"), std::string("\x01\x00", 2),
                                 std::string("\x01\x01xy"), std::string()}) {
    MergeTestPeer::PutGapRecord(**store, "sim", "c", bad);
    auto report = (*store)->Verify(nullptr);
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->problems, 1u) << "format, empty position, trailing bytes, empty record";
    EXPECT_EQ((*store)->sync_log().GetGap("sim", "c").status().code(), Code::kDataLoss);
  }
}

}  // namespace
}  // namespace tidings::engine
