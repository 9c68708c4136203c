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

#include "common/clock.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/metrics_server.h"
#include "daemon/process_secrets.h"
#include "daemon/socket_server.h"
#include "tidings/tidings_attachments.hpp"
#include "tidings/tidings_sync.hpp"

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

std::string Join(const std::vector<std::string>& v, const char* sep = ",") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
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
  if (c.key_file.empty() && !EnvPassphrase()) {
    // The key `tidings init` made beside the store, as every command finds it.
    const std::string beside = KeyFileBesideStore(c.store_path);
    if (::access(beside.c_str(), F_OK) != 0) {
      return InvalidArgument("no key for the store: none at " + beside +
                             "; set store.key_file in " + where +
                             ", or pass --key-file / set TIDINGS_KEY_FILE, or set "
                             "TIDINGS_PASSPHRASE");
    }
    c.key_file = beside;
  }
  return c;
}

// Missing AWS credentials are a configuration error: found now, not at the
// first request hours later.
Status CheckCredentials(const DaemonConfig& c) {
  api::Status creds = api::CheckAwsCredentials();
  if (!creds.ok()) {
    return InvalidArgument(
        "no AWS credentials for the " + Join(c.backends, " and ") + " backend: " + creds.message() +
        ". Under systemd, put them in the unit's EnvironmentFile (docs/operations.md)");
  }
  return Status::Ok();
}

api::Key KeyFor(const DaemonConfig& c) {
  if (!c.key_file.empty()) return api::Key::File(c.key_file);
  return api::Key::Passphrase(EnvPassphrase().value_or(""));
}

// Counters of a backend over handles that were closed (reloads), so the
// metrics' counters keep counting from the daemon's start.
struct CarriedCounters {
  uint64_t requests = 0;
  uint64_t retries = 0;
  int64_t last_success_ms = 0;
  std::map<tidings_code, uint64_t> errors;

  void Add(const api::SyncBackend& b) {
    requests += b.requests;
    retries += b.retries;
    last_success_ms = std::max(last_success_ms, b.last_success_ms);
    for (const auto& [code, n] : b.errors) errors[code] += n;
  }
  void AddTo(api::SyncBackend* b) const {
    b->requests += requests;
    b->retries += retries;
    b->last_success_ms = std::max(last_success_ms, b->last_success_ms);
    for (const auto& [code, n] : errors) b->errors[code] += n;
  }
};

void LogSyncEvent(const api::SyncEvent& e) {
  switch (e.kind) {
    case TIDINGS_SYNC_STOPPED:
      Log(LogLevel::kError, "sync.stopped",
          {{"backend", e.backend}, {"error", e.error.ToString()}});
      break;
    case TIDINGS_SYNC_MESSAGE_FAILED:
      Log(LogLevel::kWarn, "message.failed",
          {{"conversation", e.conversation_id}, {"message", e.message_id}, {"reason", e.message}});
      break;
    case TIDINGS_SYNC_MESSAGE_RECEIVED:
      if (LogEnabled(LogLevel::kDebug)) {
        Log(LogLevel::kDebug, "message.received",
            {{"conversation", e.conversation_id}, {"message", e.message_id}});
      }
      break;
    case TIDINGS_SYNC_REQUEST_ABANDONED:
      Log(LogLevel::kInfo, "sync.abandoning_request", {{"backend", e.backend}});
      break;
    case TIDINGS_SYNC_REALTIME:  // the reason never holds a URL, key or message text
      if (e.error.ok()) {
        Log(LogLevel::kInfo, "realtime.up", {{"backend", e.backend}});
      } else {
        Log(LogLevel::kWarn, "realtime.down", {{"backend", e.backend}, {"reason", e.message}});
      }
      break;
    case TIDINGS_SYNC_TYPING:
      break;
  }
}

