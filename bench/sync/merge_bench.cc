// Merge throughput: pages of 50 and 100 remote messages merged, each page with
// its cursor in one atomic write, into a store that already holds N messages
// (TIDINGS_BENCH_MESSAGES, default 1M, spread over 1000 conversations), vs raw
// RocksDB writing the same data (message + id index per message, the cursor
// per page) without encryption, in one run:
//
//   BM_Merge_Tidings/P     Store::Merge of a page of P (sealing, keyed-hash
//                          keys, merge rules, conversation summary, cursor)
//   BM_Merge_Raw/P         the same keys' worth of plain RocksDB Puts
//   BM_Pull_Reconciler/P   the whole pull path: backend page -> Reconciler ->
//                          Merge + cursor + persisted status
//   BM_Merge100k_Memory    100k messages pulled through the Reconciler in
//                          pages of 100; RSS sampled after every page
//                          (rss_start_MB, rss_peak_MB, rss_growth_MB, and
//                          rss_growth_2nd_half_MB: what the second 50k added)
//
// Both stores use the same durability (WAL written, not fsynced per write).
// TIDINGS_BENCH_IDS=uuid7 gives every message a UUIDv7 id, as Tidings makes
// them, instead of an opaque one (sync_bench_util.h).
// Command: docs/sync.md; figures: bench/RESULTS.md, "Sync merge".
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "engine/store.h"
#include "engine/sync_log.h"
#include "sync/core/reconciler.h"
#include "sync_bench_util.h"

namespace {

using bench::sync::GeneratorBackend;
using bench::sync::Key;
using bench::sync::kT0;
using bench::sync::Remote;
using bench::sync::RssMB;
using tidings::engine::Operation;
using tidings::engine::Store;

// Fixture ids are disjoint from the benchmarks' (RemoteId(i) for i >= N).
uint64_t next_id = 0;

struct Fixture {
  bench::TempDir dir;
  std::unique_ptr<Store> store;
};

// A store of N received messages (no outbox: they came from a backend).
// Destroyed at exit (the store closes, then its directory goes): a 1M
// fixture is 0.4-2 GB, and one left behind per run filled the disk.
Fixture& Shared() {
  static std::unique_ptr<Fixture> f = [] {
    auto fx = std::make_unique<Fixture>();
    tidings::engine::StoreOptions o;
    o.create_if_missing = true;
    o.user_id = "bench";
    o.durability = tidings::engine::Durability::kRelaxed;
    // TIDINGS_BENCH_SEARCH_INDEX=0: the store without its full-text index.
    if (const char* idx = std::getenv("TIDINGS_BENCH_SEARCH_INDEX")) o.search_index = idx[0] != '0';
    fx->store = std::move(Store::Open(fx->dir.path(), Key(), o).value());
    const uint64_t n = bench::FixtureMessages();
    std::vector<Operation> page;
    for (uint64_t c = 0; c < bench::kConversations; ++c) {
      const std::string conv = bench::ConvId(c);
      page.clear();
      for (uint64_t i = c; i < n; i += bench::kConversations) {
        page.push_back(Remote(conv, i));
        if (page.size() == 1000) {
          if (!fx->store->sync_log().Merge("fixture", conv, page, std::to_string(i)).ok())
            std::abort();
          page.clear();
        }
      }
      if (!fx->store->sync_log().Merge("fixture", conv, page, "end").ok()) std::abort();
    }
    next_id = n;
    return fx;
  }();
  return *f;
}

void BM_Merge_Tidings(benchmark::State& state) {
  Fixture& f = Shared();
  const size_t page = static_cast<size_t>(state.range(0));
  std::vector<Operation> ops(page);
  for (auto _ : state) {
    for (auto& op : ops) op = Remote("merged", next_id++);
    if (!f.store->sync_log().Merge("bench", "merged", ops, std::to_string(next_id)).ok())
      std::abort();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * page));
}
BENCHMARK(BM_Merge_Tidings)->Arg(50)->Arg(100)->UseRealTime();

