// The simulator's sealed logs (sim_backend.h, sim_server.h), what its
// adversary can and cannot do (sim_adversary.h), and the frame devices
// (sim_frames.h) the end-to-end simulation builds on. Every case runs with a
// server that authenticates writers as Chime does and with one that does not,
// as DynamoDB.
#include <gtest/gtest.h>

#include <map>

#include "sim_adversary.h"
#include "sim_frames.h"

namespace tidings::sim {
namespace {

const std::string kLog = "e0123456789abcdef0123456789abcdef";

sync::SealedLog Log(std::vector<std::string> members) {
  return {.log_id = kLog, .members = std::move(members)};
}

sync::Frame MakeFrame(const std::string& id, const std::string& bytes = "") {
  return {.id = id, .bytes = bytes.empty() ? "\xE1\x03 sealed " + id : bytes};
}

// Frames as a fresh reader gets them, every page.
std::vector<sync::Frame> Pull(SimBackend& reader, uint64_t* skipped = nullptr) {
  std::vector<sync::Frame> all;
  std::string cursor;
  for (int i = 0; i < 100; ++i) {
    auto page = reader.PullFrames(kLog, cursor, 3);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    all.insert(all.end(), page->frames.begin(), page->frames.end());
    if (skipped != nullptr) *skipped += page->skipped;
    cursor = page->next_cursor;
    if (!page->has_more) break;
  }
  return all;
}

class SimFrames : public ::testing::TestWithParam<bool> {
 protected:
  SimFrames() { world_.authenticates_senders = GetParam(); }
  bool chime() const { return GetParam(); }

  SimWorld world_{1};
};

// The property the end-to-end design stands on: over drops, 503s, throttling,
// lost responses, late and doubled requests, repeated pages and crashes,
// every device ends with every frame sent, once each, in the server's order.
TEST_P(SimFrames, EveryDeviceSeesEachFrameOnceInTheServersOrder) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SimWorld world(seed);
    world.authenticates_senders = chime();
    FrameDevice phone(&world, 0, "u0"), laptop(&world, 1, "u0"), other(&world, 2, "u1");
    const std::vector<FrameDevice*> devices = {&phone, &laptop, &other};
    for (FrameDevice* d : devices) d->Follow(Log({"u0", "u1"}));
    world.faults = {.drop = 10,
                    .server_error = 10,
                    .throttle = 10,
                    .lose_response = 10,
                    .delay = 10,
                    .duplicate = 20,
                    .crash = 5,
                    .auth = 2};
    std::map<std::string, int> sent;  // writer and id, as a device keys them
    for (int step = 0; step < 60; ++step) {
      world.now_ms += world.rng() % 3000;
      world.DeliverDelayed(false);
      FrameDevice& d = *devices[world.rng() % devices.size()];
      if (world.rng() % 2) {
        const std::string id = "o.s" + std::to_string(seed) + "_" + std::to_string(step);
        d.Send(Log({"u0", "u1"}), MakeFrame(id));
        sent[(chime() ? d.user() : "") + "\n" + id] = 0;
      } else {
        (void)d.Sync();  // failures are the network's; the next round retries
      }
    }
    world.faults = {};
    world.DeliverDelayed(true);
    ASSERT_EQ(SyncUntilQuiet(world, devices), "") << "seed " << seed;
    for (FrameDevice* d : devices) {
      std::map<std::string, int> seen;
      for (const auto& f : d->frames(kLog)) seen[f.sender + "\n" + f.id]++;
      ASSERT_EQ(d->frames(kLog).size(), sent.size()) << "seed " << seed << ", " << d->user();
      ASSERT_EQ(seen.size(), sent.size()) << "seed " << seed << ", " << d->user();
      for (const auto& [key, n] : seen) {
        ASSERT_TRUE(sent.count(key)) << "seed " << seed << ": " << key << " was never sent";
      }
    }
    std::map<std::string, int> stored;
    for (const auto& e : world.server.sealed_log(kLog)->entries) stored[e.frame.id]++;
    for (const auto& [id, n] : stored) ASSERT_EQ(n, 1) << "seed " << seed << ": " << id;
  }
}

TEST_P(SimFrames, ADelayedPushLandsLaterAndARetryStoresNothingNew) {
  SimBackend alice(&world_, 0, "alice");
  ASSERT_TRUE(alice.EnsureLog(Log({"alice"})).ok());
  const std::vector<sync::Frame> frames = {MakeFrame("a.1"), MakeFrame("o.2")};
  world_.faults.delay = 100;
  EXPECT_EQ(alice.PushFrames(kLog, frames).status().code(), Code::kDeadlineExceeded);
  world_.faults = {};
  EXPECT_TRUE(Pull(alice).empty()) << "not applied yet";
  auto retried = alice.PushFrames(kLog, std::span(frames).first(1));
  ASSERT_TRUE(retried.ok());
  world_.DeliverDelayed(true);
  const auto pulled = Pull(alice);
  ASSERT_EQ(pulled.size(), 2u) << "the late request added only what the retry had not";
  EXPECT_EQ(pulled[0].id, "a.1");
  EXPECT_EQ(pulled[1].id, "o.2");
  EXPECT_EQ(pulled[1].sender, chime() ? "alice" : "");
}

