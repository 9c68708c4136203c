// Reads (engine/reads.cc): unread counts, lookups by id.
#include <gtest/gtest.h>

#include <random>

#include "engine/store_impl.h"
#include "store_test_util.h"

namespace tidings::engine {
namespace {

TEST(Store, UnreadCountsFollowTheReadMarker) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  const std::vector<Operation> ops = SendsFromBob("remote-", 5);
  ASSERT_TRUE(store->sync_log().Merge("sim", "c", ops, "cursor-5").ok());
  EXPECT_EQ(store->sync_log().GetCursor("sim", "c").value(), "cursor-5");
  EXPECT_EQ(store->GetConversation("c")->unread_count, 5u);
  ASSERT_TRUE(store->MarkRead("c", ops[2].at).ok());
  EXPECT_EQ(store->GetConversation("c")->unread_count, 2u);
  ASSERT_TRUE(store->MarkRead("c", ops[0].at).ok());  // never goes back
  EXPECT_EQ(store->GetConversation("c")->unread_count, 2u);
  // Re-merging the same page is idempotent.
  ASSERT_TRUE(store->sync_log().Merge("sim", "c", ops, "cursor-5").ok());
  EXPECT_EQ(store->GetConversation("c")->message_count, 5u);
}

// Ids from other clients (not UUIDv7) share the zero time prefix; lookups by
// id must still find each one exactly.
TEST(Store, LooksUpForeignAndLocalIdsAlike) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  const std::vector<Operation> ops = SendsFromBob("chime:", 50);
  ASSERT_TRUE(store->sync_log().Merge("sim", "c", ops, "x").ok());
  auto mine = store->Send(Msg("c", "mine"));
  ASSERT_TRUE(mine.ok());
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(store->Get("chime:" + std::to_string(i))->body, "b" + std::to_string(i));
  }
  EXPECT_EQ(store->Get(mine->id)->body, "mine");
  EXPECT_EQ(store->Get("chime:50").status().code(), Code::kNotFound);
  auto report = store->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u);
}

// Sends in order leave the stored conversation record behind (up to
// kSummaryLag messages); every reader - this writer, a cold writer, another
// process's read-only handle - still sees the summary as of the last send.
TEST(Store, ConversationSummaryIsCurrentForEveryReader) {
  TempDir dir;
  auto writer = MustOpen(dir.path());
  StoreOptions ro;
  ro.read_only = true;
  auto reader = Store::Open(dir.path(), TestKey(), ro);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_TRUE(writer->sync_log().Merge("sim", "c", SendsFromBob("bob-", 3), "x").ok());
  std::vector<std::string> ids;
  uint64_t visible = 3;
  for (int i = 0; i < 3 * static_cast<int>(kSummaryLag) + 5; ++i) {
    auto m = writer->Send(Msg(i % 2 == 0 ? "c" : "d", "m" + std::to_string(i)));
    ASSERT_TRUE(m.ok());
    if (i % 2 != 0) continue;
    ids.push_back(m->id);
    ++visible;
    if (i % 10 == 4) {  // a delete in the window the record lags behind
      ASSERT_TRUE(writer->Delete(ids[ids.size() - 2]).ok());
      --visible;
    }
    if (i % 7 != 0) continue;
    ASSERT_TRUE((*reader)->Refresh().ok());
    for (Store* s : {writer.get(), reader->get()}) {
      auto c = s->GetConversation("c");
      ASSERT_TRUE(c.ok());
      EXPECT_EQ(c->message_count, visible) << i;
      EXPECT_EQ(c->last_message_id, m->id) << i;
      EXPECT_EQ(c->last_order, m->order) << i;
      auto all = s->Conversations(0);
      ASSERT_TRUE(all.ok());
      ASSERT_EQ(all->size(), i == 0 ? 1u : 2u);
      const Conversation& listed = all->front().id == "c" ? all->front() : all->back();
      EXPECT_EQ(listed.message_count, visible) << i;
      EXPECT_EQ(listed.last_message_id, m->id) << i;
    }
  }
  const Message last = writer->Page({.conversation_id = "c", .limit = 1})->back();
  writer.reset();  // a new writer starts without the summaries in memory
  writer = MustOpen(dir.path());
  ASSERT_TRUE(writer->Send(Msg("c", "after reopen")).ok());
  ASSERT_TRUE(writer->Delete(last.id).ok());
  EXPECT_EQ(writer->GetConversation("c")->message_count, visible);
  auto report = writer->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u);
}

