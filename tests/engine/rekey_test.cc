// Rewrapping and rotating a store's keys (engine/rekey.cc), the store id in
// record tags, and the authenticated header at open.
#include "engine/rekey.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "crypto/hash.h"
#include "engine/store_header.h"
#include "engine/store_keys.h"
#include "engine/sync_log.h"
#include "store_test_util.h"

namespace tidings::engine {
namespace {

using crypto::KeySource;

KeySource Phrase(const char* p) { return KeySource::Passphrase(p); }

Header ReadHeader(const TempDir& dir) {
  auto raw = ReadFile(dir / "TIDINGS");
  EXPECT_TRUE(raw.ok());
  Header h;
  EXPECT_TRUE(DecodeHeader(*raw, &h, "p").ok());
  return h;
}

std::set<std::string> DbFiles(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

// The table files and their sizes: the data a rewrap must not rewrite.
std::map<std::string, uintmax_t> Tables(const fs::path& dir) {
  std::map<std::string, uintmax_t> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".sst") out[e.path().filename().string()] = e.file_size();
  }
  return out;
}

// Everything a store carries that a rekey must keep.
struct Contents {
  std::vector<std::string> bodies;
  uint64_t replica = 0;
  std::string user, cursor, state;
  size_t outbox = 0;
};

Contents Read(Store& s) {
  Contents c;
  for (const char* conv : {"a", "b"}) {
    auto page = s.Page({.conversation_id = conv, .limit = 1000});
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (page.ok()) {
      for (const auto& m : *page) c.bodies.push_back(m.body);
    }
  }
  c.replica = s.replica_id();
  c.user = s.user_id();
  auto cursor = s.sync_log().GetCursor("dynamodb", "a");
  auto state = s.sync_log().GetSyncState("k");
  c.cursor = cursor.ok() ? *cursor : cursor.status().ToString();
  c.state = state.ok() ? *state : state.status().ToString();
  c.outbox = s.Outbox(0)->size();
  auto report = s.Verify(nullptr);
  EXPECT_TRUE(report.ok());
  if (report.ok()) {
    EXPECT_EQ(report->problems, 0u);
  }
  return c;
}

void Fill(Store& s, int n) {
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(s.Send(Msg(i % 2 ? "a" : "b", "message " + std::to_string(i))).ok());
  }
  ASSERT_TRUE(s.sync_log().Merge("dynamodb", "a", {}, "cursor-7").ok());
  ASSERT_TRUE(s.sync_log().PutSyncState("k", "v").ok());
}

void ExpectSame(const Contents& a, const Contents& b) {
  EXPECT_EQ(a.bodies, b.bodies);
  EXPECT_EQ(a.replica, b.replica);
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.cursor, b.cursor);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.outbox, b.outbox);
}

// A passphrase store holding Fill's contents (*before): a key store
// rewrapped to `phrase`.
void MakePassphraseStore(const TempDir& dir, const char* phrase, Contents* before) {
  {
    auto s = MustOpen(dir.path());
    ASSERT_NE(s, nullptr);
    Fill(*s, 20);
    *before = Read(*s);
  }
  RekeyOptions o;
  o.new_key = Phrase(phrase);
  ASSERT_TRUE(Rekey(dir.path(), TestKey(), std::move(o)).ok());
}

