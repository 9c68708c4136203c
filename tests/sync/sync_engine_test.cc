// The production scheduler on a real thread and the real clock, against an
// in-process loopback server (the simulator's server behind a mutex): push
// right after a local write, poll for remote changes, events, prompt Stop()
// with nothing lost, auth errors surfaced, status readable from a second
// read-only handle.
#include "sync/core/sync_engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "../engine/test_util.h"
#include "common/clock.h"
#include "loopback_backend.h"
#include "memory_objects.h"
#include "sync/core/attachment_sync.h"

namespace tidings::sync {
namespace {

using namespace std::chrono_literals;

class SyncEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = engine::Store::Open(dir_ / "store", testing::TestKey(), testing::CreateOptions("me"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  void TearDown() override {
    engine_.reset();
    store_.reset();
  }
  void Make(SyncConfig config) {
    engine_ = std::make_unique<SyncEngine>(&store_->sync_log(), &backend_, config);
    ASSERT_TRUE(engine_
                    ->SetListener([this](const SyncEvent& e) {
                      std::lock_guard<std::mutex> lock(events_mu_);
                      events_.push_back(e);
                    })
                    .ok());
  }
  bool SawEvent(SyncEvent::Kind kind, const std::string& message_id,
                engine::MessageState state = engine::MessageState::kPending) {
    std::lock_guard<std::mutex> lock(events_mu_);
    for (const auto& e : events_) {
      if (e.kind != kind || e.message_id != message_id) continue;
      if (kind == SyncEvent::Kind::kMessageState && e.state != state) continue;
      return true;
    }
    return false;
  }
  bool SawKind(SyncEvent::Kind kind) {
    std::lock_guard<std::mutex> lock(events_mu_);
    for (const auto& e : events_) {
      if (e.kind == kind) return true;
    }
    return false;
  }

  testing::TempDir dir_;
  std::unique_ptr<engine::Store> store_;
  LoopbackBackend backend_;
  std::unique_ptr<SyncEngine> engine_;
  std::mutex events_mu_;
  std::vector<SyncEvent> events_;
};

TEST_F(SyncEngineTest, PushesRightAfterALocalWriteNotAtTheNextPoll) {
  SyncConfig config;
  config.active_poll_ms = config.idle_poll_ms = 3'600'000;  // polling cannot explain it
  Make(config);
  ASSERT_TRUE(store_->PutConversation("c", "chat", {"me", "them"}).ok());
  ASSERT_TRUE(engine_->Start().ok());
  EXPECT_EQ(engine_->Start().code(), Code::kFailedPrecondition);
  ASSERT_TRUE(Eventually([&] { return backend_.pulls.load() > 0; }));  // first round done
  auto m = store_->Send({.conversation_id = "c", .body = "hello"});
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(Eventually([&] { return store_->Get(m->id)->state == engine::MessageState::kSent; }))
      << "pushed on the outbox notification";
  EXPECT_EQ(backend_.Count("c", m->id), 1u);
  EXPECT_TRUE(Eventually([&] {
    return SawEvent(SyncEvent::Kind::kMessageState, m->id, engine::MessageState::kSent);
  }));
  EXPECT_TRUE(Eventually([&] { return SawKind(SyncEvent::Kind::kStatusChanged); }));
  auto start = std::chrono::steady_clock::now();
  engine_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "Stop() is prompt";
  EXPECT_FALSE(engine_->running());
}

TEST_F(SyncEngineTest, AWriteInANewConversationIsPushedAtOnceToo) {
  SyncConfig config;
  config.active_poll_ms = config.idle_poll_ms = 3'600'000;
  Make(config);
  ASSERT_TRUE(store_->PutConversation("old", "chat", {"me"}).ok());
  ASSERT_TRUE(engine_->Start().ok());
  ASSERT_TRUE(Eventually([&] { return backend_.pulls.load() > 0; }));
  auto m = store_->Send({.conversation_id = "brand-new", .body = "hi"});
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(
      Eventually([&] { return store_->Get(m->id)->state == engine::MessageState::kSent; }, 3000ms))
      << "the scheduler learns the conversation from the write";
  engine_->Stop();
}

TEST_F(SyncEngineTest, PollsRemoteChangesAndReportsThem) {
  SyncConfig config;
  config.active_poll_ms = 20;
  config.idle_poll_ms = 40;
  Make(config);
  ASSERT_TRUE(engine_->Start().ok());
  engine::Operation op;
  op.kind = engine::OpKind::kSend;
  op.op_id = op.message_id = "remote-1";
  op.conversation_id = "c";
  op.author = "them";
  op.at = {static_cast<uint64_t>(WallMs()) << 16, 42};
  op.body = "from afar";
  backend_.AddRemote(op);
  ASSERT_TRUE(Eventually([&] { return store_->Get("remote-1").ok(); }));
  EXPECT_EQ(store_->Get("remote-1")->body, "from afar");
  EXPECT_TRUE(Eventually([&] { return SawEvent(SyncEvent::Kind::kMessageAdded, "remote-1"); }));
  engine_->Stop();
  auto snapshot = engine_->Snapshot();
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].conversation_id, "c");
  EXPECT_EQ(snapshot[0].cursor, "1");
  EXPECT_GT(snapshot[0].last_success_ms, 0);
}

// Stop() with a push on the wire: the thread records nothing of the answer,
// starts no other request, and Stop() returns as soon as the answer is back
// (the request itself cannot be cut short).
TEST_F(SyncEngineTest, StopDuringAPushIsPromptAndLosesNothing) {
  backend_.push_hold = 500ms;
  Make({});
  auto m = store_->Send({.conversation_id = "c", .body = "in flight"});
  ASSERT_TRUE(m.ok());
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(engine_->Start().ok());
  ASSERT_TRUE(backend_.AwaitPushOnTheWire(5s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s)
      << "Start() pushes the outbox at once, not at the first poll (2 s)";
  const int requests = backend_.requests.load();
  const auto stop_called = std::chrono::steady_clock::now();
  engine_->Stop();
  const auto stop_returned = std::chrono::steady_clock::now();
  ASSERT_LT(stop_called, backend_.answered_at())
      << "the test thread called Stop() only after the held push had returned";
  EXPECT_LT(stop_returned - backend_.answered_at(), 200ms)
      << "Stop() returns as soon as the request in flight is answered";
  EXPECT_EQ(backend_.requests.load(), requests) << "no request starts after Stop()";
  // The server has it, but the answer was abandoned: still queued, and the
  // retry does not double it.
  EXPECT_EQ(store_->Get(m->id)->state, engine::MessageState::kPending);
  EXPECT_EQ(store_->Outbox(0)->size(), 1u);
  backend_.push_hold = 0ms;
  ASSERT_TRUE(engine_->SyncOnce().ok());
  EXPECT_EQ(store_->Get(m->id)->state, engine::MessageState::kSent);
  EXPECT_EQ(backend_.Count("c", m->id), 1u);
}

// A file on a slow link must not hold up delivery: while a send's upload
// runs, the engine's rounds go on and other conversations' messages go out.
// What was written after the send in its own conversation waits for it
// (order), and both go as soon as the upload ends, with no failure recorded.
TEST_F(SyncEngineTest, AnUploadDoesNotHoldUpOtherConversations) {
  auto objects = std::make_unique<testing::MemoryObjects>();
  testing::Gate gate;
  objects->on_put = gate.Hook();
  AttachmentSync uploader(&store_->sync_log(), std::move(objects), "bucket");
  // Whatever fails below: the upload ends and the engine stops before the
  // uploader goes.
  struct Cleanup {
    std::function<void()> run;
    ~Cleanup() { run(); }
  } cleanup{[&] {
    gate.Open();
    engine_.reset();
  }};
  SyncConfig config;
  config.active_poll_ms = config.idle_poll_ms = 3'600'000;  // pushes only
  Make(config);
  ASSERT_TRUE(engine_->SetAttachmentTransfers(&uploader).ok());
  ASSERT_TRUE(store_->PutConversation("c", "files", {"me", "them"}).ok());
  ASSERT_TRUE(store_->PutConversation("d", "chat", {"me", "them"}).ok());
  ASSERT_TRUE(engine_->Start().ok());

  auto scan = tidings::testing::SendWithFile(*store_, dir_.path(), "c", "the scan");
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  auto after = store_->Send({.conversation_id = "c", .body = "after the scan"});
  ASSERT_TRUE(after.ok());
  ASSERT_TRUE(gate.AwaitSomeoneWaiting());

  auto meanwhile = store_->Send({.conversation_id = "d", .body = "meanwhile"});
  ASSERT_TRUE(meanwhile.ok());
  auto state = [&](const std::string& id) { return store_->Get(id)->state; };
  EXPECT_TRUE(Eventually([&] { return state(meanwhile->id) == engine::MessageState::kSent; }))
      << "another conversation's message waited for the upload";
  EXPECT_EQ(state(scan->id), engine::MessageState::kPending);
  EXPECT_EQ(state(after->id), engine::MessageState::kPending) << "it went before the scan";
  EXPECT_EQ(backend_.Count("c", after->id), 0u);

  gate.Open();
  EXPECT_TRUE(Eventually([&] { return state(after->id) == engine::MessageState::kSent; }));
  EXPECT_EQ(state(scan->id), engine::MessageState::kSent);
  EXPECT_EQ(backend_.Count("c", scan->id), 1u);
  auto files = store_->Attachments();
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ(files->front().state, engine::AttachmentState::kSent);
  EXPECT_EQ(files->front().location, "bucket");
  for (const auto& st : engine_->Snapshot()) {
    EXPECT_EQ(st.consecutive_failures, 0u) << st.conversation_id << ": " << st.last_error;
  }
}

TEST_F(SyncEngineTest, AuthErrorStopsTheThreadAndIsVisibleToOtherReaders) {
  backend_.SetFailure(Unauthenticated("ExpiredTokenException: token expired"));
  Make({});
  ASSERT_TRUE(store_->Send({.conversation_id = "c", .body = "secret-body-text"}).ok());
  ASSERT_TRUE(engine_->Start().ok());
  ASSERT_TRUE(Eventually([&] { return engine_->last_error().code() == Code::kUnauthenticated; }));
  EXPECT_TRUE(Eventually([&] { return SawKind(SyncEvent::Kind::kAuthError); }));
  const int pushes = backend_.pushes.load();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(backend_.pushes.load(), pushes) << "stopped: no retry storm with bad credentials";
  EXPECT_TRUE(engine_->running()) << "until the app calls Stop()";

  // Another handle (what `tidings status` opens) sees the persisted status.
  engine::StoreOptions ro;
  ro.read_only = true;
  auto reader = engine::Store::Open(dir_ / "store", testing::TestKey(), ro);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto status = ReadSyncStatus((*reader)->sync_log(), "loop");
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  ASSERT_EQ(status->size(), 1u);
  EXPECT_NE(status->front().last_error.find("UNAUTHENTICATED"), std::string::npos);
  EXPECT_EQ(status->front().outbox_depth, 1u);
  EXPECT_EQ(status->front().last_error.find("secret-body-text"), std::string::npos);

  engine_->Stop();
  backend_.SetFailure(Status::Ok());
  ASSERT_TRUE(engine_->Start().ok()) << "restart with fresh credentials";
  ASSERT_TRUE(Eventually([&] { return store_->Outbox(0)->empty(); }));
  EXPECT_TRUE(engine_->last_error().ok());
}

TEST_F(SyncEngineTest, RetryFailedWhileRunningPushesAgain) {
  Make({});
  ASSERT_TRUE(store_->Send({.conversation_id = "c", .body = "x"}).ok());
  backend_.SetFailure(InvalidArgument("ValidationException"));
  ASSERT_TRUE(engine_->Start().ok());
  ASSERT_TRUE(Eventually([&] {
    auto o = store_->Outbox(0);
    return o.ok() && o->size() == 1 && o->front().failed;
  }));
  backend_.SetFailure(Status::Ok());
  const uint64_t seq = store_->Outbox(0)->front().seq;
  ASSERT_TRUE(engine_->RetryFailed(seq).ok());
  ASSERT_TRUE(Eventually([&] { return store_->Outbox(0)->empty(); }));
  EXPECT_EQ(engine_->RetryFailed(seq).code(), Code::kNotFound);
  engine_->Stop();
}

TEST_F(SyncEngineTest, SyncOnceIsRefusedWhileTheThreadRuns) {
  Make({});
  ASSERT_TRUE(engine_->Start().ok());
  EXPECT_EQ(engine_->SyncOnce().code(), Code::kFailedPrecondition);
  EXPECT_EQ(engine_->SetListener(nullptr).code(), Code::kFailedPrecondition);
  engine_->Stop();
  engine_->Stop();  // idempotent
  EXPECT_TRUE(engine_->SyncOnce().ok());
}

TEST_F(SyncEngineTest, EnginesComeAndGoWhileAnotherThreadWrites) {
  // Store listeners may still be running on the writer's thread after
  // Unsubscribe: destroying the engine must not leave them a dangling engine
  // (ASan catches it if it does).
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; !done; ++i) {
      if (!store_->Send({.conversation_id = "c", .body = std::to_string(i)}).ok()) return;
    }
  });
  for (int i = 0; i < 20; ++i) {
    auto engine = std::make_unique<SyncEngine>(&store_->sync_log(), &backend_, SyncConfig{});
    ASSERT_TRUE(engine->SetListener([](const SyncEvent&) {}).ok());
    ASSERT_TRUE(engine->Start().ok());
    std::this_thread::sleep_for(2ms);
    engine.reset();
  }
  done = true;
  writer.join();
  ASSERT_TRUE(SyncEngine(&store_->sync_log(), &backend_).SyncOnce().ok());
  EXPECT_TRUE(store_->Outbox(0)->empty());
}

