// End-to-end encrypted sync through the reconciler, with an in-process frame
// server (one total order per log, dedup by frame id, a per-user directory).
// The simulation (simulation_test.cc) and the moto and emulator suites cover
// the same paths with faults and real servers.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "../engine/test_util.h"
#include "crypto/hash.h"
#include "sync/core/held_operations.h"
#include "sync/core/reconciler.h"
#include "sync/e2e/frame.h"
#include "sync/wire/operation_codec.h"
#include "tests/common/test_files.h"
#include "tests/sync/frame_backend.h"

namespace tidings::sync {
namespace {

using testing::FrameBackend;
using testing::FrameServer;

struct Device {
  testing::TempDir dir;
  std::unique_ptr<engine::Store> store;
  std::unique_ptr<FrameBackend> backend;
  std::unique_ptr<Reconciler> reconciler;
  int64_t now = 1'700'000'000'000;

  Device(FrameServer* server, const std::string& user, SyncConfig config = {}) {
    store =
        engine::Store::Open(dir.path(), testing::TestKey(), testing::CreateOptions(user)).value();
    backend = std::make_unique<FrameBackend>(server, user);
    Restart(config);
  }
  // A new reconciler on the same store (a restart, or an upgrade).
  void Restart(SyncConfig config) {
    reconciler = std::make_unique<Reconciler>(
        &store->sync_log(), backend.get(), config, [this] { return now += 10; },
        [] { return uint64_t{42}; });
  }
  void Sync() { ASSERT_TRUE(reconciler->SyncAll().ok()); }
  std::vector<std::string> Bodies(const std::string& conv) {
    engine::PageRequest req;
    req.conversation_id = conv;
    req.limit = 1000;
    std::vector<std::string> out;
    auto page = store->Page(req);
    if (!page.ok()) return out;
    for (const auto& m : *page) out.push_back(m.body);
    return out;
  }
  std::string LogId(const std::string& conv) {
    std::string ids = store->sync_log().GetSyncState(e2e::BindingKey("frames", conv)).value();
    return ids.substr(0, ids.find('\n'));
  }
};

void SyncAll(std::vector<Device*> devices, int rounds = 3) {
  for (int i = 0; i < rounds; ++i) {
    for (auto* d : devices) d->Sync();
  }
}

class E2eSync : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { server.authenticate = GetParam(); }
  FrameServer server;
};

TEST_P(E2eSync, TwoUsersConvergeAndTheServerHoldsNoPlaintext) {
  Device doctor(&server, "doctor-CANARYUSER");
  Device patient(&server, "patient");
  ASSERT_TRUE(
      doctor.store->PutConversation("consult-CANARYCONV", "Title CANARYTITLE", {"patient"}).ok());
  ASSERT_TRUE(doctor.store->Send({"consult-CANARYCONV", "ibuprofen 400 mg CANARYBODY"}).ok());
  SyncAll({&doctor, &patient});
  ASSERT_TRUE(patient.store->Send({"consult-CANARYCONV", "thanks CANARYREPLY"}).ok());
  SyncAll({&doctor, &patient});

  const std::vector<std::string> want = {"ibuprofen 400 mg CANARYBODY", "thanks CANARYREPLY"};
  EXPECT_EQ(doctor.Bodies("consult-CANARYCONV"), want);
  EXPECT_EQ(patient.Bodies("consult-CANARYCONV"), want);
  auto conv = patient.store->GetConversation("consult-CANARYCONV");
  ASSERT_TRUE(conv.ok());
  EXPECT_EQ(conv->title, "Title CANARYTITLE");

  const std::string wire = server.AllBytes();
  ASSERT_FALSE(wire.empty());
  for (std::string marker :
       {"CANARYUSER", "CANARYCONV", "CANARYTITLE", "CANARYBODY", "CANARYREPLY"}) {
    EXPECT_EQ(wire.find(marker), std::string::npos) << marker;
    EXPECT_EQ(wire.find(crypto::HexEncode(marker)), std::string::npos);
  }
  EXPECT_EQ(doctor.reconciler->GetStatus("consult-CANARYCONV").rejected_frames, 0u);
  EXPECT_TRUE(doctor.reconciler->GetStatus("consult-CANARYCONV").end_to_end);
}

// Whether `d`'s next round asks for its second page of frames while the
// first page's messages commit: the store's listener, on the committing
// thread, waits up to `wait` for that request, which waits for the listener.
bool ReadWhileCommitting(Device& d, std::chrono::milliseconds wait) {
  std::mutex mu;
  std::condition_variable cv;
  int pulls = 0;
  bool seen = false, overlapped = false;
  d.backend->before_pull = [&] {
    std::unique_lock<std::mutex> lock(mu);
    if (++pulls != 2) return;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return seen; });
  };
  uint64_t id = d.store->Subscribe([&](const engine::ChangeEvent& e) {
    if (e.kind != engine::ChangeEvent::Kind::kMessageAdded) return;
    std::unique_lock<std::mutex> lock(mu);
    if (seen) return;
    overlapped = cv.wait_for(lock, wait, [&] { return pulls >= 2; });
    seen = true;
    cv.notify_all();
  });
  d.Sync();
  d.store->Unsubscribe(id);
  d.backend->before_pull = nullptr;
  return overlapped;
}

