// Sealed logs, invitations and the device directory on DynamoDB, against a
// real moto server through tests/common/moto_server.py: signatures and IAM
// on, every Tidings user with an IAM user of its own that holds exactly the
// documented policy (docs/dynamodb-policy.json) and is tagged with T(user).
// Forgeries are written with raw boto3 (forge_item.py) and valid keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <set>
#include <thread>

#include "../engine/test_util.h"
#include "crypto/hash.h"
#include "crypto/public_key.h"
#include "moto_fixture.h"
#include "sync/core/reconciler.h"
#include "sync/dynamodb/dynamodb_backend.h"
#include "sync/e2e/session.h"
#include "sync/wire/bytes.h"
#include "sync/wire/operation_codec.h"

namespace tidings::dynamodb {
namespace {

testing::MotoServer* moto = nullptr;
const char* kTable = "tidings";  // the table the device policy names

class MotoEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    moto = new testing::MotoServer();
    std::string why;
    if (!moto->Start(kTable, &why)) {
      std::fprintf(stderr, "%s\n", why.c_str());
      std::abort();
    }
  }
  void TearDown() override {
    delete moto;
    moto = nullptr;
  }
};
::testing::Environment* const env = ::testing::AddGlobalTestEnvironment(new MotoEnvironment);

// A backend acting as `user`, signing with `as`'s IAM keys (default: its own).
std::unique_ptr<DynamoBackend> Device(const std::string& user, const std::string& as = "") {
  DynamoConfig c;
  c.table = kTable;
  c.user_id = user;
  c.region = "us-east-1";
  c.endpoint = moto->endpoint();
  std::string why;
  aws::Credentials creds = moto->CredentialsFor(as.empty() ? user : as, &why);
  EXPECT_FALSE(creds.access_key_id.empty()) << why;
  return DynamoBackend::Create(c, aws::StaticCredentials(creds));
}

std::string LogId(const std::string& seed) {
  return "e" + crypto::HexEncode(std::span<const uint8_t>(
                   reinterpret_cast<const uint8_t*>(crypto::Blake2b(seed, 16).data()), 16));
}

sync::Frame F(const std::string& id, const std::string& bytes) {
  sync::Frame f;
  f.id = id;
  f.bytes = bytes;
  return f;
}

// Every frame of the log, page by page; `skipped` adds up the pages' counts.
std::vector<sync::Frame> PullAllFrames(DynamoBackend& b, const std::string& log, size_t limit,
                                       uint64_t* skipped = nullptr) {
  std::vector<sync::Frame> out;
  std::string cursor;
  for (int i = 0; i < 1000; ++i) {
    auto page = b.PullFrames(log, cursor, limit);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    for (auto& f : page->frames) out.push_back(std::move(f));
    if (skipped) *skipped += page->skipped;
    cursor = page->next_cursor;
    if (!page->has_more) break;
  }
  return out;
}

// PutItem of `item_json` with raw boto3, signed with `as`'s IAM keys: "ok"
// or the server's error.
std::string Forge(const std::string& as, const std::string& item_json) {
  aws::Credentials creds = moto->CredentialsFor(as);
  std::string out;
  testing::MotoServer::RunPython({FORGE_ITEM, moto->endpoint(), kTable, item_json}, &creds, &out);
  return out;
}

std::string Item(const std::string& pk, const std::string& sk, const std::string& rest) {
  return "{\"pk\":{\"S\":\"" + pk + "\"},\"sk\":{\"N\":\"" + sk + "\"}" +
         (rest.empty() ? "" : "," + rest) + "}";
}
std::string Binary(const std::string& name, const std::string& bytes) {
  return "\"" + name + "\":{\"B\":\"" + crypto::Base64Encode(bytes) + "\"}";
}