// A backend that only counts (the first version of this test).
class CountingBackend final : public Backend {
 public:
  std::string_view name() const override { return "counting"; }
  size_t max_batch() const override { return 10; }
  Result<std::string> EnsureConversation(const engine::Conversation&) override {
    return std::string("r");
  }
  Result<std::vector<PushAck>> Push(const std::string&,
                                    std::span<const engine::Operation> ops) override {
    pushed += static_cast<int>(ops.size());
    std::vector<PushAck> acks(ops.size());
    for (auto& a : acks) a.server_time_ms = static_cast<uint64_t>(WallMs());
    return acks;
  }
  Result<PullPage> Pull(const std::string&, std::string_view cursor, size_t) override {
    pulls++;
    PullPage p;
    p.next_cursor = std::string(cursor);
    return p;
  }
  Result<std::vector<std::string>> ListConversations() override {
    return std::vector<std::string>{"c"};
  }
  std::atomic<int> pushed{0}, pulls{0};
};

// Deliver through one backend, persist through another (the daemon's "both"
// mode): one engine per backend on one store. An outage of the archive does
// not delay delivery, and nothing leaves the outbox until both have it.
TEST_F(SyncEngineTest, FanOutDeliversThroughOneBackendWhileTheOtherIsDown) {
  LoopbackBackend archive("archive");
  ASSERT_TRUE(store_->sync_log().SetOutboxBackends({"loop", "archive"}).ok());
  SyncConfig config;
  config.active_poll_ms = 20;
  config.idle_poll_ms = 40;
  config.base_backoff_ms = 10;
  config.max_backoff_ms = 50;
  Make(config);
  SyncEngine archiver(&store_->sync_log(), &archive, config);
  archive.SetFailure(Unavailable("archive down"));
  ASSERT_TRUE(engine_->Start().ok());
  ASSERT_TRUE(archiver.Start().ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    auto m = store_->Send({.conversation_id = "c", .body = "m" + std::to_string(i)});
    ASSERT_TRUE(m.ok());
    ids.push_back(m->id);
  }
  ASSERT_TRUE(Eventually([&] {
    for (const auto& id : ids) {
      if (store_->Get(id)->state != engine::MessageState::kSent) return false;
    }
    return true;
  })) << "delivered while the archive is down";
  EXPECT_EQ(store_->Outbox(0)->size(), ids.size()) << "still owed to the archive";
  EXPECT_TRUE(store_->Outbox(0, "", "loop")->empty());
  archive.SetFailure(Status::Ok());
  ASSERT_TRUE(Eventually([&] { return store_->Outbox(0)->empty(); }));
  for (const auto& id : ids) {
    EXPECT_EQ(backend_.Count("c", id), 1u);
    EXPECT_EQ(archive.Count("c", id), 1u);
    auto m = store_->Get(id);
    EXPECT_EQ(m->remote_ids.size(), 2u);
  }
  archiver.Stop();
  engine_->Stop();
}