void BM_Merge_Raw(benchmark::State& state) {
  static bench::TempDir dir;
  static uint64_t raw_next = 0;
  static rocksdb::DB* db = [] {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* d = nullptr;
    if (!rocksdb::DB::Open(o, dir.path(), &d).ok()) std::abort();
    const uint64_t n = bench::FixtureMessages();
    for (uint64_t i = 0; i < n; i += 1000) {
      rocksdb::WriteBatch wb;
      for (uint64_t k = i; k < std::min(n, i + 1000); ++k) {
        Operation op = Remote(bench::ConvId(k), k);
        std::string key = op.conversation_id + op.at.Encode();
        wb.Put(key, op.body).PermitUncheckedError();
        wb.Put("i" + op.message_id, key).PermitUncheckedError();
      }
      if (!d->Write(rocksdb::WriteOptions(), &wb).ok()) std::abort();
    }
    raw_next = n;
    return d;
  }();
  const size_t page = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    rocksdb::WriteBatch wb;
    for (size_t k = 0; k < page; ++k) {
      Operation op = Remote("merged", raw_next++);
      std::string key = "merged" + op.at.Encode();
      wb.Put(key, op.body).PermitUncheckedError();
      wb.Put("i" + op.message_id, key).PermitUncheckedError();
    }
    wb.Put("cursor", std::to_string(raw_next)).PermitUncheckedError();
    if (!db->Write(rocksdb::WriteOptions(), &wb).ok()) std::abort();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * page));
}
BENCHMARK(BM_Merge_Raw)->Arg(50)->Arg(100)->UseRealTime();

void BM_Pull_Reconciler(benchmark::State& state) {
  Fixture& f = Shared();
  const size_t page = static_cast<size_t>(state.range(0));
  const std::string conv = "pulled-" + std::to_string(page);
  GeneratorBackend backend(next_id);
  next_id += uint64_t{1} << 32;  // ids of this run stay disjoint
  tidings::sync::SyncConfig config;
  config.pull_page_size = page;
  config.max_pull_pages_per_round = 1;
  int64_t now = static_cast<int64_t>(kT0);
  tidings::sync::Reconciler rec(
      &f.store->sync_log(), &backend, config, [&] { return ++now; }, [] { return 1; });
  for (auto _ : state) {
    backend.available += page;
    if (!rec.Pull(conv).ok()) std::abort();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * page));
}
BENCHMARK(BM_Pull_Reconciler)->Arg(50)->Arg(100)->UseRealTime();

// 100k messages arrive while offline; the reconciler catches up in bounded
// rounds of pages of 100. Memory must stay flat: RSS is sampled per round.
void BM_Merge100k_Memory(benchmark::State& state) {
  Fixture& f = Shared();
  // TIDINGS_BENCH_CATCHUP overrides the 100k (to see where RSS levels off).
  const char* env = std::getenv("TIDINGS_BENCH_CATCHUP");
  const uint64_t kMessages = env ? std::strtoull(env, nullptr, 10) : 100'000;
  double start = 0, peak = 0, peak_first_half = 0;
  for (auto _ : state) {
    GeneratorBackend backend(next_id);
    next_id += kMessages;
    backend.available = kMessages;
    tidings::sync::SyncConfig config;  // defaults: pages of 100, 20 per round
    int64_t now = static_cast<int64_t>(kT0);
    tidings::sync::Reconciler rec(
        &f.store->sync_log(), &backend, config, [&] { return ++now; }, [] { return 1; });
    start = peak = RssMB();
    for (;;) {
      if (!rec.Pull("backlog").ok()) std::abort();
      peak = std::max(peak, RssMB());
      const std::string& cursor = rec.GetStatus("backlog").cursor;
      if (std::stoull(cursor) <= kMessages / 2) peak_first_half = peak;
      if (cursor == std::to_string(kMessages)) break;
    }
  }
  state.counters["rss_start_MB"] = start;
  state.counters["rss_peak_MB"] = peak;
  state.counters["rss_growth_MB"] = peak - start;
  // Flat means the second 50k add (almost) nothing to the first 50k's peak.
  state.counters["rss_growth_2nd_half_MB"] = peak - peak_first_half;
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kMessages));
}
BENCHMARK(BM_Merge100k_Memory)
    ->Iterations(1)
    ->Repetitions(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
