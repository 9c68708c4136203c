#include "engine/open_retry.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <string_view>
#include <thread>

namespace tidings::engine {
namespace {

namespace fs = std::filesystem;

bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

// Whether any file of `db_path` RocksDB's message names is missing. Tables
// are named NNNNNN.sst (RocksDB reports the legacy NNNNNN.ldb after trying
// both); logs NNNNNN.log; MANIFEST-NNNNNN; OPTIONS-NNNNNN.
bool AnyNamedFileMissing(std::string_view msg, const fs::path& db) {
  bool missing = false;
  for (std::string_view suffix : {".sst", ".ldb", ".log"}) {
    for (size_t at = msg.find(suffix); at != std::string_view::npos;
         at = msg.find(suffix, at + 1)) {
      size_t start = at;
      while (start > 0 && IsDigit(msg[start - 1])) --start;
      if (start == at) continue;
      const std::string number(msg.substr(start, at - start));
      std::error_code ec;
      if (suffix == ".log") {
        missing = missing || !fs::exists(db / (number + ".log"), ec);
      } else {
        missing = missing || (!fs::exists(db / (number + ".sst"), ec) &&
                              !fs::exists(db / (number + ".ldb"), ec));
      }
    }
  }
  for (std::string_view prefix : {"MANIFEST-", "OPTIONS-"}) {
    for (size_t at = msg.find(prefix); at != std::string_view::npos;
         at = msg.find(prefix, at + 1)) {
      size_t end = at + prefix.size();
      while (end < msg.size() && IsDigit(msg[end])) ++end;
      if (end == at + prefix.size()) continue;
      std::error_code ec;
      missing = missing || !fs::exists(db / std::string(msg.substr(at, end - at)), ec);
    }
  }
  return missing;
}

}  // namespace

bool NamesVanishedFile(const rocksdb::Status& s, const std::string& db_path) {
  if (s.ok() || !(s.IsCorruption() || s.IsIOError() || s.IsNotFound() || s.IsPathNotFound())) {
    return false;
  }
  return AnyNamedFileMissing(s.ToString(), fs::path(db_path));
}

rocksdb::Status OpenRetryingVanishedFiles(const std::function<rocksdb::Status()>& open,
                                          const std::string& db_path, int attempts) {
  rocksdb::Status s;
  auto backoff = std::chrono::milliseconds(5);
  for (int i = 0; i < attempts; ++i) {
    if (i > 0) {
      std::this_thread::sleep_for(backoff);
      backoff *= 2;
    }
    s = open();
    if (!NamesVanishedFile(s, db_path)) return s;
    backoff = std::min(backoff, std::chrono::milliseconds(320));
  }
  // Every attempt raced the writer: still no sign of damage.
  return rocksdb::Status::TryAgain(
      "the store's files changed under every attempt to open it (another process is "
      "compacting it); try again");
}

}  // namespace tidings::engine
