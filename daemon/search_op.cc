#include "daemon/search_op.h"

#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tidings::daemon {
namespace {

// Triggers `cancel` when `ms` pass before it is destroyed.
class Deadline {
 public:
  Deadline(int64_t ms, const api::SearchCancel& cancel) {
    if (ms <= 0) {
      cancel.Trigger();
      return;
    }
    watchdog_ = std::thread([this, ms, &cancel] {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return done_; })) {
        cancel.Trigger();
      }
    });
  }
  ~Deadline() {
    if (!watchdog_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    watchdog_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread watchdog_;
};

// An optional unsigned field: `fallback` when absent.
Result<uint64_t> Number(const Fields& f, const char* name, uint64_t fallback) {
  if (!f.Has(name)) return fallback;
  const std::string s = f.Get(name);
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    return InvalidArgument(std::string(name) + " must be a non-negative integer");
  }
  return v;
}

Result<api::SearchRequest> RequestFrom(const Fields& f) {
  api::SearchRequest r;
  r.query = f.Get("query");
  r.conversation_id = f.Get("conversation");
  r.sender = f.Get("sender");
  TIDINGS_ASSIGN_OR_RETURN(r.from_ms, Number(f, "from_ms", 0));
  TIDINGS_ASSIGN_OR_RETURN(r.to_ms, Number(f, "to_ms", 0));
  TIDINGS_ASSIGN_OR_RETURN(r.offset, Number(f, "offset", 0));
  TIDINGS_ASSIGN_OR_RETURN(r.limit, Number(f, "limit", 20));
  const std::string order = f.Get("order");
  if (order == "newest") {
    r.order = api::SearchOrder::kNewest;
  } else if (!order.empty() && order != "relevance") {
    return InvalidArgument("order must be relevance or newest");
  }
  if (r.limit > kMaxSocketSearchLimit) {
    return InvalidArgument("limit is at most " + std::to_string(kMaxSocketSearchLimit) +
                           " over the socket; page with offset");
  }
  return r;
}

std::string Marks(const api::SearchHit& h) {
  std::string out;
  for (const auto& [b, e] : h.marks) {
    if (!out.empty()) out += ' ';
    out += std::to_string(b) + "-" + std::to_string(e);
  }
  return out;
}

Result<std::vector<std::pair<uint32_t, uint32_t>>> ParseMarks(const std::string& s) {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  std::istringstream in(s);
  for (std::string m; in >> m;) {
    uint32_t b = 0, e = 0;
    const char* end = m.data() + m.size();
    auto r1 = std::from_chars(m.data(), end, b);
    if (r1.ec != std::errc() || r1.ptr == end || *r1.ptr != '-') {
      return InvalidArgument("the daemon sent malformed marks");
    }
    auto r2 = std::from_chars(r1.ptr + 1, end, e);
    if (r2.ec != std::errc() || r2.ptr != end) {
      return InvalidArgument("the daemon sent malformed marks");
    }
    out.emplace_back(b, e);
  }
  return out;
}

}  // namespace

Fields ExecuteSearch(api::Store& store, const Fields& request, int64_t deadline_ms) {
  auto r = RequestFrom(request);
  if (!r.ok()) return ErrorFields(r.status());
  auto cancel = api::SearchCancel::Create();
  if (!cancel.ok()) return ErrorFields(FromApi(cancel.status()));
  r->cancel = &*cancel;
  Result<api::SearchResult> result = [&]() -> Result<api::SearchResult> {
    Deadline deadline(deadline_ms, *cancel);
    auto res = api::Search(store, *r);
    if (!res.ok()) return FromApi(res.status());
    return std::move(res).value();
  }();
  if (!result.ok() && result.status().code() == Code::kCancelled) {
    return ErrorFields(DeadlineExceeded(
        "the search ran longer than " + std::to_string(deadline_ms) +
        " ms and was stopped. Narrow it: more letters, a conversation or a time range"));
  }
  if (!result.ok()) return ErrorFields(result.status());
  Fields out{{"op", "ok"}, {"total", std::to_string(result->total)}};
  for (const api::SearchHit& h : result->hits) {
    char score[32];
    std::snprintf(score, sizeof(score), "%.6g", h.score);
    out.Add("id", h.message_id);
    out.Add("conversation", h.conversation_id);
    out.Add("sender", h.sender);
    out.Add("order", h.order.ToString());
    out.Add("score", score);
    out.Add("snippet", h.snippet);
    out.Add("marks", Marks(h));
  }
  if (EncodeFields(out).size() > kMaxFrame) {
    return ErrorFields(TooLarge("the hits do not fit in one answer; ask for fewer (limit)"));
  }
  return out;
}

Fields SearchFields(const api::SearchRequest& r) {
  Fields f{{"op", "search"}, {"query", r.query}};
  if (!r.conversation_id.empty()) f.Add("conversation", r.conversation_id);
  if (!r.sender.empty()) f.Add("sender", r.sender);
  if (r.from_ms != 0) f.Add("from_ms", std::to_string(r.from_ms));
  if (r.to_ms != 0) f.Add("to_ms", std::to_string(r.to_ms));
  if (r.order == api::SearchOrder::kNewest) f.Add("order", "newest");
  if (r.offset != 0) f.Add("offset", std::to_string(r.offset));
  f.Add("limit", std::to_string(r.limit));
  return f;
}

Result<api::SearchResult> SearchResultFromFields(const Fields& answer) {
  TIDINGS_RETURN_IF_ERROR(StatusFromFields(answer));
  api::SearchResult out;
  auto total = Number(answer, "total", 0);
  if (!total.ok()) return total.status();
  out.total = *total;
  const auto ids = answer.All("id"), convs = answer.All("conversation"),
             senders = answer.All("sender"), orders = answer.All("order"),
             scores = answer.All("score"), snippets = answer.All("snippet"),
             marks = answer.All("marks");
  const size_t n = ids.size();
  if (convs.size() != n || senders.size() != n || orders.size() != n || scores.size() != n ||
      snippets.size() != n || marks.size() != n) {
    return InvalidArgument("the daemon sent a malformed search answer");
  }
  for (size_t i = 0; i < n; ++i) {
    auto order = api::OrderKey::Parse(orders[i]);
    auto m = ParseMarks(marks[i]);
    if (!order || !m.ok()) return InvalidArgument("the daemon sent a malformed search answer");
    out.hits.push_back(api::SearchHit{ids[i], convs[i], senders[i], *order,
                                      std::strtod(scores[i].c_str(), nullptr), snippets[i],
                                      std::move(m).value()});
  }
  return out;
}

}  // namespace tidings::daemon
