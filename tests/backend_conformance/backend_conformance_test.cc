// The conformance suite every sync::Backend passes (backend_harness.h lists
// them): devices are real stores synced by the real Reconciler, so a case
// fails when a backend breaks what sync relies on - the same messages in the
// same order everywhere, edits, deletes, reactions and read markers carried
// over, an op id accepted once however often it is pushed, a cursor that
// resumes where it stopped, and members who join later.
//
// Every case uses its own users and conversation, so the cases can share one
// server per process. CTest runs each backend in its own process
// (--gtest_filter=*/<name>, see CMakeLists.txt).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "backend_harness.h"
#include "sync/core/reconciler.h"
#include "tests/common/pull_all.h"
#include "tests/common/same_conversation.h"
#include "tests/engine/test_util.h"

namespace tidings::conformance {
namespace {

using engine::Operation;
using tidings::testing::ExpectSameConversation;
using tidings::testing::PullAll;
using tidings::testing::TempDir;

// Moves two minutes per call, so every backoff has passed by the next round.
struct SteppingClock {
  int64_t now = 1'000'000;
  int64_t operator()() { return now += 120'000; }
};

// A device: its own encrypted store, a backend acting for its user, and the
// reconciler between them. New conversations are plaintext unless
// `end_to_end` (and the backend carries sealed logs): the plaintext cases read
// operations and conversations on the server.
class Device {
 public:
  Device(BackendHarness& harness, const TempDir& dir, const std::string& user,
         bool end_to_end = false) {
    auto opened = engine::Store::Open(dir / user, tidings::testing::TestKey(),
                                      tidings::testing::CreateOptions(user));
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    if (opened.ok()) store_ = std::move(opened).value();
    backend_ = harness.Connect(user);
    EXPECT_NE(backend_, nullptr) << "cannot make a backend for " << user;
    if (store_ && backend_) {
      sync::SyncConfig config;
      config.end_to_end_default = end_to_end;
      reconciler_ =
          std::make_unique<sync::Reconciler>(&store_->sync_log(), backend_.get(), config,
                                             std::ref(clock_), [] { return uint64_t{1}; });
    }
  }
  bool ok() const { return reconciler_ != nullptr; }
  engine::Store& store() { return *store_; }
  sync::Backend& backend() { return *backend_; }
  Status Sync() { return reconciler_->SyncAll(); }
  sync::Reconciler& reconciler() { return *reconciler_; }

 private:
  std::unique_ptr<engine::Store> store_;
  std::unique_ptr<sync::Backend> backend_;
  SteppingClock clock_;
  std::unique_ptr<sync::Reconciler> reconciler_;
};

class BackendConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto harness = Harness(GetParam());
    ASSERT_TRUE(harness.ok()) << GetParam() << ": " << harness.status().ToString();
    harness_ = *harness;
  }

  // A user of this case alone (the cases of a backend share its server):
  // "alice-TwoStoresConvergeAfterOfflineWrites".
  std::string User(const std::string& name) const {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    return name + "-" + test.substr(0, test.find('/'));  // without the "/backend" suffix
  }
  std::unique_ptr<Device> NewDevice(const std::string& name, bool end_to_end = false) {
    auto d = std::make_unique<Device>(*harness_, dir_, User(name), end_to_end);
    return d->ok() ? std::move(d) : nullptr;
  }
  // Two devices, alice's and bob's, each with the conversation of both
  // (null on a failure already reported).
  std::pair<std::unique_ptr<Device>, std::unique_ptr<Device>> AliceAndBob(const std::string& conv) {
    auto a = NewDevice("alice"), b = NewDevice("bob");
    const std::vector<std::string> members = {User("alice"), User("bob")};
    for (Device* d : {a.get(), b.get()}) {
      if (d == nullptr || !d->store().PutConversation(conv, "Visit", members).ok()) {
        ADD_FAILURE() << "cannot make the conversation on both devices";
        return {};
      }
    }
    return {std::move(a), std::move(b)};
  }
  // Syncs every device in turn, `rounds` times.
  static void SyncRounds(std::initializer_list<Device*> devices, int rounds) {
    for (int round = 0; round < rounds; ++round) {
      for (Device* d : devices) ASSERT_TRUE(d->Sync().ok()) << "round " << round;
    }
  }

