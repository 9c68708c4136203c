// The sealed-log half of the conformance suite (sync/backend.h, "Sealed
// logs"): what end-to-end encrypted conversations rely on from every backend
// that carries them - frames come back in one order with ids and bytes
// intact, a retried push stores nothing new, small pages return every frame
// once and a cursor resumes where it stopped, members (and only members) list
// a log, device records round-trip through the directory, and an
// authenticating backend names each frame's writer and keeps non-members out.
//
// A backend without sealed logs (max_frame_bytes() == 0) skips every case.
// Like backend_conformance_test.cc, every case uses its own users and log.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "backend_harness.h"

namespace tidings::conformance {
namespace {

using sync::Frame;

class SealedLogConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto harness = Harness(GetParam());
    ASSERT_TRUE(harness.ok()) << GetParam() << ": " << harness.status().ToString();
    harness_ = *harness;
    auto probe = harness_->Connect(User("probe"));
    ASSERT_NE(probe, nullptr);
    if (probe->max_frame_bytes() == 0) {
      GTEST_SKIP()
          << "the " << GetParam()
          << " backend carries no sealed logs (max_frame_bytes() is 0): its conversations stay "
             "in plaintext mode";
    }
    max_frame_bytes_ = probe->max_frame_bytes();
    authenticates_senders_ = probe->authenticates_senders();
  }

  // A user of this case alone: "alice-FramesComeBackInOrderIntact".
  std::string User(const std::string& name) const {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    return name + "-" + test.substr(0, test.find('/'));
  }
  std::unique_ptr<sync::Backend> Connect(const std::string& name) {
    auto backend = harness_->Connect(User(name));
    EXPECT_NE(backend, nullptr) << "cannot make a backend for " << User(name);
    return backend;
  }
  // This case's log: "e" + 32 hex digits derived from the case's name.
  std::string LogId(const std::string& suffix = "") const {
    const std::string name = User("log") + suffix;
    std::string id = "e";
    for (uint64_t basis : {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull}) {
      uint64_t h = basis;  // FNV-1a
      for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
      static const char kHex[] = "0123456789abcdef";
      for (int shift = 60; shift >= 0; shift -= 4) id += kHex[(h >> shift) & 0xf];
    }
    return id;
  }
  sync::SealedLog Log(const std::string& id, std::initializer_list<const char*> members) const {
    sync::SealedLog log{.log_id = id, .members = {}};
    for (const char* m : members) log.members.push_back(User(m));
    return log;
  }

  BackendHarness* harness_ = nullptr;
  size_t max_frame_bytes_ = 0;
  bool authenticates_senders_ = false;
};

// `n` frames with ids as sync/e2e makes them and binary bytes (a format byte,
// a type byte, NULs, 0xff), starting at number `first`. Frame 0 is as large as
// the backend carries.
std::vector<Frame> Frames(const std::string& tag, int first, int n, size_t max_bytes) {
  std::vector<Frame> frames;
  for (int i = first; i < first + n; ++i) {
    const std::string hex = "0123456789abcdef0123456789abcd" + std::to_string(10 + i % 90);
    const std::string id = i % 3 == 0   ? "a." + hex
                           : i % 3 == 1 ? "k." + std::to_string(i) + "." + hex
                                        : "o." + tag + "_" + std::to_string(i);
    std::string bytes = {'\xE1', static_cast<char>(1 + i % 3), '\0', '\xff'};
    bytes += tag + " frame " + std::to_string(i);
    if (i == 0) bytes.resize(max_bytes, '\x80');
    frames.push_back({.id = id, .bytes = bytes});
  }
  return frames;
}

