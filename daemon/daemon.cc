#include "daemon/daemon.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <vector>

#include "daemon/backend_stats.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/metrics_server.h"
#include "daemon/socket_server.h"
#include "engine/store.h"
#include "sync/aws/credentials.h"
#include "sync/core/sync_engine.h"
#include "sync/dynamodb/dynamodb_backend.h"
#ifdef TIDINGS_HAVE_CHIME
#include "sync/chime/chime_backend.h"
#endif

namespace tidings::daemon {
namespace {

constexpr int64_t kStopGraceMs = 1'000;  // then requests in flight are abandoned
constexpr int64_t kBusyWaitMs = 10'000;  // another writer holding the store at start

const sigset_t& HandledSignals() {
  static const sigset_t set = [] {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGHUP);
    return s;
  }();
  return set;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Join(const std::vector<std::string>& v, const char* sep = ",") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string Seconds(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", static_cast<double>(ms) / 1000.0);
  return buf;
}

// Everything the configuration decides, resolved: file, environment, flags.
Result<DaemonConfig> Resolve(const DaemonOptions& o) {
  std::string path = o.config_path;
  if (path.empty()) {
    if (const char* p = std::getenv("TIDINGS_DAEMON_CONFIG"); p && *p) path = p;
  }
  TIDINGS_ASSIGN_OR_RETURN(DaemonConfig c, LoadConfig(path, ProcessEnv()));
  if (!o.store_path.empty()) c.store_path = o.store_path;
  if (!o.key_file.empty()) c.key_file = o.key_file;
  if (!o.log_format.empty()) {
    if (o.log_format != "text" && o.log_format != "json") {
      return InvalidArgument("--log-format must be text or json");
    }
    c.log_format = o.log_format;
  }
  if (!o.log_level.empty()) {
    if (o.log_level != "debug" && o.log_level != "info" && o.log_level != "warn" &&
        o.log_level != "error") {
      return InvalidArgument("--log-level must be debug, info, warn or error");
    }
    c.log_level = o.log_level;
  }
  const std::string where = path.empty() ? "the configuration" : path;
  if (c.store_path.empty()) {
    return InvalidArgument("no store given: set store.path in " + where +
                           ", or pass --store DIR or set TIDINGS_STORE");
  }
  if (c.key_file.empty() && std::getenv("TIDINGS_PASSPHRASE") == nullptr) {
    return InvalidArgument("no key for the store: set store.key_file in " + where +
                           ", or pass --key-file / set TIDINGS_KEY_FILE, or set "
                           "TIDINGS_PASSPHRASE");
  }
  return c;
}

// Missing AWS credentials are a configuration error: found now, not at the
// first request hours later.
Status CheckCredentials(const DaemonConfig& c) {
  auto creds = aws::DefaultCredentialsChain()->Get();
  if (!creds.ok()) {
    return InvalidArgument(
        "no AWS credentials for the " + Join(c.backends, " and ") +
        " backend: " + creds.status().message() +
        ". Under systemd, put them in the unit's EnvironmentFile (docs/operations.md)");
  }
  return Status::Ok();
}

crypto::KeySource KeyFor(const DaemonConfig& c) {
  if (!c.key_file.empty()) return crypto::KeySource::KeyFile(c.key_file);
  return crypto::KeySource::Passphrase(std::getenv("TIDINGS_PASSPHRASE"));
}

// The sync-relevant part of a configuration: a change here rebuilds engines.
std::string SyncFingerprint(const DaemonConfig& c) {
  std::ostringstream o;
  o << Join(c.backends) << '|' << c.active_poll_ms << '|' << c.idle_poll_ms << '|'
    << c.base_backoff_ms << '|' << c.max_backoff_ms << '|' << c.connect_timeout_ms << '|'
    << c.request_timeout_ms << '|' << c.dynamodb_table << '|' << c.dynamodb_region << '|'
    << c.dynamodb_endpoint << '|' << c.chime_app_instance_arn << '|' << c.chime_user_arn << '|'
    << c.chime_region << '|' << c.chime_endpoint;
  return o.str();
}

class Daemon {
 public:
  explicit Daemon(DaemonOptions options) : options_(std::move(options)) {}
  Status Run();

