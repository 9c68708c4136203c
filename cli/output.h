// Small helpers for the CLI's human and JSON output.
#pragma once

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>

#include "common/json_string.h"

namespace tidings::cli {

// "2026-11-24T14:03:05.123Z"
inline std::string IsoTime(uint64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03uZ", buf, static_cast<unsigned>(unix_ms % 1000));
  return out;
}

// A one-line progress bar on stderr, drawn only when stderr is a terminal.
class Progress {
 public:
  explicit Progress(const char* label);
  ~Progress();
  void Update(uint64_t done, uint64_t total);

 private:
  const char* label_;
  bool enabled_;
  int last_percent_ = -1;
};

}  // namespace tidings::cli