TEST_P(E2eSync, TheNextPageOfFramesIsReadWhileThePageBeforeCommits) {
  for (bool read_ahead : {true, false}) {
    SCOPED_TRACE(read_ahead ? "read ahead" : "one after the other");
    FrameServer fresh;
    fresh.authenticate = GetParam();
    SyncConfig config;
    config.pull_page_size = 5;
    config.read_ahead = read_ahead;
    Device doctor(&fresh, "doctor");
    Device patient(&fresh, "patient", config);
    ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
    ASSERT_TRUE(doctor.store->Send({"c", "first"}).ok());
    SyncAll({&doctor, &patient});  // the patient holds the key: later frames are messages
    std::vector<std::string> want = {"first"};
    for (int i = 0; i < 12; ++i) {
      want.push_back("m" + std::to_string(i));
      ASSERT_TRUE(doctor.store->Send({"c", want.back()}).ok());
    }
    doctor.Sync();
    EXPECT_EQ(ReadWhileCommitting(patient, read_ahead ? std::chrono::milliseconds(10'000)
                                                      : std::chrono::milliseconds(0)),
              read_ahead);
    EXPECT_EQ(patient.Bodies("c"), want);
    EXPECT_EQ(patient.reconciler->GetStatus("c").rejected_frames, 0u);
  }
}

TEST_P(E2eSync, PlaintextModeIsExplicitAndStaysPlaintext) {
  Device doctor(&server, "doctor");
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  ASSERT_TRUE(doctor.store->sync_log().PutSyncState(e2e::ModeKey("c"), "plain").ok());
  ASSERT_TRUE(doctor.store->Send({"c", "hello"}).ok());
  doctor.Sync();  // this backend has no plaintext path: the push fails, nothing is sealed
  EXPECT_TRUE(server.logs.empty());
  EXPECT_FALSE(doctor.reconciler->GetStatus("c").end_to_end);
}

TEST_P(E2eSync, ForgedAndGarbageFramesAreSkippedCountedAndDoNotStall) {
  Device doctor(&server, "doctor");
  Device patient(&server, "patient");
  Device mallory(&server, "mallory");
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  ASSERT_TRUE(doctor.store->Send({"c", "one"}).ok());
  SyncAll({&doctor, &patient});
  const std::string log = doctor.LogId("c");
  ASSERT_FALSE(log.empty());

  // Garbage, a frame of another type with broken bytes, a copy of a real
  // frame under another id (replay), and one from a device nobody knows.
  mallory.backend->Inject(log, {"g1", "not a frame", "", 0, ""});
  mallory.backend->Inject(log, {"g2", std::string("\xE1\x03garbage", 9), "", 0, ""});
  mallory.backend->Inject(log, {"g3", server.logs[log].back().bytes, "", 0, ""});
  ASSERT_TRUE(mallory.store->PutConversation("m", "", {"doctor"}).ok());
  ASSERT_TRUE(mallory.store->Send({"m", "mallory's"}).ok());
  mallory.Sync();
  const std::string other_log = mallory.LogId("m");
  ASSERT_FALSE(other_log.empty());
  // mallory's own sealed op replayed into the doctor's log
  mallory.backend->Inject(log, {"g4", server.logs[other_log].back().bytes, "", 0, ""});

  ASSERT_TRUE(doctor.store->Send({"c", "two"}).ok());
  SyncAll({&doctor, &patient});
  const std::vector<std::string> want = {"one", "two"};
  EXPECT_EQ(doctor.Bodies("c"), want);
  EXPECT_EQ(patient.Bodies("c"), want);
  // g1, g2 and g4 are rejected; g3 is the same operation again (idempotent).
  EXPECT_GE(patient.reconciler->GetStatus("c").rejected_frames, 3u);
  EXPECT_FALSE(patient.reconciler->GetStatus("c").last_rejection.empty());
}

TEST_P(E2eSync, ARemovedMemberCannotOpenWhatFollows) {
  Device doctor(&server, "doctor");
  Device patient(&server, "patient");
  Device nurse(&server, "nurse");
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient", "nurse"}).ok());
  ASSERT_TRUE(doctor.store->Send({"c", "before"}).ok());
  SyncAll({&doctor, &patient, &nurse});
  EXPECT_EQ(nurse.Bodies("c"), std::vector<std::string>{"before"});

  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  ASSERT_TRUE(doctor.store->Send({"c", "after"}).ok());
  SyncAll({&doctor, &patient, &nurse});
  EXPECT_EQ(patient.Bodies("c"), (std::vector<std::string>{"before", "after"}));
  EXPECT_EQ(nurse.Bodies("c"), std::vector<std::string>{"before"});
  // The nurse's device keeps syncing without error; what it cannot open waits.
  EXPECT_TRUE(nurse.reconciler->GetStatus("c").last_error.empty());

  // And what the removed nurse still posts is refused by the others.
  ASSERT_TRUE(nurse.store->Send({"c", "from the removed nurse"}).ok());
  SyncAll({&doctor, &patient, &nurse});
  EXPECT_EQ(patient.Bodies("c"), (std::vector<std::string>{"before", "after"}));
  EXPECT_EQ(doctor.Bodies("c"), (std::vector<std::string>{"before", "after"}));

  // So does a device that joins later: its first read re-reads the log with
  // the epochs' starts, so it knows the nurse's frame sits after her removal.
  Device patient2(&server, "patient");
  SyncAll({&patient2, &doctor, &patient, &patient2, &doctor, &patient2});
  EXPECT_EQ(patient2.Bodies("c"), (std::vector<std::string>{"before", "after"}));
  EXPECT_EQ(patient2.reconciler->GetStatus("c").last_rejection,
            "an operation from a removed member or device");
}

TEST_P(E2eSync, MessagesWaitForTheirKeyAndOpenWhenItComes) {
  Device doctor(&server, "doctor");
  Device patient(&server, "patient");
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  ASSERT_TRUE(doctor.store->Send({"c", "first"}).ok());
  SyncAll({&doctor, &patient});
  // A second device of the patient appears after the messages were sent.
  Device patient2(&server, "patient");
  SyncAll({&patient2, &doctor, &patient, &patient2});
  EXPECT_EQ(patient2.Bodies("c"), std::vector<std::string>{"first"});
  ASSERT_TRUE(patient2.store->Send({"c", "from the new phone"}).ok());
  SyncAll({&patient2, &doctor, &patient});
  EXPECT_EQ(doctor.Bodies("c"), (std::vector<std::string>{"first", "from the new phone"}));
}

// A member that learns a conversation from its first messages polls it as
// an active one (active_poll_ms), not at the idle rate.
TEST_P(E2eSync, AConversationLearnedWithItsMessagesIsPolledAsActive) {
  const SyncConfig config;  // 2 s while active, 60 s idle
  Device doctor(&server, "doctor", config);
  Device patient(&server, "patient", config);
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  ASSERT_TRUE(doctor.store->Send({"c", "first"}).ok());
  SyncAll({&doctor, &patient});
  ASSERT_EQ(patient.Bodies("c"), std::vector<std::string>{"first"});
  EXPECT_LE(patient.reconciler->NextPollMs("c") - patient.now, config.active_poll_ms);
}

// A new device reads the whole log before anyone can give it a key. It
// keeps none of those frames (a long history would overflow the frames a
// log keeps waiting); the share that binds the log starts a re-read from the
// log's start up to that share, which opens them all.
class NewDevice : public E2eSync {
 protected:
  void SetUp() override {
    E2eSync::SetUp();
    ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
    for (int i = 0; i < 60; ++i) {
      sent.push_back("m" + std::to_string(i));
      ASSERT_TRUE(doctor.store->Send({"c", sent.back()}).ok());
    }
    SyncAll({&doctor, &patient});
    small.max_pending_frames = 10;
    small.pull_page_size = 7;  // the share that binds the log sits inside a page
    small.max_pull_pages_per_round = 2;
  }
  // A device's state of the conversation's log, as stored.
  e2e::LogState StoredLog(Device& d) {
    auto raw = d.store->sync_log().GetSyncState(e2e::LogStateKey("frames", doctor.LogId("c")));
    EXPECT_TRUE(raw.ok());
    if (raw->empty()) return {};  // not read yet
    auto log = e2e::DecodeLogState(*raw);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return std::move(log).value();
  }
  // Rounds of patient2 (restarted after each, so every step goes through
  // its stored state) and the others, until patient2 holds `want`.
  void SyncUntil(Device& d, const std::vector<std::string>& want,
                 std::optional<SyncConfig> config = std::nullopt) {
    for (int round = 0; round < 40 && d.Bodies("c") != want; ++round) {
      d.Sync();
      d.Restart(config.value_or(small));
      doctor.Sync();
      patient.Sync();
    }
  }
  // The server's copy of the share a re-read stops at (end() if none).
  std::vector<Frame>::iterator ShareOfReRead(const e2e::LogState& log) {
    auto& frames = server.logs[doctor.LogId("c")];
    return std::find_if(frames.begin(), frames.end(),
                        [&](const Frame& f) { return e2e::FrameDigest(f) == log.replay_until; });
  }
  // A message the doctor sends now reaches `d` once, after the rest.
  void ExpectTheNextMessageArrivesOnce(Device& d) {
    ASSERT_TRUE(doctor.store->Send({"c", "after"}).ok());
    sent.push_back("after");
    SyncAll({&doctor, &d});
    EXPECT_EQ(d.Bodies("c"), sent);
  }
  // The doctor adds the nurse (a new epoch), sends "with nurse", and
  // everyone syncs.
  void AddNurse(Device& nurse) {
    ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient", "nurse"}).ok());
    sent.push_back("with nurse");
    ASSERT_TRUE(doctor.store->Send({"c", sent.back()}).ok());
    SyncAll({&doctor, &patient, &nurse});
    ASSERT_EQ(nurse.Bodies("c"), std::vector<std::string>{"with nurse"});
  }
  // A new phone of the patient reads the history to the end: the bodies
  // of the messages it merged, in the order it merged them.
  std::vector<std::string> MergeOrder(bool newest_first) {
    SyncConfig config = small;
    config.newest_first = newest_first;
    Device phone(&server, "patient", config);
    phone.backend->history_overfill = 3;
    std::vector<std::string> added;  // bodies, in the order they were merged
    // filling_history then, in the sync's status and in the store's
    std::vector<std::pair<bool, bool>> filling;
    phone.store->Subscribe([&](const engine::ChangeEvent& e) {
      if (e.kind != engine::ChangeEvent::Kind::kMessageAdded) return;
      auto m = phone.store->Get(e.message_id);
      if (m.ok()) added.push_back(m->body);
      auto stored = ReadSyncStatus(phone.store->sync_log(), "frames");
      const bool in_store =
          stored.ok() && std::any_of(stored->begin(), stored->end(), [](const auto& st) {
            return st.conversation_id == "c" && st.filling_history;
          });
      filling.emplace_back(phone.reconciler->GetStatus("c").filling_history, in_store);
    });
    SyncUntil(phone, sent, config);
    // While the re-read runs the status says older history is coming: in the
    // store (what the CLI reads) when the preview merges, in the running
    // sync's status when the re-read merges its last message, rounds later.
    EXPECT_FALSE(filling.empty());
    if (!filling.empty()) {
      EXPECT_TRUE(filling.front().second) << "in the store, at the first message";
      EXPECT_TRUE(filling.back().first) << "in the sync's status, at the last message";
    }
    EXPECT_FALSE(phone.reconciler->GetStatus("c").filling_history);
    auto stored = ReadSyncStatus(phone.store->sync_log(), "frames");
    EXPECT_TRUE(stored.ok());
    for (const auto& st : stored.ok() ? *stored : std::vector<ConversationStatus>{}) {
      EXPECT_FALSE(st.filling_history) << st.conversation_id;
    }
    EXPECT_EQ(phone.Bodies("c"), sent);
    EXPECT_EQ(added.size(), sent.size()) << "each message merged once";
    EXPECT_EQ(phone.backend->history_pulls > 0, newest_first);
    const e2e::LogState log = StoredLog(phone);
    EXPECT_FALSE(log.rereading);
    EXPECT_EQ(log.rejected, 0u) << log.last_rejection;
    EXPECT_EQ(log.unopened, 0u);
    ExpectTheNextMessageArrivesOnce(phone);
    added.pop_back();  // "after"
    return added;
  }
  Device doctor{&server, "doctor"};
  Device patient{&server, "patient"};
  std::vector<std::string> sent;
  SyncConfig small;
};

TEST_P(NewDevice, OpensAHistoryLongerThanThePendingBound) {
  Device patient2(&server, "patient", small);
  patient2.Sync();
  EXPECT_TRUE(StoredLog(patient2).pending.empty()) << "nothing kept";
  EXPECT_GT(StoredLog(patient2).unopened, 0u) << "counted for the re-read";
  SyncUntil(patient2, sent);
  ASSERT_EQ(patient2.Bodies("c"), sent);
  const e2e::LogState log = StoredLog(patient2);
  EXPECT_FALSE(log.rereading);
  EXPECT_TRUE(log.pending.empty());
  EXPECT_EQ(log.dropped_pending, 0u);
  EXPECT_EQ(log.rejected, 0u) << log.last_rejection;
  // What comes after the re-read is read once, in order.
  ExpectTheNextMessageArrivesOnce(patient2);
}

TEST_P(NewDevice, AReReadWhoseShareIsGoneEndsAtTheEndOfTheLog) {
  Device patient2(&server, "patient", small);
  // Once the re-read is under way, the share it would stop at is gone from
  // the server (in its place, bytes that are no frame: the fake's cursors
  // are indexes).
  size_t replaced = 0;
  patient2.backend->before_pull = [&] {
    const e2e::LogState log = StoredLog(patient2);
    if (replaced > 0 || !log.rereading) return;
    for (auto share = ShareOfReRead(log); share != server.logs[doctor.LogId("c")].end();
         share = ShareOfReRead(log)) {
      share->bytes = "gone";
      ++replaced;
    }
  };
  SyncUntil(patient2, sent);
  ASSERT_EQ(replaced, 1u);
  EXPECT_EQ(patient2.Bodies("c"), sent);
  const e2e::LogState log = StoredLog(patient2);
  EXPECT_FALSE(log.rereading);
  EXPECT_EQ(log.last_rejection, "the key share a re-read of the log stops at is gone");
  ExpectTheNextMessageArrivesOnce(patient2);
}

// A copy of the share that bound the log, elsewhere in the log, is another
// frame: the re-read does not stop there.
TEST_P(NewDevice, ACopyOfTheShareEarlierInTheLogDoesNotEndTheReRead) {
  Device patient2(&server, "patient", small);
  bool copied = false;
  patient2.backend->before_pull = [&] {
    const e2e::LogState log = StoredLog(patient2);
    if (copied || !log.rereading) return;
    auto& frames = server.logs[doctor.LogId("c")];
    auto share = ShareOfReRead(log);
    ASSERT_NE(share, frames.end());
    // In place of the first frame that is not a message (the re-read is
    // about to read it), the share's bytes.
    auto early = std::find_if(frames.begin(), share, [](const Frame& f) {
      auto type = e2e::PeekFrameType(f.bytes);
      return type.ok() && type.value() != e2e::FrameType::kSealedOp;
    });
    ASSERT_NE(early, share);
    early->bytes = share->bytes;
    copied = true;
  };
  SyncUntil(patient2, sent);
  ASSERT_TRUE(copied);
  EXPECT_EQ(patient2.Bodies("c"), sent);
  EXPECT_FALSE(StoredLog(patient2).rereading);
}

// Several epochs (the title changed twice): the share that binds the log
// brings one key, and the re-shares of the others follow it over several
// pages. The re-read waits for the log's end, so every key is there first.
TEST_P(NewDevice, ReSharesOverSeveralPagesAreAllOpenBeforeTheReRead) {
  for (const char* title : {"second", "third"}) {
    ASSERT_TRUE(doctor.store->PutConversation("c", title, {"patient"}).ok());
    for (int i = 0; i < 10; ++i) {
      sent.push_back(std::string(title) + " " + std::to_string(i));
      ASSERT_TRUE(doctor.store->Send({"c", sent.back()}).ok());
    }
    SyncAll({&doctor, &patient});
  }
  small.pull_page_size = 2;
  Device patient2(&server, "patient", small);
  SyncUntil(patient2, sent);
  EXPECT_EQ(patient2.Bodies("c"), sent);
  const e2e::LogState log = StoredLog(patient2);
  EXPECT_GE(log.epochs.size(), 3u);
  EXPECT_TRUE(log.pending.empty());
  EXPECT_EQ(log.dropped_pending, 0u);
}

// A member who holds only a later epoch (the nurse, added after the first
// 60 messages) re-shares to the new device first: its re-read opens what
// that epoch's key opens and counts the rest, and the doctor's later
// re-share of the first epoch starts another re-read.
TEST_P(NewDevice, AKeyThatArrivesAfterTheReReadStartsAnother) {
  Device nurse(&server, "nurse");
  AddNurse(nurse);
  Device patient2(&server, "patient", small);
  for (int i = 0; i < 8; ++i) {
    patient2.Sync();
    patient2.Restart(small);
    nurse.Sync();
  }
  EXPECT_EQ(patient2.Bodies("c"), std::vector<std::string>{"with nurse"});
  EXPECT_EQ(StoredLog(patient2).unopened, 60u) << "the first epoch's, counted, not kept";
  SyncUntil(patient2, sent);
  EXPECT_EQ(patient2.Bodies("c"), sent);
  const e2e::LogState log = StoredLog(patient2);
  EXPECT_EQ(log.unopened, 0u);
  EXPECT_EQ(log.dropped_pending, 0u);
}

// The re-read from the log's start judges every frame, but the newest
// messages show first: before it begins, the newest pages older than the
// share are read newest first, and what every position's judgement accepts
// is merged. Frames within 5 s of the share are left to the re-read. m59
// was sent a second before the phone announced itself and two before the
// doctor's share to it: m55 is the newest a preview takes.
TEST_P(NewDevice, TheNewestMessagesShowBeforeTheReReadReachesThem) {
  const std::vector<std::string> history = sent;
  const std::vector<std::string> merged = MergeOrder(/*newest_first=*/true);
  ASSERT_EQ(merged.size(), history.size());
  // The preview's first page, in log order, ends at m55.
  auto m55 = std::find(merged.begin(), merged.end(), "m55");
  EXPECT_LT(m55 - merged.begin(), 7) << ::testing::PrintToString(merged);
  const auto m0 = std::find(merged.begin(), merged.end(), "m0");
  EXPECT_GT(m0, m55);
  // A page's worth, the newest, and no more (the backend's pages hold three
  // times that): then the re-read from m0.
  EXPECT_EQ(m0 - merged.begin(), static_cast<ptrdiff_t>(small.pull_page_size));
  // Within 5 s of the share: left to the re-read, which reaches it last.
  EXPECT_GT(std::find(merged.begin(), merged.end(), "m59"), m0);
}

TEST_P(NewDevice, OldestFirstTheReReadShowsTheOldestFirst) {
  const std::vector<std::string> history = sent;
  EXPECT_EQ(MergeOrder(/*newest_first=*/false), history);
}

// The newest pages hold a frame the removed nurse sealed under the epoch she
// still has, after the epoch that removed her: the preview does not take it
// (she is outside an epoch the new device holds), and the re-read, which
// knows where that epoch starts, refuses it.
TEST_P(NewDevice, APreviewTakesNothingFromARemovedMember) {
  Device nurse(&server, "nurse");
  AddNurse(nurse);
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  sent.push_back("without nurse");
  ASSERT_TRUE(doctor.store->Send({"c", sent.back()}).ok());
  SyncAll({&doctor, &patient});
  ASSERT_TRUE(nurse.store->Send({"c", "from the removed nurse"}).ok());
  nurse.Sync();
  for (int i = 0; i < 8; ++i) {
    sent.push_back("later " + std::to_string(i));
    ASSERT_TRUE(doctor.store->Send({"c", sent.back()}).ok());
  }
  SyncAll({&doctor, &patient});
  ASSERT_EQ(patient.Bodies("c"), sent);

  Device phone(&server, "patient", small);
  SyncUntil(phone, sent);
  EXPECT_EQ(phone.Bodies("c"), sent);
  EXPECT_GT(phone.backend->history_pulls, 0u);
  const e2e::LogState log = StoredLog(phone);
  EXPECT_EQ(log.rejected, 1u);
  EXPECT_EQ(log.last_rejection, "an operation from a removed member or device");
}

// Format 2 kept what a device read with no key (up to the bound, dropping
// the oldest): such a record, still unbound, re-reads them once bound.
TEST(LogStateRecord, AnUnboundFormat2RecordThatDroppedFramesReadsThemAgain) {
  e2e::LogState old;
  old.log_id = "e0123";
  old.cursor = "70";
  old.dropped_pending = 60;
  std::string bytes = e2e::EncodeLogState(old);
  // Format 3 appends nine zero bytes here: unopened, unopened_top,
  // replay_until (empty), replay_until_ms, rereading, past_share,
  // resume_cursor (empty), reread_current (0, empty).
  ASSERT_EQ(bytes.substr(bytes.size() - 9), std::string(9, '\0'));
  bytes.resize(bytes.size() - 9);
  bytes[0] = 2;
  auto decoded = e2e::DecodeLogState(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->unopened, 60u);
  EXPECT_EQ(decoded->cursor, "70");
  // A bound one was read with its keys: nothing to read again.
  old.conversation_id = "c";
  bytes = e2e::EncodeLogState(old);
  bytes.resize(bytes.size() - 9);
  bytes[0] = 2;
  decoded = e2e::DecodeLogState(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->unopened, 0u);
  // And format 3 keeps a re-read under way.
  old.conversation_id.clear();
  old.unopened = 3;
  old.unopened_top = 4;
  old.replay_until_ms = 77;
  old.past_share = true;
  old.replay_until = std::string(64, 'a');
  old.rereading = true;
  old.resume_cursor = "71";
  old.reread_current = {2, "d2"};
  decoded = e2e::DecodeLogState(e2e::EncodeLogState(old));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->unopened, 3u);
  EXPECT_EQ(decoded->unopened_top, 4u);
  EXPECT_EQ(decoded->replay_until_ms, 77u);
  EXPECT_TRUE(decoded->past_share);
  EXPECT_EQ(decoded->replay_until, old.replay_until);
  EXPECT_TRUE(decoded->rereading);
  EXPECT_EQ(decoded->reread_current, old.reread_current);
  EXPECT_EQ(decoded->resume_cursor, "71");
}