TEST_P(SimFrames, APageMayRepeatFramesAlreadySeen) {
  SimBackend alice(&world_, 0, "alice");
  ASSERT_TRUE(alice.EnsureLog(Log({"alice"})).ok());
  ASSERT_TRUE(
      alice.PushFrames(kLog, std::vector{MakeFrame("o.1"), MakeFrame("o.2"), MakeFrame("o.3")})
          .ok());
  world_.faults.duplicate = 100;
  auto page = alice.PullFrames(kLog, "2", 10);
  ASSERT_TRUE(page.ok());
  ASSERT_GE(page->frames.size(), 2u);
  EXPECT_NE(page->frames[0].id, "o.3") << "the page starts before the cursor";
  EXPECT_EQ(page->frames.back().id, "o.3");
  EXPECT_EQ(page->next_cursor, "3");
}

TEST_P(SimFrames, TheServerRefusesWhatNoBackendCarries) {
  SimBackend alice(&world_, 0, "alice");
  EXPECT_EQ(alice.EnsureLog({.log_id = "conversation-1", .members = {"alice"}}).status().code(),
            Code::kInvalidArgument)
      << "log ids are opaque";
  EXPECT_EQ(alice.PushFrames(kLog, std::vector{MakeFrame("o.1")}).status().code(), Code::kNotFound)
      << "EnsureLog first";
  ASSERT_TRUE(alice.EnsureLog(Log({"alice"})).ok());
  auto acks = alice.PushFrames(kLog, std::vector{MakeFrame("o/1"), MakeFrame("o.2"),
                                                 MakeFrame("o.3", std::string(3073, 'x'))});
  ASSERT_TRUE(acks.ok());
  EXPECT_EQ((*acks)[0].status.code(), Code::kInvalidArgument);
  EXPECT_TRUE((*acks)[1].status.ok());
  EXPECT_EQ((*acks)[2].status.code(), Code::kTooLarge);
  EXPECT_EQ(Pull(alice).size(), 1u);
  EXPECT_EQ(alice.PullFrames(kLog, "x", 1).status().code(), Code::kInvalidArgument);

  SimBackend nobody(&world_, 1);
  EXPECT_EQ(nobody.ListLogs().status().code(), Code::kFailedPrecondition) << "a user is needed";
}

TEST_P(SimFrames, AnUndecodableItemIsSkippedAndCountedNeverStalling) {
  SimBackend alice(&world_, 0, "alice"), bob(&world_, 1, "bob");
  SimAdversary mallory(&world_, "mallory");
  ASSERT_TRUE(alice.EnsureLog(Log({"alice", "bob", "mallory"})).ok());
  ASSERT_TRUE(alice.PushFrames(kLog, std::vector{MakeFrame("o.1")}).ok());
  ASSERT_TRUE(mallory.AppendGarbage(kLog).ok());
  ASSERT_TRUE(mallory.AppendGarbage(kLog).ok());
  ASSERT_TRUE(alice.PushFrames(kLog, std::vector{MakeFrame("o.2")}).ok());
  uint64_t skipped = 0;
  const auto pulled = Pull(bob, &skipped);
  ASSERT_EQ(pulled.size(), 2u);
  EXPECT_EQ(pulled[1].id, "o.2") << "the frame after the garbage arrives";
  EXPECT_EQ(skipped, 2u);
}