 private:
  struct Runtime {
    std::string name;
    std::unique_ptr<sync::Backend> backend;
    http::HttpClient* http = nullptr;  // owned by backend
    std::shared_ptr<BackendStats> stats;
    std::unique_ptr<sync::SyncEngine> engine;
    int64_t failed_since_ms = 0;
  };

  // `first`: this engine also logs store-wide message events (every engine
  // sees every store change; one is enough).
  Result<std::shared_ptr<Runtime>> MakeRuntime(const std::string& name, const DaemonConfig& c,
                                               bool first);
  // The running engines, for callers that must not hold mu_ while they call
  // into an engine (RetryFailed waits for a round in progress).
  std::vector<std::shared_ptr<Runtime>> Runtimes();
  Status StartSync(const DaemonConfig& c);
  void StopSync();
  Status StartMetrics(const DaemonConfig& c);
  void Reload();
  void Supervise();
  HealthAnswer Health();
  std::string Metrics();
  void CountSocket(const std::string& op, const std::string& result);

  DaemonOptions options_;
  DaemonConfig config_;
  std::unique_ptr<engine::Store> store_;
  std::unique_ptr<SocketServer> socket_;
  std::unique_ptr<MetricsServer> metrics_;
  const int64_t started_ms_ = NowMs();

  std::mutex mu_;  // guards runtimes_ and stats_; taken by HTTP handlers and socket hooks
  std::vector<std::shared_ptr<Runtime>> runtimes_;
  std::map<std::string, std::shared_ptr<BackendStats>> stats_;  // survive reloads