// A count in the record that is larger than the rest of the record could
// hold is replaced: DATA_LOSS, as any broken record, never a resize to it.
void ExpectCountChecked(const std::string& bytes, const std::string& first_entry, char count) {
  const size_t first = bytes.find(first_entry);
  ASSERT_NE(first, std::string::npos);
  ASSERT_EQ(bytes[first - 1], count);
  for (const std::string& broken_count :
       {std::string(1, static_cast<char>(count + 1)), std::string("\x80\x80\x80\x80\x80\x20")}) {
    std::string broken = bytes.substr(0, first - 1) + broken_count + bytes.substr(first);
    auto decoded = e2e::DecodeLogState(broken);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.status().code(), Code::kDataLoss) << decoded.status().ToString();
  }
}

TEST(LogStateRecord, CountsLargerThanTheRecordAreDataLossNotAllocations) {
  e2e::LogState state;
  state.log_id = "e0123";
  state.chain = {{5, "SHARERX1"}, {6, "SHARERX2"}};
  for (const char* id : {"FRAMEID1", "FRAMEID2"}) {
    e2e::PendingFrame p;
    p.frame.id = id;
    p.frame.bytes = "sealed";
    state.pending.push_back(p);
  }
  const std::string bytes = e2e::EncodeLogState(state);
  ASSERT_TRUE(e2e::DecodeLogState(bytes).ok());
  // Each count sits just before its first entry: the epoch chain's first
  // id (number 5, sharer of 8 bytes) and the first pending frame's id.
  ExpectCountChecked(bytes, std::string("\x05\x08") + "SHARERX1", 2);
  ExpectCountChecked(bytes, std::string("\x08") + "FRAMEID1", 2);
}

