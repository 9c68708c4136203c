// The search benchmarks' messages and queries, the same for Tidings, SQLite
// FTS5 and SQLCipher FTS4, so every engine answers the same questions.
//
// A message is bench/engine's chat text (300 bytes, 1,000 conversations)
// with half its words drawn instead from a synthetic vocabulary of 50,000
// words with a Zipf distribution (real text has a long tail of rare words,
// which the index's dictionary and posting lists must carry), plus planted
// words at known frequencies, so each query type has a known answer:
//   rare       "warfarin"           exactly 10 messages
//   common     "doctor"             a chat word, in about a quarter of messages
//   two_terms  insulin metformin    5% and 4%, both in about 0.2%
//   prefix     ibu*                 ibuprofen 1%, ibuprofene 0.2%, ibuprofeno
//                                   0.1%, ibuflam 0.05% (no other word starts
//                                   with "ibu")
//   phrase     "blood pressure"     planted in 1%; both words are chat words,
//                                   so many more messages hold both apart
//   folded     muller               "Dr. Müller" in 0.5%, "MULLER" in 0.1%
// Synthetic words are consonant-vowel syllables, so none ends in a consonant
// or starts with a vowel: none collides with a planted word.
#pragma once

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "bench/engine/bench_util.h"

namespace bench::search {

inline constexpr size_t kVocabulary = 50'000;
inline constexpr size_t kRareMessages = 10;
inline constexpr size_t kHitsPerPage = 20;
inline constexpr size_t kSnippetWords = 16;  // search::MakeSnippet's default

struct QueryCase {
  const char* name;
  const char* text;  // the same syntax for Tidings (search/query.h) and FTS
  // The common word matches a quarter of the messages, so each query ranks
  // 250,000 of them at 1M: it runs a quarter of the iterations.
  size_t iterations_divisor = 1;
};
inline constexpr QueryCase kQueries[] = {
    {"rare", "warfarin"}, {"common", "doctor", 4},          {"two_terms", "insulin metformin"},
    {"prefix", "ibu*"},   {"phrase", "\"blood pressure\""}, {"folded", "muller"},
};

// Synthetic word of rank r: 2-4 consonant-vowel syllables.
inline std::string SyntheticWord(uint64_t r) {
  static constexpr char kConsonants[] = "bdfgklmnprstvz";
  static constexpr char kVowels[] = "aeiou";
  uint64_t h = SplitMix(r * 0x2545F4914F6CDD1DULL + 1);
  std::string w;
  const int syllables = 2 + static_cast<int>(h % 3);
  h /= 3;
  for (int s = 0; s < syllables; ++s) {
    w.push_back(kConsonants[h % 14]);
    h /= 14;
    w.push_back(kVowels[h % 5]);
    h /= 5;
  }
  return w;
}

// Zipf (s = 1) over kVocabulary ranks: the cumulative weights, once.
inline const std::vector<double>& ZipfCdf() {
  static const std::vector<double> cdf = [] {
    std::vector<double> c(kVocabulary);
    double sum = 0;
    for (size_t r = 0; r < kVocabulary; ++r) c[r] = sum += 1.0 / static_cast<double>(r + 1);
    for (double& x : c) x /= sum;
    return c;
  }();
  return cdf;
}

inline const std::vector<std::string>& Vocabulary() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> v;
    v.reserve(kVocabulary);
    for (size_t r = 0; r < kVocabulary; ++r) v.push_back(SyntheticWord(r));
    return v;
  }();
  return words;
}

inline const std::string& ZipfWord(uint64_t random) {
  const auto& cdf = ZipfCdf();
  const double u = static_cast<double>(random >> 11) / static_cast<double>(1ULL << 53);
  size_t r = static_cast<size_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
  return Vocabulary()[std::min(r, kVocabulary - 1)];
}

// True for a fraction per_10k / 10,000 of messages, independently per salt.
inline bool Planted(uint64_t i, uint64_t salt, uint64_t per_10k) {
  return SplitMix(i * 0x9E3779B97F4A7C15ULL ^ salt) % 10'000 < per_10k;
}

// The planted words of message i of a fixture of n messages.
inline std::string PlantedWords(uint64_t i, size_t n) {
  std::string p;
  auto add = [&p](std::string_view w) {
    p.append(w);
    p.push_back(' ');
  };
  if (n >= kRareMessages && i % (n / kRareMessages) == 3) add("warfarin");
  if (Planted(i, 1, 500)) add("insulin");
  if (Planted(i, 2, 400)) add("metformin");
  if (Planted(i, 3, 100)) add("ibuprofen 400 mg");
  if (Planted(i, 4, 20)) add("ibuprofene");
  if (Planted(i, 5, 10)) add("ibuprofeno");
  if (Planted(i, 6, 5)) add("ibuflam");
  if (Planted(i, 7, 100)) add("blood pressure");
  if (Planted(i, 8, 50)) add("Dr. Müller said");
  if (Planted(i, 9, 10)) add("MULLER");
  return p;
}

