// The analyzer's segmenter (internal): one pass over the original text,
// folding each code point (fold.h) and cutting the folded stream into terms.
// Rules (docs/search.md):
//   - letters make a word, digits make a number; a change from one to the
//     other starts a new term ("400mg" = "400" "mg");
//   - '.' or ',' between digits stays inside a number ("1.5", "1,000");
//   - CJK and the other bigram scripts make overlapping bigrams of their
//     characters, a lone character is a unigram;
//   - everything else, and every invalid UTF-8 byte, separates terms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "search/analyzer.h"
#include "search/fold.h"

namespace tidings::search::internal {

class EnglishStemmer;

class Tokenizer {
 public:
  // Appends to *out; stems alphabetic ASCII words with `stemmer` unless null.
  Tokenizer(std::vector<Token>* out, EnglishStemmer* stemmer) : out_(out), stemmer_(stemmer) {}

  void Run(std::string_view text);

 private:
  enum class WordKind : uint8_t { kNone, kLetters, kDigits };
  static constexpr size_t kMaxWordCodePoints = 2 * kMaxTermBytes;  // enough to fill a term
  static constexpr size_t kMaxUnitCodePoints = 8;                  // a character and its marks
  static constexpr size_t kMaxUnitBytes = kMaxTermBytes / 2;       // so a bigram fits a term

  struct Unit {  // one character of a bigram script
    int32_t cps[kMaxUnitCodePoints];
    size_t n = 0;
    uint32_t begin = 0;
    uint32_t end = 0;
  };

  size_t OnAsciiLetters(std::string_view text, size_t begin);
  void OnAscii(std::string_view text, size_t i);
  size_t OnNonAscii(std::string_view text, size_t i);
  void OnCodePoint(int32_t cp, CharClass cls, uint32_t begin, uint32_t end);
  void AddToWord(int32_t cp, WordKind kind, uint32_t begin, uint32_t end);
  void AppendToWord(int32_t cp, uint32_t end);
  void AddUnit(int32_t cp, uint32_t begin, uint32_t end);
  void FinishUnit();
  void FlushWord();
  void FlushUnits();
  Token& NewToken(uint32_t begin, uint32_t end);  // the next position's token, term empty
  void Emit(std::string term, uint32_t begin, uint32_t end, bool stem);
  void Stem(Token* token);  // REQUIRES: stemmer_

  std::vector<Token>* out_;
  EnglishStemmer* stemmer_;
  uint32_t position_ = 0;

  // The word in progress.
  WordKind kind_ = WordKind::kNone;
  int32_t word_[kMaxWordCodePoints];
  size_t word_len_ = 0;
  bool word_ascii_ = true;
  bool word_marks_ = false;  // holds combining marks: compose before encoding
  uint32_t word_begin_ = 0;
  uint32_t word_end_ = 0;

  // The bigram run in progress: the previous character (encoded) and the
  // current one, which may still take combining marks.
  bool have_prev_ = false;
  std::string prev_;
  uint32_t prev_begin_ = 0;
  bool have_cur_ = false;
  Unit cur_;
  std::string stem_buffer_;
};

}  // namespace tidings::search::internal
