// The Chime backend against the real emulator (tidings-chime-local, started
// by the test on 127.0.0.1 with an ephemeral port; SigV4 verified): two
// stores converge, boto3 interop both ways, throttling and 5xx without
// duplicates, an emulator restart mid-pull, removal from a channel.
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
    std::vector<engine::Operation> all;
    std::string cursor;
    for (int i = 0; i < 1000; ++i) {
      auto page = b->Pull(conv, cursor, 50);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok()) break;
      all.insert(all.end(), page->ops.begin(), page->ops.end());
      cursor = page->next_cursor;
      if (!page->has_more) break;
    }
    return all;
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

void ExpectSameConversation(engine::Store& a, engine::Store& b, const std::string& conv,
                            size_t expected) {
  auto pa = a.Page({.conversation_id = conv, .limit = 1000});
  auto pb = b.Page({.conversation_id = conv, .limit = 1000});
  ASSERT_TRUE(pa.ok() && pb.ok());
  ASSERT_EQ(pa->size(), expected);
  ASSERT_EQ(pb->size(), expected);
  for (size_t i = 0; i < expected; ++i) {
    EXPECT_EQ((*pa)[i].id, (*pb)[i].id) << i;
    EXPECT_EQ((*pa)[i].order, (*pb)[i].order) << i;
    EXPECT_EQ((*pa)[i].body, (*pb)[i].body) << i;
    EXPECT_EQ((*pa)[i].deleted, (*pb)[i].deleted) << i;
    EXPECT_EQ((*pa)[i].reactions, (*pb)[i].reactions) << i;
  }
}

TEST_F(Emulator, TwoStoresConvergeWithOfflineSendsEditsAndDeletes) {
  tidings::testing::TempDir dir;
  auto a = Open(dir, "alice"), b = Open(dir, "bob");
  ASSERT_TRUE(a->PutConversation("visit-1", "Visit", {"alice", "bob"}).ok());
  ASSERT_TRUE(b->PutConversation("visit-1", "Visit", {"alice", "bob"}).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        a->Send({.conversation_id = "visit-1", .body = "from alice " + std::to_string(i)}).ok());
    ASSERT_TRUE(
        b->Send({.conversation_id = "visit-1", .body = "from bob " + std::to_string(i)}).ok());
  }
  std::string cipher = {'\x01', '\xff', '\x00', '\x80'};
  ASSERT_TRUE(a->Send({.conversation_id = "visit-1", .body = cipher}).ok());
  auto edited = a->Send({.conversation_id = "visit-1", .body = "typo"});
  ASSERT_TRUE(a->Edit(edited->id, "fixed").ok());
  auto gone = b->Send({.conversation_id = "visit-1", .body = "oops"});
  ASSERT_TRUE(b->Delete(gone->id).ok());

  auto ba = Backend("alice"), bb = Backend("bob");
  Clock ca, cb;
  sync::Reconciler ra(&a->sync_log(), ba.get(), {}, std::ref(ca), [] { return 1; });
  sync::Reconciler rb(&b->sync_log(), bb.get(), {}, std::ref(cb), [] { return 1; });
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(ra.SyncAll().ok());
    ASSERT_TRUE(rb.SyncAll().ok());
    if (round == 0) {  // bob has alice's messages now
      ASSERT_TRUE(b->React(edited->id, "ok", true).ok());
    }
  }
  EXPECT_TRUE(a->Outbox(0)->empty());
  EXPECT_TRUE(b->Outbox(0)->empty());
  ExpectSameConversation(*a, *b, "visit-1", 13);
  EXPECT_EQ(b->Get(edited->id)->body, "fixed");
  EXPECT_EQ(b->Get(edited->id)->reactions.size(), 1u);
  EXPECT_TRUE(a->Get(gone->id)->deleted);
  auto page = b->Page({.conversation_id = "visit-1", .limit = 100});
  bool found_cipher = false;
  for (const auto& m : *page) found_cipher = found_cipher || m.body == cipher;
  EXPECT_TRUE(found_cipher) << "binary bodies arrive byte for byte";
  auto mine = a->Page({.conversation_id = "visit-1", .limit = 100});
  ASSERT_TRUE(mine.ok());
  for (const auto& m : *mine) EXPECT_EQ(m.state, engine::MessageState::kSent);
  // One channel, and every operation exactly once on the server.
  auto listed = bb->ListConversations();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::vector<std::string>{"visit-1"});
  std::map<std::string, int> count;
  for (const auto& op : ServerOps("alice", "visit-1")) count[op.op_id]++;
  EXPECT_EQ(count.size(), 16u);  // 13 sends (one deleted), edit, delete, reaction
  for (const auto& [id, n] : count) EXPECT_EQ(n, 1) << id;
}

// A member added to a conversation after its channel exists joins the
// channel with the next push, and reads what was said before.
TEST_F(Emulator, MembersAddedLaterJoinTheChannel) {
  tidings::testing::TempDir dir;
  auto a = Open(dir, "alice"), c = Open(dir, "carol");
  ASSERT_TRUE(a->PutConversation("visit-2", "Visit", {"alice", "bob"}).ok());
  ASSERT_TRUE(a->Send({.conversation_id = "visit-2", .body = "before carol"}).ok());
  auto ba = Backend("alice");
  Clock ca;
  sync::Reconciler ra(&a->sync_log(), ba.get(), {}, std::ref(ca), [] { return 1; });
  ASSERT_TRUE(ra.SyncAll().ok());
  auto listed = Backend("carol")->ListConversations();
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty()) << "carol is not a member yet";

  ASSERT_TRUE(a->PutConversation("visit-2", "Visit", {"alice", "bob", "carol"}).ok());
  ASSERT_TRUE(a->Send({.conversation_id = "visit-2", .body = "welcome carol"}).ok());
  ASSERT_TRUE(ra.SyncAll().ok());
  auto bc = Backend("carol");
  listed = bc->ListConversations();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::vector<std::string>{"visit-2"});
  Clock cc;
  sync::Reconciler rc(&c->sync_log(), bc.get(), {}, std::ref(cc), [] { return 1; });
  for (int round = 0; round < 2; ++round) ASSERT_TRUE(rc.SyncAll().ok());
  auto page = c->Page({.conversation_id = "visit-2"});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].body, "before carol");
  EXPECT_EQ((*page)[1].body, "welcome carol");
}

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