  std::mutex counters_mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> socket_requests_;
  uint64_t reloads_ok_ = 0, reloads_failed_ = 0;
};

std::vector<std::shared_ptr<Daemon::Runtime>> Daemon::Runtimes() {
  std::lock_guard<std::mutex> lock(mu_);
  return runtimes_;
}

Result<std::shared_ptr<Daemon::Runtime>> Daemon::MakeRuntime(const std::string& name,
                                                             const DaemonConfig& c, bool first) {
  auto rt = std::make_shared<Runtime>();
  rt->name = name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<BackendStats>& stats = stats_[name];
    if (!stats) stats = std::make_shared<BackendStats>();
    rt->stats = stats;
  }
  const std::shared_ptr<BackendStats>& stats = rt->stats;
  http::HttpOptions ho;
  ho.connect_timeout_ms = static_cast<long>(c.connect_timeout_ms);
  ho.total_timeout_ms = static_cast<long>(c.request_timeout_ms);
  auto http = std::make_unique<CountingHttpClient>(http::NewCurlHttpClient(ho), stats, name);
  rt->http = http.get();
  if (name == "dynamodb") {
    dynamodb::DynamoConfig dc;
    dc.table = c.dynamodb_table;
    dc.user_id = store_->user_id();
    dc.region = c.dynamodb_region;
    dc.endpoint = c.dynamodb_endpoint;
    rt->backend = dynamodb::DynamoBackend::Create(std::move(dc), nullptr, std::move(http));
    if (!rt->backend) return Internal("could not set up the DynamoDB client");
  } else if (name == "chime") {
#ifdef TIDINGS_HAVE_CHIME
    chime::ChimeConfig cc;
    cc.app_instance_arn = c.chime_app_instance_arn;
    cc.user_arn = c.chime_user_arn;
    cc.region = c.chime_region;
    cc.endpoint = c.chime_endpoint;
    TIDINGS_ASSIGN_OR_RETURN(rt->backend,
                             chime::ChimeBackend::Create(std::move(cc), nullptr, std::move(http)));
#else
    return InvalidArgument(
        "this build of tidings has no Chime backend; remove \"chime\" from sync.backends");
#endif
  } else {
    return InvalidArgument("unknown backend " + name);
  }
  sync::SyncConfig sc;
  sc.active_poll_ms = c.active_poll_ms;
  sc.idle_poll_ms = c.idle_poll_ms;
  sc.base_backoff_ms = c.base_backoff_ms;
  sc.max_backoff_ms = c.max_backoff_ms;
  rt->engine = std::make_unique<sync::SyncEngine>(&store_->sync_log(), rt->backend.get(), sc);
  TIDINGS_RETURN_IF_ERROR(rt->engine->SetListener([name, first](const sync::SyncEvent& e) {
    using K = sync::SyncEvent::Kind;
    if (e.kind == K::kAuthError || e.kind == K::kStoreError) {
      Log(LogLevel::kError, "sync.stopped", {{"backend", name}, {"error", e.error.ToString()}});
    } else if (!first) {
      return;
    } else if (e.kind == K::kMessageState && e.state == engine::MessageState::kFailed) {
      Log(LogLevel::kWarn, "message.failed",
          {{"conversation", e.conversation_id},
           {"message", e.message_id},
           {"reason", e.failure_reason}});
    } else if (e.kind == K::kMessageAdded && LogEnabled(LogLevel::kDebug)) {
      Log(LogLevel::kDebug, "message.received",
          {{"conversation", e.conversation_id}, {"message", e.message_id}});
    }
  }));
  return rt;
}

Status Daemon::StartSync(const DaemonConfig& c) {
  std::vector<std::shared_ptr<Runtime>> fresh;
  for (const auto& name : c.backends) {
    TIDINGS_ASSIGN_OR_RETURN(auto rt, MakeRuntime(name, c, fresh.empty()));
    fresh.push_back(std::move(rt));
  }
  for (auto& rt : fresh) {
    TIDINGS_RETURN_IF_ERROR(rt->engine->Start());
    Log(LogLevel::kInfo, "sync.started",
        {{"backend", rt->name},
         {"active_poll_ms", std::to_string(c.active_poll_ms)},
         {"idle_poll_ms", std::to_string(c.idle_poll_ms)}});
  }
  std::lock_guard<std::mutex> lock(mu_);
  runtimes_ = std::move(fresh);
  return Status::Ok();
}

void Daemon::StopSync() {
  std::vector<std::shared_ptr<Runtime>> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old.swap(runtimes_);
  }
  // Stop() lets the request in flight finish; after the grace period it is
  // cancelled. Either way nothing of an abandoned answer is recorded and the
  // retry after restart is deduplicated by operation id.
  std::vector<std::future<void>> stops;
  for (auto& rt : old) {
    sync::SyncEngine* e = rt->engine.get();
    stops.push_back(std::async(std::launch::async, [e] { e->Stop(); }));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kStopGraceMs);
  for (size_t i = 0; i < stops.size(); ++i) {
    if (stops[i].wait_until(deadline) != std::future_status::ready) {
      Log(LogLevel::kInfo, "sync.abandoning_request", {{"backend", old[i]->name}});
      old[i]->http->Cancel();
    }
  }
  for (auto& f : stops) f.wait();
  for (auto& rt : old) Log(LogLevel::kInfo, "sync.stopped_cleanly", {{"backend", rt->name}});
  old.clear();  // engines before their backends (Runtime member order)
}

Status Daemon::StartMetrics(const DaemonConfig& c) {
  if (c.metrics_listen.empty()) return Status::Ok();
  TIDINGS_ASSIGN_OR_RETURN(ListenAddress addr, ParseListen(c.metrics_listen));
  auto server =
      std::make_unique<MetricsServer>([this] { return Health(); }, [this] { return Metrics(); });
  TIDINGS_ASSIGN_OR_RETURN(int port, server->Start(addr.host, addr.port));
  metrics_ = std::move(server);
  Log(LogLevel::kInfo, "metrics.listening",
      {{"address", addr.host}, {"port", std::to_string(port)}});
  return Status::Ok();
}

