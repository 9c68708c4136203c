// Analyzer: from text to the terms the search index stores and a query looks
// up. One pass: Unicode normalisation (NFKC) with case and diacritic folding
// (utf8proc; docs/search.md says why utf8proc over ICU), then segmentation:
// runs of letters and digits are words, CJK ideographs, kana and hangul are
// indexed as overlapping character bigrams (a lone character as itself),
// numbers stay whole ("400", "1.5") and a unit glued to a number is its own
// word ("400mg" = "400" "mg", as "400 mg"). English stemming (Snowball, from
// libstemmer) is optional, per store.
//
// Thread safety: Analyze may be called concurrently on one Analyzer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tidings::search {

struct AnalyzerOptions {
  bool stem_english = false;
  bool operator==(const AnalyzerOptions&) const = default;
};

struct Token {
  std::string term;       // folded (and stemmed) UTF-8, never empty
  uint32_t position = 0;  // word position: a phrase's words are consecutive
  uint32_t begin = 0;     // byte range of the original text it came from
  uint32_t end = 0;
  // The folded term before stemming, only where stemming changed it (empty
  // otherwise, to spare a copy): what a prefix query compares with.
  std::string unstemmed;

  std::string_view folded() const { return unstemmed.empty() ? std::string_view(term) : unstemmed; }
};

// A prefix query needs at least this many characters (code points) of a
// word; the index keeps each longer term's first kPrefixChars as well.
inline constexpr size_t kPrefixChars = 3;
// Longer words are cut to this many bytes (on a code point boundary).
inline constexpr size_t kMaxTermBytes = 64;

class Analyzer {
 public:
  explicit Analyzer(AnalyzerOptions options = {});
  ~Analyzer();
  Analyzer(Analyzer&&) noexcept;
  Analyzer& operator=(Analyzer&&) noexcept;

  const AnalyzerOptions& options() const { return options_; }

  // Appends the tokens of `text` to *out, positions from 0. Invalid UTF-8
  // bytes separate words and are otherwise skipped.
  void Analyze(std::string_view text, std::vector<Token>* out) const;

  // Folds one query word for a prefix match, without stemming (a stemmed
  // prefix would not be a prefix of the stemmed word): "Ibu" -> "ibu". A
  // word the analyzer splits folds to its last term; one with no letters or
  // digits to "".
  std::string FoldPrefix(std::string_view word) const;

  // The first kPrefixChars code points of `term`, if it has more than that
  // (what the index stores for prefix queries); empty otherwise.
  static std::string_view IndexedPrefix(std::string_view term);
  // Code points in `term` (valid UTF-8).
  static size_t CodePoints(std::string_view term);

 private:
  struct Stemmer;
  AnalyzerOptions options_;
  std::unique_ptr<Stemmer> stemmer_;  // null without stemming
};

}  // namespace tidings::search
