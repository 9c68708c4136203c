// Backup and restore of a store of N messages (TIDINGS_BENCH_MESSAGES,
// default 1M over 1,000 conversations), against copying the store's files
// (what `cp -r` of a closed store costs: the floor for any backup that reads
// every byte). Run with interleaved repetitions (bench/RESULTS.md).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>

#include "bench_util.h"
#include "engine/store.h"
#include "store_util.h"

namespace {

namespace fs = std::filesystem;
using tidings::engine::Store;

tidings::engine::StoreOptions Options() {
  tidings::engine::StoreOptions o;
  o.create_if_missing = true;
  o.user_id = "bench";
  o.durability = tidings::engine::Durability::kRelaxed;
  return o;
}

// The store and one backup of it, built once per process.
struct Fixture {
  bench::TempDir dir;
  std::string store = dir.path() + "/store";
  std::string backup = dir.path() + "/store.tidbak";
  Fixture() {
    auto s = Store::Open(store, bench::StoreKey(), Options());
    if (!s.ok()) std::abort();
    std::vector<tidings::engine::SendRequest> reqs(1000);
    for (size_t i = 0; i < bench::FixtureMessages(); i += reqs.size()) {
      for (size_t k = 0; k < reqs.size(); ++k) {
        reqs[k].conversation_id = bench::ConvId(i + k);
        reqs[k].body = bench::Body(i + k);
      }
      if (!(*s)->SendMany(reqs).ok()) std::abort();
    }
    if (!(*s)->Flush().ok() || !(*s)->Compact().ok() || !(*s)->Backup(backup, nullptr).ok()) {
      std::abort();
    }
    ::sync();
  }
};

Fixture& TheFixture() {
  static Fixture f;
  return f;
}

void Report(benchmark::State& state, const std::string& out) {
  state.counters["messages_per_s"] = benchmark::Counter(
      static_cast<double>(bench::FixtureMessages()) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.counters["MB"] =
      static_cast<double>(fs::is_directory(out) ? bench::DirBytes(out) : fs::file_size(out)) / 1e6;
}

void BM_Backup(benchmark::State& state) {
  Fixture& f = TheFixture();
  auto s = Store::Open(f.store, bench::StoreKey(), tidings::engine::StoreOptions{});
  if (!s.ok()) std::abort();
  const std::string out = f.dir.path() + "/timed.tidbak";
  for (auto _ : state) {
    fs::remove(out);
    if (!(*s)->Backup(out, nullptr).ok()) state.SkipWithError("backup failed");
  }
  Report(state, out);
}
BENCHMARK(BM_Backup)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Restore(benchmark::State& state) {
  Fixture& f = TheFixture();
  const std::string out = f.dir.path() + "/restored";
  for (auto _ : state) {
    fs::remove_all(out);
    if (!Store::Restore(f.backup, out, bench::StoreKey(), nullptr).ok())
      state.SkipWithError("restore failed");
  }
  Report(state, out);
}
BENCHMARK(BM_Restore)->Unit(benchmark::kMillisecond)->UseRealTime();

// The baseline: a copy of the closed store's files.
void BM_CopyFiles(benchmark::State& state) {
  Fixture& f = TheFixture();
  const std::string out = f.dir.path() + "/copy";
  for (auto _ : state) {
    fs::remove_all(out);
    fs::copy(f.store, out, fs::copy_options::recursive);
  }
  Report(state, out);
}
BENCHMARK(BM_CopyFiles)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
