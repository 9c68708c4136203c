#include "daemon/metrics_server.h"

#include <httplib.h>

#include <chrono>

namespace tidings::daemon {

MetricsServer::MetricsServer(std::function<HealthAnswer()> health,
                             std::function<std::string()> metrics)
    : health_(std::move(health)), metrics_(std::move(metrics)) {}

MetricsServer::~MetricsServer() { Stop(); }

Result<int> MetricsServer::Start(const std::string& host, int port) {
  server_ = std::make_unique<httplib::Server>();
  // Two workers are plenty for a scraper and a health probe.
  server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server_->set_keep_alive_max_count(10);
  server_->Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    HealthAnswer h = health_();
    res.status = h.healthy ? 200 : 503;
    res.set_content(h.healthy ? "ok\n" : "unhealthy: " + h.reason + "\n", "text/plain");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_(), "text/plain; version=0.0.4");
  });
  int bound = port;
  bool ok;
  try {
    if (port == 0) {
      bound = server_->bind_to_any_port(host);
      ok = bound > 0;
    } else {
      ok = server_->bind_to_port(host, port);
    }
  } catch (...) {
    ok = false;
  }
  if (!ok) {
    server_.reset();
    return IOError("cannot listen on " + host + ":" + std::to_string(port) +
                   " for metrics (in use?). Choose another metrics.listen port");
  }
  thread_ = std::thread([this] {
    try {
      server_->listen_after_bind();
    } catch (...) {
    }
  });
  return bound;
}

void MetricsServer::Stop() {
  if (!server_) return;
  // stop() only stops a server already in its accept loop.
  for (int i = 0; i < 2000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace tidings::daemon