// Pushes in batches of max_batch(); every acknowledgement must be OK.
std::vector<sync::PushAck> PushAll(sync::Backend& backend, const std::string& log_id,
                                   std::span<const Frame> frames) {
  std::vector<sync::PushAck> acks;
  for (size_t i = 0; i < frames.size(); i += backend.max_batch()) {
    auto batch = frames.subspan(i, std::min(backend.max_batch(), frames.size() - i));
    auto pushed = backend.PushFrames(log_id, batch);
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

// Every page after `*cursor`, `limit` frames at most each; moves the cursor.
// The first page is kept in `*first` when given.
std::vector<Frame> PullAllFrames(sync::Backend& backend, const std::string& log_id,
                                 std::string* cursor, size_t limit = 100,
                                 sync::FramePage* first = nullptr) {
  std::vector<Frame> all;
  for (int i = 0; i < 1000; ++i) {
    auto page = backend.PullFrames(log_id, *cursor, limit);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    // `limit` bounds a page's server items, not its frames: DynamoDB packs
    // the frames of one push into one item, so a page may hold more.
    EXPECT_EQ(page->skipped, 0u) << "nothing undecodable was written";
    if (first != nullptr && i == 0) *first = *page;
    all.insert(all.end(), page->frames.begin(), page->frames.end());
    *cursor = page->next_cursor;
    if (!page->has_more) break;
  }
  return all;
}
std::vector<Frame> PullAllFrames(sync::Backend& backend, const std::string& log_id) {
  std::string cursor;
  return PullAllFrames(backend, log_id, &cursor);
}

std::vector<std::string> Ids(std::span<const Frame> frames) {
  std::vector<std::string> ids;
  for (const auto& f : frames) ids.push_back(f.id);
  return ids;
}

TEST_P(SealedLogConformance, FramesComeBackInOrderIntact) {
  auto alice = Connect("alice"), bob = Connect("bob");
  ASSERT_TRUE(alice && bob);
  const std::string log = LogId();
  ASSERT_TRUE(alice->EnsureLog(Log(log, {"alice", "bob"})).ok());
  const auto frames = Frames("intact", 0, 7, max_frame_bytes_);
  ASSERT_EQ(PushAll(*alice, log, frames).size(), frames.size());

  const auto pulled = PullAllFrames(*bob, log);
  ASSERT_EQ(Ids(pulled), Ids(frames)) << "every frame once, in the order pushed";
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(pulled[i].bytes, frames[i].bytes) << "byte for byte, frame " << i;
    EXPECT_GT(pulled[i].server_time_ms, 0u) << "the acceptance time, frame " << i;
    // Only an authenticated writer may be named: a name the reader cannot
    // trust must not look like one it can.
    EXPECT_EQ(pulled[i].sender, authenticates_senders_ ? User("alice") : "") << i;
  }
  EXPECT_EQ(Ids(PullAllFrames(*alice, log)), Ids(frames)) << "the writer reads the same order";
}

TEST_P(SealedLogConformance, AFrameOverTheLimitIsRefusedForGood) {
  auto alice = Connect("alice");
  ASSERT_TRUE(alice);
  const std::string log = LogId();
  ASSERT_TRUE(alice->EnsureLog(Log(log, {"alice"})).ok());
  const Frame big{.id = "o.too_big", .bytes = std::string(max_frame_bytes_ + 1, 'x')};
  auto pushed = alice->PushFrames(log, std::span(&big, 1));
  const Status refused = !pushed.ok() ? pushed.status() : pushed->at(0).status;
  EXPECT_FALSE(refused.ok()) << "a frame of max_frame_bytes() + 1 bytes";
  EXPECT_EQ(sync::Classify(refused), sync::ErrorClass::kPermanent) << refused.ToString();
  EXPECT_TRUE(PullAllFrames(*alice, log).empty()) << "nothing of it was stored";
}

TEST_P(SealedLogConformance, ARetriedPushStoresNothingNew) {
  const std::string log = LogId();
  const auto frames = Frames("retry", 1, 5, max_frame_bytes_);
  auto first = Connect("alice");
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->EnsureLog(Log(log, {"alice"})).ok());
  const auto acks = PushAll(*first, log, frames);
  ASSERT_EQ(acks.size(), frames.size());

  // The client never heard: a new process retries with the same ids, and
  // with frames made since.
  auto second = Connect("alice");
  ASSERT_TRUE(second);
  ASSERT_TRUE(second->EnsureLog(Log(log, {"alice"})).ok()) << "EnsureLog is idempotent";
  auto all = frames;
  for (auto& f : Frames("retry", 6, 2, max_frame_bytes_)) all.push_back(f);
  const auto again = PushAll(*second, log, all);
  ASSERT_EQ(again.size(), all.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    if (!acks[i].remote_id.empty()) {
      EXPECT_EQ(again[i].remote_id, acks[i].remote_id) << "the same remote record, " << i;
    }
  }
  EXPECT_EQ(Ids(PullAllFrames(*second, log)), Ids(all)) << "each frame once, in first-push order";
}

