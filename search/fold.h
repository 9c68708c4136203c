// Folding and classification of code points (internal): what the analyzer's
// segmenter sees. A code point is folded to NFKD + case folding with default
// ignorables removed (utf8proc); each folded code point then has a class.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tidings::search::internal {

enum class CharClass : uint8_t {
  kSeparator,  // punctuation, symbols (emoji), spaces, controls
  kLetter,     // a letter of a script written with spaces between words
  kDigit,      // a number (Nd, Nl, No)
  kBigram,     // CJK, kana, hangul, Thai, Lao, Khmer, Myanmar: indexed by bigrams
  kMark,       // a combining mark that is part of the spelling (Indic vowels)
  kDiacritic,  // a combining accent folded away (Latin, Greek, Cyrillic,
               // Hebrew points, Arabic harakat)
};

CharClass Classify(int32_t cp);

// Longest folding of one code point (U+FDFA folds to 18).
inline constexpr size_t kMaxFolded = 32;

// Writes the folding of `cp` (a valid code point other than ASCII) to out,
// returns how many code points: 0 for a default ignorable (soft hyphen,
// joiners, variation selectors). Hangul syllables stay whole. A code point
// that cannot be folded is returned as itself.
size_t FoldCodePoint(int32_t cp, int32_t out[kMaxFolded]);

// Puts the combining marks of cps[0, n) in canonical order and composes them
// (the C of NFKC); returns the new length.
size_t Compose(int32_t* cps, size_t n);

}  // namespace tidings::search::internal
