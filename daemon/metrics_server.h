// The health and metrics HTTP endpoint (cpp-httplib), off unless
// metrics.listen is set. GET /healthz and GET /metrics only.
//
// Thread safety: Start/Stop from one thread; the handlers run on httplib's
// worker threads and must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"

namespace httplib {
class Server;
}

namespace tidings::daemon {

struct HealthAnswer {
  bool healthy = true;
  std::string reason;  // why not, e.g. "dynamodb: UNAUTHENTICATED: ..."
};

class MetricsServer {
 public:
  MetricsServer(std::function<HealthAnswer()> health, std::function<std::string()> metrics);
  ~MetricsServer();  // Stop()s

  // Binds host:port (port 0: any free port) and serves on a thread. Returns
  // the bound port; IOError if the address cannot be bound.
  Result<int> Start(const std::string& host, int port);
  void Stop();

 private:
  std::function<HealthAnswer()> health_;
  std::function<std::string()> metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace tidings::daemon
