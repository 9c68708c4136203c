// The analyzer's throughput on chat messages: the index runs Analyze on
// every message appended, so this bounds what indexing adds to an append.
//
//   tidings_analyzer_bench [--benchmark_filter=...]
// Messages are ~300 bytes of English chat (words, punctuation, numbers with
// units), made from a fixed seed; a run reports bytes/s and messages/s.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "search/analyzer.h"

namespace {

using tidings::search::Analyzer;
using tidings::search::AnalyzerOptions;
using tidings::search::Token;

constexpr const char* kWords[] = {
    "the",      "doctor",  "said",    "take",     "ibuprofen", "twice",    "a",       "day",
    "and",      "I'm",     "running", "late",     "meeting",   "tomorrow", "at",      "office",
    "can",      "you",     "send",    "me",       "address",   "please",   "thanks!", "sure,",
    "where",    "did",     "we",      "park",     "car?",      "it's",     "near",    "station",
    "delivery", "arrived", "kids",    "school",   "dinner",    "tonight",  "maybe",   "pizza",
    "weather",  "looks",   "great",   "weekend.", "Let's",     "go",       "hiking",  "OK",
};
constexpr const char* kNumbers[] = {"400mg", "2pm", "10:30", "1.5", "$20", "3", "2024"};

// `unique`: each word gets a random three-letter tail, so nearly every word
// is new to the stemmer's cache (the worst case; chat repeats its words).
std::vector<std::string> Messages(size_t count, size_t bytes, bool unique) {
  std::mt19937 rng(18);
  std::vector<std::string> messages;
  for (size_t m = 0; m < count; ++m) {
    std::string text;
    while (text.size() < bytes) {
      if (!text.empty()) text += ' ';
      if (rng() % 12 == 0) {
        text += kNumbers[rng() % std::size(kNumbers)];
        continue;
      }
      text += kWords[rng() % std::size(kWords)];
      for (int k = 0; unique && k < 3; ++k) text += static_cast<char>('a' + rng() % 26);
    }
    messages.push_back(std::move(text));
  }
  return messages;
}

// Analyzes `messages` in turn, one per iteration.
void AnalyzeEach(benchmark::State& state, const Analyzer& analyzer,
                 const std::vector<std::string>& messages) {
  std::vector<Token> tokens;
  size_t i = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    const std::string& text = messages[i++ % messages.size()];
    tokens.clear();
    analyzer.Analyze(text, &tokens);
    benchmark::DoNotOptimize(tokens.data());
    bytes += static_cast<int64_t>(text.size());
  }
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(state.iterations());
}

void Analyze(benchmark::State& state, bool stem, bool unique) {
  const Analyzer analyzer(AnalyzerOptions{.stem_english = stem});
  AnalyzeEach(state, analyzer, Messages(4096, 300, unique));
}

// The slow path: text that is not ASCII (accents, Cyrillic, CJK bigrams).
void BM_AnalyzeNonAscii(benchmark::State& state) {
  const Analyzer analyzer;
  const std::string sentences[] = {
      "Grüße aus München! Der Arzt sagt: zweimal täglich 400 mg Ibuprofen. ",
      "Привет! Врач сказал принимать ибупрофен два раза в день. ",
      "医者は一日二回イブプロフェンを飲むように言いました。東京都に住んでいます。",
  };
  std::vector<std::string> messages;
  for (const std::string& sentence : sentences) {
    std::string text;
    while (text.size() < 300) text += sentence;
    messages.push_back(std::move(text));
  }
  AnalyzeEach(state, analyzer, messages);
}

void BM_Analyze(benchmark::State& state) { Analyze(state, false, false); }
void BM_AnalyzeStemmed(benchmark::State& state) { Analyze(state, true, false); }
void BM_AnalyzeStemmedUniqueWords(benchmark::State& state) { Analyze(state, true, true); }
BENCHMARK(BM_Analyze);
BENCHMARK(BM_AnalyzeStemmed);
BENCHMARK(BM_AnalyzeStemmedUniqueWords);
BENCHMARK(BM_AnalyzeNonAscii);

}  // namespace

BENCHMARK_MAIN();
