// Cold start (issue 20, item 3): from opening the store to the conversation
// list of 1,000 conversations plus the newest page of one - what an app
// shows first when it starts. Each repetition opens the store anew (the
// process's caches are gone; the operating system's page cache is not: a
// benchmark cannot drop it without privileges) and closes it outside the
// timing. Reported: p50/p99 of the whole start and of its parts, in ms.
// bench/engine/sqlite_cold_start_bench.cc does the same with SQLite and
// SQLCipher on the same fixture shape.
#include <benchmark/benchmark.h>

#include <chrono>
#include <vector>

#include "bench_util.h"
#include "store_util.h"

namespace {

using tidings::engine::Store;

// Sync durability, as a store opens by default.
constexpr auto kDurability = tidings::engine::Durability::kSync;

// FixtureMessages() over kConversations conversations, made once.
const std::string& Fixture() {
  static bench::TempDir dir;
  static const std::string path = [] {
    const std::string p = dir.path() + "/store";
    auto store = bench::OpenStore(p, kDurability);
    std::vector<tidings::engine::SendRequest> batch;
    const size_t n = bench::FixtureMessages();
    for (uint64_t i = 0; i < n; ++i) {
      batch.push_back({.conversation_id = bench::ConvId(i), .body = bench::Body(i)});
      if (batch.size() == 1000 || i + 1 == n) {
        if (!store->SendMany(batch).ok()) std::abort();
        batch.clear();
      }
    }
    if (!store->Compact().ok()) std::abort();
    return p;
  }();
  return path;
}

void BM_ColdStart_Tidings(benchmark::State& state) {
  const std::string& path = Fixture();
  bench::ColdStartTimes times;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto store = bench::OpenStore(path, kDurability);
    const double opened = bench::MillisSince(t0);
    auto convs = store->Conversations(bench::kConversations);
    if (!convs.ok() || convs->size() != bench::kConversations) std::abort();
    const double listed = bench::MillisSince(t0);
    auto newest = store->Page({.conversation_id = convs->front().id});
    if (!newest.ok() || newest->size() != bench::ExpectedPage()) std::abort();
    const double shown = bench::MillisSince(t0);
    times.Add(opened, listed, shown);
    state.PauseTiming();
    store.reset();
    state.ResumeTiming();
  }
  times.Report(state);
}
BENCHMARK(BM_ColdStart_Tidings)->Unit(benchmark::kMillisecond)->Iterations(20)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
