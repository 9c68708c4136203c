// Before a writer closes the database: merge the small tables short runs
// leave, and give RocksDB's own compactions time to finish. A one-shot writer
// (`tidings send`) added ~3 tables per run (211 after 70 sends): the WAL
// replayed at each open became level-0 tables, RocksDB moved them down
// unmerged (their keys do not overlap: a trivial move), and a close abandoned
// compactions not yet started. RocksDB 7.8 has no WaitForCompact; this polls
// its properties instead.
//
// The close does not flush: the next open turns the WAL into tables anyway,
// and a flush at every close made each close ~60 ms slower (5 families, each
// its own table and MANIFEST write) for every store, busy or not.
#pragma once

#include <rocksdb/db.h>

#include <chrono>
#include <vector>

namespace tidings::engine {

// A family with more tables than this under kSmallTableBytes has them merged
// at close.
inline constexpr size_t kMaxSmallTables = 6;
inline constexpr uint64_t kSmallTableBytes = 4 << 20;

// Merges, in each family of `cfs` with more than kMaxSmallTables small
// tables, the key range they span (a one-shot writer's keys are new, so the
// range is mostly the newest messages and ids); then waits while any flush
// or compaction is pending or running, for at most `budget`. Best effort:
// errors are left to the next open and read (a failed compaction is
// reported there, see CorruptionWatch). Returns whether RocksDB settled
// within the budget.
bool SettleBeforeClose(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& cfs,
                       std::chrono::milliseconds budget);

}  // namespace tidings::engine