// Message i of a fixture of n: kBodyBytes of text (cut at a byte, as
// bench::Body is; planted words come early, so the cut never reaches them).
inline std::string SearchBody(uint64_t i, size_t n) {
  constexpr uint64_t kChat = std::size(kChatWords);
  std::string b;
  uint64_t r = SplitMix(i ^ 0x5EA4C4);
  auto word = [&] {
    if (!b.empty()) b.push_back(r % 9 == 0 ? '.' : ' ');
    if (r % 9 == 0) b.push_back(' ');
    if (r % 2 == 0) {
      b.append(kChatWords[(r >> 1) % kChat]);
    } else {
      b.append(ZipfWord(SplitMix(r)));
    }
    if (r % 13 == 0) b.append(" " + std::to_string(r % 1000));
    r = SplitMix(r);
  };
  word();
  word();
  b.push_back(' ');
  b.append(PlantedWords(i, n));
  while (b.size() < kBodyBytes) word();
  b.resize(kBodyBytes);
  return b;
}

// Timed queries of one query type per repetition: TIDINGS_BENCH_QUERY_ITERATIONS
// (default 200), divided as the case says, at least 10.
inline int64_t QueryIterations(const QueryCase& query) {
  const char* n = std::getenv("TIDINGS_BENCH_QUERY_ITERATIONS");
  const size_t all = n ? std::strtoull(n, nullptr, 10) : 200;
  return static_cast<int64_t>(std::max<size_t>(10, all / query.iterations_divisor));
}

// Registers BM_Search/<query> for every query of kQueries, each timed by
// `run` (manual time) for QueryIterations of it.
inline bool RegisterQueries(void (*run)(benchmark::State&, const QueryCase&)) {
  for (const QueryCase& query : kQueries) {
    benchmark::RegisterBenchmark((std::string("BM_Search/") + query.name).c_str(), run, query)
        ->Iterations(QueryIterations(query))
        ->UseManualTime();
  }
  return true;
}
// Untimed queries before the timed ones, divided like the iterations.
inline size_t WarmupQueries(const QueryCase& query) { return 20 / query.iterations_divisor; }

// A fixture kept on disk between runs, keyed by engine and size:
// $TIDINGS_BENCH_DIR (default /tmp)/tidings-search-bench/<engine>-<n>-v1.
// Build() runs when the directory has no "ready" file (a build that died
// half way is redone) or TIDINGS_BENCH_REBUILD=1; it returns the numbers to
// remember (build times, sizes), which later runs read back.
using FixtureFacts = std::map<std::string, double>;

template <typename BuildFn>
FixtureFacts CachedFixture(const std::string& path, BuildFn build) {
  const std::filesystem::path ready = path + "/ready";
  const char* rebuild = std::getenv("TIDINGS_BENCH_REBUILD");
  FixtureFacts facts;
  if (std::filesystem::exists(ready) && !(rebuild && std::string(rebuild) == "1")) {
    std::ifstream in(ready);
    std::string key;
    double value;
    while (in >> key >> value) facts[key] = value;
    return facts;
  }
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  facts = build(path);
  std::ofstream out(ready);
  for (auto& [k, v] : facts) out << k << ' ' << v << '\n';
  return facts;
}

inline std::string FixturePath(const std::string& engine) {
  const char* base = std::getenv("TIDINGS_BENCH_DIR");
  return std::string(base ? base : "/tmp") + "/tidings-search-bench/" + engine + "-" +
         std::to_string(FixtureMessages()) + "-v1";
}

// The wall-clock and CPU time of each timed query, reported as p50/p99
// counters with the query's matches and the hits of its page. CPU time is
// the calling thread's: on a shared machine it shows the work without the
// waits for a core; wall time is what a user sees.
class QueryClock {
 public:
  template <typename Query>
  auto Time(benchmark::State& state, Query&& query) {
    const double cpu0 = ThreadCpuMicros();
    const auto t0 = std::chrono::steady_clock::now();
    auto result = query();
    const double us = MicrosSince(t0);
    cpu_.push_back(ThreadCpuMicros() - cpu0);
    wall_.push_back(us);
    state.SetIterationTime(us / 1e6);
    return result;
  }

  void Report(benchmark::State& state, double matches, double hits) {
    auto [p50, p99] = Percentiles(std::move(wall_));
    auto [cpu_p50, cpu_p99] = Percentiles(std::move(cpu_));
    state.counters["p50_us"] = p50;
    state.counters["p99_us"] = p99;
    state.counters["cpu_p50_us"] = cpu_p50;
    state.counters["cpu_p99_us"] = cpu_p99;
    state.counters["matches"] = matches;
    state.counters["hits"] = hits;
    state.counters["messages"] = static_cast<double>(FixtureMessages());
  }

 private:
  static double ThreadCpuMicros() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
  }
  std::vector<double> wall_, cpu_;
};

inline void ReportFacts(benchmark::State& state, const FixtureFacts& facts) {
  for (auto& [k, v] : facts) state.counters[k] = v;
}

}  // namespace bench::search
