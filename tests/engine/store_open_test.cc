// Opening a store (engine/store_open.cc): keys, file modes, encryption at rest,
// tampering, the writer lock.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "crypto/hash.h"
#include "store_test_util.h"
#include "tests/common/test_files.h"

namespace tidings::engine {
namespace {

using testing::ReadWholeFile;

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
    // The index holds every body's words (folded to lower case): it must
    // add no readable text either.
    auto found = store->Search({.query = "bodymarker7a1fedited"});
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    EXPECT_EQ(found->total, 20u);
  }
  std::vector<std::string> markers = {body, conv, sender, "METAMARKER55e0"};
  for (auto m : std::vector<std::string>(markers)) {
    std::transform(m.begin(), m.end(), m.begin(), ::tolower);
    markers.push_back(m);
    markers.push_back(m.substr(0, 3) == "bod" ? m + "edited" : m);
  }
  for (auto m : std::vector<std::string>(markers)) {
    markers.push_back(crypto::HexEncode(m));
    std::string upper = markers.back();
    std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
    markers.push_back(upper);
  }
  int files = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (!e.is_regular_file()) continue;
    ++files;
    std::string data = ReadWholeFile(e.path().string());
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

}  // namespace
}  // namespace tidings::engine