TEST_P(E2eSync, AnOversizedMessageFailsWithThisConversationsLimit) {
  Device doctor(&server, "doctor");
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  ASSERT_TRUE(doctor.store->Send({"c", std::string(5000, 'x')}).ok());
  doctor.Sync();
  auto outbox = doctor.store->sync_log().Outbox(0, "c", "frames");
  ASSERT_TRUE(outbox.ok());
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_TRUE(outbox->front().failed);
  EXPECT_NE(outbox->front().last_error.find("bytes of body"), std::string::npos)
      << outbox->front().last_error;
}

TEST_P(E2eSync, TwoDevicesThatMadeTheSameConversationApartMeet) {
  Device doctor(&server, "doctor");
  Device patient(&server, "patient");
  ASSERT_TRUE(doctor.store->PutConversation("consult-42", "", {"patient"}).ok());
  ASSERT_TRUE(patient.store->PutConversation("consult-42", "", {"doctor"}).ok());
  ASSERT_TRUE(doctor.store->Send({"consult-42", "from the doctor"}).ok());
  ASSERT_TRUE(patient.store->Send({"consult-42", "from the patient"}).ok());
  SyncAll({&doctor, &patient}, 4);
  EXPECT_EQ(server.logs.size(), 2u);
  ASSERT_TRUE(doctor.store->Send({"consult-42", "later"}).ok());
  SyncAll({&doctor, &patient}, 3);
  EXPECT_EQ(doctor.Bodies("consult-42").size(), 3u);
  EXPECT_EQ(patient.Bodies("consult-42"), doctor.Bodies("consult-42"));
  EXPECT_EQ(doctor.LogId("consult-42"), patient.LogId("consult-42"));
}

