#include "search/tokenizer.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "search/stemmer.h"
#include "search/utf8.h"

namespace tidings::search::internal {
namespace {

bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAsciiLetter(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }

// Encodes cps[0, n), composed if `compose` (only combining marks compose),
// cut to at most max_bytes (<= kMaxTermBytes) on a code point boundary.
std::string Encode(int32_t* cps, size_t n, size_t max_bytes, bool compose) {
  if (compose) n = Compose(cps, n);
  char buf[kMaxTermBytes + 4];
  size_t len = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t cp_len = EncodeUtf8(cps[i], buf + len);
    if (len + cp_len > max_bytes) break;
    len += cp_len;
  }
  return std::string(buf, len);
}

}  // namespace

void Tokenizer::Run(std::string_view text) {
  // Offsets are 32-bit; a message is far smaller.
  text = text.substr(0, std::numeric_limits<uint32_t>::max());
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      i = OnNonAscii(text, i);
    } else if (IsAsciiLetter(c) && kind_ != WordKind::kLetters) {
      i = OnAsciiLetters(text, i);
    } else {
      OnAscii(text, i);
      ++i;
    }
  }
  FlushWord();
  FlushUnits();
}

// The fast path of chat text: a word of ASCII letters alone, emitted from
// the text without going through word_.
size_t Tokenizer::OnAsciiLetters(std::string_view text, size_t begin) {
  size_t end = begin;
  while (end < text.size() && IsAsciiLetter(static_cast<unsigned char>(text[end]))) ++end;
  if (end < text.size() && static_cast<unsigned char>(text[end]) >= 0x80) {
    OnAscii(text, begin);  // the word may go on with accents or other letters
    return begin + 1;
  }
  FlushWord();
  FlushUnits();
  Token& token = NewToken(static_cast<uint32_t>(begin), static_cast<uint32_t>(end));
  token.term.assign(text.substr(begin, std::min(end - begin, kMaxTermBytes)));
  for (char& c : token.term) c = static_cast<char>(c | 0x20);  // lower case
  if (stemmer_ != nullptr) Stem(&token);
  return end;
}

void Tokenizer::OnAscii(std::string_view text, size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  const auto at = static_cast<uint32_t>(i);
  if ((c == '.' || c == ',') && kind_ == WordKind::kDigits && i + 1 < text.size() &&
      IsAsciiDigit(text[i + 1])) {
    AppendToWord(c, at + 1);  // the decimal point or thousands comma of a number
    return;
  }
  const int32_t folded = (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
  OnCodePoint(folded, Classify(folded), at, at + 1);
}

size_t Tokenizer::OnNonAscii(std::string_view text, size_t i) {
  const Decoded d = DecodeAt(text, i);
  if (d.cp < 0) {  // invalid UTF-8: a separator
    FlushWord();
    FlushUnits();
    return i + 1;
  }
  const auto at = static_cast<uint32_t>(i);
  int32_t folded[kMaxFolded];
  const size_t n = FoldCodePoint(d.cp, folded);
  for (size_t k = 0; k < n; ++k) OnCodePoint(folded[k], Classify(folded[k]), at, at + d.len);
  return i + d.len;
}

void Tokenizer::OnCodePoint(int32_t cp, CharClass cls, uint32_t begin, uint32_t end) {
  switch (cls) {
    case CharClass::kLetter:
      AddToWord(cp, WordKind::kLetters, begin, end);
      break;
    case CharClass::kDigit:
      AddToWord(cp, WordKind::kDigits, begin, end);
      break;
    case CharClass::kBigram:
      FlushWord();
      AddUnit(cp, begin, end);
      break;
    case CharClass::kMark:  // part of the character before it; alone, nothing
      if (kind_ != WordKind::kNone) {
        AppendToWord(cp, end);
        word_marks_ = true;
      } else if (have_cur_) {
        if (cur_.n < kMaxUnitCodePoints) cur_.cps[cur_.n++] = cp;
        cur_.end = end;
      }
      break;
    case CharClass::kDiacritic:  // folded away, but the token's text covers it
      if (kind_ != WordKind::kNone) {
        word_end_ = end;
      } else if (have_cur_) {
        cur_.end = end;
      }
      break;
    case CharClass::kSeparator:
      FlushWord();
      FlushUnits();
      break;
  }
}

void Tokenizer::AddToWord(int32_t cp, WordKind kind, uint32_t begin, uint32_t end) {
  if (kind_ != kind) {
    FlushWord();
    FlushUnits();
    kind_ = kind;
    word_len_ = 0;
    word_ascii_ = true;
    word_marks_ = false;
    word_begin_ = begin;
  }
  AppendToWord(cp, end);
}

void Tokenizer::AppendToWord(int32_t cp, uint32_t end) {
  if (word_len_ < kMaxWordCodePoints) word_[word_len_++] = cp;
  if (cp >= 0x80) word_ascii_ = false;
  word_end_ = end;
}

void Tokenizer::FlushWord() {
  if (kind_ == WordKind::kNone) return;
  std::string term;
  if (word_ascii_) {
    const size_t n = std::min(word_len_, kMaxTermBytes);
    term.resize(n);
    for (size_t i = 0; i < n; ++i) term[i] = static_cast<char>(word_[i]);
  } else {
    term = Encode(word_, word_len_, kMaxTermBytes, word_marks_);
  }
  const bool stem = stemmer_ != nullptr && kind_ == WordKind::kLetters && word_ascii_;
  kind_ = WordKind::kNone;
  if (!term.empty()) Emit(std::move(term), word_begin_, word_end_, stem);
}

void Tokenizer::AddUnit(int32_t cp, uint32_t begin, uint32_t end) {
  if (have_cur_) FinishUnit();
  cur_.cps[0] = cp;
  cur_.n = 1;
  cur_.begin = begin;
  cur_.end = end;
  have_cur_ = true;
}

// The current character takes no more marks: pair it with the previous one.
void Tokenizer::FinishUnit() {
  std::string unit = Encode(cur_.cps, cur_.n, kMaxUnitBytes, cur_.n > 1);
  if (have_prev_) Emit(prev_ + unit, prev_begin_, cur_.end, false);
  prev_ = std::move(unit);
  prev_begin_ = cur_.begin;
  have_prev_ = true;
  have_cur_ = false;
}

void Tokenizer::FlushUnits() {
  if (!have_cur_) return;
  if (have_prev_) {
    FinishUnit();
  } else {
    Emit(Encode(cur_.cps, cur_.n, kMaxUnitBytes, cur_.n > 1), cur_.begin, cur_.end, false);
  }
  have_prev_ = false;
  have_cur_ = false;
}

Token& Tokenizer::NewToken(uint32_t begin, uint32_t end) {
  Token& token = out_->emplace_back();
  token.position = position_++;
  token.begin = begin;
  token.end = end;
  return token;
}

void Tokenizer::Emit(std::string term, uint32_t begin, uint32_t end, bool stem) {
  Token& token = NewToken(begin, end);
  token.term = std::move(term);
  if (stem) Stem(&token);
}

void Tokenizer::Stem(Token* token) {
  if (!stemmer_->Stem(token->term, &stem_buffer_)) return;
  token->unstemmed = std::move(token->term);
  token->term = stem_buffer_;
}

}  // namespace tidings::search::internal