// The sync-relevant part of a configuration: a change here rebuilds engines.
std::string SyncFingerprint(const DaemonConfig& c) {
  std::ostringstream o;
  o << Join(c.backends) << '|' << c.active_poll_ms << '|' << c.idle_poll_ms << '|'
    << c.base_backoff_ms << '|' << c.max_backoff_ms << '|' << c.connect_timeout_ms << '|'
    << c.request_timeout_ms << '|' << c.dynamodb_table << '|' << c.dynamodb_region << '|'
    << c.dynamodb_endpoint << '|' << c.chime_app_instance_arn << '|' << c.chime_user_arn << '|'
    << c.chime_region << '|' << c.chime_endpoint << '|' << c.s3_bucket << '|' << c.s3_region << '|'
    << c.s3_endpoint << '|' << c.s3_path_style << '|' << c.s3_auto_fetch_max_bytes;
  return o.str();
}

class Daemon {
 public:
  explicit Daemon(DaemonOptions options) : options_(std::move(options)) {}
  Status Run();

 private:
  // Opens the store, waiting a while if another writer holds it. Sets *stop
  // when a signal asked to stop meanwhile.
  Status OpenStore(bool* stop);
  Status StartSync(const DaemonConfig& c);
  void StopSync();
  std::shared_ptr<api::Sync> CurrentSync();
  Status StartSocket();
  Status StartMetrics(const DaemonConfig& c);
  void Reload();
  void Supervise();
  void Restart(api::Sync& sync, const std::string& backend, const char* why);
  HealthAnswer Health();
  std::string Metrics();
  void CountSocket(const std::string& op, const std::string& result);

  DaemonOptions options_;
  DaemonConfig config_;
  api::Store store_;
  std::unique_ptr<SocketServer> socket_;
  std::unique_ptr<MetricsServer> metrics_;
  const int64_t started_ms_ = WallMs();

  // Backends an error stopped, from the handle's STOPPED events: the
  // supervision restarts them without polling the handle.
  struct Stopped {
    api::Status error;
    int64_t since_ms = 0;
    bool logged = false;  // sync.waiting_to_restart
  };
  std::mutex stopped_mu_;
  std::map<std::string, Stopped> stopped_;  // REQUIRES: stopped_mu_

  std::mutex mu_;  // guards sync_ and carried_; taken by HTTP handlers and socket hooks
  std::shared_ptr<api::Sync> sync_;  // null while stopped (starting, reloading)
  std::map<std::string, CarriedCounters> carried_;

  std::mutex counters_mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> socket_requests_;
  uint64_t reloads_ok_ = 0, reloads_failed_ = 0;
};

std::shared_ptr<api::Sync> Daemon::CurrentSync() {
  std::lock_guard<std::mutex> lock(mu_);
  return sync_;
}

