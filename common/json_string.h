// JSON string literals: the one escaper every layer uses (the AWS request
// bodies, the emulator's responses, the CLI's --json output, the daemon's
// JSON log lines).
#pragma once

#include <string>
#include <string_view>

namespace tidings {

// What the escaper does with a byte that does not start a valid UTF-8
// sequence.
enum class InvalidUtf8 {
  // Copied as is: a request to a server, which refuses it as invalid JSON
  // (a visible failure) rather than storing something other than was sent.
  kCopy,
  // U+FFFD: output for people, scripts and logs is always valid JSON.
  kReplace,
};

// Appends `s` to `out` as a JSON string literal: quotes, backslash and the
// control characters below 0x20 are escaped (\n, \r, \t by name, the rest as
// \u00XX); valid UTF-8 is copied as is; other bytes as `invalid` says. A
// caller whose bytes must survive exactly encodes them first (base64).
void AppendJsonString(std::string* out, std::string_view s,
                      InvalidUtf8 invalid = InvalidUtf8::kCopy);

// `s` as a JSON string literal (AppendJsonString into a new string).
std::string JsonString(std::string_view s, InvalidUtf8 invalid = InvalidUtf8::kCopy);

// JsonString with InvalidUtf8::kReplace: always valid JSON.
inline std::string JsonText(std::string_view s) { return JsonString(s, InvalidUtf8::kReplace); }

// True if `s` is entirely valid UTF-8: no overlong forms, no surrogates,
// nothing above U+10FFFF, no truncated sequence.
bool IsValidUtf8(std::string_view s);

}  // namespace tidings
