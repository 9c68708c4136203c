// The scheduler with a push channel: a loopback backend whose StartRealtime
// hands the test the listener, so the test plays the WebSocket (established,
// events, lost) and a controllable clock shows what is polled and when.
#include <gtest/gtest.h>

#include "../engine/test_util.h"
#include "loopback_backend.h"
#include "sync/core/sync_engine.h"

namespace tidings::sync {
namespace {

// Events' payloads are small commands: "pull:<conv>", "typing:<conv>:<user>",
// "relist", "garbage" (AcceptEvent fails: the engine pulls everything).
class RealtimeBackend final : public LoopbackBackend {
 public:
  Status StartRealtime(RealtimeListener listener) override {
    std::lock_guard<std::mutex> lock(rt_mu_);
    listener_ = std::move(listener);
    starts++;
    return Status::Ok();
  }
  void StopRealtime() override {
    std::lock_guard<std::mutex> lock(rt_mu_);
    listener_ = nullptr;
  }
  void PokeRealtime() override { pokes++; }
  Result<EventEffect> AcceptEvent(const RealtimeEvent& e) override {
    accepted++;
    EventEffect out;
    const std::string& p = e.payload;
    if (p.starts_with("pull:")) out.pull_conversations.push_back(p.substr(5));
    if (p == "relist") out.relist = true;
    if (p == "garbage") return Unavailable("cannot interpret");
    if (p.starts_with("typing:")) {
      const size_t colon = p.find(':', 7);
      out.typing_conversation = p.substr(7, colon - 7);
      out.typing_user = p.substr(colon + 1);
    }
    return out;
  }
  Status SendTyping(const std::string& conversation_id) override {
    std::lock_guard<std::mutex> lock(rt_mu_);
    typing_sent.push_back(conversation_id);
    return Status::Ok();
  }

  // The test as the socket: false if the engine has not started the channel.
  bool Deliver(RealtimeEvent e) {
    std::lock_guard<std::mutex> lock(rt_mu_);
    if (!listener_) return false;
    listener_(std::move(e));
    return true;
  }
  bool Established() { return Deliver({.kind = RealtimeEvent::Kind::kEstablished}); }
  bool Lost() { return Deliver({.kind = RealtimeEvent::Kind::kLost, .detail = "code 1006"}); }
  bool Event(const std::string& payload) {
    return Deliver({.kind = RealtimeEvent::Kind::kEvent,
                    .type = "CREATE_CHANNEL_MESSAGE",
                    .payload = payload});
  }
  std::vector<std::string> Typing() {
    std::lock_guard<std::mutex> lock(rt_mu_);
    return typing_sent;
  }

  std::atomic<int> starts{0}, pokes{0}, accepted{0};

