// The Chime backend against the real emulator (tidings-chime-local, started
// by the test on 127.0.0.1 with an ephemeral port; SigV4 verified): boto3
// interop both ways, throttling and 5xx without duplicates, an emulator
// restart mid-pull, removal from a channel, sealed logs (frames, what boto3
// sees of them), channel squatting. Convergence is the backend conformance
// suite's (tests/backend_conformance).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "../engine/test_util.h"
#include "common/clock.h"
#include "crypto/hash.h"
#include "emulator/chime/testing/emulator_process.h"
#include "sync/chime/chime_backend.h"
#include "sync/chime/chime_json.h"
#include "sync/core/reconciler.h"
#include "tests/common/pull_all.h"
#include "tests/common/same_conversation.h"

namespace tidings::chime {
namespace {

// These tests read Tidings' plaintext mapping with boto3 (interop), so their
// conversations are in plaintext mode; sealed logs have their own tests.
sync::SyncConfig Plaintext() {
  sync::SyncConfig c;
  c.end_to_end_default = false;
  return c;
}

using chime_local::testing::EmulatorFaults;
using chime_local::testing::EmulatorOptions;
using chime_local::testing::EmulatorProcess;

const std::string kApp = "arn:aws:chime:us-east-1:123456789012:app-instance/tidings-test";
std::string UserArn(const std::string& user) { return kApp + "/user/" + user; }

class Emulator : public ::testing::Test {
 protected:
  void SetUp() override {
    auto emu = EmulatorProcess::Start(Options());
    ASSERT_TRUE(emu.ok()) << emu.status().ToString();
    emu_ = std::move(*emu);
  }
  void TearDown() override {
    if (emu_) {
      EXPECT_TRUE(emu_->Stop().ok());
    }
  }
  virtual EmulatorOptions Options() { return {}; }

  // `clock_off_ms`: this device's clock is that far off the server's.
  std::unique_ptr<ChimeBackend> Backend(const std::string& user, int64_t clock_off_ms = 0) {
    ChimeConfig c;
    if (clock_off_ms != 0) c.wall_clock_ms = [clock_off_ms] { return WallMs() + clock_off_ms; };
    c.app_instance_arn = kApp;
    c.user_arn = UserArn(user);
    c.region = "us-east-1";
    c.endpoint = emu_->endpoint();
    auto b = ChimeBackend::Create(
        c, aws::StaticCredentials({emu_->options().access_key, emu_->options().secret_key, "", 0}));
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return std::move(*b);
  }

  // Every operation on the server, read by a fresh backend from the start.
  std::vector<engine::Operation> ServerOps(const std::string& user, const std::string& conv) {
    auto b = Backend(user);
    EXPECT_TRUE(b->ListConversations().ok());
    return tidings::testing::PullAll(*b, conv, 50);
  }

  std::string Python(const std::string& user, const std::string& args) {
    // The secret through the environment: argv is visible to every user.
    ::setenv("BOTO3_CLIENT_SECRET", emu_->options().secret_key.c_str(), 1);
    std::string cmd = std::string("python3 ") + BOTO3_CLIENT + " " + emu_->endpoint() + " " +
                      emu_->options().access_key + " " + UserArn(user) + " " + args;
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    while (std::fgets(buf, sizeof(buf), p)) out += buf;
    EXPECT_EQ(::pclose(p), 0) << cmd << "\n" << out;
    return out;
  }

