// HttpClient: the only way Tidings talks to the network. The interface is a
// seam for tests; CurlHttpClient is the production transport over libcurl.
//
// Thread safety: an HttpClient instance is used by one thread at a time
// (it reuses one connection); Cancel() may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "sync/http/message.h"
#include "common/status.h"

namespace tidings::http {

struct HttpOptions {
  long connect_timeout_ms = 5'000;
  long total_timeout_ms = 30'000;
  long low_speed_bytes_per_s = 64;  // below this for low_speed_time_s: abort
  long low_speed_time_s = 15;
  size_t max_response_bytes = 16 << 20;
  bool verify_tls = true;  // never off in production
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // A transport failure (DNS, connect, TLS, timeout, reset, oversized
  // response, cancelled) is a non-OK Status: Unavailable or DeadlineExceeded
  // (retryable) or Cancelled. Any HTTP status is an OK Result.
  virtual Result<Response> Send(const Request& request) = 0;
  // Aborts the request in flight (shutdown). Later requests fail Cancelled.
  virtual void Cancel() = 0;
};

// libcurl with connection reuse, HTTP/2 where offered, TLS verification on,
// timeouts, the standard proxy variables (https_proxy, no_proxy) honoured.
std::unique_ptr<HttpClient> NewCurlHttpClient(const HttpOptions& options = {});

}  // namespace tidings::http
