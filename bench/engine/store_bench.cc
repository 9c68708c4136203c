// Tidings vs raw RocksDB, side by side in one run.
//
// Raw RocksDB baseline ("raw"): the same logical writes without encryption
// and without sealing - per message a 32-byte message key (16-byte
// conversation hash + 16-byte order key) with the 300-byte body, a by-id
// index entry and an outbox entry - in a WriteBatch, same WriteOptions.
// "raw_1put" writes only the message key (the floor). The newest page is read
// from raw twice: with that layout (a reverse scan, as Tidings reads it) and
// with the order key complemented (newest first: a forward scan).
//
// TIDINGS_BENCH_CACHE_MB sets the block cache of both stores (default: each
// library's own: Tidings' 32 MiB, RocksDB 7.8's 8 MiB), to compare page reads
// with the same cache.
#include <benchmark/benchmark.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>

#include "bench_util.h"
#include "engine/store.h"
#include "store_util.h"

namespace {

using tidings::engine::Store;

std::unique_ptr<rocksdb::DB> OpenRaw(const std::string& path) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.IncreaseParallelism(2);
  if (const char* mb = std::getenv("TIDINGS_BENCH_CACHE_MB")) {
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = rocksdb::NewLRUCache(std::strtoull(mb, nullptr, 10) << 20);
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  }
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::Open(o, path, &db).ok()) std::abort();
  return std::unique_ptr<rocksdb::DB>(db);
}

// newest_first: the order key's bytes complemented, so that a conversation's
// newest message is its first key and a page is a forward scan.
std::string RawKey(uint64_t i, bool newest_first = false) {
  std::string k(32, '\0');
  uint64_t conv = i % bench::kConversations;
  for (int b = 0; b < 8; ++b) k[static_cast<size_t>(b)] = static_cast<char>(conv >> (56 - 8 * b));
  for (int b = 0; b < 8; ++b) k[16 + static_cast<size_t>(b)] = static_cast<char>(i >> (56 - 8 * b));
  if (newest_first) {
    for (size_t b = 16; b < 32; ++b) k[b] = static_cast<char>(~k[b]);
  }
  return k;
}

void AddRaw(rocksdb::WriteBatch* batch, uint64_t i, bool full, bool newest_first = false) {
  std::string key = RawKey(i, newest_first);
  const std::string body = bench::Body(i);  // made once, like Tidings' request
  batch->Put(key, body).PermitUncheckedError();
  if (!full) return;
  batch->Put("i" + key.substr(16), key).PermitUncheckedError();
  batch->Put("o" + key.substr(16), body).PermitUncheckedError();
}

