#include "sync/core/sync_engine.h"

#include <algorithm>
#include <chrono>
#include <limits>
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
         (s.stopped ? "1" : "0") + (s.filling_history ? "1" : "0");
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

Status SyncEngine::SetAttachmentTransfers(AttachmentTransfers* uploader) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) return FailedPrecondition("set the attachment transfers before Start()");
  }
  // Not under mu_: rounds take reconciler_mu_ first, then mu_ to report.
  std::lock_guard<std::mutex> rec_lock(reconciler_mu_);
  reconciler_->set_attachment_transfers(uploader);
  uploader_ = uploader;
  return Status::Ok();
}

Status SyncEngine::Start() {
  std::lock_guard<std::mutex> starting(start_stop_mu_);
  if (running()) return FailedPrecondition("sync is already running");
  // Uploads run on the transfers' thread while this engine runs; an upload's
  // end pushes its conversation. Registered before mu_ is taken (the waker
  // takes it) and before the thread starts, so that no round uploads here.
  if (uploader_ != nullptr) {
    uploader_->AddUploadWaker(this, [this](const std::string& c) { PokeConversation(c); });
  }
  std::lock_guard<std::mutex> lock(mu_);
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
  // Nothing of an earlier run's push channel is taken for this one.
  events_.clear();
  events_overflow_ = false;
  typing_.clear();
  realtime_ = RealtimeStatus{.detail = "starting"};
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void SyncEngine::Stop() {
  std::lock_guard<std::mutex> stopping(start_stop_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (uploader_ != nullptr) uploader_->RemoveUploadWaker(this);
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
    retry_now_ = true;
    pull_all_now_ = true;  // the app came back: whatever a stale socket missed
  }
  backend_->PokeRealtime();
  cv_.notify_all();
}

Status SyncEngine::SendTyping(const std::string& conversation_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) return FailedPrecondition("sync is not running: start it to send typing");
    const int64_t now = clock_();
    auto [it, first] = typing_sent_.try_emplace(conversation_id, now);
    if (!first) {
      if (now - it->second < kTypingIntervalMs && now >= it->second) return Status::Ok();
      it->second = now;
    }
    typing_.insert(conversation_id);
  }
  cv_.notify_all();
  return Status::Ok();
}

RealtimeStatus SyncEngine::realtime() {
  std::lock_guard<std::mutex> lock(mu_);
  return realtime_;
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
  // Bounded rounds, each conversation in turn, until caught up: every
  // conversation's newest page before any one's older history.
  while (!convs.empty()) {
    std::vector<std::string> more;
    for (const auto& c : convs) {
      Status s = reconciler_->Push(c);
      if (s.ok()) s = reconciler_->Pull(c);
      Report(c);
      TIDINGS_RETURN_IF_ERROR(s);
      if (reconciler_->HasMore(c)) more.push_back(c);
    }
    convs = std::move(more);
  }
  return Status::Ok();
}

Result<HistoryFill> SyncEngine::LoadOlder(const std::string& conversation_id, size_t pages) {
  std::lock_guard<std::mutex> rlock(reconciler_mu_);
  auto fill = reconciler_->LoadOlder(conversation_id, pages);
  Report(conversation_id);
  return fill;
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

namespace {
// Events queued beyond this are dropped and replaced by a pull of everything
// (a stalled sync thread must not grow memory without bound).
constexpr size_t kMaxQueuedEvents = 10'000;
}  // namespace

void SyncEngine::OnRealtime(RealtimeEvent e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (e.kind == RealtimeEvent::Kind::kEvent && events_.size() >= kMaxQueuedEvents) {
      events_overflow_ = true;
    } else {
      events_.push_back(std::move(e));
    }
  }
  cv_.notify_all();
}

void SyncEngine::StartRealtime() {
  // No lock held: a backend may call the listener before this returns.
  Status started = backend_->StartRealtime([this](RealtimeEvent e) { OnRealtime(std::move(e)); });
  std::lock_guard<std::mutex> lock(mu_);
  realtime_ = RealtimeStatus{};
  realtime_.available = started.ok();
  realtime_.detail = started.ok() ? "connecting" : started.message();
}

void SyncEngine::SetConnected(bool connected, const std::string& detail) {
  const bool changed = healthy_ != connected;
  // Reported: every change, and the first failure after a start (a channel
  // that never comes up), but not each failed retry after it.
  const bool report = changed || (!connected && !down_reported_);
  healthy_ = connected;
  down_reported_ = !connected;
  // Polling again: the listing timer runs again from now.
  if (changed && !connected) next_listing_ms_ = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    realtime_.connected = connected;
    realtime_.detail = detail;
    if (changed) realtime_.changed_ms = clock_();
  }
  if (report) Emit({.kind = SyncEvent::Kind::kRealtimeChanged});
}