Status Daemon::StartSync(const DaemonConfig& c) {
  api::SyncOptions o;
  o.active_poll_ms = c.active_poll_ms;
  o.idle_poll_ms = c.idle_poll_ms;
  o.base_backoff_ms = c.base_backoff_ms;
  o.max_backoff_ms = c.max_backoff_ms;
  o.connect_timeout_ms = c.connect_timeout_ms;
  o.request_timeout_ms = c.request_timeout_ms;
  o.stop_grace_ms = kStopGraceMs;
  // With several backends (deliver through Chime, persist through
  // DynamoDB) an operation leaves the outbox only once every one accepted it.
  o.require_every_backend = true;
  auto opened = api::Sync::Open(store_, o);
  if (!opened.ok()) return FromApi(opened.status());
  auto sync = std::make_shared<api::Sync>(std::move(opened).value());
  for (const auto& name : c.backends) {
    api::Status added;
    if (name == "dynamodb") {
      added = sync->AddDynamoDb({c.dynamodb_table, c.dynamodb_region, c.dynamodb_endpoint});
    } else if (name == "chime") {
      added = sync->AddChime(
          {c.chime_app_instance_arn, c.chime_user_arn, c.chime_region, c.chime_endpoint});
    } else {
      return InvalidArgument("unknown backend " + name);
    }
    TIDINGS_RETURN_IF_ERROR(FromApi(added));
  }
  if (!c.s3_bucket.empty()) {
    TIDINGS_RETURN_IF_ERROR(FromApi(
        api::SetAttachmentStore(*sync, {c.s3_bucket, c.s3_region, c.s3_endpoint, c.s3_path_style,
                                        static_cast<uint64_t>(c.s3_auto_fetch_max_bytes)})));
  }
  TIDINGS_RETURN_IF_ERROR(FromApi(sync->SetListener([this](const api::SyncEvent& e) {
    LogSyncEvent(e);
    if (e.kind != TIDINGS_SYNC_STOPPED) return;
    std::lock_guard<std::mutex> lock(stopped_mu_);
    stopped_[e.backend] = Stopped{e.error, WallMs(), false};
  })));
  TIDINGS_RETURN_IF_ERROR(FromApi(sync->Start()));
  for (const auto& name : c.backends) {
    Log(LogLevel::kInfo, "sync.started",
        {{"backend", name},
         {"active_poll_ms", std::to_string(c.active_poll_ms)},
         {"idle_poll_ms", std::to_string(c.idle_poll_ms)}});
  }
  std::lock_guard<std::mutex> lock(mu_);
  sync_ = std::move(sync);
  return Status::Ok();
}

void Daemon::StopSync() {
  std::shared_ptr<api::Sync> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old.swap(sync_);
  }
  if (!old) return;
  // Requests in flight finish; after the grace period they are abandoned
  // (the handle reports it). Either way nothing of an abandoned answer is
  // recorded and the retry after restart is deduplicated by operation id.
  old->Stop().IgnoreError();
  {
    std::lock_guard<std::mutex> lock(stopped_mu_);
    stopped_.clear();  // a new handle starts every backend
  }
  auto backends = old->Backends();
  if (!backends.ok()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& b : *backends) {
    carried_[b.name].Add(b);
    Log(LogLevel::kInfo, "sync.stopped_cleanly", {{"backend", b.name}});
  }
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
  auto sync = CurrentSync();
  if (!sync) return {false, "sync is not running (starting or reloading)"};
  auto backends = sync->Backends();
  if (!backends.ok()) return {false, backends.status().ToString()};
  HealthAnswer h;
  for (const auto& b : *backends) {
    if (!b.stopped_by.ok()) {
      h.healthy = false;
      h.reason += (h.reason.empty() ? "" : "; ") + b.name + " stopped: " + b.stopped_by.ToString();
    } else if (!b.running) {
      h.healthy = false;
      h.reason += (h.reason.empty() ? "" : "; ") + b.name + " is not running";
    }
  }
  return h;
}

void Daemon::CountSocket(const std::string& op, const std::string& result) {
  std::lock_guard<std::mutex> lock(counters_mu_);
  ++socket_requests_[{op, result}];
}

std::string Daemon::Metrics() {
  MetricsInput in;
  in.now_ms = WallMs();
  in.started_ms = started_ms_;
  if (auto outbox = store_.CountOutbox(); outbox.ok()) {
    in.outbox_pending = outbox->pending;
    in.outbox_failed = outbox->failed;
  }
  if (auto sync = CurrentSync()) {
    if (auto backends = sync->Backends(); backends.ok()) in.backends = std::move(backends).value();
    if (auto status = sync->GetStatus(); status.ok()) in.conversations = std::move(status).value();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& b : in.backends) {
      if (auto it = carried_.find(b.name); it != carried_.end()) it->second.AddTo(&b);
    }
  }
  {
    std::lock_guard<std::mutex> lock(counters_mu_);
    in.socket_requests = socket_requests_;
    in.reloads_ok = reloads_ok_;
    in.reloads_failed = reloads_failed_;
  }
  return RenderMetrics(in);
}

