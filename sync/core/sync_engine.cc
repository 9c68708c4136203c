#include "sync/core/sync_engine.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "common/clock.h"

namespace tidings::sync {

namespace {

Reconciler::Random DefaultRandom() {
  auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
  return [rng] { return (*rng)(); };
}

// Compared to decide whether a status changed enough to report it.
std::string Fingerprint(const ConversationStatus& s) {
  return s.cursor + '\0' + std::to_string(s.outbox_depth) + '\0' + std::to_string(s.outbox_failed) +
         '\0' + s.last_error + '\0' + std::to_string(s.next_attempt_ms) + '\0' +
         (s.stopped ? "1" : "0");
}

}  // namespace

SyncEngine::SyncEngine(engine::SyncLog* store, Backend* backend, SyncConfig config)
    : SyncEngine(store, backend, config, WallMs, DefaultRandom()) {}

SyncEngine::SyncEngine(engine::SyncLog* store, Backend* backend, SyncConfig config,
                       Reconciler::Clock clock, Reconciler::Random random)
    : store_(store), backend_(backend), config_(config), clock_(clock) {
  reconciler_ =
      std::make_unique<Reconciler>(store_, backend_, config_, std::move(clock), std::move(random));
  reconciler_->set_cancelled([this] { return stopping_.load(std::memory_order_relaxed); });
}

SyncEngine::~SyncEngine() { Stop(); }

Status SyncEngine::SetListener(Listener listener) {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_) return FailedPrecondition("set the listener before Start()");
  listener_ = std::move(listener);
  return Status::Ok();
}

Status SyncEngine::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_) return FailedPrecondition("sync is already running");
  running_ = true;
  stopping_ = false;
  push_now_ = true;
  last_error_ = Status::Ok();
  relay_ = std::make_shared<Relay>();
  relay_->engine = this;
  subscription_ = store_->Subscribe([relay = relay_](const engine::ChangeEvent& e) {
    std::lock_guard<std::mutex> relay_lock(relay->mu);
    if (relay->engine != nullptr) relay->engine->OnStoreEvent(e);
  });
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void SyncEngine::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  store_->Unsubscribe(subscription_);
  {
    std::lock_guard<std::mutex> lock(relay_->mu);  // waits out a callback in flight
    relay_->engine = nullptr;
  }
  {
    // Re-list conversations on the next Start. (Lock order: reconciler_mu_
    // before mu_, never the other way.)
    std::lock_guard<std::mutex> rlock(reconciler_mu_);
    next_listing_ms_ = 0;
  }
  std::lock_guard<std::mutex> lock(mu_);
  running_ = false;
  stopping_ = false;
}

bool SyncEngine::running() {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

void SyncEngine::Poke() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    push_now_ = true;
  }
  cv_.notify_all();
}

void SyncEngine::PokeConversation(const std::string& conversation_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_.insert(conversation_id);
  }
  cv_.notify_all();
}

void SyncEngine::Emit(const SyncEvent& e) {
  if (listener_) listener_(e);
}

void SyncEngine::OnStoreEvent(const engine::ChangeEvent& e) {
  using Kind = engine::ChangeEvent::Kind;
  switch (e.kind) {
    case Kind::kOutboxChanged:
      // A local write queued something: push now. The sync thread's own
      // outbox writes (acks, failures) must not wake it again.
      if (std::this_thread::get_id() != sync_thread_id_.load()) {
        PokeConversation(e.conversation_id);
      }
      return;
    case Kind::kMessageAdded:
      Emit({.kind = SyncEvent::Kind::kMessageAdded,
            .conversation_id = e.conversation_id,
            .message_id = e.message_id});
      return;
    case Kind::kMessageChanged:
      Emit({.kind = SyncEvent::Kind::kMessageChanged,
            .conversation_id = e.conversation_id,
            .message_id = e.message_id});
      return;
    case Kind::kMessageStateChanged: {
      SyncEvent out{.kind = SyncEvent::Kind::kMessageState,
                    .conversation_id = e.conversation_id,
                    .message_id = e.message_id};
      auto m = store_->Get(e.message_id);
      if (m.ok()) {
        out.state = m->state;
        out.failure_reason = m->failure_reason;
      }
      Emit(out);
      return;
    }
    case Kind::kConversationChanged:
      return;
  }
}

void SyncEngine::Report(const std::string& conv) {
  ConversationStatus st = reconciler_->GetStatus(conv);
  std::string fp = Fingerprint(st);
  auto& last = last_reported_[conv];
  const bool changed = last != fp;
  last = std::move(fp);
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_[conv] = st;
  }
  if (changed) Emit({.kind = SyncEvent::Kind::kStatusChanged, .conversation_id = conv});
}

