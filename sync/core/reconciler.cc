#include "sync/core/reconciler.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "engine/codec.h"

namespace tidings::sync {

namespace {

constexpr int kRetryCost = 5;

std::string StatusKey(std::string_view backend, const std::string& conv) {
  return "status\n" + std::string(backend) + "\n" + conv;
}
std::string IndexKey(std::string_view backend) { return "conversations\n" + std::string(backend); }

std::string EncodeStatus(const ConversationStatus& s) {
  std::string out;
  engine::Writer w(&out);
  w.U8(1);
  w.Bytes(s.conversation_id);
  w.Bytes(s.cursor);
  w.Varint(s.outbox_depth);
  w.Varint(static_cast<uint64_t>(s.last_success_ms));
  w.Varint(static_cast<uint64_t>(s.last_activity_ms));
  w.Bytes(s.last_error);
  w.Varint(static_cast<uint64_t>(s.next_attempt_ms));
  w.Varint(s.consecutive_failures);
  w.U8(s.stopped ? 1 : 0);
  return out;
}

bool DecodeStatus(std::string_view in, ConversationStatus* s) {
  engine::Reader r(in);
  uint8_t v, stopped;
  uint64_t depth, success, activity, next, failures;
  if (!r.U8(&v) || v != 1 || !r.Bytes(&s->conversation_id) || !r.Bytes(&s->cursor) ||
      !r.Varint(&depth) || !r.Varint(&success) || !r.Varint(&activity) ||
      !r.Bytes(&s->last_error) || !r.Varint(&next) || !r.Varint(&failures) || !r.U8(&stopped)) {
    return false;
  }
  s->outbox_depth = depth;
  s->last_success_ms = static_cast<int64_t>(success);
  s->last_activity_ms = static_cast<int64_t>(activity);
  s->next_attempt_ms = static_cast<int64_t>(next);
  s->consecutive_failures = static_cast<uint32_t>(failures);
  s->stopped = stopped != 0;
  return true;
}

}  // namespace

ErrorClass Classify(const tidings::Status& status) {
  switch (status.code()) {
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
    case Code::kResourceExhausted:
    case Code::kAborted:
    case Code::kCancelled:
      return ErrorClass::kTransient;
    case Code::kUnauthenticated:
      return ErrorClass::kAuth;
    default:
      return ErrorClass::kPermanent;
  }
}

Reconciler::Reconciler(engine::Store* store, Backend* backend, SyncConfig config, Clock clock,
                       Random random)
    : store_(store),
      backend_(backend),
      config_(config),
      clock_(std::move(clock)),
      random_(std::move(random)),
      retry_tokens_(config.retry_budget) {}

int64_t Reconciler::Backoff(uint32_t failures, std::optional<int64_t> retry_after) {
  int64_t cap = config_.max_backoff_ms;
  if (retry_tokens_ >= kRetryCost) {
    retry_tokens_ -= kRetryCost;
    const uint32_t exp = std::min<uint32_t>(failures, 20);
    cap = std::min<int64_t>(config_.max_backoff_ms, config_.base_backoff_ms << exp);
  }
  // Full jitter: uniform in [0, cap], but never sooner than the server asked.
  const double unit = static_cast<double>(random_() >> 11) / 9007199254740992.0;  // [0, 1)
  int64_t wait = static_cast<int64_t>(static_cast<double>(cap) * unit);
  if (retry_after) wait = std::max(wait, *retry_after);
  return wait;
}

ConversationStatus& Reconciler::Load(const std::string& conv) {
  auto it = status_.find(conv);
  if (it != status_.end()) return it->second;
  ConversationStatus st;
  st.conversation_id = conv;
  auto raw = store_->GetSyncState(StatusKey(backend_->name(), conv));
  if (raw.ok() && !raw->empty()) {
    ConversationStatus saved;
    if (DecodeStatus(*raw, &saved) && saved.conversation_id == conv) st = saved;
  }
  return status_.emplace(conv, st).first->second;
}

tidings::Status Reconciler::Save(const ConversationStatus& st) {
  auto index = store_->GetSyncState(IndexKey(backend_->name()));
  if (!index.ok()) return index.status();
  std::set<std::string> known;
  std::istringstream in(*index);
  for (std::string line; std::getline(in, line);) known.insert(line);
  if (known.insert(st.conversation_id).second) {
    std::string joined;
    for (const auto& c : known) joined += c + "\n";
    TIDINGS_RETURN_IF_ERROR(store_->PutSyncState(IndexKey(backend_->name()), joined));
  }
  return store_->PutSyncState(StatusKey(backend_->name(), st.conversation_id), EncodeStatus(st));
}

void Reconciler::RecordFailure(ConversationStatus& st, const tidings::Status& error,
                               std::optional<int64_t> retry_after) {
  st.consecutive_failures++;
  st.last_error = error.ToString();
  st.next_attempt_ms = clock_() + Backoff(st.consecutive_failures, retry_after);
}

tidings::Status Reconciler::ParkConversation(ConversationStatus& st, const tidings::Status& error) {
  // Permission lost (e.g. removed from the channel): park what is pending as
  // failed with the reason, stop polling; nothing local is lost.
  st.stopped = true;
  st.last_error = error.ToString();
  auto pending = store_->Outbox(0, st.conversation_id);
  if (!pending.ok()) return pending.status();
  for (const auto& e : *pending) {
    if (e.failed) continue;
    TIDINGS_RETURN_IF_ERROR(store_->FailOutbox(e.seq, error.message(), /*permanent=*/true, 0));
  }
  return Save(st);
}

tidings::Status Reconciler::Push(const std::string& conv) {
  ConversationStatus& st = Load(conv);
  if (st.stopped) return tidings::Status::Ok();
  const int64_t now = clock_();
  if (st.next_attempt_ms > now) return tidings::Status::Ok();
  auto outbox = store_->Outbox(0, conv);
  if (!outbox.ok()) return outbox.status();
  std::vector<engine::OutboxEntry> due;
  for (auto& e : *outbox) {
    if (!e.failed && e.next_attempt_ms <= now) due.push_back(std::move(e));
  }
  st.outbox_depth = outbox->size();
  if (due.empty()) return tidings::Status::Ok();

  auto conversation = store_->GetConversation(conv);
  if (conversation.ok() && !conversation->remote_ids.count(std::string(backend_->name()))) {
    auto remote = backend_->EnsureConversation(*conversation);
    if (!remote.ok()) {
      switch (Classify(remote.status())) {
        case ErrorClass::kAuth:
          return remote.status();
        case ErrorClass::kTransient:
          RecordFailure(st, remote.status(), std::nullopt);
          return Save(st);
        case ErrorClass::kPermanent:
          return ParkConversation(st, remote.status());
      }
    }
    TIDINGS_RETURN_IF_ERROR(store_->SetConversationRemoteId(conv, backend_->name(), *remote));
  }

  const size_t batch = std::max<size_t>(1, backend_->max_batch());
  for (size_t start = 0; start < due.size(); start += batch) {
    const size_t n = std::min(batch, due.size() - start);
    std::vector<engine::Operation> ops;
    for (size_t i = 0; i < n; ++i) ops.push_back(due[start + i].op);
    auto acks = backend_->Push(conv, ops);
    if (!acks.ok() || acks->size() != n) {
      tidings::Status error =
          acks.ok() ? Internal("backend returned a wrong number of acks") : acks.status();
      switch (Classify(error)) {
        case ErrorClass::kAuth:
          return error;
        case ErrorClass::kPermanent:
          if (error.code() == Code::kPermissionDenied || error.code() == Code::kNotFound) {
            return ParkConversation(st, error);
          }
          for (size_t i = 0; i < n; ++i) {
            TIDINGS_RETURN_IF_ERROR(
                store_->FailOutbox(due[start + i].seq, error.message(), true, 0));
          }
          continue;  // the rest is not blocked
        case ErrorClass::kTransient: {
          RecordFailure(st, error, std::nullopt);
          for (size_t i = 0; i < n; ++i) {
            TIDINGS_RETURN_IF_ERROR(
                store_->FailOutbox(due[start + i].seq, error.message(), false, st.next_attempt_ms));
          }
          return Save(st);  // keep order: nothing behind it goes first
        }
      }
    }
    for (size_t i = 0; i < n; ++i) {
      const PushAck& ack = (*acks)[i];
      const engine::OutboxEntry& e = due[start + i];
      if (ack.status.ok()) {
        TIDINGS_RETURN_IF_ERROR(store_->AckOutbox(
            e.seq, {std::string(backend_->name()), ack.remote_id, ack.server_time_ms}));
        retry_tokens_ = std::min(config_.retry_budget, retry_tokens_ + 1);
        continue;
      }
      switch (Classify(ack.status)) {
        case ErrorClass::kAuth:
          return ack.status;
        case ErrorClass::kPermanent:
          TIDINGS_RETURN_IF_ERROR(store_->FailOutbox(e.seq, ack.status.message(), true, 0));
          continue;
        case ErrorClass::kTransient:
          RecordFailure(st, ack.status, ack.retry_after_ms);
          for (size_t j = i; j < n; ++j) {
            TIDINGS_RETURN_IF_ERROR(store_->FailOutbox(due[start + j].seq, ack.status.message(),
                                                       false, st.next_attempt_ms));
          }
          return Save(st);
      }
    }
  }
  st.consecutive_failures = 0;
  st.last_error.clear();
  st.last_success_ms = st.last_activity_ms = clock_();
  auto left = store_->Outbox(0, conv);
  if (left.ok()) st.outbox_depth = left->size();
  return Save(st);
}

tidings::Status Reconciler::Pull(const std::string& conv) {
  ConversationStatus& st = Load(conv);
  if (st.stopped) return tidings::Status::Ok();
  if (st.next_attempt_ms > clock_()) return tidings::Status::Ok();
  auto cursor = store_->GetCursor(backend_->name(), conv);
  if (!cursor.ok()) return cursor.status();
  std::string at = *cursor;
  bool merged_any = false;
  for (size_t page = 0; page < config_.max_pull_pages_per_round; ++page) {
    auto result = backend_->Pull(conv, at, config_.pull_page_size);
    if (!result.ok()) {
      switch (Classify(result.status())) {
        case ErrorClass::kAuth:
          return result.status();
        case ErrorClass::kTransient:
          RecordFailure(st, result.status(), std::nullopt);
          return Save(st);
        case ErrorClass::kPermanent:
          if (result.status().code() == Code::kPermissionDenied) {
            return ParkConversation(st, result.status());
          }
          RecordFailure(st, result.status(), std::nullopt);
          return Save(st);
      }
    }
    // The page and its cursor in one atomic write: a crash neither skips nor
    // re-applies (and re-applying would be harmless: merges are idempotent).
    TIDINGS_RETURN_IF_ERROR(
        store_->Merge(backend_->name(), conv, result->ops, result->next_cursor));
    merged_any = merged_any || !result->ops.empty();
    at = result->next_cursor;
    if (!result->has_more) break;
  }
  st.cursor = at;
  st.consecutive_failures = 0;
  st.last_error.clear();
  st.last_success_ms = clock_();
  if (merged_any) st.last_activity_ms = st.last_success_ms;
  return Save(st);
}

Result<std::vector<std::string>> Reconciler::Conversations() {
  std::set<std::string> all;
  TIDINGS_ASSIGN_OR_RETURN(auto local, store_->Conversations(0));
  for (const auto& c : local) all.insert(c.id);
  auto remote = backend_->ListConversations();
  if (remote.ok()) {
    all.insert(remote->begin(), remote->end());
  } else if (Classify(remote.status()) == ErrorClass::kAuth) {
    return remote.status();
  }
  return std::vector<std::string>(all.begin(), all.end());
}

tidings::Status Reconciler::SyncAll() {
  TIDINGS_ASSIGN_OR_RETURN(auto convs, Conversations());
  for (const auto& c : convs) {
    TIDINGS_RETURN_IF_ERROR(Push(c));
    TIDINGS_RETURN_IF_ERROR(Pull(c));
  }
  return tidings::Status::Ok();
}

int64_t Reconciler::NextPollMs(const std::string& conv) {
  ConversationStatus& st = Load(conv);
  const int64_t now = clock_();
  const int64_t idle_for = now - std::max(st.last_activity_ms, int64_t{0});
  int64_t interval = config_.active_poll_ms;
  if (st.last_activity_ms == 0 || idle_for > config_.active_window_ms) {
    // Back off from active to idle as the silence grows.
    interval = std::min(config_.idle_poll_ms, std::max(config_.active_poll_ms, idle_for / 10));
  }
  return std::max(st.next_attempt_ms, st.last_success_ms + interval);
}

ConversationStatus Reconciler::GetStatus(const std::string& conv) { return Load(conv); }

Result<std::vector<ConversationStatus>> ReadSyncStatus(engine::Store& store,
                                                       std::string_view backend) {
  TIDINGS_ASSIGN_OR_RETURN(std::string index, store.GetSyncState(IndexKey(backend)));
  std::vector<ConversationStatus> out;
  std::istringstream in(index);
  for (std::string conv; std::getline(in, conv);) {
    TIDINGS_ASSIGN_OR_RETURN(std::string raw, store.GetSyncState(StatusKey(backend, conv)));
    ConversationStatus st;
    if (!DecodeStatus(raw, &st)) return DataLoss("a sync status record is corrupt");
    auto outbox = store.Outbox(0, conv);
    if (outbox.ok()) st.outbox_depth = outbox->size();
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace tidings::sync
