// What the benchmarks of the Tidings store share: the fixed raw key of their
// stores, and a store opened as store_bench.cc opens it, with the
// benchmarks' environment knobs.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "engine/store.h"

namespace bench {

// A raw key (no key derivation): a fixture built by one run is opened by it
// only, so any fixed bytes do.
inline tidings::crypto::KeySource StoreKey() {
  uint8_t k[32] = {9};
  return tidings::crypto::KeySource::Raw(
      std::move(tidings::crypto::SecretKey::FromBytes(k).value()));
}

// Creates or opens the store at `path`; aborts if it cannot.
// TIDINGS_BENCH_SEARCH_INDEX=0: the store without its full-text index.
// TIDINGS_BENCH_FOLD_EVERY: messages the index's tail holds before a fold.
// TIDINGS_BENCH_CACHE_MB: the block cache.
// TIDINGS_BENCH_WRITE_BUFFER_MB: the memtables' budget (0: RocksDB's defaults).
inline std::unique_ptr<tidings::engine::Store> OpenStore(const std::string& path,
                                                         tidings::engine::Durability d) {
  tidings::engine::StoreOptions o;
  o.create_if_missing = true;
  o.user_id = "bench";
  o.durability = d;
  if (const char* idx = std::getenv("TIDINGS_BENCH_SEARCH_INDEX")) o.search_index = idx[0] != '0';
  if (const char* n = std::getenv("TIDINGS_BENCH_FOLD_EVERY"))
    o.search_fold_every = std::strtoull(n, nullptr, 10);
  if (const char* mb = std::getenv("TIDINGS_BENCH_CACHE_MB"))
    o.block_cache_bytes = std::strtoull(mb, nullptr, 10) << 20;
  if (const char* mb = std::getenv("TIDINGS_BENCH_WRITE_BUFFER_MB"))
    o.write_buffer_bytes = std::strtoull(mb, nullptr, 10) << 20;
  auto s = tidings::engine::Store::Open(path, StoreKey(), o);
  if (!s.ok()) std::abort();
  return std::move(*s);
}

}  // namespace bench