TEST_P(SimFrames, TheAdversaryWritesOnlyWhatItsServerAllows) {
  SimBackend alice(&world_, 0, "alice"), bob(&world_, 1, "bob");
  SimAdversary mallory(&world_, "mallory");
  ASSERT_TRUE(alice.EnsureLog(Log({"alice", "bob"})).ok());
  ASSERT_TRUE(alice.PushFrames(kLog, std::vector{MakeFrame("a.alice", "honest")}).ok());

  // The same frame id with other bytes, into a log it is not a member of.
  auto forged = mallory.Append(kLog, MakeFrame("a.alice", "forged"));
  if (chime()) {
    EXPECT_EQ(forged.status().code(), Code::kPermissionDenied) << "members only";
    EXPECT_EQ(mallory.EnsureLog(kLog, {"mallory"}).code(), Code::kPermissionDenied);
    ASSERT_TRUE(alice.EnsureLog(Log({"alice", "bob", "mallory"})).ok());
    forged = mallory.Append(kLog, MakeFrame("a.alice", "forged"));
  }
  ASSERT_TRUE(forged.ok()) << forged.status().ToString();
  EXPECT_EQ(forged->sender, chime() ? "mallory" : "") << "it cannot name another writer";
  auto pulled = Pull(bob);
  ASSERT_EQ(pulled.size(), 2u) << "an id already in the log does not keep a forgery out";
  EXPECT_EQ(pulled[0].bytes, "honest");
  EXPECT_EQ(pulled[1].bytes, "forged");

  // Rewriting alice's frame: DynamoDB lets anyone overwrite an item; Chime
  // lets only a message's sender update it.
  const Status overwrite = mallory.Overwrite(kLog, 0, MakeFrame("a.alice", "rewritten"));
  EXPECT_EQ(overwrite.code(), chime() ? Code::kPermissionDenied : Code::kOk);
  EXPECT_EQ(Pull(bob)[0].bytes, chime() ? "honest" : "rewritten");

  // The directory: only under its own user, whatever the record claims.
  const Status published = mallory.PublishRecord("a record claiming to be alice's");
  if (chime()) {
    EXPECT_EQ(published.code(), Code::kUnimplemented);
  } else {
    ASSERT_TRUE(published.ok());
    EXPECT_TRUE(bob.FetchDevices("alice")->empty());
    EXPECT_EQ(bob.FetchDevices("mallory")->size(), 1u);
  }
}

TEST_P(SimFrames, ASquattersLogNamesItsCreatorAndMembers) {
  SimAdversary mallory(&world_, "mallory");
  SimBackend doctor(&world_, 0, "doctor");
  ASSERT_TRUE(mallory.EnsureLog(kLog, {"doctor", "patient"}).ok());
  auto listed = doctor.ListLogs();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::vector<std::string>{kLog}) << "the victims list the squatted log";
  auto page = doctor.PullFrames(kLog, "", 10);
  ASSERT_TRUE(page.ok());
  if (chime()) {
    // What the doctor's device checks against the conversation's members.
    EXPECT_EQ(page->log_creator, "mallory");
    EXPECT_EQ(page->log_members, (std::vector<std::string>{"mallory", "doctor", "patient"}));
  } else {
    EXPECT_TRUE(page->log_creator.empty()) << "DynamoDB has no notion of it";
  }
}

// Newest-first reading (Backend::PullHistory): the newest page, then older
// pages down to the beginning, and forward pulls from the newest page's
// cursor, cover the log exactly once - also with writes between the calls.
TEST(SimHistory, NewestPageOlderPagesAndTheForwardCursorCoverTheLogOnce) {
  SimWorld world(7);
  SimBackend reader(&world, 0);
  auto op = [](int i) {
    engine::Operation o;
    o.kind = engine::OpKind::kSend;
    o.op_id = o.message_id = "m" + std::to_string(i);
    o.author = "alice";
    o.body = "hello " + std::to_string(i);
    return o;
  };
  for (int i = 0; i < 23; ++i) world.server.Apply("c", op(i), world.now_ms);
  std::map<std::string, int> seen;
  auto newest = reader.PullHistory("c", "", 5);
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  ASSERT_EQ(newest->ops.size(), 5u);
  for (const auto& o : newest->ops) {
    seen[o.op_id]++;
    EXPECT_GE(std::stoi(o.op_id.substr(1)), 18) << "the newest page holds the newest five";
  }
  EXPECT_EQ(newest->before, "18");
  EXPECT_EQ(newest->forward_cursor, "23");
  for (int i = 23; i < 30; ++i) world.server.Apply("c", op(i), world.now_ms);
  auto forward = reader.Pull("c", newest->forward_cursor, 100);
  ASSERT_TRUE(forward.ok());
  for (const auto& o : forward->ops) seen[o.op_id]++;
  std::string before = newest->before;
  int pages = 0;
  while (!before.empty() && pages++ < 10) {
    auto older = reader.PullHistory("c", before, 5);
    ASSERT_TRUE(older.ok()) << older.status().ToString();
    EXPECT_TRUE(older->forward_cursor.empty()) << "only the newest page carries one";
    for (const auto& o : older->ops) seen[o.op_id]++;
    before = older->before;
  }
  EXPECT_EQ(pages, 4) << "18 older operations in pages of 5";
  ASSERT_EQ(seen.size(), 30u);
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
  EXPECT_FALSE(reader.PullHistory("c", "0", 5).ok()) << "nothing is before the beginning";
  EXPECT_FALSE(reader.PullHistory("c", "31", 5).ok()) << "not a position of this log";
  auto empty = reader.PullHistory("none", "", 5);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->ops.empty());
  EXPECT_TRUE(empty->before.empty());
}

INSTANTIATE_TEST_SUITE_P(Servers, SimFrames, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "AuthenticatedAsChime" : "UnauthenticatedAsDynamoDB";
                         });

}  // namespace
}  // namespace tidings::sim
