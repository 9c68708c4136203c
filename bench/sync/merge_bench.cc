// Merge throughput: pages of remote messages merged, with their cursor, into a
// store that already holds N messages (TIDINGS_BENCH_MESSAGES, default 1M),
// vs raw RocksDB writing the same data (message + index + cursor) without
// encryption, in one run. Peak RSS while merging 100k messages is reported.
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <sys/resource.h>

#include "../engine/bench_util.h"
#include "engine/store.h"

namespace {

using tidings::engine::Operation;
using tidings::engine::OpKind;
using tidings::engine::Store;

tidings::crypto::KeySource Key() {
  uint8_t k[32] = {5};
  return tidings::crypto::KeySource::Raw(tidings::crypto::SecretKey::FromBytes(k).value());
}

Operation Remote(uint64_t i) {
  Operation op;
  op.kind = OpKind::kSend;
  op.op_id = op.message_id = "remote-" + std::to_string(i);
  op.author = "peer";
  op.at = {(uint64_t{1'700'000'000'000} + i) << 16, 77};
  op.body = bench::Body(i);
  op.server_time_ms = 1'700'000'000'000 + i;
  return op;
}

struct Fixture {
  bench::TempDir dir;
  std::unique_ptr<Store> store;
  uint64_t next = 0;
};

Fixture& Shared() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    tidings::engine::StoreOptions o;
    o.create_if_missing = true;
    o.user_id = "bench";
    o.durability = tidings::engine::Durability::kRelaxed;
    fx->store = std::move(Store::Open(fx->dir.path(), Key(), o).value());
    std::vector<tidings::engine::SendRequest> reqs(1000);
    for (size_t i = 0; i < bench::FixtureMessages(); i += reqs.size()) {
      for (size_t k = 0; k < reqs.size(); ++k) {
        reqs[k].conversation_id = bench::ConvId(i + k);
        reqs[k].body = bench::Body(i + k);
      }
      if (!fx->store->SendMany(reqs).ok()) std::abort();
    }
    return fx;
  }();
  return *f;
}

void BM_Merge_Tidings(benchmark::State& state) {
  Fixture& f = Shared();
  const size_t page = static_cast<size_t>(state.range(0));
  std::vector<Operation> ops(page);
  for (auto _ : state) {
    for (auto& op : ops) op = Remote(f.next++);
    if (!f.store->Merge("bench", "merged", ops, std::to_string(f.next)).ok()) std::abort();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * page));
}
BENCHMARK(BM_Merge_Tidings)->Arg(50)->Arg(100)->UseRealTime();

void BM_Merge_Raw(benchmark::State& state) {
  static bench::TempDir dir;
  static rocksdb::DB* db = [] {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* d = nullptr;
    if (!rocksdb::DB::Open(o, dir.path(), &d).ok()) std::abort();
    for (size_t i = 0; i < bench::FixtureMessages(); i += 1000) {
      rocksdb::WriteBatch wb;
      for (size_t k = 0; k < 1000; ++k)
        wb.Put("m" + std::to_string(i + k), bench::Body(i + k)).PermitUncheckedError();
      if (!d->Write(rocksdb::WriteOptions(), &wb).ok()) std::abort();
    }
    return d;
  }();
  static uint64_t next = 0;
  const size_t page = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    rocksdb::WriteBatch wb;
    for (size_t k = 0; k < page; ++k) {
      Operation op = Remote(next++);
      std::string key = "merged" + op.at.Encode();
      wb.Put(key, op.body).PermitUncheckedError();
      wb.Put("i" + op.message_id, key).PermitUncheckedError();
    }
    wb.Put("cursor", std::to_string(next)).PermitUncheckedError();
    if (!db->Write(rocksdb::WriteOptions(), &wb).ok()) std::abort();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * page));
}
BENCHMARK(BM_Merge_Raw)->Arg(50)->Arg(100)->UseRealTime();

// 100k messages merged in pages of 100: peak RSS before and after.
void BM_Merge100kPeakMemory(benchmark::State& state) {
  Fixture& f = Shared();
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  for (auto _ : state) {
    std::vector<Operation> ops(100);
    for (int p = 0; p < 1000; ++p) {
      for (auto& op : ops) op = Remote(f.next++);
      if (!f.store->Merge("bench", "big", ops, std::to_string(f.next)).ok()) std::abort();
    }
  }
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  state.counters["peak_rss_MB_before"] = static_cast<double>(before.ru_maxrss) / 1024;
  state.counters["peak_rss_MB_after"] = static_cast<double>(after.ru_maxrss) / 1024;
}
BENCHMARK(BM_Merge100kPeakMemory)->Iterations(1)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
