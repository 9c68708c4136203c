#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "crypto/hash.h"
#include "engine/hlc.h"
#include "test_util.h"

namespace tidings::engine {
namespace {

using testing::CreateOptions;
using testing::TempDir;
using testing::TestKey;
namespace fs = std::filesystem;

std::unique_ptr<Store> MustOpen(const std::string& path, StoreOptions o = CreateOptions(),
                                uint8_t key = 7) {
  auto s = Store::Open(path, TestKey(key), o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

SendRequest Msg(std::string conv, std::string body) {
  SendRequest r;
  r.conversation_id = std::move(conv);
  r.body = std::move(body);
  return r;
}

TEST(Store, SendGetPageRoundTripAndReopen) {
  TempDir dir;
  std::vector<std::string> ids;
  {
    auto store = MustOpen(dir.path());
    for (int i = 0; i < 120; ++i) {
      SendRequest r = Msg(i % 2 ? "conv-b" : "conv-a", "hello " + std::to_string(i));
      r.metadata["k"] = "v";
      auto m = store->Send(r);
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      EXPECT_EQ(m->state, MessageState::kPending);
      EXPECT_EQ(m->sender, "alice");
      ids.push_back(m->id);
    }
  }
  auto store = MustOpen(dir.path(), StoreOptions{});
  auto got = store->Get(ids[7]);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, "hello 7");
  EXPECT_EQ(got->conversation_id, "conv-b");
  EXPECT_EQ(got->metadata.at("k"), "v");

  auto page = store->Page({.conversation_id = "conv-a", .limit = 50});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 50u);
  EXPECT_EQ(page->back().body, "hello 118");
  EXPECT_TRUE(std::is_sorted(page->begin(), page->end(),
                             [](auto& a, auto& b) { return a.order < b.order; }));
  auto older =
      store->Page({.conversation_id = "conv-a", .limit = 50, .before = page->front().order});
  ASSERT_TRUE(older.ok());
  EXPECT_EQ(older->size(), 10u);
  EXPECT_EQ(older->front().body, "hello 0");
  auto newer = store->Page({.conversation_id = "conv-a", .limit = 5, .after = older->back().order});
  ASSERT_TRUE(newer.ok());
  ASSERT_EQ(newer->size(), 5u);
  EXPECT_EQ(newer->front().id, page->front().id);

  auto convs = store->Conversations(10);
  ASSERT_TRUE(convs.ok());
  ASSERT_EQ(convs->size(), 2u);
  EXPECT_EQ((*convs)[0].id, "conv-b");  // most recent activity first
  EXPECT_EQ((*convs)[0].message_count, 60u);

  auto outbox = store->Outbox(0);
  ASSERT_TRUE(outbox.ok());
  EXPECT_EQ(outbox->size(), 120u);
  EXPECT_EQ(store->Get("missing").status().code(), Code::kNotFound);
}

TEST(Store, BodyLimitIsAClearError) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  auto ok = store->Send(Msg("c", std::string(kMaxBodyBytes, 'x')));
  EXPECT_TRUE(ok.ok());
  auto big = store->Send(Msg("c", std::string(kMaxBodyBytes + 1, 'x')));
  EXPECT_EQ(big.status().code(), Code::kTooLarge);
  EXPECT_NE(big.status().message().find("64 KiB"), std::string::npos);
  EXPECT_EQ(store->Send(Msg("", "x")).status().code(), Code::kInvalidArgument);
}

TEST(Store, ConcurrentWritersGetATotalOrderMatchingIds) {
  TempDir dir;
  StoreOptions o = CreateOptions();
  o.durability = Durability::kSync;
  auto store = MustOpen(dir.path(), o);
  constexpr int kThreads = 8, kPer = 50;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        if (!store->Send(Msg("c", std::to_string(t) + ":" + std::to_string(i))).ok()) failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto page = store->Page({.conversation_id = "c", .limit = 1000});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), size_t{kThreads * kPer});
  std::set<uint64_t> hlcs;
  std::vector<int> last(kThreads, -1);
  for (const auto& m : *page) {
    hlcs.insert(m.order.hlc);
    int t = std::stoi(m.body.substr(0, m.body.find(':')));
    int i = std::stoi(m.body.substr(m.body.find(':') + 1));
    EXPECT_EQ(i, last[t] + 1) << "per-writer order must be preserved";
    last[t] = i;
  }
  EXPECT_EQ(hlcs.size(), page->size()) << "every local event has a distinct hlc";
}

TEST(Store, SameMillisecondWritesStayOrdered) {
  TempDir dir;
  StoreOptions o = CreateOptions();
  o.wall_clock_ms = [] { return uint64_t{1'700'000'000'000}; };  // frozen clock
  auto store = MustOpen(dir.path(), o);
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(store->Send(Msg("c", std::to_string(i)))->id);
  auto page = store->Page({.conversation_id = "c", .limit = 100});
  ASSERT_TRUE(page.ok());
  for (int i = 0; i < 100; ++i) EXPECT_EQ((*page)[static_cast<size_t>(i)].body, std::to_string(i));
  EXPECT_EQ(page->front().order.millis(), 1'700'000'000'000u);
}

