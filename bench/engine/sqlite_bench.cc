// SQLite (WAL, synchronous=NORMAL) and SQLCipher (same, 4 KiB pages, keyed)
// inserting and paging the same messages. Built twice, once per library,
// because both export the sqlite3_* symbols. TIDINGS_SQLCIPHER is defined
// for the SQLCipher build.
#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <cstdio>

#include "bench/engine/sqlite_util.h"
#include "bench_util.h"

namespace {

#ifdef TIDINGS_SQLCIPHER
constexpr const char* kName = "sqlcipher";
#else
constexpr const char* kName = "sqlite";
#endif

using bench::sqlite::Exec;

sqlite3* Open(const std::string& path) {
  sqlite3* db = bench::sqlite::OpenConfigured(path);
  bench::sqlite::CreateMessagesTable(db);
  Exec(db, "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, op BLOB NOT NULL)");
  return db;
}

// The store suite's messages, bodies as BLOBs.
struct Inserter : bench::sqlite::Inserter {
  explicit Inserter(sqlite3* db) : bench::sqlite::Inserter(db, /*body_as_text=*/false) {}
  void Insert(uint64_t i) { bench::sqlite::Inserter::Insert(i, bench::Body(i)); }
};

void BM_Append(benchmark::State& state) {
  bench::TempDir dir;
  sqlite3* db = Open(dir.path() + "/db");
  Inserter ins(db);
  const int64_t batch = state.range(0);
  uint64_t i = 0;
  for (auto _ : state) {
    Exec(db, "BEGIN");
    for (int64_t k = 0; k < batch; ++k) ins.Insert(i++);
    Exec(db, "COMMIT");
  }
  state.SetItemsProcessed(static_cast<int64_t>(i));
  state.SetLabel(kName);
  sqlite3_close(db);
}
BENCHMARK(BM_Append)->Arg(1)->Arg(100)->UseRealTime();

void BM_NewestPage(benchmark::State& state) {
  bench::TempDir dir;
  const size_t n = bench::FixtureMessages();
  {
    sqlite3* db = Open(dir.path() + "/db");
    Inserter ins(db);
    for (size_t i = 0; i < n; i += 1000) {
      Exec(db, "BEGIN");
      for (size_t k = 0; k < 1000; ++k) ins.Insert(i + k);
      Exec(db, "COMMIT");
    }
    Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(db);
  }
  auto t0 = std::chrono::steady_clock::now();
  sqlite3* db = Open(dir.path() + "/db");
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT id, body FROM messages WHERE conv = ? ORDER BY hlc DESC, replica DESC "
                     "LIMIT 50",
                     -1, &q, nullptr);
  double open_ms = bench::MillisSince(t0);
  std::vector<double> samples;
  uint64_t k = 0;
  for (auto _ : state) {
    auto s = std::chrono::steady_clock::now();
    std::string conv = bench::ConvId(k++ * 7919);
    sqlite3_bind_text(q, 1, conv.c_str(), -1, SQLITE_TRANSIENT);
    int rows = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
      benchmark::DoNotOptimize(sqlite3_column_blob(q, 1));
      ++rows;
    }
    sqlite3_reset(q);
    if (static_cast<size_t>(rows) != bench::ExpectedPage()) std::abort();
    samples.push_back(bench::MicrosSince(s));
  }
  bench::ReportPageLatency(state, std::move(samples), open_ms, dir.path());
  state.SetLabel(kName);
  sqlite3_finalize(q);
  sqlite3_close(db);
}
BENCHMARK(BM_NewestPage)->Iterations(20000)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
