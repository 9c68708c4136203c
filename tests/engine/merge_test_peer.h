// Raw gap records for tests: StoreImpl names MergeTestPeer a friend so that a
// test can write a record that decodes as nothing the store writes (merge,
// verify and the reconciler's restart of a fill are tested with them).
#pragma once

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <string>
#include <string_view>

#include "engine/store_impl.h"

namespace tidings::engine {

struct MergeTestPeer {
  // Writes `plain` as gap record (backend, conv), sealed as the store seals it.
  static void PutGapRecord(Store& s, std::string_view backend, const std::string& conv,
                           const std::string& plain) {
    auto& impl = dynamic_cast<StoreImpl&>(s);
    const std::string key = impl.GapKey(backend, conv);
    std::string sealed;
    impl.sealer_->SealTo(impl.Ad(kCursors, key), plain, &sealed);
    ASSERT_TRUE(impl.db_->Put(rocksdb::WriteOptions(), impl.cfs_[kCursors], key, sealed).ok());
  }
};

}  // namespace tidings::engine
