// UTF-8 helpers of the search library (internal): decoding that never fails
// (an invalid byte is reported as such and skipped), encoding, and cuts on
// code point boundaries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tidings::search::internal {

struct Decoded {
  int32_t cp;    // the code point, or -1 for an invalid byte
  uint32_t len;  // bytes consumed: 1 for an invalid byte
};

// Decodes the code point at text[i] (i < text.size()). Strict: overlong
// forms, surrogates and values above U+10FFFF are invalid.
Decoded DecodeAt(std::string_view text, size_t i);

// Writes the UTF-8 form of a valid code point to out[0, 4), returns its
// length.
size_t EncodeUtf8(int32_t cp, char* out);

// Appends the UTF-8 form of a valid code point.
void AppendUtf8(int32_t cp, std::string* out);

// The longest prefix of valid UTF-8 `text` of at most max_bytes bytes that
// ends on a code point boundary.
std::string_view CutUtf8(std::string_view text, size_t max_bytes);

// Appends `text` with every invalid byte replaced by U+FFFD.
void AppendValidUtf8(std::string_view text, std::string* out);

}  // namespace tidings::search::internal
