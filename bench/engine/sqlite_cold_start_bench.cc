// Cold start with SQLite and SQLCipher (bench/engine/cold_start_bench.cc has
// Tidings'): open (and key) the database, read the conversation list of
// 1,000 conversations with each one's newest time, message count and unread
// count, then the newest page of the most recent one. The schema is what an
// app would keep for that list: the messages table of sqlite_bench.cc plus a
// conversations table the app updates with each message (its summary,
// unread count included, so the list is one indexed scan). Built once per
// library; TIDINGS_SQLCIPHER is defined for the SQLCipher build.
#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <chrono>
#include <vector>

#include "bench/engine/sqlite_util.h"
#include "bench_util.h"

namespace {

#ifdef TIDINGS_SQLCIPHER
constexpr const char* kName = "sqlcipher";
#else
constexpr const char* kName = "sqlite";
#endif

using bench::sqlite::Exec;
using bench::sqlite::Prepare;

sqlite3* Open(const std::string& path) {
  sqlite3* db = bench::sqlite::OpenConfigured(path);
  bench::sqlite::CreateMessagesTable(db);
  Exec(db,
       "CREATE TABLE IF NOT EXISTS conversations (conv TEXT PRIMARY KEY, last_hlc INTEGER NOT "
       "NULL, count INTEGER NOT NULL, unread INTEGER NOT NULL) WITHOUT ROWID");
  Exec(db, "CREATE INDEX IF NOT EXISTS by_recency ON conversations (last_hlc DESC)");
  return db;
}

const std::string& Fixture() {
  static bench::TempDir dir;
  static const std::string path = [] {
    const std::string p = dir.path() + "/db";
    sqlite3* db = Open(p);
    sqlite3_stmt* msg = Prepare(db,
                                "INSERT INTO messages (conv, hlc, replica, id, body) "
                                "VALUES (?, ?, 1, ?, ?)");
    // (No UPSERT: SQLCipher 3.4 is SQLite 3.15.)
    sqlite3_stmt* add =
        Prepare(db,
                "INSERT OR IGNORE INTO conversations (conv, last_hlc, count, unread) "
                "VALUES (?, 0, 0, 0)");
    sqlite3_stmt* conv = Prepare(db,
                                 "UPDATE conversations SET last_hlc = ?2, count = count + 1, "
                                 "unread = unread + 1 WHERE conv = ?1");
    const size_t n = bench::FixtureMessages();
    Exec(db, "BEGIN");
    for (uint64_t i = 0; i < n; ++i) {
      const std::string c = bench::ConvId(i), id = "id-" + std::to_string(i), body = bench::Body(i);
      sqlite3_bind_text(msg, 1, c.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(msg, 2, static_cast<int64_t>(i));
      sqlite3_bind_text(msg, 3, id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_blob(msg, 4, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
      if (sqlite3_step(msg) != SQLITE_DONE) std::abort();
      sqlite3_reset(msg);
      sqlite3_bind_text(add, 1, c.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(add) != SQLITE_DONE) std::abort();
      sqlite3_reset(add);
      sqlite3_bind_text(conv, 1, c.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(conv, 2, static_cast<int64_t>(i));
      if (sqlite3_step(conv) != SQLITE_DONE) std::abort();
      sqlite3_reset(conv);
      if (i % 10'000 == 9'999) {
        Exec(db, "COMMIT");
        Exec(db, "BEGIN");
      }
    }
    Exec(db, "COMMIT");
    sqlite3_finalize(msg);
    sqlite3_finalize(add);
    sqlite3_finalize(conv);
    Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(db);
    return p;
  }();
  return path;
}

void BM_ColdStart(benchmark::State& state) {
  const std::string& path = Fixture();
  bench::ColdStartTimes times;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    sqlite3* db = bench::sqlite::OpenConfigured(path);
    // The first statement reads the schema (and, keyed, checks the key).
    sqlite3_stmt* list_stmt = Prepare(
        db, "SELECT conv, last_hlc, count, unread FROM conversations ORDER BY last_hlc DESC");
    const double opened = bench::MillisSince(t0);
    std::vector<std::string> convs;
    while (sqlite3_step(list_stmt) == SQLITE_ROW) {
      convs.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(list_stmt, 0)));
    }
    sqlite3_finalize(list_stmt);
    if (convs.size() != bench::kConversations) std::abort();
    const double listed = bench::MillisSince(t0);
    sqlite3_stmt* page_stmt = Prepare(db,
                                      "SELECT id, hlc, replica, body FROM messages WHERE conv = ? "
                                      "ORDER BY hlc DESC, replica DESC LIMIT 50");
    sqlite3_bind_text(page_stmt, 1, convs.front().c_str(), -1, SQLITE_TRANSIENT);
    size_t rows = 0;
    while (sqlite3_step(page_stmt) == SQLITE_ROW) ++rows;
    sqlite3_finalize(page_stmt);
    if (rows != bench::ExpectedPage()) std::abort();
    const double shown = bench::MillisSince(t0);
    times.Add(opened, listed, shown);
    state.PauseTiming();
    sqlite3_close(db);
    state.ResumeTiming();
  }
  times.Report(state);
  state.SetLabel(kName);
}
BENCHMARK(BM_ColdStart)->Unit(benchmark::kMillisecond)->Iterations(20)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
