#include "api/sync_handle.h"

#include <charconv>
#include <future>

#include "api/e2e_limits.h"
#include "sync/attachments/s3_object_store.h"
#include "sync/e2e/directory.h"

namespace tidings::capi {
namespace {

// The seq of the last key-change event a key listener was handed.
constexpr std::string_view kKeyEventsDeliveredKey = "e2e/events-delivered";

tidings_sync_event Event(tidings_sync_event_kind kind, const std::string& backend) {
  tidings_sync_event e{};
  e.kind = kind;
  e.backend = backend.c_str();
  e.conversation_id = "";
  e.message_id = "";
  e.code = TIDINGS_OK;
  e.message = "";
  e.user = "";
  return e;
}

}  // namespace

SyncHandle::SyncHandle(engine::SyncLog* store, SyncOptions options)
    : store_(store), options_(std::move(options)) {}

SyncHandle::~SyncHandle() {
  std::lock_guard<std::mutex> lock(mu_);
  StopLocked();
  std::unique_lock<std::shared_mutex> no_fill(engines_mu_);  // a fill ends first
  slots_.clear();
}

void SyncHandle::Emit(const tidings_sync_event& event) const {
  if (listener_ != nullptr) listener_(listener_context_, &event);
}

// Builds into locals and swaps them in only when all is built, so a failed
// rebuild leaves the slot as it was, never without an engine.
Status SyncHandle::Build(Slot& slot, bool first) {
  auto http = std::make_unique<CountingHttpClient>(http::NewCurlHttpClient(options_.http),
                                                   slot.counters, slot.name);
  CountingHttpClient* http_view = http.get();
  TIDINGS_ASSIGN_OR_RETURN(std::unique_ptr<sync::Backend> backend, slot.make(std::move(http)));
  auto built = std::make_unique<sync::SyncEngine>(store_, backend.get(), options_.config);
  TIDINGS_RETURN_IF_ERROR(built->SetAttachmentTransfers(attachments_.get()));
  // Every engine sees every store change; message events come from the
  // first only, so each is reported once.
  const std::string* name = &slot.name;
  sync::SyncEngine* engine = built.get();
  TIDINGS_RETURN_IF_ERROR(built->SetListener([this, name, first, engine](const sync::SyncEvent& e) {
    using K = sync::SyncEvent::Kind;
    if (e.kind == K::kStatusChanged) DeliverKeyEvents();  // a round moved on
    if (e.kind == K::kTyping) {
      tidings_sync_event out = Event(TIDINGS_SYNC_TYPING, *name);
      out.conversation_id = e.conversation_id.c_str();
      out.user = e.user.c_str();
      Emit(out);
      return;
    }
    if (e.kind == K::kRealtimeChanged) {
      const sync::RealtimeStatus rt = engine->realtime();
      tidings_sync_event out = Event(TIDINGS_SYNC_REALTIME, *name);
      out.code = rt.connected ? TIDINGS_OK : TIDINGS_UNAVAILABLE;
      out.message = rt.detail.c_str();
      Emit(out);
      return;
    }
    if (e.kind == K::kAuthError || e.kind == K::kStoreError) {
      tidings_sync_event out = Event(TIDINGS_SYNC_STOPPED, *name);
      std::string message = e.error.message();
      out.code = static_cast<tidings_code>(e.error.code());
      out.message = message.c_str();
      Emit(out);
    } else if (first && e.kind == K::kMessageState && e.state == engine::MessageState::kFailed) {
      tidings_sync_event out = Event(TIDINGS_SYNC_MESSAGE_FAILED, *name);
      out.conversation_id = e.conversation_id.c_str();
      out.message_id = e.message_id.c_str();
      out.message = e.failure_reason.c_str();
      Emit(out);
    } else if (first && e.kind == K::kMessageAdded) {
      tidings_sync_event out = Event(TIDINGS_SYNC_MESSAGE_RECEIVED, *name);
      out.conversation_id = e.conversation_id.c_str();
      out.message_id = e.message_id.c_str();
      Emit(out);
    }
  }));
  std::unique_lock<std::shared_mutex> replacing(engines_mu_);  // no fill is using it
  slot.engine.reset();                                         // before the backend it uses
  slot.backend = std::move(backend);
  slot.http = http_view;
  slot.engine = std::move(built);
  slot.cancelled = false;
  return Status::Ok();
}

Status SyncHandle::Add(const std::string& name, BackendFactory make) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return FailedPrecondition("the sync handle is started: add backends before");
  for (const auto& s : slots_) {
    if (s->name == name) return AlreadyExists("the sync handle has the " + name + " backend");
  }
  auto slot = std::make_unique<Slot>();
  slot->name = name;
  slot->make = std::move(make);
  TIDINGS_RETURN_IF_ERROR(Build(*slot, slots_.empty()));
  TIDINGS_RETURN_IF_ERROR(RecordLimits(*store_, name, LimitsOf(name, *slot->backend)));
  slots_.push_back(std::move(slot));
  return Status::Ok();
}

