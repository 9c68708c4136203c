#include "search/fold.h"

#include <utf8proc.h>

#include <utility>

namespace tidings::search::internal {
namespace {

struct Range {
  int32_t first;
  int32_t last;
};

template <size_t N>
bool InRanges(int32_t cp, const Range (&ranges)[N]) {
  if (cp < ranges[0].first) return false;
  for (const Range& range : ranges) {
    if (cp >= range.first && cp <= range.last) return true;
  }
  return false;
}

// Scripts written without spaces between words (or, for hangul, with words
// long enough that bigrams find their parts): indexed as bigrams.
constexpr Range kBigramRanges[] = {
    {0x0E00, 0x0EFF},    // Thai, Lao
    {0x1000, 0x109F},    // Myanmar
    {0x1100, 0x11FF},    // Hangul Jamo
    {0x1780, 0x17FF},    // Khmer
    {0x3005, 0x3007},    // 々 〆 〇
    {0x3040, 0x30FF},    // Hiragana, Katakana
    {0x3100, 0x318F},    // Bopomofo, Hangul Compatibility Jamo
    {0x31F0, 0x31FF},    // Katakana Phonetic Extensions
    {0x3400, 0x4DBF},    // CJK Extension A
    {0x4E00, 0x9FFF},    // CJK Unified Ideographs
    {0xA960, 0xA97F},    // Hangul Jamo Extended-A
    {0xAC00, 0xD7FF},    // Hangul Syllables, Jamo Extended-B
    {0xF900, 0xFAFF},    // CJK Compatibility Ideographs
    {0x20000, 0x3134F},  // CJK Extensions B..G
};

// Combining marks that are accents on a letter rather than part of its
// spelling: folded away, so "müller" = "muller".
constexpr Range kDiacriticRanges[] = {
    {0x0300, 0x036F},  // Combining Diacritical Marks
    {0x0483, 0x0489},  // Cyrillic combining marks
    {0x0591, 0x05C7},  // Hebrew points and accents
    {0x064B, 0x065F},  // Arabic harakat
    {0x0670, 0x0670},  // Arabic superscript alef
    {0x1AB0, 0x1AFF},  // Combining Diacritical Marks Extended
    {0x1DC0, 0x1DFF},  // Combining Diacritical Marks Supplement
    {0x20D0, 0x20FF},  // Combining Diacritical Marks for Symbols
    {0xFE20, 0xFE2F},  // Combining Half Marks
};

constexpr int32_t kHangulFirst = 0xAC00;
constexpr int32_t kHangulLast = 0xD7A3;
constexpr int32_t kZeroWidthSpace = 0x200B;

}  // namespace

CharClass Classify(int32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::kLetter;
    if (cp >= '0' && cp <= '9') return CharClass::kDigit;
    return CharClass::kSeparator;
  }
  if (cp == kZeroWidthSpace) return CharClass::kSeparator;
  switch (utf8proc_get_property(cp)->category) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return InRanges(cp, kBigramRanges) ? CharClass::kBigram : CharClass::kLetter;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
      return InRanges(cp, kDiacriticRanges) ? CharClass::kDiacritic : CharClass::kMark;
    case UTF8PROC_CATEGORY_NL:
      if (cp == 0x3007) return CharClass::kBigram;  // 〇, the kanji zero
      return CharClass::kDigit;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NO:
      return CharClass::kDigit;
    default:
      return CharClass::kSeparator;
  }
}

size_t FoldCodePoint(int32_t cp, int32_t out[kMaxFolded]) {
  // utf8proc would split a hangul syllable into jamo, and drop the zero
  // width space (ignorable) that marks a word break. CJK Unified
  // Ideographs have no decomposition and no case: Chinese skips utf8proc.
  if ((cp >= kHangulFirst && cp <= kHangulLast) || cp == kZeroWidthSpace ||
      (cp >= 0x4E00 && cp <= 0x9FFF)) {
    out[0] = cp;
    return 1;
  }
  int boundclass = 0;
  const utf8proc_ssize_t n =
      utf8proc_decompose_char(cp, out, kMaxFolded,
                              static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT |
                                                             UTF8PROC_CASEFOLD | UTF8PROC_IGNORE),
                              &boundclass);
  if (n < 0 || static_cast<size_t>(n) > kMaxFolded) {
    out[0] = cp;
    return 1;
  }
  return static_cast<size_t>(n);
}

size_t Compose(int32_t* cps, size_t n) {
  // Canonical ordering (utf8proc does it only inside utf8proc_decompose).
  size_t i = 0;
  while (i + 1 < n) {
    const auto ccc1 = utf8proc_get_property(cps[i])->combining_class;
    const auto ccc2 = utf8proc_get_property(cps[i + 1])->combining_class;
    if (ccc1 > ccc2 && ccc2 > 0) {
      std::swap(cps[i], cps[i + 1]);
      if (i > 0) --i;
    } else {
      ++i;
    }
  }
  const utf8proc_ssize_t len =
      utf8proc_normalize_utf32(cps, static_cast<utf8proc_ssize_t>(n),
                               static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  return len < 0 ? n : static_cast<size_t>(len);
}

}  // namespace tidings::search::internal