TEST(Hlc, DriftBoundRefusesRemoteTimesTooFarAhead) {
  uint64_t wall = 1'000'000;
  HybridClock clock([&] { return wall; }, 5000);
  EXPECT_TRUE(clock.Observe((wall + 4000) << 16));
  EXPECT_GE(clock.Tick(), (wall + 4000) << 16);
  EXPECT_FALSE(clock.Observe((wall + 3'600'000) << 16));  // an hour ahead: not adopted
  EXPECT_LT(clock.Tick(), (wall + 5001) << 16);
  wall = 10;  // the wall clock goes backwards: the hlc does not
  uint64_t a = clock.Tick(), b = clock.Tick();
  EXPECT_LT(a, b);
}

TEST(Store, ClockNeverGoesBackAcrossReopen) {
  TempDir dir;
  uint64_t wall = 2'000'000'000'000;
  StoreOptions o = CreateOptions();
  o.wall_clock_ms = [&] { return wall; };
  OrderKey first;
  {
    auto store = MustOpen(dir.path(), o);
    first = store->Send(Msg("c", "a"))->order;
  }
  wall -= 3'600'000;  // the device clock was set back an hour
  auto store = MustOpen(dir.path(), o);
  EXPECT_LT(first, store->Send(Msg("c", "b"))->order);
}

TEST(Store, KeyErrorsAreDistinctAndClear) {
  TempDir dir;
  { MustOpen(dir.path()); }
  auto wrong = Store::Open(dir.path(), TestKey(9), StoreOptions{});
  EXPECT_EQ(wrong.status().code(), Code::kWrongKey);
  EXPECT_EQ(Store::Open(dir / "nope", TestKey(), StoreOptions{}).status().code(), Code::kNotFound);
  EXPECT_EQ(Store::Open(dir.path(), crypto::KeySource::KeyFile(dir / "missing.key"), StoreOptions{})
                .status()
                .code(),
            Code::kNotFound);
  // Still opens with the right key: the failed attempts changed nothing.
  EXPECT_NE(MustOpen(dir.path(), StoreOptions{}), nullptr);

  // Corrupt header: data loss, not "wrong key".
  std::string header = dir / "TIDINGS";
  std::fstream f(header, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(12);
  f.put('\x55');
  f.close();
  auto corrupt = Store::Open(dir.path(), TestKey(), StoreOptions{});
  EXPECT_EQ(corrupt.status().code(), Code::kDataLoss);
  EXPECT_NE(corrupt.status().message().find("header"), std::string::npos);
}

TEST(Store, KeyFileAndPassphrase) {
  TempDir dir;
  const std::string key_path = dir / "k.key";
  ASSERT_TRUE(crypto::WriteKeyFile(key_path, crypto::SecretKey::Random().value()).ok());
  {
    auto s = Store::Open(dir / "s1", crypto::KeySource::KeyFile(key_path), CreateOptions());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
  }
  ASSERT_EQ(0, ::chmod(key_path.c_str(), 0644));
  auto loose = Store::Open(dir / "s1", crypto::KeySource::KeyFile(key_path), StoreOptions{});
  EXPECT_EQ(loose.status().code(), Code::kPermissionDenied);

  {
    auto s = Store::Open(dir / "s2", crypto::KeySource::Passphrase("open sesame"), CreateOptions());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
  }
  EXPECT_TRUE(Store::Open(dir / "s2", crypto::KeySource::Passphrase("open sesame"), {}).ok());
  EXPECT_EQ(
      Store::Open(dir / "s2", crypto::KeySource::Passphrase("open sesamE"), {}).status().code(),
      Code::kWrongKey);
}

// Checks that `root` and everything under it is owner-only; returns the
// number of regular files.
size_t ExpectOwnerOnly(const fs::path& root) {
  size_t files = 0;
  struct stat st {};
  EXPECT_EQ(0, ::stat(root.c_str(), &st));
  EXPECT_EQ(st.st_mode & 077, 0u) << root << " is readable by others";
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    EXPECT_EQ(0, ::stat(e.path().c_str(), &st));
    EXPECT_EQ(st.st_mode & 077, 0u) << e.path() << " is readable by others";
    files += e.is_regular_file();
  }
  return files;
}

// Every file and directory of a store is owner-only, whatever the umask:
// the header, and everything RocksDB writes (WAL, SST, MANIFEST, OPTIONS,
// CURRENT, IDENTITY, LOCK), after writes, flush, compaction and reopen.
TEST(Store, FilesArePrivate) {
  TempDir dir;
  const mode_t old_umask = ::umask(022);
  for (int round = 0; round < 2; ++round) {
    auto store = MustOpen(dir / "s");
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(store->Send(Msg("c", "x")).ok());
    ASSERT_TRUE(store->Flush().ok());
    ASSERT_TRUE(store->Compact().ok());
  }
  ::umask(old_umask);
  EXPECT_GE(ExpectOwnerOnly(dir / "s"), 6u);
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(Store, NoPlaintextOnDisk) {
  TempDir dir;
  const std::string body = "BODYMARKER7a1f", conv = "CONVMARKER93b2", sender = "SENDERMARKERc4d1";
  {
    StoreOptions o = CreateOptions(sender);
    auto store = MustOpen(dir.path(), o);
    for (int i = 0; i < 200; ++i) {
      SendRequest r = Msg(conv + std::to_string(i % 3), body + std::to_string(i));
      r.metadata["META"] = "METAMARKER55e0";
      auto m = store->Send(r);
      ASSERT_TRUE(m.ok());
      if (i % 10 == 0) {
        ASSERT_TRUE(store->Edit(m->id, body + "edited").ok());
      }
    }
    ASSERT_TRUE(store->Flush().ok());
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(store->Send(Msg(conv, body)).ok());  // WAL only
    ASSERT_TRUE(store->Compact().ok());
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(store->Send(Msg(conv, body)).ok());
  }
  std::vector<std::string> markers = {body, conv, sender, "METAMARKER55e0"};
  for (auto m : std::vector<std::string>(markers)) {
    markers.push_back(crypto::HexEncode(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(m.data()), m.size())));
    std::string upper = markers.back();
    std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
    markers.push_back(upper);
  }
  int files = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (!e.is_regular_file()) continue;
    ++files;
    std::string data = ReadAll(e.path().string());
    for (const auto& m : markers) {
      EXPECT_EQ(data.find(m), std::string::npos) << "marker " << m << " found in " << e.path();
    }
    EXPECT_NE(e.path().filename().string().rfind("LOG", 0), 0u) << "no info LOG file";
  }
  EXPECT_GE(files, 4);
}

