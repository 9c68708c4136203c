// Tidings' full-text search over the search corpus (search_corpus.h), the
// same queries and page size as fts_bench.cc's SQLite FTS5 and SQLCipher
// FTS4: query latency, append with the index on and off (as
// bench/engine/store_bench.cc appends), and the index's size against the
// messages'. The query and index-on parts need Store::Search and
// StoreOptions::search_index (TIDINGS_HAVE_SEARCH, set by CMakeLists.txt
// when engine/store.h declares them); without them only the store without
// an index is measured.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "bench/engine/store_util.h"
#include "bench/search/search_corpus.h"
#include "engine/search.h"
#include "engine/store.h"

namespace {

namespace bs = bench::search;
using tidings::engine::Store;

#ifdef TIDINGS_HAVE_SEARCH
constexpr bool kHaveIndex = true;
#else
constexpr bool kHaveIndex = false;
#endif

// As store_bench.cc opens it (relaxed durability), index on or off.
std::unique_ptr<Store> Open(const std::string& path, bool index) {
  tidings::engine::StoreOptions o;
  o.create_if_missing = true;
  o.user_id = "bench";
  o.durability = tidings::engine::Durability::kRelaxed;
#ifdef TIDINGS_HAVE_SEARCH
  o.search_index = index;
#else
  if (index) std::abort();
#endif
  if (const char* mb = std::getenv("TIDINGS_BENCH_CACHE_MB"))
    o.block_cache_bytes = std::strtoull(mb, nullptr, 10) << 20;
  auto s = Store::Open(path, bench::StoreKey(), o);
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.status().ToString().c_str());
    std::abort();
  }
  return std::move(*s);
}

void Fill(std::vector<tidings::engine::SendRequest>& reqs, uint64_t first) {
  for (size_t k = 0; k < reqs.size(); ++k) {
    reqs[k].conversation_id = bench::ConvId(first + k);
    reqs[k].body = bs::SearchBody(first + k, bench::FixtureMessages());
  }
}

// The fixture as store_bench.cc's page fixture builds it: batches of 1,000
// sends, then a flush and a full compaction.
bs::FixtureFacts BuildFixture(const std::string& dir, bool index) {
  const size_t n = bench::FixtureMessages();
  auto t0 = std::chrono::steady_clock::now();
  auto store = Open(dir, index);
  for (size_t i = 0; i < n; i += 1000) {
    std::vector<tidings::engine::SendRequest> reqs(std::min<size_t>(1000, n - i));
    Fill(reqs, i);
    if (!store->SendMany(reqs).ok()) std::abort();
  }
  if (!store->Flush().ok() || !store->Compact().ok()) std::abort();
  store.reset();
  ::sync();  // the fixture's write-back must not land in the next timed run
  return {{"build_s", bench::MillisSince(t0) / 1e3},
          {"store_MB", static_cast<double>(bench::DirBytes(dir)) / 1e6}};
}

const bs::FixtureFacts& Fixture(bool index, std::string* path) {
  static const std::string on = bs::FixturePath("tidings"),
                           off = bs::FixturePath("tidings_noindex");
  static std::map<bool, bs::FixtureFacts> facts;
  *path = index ? on : off;
  if (!facts.contains(index)) {
    facts[index] = bs::CachedFixture(
        *path, [index](const std::string& dir) { return BuildFixture(dir, index); });
  }
  return facts[index];
}

#ifdef TIDINGS_HAVE_SEARCH
tidings::engine::SearchResult RunQuery(Store& store, const char* text) {
  auto r = store.Search({.query = text, .limit = bs::kHitsPerPage});
  if (!r.ok()) {
    std::fprintf(stderr, "search: %s\n", r.status().ToString().c_str());
    std::abort();
  }
  for (const auto& hit : r->hits) {
    benchmark::DoNotOptimize(hit.snippet.data());
    benchmark::DoNotOptimize(hit.marks.data());
  }
  return std::move(*r);
}

void BM_Search(benchmark::State& state, const bs::QueryCase& query) {
  std::string path;
  Fixture(/*index=*/true, &path);
  auto store = Open(path, /*index=*/true);
  const auto first = RunQuery(*store, query.text);
  const size_t want = std::min<size_t>(first.total, bs::kHitsPerPage);
  if (std::string_view(query.name) == "rare" && first.total != bs::kRareMessages) {
    std::fprintf(stderr, "rare: %zu matches, want %zu\n", static_cast<size_t>(first.total),
                 bs::kRareMessages);
    std::abort();
  }
  for (size_t k = 0; k < bs::WarmupQueries(query); ++k) RunQuery(*store, query.text);
  bs::QueryClock clock;
  size_t hits = 0;
  for (auto _ : state) {
    hits = clock.Time(state, [&] { return RunQuery(*store, query.text).hits.size(); });
    if (hits != want) std::abort();
  }
  clock.Report(state, static_cast<double>(first.total), static_cast<double>(hits));
  state.SetLabel("tidings");
}

const bool kRegistered = bs::RegisterQueries(BM_Search);
#endif

// Appends as store_bench.cc's BM_Append_Tidings (Send for batch 1, SendMany
// for 100), with the index on or off.
void BM_SearchAppend(benchmark::State& state) {
  bench::TempDir dir;
  const bool index = state.range(1) != 0;
  auto store = Open(dir.path(), index);
  const size_t batch = static_cast<size_t>(state.range(0));
  uint64_t i = 0;
  std::vector<tidings::engine::SendRequest> reqs(batch);
  for (auto _ : state) {
    Fill(reqs, i);
    i += batch;
    if (batch == 1) {
      if (!store->Send(reqs[0]).ok()) std::abort();
    } else if (!store->SendMany(reqs).ok()) {
      std::abort();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(i));
  state.SetLabel(index ? "tidings index on" : "tidings index off");
}
BENCHMARK(BM_SearchAppend)
    ->ArgNames({"batch", "index"})
    ->ArgsProduct({{1, 100}, kHaveIndex ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{0}})
    ->UseRealTime();

// Build time and size of the store with the index and without; index_MB is
// the difference, against the message text (body_MB) and the store.
void BM_SearchIndexSize(benchmark::State& state) {
  std::string path;
  const bs::FixtureFacts off = Fixture(/*index=*/false, &path);
  for (auto _ : state) benchmark::DoNotOptimize(off.size());
  state.counters["store_noindex_MB"] = off.at("store_MB");
  state.counters["build_noindex_s"] = off.at("build_s");
  state.counters["body_MB"] =
      static_cast<double>(bench::FixtureMessages() * bench::kBodyBytes) / 1e6;
  state.counters["messages"] = static_cast<double>(bench::FixtureMessages());
  if constexpr (kHaveIndex) {
    const bs::FixtureFacts on = Fixture(/*index=*/true, &path);
    state.counters["store_MB"] = on.at("store_MB");
    state.counters["build_s"] = on.at("build_s");
    state.counters["index_MB"] = on.at("store_MB") - off.at("store_MB");
  }
  state.SetLabel("tidings");
}
BENCHMARK(BM_SearchIndexSize)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
