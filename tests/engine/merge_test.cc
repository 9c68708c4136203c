// The merge rules (DESIGN section 4) in every delivery order, duplicates
// included: the visible state must not depend on arrival order.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <sstream>

#include "crypto/hash.h"
#include "engine/sync_log.h"
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