TEST(Store, TamperedSstIsDetectedNeverGarbage) {
  TempDir dir;
  std::vector<std::string> ids;
  {
    auto store = MustOpen(dir.path());
    for (int i = 0; i < 300; ++i)
      ids.push_back(store->Send(Msg("c", std::string(200, 'a' + i % 26)))->id);
    ASSERT_TRUE(store->Flush().ok());
    ASSERT_TRUE(store->Compact().ok());
  }
  // Flip a byte in the middle of the biggest SST.
  std::string sst;
  uintmax_t best = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (e.path().extension() == ".sst" && e.file_size() > best) {
      best = e.file_size();
      sst = e.path().string();
    }
  }
  ASSERT_FALSE(sst.empty());
  {
    std::fstream f(sst, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(best / 3));
    char c;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(best / 3));
    f.put(static_cast<char>(c ^ 0x20));
  }
  auto store = Store::Open(dir.path(), TestKey(), StoreOptions{});
  if (!store.ok()) {
    EXPECT_EQ(store.status().code(), Code::kDataLoss);
    return;
  }
  int errors = 0;
  for (const auto& id : ids) {
    auto m = (*store)->Get(id);
    if (!m.ok()) {
      EXPECT_EQ(m.status().code(), Code::kDataLoss) << m.status().ToString();
      ++errors;
    } else {
      EXPECT_EQ(m->body.size(), 200u);
      EXPECT_EQ(m->body.find_first_not_of(m->body[0]), std::string::npos) << "garbage returned";
    }
  }
  auto page = (*store)->Page({.conversation_id = "c", .limit = 1000});
  if (!page.ok()) ++errors;
  auto outbox = (*store)->Outbox(0);  // the tampered file may hold any column family
  if (!outbox.ok()) {
    EXPECT_EQ(outbox.status().code(), Code::kDataLoss);
    ++errors;
  }
  auto report = (*store)->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_GT(report->problems, 0u);
  EXPECT_GT(errors, 0) << (report->details.empty() ? "" : report->details[0]);
}