 private:
  std::mutex rt_mu_;
  RealtimeListener listener_;            // REQUIRES: rt_mu_
  std::vector<std::string> typing_sent;  // REQUIRES: rt_mu_
};

engine::Operation Remote(const std::string& conv, const std::string& id) {
  engine::Operation op;
  op.kind = engine::OpKind::kSend;
  op.op_id = op.message_id = id;
  op.conversation_id = conv;
  op.author = "them";
  op.at = {static_cast<uint64_t>(WallMs()) << 16, 7};
  op.body = "remote " + id;
  return op;
}

class RealtimeEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = engine::Store::Open(dir_ / "store", testing::TestKey(), testing::CreateOptions("me"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    // Short real waits (idle_poll_ms bounds every sleep of the thread), and
    // a clock the test moves: polling is due whenever the test jumps it.
    SyncConfig config;
    config.active_poll_ms = 10;
    config.idle_poll_ms = 20;
    engine_ = std::make_unique<SyncEngine>(
        &store_->sync_log(), &backend_, config, [this] { return now_.load(); },
        [] { return uint64_t{42}; });
    ASSERT_TRUE(engine_
                    ->SetListener([this](const SyncEvent& e) {
                      std::lock_guard<std::mutex> lock(events_mu_);
                      events_.push_back(e);
                    })
                    .ok());
  }
  void TearDown() override {
    engine_.reset();
    store_.reset();
  }
  // Jumps the clock an hour ahead `times` times, letting the thread run
  // between jumps: under polling every conversation is due at each jump.
  void LetHoursPass(int times) {
    for (int i = 0; i < times; ++i) {
      now_ += 3'600'000;
      std::this_thread::sleep_for(40ms);
    }
  }
  std::vector<SyncEvent> Events(SyncEvent::Kind kind) {
    std::lock_guard<std::mutex> lock(events_mu_);
    std::vector<SyncEvent> out;
    for (const auto& e : events_) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  }
  // Starts the engine with conversations a and b known remotely and waits
  // for the first (polling) round.
  void StartWithTwoConversations() {
    backend_.AddRemote(Remote("a", "a-0"));
    backend_.AddRemote(Remote("b", "b-0"));
    ASSERT_TRUE(engine_->Start().ok());
    ASSERT_TRUE(Eventually([&] { return store_->Get("a-0").ok() && store_->Get("b-0").ok(); }));
    ASSERT_EQ(backend_.starts.load(), 1) << "the channel starts with the thread";
  }

  testing::TempDir dir_;
  std::unique_ptr<engine::Store> store_;
  RealtimeBackend backend_;
  std::atomic<int64_t> now_{1'800'000'000'000};
  std::unique_ptr<SyncEngine> engine_;
  std::mutex events_mu_;
  std::vector<SyncEvent> events_;
};

TEST_F(RealtimeEngineTest, EstablishedGapFillsEveryConversationThenStopsPolling) {
  StartWithTwoConversations();
  EXPECT_FALSE(engine_->realtime().connected);
  EXPECT_TRUE(engine_->realtime().available);
  // Sent while the socket was down: only a pull from the cursor finds them.
  backend_.AddRemote(Remote("a", "a-1"));
  backend_.AddRemote(Remote("b", "b-1"));
  ASSERT_TRUE(backend_.Established());
  ASSERT_TRUE(Eventually([&] { return store_->Get("a-1").ok() && store_->Get("b-1").ok(); }))
      << "gap fill: every conversation pulled from its cursor on SESSION_ESTABLISHED";
  ASSERT_TRUE(Eventually([&] { return engine_->realtime().connected; }));
  EXPECT_FALSE(Events(SyncEvent::Kind::kRealtimeChanged).empty());

  std::this_thread::sleep_for(50ms);  // the gap-fill round is over
  const int pulls = backend_.pulls.load();
  LetHoursPass(5);
  EXPECT_EQ(backend_.pulls.load(), pulls) << "no periodic pull while the socket is healthy";

  // A local write still goes out at once.
  auto m = store_->Send({.conversation_id = "a", .body = "hello"});
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(Eventually([&] { return store_->Get(m->id)->state == engine::MessageState::kSent; }));

  ASSERT_TRUE(backend_.Lost());
  ASSERT_TRUE(Eventually([&] { return !engine_->realtime().connected; }));
  EXPECT_EQ(engine_->realtime().detail, "code 1006");
  // Reported: up, then down; not each failed retry while down.
  ASSERT_TRUE(backend_.Lost());
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(Events(SyncEvent::Kind::kRealtimeChanged).size(), 2u);
  for (int jump = 0; jump < 2; ++jump) {
    const int before = backend_.pulls.load();
    now_ += 3'600'000;
    EXPECT_TRUE(Eventually([&] { return backend_.pulls.load() >= before + 2; }))
        << "polling resumes on kLost: both conversations polled after jump " << jump;
  }
  engine_->Stop();
  EXPECT_FALSE(backend_.Established()) << "Stop() stops the channel";
}

// Uploads "on a thread of their own" as the test says: under way until the
// test calls Finish(), which marks them done and calls the engine's waker.
class HeldUploads final : public AttachmentTransfers {
 public:
  Result<Progress> UploadFor(engine::Operation* op) override {
    calls++;
    if (!done) return Progress::kUnderWay;
    for (auto& a : op->attachments) a.location = "bucket";
    return Progress::kDone;
  }
  void AddUploadWaker(const void*, UploadWaker wake) override {
    std::lock_guard<std::mutex> lock(mu);
    waker = std::move(wake);
  }
  void RemoveUploadWaker(const void*) override {
    std::lock_guard<std::mutex> lock(mu);
    waker = nullptr;
  }
  void Finish(const std::string& conversation_id) {
    done = true;
    std::lock_guard<std::mutex> lock(mu);
    if (waker) waker(conversation_id);
  }
  std::atomic<int> calls{0};
  std::atomic<bool> done{false};