  BackendHarness* harness_ = nullptr;
  TempDir dir_;
};

Result<std::vector<engine::Message>> All(engine::Store& store, const std::string& conv) {
  return store.Page({.conversation_id = conv, .limit = 1000});
}

TEST_P(BackendConformance, TwoStoresConvergeAfterOfflineWrites) {
  const std::string conv = "offline";
  auto [a, b] = AliceAndBob(conv);
  ASSERT_TRUE(a && b);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(a->store().Send({.conversation_id = conv, .body = "a" + std::to_string(i)}).ok());
    ASSERT_TRUE(b->store().Send({.conversation_id = conv, .body = "b" + std::to_string(i)}).ok());
  }
  const std::string binary = {'\x01', '\xff', '\x00', '\x80'};
  ASSERT_TRUE(a->store().Send({.conversation_id = conv, .body = binary}).ok());

  SyncRounds({a.get(), b.get()}, 3);
  ExpectSameConversation(a->store(), b->store(), conv, 11);
  EXPECT_TRUE(a->store().Outbox(0)->empty());
  EXPECT_TRUE(b->store().Outbox(0)->empty());
  auto page = All(b->store(), conv);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(std::any_of(page->begin(), page->end(), [&](const engine::Message& m) {
    return m.body == binary;
  })) << "binary bodies arrive byte for byte";
  for (const auto& m : *page) EXPECT_EQ(m.state, engine::MessageState::kSent) << m.id;
  auto listed = b->backend().ListConversations();
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_TRUE(Contains(*listed, conv));
}

TEST_P(BackendConformance, EditsDeletesReactionsAndReadMarkersConverge) {
  const std::string conv = "changes";
  auto [a, b] = AliceAndBob(conv);
  ASSERT_TRUE(a && b);
  auto typo = a->store().Send({.conversation_id = conv, .body = "typo"});
  auto oops = b->store().Send({.conversation_id = conv, .body = "oops"});
  auto kept = b->store().Send({.conversation_id = conv, .body = "kept"});
  ASSERT_TRUE(typo.ok() && oops.ok() && kept.ok());
  SyncRounds({a.get(), b.get()}, 2);

  // Each side changes what it now has from the other.
  ASSERT_TRUE(a->store().Edit(typo->id, "fixed").ok());
  ASSERT_TRUE(b->store().Delete(oops->id).ok());
  ASSERT_TRUE(b->store().React(typo->id, "ok", true).ok());
  ASSERT_TRUE(a->store().React(kept->id, "thanks", true).ok());
  ASSERT_TRUE(a->store().React(kept->id, "wow", true).ok());
  ASSERT_TRUE(a->store().React(kept->id, "wow", false).ok());
  ASSERT_TRUE(a->store().MarkRead(conv, kept->order).ok());
  ASSERT_TRUE(b->store().MarkRead(conv, typo->order).ok());
  SyncRounds({a.get(), b.get()}, 3);

  ExpectSameConversation(a->store(), b->store(), conv, 3);
  EXPECT_EQ(b->store().Get(typo->id)->body, "fixed");
  EXPECT_TRUE(a->store().Get(oops->id)->deleted);
  const auto reactions = b->store().Get(typo->id)->reactions;
  ASSERT_EQ(reactions.size(), 1u);
  EXPECT_EQ(reactions[0].user, User("bob"));
  EXPECT_EQ(reactions[0].reaction, "ok");
  const auto on_kept = b->store().Get(kept->id)->reactions;
  ASSERT_EQ(on_kept.size(), 1u) << "the removed reaction stays removed";
  EXPECT_EQ(on_kept[0].reaction, "thanks");
  auto seen_by_b = b->store().GetConversation(conv);
  ASSERT_TRUE(seen_by_b.ok());
  EXPECT_EQ(seen_by_b->read_markers[User("alice")], kept->order);
  EXPECT_EQ(seen_by_b->read_markers[User("bob")], typo->order);
  EXPECT_TRUE(a->store().Outbox(0)->empty());
  EXPECT_TRUE(b->store().Outbox(0)->empty());
}