// Stores made with earlier record protections - format 1 (every value
// sealed) and format 2 (BLAKE2b tags) - keep opening, reading and writing as
// they are; new stores get format 3 (SipHash tags).
// A store written by the last release before schema v2 - by that release's
// own CLI (tests/engine/data/make_schema_v1_store.sh), not a simulation of
// it: pending sends whose outbox entries hold their bodies, an edit, a
// delete, a reaction, a read marker, two conversations, data in SST files
// and in the WAL, files 0644. It opens read-only as it is, then migrates on
// the first writable open, and old and new entries both send what was sent.
TEST(Store, SchemaV1StoreFromTheLastReleaseOpensAndMigrates) {
  TempDir dir;
  const fs::path data = TIDINGS_ENGINE_TEST_DATA;
  fs::copy(data / "schema-v1-store", dir / "s", fs::copy_options::recursive);
  for (const auto& e : fs::recursive_directory_iterator(dir / "s")) {  // as git checks out
    fs::permissions(e.path(), e.is_directory() ? fs::perms(0755) : fs::perms(0644));
  }
  fs::copy_file(data / "schema-v1-store.key", dir / "k");
  fs::permissions(dir / "k", fs::perms::owner_read | fs::perms::owner_write);
  const auto key = [&] { return crypto::KeySource::KeyFile(dir / "k"); };

  const auto check = [](Store& s) {
    auto ward = s.Page({.conversation_id = "ward-7"});
    ASSERT_TRUE(ward.ok()) << ward.status().ToString();
    ASSERT_EQ(ward->size(), 3u);
    EXPECT_EQ((*ward)[0].body, "first, edited");
    EXPECT_FALSE((*ward)[0].edited_at.IsZero());
    EXPECT_TRUE((*ward)[1].deleted);
    EXPECT_EQ((*ward)[2].body, "third");
    EXPECT_EQ((*ward)[2].reactions, (std::vector<Reaction>{{"alice", "ok"}}));
    for (const auto& m : *ward) EXPECT_EQ(m.sender, "alice");
    auto conv = s.GetConversation("ward-7");
    ASSERT_TRUE(conv.ok());
    EXPECT_EQ(conv->title, "Ward 7");
    EXPECT_EQ(conv->members, (std::vector<std::string>{"alice", "dr-bob"}));
    auto clinic = s.Page({.conversation_id = "clinic"});
    ASSERT_EQ(clinic->size(), 1u);
    EXPECT_EQ(clinic->front().body, "hello clinic");
    auto outbox = s.Outbox(0);
    ASSERT_TRUE(outbox.ok()) << outbox.status().ToString();
    ASSERT_GE(outbox->size(), 8u);
    const std::vector<OpKind> kinds = {OpKind::kSend, OpKind::kSend,      OpKind::kSend,
                                       OpKind::kEdit, OpKind::kDelete,    OpKind::kReact,
                                       OpKind::kSend, OpKind::kReadMarker};
    for (size_t i = 0; i < kinds.size(); ++i) EXPECT_EQ((*outbox)[i].op.kind, kinds[i]) << i;
    EXPECT_EQ((*outbox)[0].op.body, "first, as typed");  // the send, as sent
    EXPECT_EQ((*outbox)[1].op.body, "second");
    EXPECT_EQ((*outbox)[2].op.body, "third");
    EXPECT_EQ((*outbox)[3].op.body, "first, edited");
    EXPECT_EQ((*outbox)[6].op.body, "hello clinic");
    auto report = s.Verify(nullptr);
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->problems, 0u) << (report->details.empty() ? "" : report->details[0]);
  };

  {
    StoreOptions ro;
    ro.read_only = true;
    auto s = Store::Open(dir / "s", key(), ro);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    check(**s);
  }
  std::string first_id;
  {
    auto s = Store::Open(dir / "s", key(), StoreOptions{});  // migrates
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    check(**s);
    first_id = (*s)->Page({.conversation_id = "ward-7"})->front().id;
    // An entry written by v1 keeps its own body through a later edit, and a
    // send after the migration refers to its message.
    ASSERT_TRUE((*s)->Edit(first_id, "first, again").ok());
    ASSERT_TRUE((*s)->Send(Msg("ward-7", "fourth")).ok());
    auto outbox = (*s)->Outbox(0);
    ASSERT_EQ(outbox->size(), 10u);
    EXPECT_EQ((*outbox)[0].op.body, "first, as typed");
    EXPECT_EQ((*outbox)[9].op.body, "fourth");
    ASSERT_TRUE((*s)->AckOutbox((*outbox)[0].seq, {"sim", "r-1", 1}).ok());
    EXPECT_EQ((*s)->Get(first_id)->state, MessageState::kSent);
  }
  {
    auto s = Store::Open(dir / "s", key(), StoreOptions{});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ((*s)->Get(first_id)->body, "first, again");
    auto outbox = (*s)->Outbox(0);
    ASSERT_EQ(outbox->size(), 9u);
    EXPECT_EQ(outbox->front().op.body, "second");
    EXPECT_EQ(outbox->back().op.body, "fourth");
    auto report = (*s)->Verify(nullptr);
    EXPECT_EQ(report->problems, 0u) << (report->details.empty() ? "" : report->details[0]);
  }
  ExpectOwnerOnly(dir / "s");
}

TEST(Store, EarlierFormatStoresKeepWorking) {
  struct Case {
    crypto::RecordProtection protection;
    char format;
  };
  for (Case c : {Case{crypto::RecordProtection::kSealed, 1},
                 Case{crypto::RecordProtection::kAuthenticated, 2},
                 Case{crypto::RecordProtection::kAuthenticatedSipHash, 3}}) {
    SCOPED_TRACE(static_cast<int>(c.format));
    TempDir dir;
    StoreOptions old = CreateOptions("me");
    old.record_protection = c.protection;
    std::string id;
    {
      auto store = Store::Open(dir.path(), TestKey(), old);
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      id = (*store)->Send(Msg("c", "first one"))->id;
      ASSERT_TRUE((*store)->Flush().ok());
    }
    auto store = Store::Open(dir.path(), TestKey(), StoreOptions{});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ((*store)->Get(id)->body, "first one");
    ASSERT_TRUE((*store)->Send(Msg("c", "second one")).ok());
    EXPECT_EQ((*store)->Page({.conversation_id = "c"})->size(), 2u);
    auto report = (*store)->Verify(nullptr);
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->problems, 0u);
    store->reset();
    // Still its own format on disk: the Tidings that made it can open it.
    std::ifstream f(dir / "TIDINGS", std::ios::binary);
    std::string header((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ASSERT_GT(header.size(), 9u);
    EXPECT_EQ(header[8], c.format) << "format byte";
  }
  StoreOptions fresh = CreateOptions("me");
  EXPECT_EQ(fresh.record_protection, crypto::RecordProtection::kAuthenticatedSipHash);
}

TEST(Store, SecondWriterIsBusyReadOnlyWorks) {
  TempDir dir;
  auto writer = MustOpen(dir.path());
  ASSERT_TRUE(writer->Send(Msg("c", "one")).ok());
  auto second = Store::Open(dir.path(), TestKey(), StoreOptions{});
  EXPECT_EQ(second.status().code(), Code::kBusy) << second.status().ToString();
  StoreOptions ro;
  ro.read_only = getenv("RW") == nullptr;
  auto reader = Store::Open(dir.path(), TestKey(), ro);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->Page({.conversation_id = "c"})->size(), 1u);
  EXPECT_EQ((*reader)->Send(Msg("c", "x")).status().code(), Code::kFailedPrecondition);
  ASSERT_TRUE(writer->Send(Msg("c", "two")).ok());
  ASSERT_TRUE((*reader)->Refresh().ok());
  EXPECT_EQ((*reader)->Page({.conversation_id = "c"})->size(), 2u);
}