TEST_P(E2eSync, ALogMadeByAnOutsiderForAKnownConversationIsRefused) {
  Device doctor(&server, "doctor");
  Device patient(&server, "patient");
  Device squatter(&server, "squatter");
  ASSERT_TRUE(doctor.store->PutConversation("consult-42", "", {"patient"}).ok());
  ASSERT_TRUE(doctor.store->Send({"consult-42", "private"}).ok());
  SyncAll({&doctor, &patient});
  // The squatter makes "consult-42" too, with the doctor and the patient.
  ASSERT_TRUE(squatter.store->PutConversation("consult-42", "", {"doctor", "patient"}).ok());
  ASSERT_TRUE(squatter.store->Send({"consult-42", "squatted"}).ok());
  SyncAll({&squatter, &doctor, &patient, &squatter, &doctor, &patient});
  ASSERT_TRUE(doctor.store->Send({"consult-42", "still private"}).ok());
  SyncAll({&doctor, &patient, &squatter});
  const std::vector<std::string> want = {"private", "still private"};
  EXPECT_EQ(doctor.Bodies("consult-42"), want);
  EXPECT_EQ(patient.Bodies("consult-42"), want);
  // Nothing of the doctor's reached the squatter.
  for (const auto& body : squatter.Bodies("consult-42")) EXPECT_EQ(body, "squatted");
}

// Puts every file on "the object store" at once.
class InstantUploads final : public AttachmentTransfers {
 public:
  Result<Progress> UploadFor(engine::Operation* op) override {
    for (auto& a : op->attachments) a.location = "bucket";
    return Progress::kDone;
  }
};

// Sends "the scan" with a small file to conversation "c": an operation of
// wire version 3, which a build reading version 2 holds.
void SendScan(Device& d) {
  const std::string path = d.dir.path() + "-scan.pdf";
  tidings::testing::WriteWholeFile(path, "%PDF scan");
  engine::SendRequest with_file{.conversation_id = "c", .body = "the scan"};
  with_file.attachments.push_back({.path = path, .name = "scan.pdf"});
  ASSERT_TRUE(d.store->Send(with_file).ok());
  std::remove(path.c_str());
}

