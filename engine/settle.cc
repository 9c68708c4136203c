#include "engine/settle.h"

#include <map>
#include <string>
#include <thread>

namespace tidings::engine {
namespace {

bool CompactingOrFlushing(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
  uint64_t n = 0;
  for (const char* p : {"rocksdb.num-running-compactions", "rocksdb.num-running-flushes"}) {
    if (db->GetIntProperty(p, &n) && n != 0) return true;
  }
  for (auto* cf : cfs) {
    for (const char* p : {"rocksdb.compaction-pending", "rocksdb.mem-table-flush-pending"}) {
      if (db->GetIntProperty(cf, p, &n) && n != 0) return true;
    }
  }
  return false;
}

// The key range of a family's small tables.
struct SmallTables {
  size_t count = 0;
  std::string smallest, largest;
};

void MergeSmallTables(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
  std::vector<rocksdb::LiveFileMetaData> live;
  db->GetLiveFilesMetaData(&live);
  std::map<std::string, SmallTables> by_family;
  for (const auto& f : live) {
    if (f.size >= kSmallTableBytes) continue;
    SmallTables& s = by_family[f.column_family_name];
    if (s.count == 0 || f.smallestkey < s.smallest) s.smallest = f.smallestkey;
    if (s.count == 0 || f.largestkey > s.largest) s.largest = f.largestkey;
    s.count++;
  }
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  options.allow_write_stall = true;
  for (auto* cf : cfs) {
    auto s = by_family.find(cf->GetName());
    if (s == by_family.end() || s->second.count <= kMaxSmallTables) continue;
    rocksdb::Slice begin(s->second.smallest), end(s->second.largest);
    db->CompactRange(options, cf, &begin, &end).PermitUncheckedError();
  }
}

}  // namespace

bool SettleBeforeClose(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& cfs,
                       std::chrono::milliseconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  MergeSmallTables(db, cfs);
  while (CompactingOrFlushing(db, cfs)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace tidings::engine
