#include "daemon/metrics.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <sstream>

namespace tidings::daemon {
namespace {

std::string Seconds(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", static_cast<double>(ms) / 1000.0);
  return buf;
}

// "unavailable", "deadline_exceeded", ...: the code name in lower case.
std::string Kind(tidings_code code) {
  std::string k = tidings_code_name(code);
  for (auto& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return k;
}

// A label value in the Prometheus text format: backslash, double quote and
// newline escaped, so no value can end its label or line.
std::string Label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char ch : v) {
    if (ch == '\\') {
      out += "\\\\";
    } else if (ch == '"') {
      out += "\\\"";
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out;
}

class Page {
 public:
  void Header(const char* name, const char* type, const char* help) {
    o_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  template <typename F>
  void PerBackend(const MetricsInput& in, const char* name, const char* type, const char* help,
                  F value) {
    Header(name, type, help);
    for (const auto& b : in.backends) {
      o_ << name << "{backend=\"" << Label(b.name) << "\"} " << value(b) << '\n';
    }
  }
  std::ostringstream& out() { return o_; }

 private:
  std::ostringstream o_;
};

// Seconds since the least recently synced conversation of `b` last synced
// without error; before any, since the last good answer or the start.
std::string PullLag(const MetricsInput& in, const api::SyncBackend& b) {
  int64_t oldest = 0;
  for (const auto& s : in.conversations) {
    if (s.backend != b.name || s.stopped) continue;
    int64_t t = s.last_success_ms > 0 ? s.last_success_ms : in.started_ms;
    oldest = oldest == 0 ? t : std::min(oldest, t);
  }
  if (oldest == 0) oldest = b.last_success_ms > 0 ? b.last_success_ms : in.started_ms;
  return Seconds(in.now_ms - oldest);
}

size_t Conversations(const MetricsInput& in, const api::SyncBackend& b, bool failing_only) {
  size_t n = 0;
  for (const auto& s : in.conversations) {
    if (s.backend != b.name) continue;
    if (!failing_only || !s.last_error.empty() || s.stopped) ++n;
  }
  return n;
}

}  // namespace

std::string RenderMetrics(const MetricsInput& in) {
  Page p;
  auto& o = p.out();
  // Exact, store-wide (entries wait until acknowledged).
  p.Header("tidings_outbox_entries", "gauge", "Operations waiting in the store's outbox.");
  o << "tidings_outbox_entries{state=\"pending\"} " << in.outbox_pending << '\n'
    << "tidings_outbox_entries{state=\"failed\"} " << in.outbox_failed << '\n';
  p.PerBackend(in, "tidings_sync_up", "gauge",
               "1 while the backend's sync runs, 0 when stopped by an error.",
               [](const api::SyncBackend& b) { return b.running && b.stopped_by.ok() ? 1 : 0; });
  p.PerBackend(in, "tidings_realtime_connected", "gauge",
               "1 while the backend's push channel (Chime's WebSocket) is up: nothing is polled.",
               [](const api::SyncBackend& b) { return b.realtime_connected ? 1 : 0; });
  p.PerBackend(in, "tidings_outbox_depth", "gauge", "Operations the backend has not accepted yet.",
               [](const api::SyncBackend& b) { return b.outbox_depth; });
  p.PerBackend(in, "tidings_pull_lag_seconds", "gauge",
               "Seconds since the least recently synced conversation last synced without error.",
               [&](const api::SyncBackend& b) { return PullLag(in, b); });
  p.PerBackend(in, "tidings_last_success_timestamp_seconds", "gauge",
               "Unix time of the backend's last successful answer (0: none since start).",
               [](const api::SyncBackend& b) { return Seconds(b.last_success_ms); });
  p.PerBackend(in, "tidings_conversations", "gauge", "Conversations synced with the backend.",
               [&](const api::SyncBackend& b) { return Conversations(in, b, false); });
  p.PerBackend(in, "tidings_conversations_failing", "gauge",
               "Conversations whose last round failed (backing off) or that stopped.",
               [&](const api::SyncBackend& b) { return Conversations(in, b, true); });
  p.PerBackend(in, "tidings_backend_requests_total", "counter",
               "HTTP requests sent to the backend.",
               [](const api::SyncBackend& b) { return b.requests; });
  p.PerBackend(in, "tidings_backend_retries_total", "counter",
               "Requests that repeated an identical request that had failed.",
               [](const api::SyncBackend& b) { return b.retries; });
  p.Header("tidings_backend_errors_total", "counter",
           "Failed requests by kind (status code name: unavailable, deadline_exceeded, "
           "unauthenticated, aborted, ...).");
  for (const auto& b : in.backends) {
    std::map<std::string, uint64_t> by_kind;  // sorted by kind, as before
    for (const auto& [code, n] : b.errors) by_kind[Kind(code)] += n;
    for (const auto& [kind, n] : by_kind) {
      o << "tidings_backend_errors_total{backend=\"" << Label(b.name) << "\",kind=\"" << Label(kind)
        << "\"} " << n << '\n';
    }
  }
  p.Header("tidings_socket_requests_total", "counter",
           "Requests from local clients on the daemon socket, by operation and result.");
  for (const auto& [k, n] : in.socket_requests) {
    o << "tidings_socket_requests_total{op=\"" << Label(k.first) << "\",result=\""
      << Label(k.second) << "\"} " << n << '\n';
  }
  p.Header("tidings_config_reloads_total", "counter", "SIGHUP reloads by result.");
  o << "tidings_config_reloads_total{result=\"ok\"} " << in.reloads_ok << '\n'
    << "tidings_config_reloads_total{result=\"failed\"} " << in.reloads_failed << '\n';
  p.Header("tidings_daemon_start_time_seconds", "gauge", "Unix time the daemon started.");
  o << "tidings_daemon_start_time_seconds " << Seconds(in.started_ms) << '\n';
  return o.str();
}

}  // namespace tidings::daemon
