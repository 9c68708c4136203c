#include "cli/output.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace tidings::cli {

std::string JsonObject(const std::map<std::string, std::string>& map) {
  std::string out = "{";
  for (const auto& [k, v] : map) {
    if (out.size() > 1) out += ',';
    out += JsonString(k) + ":" + JsonString(v);
  }
  return out + "}";
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
