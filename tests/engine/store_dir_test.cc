// Creating a store never wipes data: a directory whose header is lost keeps
// its database, an interrupted creation starts over, and a directory holding
// anything else is refused.
#include "engine/store_dir.h"

#include <fstream>

#include "engine/store_header.h"
#include "store_test_util.h"

namespace tidings::engine {
namespace {

size_t FilesUnder(const fs::path& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

void MakeStore(const std::string& path, int messages) {
  auto store = MustOpen(path);
  for (int i = 0; i < messages; ++i) ASSERT_TRUE(store->Send(Msg("c", "m")).ok());
}

TEST(StoreDir, LostHeaderIsRefusedAndTheDataKept) {
  TempDir dir;
  MakeStore(dir.path(), 20);
  EXPECT_FALSE(fs::exists(dir / kCreatingMarker)) << "the marker outlived the creation";
  const std::string saved = dir / "../saved-header";
  fs::copy_file(dir / kHeaderFile, saved, fs::copy_options::overwrite_existing);
  fs::remove(dir / kHeaderFile);
  const size_t before = FilesUnder(dir / "db");
  ASSERT_GT(before, 0u);

  for (int attempt = 0; attempt < 2; ++attempt) {
    auto again = Store::Open(dir.path(), TestKey(), CreateOptions());
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.status().code(), Code::kFailedPrecondition);
    EXPECT_NE(again.status().message().find("restore the header"), std::string::npos)
        << again.status().ToString();
  }
  EXPECT_EQ(FilesUnder(dir / "db"), before) << "init changed the database files";

  fs::rename(saved, dir / kHeaderFile);
  auto store = MustOpen(dir.path(), StoreOptions{});
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Page({.conversation_id = "c", .limit = 100})->size(), 20u);
}

TEST(StoreDir, InterruptedCreationStartsOver) {
  TempDir dir;
  MakeStore(dir.path(), 3);
  // What a creation killed before its header landed leaves: db/ and the marker.
  fs::remove(dir / kHeaderFile);
  std::ofstream(dir / kCreatingMarker).put('\0');
  auto store = MustOpen(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Page({.conversation_id = "c"})->size(), 0u);
  EXPECT_TRUE(fs::exists(dir / kHeaderFile));
  EXPECT_FALSE(fs::exists(dir / kCreatingMarker));
}

TEST(StoreDir, CreationKilledWhileWritingItsMarkerStartsOver) {
  // Killed inside the marker's own atomic write: only the marker's temporary
  // file exists (seen in the kill -9 test).
  TempDir dir;
  std::ofstream(dir / (std::string(kCreatingMarker) + kAtomicWriteSuffix)).put('\0');
  auto store = MustOpen(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(fs::exists(dir / kHeaderFile));
  EXPECT_FALSE(fs::exists(dir / kCreatingMarker));
}

TEST(StoreDir, EmptyDbDirectoryIsNoData) {
  TempDir dir;
  fs::create_directories(dir / "db");
  EXPECT_NE(MustOpen(dir.path()), nullptr);
}

TEST(StoreDir, DirectoryWithOtherFilesIsRefused) {
  TempDir dir;
  std::ofstream(dir / "notes.txt") << "mine";
  auto store = Store::Open(dir.path(), TestKey(), CreateOptions());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("not a Tidings store"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir / "notes.txt"));
  EXPECT_FALSE(fs::exists(dir / "db"));
}

TEST(StoreDir, ReadOnlyOpenOfALostHeaderIsNotFound) {
  TempDir dir;
  MakeStore(dir.path(), 1);
  fs::remove(dir / kHeaderFile);
  StoreOptions ro;
  ro.read_only = true;
  EXPECT_EQ(Store::Open(dir.path(), TestKey(), ro).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace tidings::engine
