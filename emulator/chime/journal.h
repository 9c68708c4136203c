// Persistence for --data-dir: an append-only journal of applied mutations,
// one JSON record per line in DIR/journal.jsonl (mode 0600), each written
// and fdatasync'ed before the response. Startup replays it; a torn last line
// (a crash mid-write, never acknowledged) is cut off with a warning.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace chime_local {

class Journal {
 public:
  static tidings::Result<std::unique_ptr<Journal>> Open(
      const std::string& dir, const std::function<tidings::Status(std::string_view)>& replay);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // One record (no newline inside); durable when this returns OK.
  tidings::Status Append(std::string_view record);
  size_t replayed() const { return replayed_; }

 private:
  Journal(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
  size_t replayed_ = 0;
};

}  // namespace chime_local