TEST(Store, NotificationsAfterCommit) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  std::vector<ChangeEvent> events;
  std::mutex mu;
  Store* raw = store.get();
  uint64_t token = store->Subscribe([&](const ChangeEvent& e) {
    if (e.kind == ChangeEvent::Kind::kMessageAdded) {
      // Visible to readers when the listener runs.
      EXPECT_TRUE(raw->Get(e.message_id).ok());
    }
    std::lock_guard<std::mutex> l(mu);
    events.push_back(e);
  });
  auto m = store->Send(Msg("c", "hi"));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(store->Edit(m->id, "hi!").ok());
  store->Unsubscribe(token);
  ASSERT_TRUE(store->Send(Msg("c", "unseen")).ok());
  std::lock_guard<std::mutex> l(mu);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0].kind, ChangeEvent::Kind::kMessageAdded);
  EXPECT_EQ(events[0].message_id, m->id);
  int added = 0;
  for (auto& e : events) added += e.kind == ChangeEvent::Kind::kMessageAdded;
  EXPECT_EQ(added, 1);
}

TEST(Store, OutboxAckFailRetryDiscard) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  auto a = store->Send(Msg("c", "a"));
  auto b = store->Send(Msg("c", "b"));
  auto outbox = store->Outbox(0);
  ASSERT_EQ(outbox->size(), 2u);
  EXPECT_EQ((*outbox)[0].op.message_id, a->id);
  ASSERT_TRUE(store->AckOutbox((*outbox)[0].seq, {"sim", "r-1", 1234}).ok());
  EXPECT_EQ(store->Get(a->id)->state, MessageState::kSent);
  EXPECT_EQ(store->Get(a->id)->remote_ids.at("sim"), "r-1");
  uint64_t seq_b = (*outbox)[1].seq;
  ASSERT_TRUE(store->FailOutbox(seq_b, "throttled", false, 99).ok());
  EXPECT_EQ(store->Get(b->id)->state, MessageState::kPending);
  ASSERT_TRUE(store->FailOutbox(seq_b, "access denied", true, 0).ok());
  EXPECT_EQ(store->Get(b->id)->state, MessageState::kFailed);
  EXPECT_EQ(store->Get(b->id)->failure_reason, "access denied");
  EXPECT_TRUE(store->Outbox(0)->front().failed);
  ASSERT_TRUE(store->RetryFailed(seq_b).ok());
  EXPECT_EQ(store->Get(b->id)->state, MessageState::kPending);
  EXPECT_EQ(store->DiscardFailed(seq_b).code(), Code::kFailedPrecondition);
  ASSERT_TRUE(store->FailOutbox(seq_b, "denied", true, 0).ok());
  ASSERT_TRUE(store->DiscardFailed(seq_b).ok());
  EXPECT_TRUE(store->Outbox(0)->empty());
}

// CountOutbox counts what Outbox lists - per state, conversation, backend
// and limit - and GetOutboxEntry returns one entry as Outbox does.
TEST(Store, OutboxCountsAndSingleEntriesMatchTheList) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store->SetOutboxBackends({"chime", "dynamodb"}).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->Send(Msg("c", "c" + std::to_string(i))).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store->Send(Msg("d", "d" + std::to_string(i))).ok());
  auto outbox = store->Outbox(0);
  ASSERT_EQ(outbox->size(), 8u);
  ASSERT_TRUE(store->FailOutbox((*outbox)[1].seq, "denied", true, 0).ok());
  ASSERT_TRUE(store->FailOutbox((*outbox)[6].seq, "denied", true, 0).ok());
  ASSERT_TRUE(store->AckOutbox((*outbox)[0].seq, {"chime", "m-0", 1}).ok());
  const auto counts = [&](const std::string& conv, std::string_view backend, uint64_t limit = 0) {
    auto c = store->CountOutbox(conv, backend, limit);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::pair<uint64_t, uint64_t>(c->pending, c->failed);
  };
  using P = std::pair<uint64_t, uint64_t>;
  EXPECT_EQ(counts("", ""), (P{6, 2}));
  EXPECT_EQ(counts("c", ""), (P{4, 1}));
  EXPECT_EQ(counts("d", ""), (P{2, 1}));
  EXPECT_EQ(counts("c", "chime"), (P{3, 1}));  // entry 0 is chime's already
  EXPECT_EQ(counts("c", "dynamodb"), (P{4, 1}));
  EXPECT_EQ(counts("nobody", ""), (P{0, 0}));
  EXPECT_EQ(counts("", "", 3), (P{2, 1}));  // stops at the limit
  for (const char* conv : {"", "c", "d"}) {
    for (const char* backend : {"", "chime", "dynamodb"}) {
      auto c = store->CountOutbox(conv, backend);
      EXPECT_EQ(c->total(), store->Outbox(0, conv, backend)->size()) << conv << "/" << backend;
    }
  }
  auto stats = store->Stats();
  EXPECT_EQ(stats->outbox, 8u);
  EXPECT_EQ(stats->outbox_failed, 2u);

  auto one = store->GetOutboxEntry((*outbox)[6].seq);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->op.message_id, (*outbox)[6].op.message_id);
  EXPECT_EQ(one->op.body, "d1");  // the body the entry refers to, filled in
  EXPECT_TRUE(one->failed);
  EXPECT_EQ(store->GetOutboxEntry(999999).status().code(), Code::kNotFound);
}