TEST(SyncEngine, PushesRightAfterALocalWriteAndStopsPromptly) {
  testing::TempDir dir;
  auto store = engine::Store::Open(dir.path(), testing::TestKey(), testing::CreateOptions("me"));
  ASSERT_TRUE(store.ok());
  CountingBackend backend;
  SyncConfig config;
  config.active_poll_ms = 60'000;  // so only the write can trigger the push
  config.idle_poll_ms = 60'000;
  SyncEngine engine(&(*store)->sync_log(), &backend, config);
  ASSERT_TRUE(engine.Start().ok());
  EXPECT_EQ(engine.Start().code(), Code::kFailedPrecondition);
  ASSERT_TRUE(Eventually([&] { return backend.pulls.load() > 0; }, 2000ms)) << "first round";
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE((*store)->Send({.conversation_id = "c", .body = "now"}).ok());
  ASSERT_TRUE(Eventually([&] { return backend.pushed.load() == 1; }, 2000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms) << "pushed without waiting for a poll";
  ASSERT_TRUE(Eventually([&] { return (*store)->Outbox(0)->empty(); }, 2000ms));
  EXPECT_EQ((*store)->Page({.conversation_id = "c"})->front().state, engine::MessageState::kSent);

  auto s0 = std::chrono::steady_clock::now();
  engine.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - s0, 1000ms) << "stop is prompt";
  engine.Stop();  // idempotent
  EXPECT_TRUE(engine.SyncOnce().ok());
  auto status = ReadSyncStatus((*store)->sync_log(), "counting");
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 1u);
  EXPECT_GT(status->front().last_success_ms, 0);
}

}  // namespace
}  // namespace tidings::sync