void BM_Append_Tidings(benchmark::State& state) {
  bench::TempDir dir;
  auto store = bench::OpenStore(dir.path(), tidings::engine::Durability::kRelaxed);
  const size_t batch = static_cast<size_t>(state.range(0));
  uint64_t i = 0;
  std::vector<tidings::engine::SendRequest> reqs(batch);
  for (auto _ : state) {
    for (auto& r : reqs) {
      r.conversation_id = bench::ConvId(i);
      r.body = bench::Body(i++);
    }
    if (batch == 1) {
      if (!store->Send(reqs[0]).ok()) std::abort();
    } else if (!store->SendMany(reqs).ok()) {
      std::abort();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(i));
}
BENCHMARK(BM_Append_Tidings)->Arg(1)->Arg(100)->UseRealTime();

void BM_Append_Raw(benchmark::State& state) {
  bench::TempDir dir;
  auto db = OpenRaw(dir.path());
  const size_t batch = static_cast<size_t>(state.range(0));
  const bool full = state.range(1) != 0;
  uint64_t i = 0;
  for (auto _ : state) {
    rocksdb::WriteBatch wb;
    for (size_t k = 0; k < batch; ++k) AddRaw(&wb, i++, full);
    if (!db->Write(rocksdb::WriteOptions(), &wb).ok()) std::abort();
  }
  state.SetItemsProcessed(static_cast<int64_t>(i));
  state.SetLabel(full ? "raw (message+index+outbox)" : "raw_1put");
}
BENCHMARK(BM_Append_Raw)->Args({1, 1})->Args({100, 1})->Args({1, 0})->Args({100, 0})->UseRealTime();

// Durable appends: every call returns after fsync.
void BM_DurableAppend_Tidings(benchmark::State& state) {
  static std::unique_ptr<bench::TempDir> dir;
  static std::unique_ptr<Store> store;
  static std::atomic<uint64_t> counter{0};
  if (state.thread_index() == 0) {
    dir = std::make_unique<bench::TempDir>();
    store = bench::OpenStore(dir->path(), tidings::engine::Durability::kSync);
  }
  // Google Benchmark synchronizes threads before the timed loop.
  for (auto _ : state) {
    uint64_t i = counter++;
    if (!store->Send({.conversation_id = bench::ConvId(i), .body = bench::Body(i)}).ok())
      std::abort();
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    store.reset();
    dir.reset();
  }
}
BENCHMARK(BM_DurableAppend_Tidings)->Threads(1)->Threads(8)->UseRealTime()->MinTime(2.0);

// Raw RocksDB's own durable writers: each thread writes its batch with
// sync=true, and RocksDB's write group shares one WAL sync among the
// writers that queued behind the leader - the baseline for Tidings' 8
// writers (its group commit is by hand, engine/txn.cc).
void BM_DurableAppend_Raw(benchmark::State& state) {
  static std::unique_ptr<bench::TempDir> dir;
  static std::unique_ptr<rocksdb::DB> db;
  static std::atomic<uint64_t> counter{0};
  if (state.thread_index() == 0) {
    dir = std::make_unique<bench::TempDir>();
    db = OpenRaw(dir->path());
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  for (auto _ : state) {
    rocksdb::WriteBatch wb;
    AddRaw(&wb, counter++, true);
    if (!db->Write(wo, &wb).ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    db.reset();
    dir.reset();
  }
}
BENCHMARK(BM_DurableAppend_Raw)->Threads(1)->Threads(8)->UseRealTime()->MinTime(2.0);

// Newest-50 page in a store of N messages over 1,000 conversations. Each
// fixture is built once per process, so with --benchmark_repetitions and
// --benchmark_enable_random_interleaving (scripts/bench.sh) the Tidings and
// raw repetitions alternate and a noisy neighbour hits both alike.
const std::string& TidingsPageFixture() {
  static bench::TempDir dir;
  static bool built = [] {
    auto store = bench::OpenStore(dir.path(), tidings::engine::Durability::kRelaxed);
    std::vector<tidings::engine::SendRequest> reqs(1000);
    const size_t n = bench::FixtureMessages();
    for (size_t i = 0; i < n; i += reqs.size()) {
      for (size_t k = 0; k < reqs.size(); ++k) {
        reqs[k].conversation_id = bench::ConvId(i + k);
        reqs[k].body = bench::Body(i + k);
      }
      if (!store->SendMany(reqs).ok()) std::abort();
    }
    if (!store->Flush().ok() || !store->Compact().ok()) std::abort();
    store.reset();
    ::sync();  // the fixture's write-back must not land in the next timed run
    return true;
  }();
  (void)built;
  return dir.path();
}

const std::string& RawPageFixture(bool newest_first) {
  static bench::TempDir dirs[2];
  static bool built[2] = {};
  const int which = newest_first ? 1 : 0;
  if (!built[which]) {
    built[which] = true;
    auto db = OpenRaw(dirs[which].path());
    const size_t n = bench::FixtureMessages();
    for (size_t i = 0; i < n; i += 1000) {
      rocksdb::WriteBatch wb;
      for (size_t k = 0; k < 1000; ++k) AddRaw(&wb, i + k, true, newest_first);
      if (!db->Write(rocksdb::WriteOptions(), &wb).ok()) std::abort();
    }
    // Tidings keeps its unsynced outbox, so the raw store keeps its too.
    db->Flush(rocksdb::FlushOptions()).PermitUncheckedError();
    db->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr).PermitUncheckedError();
    db.reset();
    ::sync();
  }
  return dirs[which].path();
}

void BM_NewestPage_Tidings(benchmark::State& state) {
  const std::string& path = TidingsPageFixture();
  auto t0 = std::chrono::steady_clock::now();
  auto store = bench::OpenStore(path, tidings::engine::Durability::kRelaxed);
  double open_ms = bench::MillisSince(t0);
  std::vector<double> samples;
  uint64_t q = 0;
  for (auto _ : state) {
    auto s = std::chrono::steady_clock::now();
    auto page = store->Page({.conversation_id = bench::ConvId(q++ * 7919), .limit = 50});
    if (!page.ok() || page->size() != bench::ExpectedPage()) std::abort();
    samples.push_back(bench::MicrosSince(s));
  }
  bench::ReportPageLatency(state, std::move(samples), open_ms, path);
}
BENCHMARK(BM_NewestPage_Tidings)->Iterations(20000)->UseRealTime();

// The same records with the newest-first key layout: a forward scan.
void BM_NewestPage_Raw(benchmark::State& state) {
  const bool newest_first = state.range(0) != 0;
  const std::string& path = RawPageFixture(newest_first);
  auto t0 = std::chrono::steady_clock::now();
  auto db = OpenRaw(path);
  double open_ms = bench::MillisSince(t0);
  std::vector<double> samples;
  uint64_t q = 0;
  for (auto _ : state) {
    auto s = std::chrono::steady_clock::now();
    std::string prefix = RawKey(q++ * 7919).substr(0, 16);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    std::vector<std::string> page;
    if (newest_first) {
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && page.size() < 50;
           it->Next()) {
        page.push_back(it->value().ToString());
      }
    } else {
      for (it->SeekForPrev(prefix + std::string(16, '\xff'));
           it->Valid() && it->key().starts_with(prefix) && page.size() < 50; it->Prev()) {
        page.push_back(it->value().ToString());
      }
    }
    if (page.size() != bench::ExpectedPage()) std::abort();
    samples.push_back(bench::MicrosSince(s));
  }
  bench::ReportPageLatency(state, std::move(samples), open_ms, path);
  state.SetLabel(newest_first ? "newest-first keys, forward scan" : "reverse scan");
}
BENCHMARK(BM_NewestPage_Raw)->Arg(0)->Arg(1)->Iterations(20000)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
