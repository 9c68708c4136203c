// Per-backend request counters for /metrics, gathered by wrapping the
// backend's HTTP transport (every backend takes an http::HttpClient), so the
// daemon counts requests, retries and errors the same way for DynamoDB and
// Chime without touching their code.
//
// Thread safety: BackendStats may be read and written from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sync/http/http_client.h"

namespace tidings::daemon {

struct BackendStats {
  std::atomic<uint64_t> requests{0};
  // A request identical (method, URL, body) to one whose last attempt failed:
  // the AWS client's own retries and the reconciler's retries after backoff.
  std::atomic<uint64_t> retries{0};
  std::atomic<int64_t> last_ok_ms{0};  // last 2xx answer (Unix ms)

  std::map<std::string, uint64_t> Errors();  // kind -> count
  void CountError(const std::string& kind);
  bool NoteFailed(const std::string& fingerprint, bool failed);  // returns "was failed before"

 private:
  std::mutex mu_;
  std::map<std::string, uint64_t> errors_;  // REQUIRES: mu_
  std::deque<std::string> failed_;          // recent failed fingerprints; REQUIRES: mu_
};

// Counts what passes through `inner`. `service` names the error model used to
// classify non-2xx answers ("dynamodb", "chime"). Cancel() is forwarded, so
// the daemon can abandon a request in flight at shutdown.
class CountingHttpClient final : public http::HttpClient {
 public:
  CountingHttpClient(std::unique_ptr<http::HttpClient> inner, std::shared_ptr<BackendStats> stats,
                     std::string service)
      : inner_(std::move(inner)), stats_(std::move(stats)), service_(std::move(service)) {}
  Result<http::Response> Send(const http::Request& request) override;
  void Cancel() override { inner_->Cancel(); }

 private:
  std::unique_ptr<http::HttpClient> inner_;
  std::shared_ptr<BackendStats> stats_;
  std::string service_;
};

}  // namespace tidings::daemon