// Sends made by hand, as an outbox holds them, so the test can push them
// twice through backends that share nothing (a process that died before it
// heard the answer, and the one that retries).
std::vector<Operation> Sends(const std::string& author, int n) {
  std::vector<Operation> ops;
  for (int i = 0; i < n; ++i) {
    Operation op;
    op.kind = engine::OpKind::kSend;
    const uint64_t ms = 1'700'000'000'000 + static_cast<uint64_t>(i);
    op.op_id = op.message_id = engine::NewMessageId(ms);
    op.author = author;
    op.at = {ms << 16, 0x5eed};
    op.body = "retry " + std::to_string(i);
    op.content_type = "text/plain";
    ops.push_back(std::move(op));
  }
  return ops;
}

// Pushes in batches the backend accepts; every acknowledgement must be OK.
std::vector<sync::PushAck> PushAll(sync::Backend& backend, const std::string& conv,
                                   std::span<const Operation> ops) {
  std::vector<sync::PushAck> acks;
  for (size_t i = 0; i < ops.size(); i += backend.max_batch()) {
    auto batch = ops.subspan(i, std::min(backend.max_batch(), ops.size() - i));
    auto pushed = backend.Push(conv, batch);
    EXPECT_TRUE(pushed.ok()) << pushed.status().ToString();
    if (!pushed.ok()) return acks;
    EXPECT_EQ(pushed->size(), batch.size());
    for (auto& ack : *pushed) {
      EXPECT_TRUE(ack.status.ok()) << ack.status.ToString();
      acks.push_back(std::move(ack));
    }
  }
  return acks;
}

engine::Conversation Conversation(const std::string& id, std::vector<std::string> members) {
  engine::Conversation c;
  c.id = id;
  c.title = "Visit";
  c.members = std::move(members);
  return c;
}

TEST_P(BackendConformance, ARetriedPushNeverDuplicates) {
  const std::string conv = "retry";
  const auto ops = Sends(User("alice"), 7);
  auto first = harness_->Connect(User("alice"));
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->EnsureConversation(Conversation(conv, {User("alice")})).ok());
  const auto acks = PushAll(*first, conv, ops);
  ASSERT_EQ(acks.size(), ops.size());

  // The client never heard: a new process retries with the same ids.
  auto second = harness_->Connect(User("alice"));
  ASSERT_NE(second, nullptr);
  const auto again = PushAll(*second, conv, ops);
  ASSERT_EQ(again.size(), ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    EXPECT_EQ(again[i].remote_id, acks[i].remote_id) << "the same remote record, " << i;
  }
  std::map<std::string, int> count;
  for (const auto& op : PullAll(*second, conv)) count[op.op_id]++;
  EXPECT_EQ(count.size(), ops.size());
  for (const auto& op : ops) EXPECT_EQ(count[op.op_id], 1) << op.op_id;
}

// Pulls every page after `cursor`; returns the op ids and moves the cursor.
std::vector<std::string> PullFrom(sync::Backend& backend, const std::string& conv,
                                  std::string* cursor) {
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    auto page = backend.Pull(conv, *cursor, 2);  // small pages: the cursor moves mid-way
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    for (const auto& op : page->ops) ids.push_back(op.op_id);
    *cursor = page->next_cursor;
    if (!page->has_more) break;
  }
  return ids;
}

std::set<std::string> IdsOf(std::span<const Operation> ops) {
  std::set<std::string> ids;
  for (const auto& op : ops) ids.insert(op.op_id);
  return ids;
}

TEST_P(BackendConformance, PullFromACursorReturnsOnlyWhatIsNew) {
  const std::string conv = "cursor";
  const auto ops = Sends(User("alice"), 8);
  const std::span<const Operation> old_ops(ops.data(), 5), new_ops(ops.data() + 5, 3);
  auto writer = harness_->Connect(User("alice"));
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->EnsureConversation(Conversation(conv, {User("alice"), User("bob")})).ok());
  ASSERT_EQ(PushAll(*writer, conv, old_ops).size(), old_ops.size());

  auto reader = harness_->Connect(User("bob"));
  ASSERT_NE(reader, nullptr);
  std::string cursor;
  const auto first = PullFrom(*reader, conv, &cursor);
  EXPECT_EQ(std::set<std::string>(first.begin(), first.end()), IdsOf(old_ops));

  ASSERT_EQ(PushAll(*writer, conv, new_ops).size(), new_ops.size());
  // A new process resumes from the persisted cursor, as after a restart.
  auto resumed = harness_->Connect(User("bob"));
  ASSERT_NE(resumed, nullptr);
  const auto next = PullFrom(*resumed, conv, &cursor);
  EXPECT_EQ(next.size(), new_ops.size()) << "nothing already pulled comes again";
  EXPECT_EQ(std::set<std::string>(next.begin(), next.end()), IdsOf(new_ops));

  EXPECT_TRUE(PullFrom(*resumed, conv, &cursor).empty()) << "nothing new";
  EXPECT_TRUE(PullFrom(*reader, conv, &cursor).empty()) << "nothing new";
}