TEST_P(SealedLogConformance, SmallPagesReturnEveryFrameOnceAndACursorResumes) {
  auto alice = Connect("alice"), bob = Connect("bob");
  ASSERT_TRUE(alice && bob);
  const std::string log = LogId();
  ASSERT_TRUE(alice->EnsureLog(Log(log, {"alice", "bob"})).ok());
  const auto old_frames = Frames("pages", 1, 7, max_frame_bytes_);
  ASSERT_EQ(PushAll(*alice, log, old_frames).size(), old_frames.size());

  std::string cursor;
  for (size_t limit : {1, 2, 3}) {
    cursor.clear();
    EXPECT_EQ(Ids(PullAllFrames(*bob, log, &cursor, limit)), Ids(old_frames)) << "limit " << limit;
  }

  const auto new_frames = Frames("pages", 8, 3, max_frame_bytes_);
  ASSERT_EQ(PushAll(*alice, log, new_frames).size(), new_frames.size());
  // A new process resumes from the persisted cursor, as after a restart.
  auto resumed = Connect("bob");
  ASSERT_TRUE(resumed);
  EXPECT_EQ(Ids(PullAllFrames(*resumed, log, &cursor, 2)), Ids(new_frames)) << "only what is new";
  EXPECT_TRUE(PullAllFrames(*resumed, log, &cursor, 2).empty()) << "nothing new";
}

// Newest first (Backend::PullFrameHistory), on every backend that reads so:
// the newest page ends with the newest frame, each page's frames are in log
// order, and the older pages down to the first hold every frame once; a
// position survives a new process.
TEST_P(SealedLogConformance, NewestFirstPagesHoldEveryFrameOnce) {
  auto alice = Connect("alice"), bob = Connect("bob");
  ASSERT_TRUE(alice && bob);
  const std::string log = LogId();
  ASSERT_TRUE(alice->EnsureLog(Log(log, {"alice", "bob"})).ok());
  const auto frames = Frames("newest", 1, 10, max_frame_bytes_);
  // One at a time, as live sends go (DynamoDB packs a push into one item).
  for (const auto& f : frames) ASSERT_EQ(PushAll(*alice, log, std::span(&f, 1)).size(), 1u);

  auto newest = bob->PullFrameHistory(log, "", 3);
  if (newest.status().code() == Code::kUnimplemented) {
    GTEST_SKIP() << "the " << GetParam() << " backend reads sealed logs oldest first only";
  }
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  ASSERT_FALSE(newest->frames.empty());
  EXPECT_EQ(newest->frames.back().id, frames.back().id) << "the newest frame, last in its page";
  EXPECT_TRUE(newest->has_more) << "10 frames do not fit a page of 3";
  std::vector<std::vector<Frame>> pages = {newest->frames};
  std::string before = newest->next_cursor;
  for (int n = 0; !before.empty(); ++n) {
    ASSERT_LT(n, 20) << "the history never ends";
    auto fresh = Connect("bob");  // a new process: the position is all it keeps
    ASSERT_TRUE(fresh);
    auto older = fresh->PullFrameHistory(log, before, 3);
    ASSERT_TRUE(older.ok()) << older.status().ToString();
    pages.push_back(older->frames);
    before = older->has_more ? older->next_cursor : "";
  }
  std::vector<Frame> all;  // oldest page first
  for (auto page = pages.rbegin(); page != pages.rend(); ++page) {
    all.insert(all.end(), page->begin(), page->end());
  }
  ASSERT_EQ(Ids(all), Ids(frames)) << "every frame once, in log order";
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(all[i].bytes, frames[i].bytes) << "byte for byte, frame " << i;
    EXPECT_GT(all[i].server_time_ms, 0u) << i;
    EXPECT_EQ(all[i].sender, authenticates_senders_ ? User("alice") : "") << i;
  }
}

TEST_P(SealedLogConformance, MembersListTheLogAndOthersDoNot) {
  auto alice = Connect("alice"), bob = Connect("bob"), carol = Connect("carol");
  ASSERT_TRUE(alice && bob && carol);
  const std::string log = LogId();
  ASSERT_TRUE(alice->EnsureLog(Log(log, {"alice", "bob"})).ok());
  auto by_bob = bob->ListLogs();
  ASSERT_TRUE(by_bob.ok()) << by_bob.status().ToString();
  EXPECT_TRUE(Contains(*by_bob, log)) << "bob is a member";
  auto by_carol = carol->ListLogs();
  ASSERT_TRUE(by_carol.ok()) << by_carol.status().ToString();
  EXPECT_FALSE(Contains(*by_carol, log)) << "carol is not a member";

  // Adding carol (EnsureLog never removes: bob is left out of this call).
  ASSERT_TRUE(alice->EnsureLog(Log(log, {"alice", "carol"})).ok());
  by_carol = carol->ListLogs();
  ASSERT_TRUE(by_carol.ok()) << by_carol.status().ToString();
  EXPECT_TRUE(Contains(*by_carol, log)) << "carol is a member now";
  by_bob = bob->ListLogs();
  ASSERT_TRUE(by_bob.ok()) << by_bob.status().ToString();
  EXPECT_TRUE(Contains(*by_bob, log)) << "bob is still a member";
}

