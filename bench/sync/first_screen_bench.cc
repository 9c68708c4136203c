// Time to first screen: a fresh device opens a conversation with a long
// history. Newest first (Backend::PullHistory, docs/sync.md "Newest first"):
// one request and one merge, then the newest 50 are visible. Oldest first
// (SyncConfig::newest_first = false, the behaviour before): every page from
// the beginning. Both through the Reconciler into a fresh store; the backend
// is in-process (it makes the messages up, nothing kept), so the figures are
// the store's and the reconciler's, without a network round trip.
//
//   BM_FirstScreen/newest_first, /oldest_first
//       per iteration a conversation of N messages (TIDINGS_BENCH_HISTORY,
//       default 10,000) never pulled here, until its newest 50 messages
//       are in the store: p50_ms and p99_ms of the iterations
//   BM_Backfill_Memory
//       newest page, then the whole history filled in the background
//       (default bounds) for TIDINGS_BENCH_BACKFILL messages (default
//       100,000): RSS sampled after every round (rss_start_MB, rss_peak_MB);
//       TIDINGS_BENCH_OLDEST_FIRST=1 pulls it from the beginning instead
//
// Command and figures: bench/RESULTS.md ("Newest first").
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "engine/store.h"
#include "engine/sync_log.h"
#include "sync/core/reconciler.h"
#include "sync_bench_util.h"

namespace {

using bench::sync::GeneratorBackend;
using bench::sync::Key;
using bench::sync::kT0;
using bench::sync::RemoteId;
using bench::sync::RssMB;
using tidings::engine::Store;

constexpr size_t kScreen = 50;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

struct FreshStore {
  bench::TempDir dir;
  std::unique_ptr<Store> store;
  FreshStore() {
    tidings::engine::StoreOptions o;
    o.create_if_missing = true;
    o.user_id = "bench";
    o.durability = tidings::engine::Durability::kRelaxed;
    // TIDINGS_BENCH_WRITE_BUFFER_MB: the store's memtable budget (0: RocksDB's defaults).
    o.write_buffer_bytes = EnvOr("TIDINGS_BENCH_WRITE_BUFFER_MB", o.write_buffer_bytes >> 20) << 20;
    store = std::move(Store::Open(dir.path(), Key(), o).value());
  }
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t at = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[at];
}

void BM_FirstScreen(benchmark::State& state) {
  const bool newest_first = state.range(0) != 0;
  const uint64_t history = EnvOr("TIDINGS_BENCH_HISTORY", 10'000);
  FreshStore fresh;
  tidings::sync::SyncConfig config;
  config.pull_page_size = kScreen;
  config.max_pull_pages_per_round = 1'000'000;  // oldest first: everything, then the screen
  config.max_history_pages_per_round = 0;       // the fill is not part of the first screen
  config.newest_first = newest_first;
  config.end_to_end_default = false;
  int64_t now = static_cast<int64_t>(kT0);
  std::vector<double> ms;
  uint64_t n = 0;
  for (auto _ : state) {
    // A conversation never pulled here, with ids of its own.
    const std::string conv = "c" + std::to_string(n);
    GeneratorBackend backend(n++ * history);
    backend.available = history;
    const std::string newest = RemoteId(n * history - 1);
    tidings::sync::Reconciler rec(
        &fresh.store->sync_log(), &backend, config, [&] { return ++now; }, [] { return 1; });
    const auto start = std::chrono::steady_clock::now();
    do {
      if (!rec.Pull(conv).ok()) std::abort();
    } while (!fresh.store->Get(newest).ok());
    const auto end = std::chrono::steady_clock::now();
    const double took = std::chrono::duration<double, std::milli>(end - start).count();
    state.SetIterationTime(took / 1000);
    ms.push_back(took);
    if (fresh.store->GetConversation(conv)->message_count < kScreen) std::abort();
  }
  state.counters["p50_ms"] = Percentile(ms, 0.5);
  state.counters["p99_ms"] = Percentile(ms, 0.99);
  state.counters["messages"] = static_cast<double>(history);
  state.SetLabel(newest_first ? "newest_first" : "oldest_first");
}
BENCHMARK(BM_FirstScreen)->Arg(1)->Arg(0)->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_Backfill_Memory(benchmark::State& state) {
  const uint64_t history = EnvOr("TIDINGS_BENCH_BACKFILL", 100'000);
  double start = 0, peak = 0;
  for (auto _ : state) {
    FreshStore fresh;
    GeneratorBackend backend(0);
    backend.available = history;
    tidings::sync::SyncConfig config;  // defaults: pages of 100, 2 older pages per pull
    config.end_to_end_default = false;
    // TIDINGS_BENCH_OLDEST_FIRST=1: the same history pulled from the beginning.
    config.newest_first = EnvOr("TIDINGS_BENCH_OLDEST_FIRST", 0) == 0;
    int64_t now = static_cast<int64_t>(kT0);
    tidings::sync::Reconciler rec(
        &fresh.store->sync_log(), &backend, config, [&] { return ++now; }, [] { return 1; });
    start = peak = RssMB();
    do {
      if (!rec.Pull("long").ok()) std::abort();
      peak = std::max(peak, RssMB());
    } while (rec.HasMore("long"));
    if (fresh.store->GetConversation("long")->message_count != history) std::abort();
  }
  state.counters["rss_start_MB"] = start;
  state.counters["rss_peak_MB"] = peak;
  state.counters["messages"] = static_cast<double>(history);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * history));
}
BENCHMARK(BM_Backfill_Memory)
    ->Iterations(1)
    ->Repetitions(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