void SyncEngine::TakeEvents(Work& work, bool* relist, bool* pull_all) {
  *pull_all = work.overflow;
  *relist = work.overflow;
  for (const RealtimeEvent& e : work.events) {
    if (e.kind == RealtimeEvent::Kind::kEstablished) {
      SetConnected(true, "");
      *pull_all = true;  // gap fill: everything since the durable cursors
      *relist = true;    // and conversations made while the socket was down
      continue;
    }
    if (e.kind == RealtimeEvent::Kind::kLost) {
      SetConnected(false, e.detail);
      continue;
    }
    auto effect = backend_->AcceptEvent(e);
    if (!effect.ok()) {  // could not interpret it: pull everything instead
      *pull_all = true;
      continue;
    }
    for (const auto& c : effect->pull_conversations) {
      owed_.insert(c);
      if (std::find(convs_.begin(), convs_.end(), c) == convs_.end()) *relist = true;
    }
    for (const auto& log : effect->pull_logs) {
      auto conv = reconciler_->ConversationOfLog(log);
      if (conv.ok() && !conv->empty()) {
        owed_.insert(*conv);
      } else {
        *relist = true;  // a log not bound here yet: the listing discovers it
      }
    }
    *relist = *relist || effect->relist;
    if (!effect->typing_conversation.empty()) {
      // A sealed log's channel names the log: say which conversation it is.
      std::string conv = effect->typing_conversation;
      auto bound = reconciler_->ConversationOfLog(conv);
      if (bound.ok() && !bound->empty()) conv = *bound;
      Emit(
          {.kind = SyncEvent::Kind::kTyping, .conversation_id = conv, .user = effect->typing_user});
    }
  }
}

Status SyncEngine::PullOwed(const std::string& conv) {
  TIDINGS_RETURN_IF_ERROR(reconciler_->Pull(conv));
  const ConversationStatus st = reconciler_->GetStatus(conv);
  if (st.stopped || (st.consecutive_failures == 0 && !reconciler_->HasMore(conv))) {
    owed_.erase(conv);
  }
  return Status::Ok();
}

bool SyncEngine::PushOwed(const std::string& conv, const ConversationStatus& st, int64_t now) {
  if (st.outbox_depth <= st.outbox_failed) return false;
  // Held by an upload under way (not backing off): its end pokes it.
  return !(reconciler_->WaitsForUpload(conv) && st.next_attempt_ms <= now);
}

