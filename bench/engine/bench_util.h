// Shared pieces of the store benchmarks: message shapes and a temp dir.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <string>
#include <vector>

#include "tests/common/temp_dir.h"

namespace bench {

inline constexpr size_t kBodyBytes = 300;

inline size_t FixtureMessages() {
  const char* n = std::getenv("TIDINGS_BENCH_MESSAGES");
  return n ? std::strtoull(n, nullptr, 10) : 1'000'000;
}
inline constexpr size_t kConversations = 1000;

// Message text. Default: chat-like text drawn from a vocabulary of common
// words (Snappy compresses it about 2x, like real chat). TIDINGS_BENCH_TEXT=
// pattern: the earlier 26-letter pattern, which compresses ~10x and flatters
// the raw stores' size on disk.
inline uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
// The common words of chat text (bench/search adds rare ones).
inline constexpr const char* kChatWords[] = {
    "the",      "pain",     "is",       "better",    "today",       "doctor",
    "please",   "take",     "with",     "food",      "after",       "morning",
    "evening",  "and",      "we",       "can",       "move",        "check",
    "up",       "to",       "Monday",   "Tuesday",   "works",       "for",
    "me",       "thanks",   "how",      "are",       "you",         "feeling",
    "dose",     "mg",       "tablet",   "twice",     "a",           "day",
    "blood",    "pressure", "was",      "high",      "low",         "results",
    "arrived",  "look",     "fine",     "call",      "if",          "it",
    "gets",     "worse",    "fever",    "since",     "yesterday",   "night",
    "sleep",    "slept",    "not",      "well",      "appointment", "at",
    "clinic",   "nurse",    "will",     "see",       "your",        "prescription",
    "refill",   "ready",    "pharmacy", "insurance", "form",        "signed",
    "question", "about",    "side",     "effects",   "dizzy",       "headache",
    "stomach",  "ok"};

inline std::string Body(uint64_t i) {
  static const bool pattern = [] {
    const char* t = std::getenv("TIDINGS_BENCH_TEXT");
    return t != nullptr && std::string(t) == "pattern";
  }();
  std::string b;
  if (pattern) {
    b.assign(kBodyBytes, 'a');
    for (size_t k = 0; k < b.size(); ++k) b[k] = static_cast<char>('a' + (i * 7 + k) % 26);
    return b;
  }
  constexpr uint64_t kCount = std::size(kChatWords);
  uint64_t r = SplitMix(i);
  while (b.size() < kBodyBytes) {
    if (!b.empty()) b.push_back(r % 9 == 0 ? '.' : ' ');
    if (r % 9 == 0) b.push_back(' ');
    b.append(kChatWords[r % kCount]);
    if (r % 13 == 0) b.append(" " + std::to_string(r % 1000));
    r = SplitMix(r);
  }
  b.resize(kBodyBytes);
  return b;
}

inline std::string ConvId(uint64_t i) {
  return "conversation-" + std::to_string(i % kConversations);
}

// Under $TIDINGS_BENCH_DIR (default /tmp), so a run can put the fixture on
// the disk it measures.
class TempDir : public tidings::testing::TempDir {
 public:
  TempDir() : tidings::testing::TempDir("tidings-bench", Parent()) {}

 private:
  static std::filesystem::path Parent() {
    const char* base = std::getenv("TIDINGS_BENCH_DIR");
    return base ? base : "/tmp";
  }
};

inline uint64_t DirBytes(const std::string& path) {
  uint64_t total = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(path)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

// p50/p99 of samples in microseconds.
inline std::pair<double, double> Percentiles(std::vector<double> v) {
  if (v.empty()) return {0, 0};
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}

// Messages per conversation in the fixture, capped at the page size of 50.
inline size_t ExpectedPage() { return std::min<size_t>(50, FixtureMessages() / kConversations); }

inline double MillisSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
inline double MicrosSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
}

// The counters every newest-page benchmark reports.
inline void ReportPageLatency(benchmark::State& state, std::vector<double> samples, double open_ms,
                              const std::string& dir) {
  auto [p50, p99] = Percentiles(std::move(samples));
  state.counters["p50_us"] = p50;
  state.counters["p99_us"] = p99;
  state.counters["open_ms"] = open_ms;
  state.counters["disk_MB"] = static_cast<double>(DirBytes(dir)) / 1e6;
  state.counters["messages"] = static_cast<double>(FixtureMessages());
}

// A cold start's phases (cold_start_bench.cc, sqlite_cold_start_bench.cc),
// each repetition's times in ms from the open: reported as p50/p99 of the
// whole start and of each part.
class ColdStartTimes {
 public:
  void Add(double opened, double listed, double shown) {
    start_.push_back(shown);
    open_.push_back(opened);
    list_.push_back(listed - opened);
    page_.push_back(shown - listed);
  }
  void Report(benchmark::State& state) const {
    auto put = [&](const char* name, std::vector<double> v) {
      auto [p50, p99] = Percentiles(std::move(v));
      state.counters[std::string(name) + "_p50_ms"] = p50;
      state.counters[std::string(name) + "_p99_ms"] = p99;
    };
    put("start", start_);
    put("open", open_);
    put("list", list_);
    put("page", page_);
    state.counters["messages"] = static_cast<double>(FixtureMessages());
  }

 private:
  std::vector<double> start_, open_, list_, page_;
};

}  // namespace bench