// The unread count as every reader should see it, counted from the messages:
// others' visible messages after alice's read marker.
uint64_t CountedUnread(Store& s, const std::string& conv) {
  auto c = s.GetConversation(conv);
  if (!c.ok()) return 0;
  OrderKey marker;
  if (auto m = c->read_markers.find("alice"); m != c->read_markers.end()) marker = m->second;
  auto page = s.Page({.conversation_id = conv, .limit = 10000});
  EXPECT_TRUE(page.ok());
  uint64_t n = 0;
  for (const auto& m : *page) n += !m.deleted && m.sender != "alice" && marker < m.order;
  return n;
}

// alice's store, its wall clock stopped at `kStoppedClock`.
constexpr uint64_t kStoppedClock = 1'700'000'000'000;
StoreOptions AliceAtAFixedTime() {
  StoreOptions o = CreateOptions("alice");
  o.wall_clock_ms = [] { return kStoppedClock; };
  return o;
}

// The unread count is kept in the conversation record (schema v6), not
// counted at read: every change that moves it - others' sends in and out of
// order, deletes (also before their message), alice's read marker from this
// device and from another one, clamps to server time, purges - keeps it
// exact, for this writer, a reopened one and a read-only handle.
TEST(Store, UnreadCountsStayExactThroughEveryChange) {
  TempDir dir;
  const StoreOptions o = AliceAtAFixedTime();
  auto store = MustOpen(dir.path(), o);
  StoreOptions ro = o;
  ro.read_only = true;
  ro.create_if_missing = false;
  auto reader = Store::Open(dir.path(), TestKey(), ro);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  std::mt19937_64 rng(20261206);
  const std::vector<std::string> convs = {"c", "d"};
  std::vector<std::pair<std::string, OrderKey>> bobs;  // conversation, order of bob's sends
  std::vector<std::string> bob_ids;
  uint64_t next = 0;
  auto bob_send = [&](const std::string& conv, uint64_t millis, uint64_t server_ms) {
    Operation op;
    op.kind = OpKind::kSend;
    op.message_id = op.op_id = "bob-" + std::to_string(next++);
    op.conversation_id = conv;
    op.author = rng() % 4 == 0 ? "carol" : "bob";
    op.at = OrderKey{millis << 16, 42};
    op.server_time_ms = server_ms;
    op.body = "b";
    return op;
  };
  // Others' clocks and the server's run hours behind alice's, so a message
  // clamped to server time lands below her own sends (a purge horizon above
  // them is another matter: retention_test.cc).
  const uint64_t server = kStoppedClock - 5 * 3'600'000;
  uint64_t clock = kStoppedClock - 10 * 3'600'000;
  for (int step = 0; step < 600; ++step) {
    const std::string& conv = convs[rng() % convs.size()];
    const int what = static_cast<int>(rng() % 10);
    std::vector<Operation> ops;
    if (what <= 2) {  // others' sends, some out of order, some far ahead
      for (int i = 0; i < 1 + static_cast<int>(rng() % 5); ++i) {
        clock += 1 + rng() % 50;
        uint64_t at = clock;
        if (rng() % 4 == 0) at = clock - rng() % 100'000;  // older than the newest
        // A clock a day ahead: clamped now, or in "d" perhaps only when the
        // send comes again with its server time (merged first from a backend
        // without one). Such a send counts as final for a purge ("c" only):
        // see retention_test.cc.
        const bool ahead = rng() % 8 == 0;
        if (ahead) at = clock + 86'400'000;
        const bool later = ahead && conv == "d" && rng() % 2 == 0;
        ops.push_back(bob_send(conv, at, later ? 0 : server));
        bob_ids.push_back(ops.back().message_id);
      }
    } else if (what == 3 && !bob_ids.empty()) {  // a send again, now with its server time
      auto m = store->Get(bob_ids[rng() % bob_ids.size()]);
      if (!m.ok()) continue;
      Operation op = bob_send(m->conversation_id, m->order.millis(), server - rng() % 10'000);
      --next;
      op.message_id = op.op_id = m->id;
      op.author = m->sender;
      ASSERT_TRUE(store->sync_log().Merge("sim", m->conversation_id, {&op, 1}, "x").ok());
    } else if (what == 4 && !bob_ids.empty()) {  // a delete, perhaps before its message
      Operation op;
      op.kind = OpKind::kDelete;
      op.message_id =
          rng() % 5 == 0 ? "bob-" + std::to_string(next + 1) : bob_ids[rng() % bob_ids.size()];
      op.op_id = "del-" + std::to_string(step);
      auto m = store->Get(op.message_id);
      op.conversation_id = m.ok() ? m->conversation_id : conv;
      op.author = m.ok() ? m->sender : "bob";
      op.at = OrderKey{(clock + 1) << 16, 42};
      ops.push_back(op);
    } else if (what == 5) {  // alice reads, here
      auto page = store->Page({.conversation_id = conv, .limit = 10000});
      if (page->empty()) continue;
      ASSERT_TRUE(store->MarkRead(conv, (*page)[rng() % page->size()].order).ok());
    } else if (what == 6) {  // alice (another device) or bob reads
      auto page = store->Page({.conversation_id = conv, .limit = 10000});
      if (page->empty()) continue;
      Operation op;
      op.kind = OpKind::kReadMarker;
      op.op_id = "read-" + std::to_string(step);
      op.conversation_id = conv;
      op.author = rng() % 2 == 0 ? "alice" : "bob";
      op.at = OrderKey{(clock + 1) << 16, 7};
      op.read_up_to = (*page)[rng() % page->size()].order;
      ops.push_back(op);
    } else if (what == 7) {  // alice sends
      ASSERT_TRUE(store->Send(Msg(conv, "a")).ok());
    } else if (what == 8 && rng() % 6 == 0) {  // a purge keeps the newest few
      ASSERT_TRUE(store->SetRetention("c", {.keep_last = 5 + rng() % 20}).ok());
      ASSERT_TRUE(store->PurgeExpired().ok());
      ASSERT_TRUE(store->SetRetention("c", {}).ok());
    } else if (what == 9 && rng() % 5 == 0) {  // a new writer, without the summaries in memory
      store.reset();
      store = MustOpen(dir.path(), o);
    }
    if (!ops.empty()) {
      ASSERT_TRUE(store->sync_log().Merge("sim", ops.front().conversation_id, ops, "x").ok());
    }
    ASSERT_TRUE((*reader)->Refresh().ok());
    for (const auto& c : convs) {
      const uint64_t counted = CountedUnread(*store, c);
      for (Store* s : {store.get(), reader->get()}) {
        auto got = s->GetConversation(c);
        if (!got.ok()) continue;
        ASSERT_EQ(got->unread_count, counted) << "step " << step << " conversation " << c;
        auto all = s->Conversations(0);
        ASSERT_TRUE(all.ok());
        for (const auto& l : *all) {
          if (l.id == c) {
            ASSERT_EQ(l.unread_count, counted) << "step " << step;
          }
        }
      }
    }
  }
  auto report = store->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u) << (report->details.empty() ? "" : report->details[0]);
}

