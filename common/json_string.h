// JSON string literals: the one escaper every layer uses (the AWS request
// bodies, the emulator's responses, the CLI's --json output, the daemon's
// JSON log lines).
#pragma once

#include <string>
#include <string_view>

namespace tidings {

// Appends `s` to `out` as a JSON string literal: quotes, backslash and the
// control characters below 0x20 are escaped (\n, \r, \t by name, the rest as
// \u00XX); every other byte is copied as is. The result is valid JSON when
// `s` is valid UTF-8; a caller that may hold other bytes encodes them first
// (for example as base64).
void AppendJsonString(std::string* out, std::string_view s);

// `s` as a JSON string literal (AppendJsonString into a new string).
std::string JsonString(std::string_view s);

}  // namespace tidings