Status SyncEngine::Visit(const std::string& conv, bool push, int64_t* wake) {
  const int64_t now = clock_();
  if (push) TIDINGS_RETURN_IF_ERROR(reconciler_->Push(conv));
  if (!healthy_ && reconciler_->NextPollMs(conv) <= now) {
    // Polling (no push channel, or it is down): as before the socket.
    TIDINGS_RETURN_IF_ERROR(reconciler_->Push(conv));
    TIDINGS_RETURN_IF_ERROR(PullOwed(conv));
  } else {
    // Only what is owed: an event named it, a gap fill, a page bound hit, or
    // a push waiting out its backoff. The reconciler skips what is backing off.
    ConversationStatus st = reconciler_->GetStatus(conv);
    if (!push && PushOwed(conv, st, now)) {
      TIDINGS_RETURN_IF_ERROR(reconciler_->Push(conv));
    }
    if (owed_.count(conv) || reconciler_->HasMore(conv)) {
      TIDINGS_RETURN_IF_ERROR(PullOwed(conv));
    }
  }
  // When it is next due. Something owed or a push waiting out its backoff
  // wakes the thread when the backoff ends (at the latest after a second:
  // an outbox entry may still wait out a backoff of its own).
  const ConversationStatus st = reconciler_->GetStatus(conv);
  if (!healthy_) *wake = std::min(*wake, reconciler_->NextPollMs(conv));
  if (st.stopped) return Status::Ok();
  if (reconciler_->HasMore(conv)) {
    *wake = std::min(*wake, now + 1);
  } else if (owed_.count(conv) || (healthy_ && PushOwed(conv, st, now))) {
    *wake = std::min(*wake, st.next_attempt_ms > now ? st.next_attempt_ms : now + 1'000);
  }
  return Status::Ok();
}

Result<int64_t> SyncEngine::Round(Work& work) {
  std::lock_guard<std::mutex> rlock(reconciler_mu_);
  for (const auto& c : work.typing) {  // best effort: never retried, never stored
    auto where = reconciler_->TypingAddress(c);
    if (where.ok()) (void)backend_->SendTyping(*where);
  }
  if (work.retry_now) reconciler_->RetryNow();
  bool relist = false, pull_all = false;
  TakeEvents(work, &relist, &pull_all);
  pull_all = pull_all || work.pull_all;
  const int64_t now = clock_();
  // Retention: what the policies no longer keep goes before this round's
  // pulls, which skip it from then on (engine/retention.cc).
  if (config_.purge_interval_ms > 0 && now >= next_purge_ms_) {
    TIDINGS_RETURN_IF_ERROR(store_->PurgeExpired().status());
    next_purge_ms_ = now + config_.purge_interval_ms;
  }
  const bool unknown = std::any_of(work.dirty.begin(), work.dirty.end(), [this](const auto& c) {
    return std::find(convs_.begin(), convs_.end(), c) == convs_.end();
  });
  if (relist || now >= next_listing_ms_ || convs_.empty() || unknown) {
    std::vector<std::string> before = std::move(convs_);
    TIDINGS_ASSIGN_OR_RETURN(convs_, reconciler_->Conversations());
    // A conversation new to this device (a membership event, an invitation)
    // is pulled now: with the socket up nothing else would pull it.
    for (const auto& c : convs_) {
      if (std::find(before.begin(), before.end(), c) == before.end()) owed_.insert(c);
    }
    // Listing is how a device learns of conversations others made (and of
    // the sealed logs it was invited to): every 10 polls, at most
    // idle_poll_ms. With the push channel up, membership and channel events
    // ask for it (a session delivers every event while it is up), so there
    // is no timer: an idle socket costs pings only.
    next_listing_ms_ = healthy_ ? std::numeric_limits<int64_t>::max()
                                : now + std::min(config_.idle_poll_ms, 10 * config_.active_poll_ms);
  }
  // A gap fill owes every conversation, those just listed included; an
  // event about a conversation no listing knows is dropped.
  if (pull_all) owed_.insert(convs_.begin(), convs_.end());
  std::erase_if(owed_, [this](const std::string& c) {
    return std::find(convs_.begin(), convs_.end(), c) == convs_.end();
  });
  int64_t wake = next_listing_ms_;
  for (const auto& c : convs_) {
    if (stopping_) return Cancelled("sync stopped");
    Status s = Visit(c, work.push_all || work.dirty.count(c), &wake);
    Report(c);
    TIDINGS_RETURN_IF_ERROR(s);
  }
  return wake;
}

void SyncEngine::Run() {
  sync_thread_id_ = std::this_thread::get_id();
  {
    std::lock_guard<std::mutex> rlock(reconciler_mu_);
    healthy_ = false;
    down_reported_ = false;
    owed_.clear();
  }
  StartRealtime();
  for (;;) {
    Work work;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
      work.push_all = push_now_;
      push_now_ = false;
      work.retry_now = retry_now_;
      retry_now_ = false;
      work.pull_all = pull_all_now_;
      pull_all_now_ = false;
      work.dirty.swap(dirty_);
      work.events.swap(events_);
      work.overflow = events_overflow_;
      events_overflow_ = false;
      work.typing.swap(typing_);
    }
    auto wake = Round(work);
    if (!wake.ok() && wake.status().code() == Code::kCancelled) break;
    std::unique_lock<std::mutex> lock(mu_);
    if (!wake.ok()) {
      // Auth errors stop sync until the app supplies new credentials and
      // restarts it; storage errors are surfaced the same way.
      last_error_ = wake.status();
      realtime_.connected = false;  // stopped with the thread's work
      lock.unlock();
      backend_->StopRealtime();
      Emit({.kind = wake.status().code() == Code::kUnauthenticated ? SyncEvent::Kind::kAuthError
                                                                   : SyncEvent::Kind::kStoreError,
            .error = wake.status()});
      lock.lock();
      cv_.wait(lock, [this] { return stopping_.load(); });
      break;
    }
    const int64_t wait_ms = std::clamp<int64_t>(*wake - clock_(), 1, config_.idle_poll_ms);
    cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [this] {
      return stopping_.load() || push_now_ || !dirty_.empty() || !events_.empty() ||
             events_overflow_ || !typing_.empty();
    });
  }
  backend_->StopRealtime();
  {
    std::lock_guard<std::mutex> lock(mu_);
    realtime_.connected = false;
    realtime_.detail = "sync stopped";
  }
  sync_thread_id_ = std::thread::id();
}

}  // namespace tidings::sync