TEST_P(SealedLogConformance, DeviceRecordsRoundTripUnderTheirUser) {
  auto alice = Connect("alice"), bob = Connect("bob"), carol = Connect("carol");
  ASSERT_TRUE(alice && bob && carol);
  const std::string phone = {'\xE1', '\x01', '\0', 'p', 'h', 'o', 'n', 'e', '\xff'};
  const std::string laptop = {'\xE1', '\x01', '\0', 'l', 'a', 'p', 't', 'o', 'p'};
  const std::string bobs = {'\xE1', '\x01', '\0', 'b', 'o', 'b'};
  ASSERT_TRUE(alice->PublishDevice(phone).ok());
  if (authenticates_senders_) {
    auto fetched = carol->FetchDevices(User("alice"));
    EXPECT_EQ(fetched.status().code(), Code::kUnimplemented)
        << "records travel as announcement frames where senders are authenticated";
    return;
  }
  ASSERT_TRUE(alice->PublishDevice(phone).ok()) << "publishing is idempotent";
  ASSERT_TRUE(bob->PublishDevice(bobs).ok());

  auto of_alice = carol->FetchDevices(User("alice"));
  ASSERT_TRUE(of_alice.ok()) << of_alice.status().ToString();
  EXPECT_EQ(*of_alice, std::vector<std::string>{phone}) << "byte for byte, once";
  auto of_bob = carol->FetchDevices(User("bob"));
  ASSERT_TRUE(of_bob.ok()) << of_bob.status().ToString();
  EXPECT_EQ(*of_bob, std::vector<std::string>{bobs}) << "each user's records under their own";
  auto of_carol = alice->FetchDevices(User("carol"));
  ASSERT_TRUE(of_carol.ok()) << of_carol.status().ToString();
  EXPECT_TRUE(of_carol->empty());

  ASSERT_TRUE(alice->PublishDevice(laptop).ok());
  of_alice = bob->FetchDevices(User("alice"));
  ASSERT_TRUE(of_alice.ok()) << of_alice.status().ToString();
  EXPECT_EQ(std::set<std::string>(of_alice->begin(), of_alice->end()),
            (std::set<std::string>{phone, laptop}));
}

TEST_P(SealedLogConformance, AnAuthenticatingBackendNamesWritersAndKeepsOthersOut) {
  if (!authenticates_senders_) {
    GTEST_SKIP() << GetParam()
                 << " does not authenticate frame writers (Frame::sender is empty; readers check "
                    "devices with FetchDevices)";
  }
  auto alice = Connect("alice"), bob = Connect("bob"), carol = Connect("carol");
  ASSERT_TRUE(alice && bob && carol);
  const std::string log = LogId();
  ASSERT_TRUE(alice->EnsureLog(Log(log, {"alice", "bob"})).ok());
  const auto frames = Frames("writers", 1, 4, max_frame_bytes_);
  for (size_t i = 0; i < frames.size(); ++i) {
    sync::Backend& writer = i % 2 == 0 ? *alice : *bob;
    ASSERT_EQ(PushAll(writer, log, std::span(&frames[i], 1)).size(), 1u);
  }

  // A non-member can neither write to the log nor read it.
  const Frame forged{.id = "o.forged", .bytes = "\xE1\x03 from carol"};
  auto pushed = carol->PushFrames(log, std::span(&forged, 1));
  EXPECT_TRUE(!pushed.ok() || !pushed->at(0).status.ok()) << "carol is not a member";
  EXPECT_FALSE(carol->PullFrames(log, "", 10).ok()) << "carol is not a member";

  std::string cursor;
  sync::FramePage first;
  const auto pulled = PullAllFrames(*bob, log, &cursor, 100, &first);
  ASSERT_EQ(Ids(pulled), Ids(frames)) << "nothing of carol's";
  for (size_t i = 0; i < pulled.size(); ++i) {
    EXPECT_EQ(pulled[i].sender, User(i % 2 == 0 ? "alice" : "bob")) << "frame " << i;
  }
  // What a reader checks against the conversation's members before trusting
  // the log (a squatter's log has another creator or other members).
  EXPECT_EQ(first.log_creator, User("alice"));
  EXPECT_EQ(std::set<std::string>(first.log_members.begin(), first.log_members.end()),
            (std::set<std::string>{User("alice"), User("bob")}));
}

INSTANTIATE_TEST_SUITE_P(Backends, SealedLogConformance, ::testing::ValuesIn(HarnessNames()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace tidings::conformance
