#include "api/sync_counters.h"

#include <algorithm>
#include <chrono>

#include "common/clock.h"
#include "crypto/hash.h"
#include "sync/aws/aws_client.h"

namespace tidings::capi {
namespace {

constexpr size_t kFailedMemory = 256;  // fingerprints remembered as "failed"

}  // namespace

std::map<Code, uint64_t> BackendCounters::Errors() {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

void BackendCounters::CountError(Code code) {
  std::lock_guard<std::mutex> lock(mu_);
  ++errors_[code];
}

bool BackendCounters::NoteFailed(const std::string& fingerprint, bool failed) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(failed_.begin(), failed_.end(), fingerprint);
  const bool was = it != failed_.end();
  if (was) failed_.erase(it);
  if (failed) {
    failed_.push_back(fingerprint);
    if (failed_.size() > kFailedMemory) failed_.pop_front();
  }
  return was;
}

Result<http::Response> CountingHttpClient::Send(const http::Request& request) {
  // The signature headers change on every attempt; method, URL and body do not.
  const std::string fingerprint = crypto::Sha256Hex(request.method + ' ' + request.url + '\n' +
                                                    crypto::Sha256Hex(request.body));
  counters_->requests.fetch_add(1);
  auto response = inner_->Send(request);
  bool failed = true;
  if (!response.ok()) {
    counters_->CountError(response.status().code());
  } else if (response->status < 200 || response->status > 299) {
    counters_->CountError(aws::ErrorFromResponse(*response, service_).code());
  } else {
    failed = false;
    counters_->last_ok_ms.store(WallMs());
  }
  // Counted after the fact: a retry is an attempt whose previous identical
  // attempt failed.
  if (counters_->NoteFailed(fingerprint, failed)) counters_->retries.fetch_add(1);
  return response;
}

}  // namespace tidings::capi