Status SyncHandle::SetAttachmentStore(const s3::S3Config& config, const std::string& bucket,
                                      uint64_t auto_fetch_max_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_)
    return FailedPrecondition("the sync handle is started: set the attachment store before");
  if (bucket.empty()) return InvalidArgument("no S3 bucket given for attachments");
  TIDINGS_RETURN_IF_ERROR(aws::CheckEndpointSetting(config.endpoint, "S3"));
  // A pool of clients, one per part in flight (sync/attachments).
  TIDINGS_ASSIGN_OR_RETURN(
      std::unique_ptr<attachments::S3ObjectStore> objects,
      attachments::S3ObjectStore::Create(
          config, options_.credentials ? options_.credentials : aws::DefaultCredentialsChain(),
          bucket));
  auto made = std::make_shared<sync::AttachmentSync>(store_, std::move(objects), bucket);
  made->set_auto_fetch_max_bytes(auto_fetch_max_bytes);
  for (auto& slot : slots_) {
    TIDINGS_RETURN_IF_ERROR(slot->engine->SetAttachmentTransfers(made.get()));
  }
  attachments_ = std::move(made);  // a fetch running keeps the old one alive
  return Status::Ok();
}

Status SyncHandle::FetchAttachment(std::string_view object,
                                   const engine::AttachmentProgress& progress,
                                   const std::atomic<bool>* cancel) {
  std::shared_ptr<sync::AttachmentSync> attachments;
  {
    std::lock_guard<std::mutex> lock(mu_);
    attachments = attachments_;
  }
  if (!attachments) {
    return FailedPrecondition(
        "no attachment store is set on this sync handle: set an S3 bucket "
        "(tidings_sync_set_attachment_store, or --s3-bucket / TIDINGS_S3_BUCKET)");
  }
  return attachments->Fetch(object, progress, cancel);
}

Status SyncHandle::SetListener(tidings_sync_event_fn callback, void* context) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return FailedPrecondition("the sync handle is started: set the listener before");
  listener_ = callback;
  listener_context_ = context;
  return Status::Ok();
}

Status SyncHandle::SetKeyListener(tidings_key_event_fn callback, void* context) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) {
    return FailedPrecondition("the sync handle is started: set the key listener before");
  }
  std::lock_guard<std::mutex> key_lock(key_mu_);
  key_listener_ = callback;
  key_listener_context_ = context;
  return Status::Ok();
}

void SyncHandle::DeliverKeyEvents() {
  std::lock_guard<std::mutex> lock(key_mu_);
  if (key_listener_ == nullptr) return;
  auto delivered_text = store_->GetSyncState(kKeyEventsDeliveredKey);
  if (!delivered_text.ok()) return;  // tried again after the next round
  uint64_t delivered = 0;
  std::from_chars(delivered_text->data(), delivered_text->data() + delivered_text->size(),
                  delivered);
  e2e::Directory directory(store_);
  auto events = directory.EventsAfter(delivered);
  if (!events.ok() || events->empty()) return;
  for (const auto& e : *events) {
    const tidings_key_event out{e.seq, static_cast<tidings_key_event_kind>(e.kind), e.user.c_str(),
                                e.device_id.c_str(), e.at_ms};
    key_listener_(key_listener_context_, &out);
    delivered = e.seq;
  }
  // If this write fails the events come again: repeated, never dropped.
  (void)store_->PutSyncState(kKeyEventsDeliveredKey, std::to_string(delivered));
}

Status SyncHandle::BeforeSyncing() {
  if (started_) return FailedPrecondition("the sync handle is started: it is syncing already");
  if (slots_.empty()) return FailedPrecondition("the sync handle has no backend: add one first");
  if (!options_.require_every_backend) return Status::Ok();
  std::vector<std::string> names;
  for (const auto& s : slots_) names.push_back(s->name);
  return store_->SetOutboxBackends(std::move(names));
}

Status SyncHandle::Once() {
  std::lock_guard<std::mutex> lock(mu_);
  TIDINGS_RETURN_IF_ERROR(BeforeSyncing());
  if (attachments_) attachments_->Resume();
  for (auto& s : slots_) {
    if (s->cancelled) TIDINGS_RETURN_IF_ERROR(Build(*s, s == slots_.front()));
    TIDINGS_RETURN_IF_ERROR(s->engine->SyncOnce());
  }
  DeliverKeyEvents();
  return Status::Ok();
}

Status SyncHandle::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  TIDINGS_RETURN_IF_ERROR(BeforeSyncing());
  if (attachments_) attachments_->Resume();
  for (auto& s : slots_) {
    Status st = s->cancelled ? Build(*s, s == slots_.front()) : Status::Ok();
    if (st.ok()) st = s->engine->Start();
    if (!st.ok()) {
      StopLocked();
      return st;
    }
  }
  started_ = true;
  return Status::Ok();
}