// A device on an older build (reading wire version 2) pulls a sealed send
// with a file (version 3). The frame verifies but its operation is too new:
// kept, encrypted, among the pending frames (not refused, not lost), and
// opened by the upgraded build.
TEST_P(E2eSync, AnOperationFromANewerBuildWaitsSealedForTheUpgrade) {
  Device doctor(&server, "doctor");
  Device patient(&server, "patient", SyncConfig{.newest_operation_version = 2});
  InstantUploads uploads;
  doctor.reconciler->set_attachment_transfers(&uploads);
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  ASSERT_TRUE(doctor.store->Send({"c", "before"}).ok());
  SendScan(doctor);
  ASSERT_TRUE(doctor.store->Send({"c", "after"}).ok());
  SyncAll({&doctor, &patient});

  EXPECT_EQ(patient.Bodies("c"), (std::vector<std::string>{"before", "after"}));
  ConversationStatus st = patient.reconciler->GetStatus("c");
  EXPECT_EQ(st.waiting_for_upgrade, 1u);
  EXPECT_EQ(st.rejected_frames, 0u) << st.last_rejection;
  EXPECT_EQ(ReadSyncStatus(patient.store->sync_log(), "frames")->front().waiting_for_upgrade, 1u);
  patient.Restart(SyncConfig{.newest_operation_version = 2});
  SyncAll({&patient});
  EXPECT_EQ(patient.Bodies("c").size(), 2u) << "the same build still cannot read it";

  patient.Restart(SyncConfig{});  // the upgrade
  SyncAll({&patient}, 1);
  EXPECT_EQ(patient.Bodies("c"), (std::vector<std::string>{"before", "the scan", "after"}));
  EXPECT_EQ(patient.reconciler->GetStatus("c").waiting_for_upgrade, 0u);
  EXPECT_EQ(patient.reconciler->GetStatus("c").rejected_frames, 0u);
}

// A conversation upgraded to end to end still pulls its plaintext history,
// and the plaintext operations held there for an upgrade are retried after
// one, though its sealed push ran first in the round.
TEST_P(E2eSync, HeldPlaintextOperationsOfAnUpgradedConversationAreRetried) {
  Device doctor(&server, "doctor");
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  ASSERT_TRUE(doctor.store->Send({"c", "hello"}).ok());
  doctor.Sync();
  // Plaintext history, with one operation an older build held.
  ASSERT_TRUE(doctor.store->sync_log().Merge("frames", "c", {}, "7").ok());
  engine::Operation held;
  held.kind = engine::OpKind::kSend;
  held.op_id = held.message_id = "held-1";
  held.conversation_id = "c";
  held.author = "patient";
  held.at = {uint64_t{1'600'000'000'000} << 16, 9};
  held.body = "the scan";
  held.attachments.push_back({.name = "scan.pdf",
                              .content_type = "application/pdf",
                              .size = 9,
                              .object = std::string(32, '\x11'),
                              .object_size = 100,
                              .content_key = std::string(32, '\x22'),
                              .location = "bucket"});
  HeldOperations record{.reader = 2, .ops = {{wire::EncodeOperation(held), 1, "r-1"}}};
  ASSERT_TRUE(
      doctor.store->sync_log().PutSyncState(HeldKey("frames", "c"), EncodeHeld(record)).ok());

  doctor.Restart(SyncConfig{});
  doctor.Sync();
  auto merged = doctor.store->Get("held-1");
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->attachments.size(), 1u);
  EXPECT_EQ(doctor.store->sync_log().GetSyncState(HeldKey("frames", "c")).value(), "");
}

// A text too long for one sealed frame, sent before any sync handle
// recorded the backends' limits (so the API could not move it into a file
// at the door), travels as a file when the push finds it too long, if there
// is an object store: not parked. The sender keeps its text.
TEST_P(E2eSync, ALongTextSentBeforeAnySyncTravelsAsAFile) {
  Device doctor(&server, "doctor");
  Device patient(&server, "patient");
  InstantUploads uploads;
  doctor.reconciler->set_attachment_transfers(&uploads);
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  std::string text;
  while (text.size() < 5000) text += "take one tablet twice a day after meals; ";
  auto sent = doctor.store->Send({"c", text});
  ASSERT_TRUE(sent.ok());
  SyncAll({&doctor, &patient});

  auto outbox = doctor.store->sync_log().Outbox(0, "c", "frames");
  ASSERT_TRUE(outbox.ok());
  EXPECT_TRUE(outbox->empty()) << outbox->front().last_error;
  auto mine = doctor.store->Get(sent->id);
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(mine->body, text);
  ASSERT_EQ(mine->attachments.size(), 1u);
  EXPECT_TRUE(mine->attachments[0].body);
  EXPECT_EQ(mine->attachments[0].name, "message.txt");
  EXPECT_EQ(mine->attachments[0].size, text.size());
  auto objects = doctor.store->Attachments();
  ASSERT_TRUE(objects.ok());
  ASSERT_EQ(objects->size(), 1u);
  EXPECT_EQ(objects->front().references, 1u);

  // The patient's device has the message, its text still to fetch (this
  // test's object store keeps no bytes).
  auto theirs = patient.store->Get(sent->id);
  ASSERT_TRUE(theirs.ok()) << theirs.status().ToString();
  EXPECT_TRUE(theirs->body.empty());
  ASSERT_EQ(theirs->attachments.size(), 1u);
  EXPECT_TRUE(theirs->attachments[0].body);
  EXPECT_EQ(theirs->attachments[0].object, mine->attachments[0].object);
  EXPECT_EQ(doctor.store->Verify(nullptr)->problems, 0u);
}

// A push that cannot make the log fails; the pull after it has nothing to
// ask for and must not record a success over that failure (whatever the
// backoff's jitter drew).
TEST_P(E2eSync, APushThatCannotMakeTheLogKeepsItsErrorThroughTheRound) {
  for (uint64_t draw : {uint64_t{0}, uint64_t{42}, ~uint64_t{0}}) {
    Device doctor(&server, "doctor");
    doctor.reconciler = std::make_unique<Reconciler>(
        &doctor.store->sync_log(), doctor.backend.get(), SyncConfig{},
        [&doctor] { return doctor.now += 10; }, [draw] { return draw; });
    doctor.backend->fail_pushes = true;
    ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
    ASSERT_TRUE(doctor.store->Send({"c", "hello"}).ok());
    ASSERT_TRUE(doctor.reconciler->SyncAll().ok());
    ConversationStatus st = doctor.reconciler->GetStatus("c");
    EXPECT_NE(st.last_error, "") << "jitter draw " << draw;
    EXPECT_GE(st.consecutive_failures, 1u) << "jitter draw " << draw;
    EXPECT_EQ(st.last_success_ms, 0) << "jitter draw " << draw;
  }
}

// A frame held for an upgrade is counted as that, not also as a frame
// waiting for its key.
TEST_P(E2eSync, AFrameHeldForAnUpgradeIsNotWaitingForAKey) {
  Device doctor(&server, "doctor");
  Device patient(&server, "patient", SyncConfig{.newest_operation_version = 2});
  InstantUploads uploads;
  doctor.reconciler->set_attachment_transfers(&uploads);
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  SendScan(doctor);
  SyncAll({&doctor, &patient});
  ConversationStatus st = patient.reconciler->GetStatus("c");
  EXPECT_EQ(st.waiting_for_upgrade, 1u);
  EXPECT_EQ(st.pending_frames, 0u) << "the key is there; only the build is old";
}