  std::unique_ptr<EmulatorProcess> emu_;
};

// A clock that moves two minutes per call, so every backoff has passed by
// the next round.
struct Clock {
  int64_t now = 1'000'000;
  int64_t operator()() { return now += 120'000; }
};

std::unique_ptr<engine::Store> Open(const tidings::testing::TempDir& dir, const std::string& user) {
  auto s = engine::Store::Open(dir / user, tidings::testing::TestKey(),
                               tidings::testing::CreateOptions(user));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(*s);
}

using tidings::testing::ExpectSameConversation;

TEST_F(Emulator, Boto3AndTidingsReadEachOther) {
  tidings::testing::TempDir dir;
  auto a = Open(dir, "alice");
  ASSERT_TRUE(a->PutConversation("interop", "Interop", {"alice", "carol"}).ok());
  auto mine = a->Send({.conversation_id = "interop", .body = "hello from tidings"});
  ASSERT_TRUE(mine.ok());
  auto ba = Backend("alice");
  Clock clock;
  sync::Reconciler ra(&a->sync_log(), ba.get(), Plaintext(), std::ref(clock), [] { return 1; });
  ASSERT_TRUE(ra.SyncAll().ok());
  const std::string arn = ba->DefaultChannelArn("interop");
  // carol uses boto3: she reads the Tidings message and answers.
  std::string listed = Python("carol", "list " + arn);
  EXPECT_NE(listed.find("\"Content\": \"hello from tidings\""), std::string::npos) << listed;
  EXPECT_NE(listed.find(mine->id), std::string::npos) << "the envelope carries the message id";
  std::string sent = Python("carol", "send " + arn + " 'hi from boto3'");
  ASSERT_NE(sent.find("MessageId"), std::string::npos) << sent;
  std::string chime_id = sent.substr(sent.find(": \"") + 3);
  chime_id = chime_id.substr(0, chime_id.find('"'));
  ASSERT_TRUE(ra.SyncAll().ok());
  auto theirs = a->Get("chime:" + chime_id);
  ASSERT_TRUE(theirs.ok()) << theirs.status().ToString();
  EXPECT_EQ(theirs->body, "hi from boto3");
  EXPECT_EQ(theirs->sender, "carol");
  auto page = a->Page({.conversation_id = "interop", .limit = 10});
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ(page->back().id, "chime:" + chime_id) << "ordered after, by server time";
}

TEST_F(Emulator, ThrottlingAndServerErrorsRetryWithoutDuplicates) {
  tidings::testing::TempDir dir;
  auto a = Open(dir, "alice");
  ASSERT_TRUE(a->PutConversation("faults", "Faults", {"alice"}).ok());
  auto ba = Backend("alice");
  Clock clock;
  sync::Reconciler ra(&a->sync_log(), ba.get(), Plaintext(), std::ref(clock), [] { return 7; });
  ASSERT_TRUE(ra.SyncAll().ok());  // the channel, without faults
  std::set<std::string> sent;
  for (int i = 0; i < 30; ++i) {
    auto m = a->Send({.conversation_id = "faults", .body = "m" + std::to_string(i)});
    ASSERT_TRUE(m.ok());
    sent.insert(m->id);
  }
  EmulatorFaults f;
  f.throttle = 0.2;
  f.error = 0.15;
  f.commit_then_fail = 0.15;  // applied, then a 500: the retry must not double it
  f.seed = 42;
  ASSERT_TRUE(emu_->SetFaults(f).ok());
  for (int round = 0; round < 40 && !a->Outbox(0)->empty(); ++round) {
    ASSERT_TRUE(ra.SyncAll().ok());
  }
  ASSERT_TRUE(emu_->SetFaults({}).ok());
  EXPECT_TRUE(a->Outbox(0)->empty());
  EXPECT_GT(ba->client().retries(), 0u) << "the faults were hit";
  std::map<std::string, int> count;
  for (const auto& op : ServerOps("alice", "faults")) count[op.op_id]++;
  EXPECT_EQ(count.size(), sent.size());
  for (const auto& id : sent) EXPECT_EQ(count[id], 1) << id;
  ASSERT_TRUE(ra.SyncAll().ok());
  EXPECT_EQ(a->Page({.conversation_id = "faults", .limit = 100})->size(), sent.size());
}

TEST_F(Emulator, ADeviceWhoseClockIsTwentyMinutesOffSyncs) {
  tidings::testing::TempDir dir;
  auto a = Open(dir, "alice"), b = Open(dir, "bob");
  ASSERT_TRUE(a->PutConversation("skew", "Skew", {"alice", "bob"}).ok());
  auto sent = a->Send({.conversation_id = "skew", .body = "from a slow clock"});
  ASSERT_TRUE(sent.ok());
  // alice's clock is 20 minutes slow, bob's 20 minutes fast: each first
  // request is refused as expired (or not yet current), the client takes
  // the server's time from the answer and signs again.
  auto ba = Backend("alice", -20 * 60'000), bb = Backend("bob", 20 * 60'000);
  Clock ca, cb;
  sync::Reconciler ra(&a->sync_log(), ba.get(), Plaintext(), std::ref(ca), [] { return 1; });
  sync::Reconciler rb(&b->sync_log(), bb.get(), Plaintext(), std::ref(cb), [] { return 2; });
  Status synced = ra.SyncAll();
  ASSERT_TRUE(synced.ok()) << synced.ToString();
  EXPECT_EQ(ra.GetStatus("skew").last_error, "");
  EXPECT_TRUE(a->Outbox(0)->empty());
  synced = rb.SyncAll();
  ASSERT_TRUE(synced.ok()) << synced.ToString();
  EXPECT_EQ(rb.GetStatus("skew").last_error, "");
  auto got = b->Get(sent->id);
  ASSERT_TRUE(got.ok()) << rb.GetStatus("skew").last_error;
  EXPECT_EQ(got->body, "from a slow clock");
  for (auto* backend : {ba.get(), bb.get()}) {
    EXPECT_NEAR(static_cast<double>(backend->client().ServerNowMs()), static_cast<double>(WallMs()),
                5'000)
        << "the signing clock follows the server's";
  }
}

TEST_F(Emulator, ACaughtUpPollReReadsNothingOnceTheOverlapHasPassed) {
  tidings::testing::TempDir dir;
  auto a = Open(dir, "alice"), b = Open(dir, "bob");
  ASSERT_TRUE(a->PutConversation("backlog", "Backlog", {"alice", "bob"}).ok());
  for (int i = 0; i < 120; ++i) {
    ASSERT_TRUE(a->Send({.conversation_id = "backlog", .body = "b" + std::to_string(i)}).ok());
  }
  auto ba = Backend("alice"), bb = Backend("bob");
  Clock ca, cb;
  sync::Reconciler ra(&a->sync_log(), ba.get(), Plaintext(), std::ref(ca), [] { return 1; });
  sync::Reconciler rb(&b->sync_log(), bb.get(), Plaintext(), std::ref(cb), [] { return 2; });
  ASSERT_TRUE(ra.SyncAll().ok());  // the backlog is flushed in a burst
  ASSERT_TRUE(rb.SyncAll().ok());
  EXPECT_EQ(b->Page({.conversation_id = "backlog", .limit = 200})->size(), 120u);
  // Within the overlap window a poll may read the burst again; once the
  // window has passed in server time, one listing settles it. The window is
  // measured from the Date header (whole seconds, less one), so it passes up
  // to 2 s after kOverlapMs; a further second covers the emulator's
  // CreatedTimestamps, which run ahead of its clock in a burst (one
  // millisecond apart) ...
  std::this_thread::sleep_for(std::chrono::milliseconds(kOverlapMs + 3'000));
  ASSERT_TRUE(rb.Pull("backlog").ok());
  // ... and from then on a poll is one request that reads nothing merged.
  for (int poll = 0; poll < 3; ++poll) {
    const uint64_t requests = bb->client().requests(), listed = bb->messages_listed();
    ASSERT_TRUE(rb.Pull("backlog").ok());
    EXPECT_EQ(bb->client().requests() - requests, 1u) << "poll " << poll;
    EXPECT_EQ(bb->messages_listed() - listed, 0u) << "poll " << poll;
  }
  // New messages still arrive, and only they are read.
  auto late = a->Send({.conversation_id = "backlog", .body = "after the backlog"});
  ASSERT_TRUE(late.ok());
  ASSERT_TRUE(ra.SyncAll().ok());
  const uint64_t listed = bb->messages_listed();
  ASSERT_TRUE(rb.Pull("backlog").ok());
  EXPECT_EQ(bb->messages_listed() - listed, 1u);
  EXPECT_EQ(b->Get(late->id)->body, "after the backlog");
}

// The MessageId of a boto3 "send" answer.
std::string SentId(const std::string& sent) {
  std::string id = sent.substr(sent.find(": \"") + 3);
  return id.substr(0, id.find('"'));
}

TEST_F(Emulator, AnotherClientsEditsAndRedactionsConvergeOnEveryDevice) {
  tidings::testing::TempDir dir;
  auto a = Open(dir, "alice"), b = Open(dir, "bob"), e = Open(dir, "erin");
  const std::vector<std::string> members = {"alice", "bob", "carol", "erin"};
  ASSERT_TRUE(a->PutConversation("edits", "Edits", members).ok());
  ASSERT_TRUE(a->Send({.conversation_id = "edits", .body = "from tidings"}).ok());
  auto ba = Backend("alice"), bb = Backend("bob");
  Clock ca, cb, ce;
  sync::Reconciler ra(&a->sync_log(), ba.get(), Plaintext(), std::ref(ca), [] { return 1; });
  sync::Reconciler rb(&b->sync_log(), bb.get(), Plaintext(), std::ref(cb), [] { return 2; });
  ASSERT_TRUE(ra.SyncAll().ok());
  const std::string arn = ba->DefaultChannelArn("edits");
  // carol, on another Chime client, writes three messages; alice's and
  // bob's devices pull them.
  std::vector<std::string> ids;
  for (const char* text : {"first", "secnod", "third"}) {
    ids.push_back(SentId(Python("carol", "send " + arn + " '" + text + "'")));
  }
  ASSERT_TRUE(ra.SyncAll().ok());
  ASSERT_TRUE(rb.SyncAll().ok());
  ASSERT_EQ(b->Get("chime:" + ids[1])->body, "secnod");
  // Then she fixes a typo and takes one back.
  Python("carol", "update " + arn + " " + ids[1] + " 'second'");
  Python("carol", "redact " + arn + " " + ids[2]);

  // bob's device has a socket: the events say what changed behind his
  // cursor, and his next pull merges it.
  for (const auto& [type, id] :
       {std::pair{"UPDATE_CHANNEL_MESSAGE", ids[1]}, std::pair{"REDACT_CHANNEL_MESSAGE", ids[2]}}) {
    sync::RealtimeEvent event;
    event.type = type;
    event.payload = Python("carol", "event " + arn + " " + id);
    auto effect = bb->AcceptEvent(event);
    ASSERT_TRUE(effect.ok()) << effect.status().ToString();
    EXPECT_EQ(effect->pull_conversations, std::vector<std::string>{"edits"});
  }
  ASSERT_TRUE(rb.Pull("edits").ok());
  EXPECT_EQ(b->Get("chime:" + ids[1])->body, "second");
  EXPECT_TRUE(b->Get("chime:" + ids[2])->deleted);
  // alice's device had none: its next rescan (after a reconnect, or once a
  // minute while polling) finds them.
  ASSERT_TRUE(ra.SyncAll().ok());
  EXPECT_EQ(a->Get("chime:" + ids[1])->body, "secnod") << "no rescan due yet";
  ba->RequestRescan();
  ASSERT_TRUE(ra.SyncAll().ok());
  EXPECT_EQ(a->Get("chime:" + ids[1])->body, "second");
  EXPECT_TRUE(a->Get("chime:" + ids[2])->deleted);
  // erin's device pulls for the first time afterwards.
  auto be = Backend("erin");
  sync::Reconciler re(&e->sync_log(), be.get(), Plaintext(), std::ref(ce), [] { return 3; });
  ASSERT_TRUE(re.SyncAll().ok());
  ExpectSameConversation(*a, *b, "edits", 4);
  ExpectSameConversation(*a, *e, "edits", 4);
  for (auto* store : {a.get(), b.get(), e.get()}) {
    auto edited = store->Get("chime:" + ids[1]);
    EXPECT_EQ(edited->body, "second");
    EXPECT_FALSE(edited->edited_at.IsZero()) << "the same edit everywhere";
    EXPECT_EQ(edited->edited_at, a->Get("chime:" + ids[1])->edited_at);
  }
}

TEST_F(Emulator, NativeEditsAndRedactionsSurviveARestart) {
  tidings::testing::TempDir dir;
  auto a = Open(dir, "alice");
  ASSERT_TRUE(a->PutConversation("restart", "R", {"alice", "carol"}).ok());
  auto keep = a->Send({.conversation_id = "restart", .body = "typo"});
  auto drop = a->Send({.conversation_id = "restart", .body = "oops"});
  ASSERT_TRUE(keep.ok() && drop.ok());
  Clock clock;
  {  // one process (a one-shot `tidings sync`) sends them
    auto ba = Backend("alice");
    sync::Reconciler ra(&a->sync_log(), ba.get(), Plaintext(), std::ref(clock), [] { return 1; });
    ASSERT_TRUE(ra.SyncAll().ok());
  }
  ASSERT_TRUE(a->Edit(keep->id, "fixed").ok());
  ASSERT_TRUE(a->Delete(drop->id).ok());
  // The next process edits and deletes them: natively, for carol's client.
  auto ba = Backend("alice");
  sync::Reconciler ra(&a->sync_log(), ba.get(), Plaintext(), std::ref(clock), [] { return 1; });
  ASSERT_TRUE(ra.SyncAll().ok());
  EXPECT_EQ(ba->mirror_failures(), 0u);
  std::string listed = Python("carol", "list " + ba->DefaultChannelArn("restart"));
  EXPECT_NE(listed.find("\"Content\": \"fixed\""), std::string::npos) << listed;
  EXPECT_EQ(listed.find("\"Content\": \"typo\""), std::string::npos) << listed;
  EXPECT_EQ(listed.find("oops"), std::string::npos) << listed;
  EXPECT_NE(listed.find("\"Redacted\": true"), std::string::npos) << listed;
  // And a device reading it all afresh agrees with the one that wrote it.
  auto b = Open(dir, "carol");
  auto bc = Backend("carol");
  Clock cc;
  sync::Reconciler rc(&b->sync_log(), bc.get(), Plaintext(), std::ref(cc), [] { return 2; });
  ASSERT_TRUE(rc.SyncAll().ok());
  ASSERT_TRUE(ra.SyncAll().ok());
  EXPECT_EQ(b->Get(keep->id)->body, "fixed");
  EXPECT_TRUE(b->Get(drop->id)->deleted);
  ExpectSameConversation(*a, *b, "restart", a->Page({.conversation_id = "restart"})->size());
}

TEST_F(Emulator, OtherClientsSeeNoOperationAsJson) {
  tidings::testing::TempDir dir;
  auto a = Open(dir, "alice"), b = Open(dir, "bob");
  ASSERT_TRUE(a->PutConversation("clean", "Clean", {"alice", "bob", "carol"}).ok());
  auto m = a->Send({.conversation_id = "clean", .body = "hello"});
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(a->React(m->id, "👍", true).ok());
  ASSERT_TRUE(a->React(m->id, "👍", false).ok());
  ASSERT_TRUE(a->MarkRead("clean", m->order).ok());
  ASSERT_TRUE(a->Edit(m->id, "hello, world").ok());
  auto gone = a->Send({.conversation_id = "clean", .body = "never mind"});
  ASSERT_TRUE(gone.ok());
  ASSERT_TRUE(a->Delete(gone->id).ok());
  auto ba = Backend("alice"), bb = Backend("bob");
  Clock ca, cb;
  sync::Reconciler ra(&a->sync_log(), ba.get(), Plaintext(), std::ref(ca), [] { return 1; });
  sync::Reconciler rb(&b->sync_log(), bb.get(), Plaintext(), std::ref(cb), [] { return 2; });
  ASSERT_TRUE(ra.SyncAll().ok());
  std::string listed = Python("carol", "list " + ba->DefaultChannelArn("clean"));
  EXPECT_EQ(listed.find("\"Content\": \"{"), std::string::npos) << listed;
  EXPECT_NE(listed.find("\"Content\": \"hello, world\""), std::string::npos) << listed;
  EXPECT_NE(listed.find("reacted"), std::string::npos) << listed;
  // Tidings devices still learn every operation.
  ASSERT_TRUE(rb.SyncAll().ok());
  ExpectSameConversation(*a, *b, "clean", 2);
  EXPECT_EQ(b->Get(m->id)->body, "hello, world");
  EXPECT_TRUE(b->Get(gone->id)->deleted);
}

TEST_F(Emulator, TypingIsSentNeverStoredAndRecognised) {
  auto alice = Backend("alice"), bob = Backend("bob");
  engine::Conversation c;
  c.id = "typing";
  c.members = {"alice", "bob"};
  auto arn = alice->EnsureConversation(c);
  ASSERT_TRUE(arn.ok());
  ASSERT_TRUE(alice->SendTyping("typing").ok());
  EXPECT_EQ(Python("bob", "list " + *arn), "[]\n") << "never stored";
  EXPECT_TRUE(alice->SendTyping("no-such-conversation").ok()) << "no channel: nobody to tell";
  // What bob's session receives for it.
  sync::RealtimeEvent event;
  event.type = "CREATE_CHANNEL_MESSAGE";
  event.payload =
      "{\"ChannelArn\":\"" + *arn +
      "\",\"MessageId\":\"t1\",\"Content\":\"tidings:typing\",\"Type\":\"CONTROL\","
      "\"Persistence\":\"NON_PERSISTENT\",\"CreatedTimestamp\":\"2026-12-04T23:59:00.123Z\","
      "\"Sender\":{\"Arn\":\"" +
      UserArn("alice") + "\",\"Name\":\"alice\"}}";
  auto effect = bob->AcceptEvent(event);
  ASSERT_TRUE(effect.ok()) << effect.status().ToString();
  EXPECT_EQ(effect->typing_conversation, "typing");
  EXPECT_EQ(effect->typing_user, "alice");
  EXPECT_TRUE(effect->pull_conversations.empty());
  EXPECT_TRUE(alice->AcceptEvent(event)->typing_conversation.empty()) << "not our own";
  // Channel and membership events ask for a relist; garbage is no effect.
  event.type = "CREATE_CHANNEL_MEMBERSHIP";
  EXPECT_TRUE(bob->AcceptEvent(event)->relist);
  event.type = "UPDATE_CHANNEL_MESSAGE";
  event.payload = "not json";
  auto garbage = bob->AcceptEvent(event);
  ASSERT_TRUE(garbage.ok());
  EXPECT_TRUE(garbage->pull_conversations.empty() && !garbage->relist);
}

class PersistentEmulator : public Emulator {
 protected:
  EmulatorOptions Options() override {
    EmulatorOptions o;
    o.data_dir = data_.path();
    return o;
  }
  tidings::testing::TempDir data_;
};

TEST_F(PersistentEmulator, RestartMidPullResumesFromTheCursor) {
  tidings::testing::TempDir dir;
  auto a = Open(dir, "alice"), b = Open(dir, "bob");
  ASSERT_TRUE(a->PutConversation("restart", "R", {"alice", "bob"}).ok());
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(a->Send({.conversation_id = "restart", .body = "r" + std::to_string(i)}).ok());
  }
  auto ba = Backend("alice");
  Clock ca, cb;
  sync::Reconciler ra(&a->sync_log(), ba.get(), Plaintext(), std::ref(ca), [] { return 1; });
  ASSERT_TRUE(ra.SyncAll().ok());
  // bob pulls one page of 20, then the server restarts (state from
  // --data-dir), then he goes on from his persisted cursor - with a new
  // backend, as after his own restart.
  sync::SyncConfig one_page = Plaintext();
  one_page.pull_page_size = 20;
  one_page.max_pull_pages_per_round = 1;
  {
    auto bb = Backend("bob");
    sync::Reconciler rb(&b->sync_log(), bb.get(), one_page, std::ref(cb), [] { return 1; });
    ASSERT_TRUE(bb->ListConversations().ok());
    ASSERT_TRUE(rb.Pull("restart").ok());
  }
  EXPECT_EQ(b->Page({.conversation_id = "restart", .limit = 100})->size(), 20u);
  ASSERT_TRUE(emu_->Restart().ok());
  auto bb = Backend("bob");
  sync::Reconciler rb(&b->sync_log(), bb.get(), one_page, std::ref(cb), [] { return 1; });
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(rb.SyncAll().ok());
  ExpectSameConversation(*a, *b, "restart", 60);
  std::map<std::string, int> count;
  for (const auto& op : ServerOps("alice", "restart")) count[op.op_id]++;
  EXPECT_EQ(count.size(), 60u);
  for (const auto& [id, n] : count) EXPECT_EQ(n, 1) << id;
}

TEST_F(Emulator, RemovalFromAChannelParksItAndOthersContinue) {
  tidings::testing::TempDir dir;
  auto a = Open(dir, "alice"), b = Open(dir, "bob");
  for (const char* c : {"kept", "lost"}) {
    ASSERT_TRUE(a->PutConversation(c, c, {"alice", "bob"}).ok());
    ASSERT_TRUE(a->Send({.conversation_id = c, .body = std::string("hello ") + c}).ok());
  }
  auto ba = Backend("alice"), bb = Backend("bob");
  Clock ca, cb;
  sync::Reconciler ra(&a->sync_log(), ba.get(), Plaintext(), std::ref(ca), [] { return 1; });
  sync::Reconciler rb(&b->sync_log(), bb.get(), Plaintext(), std::ref(cb), [] { return 1; });
  ASSERT_TRUE(ra.SyncAll().ok());
  ASSERT_TRUE(rb.SyncAll().ok());
  ASSERT_EQ(b->Page({.conversation_id = "lost"})->size(), 1u);
  // alice (the channel's creator) removes bob from "lost".
  const std::string lost = ba->DefaultChannelArn("lost");
  auto removed = ba->client().Call("DELETE",
                                   "/channels/" + aws::UriEncode(lost, true) + "/memberships/" +
                                       aws::UriEncode(UserArn("bob"), true),
                                   {{"x-amz-chime-bearer", UserArn("alice")}}, "");
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  auto pending = b->Send({.conversation_id = "lost", .body = "are you there?"});
  ASSERT_TRUE(pending.ok());
  ASSERT_TRUE(b->Send({.conversation_id = "kept", .body = "still here"}).ok());
  ASSERT_TRUE(rb.SyncAll().ok());
  auto st = rb.GetStatus("lost");
  EXPECT_TRUE(st.stopped);
  EXPECT_NE(st.last_error.find("PERMISSION_DENIED"), std::string::npos) << st.last_error;
  auto outbox = b->Outbox(0);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_TRUE(outbox->front().failed);
  EXPECT_NE(outbox->front().last_error.find("removed"), std::string::npos)
      << outbox->front().last_error;
  EXPECT_EQ(b->Get(pending->id)->state, engine::MessageState::kFailed);
  EXPECT_EQ(b->Get(pending->id)->body, "are you there?") << "nothing local is lost";
  EXPECT_EQ(b->Page({.conversation_id = "lost"})->size(), 2u);
  EXPECT_FALSE(rb.GetStatus("kept").stopped);
  ASSERT_TRUE(ra.SyncAll().ok());
  EXPECT_EQ(a->Page({.conversation_id = "kept"})->size(), 2u) << "the other conversation goes on";
  EXPECT_EQ(a->Page({.conversation_id = "lost"})->size(), 1u);
}

// ---- Sealed logs ----

const std::string kLog = "e0123456789abcdef0123456789abcdef";

sync::Frame MakeFrame(const std::string& id, std::string bytes) {
  sync::Frame f;
  f.id = id;
  f.bytes = std::move(bytes);
  return f;
}

// Every frame of a log, read page by page (small pages: the cursor moves).
sync::FramePage PullAllFrames(ChimeBackend& b, const std::string& log_id) {
  sync::FramePage all;
  std::string cursor;
  for (int i = 0; i < 100; ++i) {
    auto page = b.PullFrames(log_id, cursor, 2);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    if (cursor.empty()) {
      all.log_creator = page->log_creator;
      all.log_members = page->log_members;
    } else {
      EXPECT_TRUE(page->log_creator.empty()) << "only from the start";
    }
    for (auto& f : page->frames) all.frames.push_back(std::move(f));
    all.skipped += page->skipped;
    cursor = page->next_cursor;
    if (!page->has_more) break;
  }
  return all;
}

// bob's tablet joins an end-to-end conversation whose history is longer
// than the frames a log keeps waiting for their key: it keeps none of what
// it reads before bob's phone re-shares, reads the channel again up to the
// share, and ends with the whole history (docs/sync.md, "A new device's
// first read").
TEST_F(Emulator, ANewDeviceReadsAHistoryLongerThanThePendingBound) {
  tidings::testing::TempDir dir;
  auto a = Open(dir, "alice"), phone = Open(dir, "bob");
  auto tablet = engine::Store::Open(dir / "bob-tablet", tidings::testing::TestKey(),
                                    tidings::testing::CreateOptions("bob"));
  ASSERT_TRUE(tablet.ok()) << tablet.status().ToString();
  ASSERT_TRUE(a->PutConversation("consult", "Visit", {"alice", "bob"}).ok());
  std::vector<std::string> sent;
  for (int i = 0; i < 30; ++i) {
    sent.push_back("note " + std::to_string(i));
    ASSERT_TRUE(a->Send({.conversation_id = "consult", .body = sent.back()}).ok());
  }
  auto ba = Backend("alice"), bp = Backend("bob"), bt = Backend("bob");
  Clock ca, cp, ct;
  sync::Reconciler ra(&a->sync_log(), ba.get(), {}, std::ref(ca), [] { return 1; });
  sync::Reconciler rp(&phone->sync_log(), bp.get(), {}, std::ref(cp), [] { return 2; });
  sync::SyncConfig small;
  small.max_pending_frames = 5;
  small.pull_page_size = 7;
  sync::Reconciler rt(&(*tablet)->sync_log(), bt.get(), small, std::ref(ct), [] { return 3; });
  ASSERT_TRUE(ra.SyncAll().ok());
  ASSERT_TRUE(rp.SyncAll().ok());
  // More than the 5 s a re-read reads past its share: the notes are old
  // enough for the tablet to show the newest first.
  std::this_thread::sleep_for(std::chrono::milliseconds(6'000));
  std::vector<std::string> merged;  // in the order the tablet merged them
  (*tablet)->Subscribe([&](const engine::ChangeEvent& e) {
    if (e.kind != engine::ChangeEvent::Kind::kMessageAdded) return;
    if (auto m = (*tablet)->Get(e.message_id); m.ok()) merged.push_back(m->body);
  });
  auto bodies = [&] {
    std::vector<std::string> out;
    auto page = (*tablet)->Page({.conversation_id = "consult", .limit = 100});
    if (page.ok()) {
      for (const auto& m : *page) out.push_back(m.body);
    }
    return out;
  };
  for (int round = 0; round < 6 && bodies() != sent; ++round) {
    for (sync::Reconciler* r : {&rt, &rp, &ra}) {
      Status synced = r->SyncAll();
      ASSERT_TRUE(synced.ok()) << synced.ToString();
    }
  }
  EXPECT_EQ(bodies(), sent);
  const sync::ConversationStatus st = rt.GetStatus("consult");
  EXPECT_EQ(st.pending_frames, 0u);
  EXPECT_EQ(st.rejected_frames, 0u) << st.last_rejection;
  // The newest first (docs/sync.md, "Newest first, end to end"), each once.
  ASSERT_EQ(merged.size(), sent.size());
  EXPECT_LT(std::find(merged.begin(), merged.end(), "note 29"),
            std::find(merged.begin(), merged.end(), "note 0"))
      << ::testing::PrintToString(merged);
}

TEST_F(Emulator, FramesRoundTripInOrderWithTheirSender) {
  auto alice = Backend("alice"), bob = Backend("bob");
  EXPECT_EQ(alice->max_frame_bytes(), 3072u);
  EXPECT_TRUE(alice->authenticates_senders());
  auto arn = alice->EnsureLog({kLog, {"alice", "bob"}});
  ASSERT_TRUE(arn.ok()) << arn.status().ToString();
  EXPECT_EQ(*arn, kApp + "/channel/tidings-" + kLog);
  ASSERT_TRUE(bob->EnsureLog({kLog, {"alice", "bob"}}).ok()) << "idempotent (a Conflict)";
  const std::string binary("\xE1\x03\x00\xFF\x80 frame", 10);
  std::vector<sync::Frame> first = {MakeFrame("a.0123abcd", binary),
                                    MakeFrame("k.1.0123abcd", std::string(3072, '\xE1'))};
  auto acks = alice->PushFrames(kLog, first);
  ASSERT_TRUE(acks.ok()) << acks.status().ToString();
  ASSERT_EQ(acks->size(), 2u);
  for (const auto& ack : *acks) {
    EXPECT_TRUE(ack.status.ok()) << ack.status.ToString();
    EXPECT_FALSE(ack.remote_id.empty());
  }
  std::vector<sync::Frame> second = {MakeFrame("o.0190-b0b", "\xE1\x03 from bob")};
  auto bob_acks = bob->PushFrames(kLog, second);
  ASSERT_TRUE(bob_acks.ok() && bob_acks->size() == 1u);

  auto all = PullAllFrames(*bob, kLog);
  ASSERT_EQ(all.frames.size(), 3u);
  EXPECT_EQ(all.skipped, 0u);
  EXPECT_EQ(all.frames[0].id, "a.0123abcd");
  EXPECT_EQ(all.frames[0].bytes, binary);
  EXPECT_EQ(all.frames[0].sender, "alice");
  EXPECT_EQ(all.frames[0].remote_id, (*acks)[0].remote_id);
  EXPECT_EQ(all.frames[1].bytes, std::string(3072, '\xE1')) << "the limit fits";
  EXPECT_EQ(all.frames[2].id, "o.0190-b0b");
  EXPECT_EQ(all.frames[2].sender, "bob") << "Chime's Sender, not a claim";
  EXPECT_LE(all.frames[0].server_time_ms, all.frames[1].server_time_ms);
  EXPECT_LE(all.frames[1].server_time_ms, all.frames[2].server_time_ms);
  EXPECT_GT(all.frames[0].server_time_ms, 0u);
  EXPECT_EQ(all.log_creator, "alice");
  EXPECT_EQ(std::set<std::string>(all.log_members.begin(), all.log_members.end()),
            (std::set<std::string>{"alice", "bob"}));

  // What Chime and another Chime client see: a channel named "tidings" with
  // no conversation in its metadata, and base64 in every message.
  std::string described = Python("bob", "describe " + *arn);
  EXPECT_NE(described.find("\"Name\": \"tidings\""), std::string::npos) << described;
  EXPECT_NE(described.find(R"("Metadata": "{\"tidings\":\"e2e1\"}")"), std::string::npos)
      << described;
  std::string listed = Python("bob", "list " + *arn);
  EXPECT_NE(listed.find(crypto::Base64Encode(binary)), std::string::npos) << listed;
  EXPECT_EQ(listed.find(" from bob"), std::string::npos) << "no frame byte in clear";

  // Tidings never edits a frame: bob's frame edited in place (same id, other
  // bytes, as a removed member could back-date one) is skipped and counted,
  // read forward or newest first.
  Python("bob", "update " + *arn + " " + (*bob_acks)[0].remote_id + " " +
                    crypto::Base64Encode("\xE1\x03 edited") + " '" +
                    chime::WriteFrameMetadata("o.0190-b0b") + "'");
  auto edited = PullAllFrames(*alice, kLog);
  ASSERT_EQ(edited.frames.size(), 2u);
  EXPECT_EQ(edited.skipped, 1u);
  auto newest = alice->PullFrameHistory(kLog, "", 50);
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  EXPECT_EQ(newest->frames.size(), 2u);
  EXPECT_EQ(newest->skipped, 1u);

  // Over the limit: refused before sending, naming the limit.
  std::vector<sync::Frame> big = {MakeFrame("o.big", std::string(3073, 'x'))};
  auto too_big = alice->PushFrames(kLog, big);
  ASSERT_TRUE(too_big.ok());
  EXPECT_EQ((*too_big)[0].status.code(), Code::kTooLarge);
  EXPECT_NE((*too_big)[0].status.message().find("3072"), std::string::npos);
}

TEST_F(Emulator, ARetriedFramePushStoresOneMessage) {
  auto alice = Backend("alice");
  ASSERT_TRUE(alice->EnsureLog({kLog, {"alice"}}).ok());
  std::vector<sync::Frame> frames = {MakeFrame("o.0190aa", "\xE1\x03one"),
                                     MakeFrame("o.0190bb", "\xE1\x03two")};
  auto acks = alice->PushFrames(kLog, frames);
  ASSERT_TRUE(acks.ok());
  // The client never heard: a new process retries with the same frame ids.
  auto again = Backend("alice")->PushFrames(kLog, frames);
  ASSERT_TRUE(again.ok());
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_TRUE((*again)[i].status.ok());
    EXPECT_EQ((*again)[i].remote_id, (*acks)[i].remote_id) << i;
  }
  auto all = PullAllFrames(*alice, kLog);
  ASSERT_EQ(all.frames.size(), 2u);
  std::string listed = Python("alice", "list " + alice->LogChannelArn(kLog));
  size_t messages = 0;
  for (size_t at = 0; (at = listed.find("\"MessageId\"", at)) != std::string::npos; ++at) {
    ++messages;
  }
  EXPECT_EQ(messages, 2u) << listed;
}

TEST_F(Emulator, AMessageThatIsNotAFrameIsSkippedAndCounted) {
  auto alice = Backend("alice");
  auto arn = alice->EnsureLog({kLog, {"alice", "bob"}});
  ASSERT_TRUE(arn.ok());
  std::vector<sync::Frame> one = {MakeFrame("a.1", "\xE1\x01")};
  ASSERT_TRUE(alice->PushFrames(kLog, one).ok());
  Python("bob", "send " + *arn + " 'plain text from another client'");
  std::vector<sync::Frame> two = {MakeFrame("a.2", "\xE1\x01")};
  ASSERT_TRUE(alice->PushFrames(kLog, two).ok());
  auto all = PullAllFrames(*alice, kLog);
  ASSERT_EQ(all.frames.size(), 2u);
  EXPECT_EQ(all.frames[0].id, "a.1");
  EXPECT_EQ(all.frames[1].id, "a.2");
  EXPECT_EQ(all.skipped, 1u);
}

TEST_F(Emulator, ListLogsListsOnlyTheSealedLogsTheUserIsIn) {
  const std::string shared = "e" + std::string(32, 'a'), alone = "e" + std::string(32, 'b');
  auto alice = Backend("alice"), bob = Backend("bob");
  ASSERT_TRUE(alice->EnsureLog({shared, {"alice", "bob"}}).ok());
  ASSERT_TRUE(alice->EnsureLog({alone, {"alice"}}).ok());
  engine::Conversation plain;
  plain.id = "plain";
  plain.members = {"alice", "bob"};
  ASSERT_TRUE(alice->EnsureConversation(plain).ok());
  auto logs = bob->ListLogs();
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  EXPECT_EQ(*logs, std::vector<std::string>{shared});
  auto mine = alice->ListLogs();
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(std::set<std::string>(mine->begin(), mine->end()),
            (std::set<std::string>{shared, alone}));
  // A sealed log is no plaintext conversation.
  auto conversations = bob->ListConversations();
  ASSERT_TRUE(conversations.ok());
  EXPECT_EQ(*conversations, std::vector<std::string>{"plain"});
  // A member added later sees it.
  ASSERT_TRUE(alice->EnsureLog({alone, {"alice", "bob"}}).ok());
  EXPECT_EQ(bob->ListLogs()->size(), 2u);
  EXPECT_EQ(PullAllFrames(*bob, alone).log_members.size(), 2u);
}

// ---- Channel squatting (plaintext conversations) ----

TEST_F(Emulator, AChannelMadeBySomeoneOutsideTheConversationIsRefused) {
  tidings::testing::TempDir dir;
  auto doctor = Open(dir, "doctor");
  ASSERT_TRUE(doctor->PutConversation("consult-42", "Consult", {"doctor", "patient"}).ok());
  auto sent = doctor->Send({.conversation_id = "consult-42", .body = "your results are in"});
  ASSERT_TRUE(sent.ok());
  auto bd = Backend("doctor");
  // mallory, outside the conversation, makes its channel first (the id is a
  // hash of the conversation id) and adds the doctor and the patient.
  const std::string arn = bd->DefaultChannelArn("consult-42");
  const std::string channel_id = arn.substr(arn.rfind('/') + 1);
  std::string made =
      Python("mallory", "create " + channel_id + " '" + WriteChannelMetadata("consult-42") + "' " +
                            UserArn("doctor") + " " + UserArn("patient"));
  ASSERT_NE(made.find(arn), std::string::npos) << made;

  Clock clock;
  sync::Reconciler rd(&doctor->sync_log(), bd.get(), Plaintext(), std::ref(clock),
                      [] { return 1; });
  ASSERT_TRUE(rd.SyncAll().ok());
  auto st = rd.GetStatus("consult-42");
  EXPECT_TRUE(st.stopped);
  EXPECT_NE(st.last_error.find("channel " + channel_id +
                               " was created by a user outside the conversation; refusing it"),
            std::string::npos)
      << st.last_error;
  EXPECT_EQ(doctor->Get(sent->id)->state, engine::MessageState::kFailed);
  ASSERT_TRUE(rd.SyncAll().ok());
  EXPECT_EQ(Python("mallory", "list " + arn), "[]\n") << "nothing reached the squatter";
  // Its messages are not pulled either.
  Python("mallory", "send " + arn + " 'click this link'");
  auto pulled = bd->Pull("consult-42", "", 50);
  EXPECT_EQ(pulled.status().code(), Code::kPermissionDenied);
}

TEST_F(Emulator, AChannelWithAMemberOutsideTheConversationIsRefused) {
  auto patient = Backend("patient"), doctor = Backend("doctor");
  engine::Conversation c;
  c.id = "consult-43";
  c.members = {"doctor", "patient"};
  // The patient's device made it with mallory in it (any list may be wrong).
  engine::Conversation with_mallory = c;
  with_mallory.members.push_back("mallory");
  ASSERT_TRUE(patient->EnsureConversation(with_mallory).ok());
  auto refused = doctor->EnsureConversation(c);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("has members outside the conversation"),
            std::string::npos)
      << refused.status().ToString();
  engine::Operation op;
  op.kind = engine::OpKind::kSend;
  op.op_id = op.message_id = "m-1";
  op.conversation_id = c.id;
  op.author = "doctor";
  op.at = {1, 1};
  op.body = "private";
  EXPECT_EQ(doctor->Push(c.id, std::span(&op, 1)).status().code(), Code::kPermissionDenied);
  // Once the doctor's list has mallory too, the channel is fine.
  ASSERT_TRUE(doctor->EnsureConversation(with_mallory).ok());
}

TEST_F(Emulator, MessagesFromSendersOutsideTheConversationAreSkippedAndCounted) {
  auto doctor = Backend("doctor"), patient = Backend("patient");
  engine::Conversation c;
  c.id = "consult-44";
  c.members = {"doctor", "patient"};
  auto arn = doctor->EnsureConversation(c);
  ASSERT_TRUE(arn.ok());
  ASSERT_TRUE(doctor->Pull(c.id, "", 50).ok());  // checked: made by the doctor
  // The patient's device (its list differs) adds mallory, who writes.
  engine::Conversation more = c;
  more.members.push_back("mallory");
  ASSERT_TRUE(patient->AddMembers(more, *arn).ok());
  // Within the doctor's last check (30 s) mallory's messages are skipped;
  // the next check refuses the channel.
  Python("mallory", "send " + *arn + " 'from outside'");
  Python("patient", "send " + *arn + " 'from the patient'");
  auto page = doctor->Pull(c.id, "", 50);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->ops.size(), 1u);
  EXPECT_EQ(page->ops[0].body, "from the patient");
  EXPECT_EQ(page->skipped, 1u);
}

}  // namespace
}  // namespace tidings::chime
