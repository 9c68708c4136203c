// RocksDB reports some corruption only in its info log. A table whose
// properties block fails its checksum is opened anyway, with a warning, and
// reads through it may then miss records while returning OK (RocksDB 7.8;
// 8.8's changelog fixes a relative). A compaction that meets a corrupt block
// fails in the background, where no read hears of it.
//
// A CorruptionWatch turns those reports into a sticky DataLoss that every
// read checks after it ran (StoreImpl::ReadDone) and an open checks before it
// succeeds. Its logger keeps no text: RocksDB's log lines were seen to hold
// user keys in hex, so a line is formatted on the stack, classified and
// wiped, and only the file it names (if any) is remembered.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/listener.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tidings::engine {

class CorruptionWatch {
 public:
  // Ok until a corruption was reported; then DataLoss naming `where` it was
  // first seen, saying what to do. Any thread.
  Status status() const;
  // Records a corruption; the first report is the one status() names.
  void Report(std::string_view where);
  // Forgets what was reported: before each attempt to open the database,
  // which checks every table again (a file that vanished in a race with the
  // writer's cleanup is no corruption).
  void Reset();

  // Whether an info-log line at WARN or above reports a corruption (a bad
  // checksum, an unreadable properties or meta block).
  static bool IsCorruptionLine(std::string_view line);

  // A logger for DBOptions::info_log that reports corruption lines here and
  // drops every line. The watch must outlive the DB.
  std::shared_ptr<rocksdb::Logger> NewLogger();
  // A listener for DBOptions::listeners that reports background errors that
  // are corruptions (a flush or compaction that read a corrupt block).
  std::shared_ptr<rocksdb::EventListener> NewListener();

 private:
  std::atomic<bool> tripped_{false};  // read without mu_ on every read
  mutable std::mutex mu_;
  std::string where_;  // REQUIRES: mu_
};

}  // namespace tidings::engine