HealthAnswer Daemon::Health() {
  std::lock_guard<std::mutex> lock(mu_);
  HealthAnswer h;
  if (runtimes_.empty()) return {false, "sync is not running (starting or reloading)"};
  for (auto& rt : runtimes_) {
    Status err = rt->engine->last_error();
    if (!err.ok()) {
      h.healthy = false;
      h.reason += (h.reason.empty() ? "" : "; ") + rt->name + " stopped: " + err.ToString();
    } else if (!rt->engine->running()) {
      h.healthy = false;
      h.reason += (h.reason.empty() ? "" : "; ") + rt->name + " is not running";
    }
  }
  return h;
}

void Daemon::CountSocket(const std::string& op, const std::string& result) {
  std::lock_guard<std::mutex> lock(counters_mu_);
  ++socket_requests_[{op, result}];
}

std::string Daemon::Metrics() {
  std::ostringstream o;
  const int64_t now = NowMs();
  auto header = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  {
    // Exact, store-wide (entries wait until acknowledged).
    auto outbox = store_->CountOutbox();
    const engine::OutboxCounts counts = outbox.ok() ? *outbox : engine::OutboxCounts{};
    header("tidings_outbox_entries", "gauge", "Operations waiting in the store's outbox.");
    o << "tidings_outbox_entries{state=\"pending\"} " << counts.pending << '\n'
      << "tidings_outbox_entries{state=\"failed\"} " << counts.failed << '\n';
  }
  struct Row {
    std::string name;
    std::vector<sync::ConversationStatus> snapshot;
    bool up;
    std::shared_ptr<BackendStats> stats;
  };
  std::vector<Row> rows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& rt : runtimes_) {
      rows.push_back({rt->name, rt->engine->Snapshot(),
                      rt->engine->running() && rt->engine->last_error().ok(), rt->stats});
    }
  }
  header("tidings_sync_up", "gauge",
         "1 while the backend's sync runs, 0 when stopped by an error.");
  for (auto& r : rows)
    o << "tidings_sync_up{backend=\"" << r.name << "\"} " << (r.up ? 1 : 0) << '\n';
  header("tidings_outbox_depth", "gauge", "Operations the backend has not accepted yet.");
  for (auto& r : rows) {
    auto waiting = store_->CountOutbox("", r.name);
    o << "tidings_outbox_depth{backend=\"" << r.name << "\"} "
      << (waiting.ok() ? waiting->total() : 0) << '\n';
  }
  header("tidings_pull_lag_seconds", "gauge",
         "Seconds since the least recently synced conversation last synced without error.");
  for (auto& r : rows) {
    int64_t oldest = 0;
    for (auto& s : r.snapshot) {
      if (s.stopped) continue;
      int64_t t = s.last_success_ms > 0 ? s.last_success_ms : started_ms_;
      oldest = oldest == 0 ? t : std::min(oldest, t);
    }
    if (oldest == 0) {
      int64_t ok = r.stats->last_ok_ms.load();
      oldest = ok > 0 ? ok : started_ms_;
    }
    o << "tidings_pull_lag_seconds{backend=\"" << r.name << "\"} " << Seconds(now - oldest) << '\n';
  }
  header("tidings_last_success_timestamp_seconds", "gauge",
         "Unix time of the backend's last successful answer (0: none since start).");
  for (auto& r : rows) {
    o << "tidings_last_success_timestamp_seconds{backend=\"" << r.name << "\"} "
      << Seconds(r.stats->last_ok_ms.load()) << '\n';
  }
  header("tidings_conversations", "gauge", "Conversations synced with the backend.");
  for (auto& r : rows) {
    o << "tidings_conversations{backend=\"" << r.name << "\"} " << r.snapshot.size() << '\n';
  }
  header("tidings_conversations_failing", "gauge",
         "Conversations whose last round failed (backing off) or that stopped.");
  for (auto& r : rows) {
    size_t n = 0;
    for (auto& s : r.snapshot) n += (!s.last_error.empty() || s.stopped) ? 1 : 0;
    o << "tidings_conversations_failing{backend=\"" << r.name << "\"} " << n << '\n';
  }
  header("tidings_backend_requests_total", "counter", "HTTP requests sent to the backend.");
  for (auto& r : rows) {
    o << "tidings_backend_requests_total{backend=\"" << r.name << "\"} " << r.stats->requests.load()
      << '\n';
  }
  header("tidings_backend_retries_total", "counter",
         "Requests that repeated an identical request that had failed.");
  for (auto& r : rows) {
    o << "tidings_backend_retries_total{backend=\"" << r.name << "\"} " << r.stats->retries.load()
      << '\n';
  }
  header("tidings_backend_errors_total", "counter",
         "Failed requests by kind (status code name: unavailable, deadline_exceeded, "
         "unauthenticated, aborted, ...).");
  for (auto& r : rows) {
    for (auto& [kind, n] : r.stats->Errors()) {
      o << "tidings_backend_errors_total{backend=\"" << r.name << "\",kind=\"" << kind << "\"} "
        << n << '\n';
    }
  }
  {
    std::lock_guard<std::mutex> lock(counters_mu_);
    header("tidings_socket_requests_total", "counter",
           "Requests from local clients on the daemon socket, by operation and result.");
    for (auto& [k, n] : socket_requests_) {
      o << "tidings_socket_requests_total{op=\"" << k.first << "\",result=\"" << k.second << "\"} "
        << n << '\n';
    }
    header("tidings_config_reloads_total", "counter", "SIGHUP reloads by result.");
    o << "tidings_config_reloads_total{result=\"ok\"} " << reloads_ok_ << '\n'
      << "tidings_config_reloads_total{result=\"failed\"} " << reloads_failed_ << '\n';
  }
  header("tidings_daemon_start_time_seconds", "gauge", "Unix time the daemon started.");
  o << "tidings_daemon_start_time_seconds " << Seconds(started_ms_) << '\n';
  return o.str();
}

