#include "search/snippet.h"

#include <algorithm>

#include "search/utf8.h"

namespace tidings::search {
namespace {

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // …

using Range = std::pair<uint32_t, uint32_t>;

// The tokens [first, first + count) to show: the window of `count` tokens
// holding the most matches (the first such), moved so that its matches sit
// in its middle.
size_t ChooseWindow(const std::vector<bool>& is_match, size_t count) {
  const size_t n = is_match.size();
  size_t best = 0;
  size_t best_hits = 0;
  size_t hits = 0;
  for (size_t i = 0; i < n; ++i) {
    hits += is_match[i];
    if (i >= count) hits -= is_match[i - count];
    if (i + 1 >= count && hits > best_hits) best_hits = hits, best = i + 1 - count;
  }
  size_t first_hit = best + count;
  size_t last_hit = best;
  for (size_t i = best; i < best + count; ++i) {
    if (!is_match[i]) continue;
    first_hit = std::min(first_hit, i);
    last_hit = i;
  }
  if (first_hit > last_hit) return best;
  const size_t slack = count - (last_hit - first_hit + 1);
  const size_t centred = first_hit > slack / 2 ? first_hit - slack / 2 : 0;
  return std::min(centred, n - count);
}

// The matched tokens' byte ranges inside [lo, hi), in order, overlapping or
// touching ranges (CJK bigrams, "400mg") merged.
std::vector<Range> MatchedRanges(const std::vector<Token>& tokens,
                                 const std::vector<bool>& is_match, size_t first, size_t last,
                                 uint32_t lo, uint32_t hi) {
  std::vector<Range> ranges;
  for (size_t i = first; i < last; ++i) {
    if (!is_match[i]) continue;
    const uint32_t begin = std::max(tokens[i].begin, lo);
    const uint32_t end = std::min(tokens[i].end, hi);
    if (begin >= end) continue;
    if (!ranges.empty() && begin <= ranges.back().second) {
      ranges.back().second = std::max(ranges.back().second, end);
    } else {
      ranges.emplace_back(begin, end);
    }
  }
  return ranges;
}

}  // namespace

Snippet MakeSnippet(std::string_view text, const std::vector<Token>& tokens,
                    const std::vector<size_t>& matched, size_t max_words) {
  max_words = std::max<size_t>(max_words, 1);
  const size_t n = tokens.size();
  std::vector<bool> is_match(n, false);
  for (const size_t i : matched) {
    if (i < n) is_match[i] = true;
  }
  size_t first = 0;
  size_t last = n;
  if (n > max_words) {
    first = ChooseWindow(is_match, max_words);
    last = first + max_words;
  }
  // Whole text at an end not cut, else from the first word to the last.
  const auto size = static_cast<uint32_t>(std::min<size_t>(text.size(), UINT32_MAX));
  const uint32_t lo = first == 0 ? 0 : std::min(tokens[first].begin, size);
  const uint32_t hi = last == n ? size : std::clamp(tokens[last - 1].end, lo, size);

  Snippet snippet;
  if (first > 0) snippet.text = kEllipsis;
  uint32_t copied = lo;  // text[lo, copied) is in snippet.text
  for (const Range& range : MatchedRanges(tokens, is_match, first, last, lo, hi)) {
    internal::AppendValidUtf8(text.substr(copied, range.first - copied), &snippet.text);
    const auto begin = static_cast<uint32_t>(snippet.text.size());
    internal::AppendValidUtf8(text.substr(range.first, range.second - range.first), &snippet.text);
    snippet.marks.emplace_back(begin, static_cast<uint32_t>(snippet.text.size()));
    copied = range.second;
  }
  internal::AppendValidUtf8(text.substr(copied, hi - copied), &snippet.text);
  if (last < n) snippet.text += kEllipsis;
  return snippet;
}

}  // namespace tidings::search