TEST(DynamoSealedLog, FramesRoundTripInOrderAndDedupAcrossARetriedPush) {
  const std::string log = LogId("round-trip");
  auto alice = Device("alice");
  ASSERT_TRUE(alice->EnsureLog({log, {"alice", "bob"}}).ok());
  std::vector<sync::Frame> frames = {F("a.dev1", "announce"), F("k.1.dev1", "share"),
                                     F("o.op-1", std::string(1000, '\x01'))};
  auto acks = alice->PushFrames(log, frames);
  ASSERT_TRUE(acks.ok()) << acks.status().ToString();
  ASSERT_EQ(acks->size(), 3u);
  for (const auto& a : *acks) EXPECT_TRUE(a.status.ok()) << a.status.ToString();
  EXPECT_EQ((*acks)[0].remote_id, "1/0");

  // A retry after an ambiguous outcome, from a fresh process: the frames
  // already there are acknowledged where they are, only the new one goes up.
  frames.push_back(F("o.op-2", "second"));
  auto retry = Device("alice")->PushFrames(log, frames);
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ((*retry)[i].remote_id, (*acks)[i].remote_id);
  EXPECT_EQ((*retry)[3].remote_id, "2/0");

  auto bob = Device("bob");
  for (size_t limit : {size_t{1}, size_t{100}}) {
    auto pulled = PullAllFrames(*bob, log, limit);
    ASSERT_EQ(pulled.size(), 4u) << "limit " << limit;
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(pulled[i].id, frames[i].id);
      EXPECT_EQ(pulled[i].bytes, frames[i].bytes);
      EXPECT_GT(pulled[i].server_time_ms, uint64_t{1'600'000'000'000});
      EXPECT_TRUE(pulled[i].sender.empty()) << "DynamoDB does not authenticate writers";
    }
  }
  EXPECT_FALSE(bob->authenticates_senders());

  // Frames this backend cannot carry are refused one by one; the rest go up.
  auto mixed = alice->PushFrames(
      log, std::vector<sync::Frame>{F("o.too-big", std::string(bob->max_frame_bytes() + 1, 'x')),
                                    F("bad id!", "x"), F("o.op-3", "third")});
  ASSERT_TRUE(mixed.ok()) << mixed.status().ToString();
  EXPECT_EQ((*mixed)[0].status.code(), Code::kTooLarge);
  EXPECT_EQ((*mixed)[1].status.code(), Code::kInvalidArgument);
  EXPECT_TRUE((*mixed)[2].status.ok());
  EXPECT_EQ(PullAllFrames(*bob, log, 100).size(), 5u);
}

TEST(DynamoSealedLog, InvitationsListTheLogForEveryMemberAndNoOneElse) {
  const std::string log = LogId("invitations");
  ASSERT_TRUE(Device("alice")->EnsureLog({log, {"bob", "carol"}}).ok());
  for (const char* member : {"alice", "bob", "carol"}) {
    auto logs = Device(member)->ListLogs();
    ASSERT_TRUE(logs.ok()) << logs.status().ToString();
    EXPECT_EQ(std::count(logs->begin(), logs->end(), log), 1) << member;
  }
  auto outsider = Device("mallory")->ListLogs();
  ASSERT_TRUE(outsider.ok()) << outsider.status().ToString();
  EXPECT_EQ(std::count(outsider->begin(), outsider->end(), log), 0);
  // Nor can an outsider read a member's invitations with its own keys.
  auto snooping = Device("bob", /*as=*/"mallory")->ListLogs();
  ASSERT_FALSE(snooping.ok());
  EXPECT_EQ(snooping.status().code(), Code::kPermissionDenied) << snooping.status().ToString();
  // The item names the member only by T(member).
  EXPECT_EQ(DynamoBackend::UserTag("alice"), "4ba6a155d9c3f6da15165101b1b98f2a");
}