void Daemon::Supervise() {
  const int64_t now = NowMs();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& rt : runtimes_) {
    Status err = rt->engine->last_error();
    if (err.ok()) {
      rt->failed_since_ms = 0;
      continue;
    }
    if (rt->failed_since_ms == 0) {
      rt->failed_since_ms = now;
      Log(LogLevel::kError, "sync.waiting_to_restart",
          {{"backend", rt->name},
           {"error", err.ToString()},
           {"restart_in_ms", std::to_string(config_.restart_after_error_ms)},
           {"what_to_do", err.code() == Code::kUnauthenticated
                              ? "fix the AWS credentials, then send SIGHUP"
                              : "check the store and disk, then send SIGHUP"}});
      continue;
    }
    if (now - rt->failed_since_ms >= config_.restart_after_error_ms) {
      Log(LogLevel::kInfo, "sync.restarting", {{"backend", rt->name}});
      rt->engine->Stop();
      rt->failed_since_ms = 0;
      Status s = rt->engine->Start();
      if (!s.ok()) Log(LogLevel::kError, "sync.restart_failed", {{"error", s.ToString()}});
    }
  }
}

void Daemon::Reload() {
  auto fresh = Resolve(options_);
  Status s = fresh.ok() ? CheckCredentials(*fresh) : fresh.status();
  if (!s.ok()) {
    {
      std::lock_guard<std::mutex> lock(counters_mu_);
      ++reloads_failed_;
    }
    Log(LogLevel::kError, "config.reload_failed",
        {{"error", s.message()}, {"what_to_do", "fix the file; still running on the old one"}});
    return;
  }
  DaemonConfig next = std::move(fresh).value();
  // What belongs to the open store needs a restart.
  if (next.store_path != config_.store_path || next.key_file != config_.key_file ||
      next.durability != config_.durability || next.socket_enabled != config_.socket_enabled) {
    Log(LogLevel::kWarn, "config.restart_needed",
        {{"keys", "store.path, store.key_file, store.durability, socket.enabled"},
         {"what_to_do", "restart the daemon to apply them; the old values stay in effect"}});
    next.store_path = config_.store_path;
    next.key_file = config_.key_file;
    next.durability = config_.durability;
    next.socket_enabled = config_.socket_enabled;
  }
  SetLogLevel(next.log_level);
  SetLogFormat(next.log_format);
  if (next.metrics_listen != config_.metrics_listen ||
      next.metrics_allow_non_loopback != config_.metrics_allow_non_loopback) {
    if (metrics_) metrics_->Stop();
    metrics_.reset();
    Status m = StartMetrics(next);
    if (!m.ok()) {
      Log(LogLevel::kError, "metrics.failed", {{"error", m.message()}});
      next.metrics_listen = config_.metrics_listen;
      if (!StartMetrics(config_).ok()) next.metrics_listen.clear();
    }
  }
  if (SyncFingerprint(next) != SyncFingerprint(config_)) {
    StopSync();
    Status st = store_->sync_log().SetOutboxBackends(next.backends);
    if (st.ok()) st = StartSync(next);
    if (!st.ok()) {
      Log(LogLevel::kError, "config.reload_failed",
          {{"error", st.message()}, {"what_to_do", "fix the file; still running on the old one"}});
      StopSync();
      Status back = store_->sync_log().SetOutboxBackends(config_.backends);
      if (back.ok()) back = StartSync(config_);
      if (!back.ok()) Log(LogLevel::kError, "sync.start_failed", {{"error", back.message()}});
      std::lock_guard<std::mutex> lock(counters_mu_);
      ++reloads_failed_;
      return;
    }
  }
  config_ = std::move(next);
  // A reload is also how an operator says "credentials fixed": engines that
  // an error stopped start again now instead of after restart_after_error_ms.
  for (auto& rt : Runtimes()) {
    if (rt->engine->last_error().ok()) continue;
    Log(LogLevel::kInfo, "sync.restarting", {{"backend", rt->name}, {"why", "SIGHUP"}});
    rt->engine->Stop();
    rt->failed_since_ms = 0;
    Status restarted = rt->engine->Start();
    if (!restarted.ok()) {
      Log(LogLevel::kError, "sync.restart_failed", {{"error", restarted.ToString()}});
    }
  }
  {
    std::lock_guard<std::mutex> lock(counters_mu_);
    ++reloads_ok_;
  }
  Log(LogLevel::kInfo, "config.reloaded",
      {{"backends", Join(config_.backends)},
       {"log_level", config_.log_level},
       {"metrics", config_.metrics_listen.empty() ? "off" : config_.metrics_listen}});
}