Status SyncEngine::SyncOnce() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) return FailedPrecondition("sync is running in the background; Poke() it");
  }
  std::lock_guard<std::mutex> rlock(reconciler_mu_);
  TIDINGS_ASSIGN_OR_RETURN(auto convs, reconciler_->Conversations());
  for (const auto& c : convs) {
    Status s;
    do {  // bounded rounds until caught up
      s = reconciler_->Push(c);
      if (s.ok()) s = reconciler_->Pull(c);
    } while (s.ok() && reconciler_->HasMore(c));
    Report(c);
    TIDINGS_RETURN_IF_ERROR(s);
  }
  return Status::Ok();
}

std::vector<ConversationStatus> SyncEngine::Snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ConversationStatus> out;
  for (const auto& [conv, st] : snapshot_) out.push_back(st);
  return out;
}

Status SyncEngine::last_error() {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

Status SyncEngine::RetryFailed(uint64_t seq) {
  {
    std::lock_guard<std::mutex> rlock(reconciler_mu_);
    TIDINGS_RETURN_IF_ERROR(reconciler_->RetryFailed(seq));
  }
  Poke();
  return Status::Ok();
}

Status SyncEngine::DiscardFailed(uint64_t seq) {
  std::lock_guard<std::mutex> rlock(reconciler_mu_);
  return reconciler_->DiscardFailed(seq);
}

Status SyncEngine::Resume(const std::string& conversation_id) {
  {
    std::lock_guard<std::mutex> rlock(reconciler_mu_);
    TIDINGS_RETURN_IF_ERROR(reconciler_->Resume(conversation_id));
  }
  Poke();
  return Status::Ok();
}

Result<int64_t> SyncEngine::Round(bool push_all, const std::set<std::string>& dirty) {
  std::lock_guard<std::mutex> rlock(reconciler_mu_);
  int64_t now = clock_();
  const bool unknown = std::any_of(dirty.begin(), dirty.end(), [this](const std::string& c) {
    return std::find(convs_.begin(), convs_.end(), c) == convs_.end();
  });
  if (now >= next_listing_ms_ || convs_.empty() || unknown) {
    TIDINGS_ASSIGN_OR_RETURN(convs_, reconciler_->Conversations());
    // Listing is how a device learns of conversations others made (and of
    // the sealed logs it was invited to): every 10 polls, at most idle_poll_ms.
    next_listing_ms_ = now + std::min(config_.idle_poll_ms, 10 * config_.active_poll_ms);
  }
  int64_t wake = next_listing_ms_;
  for (const auto& c : convs_) {
    if (stopping_) return Cancelled("sync stopped");
    Status s;
    if (push_all || dirty.count(c)) s = reconciler_->Push(c);
    if (s.ok() && reconciler_->NextPollMs(c) <= clock_()) {
      s = reconciler_->Push(c);
      if (s.ok()) s = reconciler_->Pull(c);
    }
    Report(c);
    TIDINGS_RETURN_IF_ERROR(s);
    wake = std::min(wake, reconciler_->NextPollMs(c));
  }
  return wake;
}

void SyncEngine::Run() {
  sync_thread_id_ = std::this_thread::get_id();
  for (;;) {
    bool push_all;
    std::set<std::string> dirty;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
      push_all = push_now_;
      push_now_ = false;
      dirty.swap(dirty_);
    }
    auto wake = Round(push_all, dirty);
    if (!wake.ok() && wake.status().code() == Code::kCancelled) break;
    std::unique_lock<std::mutex> lock(mu_);
    if (!wake.ok()) {
      // Auth errors stop sync until the app supplies new credentials and
      // restarts it; storage errors are surfaced the same way.
      last_error_ = wake.status();
      lock.unlock();
      Emit({.kind = wake.status().code() == Code::kUnauthenticated ? SyncEvent::Kind::kAuthError
                                                                   : SyncEvent::Kind::kStoreError,
            .error = wake.status()});
      lock.lock();
      cv_.wait(lock, [this] { return stopping_.load(); });
      break;
    }
    const int64_t wait_ms = std::clamp<int64_t>(*wake - clock_(), 1, config_.idle_poll_ms);
    cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                 [this] { return stopping_.load() || push_now_ || !dirty_.empty(); });
  }
  sync_thread_id_ = std::thread::id();
}

}  // namespace tidings::sync