TEST(DynamoSealedLog, FetchDevicesReturnsWhatPublishDeviceWrote) {
  auto alice = Device("dora");
  ASSERT_TRUE(alice->PublishDevice("record of laptop").ok());
  ASSERT_TRUE(alice->PublishDevice("record of phone").ok());
  ASSERT_TRUE(alice->PublishDevice("record of laptop").ok()) << "idempotent";
  auto seen = Device("erin")->FetchDevices("dora");
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(std::set<std::string>(seen->begin(), seen->end()),
            (std::set<std::string>{"record of laptop", "record of phone"}));
  EXPECT_EQ(seen->size(), 2u);
  auto none = Device("erin")->FetchDevices("nobody");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(DynamoSealedLog, NoUserWritesAnotherUsersDeviceRecords) {
  ASSERT_TRUE(Device("frank")->PublishDevice("frank's own").ok());
  const std::string pk = "d#" + DynamoBackend::UserTag("frank");
  std::string forged = Forge("grace", Item(pk, "7", Binary("r", "grace posing as frank")));
  EXPECT_NE(forged.find("not authorized"), std::string::npos) << forged;
  // Through the backend too: grace's keys cannot publish as frank.
  Status s = Device("frank", /*as=*/"grace")->PublishDevice("grace posing as frank");
  EXPECT_EQ(s.code(), Code::kPermissionDenied) << s.ToString();
  auto records = Device("grace")->FetchDevices("frank");
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(*records, std::vector<std::string>{"frank's own"});
}

// A member with valid keys may write any item into a log (IAM cannot tell
// frames apart); the honest reader skips and counts what is not a Tidings
// item and goes on with the frames after it.
TEST(DynamoSealedLog, GarbageInALogIsSkippedCountedAndNeverFreezesIt) {
  const std::string log = LogId("garbage");
  auto alice = Device("alice");
  ASSERT_TRUE(alice->EnsureLog({log, {"alice", "bob"}}).ok());
  ASSERT_TRUE(alice->PushFrames(log, std::vector<sync::Frame>{F("o.before", "1")}).ok());
  const std::string pk = "l#" + log;
  const std::string t = "\"t\":{\"N\":\"1700000000000\"}";
  // Each allowed by IAM: broken framing, no frames, the plaintext layout, a
  // frame id no writer makes, an sk that is not a whole number.
  EXPECT_EQ(
      Forge("bob", Item(pk, "2", t + ",\"v\":{\"N\":\"2\"}," + Binary("f", "\xff\xff garbage"))),
      "ok\n");
  EXPECT_EQ(Forge("bob", Item(pk, "3", t + ",\"v\":{\"N\":\"2\"}")), "ok\n");
  EXPECT_EQ(Forge("bob", Item(pk, "4", t + ",\"v\":{\"N\":\"1\"}," + Binary("o", "ops"))), "ok\n");
  std::string bad_id;
  wire::ByteWriter w(&bad_id);
  w.Bytes("no spaces allowed");
  w.Bytes("x");
  EXPECT_EQ(Forge("bob", Item(pk, "5", t + ",\"v\":{\"N\":\"2\"}," + Binary("f", bad_id))), "ok\n");
  EXPECT_EQ(Forge("bob", Item(pk, "5.5", t + ",\"v\":{\"N\":\"2\"}," + Binary("f", "x"))), "ok\n");
  // The honest writer appends after the garbage.
  auto acks = alice->PushFrames(log, std::vector<sync::Frame>{F("o.after", "2")});
  ASSERT_TRUE(acks.ok()) << acks.status().ToString();
  ASSERT_TRUE((*acks)[0].status.ok()) << (*acks)[0].status.ToString();

  for (size_t limit : {size_t{1}, size_t{2}, size_t{100}}) {
    uint64_t skipped = 0;
    auto frames = PullAllFrames(*Device("bob"), log, limit, &skipped);
    ASSERT_EQ(frames.size(), 2u) << "limit " << limit;
    EXPECT_EQ(frames[0].id, "o.before");
    EXPECT_EQ(frames[1].id, "o.after");
    EXPECT_EQ(skipped, 5u) << "limit " << limit;
  }

  // An item of a newer format is not garbage to skip: the reader needs an upgrade.
  EXPECT_EQ(Forge("bob", Item(pk, "100", t + ",\"v\":{\"N\":\"3\"}," + Binary("f", "x"))), "ok\n");
  auto newer = Device("bob")->PullFrames(log, "7", 10);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), Code::kFailedPrecondition) << newer.status().ToString();
  EXPECT_NE(newer.status().message().find("upgrade Tidings"), std::string::npos);
  // Writers still append after it.
  auto later = Device("alice")->PushFrames(log, std::vector<sync::Frame>{F("o.later", "3")});
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_EQ((*later)[0].remote_id, "101/0");
}

engine::Operation Op(const std::string& id, const std::string& body) {
  engine::Operation op;
  op.kind = engine::OpKind::kSend;
  op.op_id = op.message_id = id;
  op.author = "alice";
  op.at = {uint64_t{1'700'000'000'000} << 16, 1};
  op.body = body;
  return op;
}

