#include "common/json_string.h"

#include <cstdint>

namespace tidings {
namespace {

// The length of the valid UTF-8 sequence that starts `s`, or 0 if there is
// none (an invalid or truncated sequence, or `s` is empty).
size_t Utf8SequenceLength(std::string_view s) {
  if (s.empty()) return 0;
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t n;
  uint32_t code, min;
  if ((lead & 0xE0) == 0xC0) {
    n = 2, code = lead & 0x1Fu, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    n = 3, code = lead & 0x0Fu, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    n = 4, code = lead & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    code = code << 6 | (byte(i) & 0x3Fu);
  }
  if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s, InvalidUtf8 invalid) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->reserve(out->size() + s.size() + 2);
  out->push_back('"');
  while (!s.empty()) {
    const size_t n = Utf8SequenceLength(s);
    const unsigned char c = static_cast<unsigned char>(s[0]);
    if (n == 0) {  // a byte that is not UTF-8
      if (invalid == InvalidUtf8::kReplace) {
        *out += "\xEF\xBF\xBD";  // U+FFFD
      } else {
        out->push_back(s[0]);
      }
      s.remove_prefix(1);
      continue;
    }
    if (n > 1) {
      out->append(s.data(), n);
    } else if (c == '"') {
      *out += "\\\"";
    } else if (c == '\\') {
      *out += "\\\\";
    } else if (c == '\n') {
      *out += "\\n";
    } else if (c == '\r') {
      *out += "\\r";
    } else if (c == '\t') {
      *out += "\\t";
    } else if (c < 0x20) {
      *out += "\\u00";
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(static_cast<char>(c));
    }
    s.remove_prefix(n);
  }
  out->push_back('"');
}

std::string JsonString(std::string_view s, InvalidUtf8 invalid) {
  std::string out;
  AppendJsonString(&out, s, invalid);
  return out;
}

bool IsValidUtf8(std::string_view s) {
  while (!s.empty()) {
    const size_t n = Utf8SequenceLength(s);
    if (n == 0) return false;
    s.remove_prefix(n);
  }
  return true;
}

}  // namespace tidings
