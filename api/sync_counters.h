// Per-backend request counters (tidings_sync_backends), gathered by wrapping
// the backend's HTTP transport (every backend takes an http::HttpClient), so
// requests, retries and errors are counted the same way for DynamoDB and
// Chime without touching their code.
//
// Thread safety: BackendCounters may be read and written from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sync/http/http_client.h"

namespace tidings::capi {

struct BackendCounters {
  std::atomic<uint64_t> requests{0};
  // A request identical (method, URL, body) to one whose last attempt failed:
  // the AWS client's own retries and the reconciler's retries after backoff.
  std::atomic<uint64_t> retries{0};
  std::atomic<int64_t> last_ok_ms{0};  // last 2xx answer (Unix ms)

  std::map<Code, uint64_t> Errors();  // failed requests by code
  void CountError(Code code);
  bool NoteFailed(const std::string& fingerprint, bool failed);  // returns "was failed before"

 private:
  std::mutex mu_;
  std::map<Code, uint64_t> errors_;  // REQUIRES: mu_
  std::deque<std::string> failed_;   // recent failed fingerprints; REQUIRES: mu_
};

// Counts what passes through `inner`. `service` names the error model used to
// classify non-2xx answers ("dynamodb", "chime"). Cancel() is forwarded, so
// a stopping handle can abandon a request in flight.
class CountingHttpClient final : public http::HttpClient {
 public:
  CountingHttpClient(std::unique_ptr<http::HttpClient> inner,
                     std::shared_ptr<BackendCounters> counters, std::string service)
      : inner_(std::move(inner)), counters_(std::move(counters)), service_(std::move(service)) {}
  Result<http::Response> Send(const http::Request& request) override;
  void Cancel() override { inner_->Cancel(); }

 private:
  std::unique_ptr<http::HttpClient> inner_;
  std::shared_ptr<BackendCounters> counters_;
  std::string service_;
};

}  // namespace tidings::capi