 private:
  std::mutex mu;
  UploadWaker waker;  // REQUIRES: mu
};

// While the socket is healthy the schedule pushes a conversation with
// pending entries until they go. One held by an upload under way is left to
// the upload's waker instead: no push (and no outbox read) per wake for the
// whole upload.
TEST_F(RealtimeEngineTest, AConversationHeldByAnUploadWaitsForItsWaker) {
  HeldUploads uploads;
  ASSERT_TRUE(engine_->SetAttachmentTransfers(&uploads).ok());
  StartWithTwoConversations();
  ASSERT_TRUE(backend_.Established());
  ASSERT_TRUE(Eventually([&] { return engine_->realtime().connected; }));
  auto scan = tidings::testing::SendWithFile(*store_, dir_.path(), "a", "the scan");
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_TRUE(Eventually([&] { return uploads.calls.load() > 0; }));
  LetHoursPass(3);  // anything the schedule would push is due
  EXPECT_EQ(uploads.calls.load(), 1) << "pushed again while the upload was under way";
  uploads.Finish("a");
  EXPECT_TRUE(
      Eventually([&] { return store_->Get(scan->id)->state == engine::MessageState::kSent; }));
  engine_->Stop();
}

TEST_F(RealtimeEngineTest, AChannelThatNeverComesUpIsReportedOnce) {
  StartWithTwoConversations();
  ASSERT_TRUE(backend_.Lost());
  ASSERT_TRUE(Eventually([&] { return engine_->realtime().detail == "code 1006"; }));
  ASSERT_TRUE(backend_.Lost());
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(Events(SyncEvent::Kind::kRealtimeChanged).size(), 1u);
  EXPECT_FALSE(engine_->realtime().connected);
  engine_->Stop();
}

TEST_F(RealtimeEngineTest, AnEventPullsItsConversationAtOnceAndABurstPullsOnce) {
  StartWithTwoConversations();
  ASSERT_TRUE(backend_.Established());
  ASSERT_TRUE(Eventually([&] { return engine_->realtime().connected; }));
  std::this_thread::sleep_for(50ms);
  const int a_pulls = backend_.PullsOf("a"), b_pulls = backend_.PullsOf("b");

  backend_.AddRemote(Remote("a", "a-1"));
  ASSERT_TRUE(backend_.Event("pull:a"));
  ASSERT_TRUE(Eventually([&] { return store_->Get("a-1").ok(); }, 1000ms))
      << "no clock moved: only the event explains the pull";
  EXPECT_EQ(backend_.PullsOf("a"), a_pulls + 1);
  EXPECT_EQ(backend_.PullsOf("b"), b_pulls) << "a conversation no event named is not pulled";

  // A burst: the thread is busy with a slow push while ten events arrive.
  backend_.push_hold = 300ms;
  ASSERT_TRUE(store_->Send({.conversation_id = "b", .body = "slow"}).ok());
  ASSERT_TRUE(backend_.AwaitPushOnTheWire(2s));
  for (int i = 0; i < 10; ++i) {
    backend_.AddRemote(Remote("a", "burst-" + std::to_string(i)));
    ASSERT_TRUE(backend_.Event("pull:a"));
  }
  ASSERT_TRUE(Eventually([&] { return store_->Get("burst-9").ok(); }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(backend_.PullsOf("a"), a_pulls + 2) << "ten queued events, one pull";
  EXPECT_EQ(backend_.accepted.load(), 11) << "every event went through AcceptEvent";
  engine_->Stop();
}

TEST_F(RealtimeEngineTest, AnEventItCannotInterpretPullsEverything) {
  StartWithTwoConversations();
  ASSERT_TRUE(backend_.Established());
  ASSERT_TRUE(Eventually([&] { return engine_->realtime().connected; }));
  std::this_thread::sleep_for(50ms);
  backend_.AddRemote(Remote("b", "b-1"));
  ASSERT_TRUE(backend_.Event("garbage"));
  EXPECT_TRUE(Eventually([&] { return store_->Get("b-1").ok(); }, 1000ms));
  engine_->Stop();
}

TEST_F(RealtimeEngineTest, TypingIsRateLimitedAndOthersTypingIsReported) {
  EXPECT_EQ(engine_->SendTyping("a").code(), Code::kFailedPrecondition) << "not running";
  StartWithTwoConversations();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(engine_->SendTyping("a").ok());
  ASSERT_TRUE(engine_->SendTyping("b").ok());
  ASSERT_TRUE(Eventually([&] { return backend_.Typing().size() == 2; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(backend_.Typing().size(), 2u) << "one per conversation per 3 s";
  now_ += SyncEngine::kTypingIntervalMs - 1;
  ASSERT_TRUE(engine_->SendTyping("a").ok());
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(backend_.Typing().size(), 2u);
  now_ += 1;
  ASSERT_TRUE(engine_->SendTyping("a").ok());
  ASSERT_TRUE(Eventually([&] { return backend_.Typing().size() == 3; }));
  EXPECT_EQ(store_->Outbox(0)->size(), 0u) << "typing is never stored";

  ASSERT_TRUE(backend_.Established());
  ASSERT_TRUE(backend_.Event("typing:a:bob"));
  ASSERT_TRUE(Eventually([&] { return !Events(SyncEvent::Kind::kTyping).empty(); }));
  auto typing = Events(SyncEvent::Kind::kTyping);
  EXPECT_EQ(typing[0].conversation_id, "a");
  EXPECT_EQ(typing[0].user, "bob");
  engine_->Stop();
}

TEST_F(RealtimeEngineTest, PokeReconnectsTheChannelAndRetriesAtOnce) {
  StartWithTwoConversations();
  // A pull fails: the conversation backs off (the clock does not move, so
  // only a skipped backoff retries it).
  backend_.SetFailure(Unavailable("503"));
  backend_.AddRemote(Remote("a", "a-1"));
  now_ += 3'600'000;
  ASSERT_TRUE(Eventually([&] {
    return engine_->Snapshot().size() == 2 && engine_->Snapshot()[0].consecutive_failures > 0;
  }));
  backend_.SetFailure(Status::Ok());
  std::this_thread::sleep_for(60ms);
  EXPECT_FALSE(store_->Get("a-1").ok()) << "still backing off";
  engine_->Poke();
  EXPECT_EQ(backend_.pokes.load(), 1);
  EXPECT_TRUE(Eventually([&] { return store_->Get("a-1").ok(); }, 1000ms));
  engine_->Stop();
}

}  // namespace
}  // namespace tidings::sync