TEST(DynamoPlaintextLog, GarbageIsSkippedCountedAndNeverFreezesIt) {
  auto alice = Device("alice");
  ASSERT_TRUE(alice->Push("plain-garbage", std::vector<engine::Operation>{Op("p-1", "one")}).ok());
  const std::string pk = "c#plain-garbage";
  const std::string t = "\"t\":{\"N\":\"1700000000000\"}";
  // One undecodable operation between two good ones in one item: only it is
  // set aside. Its first byte is above every version this build reads, so
  // it may be a newer Tidings' operation: held (bounded), not skipped.
  std::string mixed;
  wire::ByteWriter w(&mixed);
  w.Bytes(wire::EncodeOperation(Op("p-2", "two")));
  w.Bytes("not an operation");
  w.Bytes(wire::EncodeOperation(Op("p-3", "three")));
  EXPECT_EQ(Forge("bob", Item(pk, "2", t + ",\"v\":{\"N\":\"1\"}," + Binary("o", mixed))), "ok\n");
  EXPECT_EQ(Forge("bob", Item(pk, "3", t + ",\"v\":{\"N\":\"1\"}," + Binary("o", "\x05zz"))),
            "ok\n");
  EXPECT_EQ(Forge("bob", Item(pk, "4", t)), "ok\n");
  ASSERT_TRUE(alice->Push("plain-garbage", std::vector<engine::Operation>{Op("p-4", "four")}).ok());

  for (size_t limit : {size_t{1}, size_t{100}}) {
    std::vector<std::string> ids;
    uint64_t skipped = 0, held = 0;
    std::string cursor;
    auto bob = Device("bob");
    for (int i = 0; i < 100; ++i) {
      auto page = bob->Pull("plain-garbage", cursor, limit);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      for (const auto& op : page->ops) ids.push_back(op.op_id);
      skipped += page->skipped;
      held += page->too_new.size();
      cursor = page->next_cursor;
      if (!page->has_more) break;
    }
    EXPECT_EQ(ids, (std::vector<std::string>{"p-1", "p-2", "p-3", "p-4"})) << "limit " << limit;
    EXPECT_EQ(skipped, 2u) << "limit " << limit;
    EXPECT_EQ(held, 1u) << "limit " << limit;
  }
}

// The reconciler over this backend: two stores, each its own IAM identity,
// converge on an end-to-end conversation, and the table holds no message text.
// One device of `user`: a store in dir/`name`, a backend signing as the
// user, and a reconciler whose clock is `now_ms`.
struct Side {
  std::unique_ptr<engine::Store> store;
  std::unique_ptr<DynamoBackend> backend;
  std::unique_ptr<sync::Reconciler> rec;
};
Side OpenSide(const testing::TempDir& dir, const std::string& user, const std::string& name,
              std::function<int64_t()> now_ms, sync::SyncConfig config = {}) {
  Side s;
  auto opened = engine::Store::Open(dir / name, tidings::testing::TestKey(),
                                    tidings::testing::CreateOptions(user));
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  s.store = std::move(opened).value();
  s.backend = Device(user);
  s.rec = std::make_unique<sync::Reconciler>(&s.store->sync_log(), s.backend.get(), config,
                                             std::move(now_ms), [] { return uint64_t{1}; });
  return s;
}

TEST(DynamoSealedLog, TwoStoresConvergeAndTheTableHoldsNoPlaintext) {
  const std::string marker = "MARKER-c0ffee-body";
  testing::TempDir dir;
  auto side = [&](const std::string& user) {
    return OpenSide(dir, user, user, [] { return int64_t{1'700'000'000'000}; });
  };
  Side a = side("hana"), b = side("ivan");
  ASSERT_TRUE(a.store->PutConversation("consult-e2e", "Visit", {"hana", "ivan"}).ok());
  ASSERT_TRUE(a.store->Send({.conversation_id = "consult-e2e", .body = marker}).ok());
  for (int round = 0; round < 3; ++round) {
    Status sa = a.rec->SyncAll();
    Status sb = b.rec->SyncAll();
    ASSERT_TRUE(sa.ok() && sb.ok()) << sa.ToString() << " / " << sb.ToString();
  }
  auto got = b.store->Page({.conversation_id = "consult-e2e"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].body, marker);

  // The conversation travelled as a sealed log; nothing in it, nor a
  // plaintext log, carries the body or the conversation id.
  auto logs = b.backend->ListLogs();
  ASSERT_TRUE(logs.ok());
  ASSERT_FALSE(logs->empty());
  for (const auto& log : *logs) {
    uint64_t skipped = 0;
    for (const auto& f : PullAllFrames(*b.backend, log, 100, &skipped)) {
      EXPECT_EQ(f.bytes.find(marker), std::string::npos);
      EXPECT_EQ(f.bytes.find("consult-e2e"), std::string::npos);
    }
    EXPECT_EQ(skipped, 0u);
  }
  auto plain = b.backend->Pull("consult-e2e", "", 100);
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->ops.empty());
}

