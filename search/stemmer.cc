#include "search/stemmer.h"

#include <libstemmer.h>

#include <cstdlib>
#include <functional>

namespace tidings::search::internal {

EnglishStemmer::EnglishStemmer()
    : stemmer_(sb_stemmer_new("english", nullptr)), cache_(kCacheEntries) {
  // "english" is always built in: null means out of memory, where operator
  // new would end the process too.
  if (stemmer_ == nullptr) std::abort();
}

EnglishStemmer::~EnglishStemmer() { sb_stemmer_delete(stemmer_); }

bool EnglishStemmer::Stem(std::string_view word, std::string* out) {
  CacheEntry& entry = cache_[std::hash<std::string_view>()(word) % kCacheEntries];
  if (entry.word.empty() || entry.word != word) {
    entry.word.assign(word);
    entry.stem.clear();
    if (!StemUncached(word, &entry.stem)) entry.stem.clear();
  }
  if (entry.stem.empty()) return false;
  out->assign(entry.stem);
  return true;
}

bool EnglishStemmer::StemUncached(std::string_view word, std::string* out) {
  const sb_symbol* stem = sb_stemmer_stem(stemmer_, reinterpret_cast<const sb_symbol*>(word.data()),
                                          static_cast<int>(word.size()));
  if (stem == nullptr) return false;  // out of memory: keep the word
  const std::string_view stemmed(reinterpret_cast<const char*>(stem),
                                 static_cast<size_t>(sb_stemmer_length(stemmer_)));
  if (stemmed.empty() || stemmed == word) return false;
  out->assign(stemmed);
  return true;
}

StemmerPool::Lease StemmerPool::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto stemmer = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(stemmer));
    }
  }
  return Lease(this, std::make_unique<EnglishStemmer>());
}

void StemmerPool::Release(std::unique_ptr<EnglishStemmer> stemmer) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(stemmer));
}

}  // namespace tidings::search::internal