// A send's outbox entry does not copy the body (it refers to the message),
// yet what is pushed is always the body as sent: edits and deletes, local or
// merged from the user's other device, and failed attempts do not change it.
TEST(Store, OutboxSendsTheBodyAsSentWhateverHappensToTheMessage) {
  TempDir dir;
  std::string edited_id, deleted_id, remote_edited_id;
  {
    auto store = MustOpen(dir.path());
    auto a = store->Send(Msg("c", "first words"));
    auto b = store->Send(Msg("c", "regrettable words"));
    auto c = store->Send(Msg("c", "typo'd words"));
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    edited_id = a->id, deleted_id = b->id, remote_edited_id = c->id;
    auto first = store->Outbox(0);
    ASSERT_EQ(first->size(), 3u);
    ASSERT_TRUE(store->FailOutbox((*first)[0].seq, "throttled", false, 0).ok());
    ASSERT_TRUE(store->Edit(a->id, "better words").ok());
    ASSERT_TRUE(store->Edit(a->id, "best words").ok());
    ASSERT_TRUE(store->Delete(b->id).ok());
    Operation edit;  // the same user, on another device
    edit.kind = OpKind::kEdit;
    edit.op_id = "other-device-edit";
    edit.conversation_id = "c";
    edit.author = "alice";
    edit.at = OrderKey{c->order.hlc + 1, c->order.replica + 1};
    edit.message_id = c->id;
    edit.body = "typo fixed";
    ASSERT_TRUE(store->Merge("sim", "c", std::span<const Operation>(&edit, 1), "x").ok());
    EXPECT_EQ(store->Get(c->id)->body, "typo fixed");
  }
  auto store = MustOpen(dir.path());
  auto outbox = store->Outbox(0);
  ASSERT_TRUE(outbox.ok()) << outbox.status().ToString();
  std::map<std::string, std::string> sent;  // message id -> body of its send
  std::vector<std::string> edits;
  for (const auto& e : *outbox) {
    if (e.op.kind == OpKind::kSend) sent[e.op.message_id] = e.op.body;
    if (e.op.kind == OpKind::kEdit) edits.push_back(e.op.body);
  }
  EXPECT_EQ(sent[edited_id], "first words");
  EXPECT_EQ(sent[deleted_id], "regrettable words");
  EXPECT_EQ(sent[remote_edited_id], "typo'd words");
  EXPECT_EQ(edits, (std::vector<std::string>{"better words", "best words"}));
  EXPECT_EQ(store->Get(edited_id)->body, "best words");
  EXPECT_TRUE(store->Get(deleted_id)->body.empty());
  auto report = store->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u) << (report->details.empty() ? "" : report->details[0]);

  // Acknowledged, then edited: the next edit needs no copy and verify agrees.
  ASSERT_TRUE(store->AckOutbox(outbox->front().seq, {"sim", "r-1", 1234}).ok());
  ASSERT_TRUE(store->Edit(edited_id, "final words").ok());
  EXPECT_EQ(store->Verify(nullptr)->problems, 0u);
}

// A send given its own id may find operations waiting for that id (made on
// the user's other device and merged first): the message shows them, the
// outbox still sends the body the caller gave.
TEST(Store, SendWithAnIdThatHasWaitingEditsSendsTheCallersBody) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  const std::string id = NewMessageId(1'700'000'000'000);
  Operation edit;
  edit.kind = OpKind::kEdit;
  edit.op_id = "early-edit";
  edit.conversation_id = "c";
  edit.author = "alice";
  edit.at = OrderKey{(uint64_t{1'800'000'000'000} << 16), 99};
  edit.message_id = id;
  edit.body = "edited elsewhere";
  ASSERT_TRUE(store->Merge("sim", "c", std::span<const Operation>(&edit, 1), "x").ok());
  SendRequest r = Msg("c", "as typed");
  r.message_id = id;
  auto m = store->Send(r);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->body, "edited elsewhere");
  auto outbox = store->Outbox(0);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ(outbox->front().op.body, "as typed");
  ASSERT_TRUE(store->Delete(id).ok());
  EXPECT_EQ(store->Outbox(0)->front().op.body, "as typed");
  EXPECT_EQ(store->Verify(nullptr)->problems, 0u);
}