// A second phone of a member joins a conversation whose history is longer
// than the frames a log keeps waiting for their key: it keeps none of what
// it reads before the re-share, reads the log again up to the share, and
// ends with the whole history (docs/sync.md, "A new device's first read").
TEST(DynamoSealedLog, ANewDeviceReadsAHistoryLongerThanThePendingBound) {
  testing::TempDir dir;
  int64_t now = 1'700'000'000'000;
  auto side = [&](const std::string& user, const std::string& name, sync::SyncConfig config) {
    return OpenSide(
        dir, user, name, [&] { return now += 1000; }, config);
  };
  Side doctor = side("juno", "juno", {}), phone = side("kai", "kai", {});
  ASSERT_TRUE(doctor.store->PutConversation("consult-new-phone", "Visit", {"juno", "kai"}).ok());
  std::vector<std::string> sent;
  for (int i = 0; i < 30; ++i) {
    sent.push_back("note " + std::to_string(i));
    ASSERT_TRUE(
        doctor.store->Send({.conversation_id = "consult-new-phone", .body = sent.back()}).ok());
    ASSERT_TRUE(doctor.rec->SyncAll().ok());  // an item each, as live sends go
  }
  for (Side* s : {&doctor, &phone}) ASSERT_TRUE(s->rec->SyncAll().ok());
  // More than the 5 s a re-read reads past its share: the notes are old
  // enough for the tablet to show the newest first.
  std::this_thread::sleep_for(std::chrono::milliseconds(6'000));
  sync::SyncConfig small;
  small.max_pending_frames = 5;
  small.pull_page_size = 7;
  Side tablet = side("kai", "kai-tablet", small);
  std::vector<std::string> merged;  // in the order the tablet merged them
  tablet.store->Subscribe([&](const engine::ChangeEvent& e) {
    if (e.kind != engine::ChangeEvent::Kind::kMessageAdded) return;
    if (auto m = tablet.store->Get(e.message_id); m.ok()) merged.push_back(m->body);
  });
  auto bodies = [&] {
    std::vector<std::string> out;
    auto page = tablet.store->Page({.conversation_id = "consult-new-phone", .limit = 100});
    if (page.ok()) {
      for (const auto& m : *page) out.push_back(m.body);
    }
    return out;
  };
  for (int round = 0; round < 6 && bodies() != sent; ++round) {
    for (Side* s : {&tablet, &doctor, &phone}) {
      Status synced = s->rec->SyncAll();
      ASSERT_TRUE(synced.ok()) << synced.ToString();
    }
  }
  EXPECT_EQ(bodies(), sent);
  const sync::ConversationStatus st = tablet.rec->GetStatus("consult-new-phone");
  EXPECT_EQ(st.pending_frames, 0u);
  EXPECT_EQ(st.rejected_frames, 0u) << st.last_rejection;
  // The newest first (docs/sync.md, "Newest first, end to end"), each once.
  ASSERT_EQ(merged.size(), sent.size());
  EXPECT_LT(std::find(merged.begin(), merged.end(), "note 29"),
            std::find(merged.begin(), merged.end(), "note 0"))
      << ::testing::PrintToString(merged);
}

// Forgeries written with raw boto3 and valid keys into a conversation's
// sealed log, each at the next free sk as an attacker would: a frame with a
// flipped byte (bad signature), a frame replayed from another conversation,
// an operation signed by a device that claims to be a member but is not one
// of hers, garbage. The honest devices skip and count each, and agree.
TEST(DynamoSealedLog, ForgedFramesAreRejectedCountedAndTheDevicesAgree) {
  testing::TempDir dir;
  int64_t now = 1'700'000'000'000;
  auto side = [&](const std::string& user) {
    return OpenSide(dir, user, user, [&] { return now += 1000; });
  };
  Side a = side("kira"), b = side("liam");
  auto sync_both = [&] {
    for (int round = 0; round < 3; ++round) {
      ASSERT_TRUE(a.rec->SyncAll().ok());
      ASSERT_TRUE(b.rec->SyncAll().ok());
    }
  };
  ASSERT_TRUE(a.store->PutConversation("consult", "Visit", {"kira", "liam"}).ok());
  ASSERT_TRUE(a.store->PutConversation("other", "Other", {"kira", "liam"}).ok());
  ASSERT_TRUE(a.store->Send({.conversation_id = "consult", .body = "one"}).ok());
  ASSERT_TRUE(a.store->Send({.conversation_id = "other", .body = "elsewhere"}).ok());
  sync_both();

  auto log_of = [&](const std::string& conv) {
    std::string ids = a.store->sync_log().GetSyncState(e2e::BindingKey("dynamodb", conv)).value();
    return ids.substr(0, ids.find('\n'));
  };
  const std::string log = log_of("consult"), other = log_of("other");
  ASSERT_FALSE(log.empty());
  auto frames = PullAllFrames(*b.backend, log, 100);
  auto other_frames = PullAllFrames(*b.backend, other, 100);
  ASSERT_FALSE(frames.empty());
  ASSERT_FALSE(other_frames.empty());
  auto last_op = [](const std::vector<sync::Frame>& all) {
    auto it = std::find_if(all.rbegin(), all.rend(),
                           [](const sync::Frame& f) { return f.id.rfind("o.", 0) == 0; });
    EXPECT_NE(it, all.rend());
    return *it;
  };
  const sync::Frame real = last_op(frames);          // kira's sealed "one"
  const sync::Frame replay = last_op(other_frames);  // kira's "elsewhere"
  uint64_t head = std::stoull(frames.back().remote_id.substr(0, frames.back().remote_id.find('/')));

  // A device of mallory's that says it is kira's: her own keys, author "kira".
  auto impostor = engine::Store::Open(dir / "impostor", tidings::testing::TestKey(),
                                      tidings::testing::CreateOptions("kira"))
                      .value();
  ASSERT_TRUE(impostor->PutConversation("consult", "Visit", {"kira", "liam"}).ok());
  auto sent = impostor->Send({.conversation_id = "consult", .body = "I am kira"});
  ASSERT_TRUE(sent.ok());
  e2e::SessionOptions o;
  o.backend = "forgery";
  o.user = "kira";
  o.max_frame_bytes = 65536;
  o.now_ms = [] { return uint64_t{1'700'000'000'000}; };
  auto session = e2e::Session::Open(&impostor->sync_log(), o).value();
  auto* ilog = session->LogForConversation("consult").value();
  auto conv = impostor->GetConversation("consult").value();
  ASSERT_TRUE(session->ControlFrames(*ilog, conv, {}).ok());
  auto outbox = impostor->Outbox(0).value();
  ASSERT_FALSE(outbox.empty());
  auto impersonation = session->Seal(*ilog, outbox.front().op).value();
  // Into the real log: the log id inside the frame must be the real one, or
  // it is refused as a copy from another log before anything else.
  auto sealed = e2e::DecodeSealedOp(impersonation.bytes, nullptr).value();
  sealed.log_id = log;
  impersonation.bytes = e2e::EncodeSealedOp(sealed);

  std::string flipped = real.bytes;
  flipped[flipped.size() / 2] ^= 0x01;
  const std::string t = "\"t\":{\"N\":\"1700000000000\"},\"v\":{\"N\":\"2\"}";
  auto frame_item = [&](const std::string& id, const std::string& bytes) {
    std::string f;
    wire::ByteWriter w(&f);
    w.Bytes(id);
    w.Bytes(bytes);
    return Item("l#" + log, std::to_string(++head), t + "," + Binary("f", f));
  };
  EXPECT_EQ(Forge("mallory", frame_item("o.flipped", flipped)), "ok\n");
  EXPECT_EQ(Forge("mallory", frame_item("o.replayed", replay.bytes)), "ok\n");
  EXPECT_EQ(Forge("mallory", frame_item(impersonation.id, impersonation.bytes)), "ok\n");
  EXPECT_EQ(Forge("mallory", frame_item("o.garbage", "\xE1\x03 not a frame")), "ok\n");

  ASSERT_TRUE(a.store->Send({.conversation_id = "consult", .body = "two"}).ok());
  sync_both();
  for (Side* s : {&a, &b}) {
    auto page = s->store->Page({.conversation_id = "consult"});
    ASSERT_TRUE(page.ok());
    std::vector<std::string> bodies;
    for (const auto& m : *page) bodies.push_back(m.body);
    EXPECT_EQ(bodies, (std::vector<std::string>{"one", "two"}));
  }
  auto st = b.rec->GetStatus("consult");
  // The flipped, replayed and garbage frames are refused. The impostor's is
  // sealed under an epoch no member made: it cannot be told from a message
  // whose key is on its way, so it waits (counted, bounded) and never opens.
  EXPECT_GE(st.rejected_frames, 3u) << st.last_rejection;
  EXPECT_GE(st.rejected_frames + st.pending_frames, 4u);
  EXPECT_TRUE(st.last_error.empty()) << st.last_error;
}

}  // namespace
}  // namespace tidings::dynamodb
