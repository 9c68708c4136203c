#include "engine/corruption_watch.h"

#include <algorithm>
#include <cctype>
#include <cstdarg>
#include <cstdio>

#include "crypto/secret_key.h"

namespace tidings::engine {
namespace {

// The file a log line names ("/000123.sst"), or "".
std::string FileNamed(std::string_view line) {
  for (std::string_view ext : {".sst", ".log", "MANIFEST-"}) {
    size_t at = line.find(ext);
    if (at == std::string_view::npos) continue;
    if (ext == "MANIFEST-") return "the MANIFEST";
    size_t start = at;
    while (start > 0 && std::isdigit(static_cast<unsigned char>(line[start - 1]))) --start;
    if (start < at) return std::string(line.substr(start, at + ext.size() - start));
  }
  return "";
}

class WatchingLogger final : public rocksdb::Logger {
 public:
  explicit WatchingLogger(CorruptionWatch* watch)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), watch_(watch) {}
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}  // below WARN, and headers: dropped
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < rocksdb::InfoLogLevel::WARN_LEVEL) return;
    std::string buffer(1024, '\0');  // wiped whole: no shrinking, which would leave text
    int n = std::vsnprintf(buffer.data(), buffer.size(), format, ap);
    std::string_view line(buffer.data(),
                          n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), buffer.size() - 1));
    if (CorruptionWatch::IsCorruptionLine(line)) watch_->Report(FileNamed(line));
    crypto::Wipe(&buffer);
  }

 private:
  CorruptionWatch* const watch_;
};

class WatchingListener final : public rocksdb::EventListener {
 public:
  explicit WatchingListener(CorruptionWatch* watch) : watch_(watch) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* error) override {
    if (error != nullptr && error->IsCorruption()) watch_->Report("a background compaction");
  }

 private:
  CorruptionWatch* const watch_;
};

}  // namespace

Status CorruptionWatch::status() const {
  if (!tripped_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  return DataLoss("the store's files are corrupt or were tampered with (RocksDB reported it" +
                  (where_.empty() ? std::string() : " in " + where_) +
                  "); run `tidings verify` and restore from a backup");
}

void CorruptionWatch::Report(std::string_view where) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tripped_.load()) return;
  where_ = std::string(where);
  tripped_.store(true, std::memory_order_release);
}

void CorruptionWatch::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  tripped_.store(false);
  where_.clear();
}

bool CorruptionWatch::IsCorruptionLine(std::string_view line) {
  std::string lower(line);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  bool found = false;
  for (std::string_view word : {"corrupt", "checksum mismatch", "properties block", "meta block",
                                "metaindex", "bad magic"}) {
    found = found || lower.find(word) != std::string::npos;
  }
  // A torn WAL tail the recovery mode tolerates is logged "(ignoring error)
  // ... dropping N bytes": expected after a crash, and no record is lost.
  found = found && lower.find("(ignoring error)") == std::string::npos;
  crypto::Wipe(&lower);
  return found;
}

std::shared_ptr<rocksdb::Logger> CorruptionWatch::NewLogger() {
  return std::make_shared<WatchingLogger>(this);
}

std::shared_ptr<rocksdb::EventListener> CorruptionWatch::NewListener() {
  return std::make_shared<WatchingListener>(this);
}

}  // namespace tidings::engine
