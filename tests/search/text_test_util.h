// Helpers shared by the search text tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "search/analyzer.h"

namespace tidings::search::testing {

inline std::vector<Token> Tokens(const Analyzer& analyzer, std::string_view text) {
  std::vector<Token> tokens;
  analyzer.Analyze(text, &tokens);
  return tokens;
}

inline std::vector<std::string> Terms(const Analyzer& analyzer, std::string_view text) {
  std::vector<std::string> terms;
  for (const Token& token : Tokens(analyzer, text)) terms.push_back(token.term);
  return terms;
}

// Independent of the library's decoder: strict UTF-8 (no overlongs,
// surrogates or values above U+10FFFF).
inline bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace tidings::search::testing