void Daemon::Supervise() {
  auto sync = CurrentSync();
  if (!sync) return;
  const int64_t now = WallMs();
  std::vector<std::string> due;
  {
    std::lock_guard<std::mutex> lock(stopped_mu_);
    for (auto it = stopped_.begin(); it != stopped_.end();) {
      Stopped& st = it->second;
      if (!st.logged) {
        st.logged = true;
        Log(LogLevel::kError, "sync.waiting_to_restart",
            {{"backend", it->first},
             {"error", st.error.ToString()},
             {"restart_in_ms", std::to_string(config_.restart_after_error_ms)},
             {"what_to_do", st.error.code() == TIDINGS_UNAUTHENTICATED
                                ? "fix the AWS credentials, then send SIGHUP"
                                : "check the store and disk, then send SIGHUP"}});
      }
      if (now - st.since_ms < config_.restart_after_error_ms) {
        ++it;
        continue;
      }
      due.push_back(it->first);
      it = stopped_.erase(it);
    }
  }
  for (const auto& name : due) Restart(*sync, name, "");
}

void Daemon::Restart(api::Sync& sync, const std::string& backend, const char* why) {
  LogFields fields = {{"backend", backend}};
  if (*why != '\0') fields.emplace_back("why", why);
  Log(LogLevel::kInfo, "sync.restarting", fields);
  api::Status s = sync.Restart(backend);
  if (s.ok()) return;
  Log(LogLevel::kError, "sync.restart_failed", {{"backend", backend}, {"error", s.ToString()}});
  // Tried again after restart_after_error_ms, like a backend an error stopped.
  std::lock_guard<std::mutex> lock(stopped_mu_);
  stopped_[backend] = Stopped{s, WallMs(), /*logged=*/true};
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
      next.durability != config_.durability || next.socket_enabled != config_.socket_enabled ||
      next.attachment_quota_mb != config_.attachment_quota_mb) {
    Log(LogLevel::kWarn, "config.restart_needed",
        {{"keys",
          "store.path, store.key_file, store.durability, store.attachment_quota_mb, "
          "socket.enabled"},
         {"what_to_do", "restart the daemon to apply them; the old values stay in effect"}});
    next.store_path = config_.store_path;
    next.key_file = config_.key_file;
    next.durability = config_.durability;
    next.attachment_quota_mb = config_.attachment_quota_mb;
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
    Status st = StartSync(next);
    if (!st.ok()) {
      Log(LogLevel::kError, "config.reload_failed",
          {{"error", st.message()}, {"what_to_do", "fix the file; still running on the old one"}});
      StopSync();
      Status back = StartSync(config_);
      if (!back.ok()) Log(LogLevel::kError, "sync.start_failed", {{"error", back.message()}});
      std::lock_guard<std::mutex> lock(counters_mu_);
      ++reloads_failed_;
      return;
    }
  }
  config_ = std::move(next);
  // A reload is also how an operator says "credentials fixed": engines that
  // an error stopped start again now instead of after restart_after_error_ms.
  if (auto sync = CurrentSync()) {
    std::map<std::string, Stopped> stopped;
    {
      std::lock_guard<std::mutex> lock(stopped_mu_);
      stopped.swap(stopped_);
    }
    for (const auto& [name, st] : stopped) Restart(*sync, name, "SIGHUP");
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

Status Daemon::OpenStore(bool* stop) {
  api::OpenOptions o;
  o.read_only = options_.check_config;
  o.durability =
      config_.durability == "relaxed" ? TIDINGS_DURABILITY_RELAXED : TIDINGS_DURABILITY_SYNC;
  o.attachment_quota_bytes = config_.attachment_quota_mb == 0
                                 ? UINT64_MAX
                                 : static_cast<uint64_t>(config_.attachment_quota_mb) << 20;
  const api::Key key = KeyFor(config_);
  // A writer that holds the store for a moment (`tidings send` while no
  // daemon ran, an app at boot) delays the start instead of failing it.
  const int64_t busy_until = MonotonicMs() + kBusyWaitMs;
  for (bool logged = false;;) {
    auto opened = api::Store::Open(config_.store_path, key, o);
    if (opened.ok()) {
      store_ = std::move(opened).value();
      return Status::Ok();
    }
    if (opened.status().code() != TIDINGS_BUSY || MonotonicMs() >= busy_until) {
      return FromApi(opened.status());
    }
    if (!logged) {
      Log(LogLevel::kInfo, "store.busy_waiting",
          {{"store", config_.store_path}, {"wait_ms", std::to_string(kBusyWaitMs)}});
      logged = true;
    }
    timespec wait{0, 50'000'000};
    int sig = ::sigtimedwait(&HandledSignals(), nullptr, &wait);
    if (sig == SIGTERM || sig == SIGINT) {
      *stop = true;
      return Status::Ok();
    }
  }
}

Status Daemon::StartSocket() {
  ExecuteHooks hooks;
  hooks.poke = [this] {
    if (auto sync = CurrentSync()) sync->Poke().IgnoreError();
  };
  // While sync is stopped (a reload), the store's own calls do the same.
  hooks.retry_failed = [this](uint64_t seq) {
    auto sync = CurrentSync();
    return FromApi(sync ? sync->RetryFailed(seq) : store_.RetryFailed(seq));
  };
  hooks.discard_failed = [this](uint64_t seq) {
    auto sync = CurrentSync();
    return FromApi(sync ? sync->DiscardFailed(seq) : store_.DiscardFailed(seq));
  };
  hooks.typing = [this](const std::string& conversation) {
    auto sync = CurrentSync();
    if (!sync) return FailedPrecondition("sync is stopped (reloading): try again");
    return FromApi(sync->Typing(conversation));
  };
  socket_ = std::make_unique<SocketServer>(
      &store_, config_.store_path, hooks,
      [this](const std::string& op, const std::string& r) { CountSocket(op, r); });
  return socket_->Start();
}

Status Daemon::Run() {
  TIDINGS_ASSIGN_OR_RETURN(config_, Resolve(options_));
  SetLogLevel(config_.log_level);
  SetLogFormat(config_.log_format);
  TIDINGS_RETURN_IF_ERROR(CheckCredentials(config_));
  bool stop = false;
  TIDINGS_RETURN_IF_ERROR(OpenStore(&stop));
  if (stop) return Status::Ok();
  if (options_.check_config) {
    auto stats = store_.GetStats();
    if (!stats.ok()) return FromApi(stats.status());
    std::printf("configuration OK: store %s (user %s), backends %s, metrics %s, socket %s\n",
                config_.store_path.c_str(), stats->user_id.c_str(), Join(config_.backends).c_str(),
                config_.metrics_listen.empty() ? "off" : config_.metrics_listen.c_str(),
                config_.socket_enabled ? "on" : "off");
    return Status::Ok();
  }
  TIDINGS_RETURN_IF_ERROR(StartMetrics(config_));
  if (config_.socket_enabled) {
    Status s = StartSocket();
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
  const int64_t stop_start = MonotonicMs();
  // New writes stop first (those being executed are committed and answered),
  // then sync, then the endpoints; the store closes last.
  if (socket_) socket_->Stop();
  StopSync();
  if (metrics_) metrics_->Stop();
  store_.Close();
  Log(LogLevel::kInfo, "daemon.stopped",
      {{"shutdown_ms", std::to_string(MonotonicMs() - stop_start)}});
  return Status::Ok();
}

}  // namespace

Status RunDaemon(const DaemonOptions& options) {
  // Before any thread exists, so every thread inherits the mask and only
  // sigtimedwait in Run() sees these signals.
  pthread_sigmask(SIG_BLOCK, &HandledSignals(), nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  DisableCoreDumps();  // main did too; a daemon embedded elsewhere needs it as well
  Daemon d(options);
  return d.Run();
}

}  // namespace tidings::daemon
