// Small helpers for the CLI's human and JSON output.
#pragma once

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <map>
#include <string>
#include <string_view>

#include "common/json_string.h"

namespace tidings::cli {

// JSON string literal (common/json_string.h): valid UTF-8 passes through; a
// byte that is not UTF-8 becomes U+FFFD, so the output is always valid JSON
// (bodies that must survive byte for byte use Base64).
inline std::string JsonString(std::string_view s) { return tidings::JsonText(s); }

// {"k":"v",...} with JsonString keys and values.
std::string JsonObject(const std::map<std::string, std::string>& map);

// True if `s` is entirely valid UTF-8 (no overlong forms, no surrogates).
inline bool IsUtf8(std::string_view s) { return tidings::IsValidUtf8(s); }

// Standard Base64 with padding.
std::string Base64(std::string_view bytes);

// True if a body of this content type is text, and so must be UTF-8:
// text/*, JSON and XML types ("" counts as the default, text/plain).
bool IsTextType(std::string_view content_type);

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