// Fan-out: deliver through one backend, persist through another. An entry
// leaves the outbox only once both accepted it; each sees only its own work.
TEST(Store, OutboxFansOutToEveryListedBackend) {
  TempDir dir;
  {
    auto store = MustOpen(dir.path());
    ASSERT_TRUE(store->SetOutboxBackends({"dynamodb", "chime", "chime"}).ok());
    EXPECT_EQ(store->OutboxBackends(), (std::vector<std::string>{"chime", "dynamodb"}));
    auto a = store->Send(Msg("c", "a"));
    auto b = store->Send(Msg("c", "b"));
    auto outbox = store->Outbox(0);
    ASSERT_EQ(outbox->size(), 2u);
    const uint64_t seq_a = (*outbox)[0].seq, seq_b = (*outbox)[1].seq;
    ASSERT_TRUE(store->AckOutbox(seq_a, {"chime", "msg-1", 1234}).ok());
    // Delivered (sent) at the first ack, but still owed to dynamodb.
    EXPECT_EQ(store->Get(a->id)->state, MessageState::kSent);
    EXPECT_EQ(store->Outbox(0)->size(), 2u);
    EXPECT_EQ(store->Outbox(0, "c", "chime")->size(), 1u);
    EXPECT_EQ(store->Outbox(0, "c", "dynamodb")->size(), 2u);
    ASSERT_TRUE(store->AckOutbox(seq_a, {"chime", "msg-1", 1234}).ok());  // a duplicate ack
    ASSERT_TRUE(store->AckOutbox(seq_a, {"dynamodb", "7", 1235}).ok());
    EXPECT_EQ(store->Outbox(0)->size(), 1u);
    EXPECT_EQ(store->Get(a->id)->remote_ids.at("chime"), "msg-1");
    EXPECT_EQ(store->Get(a->id)->remote_ids.at("dynamodb"), "7");
    // One backend's backoff does not hold back the other.
    ASSERT_TRUE(store->FailOutbox(seq_b, "throttled", false, INT64_MAX).ok());
    EXPECT_EQ(store->Outbox(0, "c", "dynamodb")->front().next_attempt_ms, 0);
    ASSERT_TRUE(store->AckOutbox(seq_b, {"dynamodb", "8", 1236}).ok());
    EXPECT_EQ(store->Get(b->id)->state, MessageState::kSent);
  }
  {  // the list and the partial acks persist
    auto store = MustOpen(dir.path());
    EXPECT_EQ(store->OutboxBackends(), (std::vector<std::string>{"chime", "dynamodb"}));
    auto left = store->Outbox(0);
    ASSERT_EQ(left->size(), 1u);
    EXPECT_EQ(left->front().acked_by, std::vector<std::string>{"dynamodb"});
    EXPECT_TRUE(store->Outbox(0, "", "dynamodb")->empty());
    // Dropping chime from the list completes what dynamodb already has.
    ASSERT_TRUE(store->SetOutboxBackends({"dynamodb"}).ok());
    EXPECT_TRUE(store->Outbox(0)->empty());
    EXPECT_EQ(store->SetOutboxBackends({""}).code(), Code::kInvalidArgument);
  }
}

TEST(Store, UnreadCountsFollowTheReadMarker) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  std::vector<Operation> ops;
  for (int i = 0; i < 5; ++i) {
    Operation op;
    op.kind = OpKind::kSend;
    op.message_id = op.op_id = "remote-" + std::to_string(i);
    op.author = "bob";
    op.at = OrderKey{(uint64_t{1'700'000'000'000} + static_cast<uint64_t>(i)) << 16, 42};
    op.body = "hi";
    ops.push_back(op);
  }
  ASSERT_TRUE(store->Merge("sim", "c", ops, "cursor-5").ok());
  EXPECT_EQ(store->GetCursor("sim", "c").value(), "cursor-5");
  EXPECT_EQ(store->GetConversation("c")->unread_count, 5u);
  ASSERT_TRUE(store->MarkRead("c", ops[2].at).ok());
  EXPECT_EQ(store->GetConversation("c")->unread_count, 2u);
  ASSERT_TRUE(store->MarkRead("c", ops[0].at).ok());  // never goes back
  EXPECT_EQ(store->GetConversation("c")->unread_count, 2u);
  // Re-merging the same page is idempotent.
  ASSERT_TRUE(store->Merge("sim", "c", ops, "cursor-5").ok());
  EXPECT_EQ(store->GetConversation("c")->message_count, 5u);
}

TEST(Codec, OperationRoundTripAndGarbage) {
  Operation op;
  op.kind = OpKind::kReact;
  op.op_id = "o";
  op.conversation_id = "c";
  op.author = "a";
  op.at = {123, 456};
  op.message_id = "m";
  op.reaction = "+1";
  op.metadata["x"] = "y";
  op.server_time_ms = 77;
  std::string bytes = EncodeOperation(op);
  Operation back;
  ASSERT_TRUE(DecodeOperation(bytes, &back));
  EXPECT_EQ(back, op);
  std::mt19937 rng(1);
  for (int i = 0; i < 2000; ++i) {
    std::string g = bytes;
    g[rng() % g.size()] = static_cast<char>(rng());
    if (rng() % 2) g.resize(rng() % g.size());
    Operation out;
    DecodeOperation(g, &out);  // must not crash or read out of bounds (ASan)
  }
  EXPECT_FALSE(DecodeOperation("", &back));
}

TEST(Ids, UuidV7IsTimeOrderedAndWellFormed) {
  std::string a = NewMessageId(1000), b = NewMessageId(2000);
  EXPECT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '7');
  EXPECT_LT(a, b);
  EXPECT_NE(NewMessageId(1000), NewMessageId(1000));
  EXPECT_EQ(UuidV7Millis(NewMessageId(1'700'000'000'123)), 1'700'000'000'123u);
  EXPECT_EQ(UuidV7Millis("chime:4a1d-not-a-uuid"), 0u);
  EXPECT_EQ(UuidV7Millis("0189a7f2-3c4d-4e5f-8a9b-0123456789ab"), 0u);  // v4
  EXPECT_EQ(UuidV7Millis("0189a7f2-3c4d-7e5f-8a9b-0123456789AB"), 0x0189a7f23c4du);
  EXPECT_EQ(UuidV7Millis("0189a7g2-3c4d-7e5f-8a9b-0123456789ab"), 0u);
}

