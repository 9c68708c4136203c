// The request counting transport behind tidings_sync_backends (internal:
// api/sync_counters.h).
#include "api/sync_counters.h"

#include <gtest/gtest.h>

#include <vector>

namespace tidings::capi {
namespace {

class ScriptedHttp final : public http::HttpClient {
 public:
  std::vector<Result<http::Response>> answers;
  Result<http::Response> Send(const http::Request&) override {
    auto r = answers.front();
    answers.erase(answers.begin());
    return r;
  }
  void Cancel() override {}
};

TEST(SyncCounters, CountsRequestsRetriesAndErrorsByCode) {
  auto inner = std::make_unique<ScriptedHttp>();
  http::Response ok;
  ok.status = 200;
  http::Response throttled;
  throttled.status = 400;
  throttled.body = R"({"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException"})";
  inner->answers = {Unavailable("connection refused"), Result<http::Response>(throttled),
                    Result<http::Response>(ok), Result<http::Response>(ok)};
  auto counters = std::make_shared<BackendCounters>();
  CountingHttpClient client(std::move(inner), counters, "dynamodb");
  http::Request put{"POST", "http://x/", {}, "{\"put\":1}"};
  http::Request query{"POST", "http://x/", {}, "{\"query\":1}"};
  EXPECT_FALSE(client.Send(put).ok());   // fails
  EXPECT_TRUE(client.Send(put).ok());    // retry (same request), throttled
  EXPECT_TRUE(client.Send(put).ok());    // retry, succeeds
  EXPECT_TRUE(client.Send(query).ok());  // a different request: not a retry
  EXPECT_EQ(counters->requests.load(), 4u);
  EXPECT_EQ(counters->retries.load(), 2u);
  auto errors = counters->Errors();
  EXPECT_EQ(errors[Code::kUnavailable], 2u);  // refused connection + throttling
  EXPECT_EQ(errors.size(), 1u);
  EXPECT_GT(counters->last_ok_ms.load(), 0);
}

}  // namespace
}  // namespace tidings::capi