// Newest first (Backend::PullHistory), on every backend that reads so: the
// newest page holds the newest operations; forward pulls from its cursor
// and the older pages down to the first cover the rest, each operation once,
// also with operations pushed after the newest page; a history position
// survives a new process. Then a fresh device reads it through the
// reconciler: the newest message on its first pull, the whole history after.
TEST_P(BackendConformance, NewestFirstPagesAndTheForwardCursorCoverTheLogOnce) {
  const std::string conv = "newest";
  const auto ops = Sends(User("alice"), 15);
  const std::span<const Operation> early(ops.data(), 12), late(ops.data() + 12, 3);
  auto writer = harness_->Connect(User("alice"));
  ASSERT_NE(writer, nullptr);
  const std::vector<std::string> members = {User("alice"), User("bob"), User("carol")};
  ASSERT_TRUE(writer->EnsureConversation(Conversation(conv, members)).ok());
  // One at a time, as live sends go (DynamoDB packs a batch into one item).
  for (const auto& op : early) ASSERT_EQ(PushAll(*writer, conv, std::span(&op, 1)).size(), 1u);

  auto reader = harness_->Connect(User("bob"));
  ASSERT_NE(reader, nullptr);
  auto newest = reader->PullHistory(conv, "", 4);
  if (newest.status().code() == Code::kUnimplemented) {
    GTEST_SKIP() << "the " << GetParam() << " backend reads oldest first only";
  }
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  ASSERT_FALSE(newest->forward_cursor.empty());
  ASSERT_FALSE(newest->before.empty()) << "12 operations do not fit a page of 4";
  std::map<std::string, int> seen;
  for (const auto& op : newest->ops) seen[op.op_id]++;
  EXPECT_TRUE(seen.count(early.back().op_id)) << "the newest page holds the newest operation";
  EXPECT_FALSE(seen.count(early.front().op_id)) << "and not the oldest";

  ASSERT_EQ(PushAll(*writer, conv, late).size(), late.size());
  std::string cursor = newest->forward_cursor;
  for (const auto& id : PullFrom(*reader, conv, &cursor)) seen[id]++;
  std::string before = newest->before;
  for (int pages = 0; !before.empty(); ++pages) {
    ASSERT_LT(pages, 20) << "the history never ends";
    // A new process each time: the position is all it keeps.
    auto fresh = harness_->Connect(User("bob"));
    ASSERT_NE(fresh, nullptr);
    auto older = fresh->PullHistory(conv, before, 4);
    ASSERT_TRUE(older.ok()) << older.status().ToString();
    EXPECT_TRUE(older->forward_cursor.empty()) << "only the newest page has one";
    for (const auto& op : older->ops) seen[op.op_id]++;
    before = older->before;
  }
  EXPECT_EQ(seen.size(), ops.size());
  for (const auto& op : ops) EXPECT_EQ(seen[op.op_id], 1) << op.op_id << ": " << op.body;

  auto carol = NewDevice("carol");
  ASSERT_TRUE(carol);
  ASSERT_TRUE(carol->store().PutConversation(conv, "Visit", members).ok());
  ASSERT_TRUE(carol->reconciler().Pull(conv).ok());
  EXPECT_TRUE(carol->store().Get(late.back().message_id).ok())
      << "the newest message is there after the first pull";
  for (int round = 0; round < 20 && carol->reconciler().HasMore(conv); ++round) {
    ASSERT_TRUE(carol->reconciler().Pull(conv).ok());
  }
  auto page = All(carol->store(), conv);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->size(), ops.size()) << "the whole history, once";
}

