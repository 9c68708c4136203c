// The C API's search calls (include/tidings/tidings_search.h) over
// engine::Store::Search and RebuildSearchIndex.
#include <atomic>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "api/internal.h"
#include "common/status.h"
#include "engine/search.h"
#include "engine/store.h"
#include "tidings/tidings_search.h"

using tidings::Status;
using tidings::capi::Guard;

struct tidings_search_cancel {
  std::atomic<bool> triggered{false};
};

// Owns the engine's hits and the C structs that point into them (neither
// vector is resized once filled).
struct tidings_search_result {
  tidings::engine::SearchResult result;
  std::vector<std::vector<tidings_search_mark>> marks;
  std::vector<tidings_search_hit> items;
};

namespace {

namespace engine = tidings::engine;

// The first published version of tidings_search_request ends here; where it
// ends in this library (ReadCallerStruct).
constexpr size_t kSearchRequestV1 = TIDINGS_END_OF(tidings_search_request, cancel);
constexpr size_t kSearchRequestKnown = TIDINGS_END_OF(tidings_search_request, cancel);

constexpr size_t kDefaultSearchLimit = 20;

using tidings::capi::OrEmpty;

tidings::Result<engine::SearchRequest> FromC(const tidings_search_request& c) {
  if (c.query == nullptr) return tidings::InvalidArgument("no query given (NULL)");
  engine::SearchRequest r;
  r.query = c.query;
  r.conversation_id = OrEmpty(c.conversation_id);
  r.sender = OrEmpty(c.sender);
  r.from_ms = c.from_ms;
  r.to_ms = c.to_ms;
  switch (tidings::capi::RawEnum(c.order)) {
    case TIDINGS_SEARCH_RELEVANCE:
      r.order = engine::SearchOrder::kRelevance;
      break;
    case TIDINGS_SEARCH_NEWEST:
      r.order = engine::SearchOrder::kNewest;
      break;
    default:
      return tidings::InvalidArgument(
          "unknown search order; use TIDINGS_SEARCH_RELEVANCE or TIDINGS_SEARCH_NEWEST");
  }
  r.offset = c.offset;
  r.limit = c.limit == 0 ? kDefaultSearchLimit : c.limit;
  if (c.cancel != nullptr) r.cancel = &c.cancel->triggered;
  return r;
}

std::unique_ptr<tidings_search_result> ToC(engine::SearchResult result) {
  auto out = std::make_unique<tidings_search_result>();
  out->result = std::move(result);
  const auto& hits = out->result.hits;
  out->marks.resize(hits.size());
  out->items.resize(hits.size());
  for (size_t i = 0; i < hits.size(); ++i) {
    const engine::SearchHit& h = hits[i];
    for (const auto& [begin, end] : h.marks) out->marks[i].push_back({begin, end});
    tidings_search_hit& c = out->items[i];
    c.message_id = h.message_id.c_str();
    c.conversation_id = h.conversation_id.c_str();
    c.sender = h.sender.c_str();
    c.order = tidings_order{h.order.hlc, h.order.replica};
    c.score = h.score;
    c.snippet = h.snippet.c_str();
    c.snippet_size = h.snippet.size();
    c.marks = out->marks[i].data();
    c.mark_count = out->marks[i].size();
  }
  return out;
}

}  // namespace

extern "C" {

tidings_code tidings_search_cancel_create(tidings_search_cancel** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, [&]() -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the token (NULL)");
    *out = new tidings_search_cancel;
    return Status::Ok();
  });
}

void tidings_search_cancel_trigger(tidings_search_cancel* cancel) {
  if (cancel != nullptr) cancel->triggered.store(true, std::memory_order_relaxed);
}

bool tidings_search_cancel_is_triggered(const tidings_search_cancel* cancel) {
  return cancel != nullptr && cancel->triggered.load(std::memory_order_relaxed);
}

void tidings_search_cancel_free(tidings_search_cancel* cancel) { delete cancel; }

size_t tidings_search_result_count(const tidings_search_result* result) {
  return result == nullptr ? 0 : result->items.size();
}

const tidings_search_hit* tidings_search_result_at(const tidings_search_result* result,
                                                   size_t index) {
  if (result == nullptr || index >= result->items.size()) return nullptr;
  return &result->items[index];
}

uint64_t tidings_search_result_total(const tidings_search_result* result) {
  return result == nullptr ? 0 : result->result.total;
}

void tidings_search_result_free(tidings_search_result* result) { delete result; }

tidings_code tidings_store_search(tidings_store* store, const tidings_search_request* request,
                                  tidings_search_result** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    if (request == nullptr) return tidings::InvalidArgument("no search request given (NULL)");
    if (out == nullptr) return tidings::InvalidArgument("no place for the result (NULL)");
    TIDINGS_ASSIGN_OR_RETURN(
        tidings_search_request c,
        tidings::capi::ReadCallerStruct(request, kSearchRequestV1, kSearchRequestKnown,
                                        "tidings_search_request"));
    TIDINGS_ASSIGN_OR_RETURN(engine::SearchRequest r, FromC(c));
    TIDINGS_ASSIGN_OR_RETURN(engine::SearchResult result, s.Search(r));
    *out = ToC(std::move(result)).release();
    return Status::Ok();
  });
}

tidings_code tidings_store_rebuild_search_index(tidings_store* store, tidings_progress_fn progress,
                                                void* context, tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    std::function<void(uint64_t, uint64_t)> cb;
    if (progress != nullptr) cb = [&](uint64_t d, uint64_t t) { progress(context, d, t); };
    return s.RebuildSearchIndex(cb);
  });
}

}  // extern "C"
