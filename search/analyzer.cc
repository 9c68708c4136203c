#include "search/analyzer.h"

#include "search/stemmer.h"
#include "search/tokenizer.h"

namespace tidings::search {

struct Analyzer::Stemmer {
  internal::StemmerPool pool;
};

Analyzer::Analyzer(AnalyzerOptions options)
    : options_(options), stemmer_(options.stem_english ? std::make_unique<Stemmer>() : nullptr) {}

Analyzer::~Analyzer() = default;
Analyzer::Analyzer(Analyzer&&) noexcept = default;
Analyzer& Analyzer::operator=(Analyzer&&) noexcept = default;

void Analyzer::Analyze(std::string_view text, std::vector<Token>* out) const {
  if (stemmer_ == nullptr) {
    internal::Tokenizer(out, nullptr).Run(text);
    return;
  }
  const internal::StemmerPool::Lease lease = stemmer_->pool.Acquire();
  internal::Tokenizer(out, lease.get()).Run(text);
}

std::string Analyzer::FoldPrefix(std::string_view word) const {
  std::vector<Token> tokens;
  internal::Tokenizer(&tokens, nullptr).Run(word);
  return tokens.empty() ? std::string() : std::move(tokens.back().term);
}

std::string_view Analyzer::IndexedPrefix(std::string_view term) {
  size_t count = 0;
  for (size_t i = 0; i < term.size(); ++i) {
    if ((static_cast<unsigned char>(term[i]) & 0xC0) == 0x80) continue;
    if (count == kPrefixChars) return term.substr(0, i);  // a code point follows the prefix
    ++count;
  }
  return {};
}

size_t Analyzer::CodePoints(std::string_view term) {
  size_t count = 0;
  for (const char c : term) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

}  // namespace tidings::search
