// Search: what an app asks the store's full-text index, and what it gets.
// The index itself (engine/search_index.*) lives in the store's own column
// families and is kept in the same atomic batch as the messages; the text
// processing is search/ (analyzer, query syntax, snippets). docs/search.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/types.h"

namespace tidings::engine {

enum class SearchOrder : uint8_t {
  kRelevance = 0,  // BM25 blended with recency (docs/search.md)
  kNewest = 1,     // newest first, every hit
};

struct SearchRequest {
  // Words (ANDed), "a phrase", prefix* (search/query.h).
  std::string query;
  std::string conversation_id;  // empty: every conversation
  std::string sender;           // empty: anyone
  uint64_t from_ms = 0;         // message time >= from_ms (0: no bound)
  uint64_t to_ms = 0;           // message time < to_ms (0: no bound)
  SearchOrder order = SearchOrder::kRelevance;
  size_t offset = 0;  // paging: hits skipped
  size_t limit = 20;  // hits returned (at most kMaxSearchLimit)
  // Set from another thread to stop a search (a UI searching as the user
  // types): the call returns Cancelled soon after. May be null.
  const std::atomic<bool>* cancel = nullptr;
};

inline constexpr size_t kMaxSearchLimit = 1000;

struct SearchHit {
  std::string message_id;
  std::string conversation_id;
  std::string sender;
  OrderKey order;
  double score = 0;                                  // kRelevance: higher is better
  std::string snippet;                               // a piece of the body (search/snippet.h)
  std::vector<std::pair<uint32_t, uint32_t>> marks;  // matched byte ranges of snippet
};

struct SearchResult {
  std::vector<SearchHit> hits;
  uint64_t total = 0;  // every hit of the query and filters, before paging
};

}  // namespace tidings::engine