// The two changes that move unread messages without a delete or a marker:
// a purge of messages after the marker, and a clamp to server time that
// moves a message from after the marker to before it.
TEST(Store, UnreadCountsFollowPurgesAndClamps) {
  TempDir dir;
  auto store = MustOpen(dir.path(), AliceAtAFixedTime());
  std::vector<Operation> ops = SendsFromBob("old-", 30);
  ASSERT_TRUE(store->sync_log().Merge("sim", "c", ops, "x").ok());
  ASSERT_TRUE(store->MarkRead("c", ops[4].at).ok());
  EXPECT_EQ(store->GetConversation("c")->unread_count, 25u);
  ASSERT_TRUE(store->SetRetention("c", {.keep_last = 10}).ok());
  ASSERT_TRUE(store->PurgeExpired().ok());
  EXPECT_EQ(store->GetConversation("c")->unread_count, 10u);
  EXPECT_EQ(CountedUnread(*store, "c"), 10u);

  // In "d": `read` is ordered just above where a clamp puts `ahead` (both
  // came from a backend that gave no server time, so neither moved yet).
  constexpr uint64_t server = kStoppedClock - 3'600'000;
  Operation read = SendsFromBob("read-", 1)[0], ahead = SendsFromBob("ahead-", 1)[0];
  read.at = OrderKey{(server + kDefaultMaxDriftMs + 1000) << 16, 42};
  ahead.at = OrderKey{(server + 86'400'000) << 16, 42};
  ASSERT_TRUE(store->sync_log().Merge("sim", "d", std::vector<Operation>{read, ahead}, "x").ok());
  ASSERT_TRUE(store->MarkRead("d", read.at).ok());
  EXPECT_EQ(store->GetConversation("d")->unread_count, 1u);
  ahead.server_time_ms = server;  // the send again, from a backend that gives it
  ASSERT_TRUE(store->sync_log().Merge("sim", "d", {&ahead, 1}, "y").ok());
  ASSERT_LT(store->Get("ahead-0")->order, read.at);
  EXPECT_EQ(store->GetConversation("d")->unread_count, 0u);
  EXPECT_EQ(CountedUnread(*store, "d"), 0u);
}

}  // namespace
}  // namespace tidings::engine