TEST(Rekey, NewPassphraseRewrapsWithoutRewritingData) {
  TempDir dir;
  Contents before;
  {
    auto s = MustOpen(dir.path());
    ASSERT_NE(s, nullptr);
    Fill(*s, 20);
    before = Read(*s);
  }
  {
    // The close wrote the summaries its sends left lagging (to the WAL):
    // this open makes them tables, so that only the rewrap is measured.
    auto s = MustOpen(dir.path());
    ASSERT_TRUE(s->Flush().ok());
  }
  const auto tables = Tables(dir / "db");
  ASSERT_FALSE(tables.empty());
  RekeyOptions o;
  o.new_key = Phrase("correct horse");
  auto r = Rekey(dir.path(), TestKey(), std::move(o));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->generation, 0u);
  EXPECT_EQ(Tables(dir / "db"), tables) << "a rewrap rewrites no data";
  Header h = ReadHeader(dir);
  EXPECT_EQ(h.key_kind, static_cast<uint8_t>(KeySource::Kind::kPassphrase));
  EXPECT_EQ(h.params.mem_limit, uint64_t{64} << 20) << "interactive by default";

  EXPECT_EQ(Store::Open(dir.path(), TestKey(), {}).status().code(), Code::kWrongKey);
  EXPECT_EQ(Store::Open(dir.path(), Phrase("wrong horse"), {}).status().code(), Code::kWrongKey);
  auto s = Store::Open(dir.path(), Phrase("correct horse"), {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ExpectSame(Read(**s), before);
}

TEST(Rekey, MovesBetweenPassphraseKeyFileAndRawKey) {
  TempDir dir;
  Contents before;
  MakePassphraseStore(dir, "one", &before);
  auto file_key = crypto::SecretKey::Random();
  ASSERT_TRUE(crypto::WriteKeyFile(dir / "key", *file_key).ok());

  RekeyOptions to_file;
  to_file.new_key = KeySource::KeyFile(dir / "key");
  ASSERT_TRUE(Rekey(dir.path(), Phrase("one"), std::move(to_file)).ok());
  EXPECT_EQ(Store::Open(dir.path(), Phrase("one"), {}).status().code(), Code::kWrongKey);
  ExpectSame(Read(**Store::Open(dir.path(), KeySource::KeyFile(dir / "key"), {})), before);
  // A key file and the same bytes from a keychain are one key.
  ExpectSame(
      Read(**Store::Open(dir.path(), KeySource::Raw(std::move(file_key->Clone()).value()), {})),
      before);

  RekeyOptions to_raw;
  to_raw.new_key = TestKey(9);
  ASSERT_TRUE(Rekey(dir.path(), KeySource::KeyFile(dir / "key"), std::move(to_raw)).ok());
  EXPECT_EQ(Store::Open(dir.path(), TestKey(7), {}).status().code(), Code::kWrongKey);

  RekeyOptions back;
  back.new_key = Phrase("two");
  ASSERT_TRUE(Rekey(dir.path(), TestKey(9), std::move(back)).ok());
  ExpectSame(Read(**Store::Open(dir.path(), Phrase("two"), {})), before);
  EXPECT_EQ(Rekey(dir.path(), Phrase("one"), {}).status().code(), Code::kWrongKey);
}

TEST(Rekey, RotationReencryptsEverythingAndKeepsTheStore) {
  TempDir dir;
  Contents before;
  {
    auto s = MustOpen(dir.path());
    ASSERT_NE(s, nullptr);
    Fill(*s, 300);
    ASSERT_TRUE(s->Flush().ok());
    ASSERT_TRUE(s->Send(Msg("a", "in the WAL only")).ok());
    before = Read(*s);
  }
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  RekeyOptions o;
  o.rotate_data_key = true;
  o.progress = [&](uint64_t done, uint64_t total) { progress.emplace_back(done, total); };
  auto r = Rekey(dir.path(), TestKey(), std::move(o));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->generation, 1u);
  EXPECT_GT(r->records, 600u);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().first, r->records);
  for (const auto& [done, total] : progress) EXPECT_LE(done, total);

  EXPECT_FALSE(fs::exists(dir / "db")) << "the old database is removed";
  EXPECT_TRUE(fs::exists(dir / "db-1/CURRENT"));
  Header h = ReadHeader(dir);
  EXPECT_EQ(h.db_dir, "db-1");
  EXPECT_TRUE(h.store_id_in_ad);
  auto s = Store::Open(dir.path(), TestKey(), {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ExpectSame(Read(**s), before);
  ASSERT_TRUE((*s)->Send(Msg("a", "after")).ok());
  s->reset();

  // Again, with a new key at the same time.
  RekeyOptions again;
  again.rotate_data_key = true;
  again.new_key = TestKey(3);
  ASSERT_TRUE(Rekey(dir.path(), TestKey(), std::move(again)).ok());
  EXPECT_EQ(DbFiles(dir.path()), (std::set<std::string>{"TIDINGS", "db-2"}));
  auto s2 = Store::Open(dir.path(), TestKey(3), {});
  ASSERT_TRUE(s2.ok()) << s2.status().ToString();
  EXPECT_EQ(Read(**s2).bodies.size(), before.bodies.size() + 1);
}

// Stores of every earlier format rewrap into format 4 without a data
// rewrite, then rotate and gain the store id in their record tags.
TEST(Rekey, EarlierFormatsUpgrade) {
  for (uint32_t format : {1u, 2u, 3u}) {
    SCOPED_TRACE(format);
    TempDir dir;
    StoreOptions o = CreateOptions("me");
    o.create_format = format;
    o.record_protection = format == 1   ? crypto::RecordProtection::kSealed
                          : format == 2 ? crypto::RecordProtection::kAuthenticated
                                        : crypto::RecordProtection::kAuthenticatedSipHash;
    Contents before;
    {
      auto s = MustOpen(dir.path(), o);
      ASSERT_NE(s, nullptr);
      Fill(*s, 10);
      before = Read(*s);
    }
    ASSERT_EQ(ReadHeader(dir).format, format);
    RekeyOptions rewrap;
    rewrap.new_key = TestKey(8);
    ASSERT_TRUE(Rekey(dir.path(), TestKey(), std::move(rewrap)).ok());
    Header h = ReadHeader(dir);
    EXPECT_EQ(h.format, 4u);
    EXPECT_EQ(h.records, o.record_protection);
    EXPECT_FALSE(h.store_id_in_ad) << "the records were not rewritten";
    ExpectSame(Read(**Store::Open(dir.path(), TestKey(8), {})), before);

    RekeyOptions rotate;
    rotate.rotate_data_key = true;
    ASSERT_TRUE(Rekey(dir.path(), TestKey(8), std::move(rotate)).ok());
    EXPECT_TRUE(ReadHeader(dir).store_id_in_ad);
    ExpectSame(Read(**Store::Open(dir.path(), TestKey(8), {})), before);
  }
}

// The committed store of the last schema-v1 release (format 2) upgrades.
TEST(Rekey, CommittedFixtureUpgrades) {
  TempDir dir;
  const fs::path data = TIDINGS_ENGINE_TEST_DATA;
  fs::copy(data / "schema-v1-store", dir / "s", fs::copy_options::recursive);
  fs::copy_file(data / "schema-v1-store.key", dir / "k");
  fs::permissions(dir / "k", fs::perms::owner_read | fs::perms::owner_write);
  RekeyOptions o;
  o.rotate_data_key = true;
  o.new_key = TestKey(5);
  auto r = Rekey(dir / "s", KeySource::KeyFile(dir / "k"), std::move(o));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto s = Store::Open(dir / "s", TestKey(5), {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->Page({.conversation_id = "ward-7"})->size(), 3u);
  EXPECT_EQ((*s)->Page({.conversation_id = "clinic"})->front().body, "hello clinic");
  EXPECT_EQ((*s)->Verify(nullptr)->problems, 0u);
}

TEST(Rekey, LeftoversOfAnInterruptedRotationAreRemovedByTheNextWriter) {
  TempDir dir;
  ASSERT_NE(MustOpen(dir.path()), nullptr);
  fs::create_directory(dir / "db-4");
  std::ofstream(dir / "db-4/000007.sst") << "half written";
  fs::create_directory(dir / "dbx");  // not ours
  StoreOptions ro;
  ro.read_only = true;
  ASSERT_TRUE(Store::Open(dir.path(), TestKey(), ro).ok());
  EXPECT_TRUE(fs::exists(dir / "db-4")) << "a reader changes nothing";
  ASSERT_TRUE(Store::Open(dir.path(), TestKey(), {}).ok());
  EXPECT_FALSE(fs::exists(dir / "db-4"));
  EXPECT_TRUE(fs::exists(dir / "dbx"));
  EXPECT_TRUE(fs::exists(dir / "db/CURRENT"));
}

TEST(Rekey, RefusesWhileAWriterHasTheStoreOpen) {
  TempDir dir;
  auto s = MustOpen(dir.path());
  ASSERT_NE(s, nullptr);
  RekeyOptions o;
  o.rotate_data_key = true;
  EXPECT_EQ(Rekey(dir.path(), TestKey(), std::move(o)).status().code(), Code::kBusy);
}

TEST(Rekey, ACorruptRecordStopsARotationAndChangesNothing) {
  TempDir dir;
  StoreOptions sealed = CreateOptions("me");
  {
    auto s = MustOpen(dir.path(), sealed);
    ASSERT_NE(s, nullptr);
    Fill(*s, 5);
  }
  // A record whose tag does not match: write one under the wrong AD through
  // a store that shares the keys but not the store id binding.
  Header h = ReadHeader(dir);
  auto keys = UnlockHeader(h, TestKey(), dir.path());
  ASSERT_TRUE(keys.ok());
  Header unbound = h;
  unbound.store_id_in_ad = false;
  ASSERT_TRUE(WriteFileAtomically(dir / "TIDINGS", EncodeHeader(unbound, keys->header_mac)).ok());
  {
    auto s = Store::Open(dir.path(), TestKey(), {});
    ASSERT_FALSE(s.ok()) << "the identity records no longer verify";
    EXPECT_EQ(s.status().code(), Code::kDataLoss);
  }
  RekeyOptions o;
  o.rotate_data_key = true;
  EXPECT_FALSE(Rekey(dir.path(), TestKey(), std::move(o)).ok());
  EXPECT_EQ(DbFiles(dir.path()), (std::set<std::string>{"TIDINGS", "db"}));
}

// The attack: two stores with the same key file; one store's db/
// under the other's header must not open or verify.
TEST(Rekey, OneStoresDatabaseDoesNotOpenUnderAnothersHeader) {
  TempDir dir;
  for (const char* name : {"x", "y"}) {
    auto s = MustOpen(dir / name);
    ASSERT_NE(s, nullptr);
    Fill(*s, 5);
  }
  fs::remove_all(dir / "y/db");
  fs::copy(dir / "x/db", dir / "y/db", fs::copy_options::recursive);
  auto y = Store::Open(dir / "y", TestKey(), {});
  EXPECT_FALSE(y.ok() && (*y)->Verify(nullptr)->problems == 0) << "x's records opened as y's";

  // Even with the same data keys (a copied store given a new id), the
  // record tags bind the store id.
  TempDir copy;
  fs::copy(dir / "x", copy / "z", fs::copy_options::recursive);
  Header h;
  ASSERT_TRUE(DecodeHeader(*ReadFile(copy / "z/TIDINGS"), &h, "p").ok());
  auto keys = UnlockHeader(h, TestKey(), copy / "z");
  ASSERT_TRUE(keys.ok());
  h.store_id = NewStoreId();
  ASSERT_TRUE(WriteFileAtomically(copy / "z/TIDINGS", EncodeHeader(h, keys->header_mac)).ok());
  EXPECT_EQ(Store::Open(copy / "z", TestKey(), {}).status().code(), Code::kDataLoss);
}

TEST(StoreOpen, ATamperedHeaderIsDataLossAndAWrongKeyStaysWrongKey) {
  TempDir dir;
  ASSERT_NE(MustOpen(dir.path()), nullptr);
  Header h = ReadHeader(dir);
  // Forged without the key: a changed field under a MAC of another key.
  auto other = crypto::SecretKey::Random();
  h.generation = 5;
  ASSERT_TRUE(WriteFileAtomically(dir / "TIDINGS", EncodeHeader(h, *other)).ok());
  auto opened = Store::Open(dir.path(), TestKey(), {});
  EXPECT_EQ(opened.status().code(), Code::kDataLoss);
  EXPECT_NE(opened.status().message().find("tampered"), std::string::npos);
  EXPECT_EQ(Store::Open(dir.path(), TestKey(1), {}).status().code(), Code::kWrongKey);
}

TEST(StoreOpen, APassphraseStoreWithAbsurdLimitsFailsFast) {
  TempDir dir;
  Contents before;
  MakePassphraseStore(dir, "p", &before);
  Header h = ReadHeader(dir);
  h.params.ops_limit = 0xffffffffu;
  auto any = crypto::SecretKey::Random();
  ASSERT_TRUE(WriteFileAtomically(dir / "TIDINGS", EncodeHeader(h, *any)).ok());
  auto opened = Store::Open(dir.path(), Phrase("p"), {});
  EXPECT_EQ(opened.status().code(), Code::kDataLoss);
  EXPECT_NE(opened.status().message().find("Argon2id"), std::string::npos);
}

TEST(Rekey, ProfilesChooseTheNewLimitsAndAreKeptOtherwise) {
  TempDir dir;
  Contents before;
  MakePassphraseStore(dir, "p", &before);
  // Keep the same limits when rotating with the same passphrase.
  const Header first = ReadHeader(dir);
  RekeyOptions o;
  o.rotate_data_key = true;
  ASSERT_TRUE(Rekey(dir.path(), Phrase("p"), std::move(o)).ok());
  const Header second = ReadHeader(dir);
  EXPECT_EQ(second.params.ops_limit, first.params.ops_limit);
  EXPECT_EQ(second.params.mem_limit, first.params.mem_limit);
  EXPECT_NE(second.params.salt, first.params.salt) << "a fresh salt";
  EXPECT_NE(second.wrapped_keys, first.wrapped_keys);
}

}  // namespace
}  // namespace tidings::engine
