#include "sync/core/sync_engine.h"

#include <chrono>
#include <random>

namespace tidings::sync {

namespace {
int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

SyncEngine::SyncEngine(engine::Store* store, Backend* backend, SyncConfig config)
    : store_(store), backend_(backend), config_(config) {
  auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
  reconciler_ =
      std::make_unique<Reconciler>(store_, backend_, config_, NowMs, [rng] { return (*rng)(); });
}

SyncEngine::~SyncEngine() { Stop(); }

Status SyncEngine::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_) return FailedPrecondition("sync is already running");
  running_ = true;
  stop_ = false;
  push_now_ = true;
  last_error_ = Status::Ok();
  subscription_ = store_->Subscribe([this](const engine::ChangeEvent& e) {
    if (e.kind == engine::ChangeEvent::Kind::kOutboxChanged) Poke();
  });
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void SyncEngine::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  store_->Unsubscribe(subscription_);
  std::lock_guard<std::mutex> lock(mu_);
  running_ = false;
}

void SyncEngine::Poke() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    push_now_ = true;
  }
  cv_.notify_all();
}

Status SyncEngine::SyncOnce() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) return FailedPrecondition("sync is running in the background; stop it first");
  }
  Status s = reconciler_->SyncAll();
  auto convs = reconciler_->Conversations();
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_.clear();
  if (convs.ok()) {
    for (const auto& c : *convs) snapshot_.push_back(reconciler_->GetStatus(c));
  }
  return s;
}

std::vector<ConversationStatus> SyncEngine::Snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

Status SyncEngine::last_error() {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

void SyncEngine::Run() {
  std::vector<std::string> convs;
  int64_t next_listing = 0;
  for (;;) {
    bool push_now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      push_now = push_now_;
      push_now_ = false;
    }
    int64_t now = NowMs();
    Status error;
    if (now >= next_listing || push_now) {
      auto listed = reconciler_->Conversations();
      if (listed.ok()) {
        convs = *listed;
        next_listing = now + config_.idle_poll_ms;
      } else {
        error = listed.status();
      }
    }
    int64_t wake = now + config_.idle_poll_ms;
    std::vector<ConversationStatus> snapshot;
    for (const auto& c : convs) {
      if (!error.ok()) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
      }
      if (push_now) error = reconciler_->Push(c);
      if (error.ok() && reconciler_->NextPollMs(c) <= NowMs()) {
        error = reconciler_->Push(c);
        if (error.ok()) error = reconciler_->Pull(c);
      }
      wake = std::min(wake, reconciler_->NextPollMs(c));
      snapshot.push_back(reconciler_->GetStatus(c));
    }
    std::unique_lock<std::mutex> lock(mu_);
    snapshot_ = std::move(snapshot);
    if (!error.ok()) {
      // Auth errors stop sync until the app supplies new credentials and
      // restarts it; storage errors are surfaced the same way.
      last_error_ = error;
      running_ = true;  // Stop() still joins
      cv_.wait(lock, [this] { return stop_; });
      return;
    }
    const int64_t wait_ms = std::max<int64_t>(10, wake - NowMs());
    cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [this] { return stop_ || push_now_; });
  }
}

}  // namespace tidings::sync