TEST_P(BackendConformance, MembersAddedLaterReadTheConversation) {
  auto a = NewDevice("alice"), c = NewDevice("carol");
  ASSERT_TRUE(a && c);
  const std::string conv = "members";
  ASSERT_TRUE(a->store().PutConversation(conv, "Visit", {User("alice"), User("bob")}).ok());
  ASSERT_TRUE(a->store().Send({.conversation_id = conv, .body = "before carol"}).ok());
  SyncRounds({a.get()}, 1);
  if (harness_->lists_by_member()) {
    auto listed = c->backend().ListConversations();
    ASSERT_TRUE(listed.ok()) << listed.status().ToString();
    EXPECT_FALSE(Contains(*listed, conv)) << "carol is not a member yet";
  }

  ASSERT_TRUE(
      a->store().PutConversation(conv, "Visit", {User("alice"), User("bob"), User("carol")}).ok());
  ASSERT_TRUE(a->store().Send({.conversation_id = conv, .body = "welcome carol"}).ok());
  SyncRounds({a.get()}, 1);
  auto listed = c->backend().ListConversations();
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_TRUE(Contains(*listed, conv)) << "carol is a member now";
  SyncRounds({c.get()}, 2);
  auto page = All(c->store(), conv);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].body, "before carol");
  EXPECT_EQ((*page)[1].body, "welcome carol");
}

// ---- End-to-end conversations (docs/security.md), on every backend that
// carries sealed logs ----

// Skips the case where the backend carries no sealed logs.
#define SKIP_WITHOUT_SEALED_LOGS(device)                                                    \
  if ((device).backend().max_frame_bytes() == 0) {                                          \
    GTEST_SKIP() << "the " << GetParam()                                                    \
                 << " backend carries no sealed logs: its conversations stay in plaintext"; \
  }

TEST_P(BackendConformance, EndToEndConversationsConverge) {
  auto a = NewDevice("alice", /*end_to_end=*/true), b = NewDevice("bob", /*end_to_end=*/true);
  ASSERT_TRUE(a && b);
  SKIP_WITHOUT_SEALED_LOGS(*a);
  const std::string conv = "sealed";
  // Only alice makes it: bob learns it from the log he was made a member of.
  ASSERT_TRUE(a->store().PutConversation(conv, "Visit", {User("alice"), User("bob")}).ok());
  auto first = a->store().Send({.conversation_id = conv, .body = "first"});
  ASSERT_TRUE(first.ok());
  SyncRounds({a.get(), b.get()}, 3);
  ASSERT_TRUE(b->store().Send({.conversation_id = conv, .body = "reply"}).ok());
  ASSERT_TRUE(b->store().React(first->id, "ok", true).ok());
  ASSERT_TRUE(a->store().Edit(first->id, "first, edited").ok());
  SyncRounds({a.get(), b.get()}, 3);

  ExpectSameConversation(a->store(), b->store(), conv, 2);
  EXPECT_EQ(b->store().Get(first->id)->body, "first, edited");
  EXPECT_EQ(a->store().Get(first->id)->reactions.size(), 1u);
  for (Device* d : {a.get(), b.get()}) {
    const auto status = d->reconciler().GetStatus(conv);
    EXPECT_TRUE(status.end_to_end);
    EXPECT_EQ(status.rejected_frames, 0u) << status.last_rejection;
    EXPECT_EQ(status.pending_frames, 0u);
    EXPECT_TRUE(d->store().Outbox(0)->empty());
  }
}

TEST_P(BackendConformance, EndToEndMembersAddedLaterReadFromTheirJoinOn) {
  auto a = NewDevice("alice", true), c = NewDevice("carol", true);
  ASSERT_TRUE(a && c);
  SKIP_WITHOUT_SEALED_LOGS(*a);
  const std::string conv = "sealed-members";
  ASSERT_TRUE(a->store().PutConversation(conv, "Visit", {User("alice"), User("bob")}).ok());
  ASSERT_TRUE(a->store().Send({.conversation_id = conv, .body = "before carol"}).ok());
  SyncRounds({a.get(), c.get()}, 2);
  auto page = All(c->store(), conv);
  EXPECT_TRUE(!page.ok() || page->empty()) << "carol is not a member yet";

  ASSERT_TRUE(
      a->store().PutConversation(conv, "Visit", {User("alice"), User("bob"), User("carol")}).ok());
  ASSERT_TRUE(a->store().Send({.conversation_id = conv, .body = "welcome carol"}).ok());
  SyncRounds({a.get(), c.get()}, 3);
  page = All(c->store(), conv);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->size(), 1u) << "new members do not read history from before they joined";
  EXPECT_EQ((*page)[0].body, "welcome carol");
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendConformance, ::testing::ValuesIn(HarnessNames()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace tidings::conformance