// Ids draw their random bits from a per-thread pool: still unique across
// threads, across many refills, and between a parent and a forked child that
// inherited the pool.
TEST(Ids, UniqueAcrossThreadsRefillsAndFork) {
  // 8-4-4-4-12 lowercase hex, version 7, RFC 4122 variant.
  auto well_formed = [](const std::string& id) {
    if (id.size() != 36 || id[14] != '7' || std::string("89ab").find(id[19]) == std::string::npos)
      return false;
    for (size_t i = 0; i < id.size(); ++i) {
      const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      const char c = id[i];
      if (dash != (c == '-')) return false;
      if (!dash && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
  };
  std::vector<std::vector<std::string>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& ids : per_thread) {
    threads.emplace_back([&ids] {
      for (int i = 0; i < 5000; ++i) ids.push_back(NewMessageId(1'700'000'000'000));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& ids : per_thread) {
    for (const auto& id : ids) {
      ASSERT_TRUE(well_formed(id)) << id;
      all.insert(id);
    }
  }
  EXPECT_EQ(all.size(), 20000u);

  NewMessageId(1);  // the pool is filled before the fork
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string id = NewMessageId(1'700'000'000'000);
    ssize_t n = ::write(fds[1], id.data(), id.size());
    ::_exit(n == static_cast<ssize_t>(id.size()) ? 0 : 1);
  }
  std::string mine = NewMessageId(1'700'000'000'000);
  std::string theirs(36, '\0');
  ASSERT_EQ(::read(fds[0], theirs.data(), theirs.size()), 36);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_NE(mine, theirs);
}

// verify reads binary keys and values: no byte value may be taken for a
// marker. (It once was: 1 conversation in 256, the ones whose hashed key began
// with '?', made every message of theirs "missing from the by-id index".)
// 2,000 conversations cover every leading byte with near certainty; read-only
// and writable opens after an unclean stop both verify clean.
TEST(Store, VerifyIsCleanForEveryConversationKey) {
  TempDir dir;
  {
    auto store = MustOpen(dir.path());
    std::vector<SendRequest> batch;
    for (int i = 0; i < 2000; ++i) batch.push_back(Msg("conversation-" + std::to_string(i), "x"));
    ASSERT_TRUE(store->SendMany(batch).ok());
    ASSERT_TRUE(store->Send(Msg("conversation-7", "y")).ok());
  }
  for (bool read_only : {true, false}) {
    StoreOptions o;
    o.read_only = read_only;
    auto store = MustOpen(dir.path(), o);
    auto report = store->Verify(nullptr);
    ASSERT_TRUE(report.ok());
    EXPECT_GE(report->records_checked, 3u * 2001 + 2000) << "messages, index, outbox, summaries";
    EXPECT_EQ(report->problems, 0u) << read_only << " " << report->details.front();
  }
}

// Ids from other clients (not UUIDv7) share the zero time prefix; lookups by
// id must still find each one exactly.
TEST(Store, LooksUpForeignAndLocalIdsAlike) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  std::vector<Operation> ops;
  for (int i = 0; i < 50; ++i) {
    Operation op;
    op.kind = OpKind::kSend;
    op.message_id = op.op_id = "chime:" + std::to_string(i);
    op.author = "bob";
    op.at = OrderKey{(uint64_t{1'700'000'000'000} + static_cast<uint64_t>(i)) << 16, 42};
    op.body = "b" + std::to_string(i);
    ops.push_back(op);
  }
  ASSERT_TRUE(store->Merge("sim", "c", ops, "x").ok());
  auto mine = store->Send(Msg("c", "mine"));
  ASSERT_TRUE(mine.ok());
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(store->Get("chime:" + std::to_string(i))->body, "b" + std::to_string(i));
  }
  EXPECT_EQ(store->Get(mine->id)->body, "mine");
  EXPECT_EQ(store->Get("chime:50").status().code(), Code::kNotFound);
  auto report = store->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u);
}

}  // namespace
}  // namespace tidings::engine

namespace tidings::engine {
namespace {

TEST(Store, SendManyIsAtomicAndOrdered) {
  testing::TempDir dir;
  auto store = Store::Open(dir.path(), testing::TestKey(), testing::CreateOptions());
  ASSERT_TRUE(store.ok());
  std::vector<SendRequest> batch;
  for (int i = 0; i < 100; ++i)
    batch.push_back({.conversation_id = "c", .body = std::to_string(i)});
  auto sent = (*store)->SendMany(batch);
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(sent->size(), 100u);
  auto page = (*store)->Page({.conversation_id = "c", .limit = 200});
  ASSERT_EQ(page->size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ((*page)[static_cast<size_t>(i)].body, std::to_string(i));
  EXPECT_EQ((*store)->Outbox(0)->size(), 100u);
  EXPECT_EQ((*store)->GetConversation("c")->message_count, 100u);
  // One bad message: nothing is written.
  batch[50].body = std::string(kMaxBodyBytes + 1, 'x');
  EXPECT_EQ((*store)->SendMany(batch).status().code(), Code::kTooLarge);
  EXPECT_EQ((*store)->Page({.conversation_id = "c", .limit = 500})->size(), 100u);
}

}  // namespace
}  // namespace tidings::engine