// A SyncLog that fails its next `fail_merges` merges (a full disk, an I/O
// error), delegating everything else to the store.
class FlakyLog final : public engine::SyncLog {
 public:
  explicit FlakyLog(engine::SyncLog* s) : s_(s) {}
  int fail_merges = 0;
  const std::string& user_id() const override { return s_->user_id(); }
  Result<engine::Message> Get(const std::string& id) override { return s_->Get(id); }
  Result<engine::Conversation> GetConversation(const std::string& id) override {
    return s_->GetConversation(id);
  }
  Result<std::vector<engine::Conversation>> Conversations(size_t limit) override {
    return s_->Conversations(limit);
  }
  Result<std::vector<engine::OutboxEntry>> Outbox(size_t limit, const std::string& c,
                                                  std::string_view u) override {
    return s_->Outbox(limit, c, u);
  }
  Result<engine::OutboxCounts> CountOutbox(const std::string& c, std::string_view u,
                                           uint64_t limit) override {
    return s_->CountOutbox(c, u, limit);
  }
  Result<engine::OutboxEntry> GetOutboxEntry(uint64_t seq) override {
    return s_->GetOutboxEntry(seq);
  }
  Result<engine::RetentionPolicy> EffectiveRetention(const std::string& c) override {
    return s_->EffectiveRetention(c);
  }
  Result<std::vector<engine::AttachmentObject>> Attachments() override { return s_->Attachments(); }
  Result<engine::AttachmentObject> GetAttachment(std::string_view o) override {
    return s_->GetAttachment(o);
  }
  uint64_t Subscribe(Listener l) override { return s_->Subscribe(std::move(l)); }
  void Unsubscribe(uint64_t t) override { s_->Unsubscribe(t); }
  Status AckOutbox(uint64_t seq, const engine::RemoteAck& a) override {
    return s_->AckOutbox(seq, a);
  }
  Status FailOutbox(uint64_t seq, std::string_view r, bool p, int64_t n) override {
    return s_->FailOutbox(seq, r, p, n);
  }
  Status RetryFailed(uint64_t seq) override { return s_->RetryFailed(seq); }
  Status DiscardFailed(uint64_t seq) override { return s_->DiscardFailed(seq); }
  Status SetOutboxBackends(std::vector<std::string> b) override {
    return s_->SetOutboxBackends(std::move(b));
  }
  std::vector<std::string> OutboxBackends() const override { return s_->OutboxBackends(); }
  Result<std::string> GetCursor(std::string_view b, const std::string& c) override {
    return s_->GetCursor(b, c);
  }
  Status Merge(std::string_view b, const std::string& c, std::span<const engine::Operation> ops,
               std::string_view cur) override {
    if (fail_merges > 0) return --fail_merges, IOError("the test's disk is full");
    return s_->Merge(b, c, ops, cur);
  }
  Status Merge(std::string_view b, const std::string& c, std::span<const engine::Operation> ops,
               std::string_view cur, std::span<const engine::SyncStateWrite> st) override {
    if (fail_merges > 0) return --fail_merges, IOError("the test's disk is full");
    return s_->Merge(b, c, ops, cur, st);
  }
  Result<std::string> GetGap(std::string_view b, const std::string& c) override {
    return s_->GetGap(b, c);
  }
  Status MergeAt(std::string_view b, const std::string& c, std::span<const engine::Operation> ops,
                 const engine::PagePositions& at,
                 std::span<const engine::SyncStateWrite> st) override {
    if (fail_merges > 0) return --fail_merges, IOError("the test's disk is full");
    return s_->MergeAt(b, c, ops, at, st);
  }
  Status PutSyncState(std::string_view k, std::string_view v) override {
    return s_->PutSyncState(k, v);
  }
  Status PutSyncStates(std::span<const engine::SyncStateWrite> w) override {
    return s_->PutSyncStates(w);
  }
  Result<std::string> GetSyncState(std::string_view k) override { return s_->GetSyncState(k); }
  Status SetConversationInfo(const std::string& c, const std::string& t,
                             const std::vector<std::string>& m) override {
    return s_->SetConversationInfo(c, t, m);
  }
  Status SetConversationRemoteId(const std::string& c, std::string_view b,
                                 std::string_view r) override {
    return s_->SetConversationRemoteId(c, b, r);
  }
  Result<engine::AttachmentTransfer> GetAttachmentTransfer(std::string_view o) override {
    return s_->GetAttachmentTransfer(o);
  }
  Status SaveUploadProgress(std::string_view o, std::string_view p) override {
    return s_->SaveUploadProgress(o, p);
  }
  Status AttachmentUploaded(std::string_view o, std::string_view l) override {
    return s_->AttachmentUploaded(o, l);
  }
  Status AttachmentUploadFailed(std::string_view o, std::string_view r) override {
    return s_->AttachmentUploadFailed(o, r);
  }
  Status AttachmentDownloaded(std::string_view o) override { return s_->AttachmentDownloaded(o); }
  Status SetBodyFromAttachment(const std::string& m, std::string_view o) override {
    return s_->SetBodyFromAttachment(m, o);
  }
  Result<engine::OutboxEntry> CarryBodyAsAttachment(uint64_t seq) override {
    return s_->CarryBodyAsAttachment(seq);
  }
  Result<engine::AttachmentFiles*> attachment_files() override { return s_->attachment_files(); }
  Result<engine::PurgeReport> PurgeExpired() override { return s_->PurgeExpired(); }

 private:
  engine::SyncLog* s_;
};

// The upgraded build opens the held frame, and the batch that would merge
// it fails once (a full disk). The session's state in memory had already
// taken the frame out of pending and moved its reader and cursor on: it is
// reloaded from the store, so the next round opens the frame again.
TEST_P(E2eSync, AFailedCommitAfterTheUpgradeKeepsTheHeldFrame) {
  Device doctor(&server, "doctor");
  Device patient(&server, "patient", SyncConfig{.newest_operation_version = 2});
  InstantUploads uploads;
  doctor.reconciler->set_attachment_transfers(&uploads);
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  ASSERT_TRUE(doctor.store->Send({"c", "before"}).ok());
  SendScan(doctor);
  SyncAll({&doctor, &patient});
  ASSERT_EQ(patient.Bodies("c"), (std::vector<std::string>{"before"}));
  ASSERT_EQ(patient.reconciler->GetStatus("c").waiting_for_upgrade, 1u);

  // The upgrade, on a store whose next merge fails.
  FlakyLog flaky(&patient.store->sync_log());
  patient.reconciler = std::make_unique<Reconciler>(
      &flaky, patient.backend.get(), SyncConfig{}, [&patient] { return patient.now += 10; },
      [] { return uint64_t{42}; });
  flaky.fail_merges = 1;
  (void)patient.reconciler->SyncAll();  // fails: the disk is full
  ASSERT_EQ(flaky.fail_merges, 0);
  ASSERT_TRUE(doctor.store->Send({"c", "later"}).ok());
  for (int i = 0; i < 3; ++i) {
    patient.now += 3'600'000;  // past any backoff
    doctor.Sync();
    (void)patient.reconciler->SyncAll();
  }
  EXPECT_EQ(patient.Bodies("c"), (std::vector<std::string>{"before", "the scan", "later"}));
  // And after a restart (the state as the store has it):
  patient.Restart(SyncConfig{});
  patient.now += 3'600'000;
  (void)patient.reconciler->SyncAll();
  EXPECT_EQ(patient.Bodies("c"), (std::vector<std::string>{"before", "the scan", "later"}));
}

