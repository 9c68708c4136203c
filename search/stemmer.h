// English stemming with Snowball's libstemmer (internal). An sb_stemmer
// keeps its working buffer inside, so one must not be used by two threads at
// once: the pool lends each caller its own.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

struct sb_stemmer;

namespace tidings::search::internal {

class EnglishStemmer {
 public:
  EnglishStemmer();
  ~EnglishStemmer();
  EnglishStemmer(const EnglishStemmer&) = delete;
  EnglishStemmer& operator=(const EnglishStemmer&) = delete;

  // Sets *out to the stem of `word` (lower-case ASCII letters) and returns
  // true if it differs from the word.
  bool Stem(std::string_view word, std::string* out);

 private:
  // Chat repeats a small vocabulary: a direct-mapped cache of recent words
  // spares Snowball's ~200 ns a word for most of them.
  static constexpr size_t kCacheEntries = 1024;
  struct CacheEntry {
    std::string word;  // empty: unused
    std::string stem;  // empty: the word is its own stem
  };

  bool StemUncached(std::string_view word, std::string* out);

  sb_stemmer* stemmer_;
  std::vector<CacheEntry> cache_;
};

// Thread-safe: Acquire may be called from any thread.
class StemmerPool {
 public:
  // Returns its stemmer to the pool when destroyed.
  class Lease {
   public:
    Lease(StemmerPool* pool, std::unique_ptr<EnglishStemmer> stemmer)
        : pool_(pool), stemmer_(std::move(stemmer)) {}
    ~Lease() { pool_->Release(std::move(stemmer_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    EnglishStemmer* get() const { return stemmer_.get(); }

   private:
    StemmerPool* pool_;
    std::unique_ptr<EnglishStemmer> stemmer_;
  };

  Lease Acquire();

 private:
  void Release(std::unique_ptr<EnglishStemmer> stemmer);

  std::mutex mu_;
  std::vector<std::unique_ptr<EnglishStemmer>> idle_;  // GUARDED_BY(mu_)
};

}  // namespace tidings::search::internal