Status Daemon::Run() {
  TIDINGS_ASSIGN_OR_RETURN(config_, Resolve(options_));
  SetLogLevel(config_.log_level);
  SetLogFormat(config_.log_format);
  TIDINGS_RETURN_IF_ERROR(CheckCredentials(config_));

  engine::StoreOptions so;
  so.read_only = options_.check_config;
  so.durability =
      config_.durability == "relaxed" ? engine::Durability::kRelaxed : engine::Durability::kSync;
  // A writer that holds the store for a moment (`tidings send` while no
  // daemon ran, an app at boot) delays the start instead of failing it.
  const int64_t busy_until = NowMs() + kBusyWaitMs;
  for (bool logged = false;;) {
    auto opened = engine::Store::Open(config_.store_path, KeyFor(config_), so);
    if (opened.ok()) {
      store_ = std::move(opened).value();
      break;
    }
    if (opened.status().code() != Code::kBusy || NowMs() >= busy_until) return opened.status();
    if (!logged) {
      Log(LogLevel::kInfo, "store.busy_waiting",
          {{"store", config_.store_path}, {"wait_ms", std::to_string(kBusyWaitMs)}});
      logged = true;
    }
    timespec wait{0, 50'000'000};
    int sig = ::sigtimedwait(&HandledSignals(), nullptr, &wait);
    if (sig == SIGTERM || sig == SIGINT) return Status::Ok();
  }
  if (options_.check_config) {
    std::printf("configuration OK: store %s (user %s), backends %s, metrics %s, socket %s\n",
                config_.store_path.c_str(), store_->user_id().c_str(),
                Join(config_.backends).c_str(),
                config_.metrics_listen.empty() ? "off" : config_.metrics_listen.c_str(),
                config_.socket_enabled ? "on" : "off");
    return Status::Ok();
  }
  // With several backends (deliver through Chime, persist through
  // DynamoDB) an operation leaves the outbox only once every one accepted it.
  TIDINGS_RETURN_IF_ERROR(store_->sync_log().SetOutboxBackends(config_.backends));
  TIDINGS_RETURN_IF_ERROR(StartMetrics(config_));
  if (config_.socket_enabled) {
    ExecuteHooks hooks;
    hooks.poke = [this] {
      for (auto& rt : Runtimes()) rt->engine->Poke();
    };
    hooks.retry_failed = [this](uint64_t seq) {
      auto rts = Runtimes();
      if (rts.empty()) return sync::RetryFailedOperation(store_->sync_log(), seq);
      Status s = rts[0]->engine->RetryFailed(seq);
      for (size_t i = 1; i < rts.size(); ++i) rts[i]->engine->Poke();
      return s;
    };
    hooks.discard_failed = [this](uint64_t seq) {
      auto rts = Runtimes();
      if (rts.empty()) return sync::DiscardFailedOperation(store_->sync_log(), seq);
      return rts[0]->engine->DiscardFailed(seq);
    };
    socket_ = std::make_unique<SocketServer>(
        store_.get(), hooks,
        [this](const std::string& op, const std::string& r) { CountSocket(op, r); });
    Status s = socket_->Start();
    if (!s.ok()) {
      if (metrics_) metrics_->Stop();
      return s;
    }
  }
  Status started = StartSync(config_);
  if (!started.ok()) {
    if (socket_) socket_->Stop();
    if (metrics_) metrics_->Stop();
    return started;
  }
  Log(LogLevel::kInfo, "daemon.started",
      {{"pid", std::to_string(::getpid())},
       {"store", config_.store_path},
       {"backends", Join(config_.backends)},
       {"socket", socket_ ? socket_->path() : "off"},
       {"metrics", config_.metrics_listen.empty() ? "off" : config_.metrics_listen},
       {"config", config_.source.empty() ? "none" : config_.source}});

  for (;;) {
    timespec timeout{0, 250'000'000};
    int sig = ::sigtimedwait(&HandledSignals(), nullptr, &timeout);
    if (sig == SIGHUP) {
      Log(LogLevel::kInfo, "daemon.reloading", {{"signal", "SIGHUP"}});
      Reload();
    } else if (sig == SIGTERM || sig == SIGINT) {
      Log(LogLevel::kInfo, "daemon.stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
      break;
    }
    Supervise();
  }
  const int64_t stop_start = NowMs();
  // New writes stop first (those being executed are committed and answered),
  // then sync, then the endpoints; the store closes last.
  if (socket_) socket_->Stop();
  StopSync();
  if (metrics_) metrics_->Stop();
  store_.reset();
  Log(LogLevel::kInfo, "daemon.stopped", {{"shutdown_ms", std::to_string(NowMs() - stop_start)}});
  return Status::Ok();
}

}  // namespace

Status RunDaemon(const DaemonOptions& options) {
  // Before any thread exists, so every thread inherits the mask and only
  // sigtimedwait in Run() sees these signals.
  pthread_sigmask(SIG_BLOCK, &HandledSignals(), nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  Daemon d(options);
  return d.Run();
}

}  // namespace tidings::daemon
