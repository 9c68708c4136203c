// Short-lived writers keep the file count bounded: a one-shot writer (as
// `tidings send` is) flushes and lets RocksDB's compactions finish before it
// closes, so files do not pile up without a long-running writer.
#include <chrono>
#include <cstdlib>
#include <iostream>

#include "store_test_util.h"

namespace tidings::engine {
namespace {

size_t DbFiles(const std::string& store) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(store) / "db")) n += e.is_regular_file();
  return n;
}

TEST(FileCount, OneShotWritersKeepItBounded) {
  const int sends = std::getenv("TIDINGS_SOAK") != nullptr ? 1000 : 30;
  // 5 families with data (messages, by_id, outbox, conversations, meta),
  // each under the level-0 trigger (4) plus the levels below, and RocksDB's
  // own files (CURRENT, IDENTITY, LOCK, MANIFEST, OPTIONS, WAL).
  constexpr size_t kBound = 48;
  TempDir dir;
  size_t most = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < sends; ++i) {
    auto store = MustOpen(dir.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(
        store->Send(Msg("c" + std::to_string(i % 3), "one-shot " + std::to_string(i))).ok());
    store.reset();
    most = std::max(most, DbFiles(dir.path()));
    ASSERT_LE(DbFiles(dir.path()), kBound) << "after " << i + 1 << " one-shot sends";
  }
  const auto ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  std::cout << sends << " one-shot sends: " << DbFiles(dir.path()) << " files in db/ (at most "
            << most << "), " << ms.count() / sends << " ms per open+send+close\n";
  auto store = MustOpen(dir.path());
  size_t total = 0;
  for (int c = 0; c < 3; ++c) {
    total += store->Page({.conversation_id = "c" + std::to_string(c), .limit = 10000})->size();
  }
  EXPECT_EQ(total, static_cast<size_t>(sends));
  auto report = store->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u);
}

}  // namespace
}  // namespace tidings::engine
