#include "cli/output.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace tidings::cli {
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

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  while (!s.empty()) {
    size_t n = Utf8SequenceLength(s);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD for a byte that is not UTF-8
      s.remove_prefix(1);
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(s[0]);
    if (n > 1) {
      out.append(s.data(), n);
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
    s.remove_prefix(n);
  }
  out += "\"";
  return out;
}

std::string JsonObject(const std::map<std::string, std::string>& map) {
  std::string out = "{";
  for (const auto& [k, v] : map) {
    if (out.size() > 1) out += ',';
    out += JsonString(k) + ":" + JsonString(v);
  }
  return out + "}";
}

bool IsUtf8(std::string_view s) {
  while (!s.empty()) {
    size_t n = Utf8SequenceLength(s);
    if (n == 0) return false;
    s.remove_prefix(n);
  }
  return true;
}

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t left = std::min<size_t>(3, bytes.size() - i);
    uint32_t group = 0;
    for (size_t j = 0; j < 3; ++j) {
      group = group << 8 | (j < left ? static_cast<unsigned char>(bytes[i + j]) : 0u);
    }
    for (size_t j = 0; j < 4; ++j) {
      out += j <= left ? kAlphabet[(group >> (18 - 6 * j)) & 0x3F] : '=';
    }
  }
  return out;
}

bool IsTextType(std::string_view content_type) {
  std::string t;
  for (char c : content_type.substr(0, content_type.find(';'))) {
    if (c != ' ') t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  const auto ends_with = [&](std::string_view suffix) {
    return t.size() >= suffix.size() &&
           t.compare(t.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return t.empty() || t.rfind("text/", 0) == 0 || t == "application/json" ||
         t == "application/xml" || ends_with("+json") || ends_with("+xml");
}

// Drawn only on a terminal, so scripts and logs get clean stderr.
Progress::Progress(const char* label) : label_(label), enabled_(::isatty(2) != 0) {}

Progress::~Progress() {
  if (enabled_ && last_percent_ >= 0) std::fputc('\n', stderr);
}

void Progress::Update(uint64_t done, uint64_t total) {
  if (!enabled_ || total == 0) return;
  int percent = static_cast<int>(std::min<uint64_t>(100, done * 100 / total));
  if (percent == last_percent_) return;
  last_percent_ = percent;
  int filled = percent / 5;
  std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% (%llu)", label_, filled, "####################",
               20 - filled, "", percent, static_cast<unsigned long long>(done));
  std::fflush(stderr);
}

}  // namespace tidings::cli