void SyncHandle::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  StopLocked();
}

void SyncHandle::StopLocked() {
  if (attachments_) attachments_->Stop();  // an upload stops between parts
  std::vector<std::future<void>> stops;
  for (auto& s : slots_) {
    sync::SyncEngine* e = s->engine.get();
    stops.push_back(std::async(std::launch::async, [e] { e->Stop(); }));
  }
  if (options_.stop_grace_ms > 0) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.stop_grace_ms);
    for (size_t i = 0; i < stops.size(); ++i) {
      if (stops[i].wait_until(deadline) == std::future_status::ready) continue;
      // Nothing of the abandoned answer is recorded; the retry is deduplicated.
      Emit(Event(TIDINGS_SYNC_REQUEST_ABANDONED, slots_[i]->name));
      slots_[i]->http->Cancel();
      slots_[i]->cancelled = true;  // a cancelled transport refuses every later request
    }
  }
  for (auto& f : stops) f.wait();
  started_ = false;
}

Status SyncHandle::Restart(const std::string& backend) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_) return FailedPrecondition("the sync handle is not started: start it instead");
  bool found = false;
  for (auto& s : slots_) {
    if (backend.empty() ? s->engine->last_error().ok() : s->name != backend) continue;
    found = true;
    s->engine->Stop();
    if (s->cancelled) TIDINGS_RETURN_IF_ERROR(Build(*s, s == slots_.front()));
    TIDINGS_RETURN_IF_ERROR(s->engine->Start());
  }
  if (!found && !backend.empty()) {
    return NotFound("the sync handle has no " + backend + " backend");
  }
  return Status::Ok();
}

void SyncHandle::Poke() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_) return;
  for (auto& s : slots_) s->engine->Poke();
}

Status SyncHandle::Typing(const std::string& conversation_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_) return FailedPrecondition("the sync handle is not started: start it first");
  for (auto& s : slots_) {
    if (s->engine->running()) TIDINGS_RETURN_IF_ERROR(s->engine->SendTyping(conversation_id));
  }
  return Status::Ok();
}

Status SyncHandle::RetryFailed(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (slots_.empty()) return sync::RetryFailedOperation(*store_, seq);
  // The first engine does the bookkeeping (and pokes its thread); the others
  // only need to hear about it.
  Status s = slots_.front()->engine->RetryFailed(seq);
  for (size_t i = 1; i < slots_.size(); ++i) slots_[i]->engine->Poke();
  return s;
}

Result<sync::HistoryFill> SyncHandle::LoadOlder(const std::string& conversation_id, size_t pages) {
  std::vector<sync::SyncEngine*> engines;
  std::shared_lock<std::shared_mutex> in_use;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A stop that gave up on a request cancelled its transport, which
    // refuses every later request: a stopped handle's fill builds anew, as
    // Once and Start do.
    for (auto& s : slots_) {
      if (s->cancelled) TIDINGS_RETURN_IF_ERROR(Build(*s, s == slots_.front()));
    }
    in_use = std::shared_lock<std::shared_mutex>(engines_mu_);
    for (auto& s : slots_) engines.push_back(s->engine.get());
  }
  sync::HistoryFill total;
  Status refused;
  size_t refusals = 0;
  for (sync::SyncEngine* engine : engines) {
    auto fill = engine->LoadOlder(conversation_id, pages);
    if (fill.status().code() == Code::kFailedPrecondition) {
      refused = fill.status();
      ++refusals;
      continue;
    }
    if (!fill.ok()) return fill.status();
    total.merged += fill->merged;
    total.more = total.more || fill->more;
  }
  if (!engines.empty() && refusals == engines.size()) return refused;
  return total;
}

Status SyncHandle::DiscardFailed(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (slots_.empty()) return sync::DiscardFailedOperation(*store_, seq);
  return slots_.front()->engine->DiscardFailed(seq);
}

std::vector<std::pair<std::string, sync::ConversationStatus>> SyncHandle::Statuses() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, sync::ConversationStatus>> out;
  for (auto& s : slots_) {
    for (auto& st : s->engine->Snapshot()) out.emplace_back(s->name, std::move(st));
  }
  return out;
}

Result<std::vector<SyncHandle::BackendState>> SyncHandle::Backends() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<BackendState> out;
  for (auto& s : slots_) {
    BackendState b;
    b.name = s->name;
    b.running = s->engine->running();
    b.stopped_by = s->engine->last_error();
    TIDINGS_ASSIGN_OR_RETURN(auto waiting, store_->CountOutbox("", s->name));
    b.outbox_depth = waiting.total();
    b.requests = s->counters->requests.load();
    b.retries = s->counters->retries.load();
    b.last_ok_ms = s->counters->last_ok_ms.load();
    b.errors = s->counters->Errors();
    b.realtime = s->engine->realtime();
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace tidings::capi