// Any sealed page whose commit fails once is pulled again, not skipped.
TEST_P(E2eSync, AFailedSealedCommitKeepsItsPage) {
  Device doctor(&server, "doctor");
  Device patient(&server, "patient");
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  ASSERT_TRUE(doctor.store->Send({"c", "before"}).ok());
  SyncAll({&doctor, &patient});
  ASSERT_EQ(patient.Bodies("c"), (std::vector<std::string>{"before"}));
  ASSERT_TRUE(doctor.store->Send({"c", "lost"}).ok());
  doctor.Sync();
  FlakyLog flaky(&patient.store->sync_log());
  patient.reconciler = std::make_unique<Reconciler>(
      &flaky, patient.backend.get(), SyncConfig{}, [&patient] { return patient.now += 10; },
      [] { return uint64_t{42}; });
  flaky.fail_merges = 1;
  (void)patient.reconciler->SyncAll();
  ASSERT_EQ(flaky.fail_merges, 0);
  ASSERT_TRUE(doctor.store->Send({"c", "later"}).ok());
  for (int i = 0; i < 3; ++i) {
    patient.now += 3'600'000;
    doctor.Sync();
    (void)patient.reconciler->SyncAll();
  }
  EXPECT_EQ(patient.Bodies("c"), (std::vector<std::string>{"before", "lost", "later"}));
}

// A new device whose first commit after the share bound the log fails
// (a full disk) while it discovers the log: the state is reloaded from the
// store, not saved over it, and the page is read again.
TEST_P(NewDevice, AFailedCommitWhileDiscoveringTheLogLosesNothing) {
  Device patient2(&server, "patient", small);
  FlakyLog flaky(&patient2.store->sync_log());
  patient2.reconciler = std::make_unique<Reconciler>(
      &flaky, patient2.backend.get(), small, [&patient2] { return patient2.now += 10; },
      [] { return uint64_t{42}; });
  // An unbound log's pages commit without a merge: the first merge is the
  // page with the share that binds the log.
  flaky.fail_merges = 1;
  for (int round = 0; round < 10 && flaky.fail_merges > 0; ++round) {
    (void)patient2.reconciler->SyncAll();
    doctor.Sync();  // re-shares once it knows the new device
    // A message right after the re-share, on the same page as it.
    sent.push_back("during " + std::to_string(round));
    ASSERT_TRUE(doctor.store->Send({"c", sent.back()}).ok());
    doctor.Sync();
    patient.Sync();
  }
  ASSERT_EQ(flaky.fail_merges, 0) << "no merge failed";
  (void)patient2.reconciler->SyncAll();
  patient2.Restart(small);
  SyncUntil(patient2, sent);
  EXPECT_EQ(patient2.Bodies("c"), sent);
}

// each backend has its own sync thread. A backend whose frame
// carries the long text reads the due send and pushes it while the other
// backend's CarryLongBodies rewrites the same outbox entry into a file (no
// backend had acked yet): the two backends then carry two different
// operations under one op id, and devices differ by the backend they read.
TEST_P(E2eSync, TwoBackendsNeverCarryDifferentOperationsForOneSend) {
  FrameServer wide_server;
  wide_server.authenticate = GetParam();
  Device doctor(&server, "doctor");
  Device patient(&server, "patient");
  Device patient_wide(&wide_server, "patient");
  patient_wide.backend->name_ = "wide";
  patient_wide.backend->max_frame_bytes_ = 1 << 20;
  FrameBackend wide(&wide_server, "doctor");
  wide.name_ = "wide";
  wide.max_frame_bytes_ = 1 << 20;
  InstantUploads uploads;
  doctor.reconciler->set_attachment_transfers(&uploads);
  auto doctor_wide = std::make_unique<Reconciler>(
      &doctor.store->sync_log(), &wide, SyncConfig{}, [&doctor] { return doctor.now += 10; },
      [] { return uint64_t{42}; });
  doctor_wide->set_attachment_transfers(&uploads);
  ASSERT_TRUE(doctor.store->sync_log().SetOutboxBackends({"frames", "wide"}).ok());
  ASSERT_TRUE(doctor.store->PutConversation("c", "", {"patient"}).ok());
  // Every device known to both servers first.
  SyncAll({&doctor, &patient, &patient_wide});
  ASSERT_TRUE(doctor_wide->SyncAll().ok());
  std::string text;
  while (text.size() < 5000) text += "take one tablet twice a day after meals; ";
  auto sent = doctor.store->Send({"c", text});
  ASSERT_TRUE(sent.ok());
  // The "frames" thread runs while the "wide" thread is in its push.
  wide.before_push = [&] { (void)doctor.reconciler->SyncAll(); };
  (void)doctor_wide->SyncAll();
  for (int i = 0; i < 3; ++i) {
    (void)doctor.reconciler->SyncAll();
    (void)doctor_wide->SyncAll();
    patient.Sync();
    patient_wide.Sync();
  }
  // With two backends, the push does not carry the text into a file (the
  // door does, once the limits are recorded): the narrow backend parks the
  // send as too large, the wide one carries it whole. One operation.
  auto mine = doctor.store->Get(sent->id);
  auto theirs_wide = patient_wide.store->Get(sent->id);
  ASSERT_TRUE(mine.ok() && theirs_wide.ok()) << theirs_wide.status().ToString();
  EXPECT_TRUE(mine->attachments.empty());
  EXPECT_TRUE(theirs_wide->attachments.empty());
  EXPECT_EQ(theirs_wide->body, text);
  EXPECT_EQ(patient.store->Get(sent->id).status().code(), Code::kNotFound);
  auto outbox = doctor.store->sync_log().Outbox(0, "c", "frames");
  ASSERT_TRUE(outbox.ok());
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_TRUE(outbox->front().failed);
  EXPECT_NE(outbox->front().last_error.find("too large"), std::string::npos)
      << outbox->front().last_error;
}

INSTANTIATE_TEST_SUITE_P(Senders, E2eSync, ::testing::Values(true, false),
                         [](const auto& p) { return p.param ? "Authenticated" : "Directory"; });
INSTANTIATE_TEST_SUITE_P(Senders, NewDevice, ::testing::Values(true, false),
                         [](const auto& p) { return p.param ? "Authenticated" : "Directory"; });

}  // namespace
}  // namespace tidings::sync
