// Full-text search in SQLite FTS5 and SQLCipher FTS4 over the search corpus
// (search_corpus.h): query latency, append with the index on and off, and
// the index's size. Built once per library, like
// bench/engine/sqlite_bench.cc, because both export the sqlite3_* symbols:
// TIDINGS_SQLCIPHER is defined for the SQLCipher build, TIDINGS_FTS4 for it
// and for a third build, SQLite with SQLCipher's FTS4 table, which tells
// what the cipher costs apart from FTS4 against FTS5.
//
// Debian's SQLCipher (3.4.1, SQLite 3.15.2) has FTS3/4 but no FTS5, so the
// SQLCipher side is FTS4, the closest it allows: unicode61 with
// remove_diacritics=1 (FTS5 here: remove_diacritics 2), prefix="3", and BM25
// computed from matchinfo() by a function registered below (FTS4 has no
// built-in ranking). Both tables are external-content tables over the
// messages table, kept in step by triggers, as Signal does.
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "bench/engine/sqlite_util.h"
#include "bench/search/search_corpus.h"

namespace {

namespace bs = bench::search;

#if defined(TIDINGS_SQLCIPHER)
constexpr const char* kName = "sqlcipher_fts4";
#elif defined(TIDINGS_FTS4)
constexpr const char* kName = "sqlite_fts4";
#else
constexpr const char* kName = "sqlite_fts5";
#endif

#ifdef TIDINGS_FTS4
constexpr const char* kCreateIndex =
    "CREATE VIRTUAL TABLE messages_fts USING fts4(content=\"messages\", body, "
    "tokenize=unicode61 \"remove_diacritics=1\", prefix=\"3\");"
    "CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(docid, body) VALUES (new.seq, new.body); END;"
    "CREATE TRIGGER messages_bd BEFORE DELETE ON messages BEGIN "
    "DELETE FROM messages_fts WHERE docid = old.seq; END;";
// The top 20 by BM25 first, then snippets for those 20 only (a snippet for
// every match would be most of the work).
constexpr const char* kQuery =
    "SELECT m.id, m.conv, snippet(messages_fts, '<b>', '</b>', '…', 0, 16) "
    "FROM messages_fts JOIN messages AS m ON m.seq = messages_fts.docid "
    "WHERE messages_fts MATCH ?1 AND messages_fts.docid IN (SELECT docid FROM messages_fts "
    "WHERE messages_fts MATCH ?1 ORDER BY bm25(matchinfo(messages_fts, 'pcnalx')) DESC LIMIT 20) "
    "ORDER BY bm25(matchinfo(messages_fts, 'pcnalx')) DESC";
#else
constexpr const char* kCreateIndex =
    "CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', "
    "content_rowid='seq', tokenize='unicode61 remove_diacritics 2', prefix='3');"
    "CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, body) VALUES (new.seq, new.body); END;"
    "CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.seq, old.body); "
    "END;";
// FTS5 sorts by rank itself and makes snippets only for the rows returned.
constexpr const char* kQuery =
    "SELECT m.id, m.conv, f.snip FROM (SELECT rowid AS r, "
    "snippet(messages_fts, 0, '<b>', '</b>', '…', 16) AS snip FROM messages_fts "
    "WHERE messages_fts MATCH ?1 ORDER BY rank LIMIT 20) AS f JOIN messages AS m ON m.seq = f.r";
#endif
constexpr const char* kCount = "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?1";

using bench::sqlite::Exec;
using bench::sqlite::Prepare;

#ifdef TIDINGS_FTS4
// bm25(matchinfo(t, 'pcnalx')) with FTS5's constants (k1 1.2, b 0.75, the
// idf floored at 1e-6); higher is better.
void Bm25(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const auto* m = static_cast<const uint32_t*>(sqlite3_value_blob(argv[0]));
  const uint32_t phrases = m[0], cols = m[1];
  const double rows = m[2];
  const uint32_t* avg = m + 3;
  const uint32_t* len = avg + cols;
  const uint32_t* x = len + cols;
  double score = 0;
  for (uint32_t p = 0; p < phrases; ++p) {
    for (uint32_t c = 0; c < cols; ++c) {
      const uint32_t* h = x + 3 * (c + p * cols);
      if (h[0] == 0) continue;
      double idf = std::log((rows - h[2] + 0.5) / (h[2] + 0.5));
      if (idf <= 0) idf = 1e-6;
      const double tf = h[0], norm = 1.2 * (0.25 + 0.75 * len[c] / std::max(1u, avg[c]));
      score += idf * tf * 2.2 / (tf + norm);
    }
  }
  sqlite3_result_double(ctx, score);
}
#endif

// SQLite and SQLCipher as the store suite sets them up
// (bench::sqlite::OpenConfigured), with a 32 MiB page cache like Tidings'
// block cache. A rowid table (FTS wants an integer key) with the same unique
// keys.
sqlite3* Open(const std::string& path, bool index) {
  sqlite3* db = bench::sqlite::OpenConfigured(path);
#ifdef TIDINGS_FTS4
  sqlite3_create_function(db, "bm25", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, Bm25, nullptr,
                          nullptr);
#endif
  Exec(db, "PRAGMA cache_size = -32768");
  sqlite3_stmt* exists = Prepare(db, "SELECT 1 FROM sqlite_master WHERE name = 'messages'");
  const bool created = sqlite3_step(exists) == SQLITE_ROW;
  sqlite3_finalize(exists);
  if (!created) {
    Exec(db,
         "CREATE TABLE messages (seq INTEGER PRIMARY KEY, conv TEXT NOT NULL, "
         "hlc INTEGER NOT NULL, replica INTEGER NOT NULL, id TEXT NOT NULL UNIQUE, "
         "body TEXT NOT NULL, UNIQUE (conv, hlc, replica))");
    Exec(db, "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, op BLOB NOT NULL)");
    if (index) Exec(db, kCreateIndex);
  }
  return db;
}

// The search corpus's messages, bodies as TEXT (what the FTS triggers read).
struct Inserter : bench::sqlite::Inserter {
  explicit Inserter(sqlite3* db) : bench::sqlite::Inserter(db, /*body_as_text=*/true) {}
  void Insert(uint64_t i) {
    bench::sqlite::Inserter::Insert(i, bs::SearchBody(i, bench::FixtureMessages()));
  }
};

double FileMB(const std::string& path) {
  return static_cast<double>(std::filesystem::file_size(path)) / 1e6;
}

// The messages first (data_s), then the index over them in one 'rebuild'
// (fts_build_s); the index's size is what the rebuild added to the file.
bs::FixtureFacts BuildFixture(const std::string& dir) {
  const std::string path = dir + "/db";
  const size_t n = bench::FixtureMessages();
  bs::FixtureFacts facts;
  sqlite3* db = Open(path, /*index=*/false);
  auto t0 = std::chrono::steady_clock::now();
  {
    Inserter ins(db);
    for (size_t i = 0; i < n; i += 1000) {
      Exec(db, "BEGIN");
      for (size_t k = i; k < std::min(n, i + 1000); ++k) ins.Insert(k);
      Exec(db, "COMMIT");
    }
  }
  Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  facts["data_s"] = bench::MillisSince(t0) / 1e3;
  facts["db_noindex_MB"] = FileMB(path);
  t0 = std::chrono::steady_clock::now();
  Exec(db, kCreateIndex);
  Exec(db, "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')");
  Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  facts["fts_build_s"] = bench::MillisSince(t0) / 1e3;
  facts["db_MB"] = FileMB(path);
  facts["fts_MB"] = facts["db_MB"] - facts["db_noindex_MB"];
  facts["body_MB"] = static_cast<double>(n * bench::kBodyBytes) / 1e6;
  sqlite3_close(db);
  ::sync();
  return facts;
}

const bs::FixtureFacts& Fixture(std::string* path) {
  static const std::string dir = bs::FixturePath(kName);
  static const bs::FixtureFacts facts = bs::CachedFixture(dir, BuildFixture);
  *path = dir + "/db";
  return facts;
}

// The page of hits: id, conversation and snippet of each. Returns the rows.
size_t RunQuery(sqlite3_stmt* q, const char* text) {
  sqlite3_bind_text(q, 1, text, -1, SQLITE_STATIC);
  size_t rows = 0;
  while (sqlite3_step(q) == SQLITE_ROW) {
    for (int c = 0; c < 3; ++c) {
      benchmark::DoNotOptimize(sqlite3_column_text(q, c));
      benchmark::DoNotOptimize(sqlite3_column_bytes(q, c));
    }
    ++rows;
  }
  if (sqlite3_reset(q) != SQLITE_OK) std::abort();
  return rows;
}

size_t CountMatches(sqlite3* db, const char* text) {
  sqlite3_stmt* c = Prepare(db, kCount);
  sqlite3_bind_text(c, 1, text, -1, SQLITE_STATIC);
  if (sqlite3_step(c) != SQLITE_ROW) std::abort();
  const auto n = static_cast<size_t>(sqlite3_column_int64(c, 0));
  sqlite3_finalize(c);
  return n;
}

void BM_Search(benchmark::State& state, const bs::QueryCase& query) {
  std::string path;
  const bs::FixtureFacts& facts = Fixture(&path);
  sqlite3* db = Open(path, /*index=*/true);
  sqlite3_stmt* q = Prepare(db, kQuery);
  const size_t matches = CountMatches(db, query.text);
  const size_t want = std::min(matches, bs::kHitsPerPage);
  if (std::string_view(query.name) == "rare" && matches != bs::kRareMessages) {
    std::fprintf(stderr, "rare: %zu matches, want %zu\n", matches, bs::kRareMessages);
    std::abort();
  }
  for (size_t k = 0; k < bs::WarmupQueries(query); ++k) RunQuery(q, query.text);
  bs::QueryClock clock;
  size_t hits = 0;
  for (auto _ : state) {
    hits = clock.Time(state, [&] { return RunQuery(q, query.text); });
    if (hits != want) std::abort();
  }
  clock.Report(state, static_cast<double>(matches), static_cast<double>(hits));
  state.counters["db_MB"] = facts.at("db_MB");
  state.SetLabel(kName);
  sqlite3_finalize(q);
  sqlite3_close(db);
}

// Appends as bench/engine/sqlite_bench.cc's, with the index (and its
// trigger) or without.
void BM_SearchAppend(benchmark::State& state) {
  bench::TempDir dir;
  const bool index = state.range(1) != 0;
  sqlite3* db = Open(dir.path() + "/db", index);
  const int64_t batch = state.range(0);
  uint64_t i = 0;
  {
    Inserter ins(db);
    for (auto _ : state) {
      Exec(db, "BEGIN");
      for (int64_t k = 0; k < batch; ++k) ins.Insert(i++);
      Exec(db, "COMMIT");
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(i));
  state.SetLabel(std::string(kName) + (index ? " index on" : " index off"));
  sqlite3_close(db);
}
BENCHMARK(BM_SearchAppend)
    ->ArgNames({"batch", "index"})
    ->ArgsProduct({{1, 100}, {0, 1}})
    ->UseRealTime();

// The fixture's build time and sizes (once per run, for the tables).
void BM_SearchIndexSize(benchmark::State& state) {
  std::string path;
  const bs::FixtureFacts& facts = Fixture(&path);
  for (auto _ : state) benchmark::DoNotOptimize(facts.size());
  bs::ReportFacts(state, facts);
  state.counters["messages"] = static_cast<double>(bench::FixtureMessages());
  state.SetLabel(kName);
}
BENCHMARK(BM_SearchIndexSize)->Iterations(1);

const bool kRegistered = bs::RegisterQueries(BM_Search);

}  // namespace

BENCHMARK_MAIN();
