// Rekeying a large store: rotating the data key (every record re-encrypted
// into a new database directory) and rewrapping (a new key source; no data
// rewritten). The fixture has TIDINGS_BENCH_MESSAGES messages (default 1M)
// over 1,000 conversations, built once per process; each rotation iteration
// rotates the same store again.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>

#include "bench_util.h"
#include "engine/rekey.h"
#include "engine/store.h"
#include "store_util.h"

namespace {

const std::string& Fixture() {
  static bench::TempDir dir;
  static bool built = [] {
    tidings::engine::StoreOptions o;
    o.create_if_missing = true;
    o.user_id = "bench";
    o.durability = tidings::engine::Durability::kRelaxed;
    auto store = tidings::engine::Store::Open(dir.path(), bench::StoreKey(), o);
    if (!store.ok()) std::abort();
    std::vector<tidings::engine::SendRequest> reqs(1000);
    const size_t n = bench::FixtureMessages();
    for (size_t i = 0; i < n; i += reqs.size()) {
      for (size_t k = 0; k < reqs.size(); ++k) {
        reqs[k].conversation_id = bench::ConvId(i + k);
        reqs[k].body = bench::Body(i + k);
      }
      if (!(*store)->SendMany(reqs).ok()) std::abort();
    }
    if (!(*store)->Flush().ok() || !(*store)->Compact().ok()) std::abort();
    store->reset();
    ::sync();
    return true;
  }();
  (void)built;
  return dir.path();
}

void BM_Rekey_RotateDataKey(benchmark::State& state) {
  const std::string& path = Fixture();
  uint64_t records = 0;
  for (auto _ : state) {
    tidings::engine::RekeyOptions o;
    o.rotate_data_key = true;
    auto r = tidings::engine::Rekey(path, bench::StoreKey(), std::move(o));
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      return;
    }
    records = r->records;
  }
  state.counters["messages"] = static_cast<double>(bench::FixtureMessages());
  state.counters["records"] = static_cast<double>(records);
  state.counters["records_per_s"] = benchmark::Counter(
      static_cast<double>(records), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["disk_MiB"] = static_cast<double>(bench::DirBytes(path)) / (1 << 20);
}
BENCHMARK(BM_Rekey_RotateDataKey)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

// A new raw key and back: open, unwrap, rewrap, header rename. No Argon2id.
void BM_Rekey_Rewrap(benchmark::State& state) {
  const std::string& path = Fixture();
  for (auto _ : state) {
    tidings::engine::RekeyOptions o;
    o.new_key = bench::StoreKey();
    if (!tidings::engine::Rekey(path, bench::StoreKey(), std::move(o)).ok()) std::abort();
  }
}
BENCHMARK(BM_Rekey_Rewrap)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
