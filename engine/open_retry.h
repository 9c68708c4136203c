// A read-only open reads the MANIFEST, then opens the files it names; a
// writer in another process may delete one of them in between (an obsolete
// table after a compaction, an old MANIFEST). RocksDB then fails the open
// with a Corruption or IOError naming the file, which the store reported as
// "corrupt or tampered with". A vanished file is no damaged one: the open is
// tried again on a fresh MANIFEST, and only a failure that names a file that
// is still there is reported as corruption; a race on every attempt is
// UNAVAILABLE ("try again").
#pragma once

#include <rocksdb/status.h>

#include <functional>
#include <string>

namespace tidings::engine {

// Whether `s` names a file of `db_path` (a table, log, MANIFEST or OPTIONS
// file) that does not exist now.
bool NamesVanishedFile(const rocksdb::Status& s, const std::string& db_path);

// Calls `open` until it succeeds, fails without naming a vanished file, or
// `attempts` calls were made, backing off 5, 10, 20 ... 320 ms between them.
// Returns the last status; TryAgain (never Corruption) when every attempt
// met a vanished file.
rocksdb::Status OpenRetryingVanishedFiles(const std::function<rocksdb::Status()>& open,
                                          const std::string& db_path, int attempts);

}  // namespace tidings::engine
