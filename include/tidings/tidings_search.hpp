// tidings_search.hpp: the C++ layer over tidings_search.h, in the style of
// tidings.hpp (header-only, RAII, errors as api::Status / api::Result, no
// exceptions of its own). Free functions over a Store:
//
//   auto cancel = api::SearchCancel::Create();   // one per keystroke
//   api::SearchRequest r{.query = "ibu*", .cancel = &*cancel};
//   auto hits = api::Search(store, r);           // another thread may
//                                                // cancel->Trigger()
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tidings/tidings.hpp"
#include "tidings/tidings_search.h"

namespace tidings::api {

enum class SearchOrder {
  kRelevance = TIDINGS_SEARCH_RELEVANCE,  // BM25 blended with recency
  kNewest = TIDINGS_SEARCH_NEWEST,
};

// A token that stops a search from another thread (tidings_search_cancel).
// Trigger and triggered are thread-safe; it must outlive the searches given
// it.
class SearchCancel {
 public:
  static Result<SearchCancel> Create() {
    tidings_search_cancel* raw = nullptr;
    Status s =
        internal::Call([&](tidings_error* e) { return tidings_search_cancel_create(&raw, e); });
    if (!s.ok()) return s;
    SearchCancel c;
    c.raw_.reset(raw);
    return c;
  }
  void Trigger() const { tidings_search_cancel_trigger(raw_.get()); }
  bool triggered() const { return tidings_search_cancel_is_triggered(raw_.get()); }
  const tidings_search_cancel* c() const { return raw_.get(); }

 private:
  SearchCancel() = default;
  internal::Owned<tidings_search_cancel, tidings_search_cancel_free> raw_;
};

// See tidings_search_request.
struct SearchRequest {
  std::string query;
  std::string conversation_id;  // empty: every conversation
  std::string sender;           // empty: anyone
  uint64_t from_ms = 0;         // message time >= from_ms (0: no bound)
  uint64_t to_ms = 0;           // message time < to_ms (0: no bound)
  SearchOrder order = SearchOrder::kRelevance;
  size_t offset = 0;
  size_t limit = 20;                     // at most 1000
  const SearchCancel* cancel = nullptr;  // borrowed; may be null
};

struct SearchHit {
  std::string message_id;
  std::string conversation_id;
  std::string sender;
  OrderKey order;
  double score = 0;
  std::string snippet;
  std::vector<std::pair<uint32_t, uint32_t>> marks;  // [begin, end) bytes of snippet
};

struct SearchResult {
  std::vector<SearchHit> hits;
  uint64_t total = 0;  // every hit, before offset and limit
};

// See tidings_store_search: INVALID_ARGUMENT for a query the syntax refuses,
// CANCELLED once request.cancel is triggered.
inline Result<SearchResult> Search(const Store& store, const SearchRequest& request) {
  tidings_search_request r;
  tidings_search_request_init(&r);
  r.query = request.query.c_str();
  r.conversation_id = request.conversation_id.c_str();
  r.sender = request.sender.c_str();
  r.from_ms = request.from_ms;
  r.to_ms = request.to_ms;
  r.order = static_cast<tidings_search_order>(request.order);
  r.offset = request.offset;
  r.limit = request.limit;
  r.cancel = request.cancel != nullptr ? request.cancel->c() : nullptr;
  tidings_search_result* raw = nullptr;
  Status s = internal::Call(
      [&](tidings_error* e) { return tidings_store_search(store.c_handle(), &r, &raw, e); });
  if (!s.ok()) return s;
  internal::Owned<tidings_search_result, tidings_search_result_free> owned(raw);
  SearchResult out;
  out.total = tidings_search_result_total(raw);
  for (size_t i = 0; i < tidings_search_result_count(raw); ++i) {
    const tidings_search_hit* h = tidings_search_result_at(raw, i);
    SearchHit hit{h->message_id,
                  h->conversation_id,
                  h->sender,
                  OrderKey::FromC(h->order),
                  h->score,
                  std::string(h->snippet, h->snippet_size),
                  {}};
    for (size_t m = 0; m < h->mark_count; ++m)
      hit.marks.emplace_back(h->marks[m].begin, h->marks[m].end);
    out.hits.push_back(std::move(hit));
  }
  return out;
}

// See tidings_store_rebuild_search_index.
inline Status RebuildSearchIndex(const Store& store,
                                 std::function<void(uint64_t done, uint64_t total)> progress = {}) {
  return internal::Call([&](tidings_error* e) {
    return tidings_store_rebuild_search_index(
        store.c_handle(), progress ? internal::ProgressTrampoline : nullptr, &progress, e);
  });
}

}  // namespace tidings::api
