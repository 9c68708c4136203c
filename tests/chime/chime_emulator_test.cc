// The Chime backend against the real emulator (tidings-chime-local, started
// by the test on 127.0.0.1 with an ephemeral port; SigV4 verified): boto3
// interop both ways, throttling and 5xx without duplicates, an emulator
// restart mid-pull, removal from a channel. Convergence is the backend
// conformance suite's (tests/backend_conformance).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "../engine/test_util.h"
#include "emulator/chime/testing/emulator_process.h"
#include "sync/chime/chime_backend.h"
#include "sync/chime/chime_json.h"
#include "sync/core/reconciler.h"
#include "tests/common/pull_all.h"
#include "tests/common/same_conversation.h"

namespace tidings::chime {
namespace {

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

  std::unique_ptr<ChimeBackend> Backend(const std::string& user) {
    ChimeConfig c;
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
  sync::Reconciler ra(&a->sync_log(), ba.get(), {}, std::ref(clock), [] { return 1; });
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
  sync::Reconciler ra(&a->sync_log(), ba.get(), {}, std::ref(clock), [] { return 7; });
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
  sync::Reconciler ra(&a->sync_log(), ba.get(), {}, std::ref(ca), [] { return 1; });
  ASSERT_TRUE(ra.SyncAll().ok());
  // bob pulls one page of 20, then the server restarts (state from
  // --data-dir), then he goes on from his persisted cursor - with a new
  // backend, as after his own restart.
  sync::SyncConfig one_page;
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
  sync::Reconciler ra(&a->sync_log(), ba.get(), {}, std::ref(ca), [] { return 1; });
  sync::Reconciler rb(&b->sync_log(), bb.get(), {}, std::ref(cb), [] { return 1; });
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

}  // namespace
}  // namespace tidings::chime
