// Snippet: the piece of a hit's text a result list shows, with the matched
// words marked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "search/analyzer.h"

namespace tidings::search {

struct Snippet {
  std::string text;  // a piece of the original text (valid UTF-8), with "…"
                     // where it was cut at either end
  // Byte ranges [begin, end) of `text` that matched, in order, disjoint.
  std::vector<std::pair<uint32_t, uint32_t>> marks;
};

// The window of about `max_words` words of `text` holding the most matched
// tokens (`matched`: indexes into `tokens`, from MatchTokens), cut on word
// boundaries. A text of at most max_words words is shown whole.
Snippet MakeSnippet(std::string_view text, const std::vector<Token>& tokens,
                    const std::vector<size_t>& matched, size_t max_words = 16);

}  // namespace tidings::search
