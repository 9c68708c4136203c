#include "sync/core/reconciler.h"

#include <algorithm>

#include "common/lines.h"
#include "crypto/hash.h"
#include "engine/codec.h"
#include "sync/core/held_operations.h"
#include "sync/core/read_ahead.h"
#include "sync/wire/operation_codec.h"

namespace tidings::sync {

namespace {

constexpr int kRetryCost = 5;
// Longest retry-after honoured as such (servers ask for seconds to minutes).
constexpr int64_t kMaxRetryAfterMs = 15 * 60'000;
// A status whose only change is its timestamps or cursor is rewritten at most
// this often: polling every 2 s, or catching up page by page, must not mean
// an extra durable write per poll or page (the cursor itself is written
// atomically with each page by SyncLog::Merge).
constexpr int64_t kTimestampOnlyPersistMs = 30'000;

// Sync-state keys. Conversation ids may contain anything but '\n' is not
// allowed in ids by the index format, so the index skips such ids (they still
// sync; only `tidings status` would not list them).
std::string StatusKey(std::string_view backend, const std::string& conv) {
  return "status\n" + std::string(backend) + "\n" + conv;
}
std::string IndexKey(std::string_view backend) { return "conversations\n" + std::string(backend); }
// The member list last made remote, as a digest (sorted, so order does not
// matter).
std::string MembersKey(std::string_view backend, const std::string& conv) {
  return "members\n" + std::string(backend) + "\n" + conv;
}
std::string MembersDigest(const engine::Conversation& c) {
  std::vector<std::string> members = c.members;
  std::sort(members.begin(), members.end());
  std::string joined;
  for (const auto& m : members) joined += m + "\n";
  return crypto::Sha256Hex(joined);
}
constexpr std::string_view kBackendsKey = "backends";

// Adds `item` to the newline-separated set stored under `key`.
tidings::Status AddToIndex(engine::SyncLog& store, std::string_view key, const std::string& item) {
  TIDINGS_ASSIGN_OR_RETURN(std::string raw, store.GetSyncState(key));
  std::vector<std::string> items = SplitLines(raw);
  if (std::find(items.begin(), items.end(), item) != items.end()) return tidings::Status::Ok();
  raw += item + "\n";
  return store.PutSyncState(key, raw);
}

// with_progress false blanks what changes on every successful round (the
// timestamps, and the cursor, which the store keeps durably on its own): used
// to decide whether a status write can be skipped.
std::string EncodeStatus(const ConversationStatus& s, bool with_progress = true) {
  const bool with_times = with_progress;
  std::string out;
  engine::Writer w(&out);
  w.U8(5);
  w.Bytes(s.conversation_id);
  w.Bytes(with_progress ? s.cursor : std::string());
  w.Varint(s.outbox_depth);
  w.Varint(with_times ? static_cast<uint64_t>(s.last_success_ms) : 0);
  w.Varint(with_times ? static_cast<uint64_t>(s.last_activity_ms) : 0);
  w.Bytes(s.last_error);
  w.Varint(static_cast<uint64_t>(s.next_attempt_ms));
  w.Varint(s.consecutive_failures);
  w.U8(s.stopped ? 1 : 0);
  w.Varint(s.outbox_failed);
  w.Varint(s.skipped_ops);
  w.U8(s.end_to_end ? 1 : 0);
  w.Varint(s.rejected_frames);
  w.Varint(s.pending_frames);
  w.Bytes(s.last_rejection);
  w.Varint(s.waiting_for_upgrade);
  return out;
}

bool DecodeStatus(std::string_view in, ConversationStatus* s) {
  engine::Reader r(in);
  uint8_t v, stopped;
  uint64_t depth, success, activity, next, failures, failed = 0, skipped = 0;
  if (!r.U8(&v) || v < 1 || v > 5 || !r.Bytes(&s->conversation_id) || !r.Bytes(&s->cursor) ||
      !r.Varint(&depth) || !r.Varint(&success) || !r.Varint(&activity) ||
      !r.Bytes(&s->last_error) || !r.Varint(&next) || !r.Varint(&failures) || !r.U8(&stopped)) {
    return false;
  }
  if (v >= 2 && !r.Varint(&failed)) return false;
  if (v >= 3 && !r.Varint(&skipped)) return false;
  if (v >= 4) {
    uint8_t e2e = 0;
    if (!r.U8(&e2e) || !r.Varint(&s->rejected_frames) || !r.Varint(&s->pending_frames) ||
        !r.Bytes(&s->last_rejection)) {
      return false;
    }
    s->end_to_end = e2e != 0;
  }
  if (v >= 5 && !r.Varint(&s->waiting_for_upgrade)) return false;
  s->skipped_ops = skipped;
  s->outbox_depth = depth;
  s->last_success_ms = static_cast<int64_t>(success);
  s->last_activity_ms = static_cast<int64_t>(activity);
  s->next_attempt_ms = static_cast<int64_t>(next);
  s->consecutive_failures = static_cast<uint32_t>(failures);
  s->stopped = stopped != 0;
  s->outbox_failed = failed;
  return true;
}

Result<ConversationStatus> ReadOne(engine::SyncLog& store, std::string_view backend,
                                   const std::string& conv) {
  TIDINGS_ASSIGN_OR_RETURN(std::string raw, store.GetSyncState(StatusKey(backend, conv)));
  ConversationStatus st;
  st.conversation_id = conv;
  if (!raw.empty() && !DecodeStatus(raw, &st)) return DataLoss("a sync status record is corrupt");
  return st;
}

// The history gap still to fill ("": none), or nullopt when its record does
// not decode (damaged, or a newer format's): such a gap is open, and the
// next fill starts it again from the newest page (Reconciler::RestartFill).
// Other store errors are returned.
Result<std::optional<std::string>> ReadGap(engine::SyncLog& store, std::string_view backend,
                                           const std::string& conv) {
  auto gap = store.GetGap(backend, conv);
  if (gap.ok()) return std::optional<std::string>(std::move(*gap));
  if (gap.status().code() == Code::kDataLoss) return std::optional<std::string>();
  return gap.status();
}

// Whether a gap ReadGap read is open.
bool Open(const std::optional<std::string>& gap) { return !gap.has_value() || !gap->empty(); }

// Whether one of the conversation's sealed logs is being read again from
// its start (a new device's re-read: its older history is still coming).
bool Rereading(engine::SyncLog& store, std::string_view backend, const std::string& conv) {
  auto ids = store.GetSyncState(e2e::BindingKey(backend, conv));
  if (!ids.ok()) return false;
  for (const std::string& id : SplitLines(*ids)) {
    auto raw = store.GetSyncState(e2e::LogStateKey(backend, id));
    if (!raw.ok() || raw->empty()) continue;
    auto log = e2e::DecodeLogState(*raw);
    crypto::Wipe(&raw.value());
    if (log.ok() && log->rereading) return true;
  }
  return false;
}

}  // namespace

Reconciler::Reconciler(engine::SyncLog* store, Backend* backend, SyncConfig config, Clock clock,
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
    const uint32_t exp = std::min<uint32_t>(failures > 0 ? failures - 1 : 0, 30);
    cap = std::min<int64_t>(config_.max_backoff_ms, config_.base_backoff_ms << exp);
  }
  // Full jitter: uniform in [1, cap], but never sooner than the server asked.
  const double unit = static_cast<double>(random_() >> 11) / 9007199254740992.0;  // [0, 1)
  int64_t wait = 1 + static_cast<int64_t>(static_cast<double>(cap) * unit);
  if (retry_after) wait = std::max(wait, std::min(*retry_after, kMaxRetryAfterMs));
  return wait;
}

bool Reconciler::Waiting(int64_t next_attempt_ms, int64_t now) const {
  // A wait longer than any backoff or plausible retry-after was computed with
  // a wall clock that has since jumped back (the user fixed a wrong clock):
  // ignore it rather than stall for hours.
  const int64_t longest = std::max<int64_t>(config_.max_backoff_ms, kMaxRetryAfterMs);
  return next_attempt_ms > now && next_attempt_ms - now <= longest;
}

ConversationStatus& Reconciler::Load(const std::string& conv) {
  auto it = status_.find(conv);
  if (it != status_.end()) return it->second;
  ConversationStatus st;
  st.conversation_id = conv;
  auto raw = store_->GetSyncState(StatusKey(backend_->name(), conv));
  ConversationStatus saved;
  if (raw.ok() && !raw->empty() && DecodeStatus(*raw, &saved) && saved.conversation_id == conv) {
    st = saved;
    persisted_[conv] = *raw;
    indexed_.insert(conv);
  }
  auto gap = ReadGap(*store_, backend_->name(), conv);
  st.filling_history = (gap.ok() && Open(*gap)) || Rereading(*store_, backend_->name(), conv);
  return status_.emplace(conv, st).first->second;
}

bool Reconciler::GapOpen(const std::string& conv) {
  auto gap = ReadGap(*store_, backend_->name(), conv);
  return gap.ok() && Open(*gap);
}

tidings::Status Reconciler::Save(ConversationStatus& st) {
  const std::string& conv = st.conversation_id;
  std::string encoded = EncodeStatus(st);
  auto prev = persisted_.find(conv);
  if (prev != persisted_.end()) {
    if (prev->second == encoded) return tidings::Status::Ok();
    ConversationStatus old;
    if (DecodeStatus(prev->second, &old) && EncodeStatus(old, false) == EncodeStatus(st, false) &&
        st.last_success_ms - old.last_success_ms < kTimestampOnlyPersistMs &&
        st.last_activity_ms - old.last_activity_ms < kTimestampOnlyPersistMs) {
      return tidings::Status::Ok();
    }
  }
  if (!indexed_.count(conv) && conv.find('\n') == std::string::npos) {
    TIDINGS_RETURN_IF_ERROR(AddToIndex(*store_, kBackendsKey, std::string(backend_->name())));
    TIDINGS_RETURN_IF_ERROR(AddToIndex(*store_, IndexKey(backend_->name()), conv));
    indexed_.insert(conv);
  }
  TIDINGS_RETURN_IF_ERROR(store_->PutSyncState(StatusKey(backend_->name(), conv), encoded));
  persisted_[conv] = std::move(encoded);
  return tidings::Status::Ok();
}

void Reconciler::RecordFailure(ConversationStatus& st, const tidings::Status& error,
                               std::optional<int64_t> retry_after) {
  st.consecutive_failures++;
  st.last_error = error.ToString();
  st.next_attempt_ms = clock_() + Backoff(st.consecutive_failures, retry_after);
}

tidings::Status Reconciler::RecordAuthError(ConversationStatus& st, const tidings::Status& error) {
  // Surface it where `tidings status` looks; the caller stops syncing.
  st.last_error = error.ToString();
  Save(st).IgnoreError();  // the auth error is the one to report
  return error;
}

tidings::Status Reconciler::RecordSuccess(ConversationStatus& st, bool activity) {
  st.consecutive_failures = 0;
  st.last_error.clear();
  st.next_attempt_ms = 0;
  st.last_success_ms = clock_();
  if (activity) st.last_activity_ms = st.last_success_ms;
  retry_tokens_ = std::min(config_.retry_budget, retry_tokens_ + 1);
  return Save(st);
}

tidings::Status Reconciler::CountOutbox(ConversationStatus& st) {
  TIDINGS_ASSIGN_OR_RETURN(auto left, store_->CountOutbox(st.conversation_id, backend_->name(),
                                                          config_.max_push_per_round));
  st.outbox_depth = left.total();
  st.outbox_failed = left.failed;
  return tidings::Status::Ok();
}

tidings::Status Reconciler::ParkConversation(ConversationStatus& st, const tidings::Status& error) {
  // Permission lost (e.g. removed from the channel): park what is pending as
  // failed with the reason, stop polling; nothing local is lost.
  st.stopped = true;
  st.last_error = error.ToString();
  auto pending = store_->Outbox(0, st.conversation_id, backend_->name());
  if (!pending.ok()) return pending.status();
  for (const auto& e : *pending) {
    if (e.failed) continue;
    TIDINGS_RETURN_IF_ERROR(store_->FailOutbox(e.seq, error.ToString(), /*permanent=*/true, 0));
  }
  TIDINGS_RETURN_IF_ERROR(CountOutbox(st));
  return Save(st);
}

bool Reconciler::EnsureRemote(ConversationStatus& st, tidings::Status* out) {
  auto conversation = store_->GetConversation(st.conversation_id);
  if (!conversation.ok()) return true;
  const std::string backend(backend_->name());
  const std::string members_key = MembersKey(backend, st.conversation_id);
  const std::string digest = MembersDigest(*conversation);
  if (auto remote = conversation->remote_ids.find(backend);
      remote != conversation->remote_ids.end()) {
    // Members added since the conversation was made remotely (a doctor
    // joining a care team) join with this push. A store from before the
    // digest was kept adds every member once: idempotent.
    auto made_with = store_->GetSyncState(members_key);
    if (!made_with.ok()) {
      *out = made_with.status();
      return false;
    }
    if (*made_with == digest) return true;
    tidings::Status added = backend_->AddMembers(*conversation, remote->second);
    if (ShouldStop()) {
      *out = Cancelled("sync stopped");
      return false;
    }
    if (added.ok()) {
      *out = store_->PutSyncState(members_key, digest);
      return out->ok();
    }
    RemoteFailed(st, added, out);
    return false;
  }
  auto remote = backend_->EnsureConversation(*conversation);
  if (ShouldStop()) {
    *out = Cancelled("sync stopped");
    return false;
  }
  if (remote.ok()) {
    *out = store_->SetConversationRemoteId(st.conversation_id, backend, *remote);
    if (out->ok()) *out = store_->PutSyncState(members_key, digest);
    return out->ok();
  }
  RemoteFailed(st, remote.status(), out);
  return false;
}

void Reconciler::RemoteFailed(ConversationStatus& st, const tidings::Status& error,
                              tidings::Status* out) {
  switch (Classify(error)) {
    case ErrorClass::kAuth:
      *out = RecordAuthError(st, error);
      break;
    case ErrorClass::kTransient:
      RecordFailure(st, error, backend_->last_retry_after_ms());
      *out = Save(st);
      break;
    case ErrorClass::kPermanent:
      *out = ParkConversation(st, error);
      break;
  }
}

tidings::Result<std::vector<engine::OutboxEntry>> Reconciler::DueEntries(const std::string& conv,
                                                                         int64_t now,
                                                                         bool* read_full) {
  // Bounded read: a backlog of 100k offline writes is pushed over several
  // rounds, not decrypted into memory at once. Parked entries at the head can
  // hide due ones behind them, so in that case read them all.
  auto outbox = store_->Outbox(config_.max_push_per_round, conv, backend_->name());
  if (!outbox.ok()) return outbox.status();
  const bool retry_now = retry_now_.count(conv) > 0;
  auto is_due = [this, now, retry_now](const engine::OutboxEntry& e) {
    return !e.failed && (retry_now || !Waiting(e.next_attempt_ms, now));
  };
  if (outbox->size() >= config_.max_push_per_round &&
      std::none_of(outbox->begin(), outbox->end(), is_due)) {
    outbox = store_->Outbox(0, conv, backend_->name());
    if (!outbox.ok()) return outbox.status();
  }
  *read_full = outbox->size() >= config_.max_push_per_round;
  // Outbox order: parked entries are stepped over (they must not block the
  // rest), but an entry still waiting out its backoff holds back everything
  // behind it.
  std::vector<engine::OutboxEntry> due;
  for (auto& e : *outbox) {
    if (e.failed) continue;
    if (!is_due(e)) break;
    due.push_back(std::move(e));
  }
  return due;
}

tidings::Status Reconciler::UploadAttachments(ConversationStatus& st,
                                              std::vector<engine::OutboxEntry>* due, Hold* hold) {
  *hold = Hold::kNone;
  for (size_t i = 0; i < due->size();) {
    engine::OutboxEntry& e = (*due)[i];
    if (e.op.kind != engine::OpKind::kSend || e.op.attachments.empty()) {
      ++i;
      continue;
    }
    tidings::Result<AttachmentTransfers::Progress> up =
        uploader_ != nullptr
            ? uploader_->UploadFor(&e.op)
            : FailedPrecondition(
                  "this message has attachments, and sync has no attachment store to upload "
                  "them to: configure an S3 bucket (docs/attachments.md), then retry it");
    if (ShouldStop()) return Cancelled("sync stopped");
    if (up.ok() && *up == AttachmentTransfers::Progress::kDone) {
      ++i;
      continue;
    }
    if (up.ok()) {
      // Under way on the transfers' thread: no failure, and no backoff. Order
      // holds: what was written after this send waits for it, while the
      // other conversations go on; the upload's end wakes this one.
      due->resize(i);
      *hold = Hold::kUploading;
      waiting_for_upload_.insert(st.conversation_id);
      return tidings::Status::Ok();
    }
    const tidings::Status& failed = up.status();
    switch (Classify(failed)) {
      case ErrorClass::kAuth:
        return RecordAuthError(st, failed);
      case ErrorClass::kPermanent:
        TIDINGS_RETURN_IF_ERROR(store_->FailOutbox(e.seq, failed.ToString(), true, 0));
        due->erase(due->begin() + static_cast<std::ptrdiff_t>(i));
        continue;
      case ErrorClass::kTransient:
        // Order holds: what was written after this send waits for it.
        RecordFailure(st, failed, std::nullopt);
        TIDINGS_RETURN_IF_ERROR(
            store_->FailOutbox(e.seq, failed.ToString(), false, st.next_attempt_ms));
        due->resize(i);
        *hold = Hold::kBackingOff;
        return tidings::Status::Ok();
    }
  }
  return tidings::Status::Ok();
}

void Reconciler::AddTargetRemoteId(engine::Operation* op) {
  if ((op->kind != engine::OpKind::kEdit && op->kind != engine::OpKind::kDelete) ||
      !op->remote_id.empty()) {
    return;
  }
  auto target = store_->Get(op->message_id);
  if (!target.ok()) return;  // not here (yet): the backend does without
  const auto& ids = target->remote_ids;
  if (auto it = ids.find(std::string(backend_->name())); it != ids.end()) {
    op->remote_id = it->second;  // this backend acked its send
  } else if (auto origin = ids.find("origin"); origin != ids.end()) {
    op->remote_id = origin->second;  // it was pulled
  }
}

tidings::Status Reconciler::Push(const std::string& conv) {
  ReloadIfStale();
  ConversationStatus& st = Load(conv);
  if (st.stopped) return tidings::Status::Ok();
  if (Waiting(st.next_attempt_ms, clock_())) return tidings::Status::Ok();
  if (ShouldStop()) return Cancelled("sync stopped");
  push_behind_.erase(conv);
  waiting_for_upload_.erase(conv);
  TIDINGS_ASSIGN_OR_RETURN(st.end_to_end, Sealed(conv));
  tidings::Status pushed = st.end_to_end ? PushSealed(st) : PushPlain(st);
  retry_now_.erase(conv);
  return pushed;
}

tidings::Status Reconciler::PushPlain(ConversationStatus& st) {
  const std::string& conv = st.conversation_id;
  const int64_t now = clock_();
  bool read_full = false;
  TIDINGS_ASSIGN_OR_RETURN(std::vector<engine::OutboxEntry> due, DueEntries(conv, now, &read_full));
  Hold hold = Hold::kNone;
  TIDINGS_RETURN_IF_ERROR(UploadAttachments(st, &due, &hold));
  if (due.empty()) {
    TIDINGS_RETURN_IF_ERROR(CountOutbox(st));
    return Save(st);
  }

  tidings::Status ensured;
  if (!EnsureRemote(st, &ensured)) return ensured;

  const size_t max_batch = std::max<size_t>(1, backend_->max_batch());
  size_t isolate_until = 0;  // one at a time below this: finding a refused op
  for (size_t start = 0; start < due.size();) {
    const size_t n = std::min(start < isolate_until ? 1 : max_batch, due.size() - start);
    std::vector<engine::Operation> ops;
    ops.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      ops.push_back(due[start + i].op);
      AddTargetRemoteId(&ops.back());
    }
    if (ShouldStop()) return Cancelled("sync stopped");
    auto acks = backend_->Push(conv, ops);
    // Stopped (or crashed) with the answer in hand: record nothing. The
    // entries stay pending and the retry is deduplicated by op id.
    if (ShouldStop()) return Cancelled("sync stopped");
    if (!acks.ok() || acks->size() != n) {
      tidings::Status error =
          acks.ok() ? Internal("backend returned a wrong number of acks") : acks.status();
      switch (Classify(error)) {
        case ErrorClass::kAuth:
          return RecordAuthError(st, error);
        case ErrorClass::kPermanent:
          if (error.code() == Code::kPermissionDenied || error.code() == Code::kNotFound) {
            return ParkConversation(st, error);
          }
          if (n > 1) {  // which one? retry this batch one at a time
            isolate_until = start + n;
            continue;
          }
          TIDINGS_RETURN_IF_ERROR(store_->FailOutbox(due[start].seq, error.ToString(), true, 0));
          start += n;
          continue;  // the rest is not blocked
        case ErrorClass::kTransient: {
          RecordFailure(st, error, backend_->last_retry_after_ms());
          for (size_t i = 0; i < n; ++i) {
            TIDINGS_RETURN_IF_ERROR(store_->FailOutbox(due[start + i].seq, error.ToString(), false,
                                                       st.next_attempt_ms));
          }
          TIDINGS_RETURN_IF_ERROR(CountOutbox(st));
          return Save(st);  // keep order: nothing behind it goes first
        }
      }
    }
    tidings::Status stopped;
    if (!RecordAcks(st, std::span(due).subspan(start, n), *acks, &stopped)) return stopped;
    start += n;
  }
  TIDINGS_RETURN_IF_ERROR(CountOutbox(st));
  if (hold == Hold::kBackingOff) return Save(st);
  // A full round read as many entries as allowed: more may be waiting
  // (unless an upload holds the rest).
  if (read_full && hold == Hold::kNone) push_behind_.insert(conv);
  return RecordSuccess(st, /*activity=*/true);
}

bool Reconciler::RecordAcks(ConversationStatus& st, std::span<const engine::OutboxEntry> batch,
                            const std::vector<PushAck>& acks, tidings::Status* out) {
  // Per-operation answers: the accepted ones are done whatever happened to
  // their neighbours; a transient refusal stops the conversation after
  // this batch.
  std::optional<tidings::Status> transient;
  std::optional<int64_t> retry_after;
  std::vector<uint64_t> retry_later;
  for (size_t i = 0; i < batch.size(); ++i) {
    const PushAck& ack = acks[i];
    const engine::OutboxEntry& e = batch[i];
    tidings::Status recorded;
    if (ack.status.ok()) {
      recorded = store_->AckOutbox(
          e.seq, {std::string(backend_->name()), ack.remote_id, ack.server_time_ms});
    } else {
      switch (Classify(ack.status)) {
        case ErrorClass::kAuth:
          *out = RecordAuthError(st, ack.status);
          return false;
        case ErrorClass::kPermanent:
          recorded = store_->FailOutbox(e.seq, ack.status.ToString(), true, 0);
          break;
        case ErrorClass::kTransient:
          if (!transient) transient = ack.status;
          if (ack.retry_after_ms)
            retry_after = std::max(retry_after.value_or(0), *ack.retry_after_ms);
          retry_later.push_back(e.seq);
          break;
      }
    }
    if (!recorded.ok()) {
      *out = recorded;
      return false;
    }
  }
  if (!transient) return true;
  RecordFailure(st, *transient, retry_after);
  for (uint64_t seq : retry_later) {
    *out = store_->FailOutbox(seq, transient->ToString(), false, st.next_attempt_ms);
    if (!out->ok()) return false;
  }
  *out = CountOutbox(st);
  if (out->ok()) *out = Save(st);
  return false;
}

tidings::Status Reconciler::Pull(const std::string& conv) {
  ReloadIfStale();
  ConversationStatus& st = Load(conv);
  if (st.stopped) return tidings::Status::Ok();
  if (Waiting(st.next_attempt_ms, clock_())) return tidings::Status::Ok();
  TIDINGS_ASSIGN_OR_RETURN(st.end_to_end, Sealed(conv));
  if (!st.end_to_end) return PullPlain(st);
  // An upgraded conversation's plaintext history is still pulled.
  TIDINGS_ASSIGN_OR_RETURN(std::string plain_cursor, store_->GetCursor(backend_->name(), conv));
  if (!plain_cursor.empty()) TIDINGS_RETURN_IF_ERROR(PullPlain(st));
  return PullSealed(st);
}

tidings::Status Reconciler::PullNewest(ConversationStatus& st, std::string* at, bool* merged,
                                       bool* pulled, tidings::Status* backend_error) {
  const std::string& conv = st.conversation_id;
  if (ShouldStop()) return Cancelled("sync stopped");
  auto newest = backend_->PullHistory(conv, "", config_.pull_page_size);
  if (ShouldStop()) return Cancelled("sync stopped");
  if (!newest.ok() && newest.status().code() == Code::kUnimplemented) {
    oldest_first_only_ = true;  // this backend reads oldest-first: from the beginning
    return tidings::Status::Ok();
  }
  *pulled = true;
  if (!newest.ok()) {
    *backend_error = newest.status();
    return tidings::Status::Ok();
  }
  if (newest->forward_cursor.empty()) {
    if (!newest->ops.empty() || !newest->too_new.empty()) {
      *backend_error = Internal("the backend's newest page came without the cursor after it");
    }
    return tidings::Status::Ok();  // an empty log: asked again next time
  }
  st.skipped_ops += newest->skipped;
  // The page, the cursor after it and the gap before it in one batch: a
  // crash leaves either none of them (the newest page is asked for again) or
  // all three (forward pulls and the fill go on from them).
  TIDINGS_RETURN_IF_ERROR(
      MergePage(st, newest->ops, newest->too_new,
                engine::PagePositions{.cursor = newest->forward_cursor, .gap = newest->before}));
  *at = newest->forward_cursor;
  st.cursor = *at;
  st.filling_history = !newest->before.empty();
  *merged = !newest->ops.empty();
  return tidings::Status::Ok();
}

tidings::Status Reconciler::RestartFill(ConversationStatus& st, uint64_t* merged,
                                        tidings::Status* backend_error) {
  const std::string& conv = st.conversation_id;
  if (ShouldStop()) return Cancelled("sync stopped");
  auto newest = backend_->PullHistory(conv, "", config_.pull_page_size);
  if (ShouldStop()) return Cancelled("sync stopped");
  if (!newest.ok()) {
    *backend_error = newest.status();
    return tidings::Status::Ok();
  }
  st.skipped_ops += newest->skipped;
  // The cursor stays where forward pulls took it (past this page, or at
  // it); only the gap is written, over the record that did not decode.
  TIDINGS_RETURN_IF_ERROR(
      MergePage(st, newest->ops, newest->too_new, engine::PagePositions{.gap = newest->before}));
  *merged += newest->ops.size();
  return tidings::Status::Ok();
}

tidings::Status Reconciler::FillHistory(ConversationStatus& st, size_t pages, uint64_t* merged,
                                        tidings::Status* backend_error) {
  const std::string& conv = st.conversation_id;
  *backend_error = tidings::Status::Ok();
  TIDINGS_ASSIGN_OR_RETURN(std::optional<std::string> stored,
                           ReadGap(*store_, backend_->name(), conv));
  if (!stored.has_value() && pages > 0) {
    TIDINGS_RETURN_IF_ERROR(RestartFill(st, merged, backend_error));
    if (!backend_error->ok()) return tidings::Status::Ok();  // the record stays; retried
    TIDINGS_ASSIGN_OR_RETURN(stored, ReadGap(*store_, backend_->name(), conv));
  }
  // Still a record that does not decode only when no page is asked for
  // now: open, and restarted by the next fill that fetches.
  const bool undecoded = !stored.has_value();
  std::string gap = std::move(stored).value_or("");
  for (size_t page = 0; page < pages && !gap.empty(); ++page) {
    if (ShouldStop()) return Cancelled("sync stopped");
    auto older = backend_->PullHistory(conv, gap, config_.pull_page_size);
    if (ShouldStop()) return Cancelled("sync stopped");
    if (!older.ok()) {
      *backend_error = older.status();
      break;
    }
    if (older->before == gap) {
      *backend_error = Internal("the backend's older page did not move back from its position");
      break;
    }
    st.skipped_ops += older->skipped;
    tidings::Status written =
        MergePage(st, older->ops, older->too_new,
                  engine::PagePositions{.gap = older->before, .gap_from = gap});
    if (written.code() == Code::kAborted) {
      // Another fill moved the gap (its page was merged, harmlessly, here
      // too): go on from where it is now.
      TIDINGS_ASSIGN_OR_RETURN(gap, store_->GetGap(backend_->name(), conv));
      continue;
    }
    TIDINGS_RETURN_IF_ERROR(written);
    *merged += older->ops.size();
    gap = older->before;
  }
  st.filling_history = undecoded || !gap.empty();
  if (st.filling_history && backend_error->ok()) {
    filling_.insert(conv);
  } else {
    filling_.erase(conv);
  }
  return tidings::Status::Ok();
}

tidings::Status Reconciler::PullPlain(ConversationStatus& st) {
  const std::string& conv = st.conversation_id;
  auto cursor = store_->GetCursor(backend_->name(), conv);
  if (!cursor.ok()) return cursor.status();
  std::string at = *cursor;
  TIDINGS_RETURN_IF_ERROR(RetryHeld(st, at));
  bool merged_any = false;
  behind_.erase(conv);
  filling_.erase(conv);
  size_t page = 0;
  if (at.empty() && config_.newest_first && !oldest_first_only_) {
    // Never pulled: the newest page first, the one the user opened the app
    // for; older history fills in behind it.
    bool pulled = false;
    tidings::Status failed;
    TIDINGS_RETURN_IF_ERROR(PullNewest(st, &at, &merged_any, &pulled, &failed));
    if (!failed.ok()) return Failed(st, failed, /*park_not_found=*/false);
    if (pulled) page = 1;
  }
  ReadAhead<PullPage> ahead(
      [&](std::string_view from) { return backend_->Pull(conv, from, config_.pull_page_size); },
      config_.read_ahead);
  for (;; ++page) {
    if (page >= config_.max_pull_pages_per_round) {
      behind_.insert(conv);  // more is ready: NextPollMs says "now"
      break;
    }
    if (ShouldStop()) return Cancelled("sync stopped");
    auto result = ahead.Take(at);
    if (ShouldStop()) return Cancelled("sync stopped");
    if (!result.ok()) return Failed(st, result.status(), /*park_not_found=*/false);
    // The next page is read while this one merges (nothing below calls the
    // backend); a page the merge does not leave the cursor at is dropped.
    if (result->has_more && page + 1 < config_.max_pull_pages_per_round) {
      ahead.Start(result->next_cursor);
    }
    st.skipped_ops += result->skipped;  // undecodable items the backend passed
    // The page and its cursor in one atomic write: a crash neither skips nor
    // re-applies (and re-applying would be harmless: merges are idempotent).
    // An empty page that does not move the cursor writes nothing.
    if (!result->ops.empty() || !result->too_new.empty() || result->next_cursor != at) {
      TIDINGS_RETURN_IF_ERROR(MergePage(st, result->ops, result->too_new,
                                        engine::PagePositions{.cursor = result->next_cursor}));
      at = result->next_cursor;
      st.cursor = at;
    }
    merged_any = merged_any || !result->ops.empty();
    if (!result->has_more) break;
  }
  st.cursor = at;
  if (!behind_.count(conv)) {
    // Caught up with what is new: now some older history, if any is missing.
    uint64_t filled = 0;
    tidings::Status failed;
    TIDINGS_RETURN_IF_ERROR(FillHistory(st, config_.max_history_pages_per_round, &filled, &failed));
    if (!failed.ok()) return Failed(st, failed, /*park_not_found=*/false);
  }
  return RecordSuccess(st, merged_any);
}

tidings::Status Reconciler::MergePage(ConversationStatus& st,
                                      std::span<const engine::Operation> ops,
                                      std::span<const HeldOperation> too_new,
                                      const engine::PagePositions& to) {
  const std::string& conv = st.conversation_id;
  std::vector<engine::SyncStateWrite> state;
  if (!too_new.empty()) {
    // Written by a newer Tidings: kept with the position that passes them.
    const std::string key = HeldKey(backend_->name(), conv);
    TIDINGS_ASSIGN_OR_RETURN(std::string raw, store_->GetSyncState(key));
    TIDINGS_ASSIGN_OR_RETURN(HeldOperations held, DecodeHeld(raw));
    held.reader = Newest();
    st.skipped_ops +=
        HoldWithinBounds(&held, std::vector<HeldOperation>(too_new.begin(), too_new.end()));
    held_[conv] = held.ops.size();
    st.waiting_for_upgrade = held.ops.size();
    state.push_back({key, EncodeHeld(held)});
  }
  TIDINGS_RETURN_IF_ERROR(MergeValid(st, ops, to, state));
  if (uploader_ != nullptr) uploader_->AfterMerge(ops);
  return tidings::Status::Ok();
}

tidings::Status Reconciler::MergeValid(ConversationStatus& st,
                                       std::span<const engine::Operation> ops,
                                       const engine::PagePositions& to,
                                       std::span<const engine::SyncStateWrite> state) {
  const std::string& conv = st.conversation_id;
  tidings::Status merged = store_->MergeAt(backend_->name(), conv, ops, to, state);
  if (merged.code() != Code::kInvalidArgument && merged.code() != Code::kTooLarge) return merged;
  // The store refuses something in this page (another client's malformed or
  // oversized data). Stalling on it would stop the conversation forever:
  // merge what is valid one operation at a time (no position moves, so a
  // crash here re-applies, harmlessly), skip the rest, then advance.
  for (const auto& op : ops) {
    tidings::Status one =
        store_->MergeAt(backend_->name(), conv, std::span(&op, 1), engine::PagePositions{}, {});
    if (one.code() == Code::kInvalidArgument || one.code() == Code::kTooLarge) {
      st.skipped_ops++;
      continue;
    }
    TIDINGS_RETURN_IF_ERROR(one);
  }
  return store_->MergeAt(backend_->name(), conv, {}, to, state);
}

uint8_t Reconciler::Newest() const {
  return config_.newest_operation_version ? config_.newest_operation_version
                                          : wire::kOperationVersion;
}

uint64_t Reconciler::HeldPlain(const std::string& conversation_id) const {
  auto it = held_.find(conversation_id);
  return it == held_.end() ? 0 : it->second;
}

tidings::Status Reconciler::RetryHeld(ConversationStatus& st, const std::string& at) {
  const std::string& conv = st.conversation_id;
  if (held_.count(conv)) return tidings::Status::Ok();
  const std::string key = HeldKey(backend_->name(), conv);
  TIDINGS_ASSIGN_OR_RETURN(std::string raw, store_->GetSyncState(key));
  TIDINGS_ASSIGN_OR_RETURN(HeldOperations held, DecodeHeld(raw));
  if (!held.ops.empty() && held.reader < Newest()) {
    // An upgrade since they were kept: what this build reads is merged now.
    std::vector<engine::Operation> readable;
    std::vector<HeldOperation> still;
    for (auto& h : held.ops) {
      auto op = wire::DecodeOperation(h.bytes, Newest());
      if (op.ok()) {
        op->server_time_ms = h.server_time_ms;
        op->remote_id = h.remote_id;
        readable.push_back(std::move(op).value());
      } else if (op.status().code() == Code::kFailedPrecondition) {
        still.push_back(std::move(h));
      } else {
        st.skipped_ops++;
      }
    }
    held.ops = std::move(still);
    held.reader = Newest();
    const engine::SyncStateWrite write{key, EncodeHeld(held)};
    TIDINGS_RETURN_IF_ERROR(
        MergeValid(st, readable, engine::PagePositions{.cursor = at}, std::span(&write, 1)));
    if (uploader_ != nullptr) uploader_->AfterMerge(readable);
  }
  held_[conv] = held.ops.size();
  st.waiting_for_upgrade = held.ops.size();
  return tidings::Status::Ok();
}

Result<std::vector<std::string>> Reconciler::Conversations() {
  ReloadIfStale();
  TIDINGS_RETURN_IF_ERROR(Session().status());
  std::set<std::string> all;
  TIDINGS_ASSIGN_OR_RETURN(auto local, store_->Conversations(0));
  for (const auto& c : local) all.insert(c.id);
  auto remote = backend_->ListConversations();
  if (remote.ok()) {
    for (const auto& id : *remote) {
      // Someone made it in plaintext on the server: it stays plaintext here
      // until a member upgrades it.
      if (!all.count(id) && session_) {
        TIDINGS_ASSIGN_OR_RETURN(auto mode, session_->GetMode(id));
        if (mode.first == e2e::Mode::kUnset) {
          TIDINGS_RETURN_IF_ERROR(session_->SetMode(id, e2e::Mode::kPlain));
        }
      }
      all.insert(id);
    }
  } else if (Classify(remote.status()) == ErrorClass::kAuth) {
    return remote.status();
  }
  auto bound = DiscoverLogs();
  if (bound.ok()) {
    all.insert(bound->begin(), bound->end());
  } else if (Classify(bound.status()) == ErrorClass::kAuth) {
    return bound.status();
  }
  return std::vector<std::string>(all.begin(), all.end());
}

tidings::Status Reconciler::SyncAll() {
  TIDINGS_ASSIGN_OR_RETURN(auto convs, Conversations());
  // Bounded rounds, each conversation in turn, until every one is caught up
  // (each round is bounded in memory; a failure ends a conversation's rounds
  // through the backoff, not HasMore): every conversation's newest page
  // comes before any conversation's older history.
  while (!convs.empty()) {
    std::vector<std::string> more;
    for (const auto& c : convs) {
      TIDINGS_RETURN_IF_ERROR(Push(c));
      TIDINGS_RETURN_IF_ERROR(Pull(c));
      if (HasMore(c)) more.push_back(c);
    }
    convs = std::move(more);
  }
  return tidings::Status::Ok();
}

bool Reconciler::HasMore(const std::string& conv) const {
  // A conversation parked or waiting out a backoff has nothing to do now,
  // whatever it still has to fetch: Push and Pull return at once for it, so
  // "more" would spin a caller that loops while it holds (SyncAll).
  if (auto it = status_.find(conv);
      it != status_.end() &&
      (it->second.stopped || Waiting(it->second.next_attempt_ms, clock_()))) {
    return false;
  }
  // A history still to fill is more only where a Pull fills some of it: with
  // no history pages per round it fills on demand only (LoadOlder).
  const bool fills = config_.max_history_pages_per_round > 0 && filling_.count(conv) > 0;
  return behind_.count(conv) > 0 || push_behind_.count(conv) > 0 || fills;
}

Result<HistoryFill> Reconciler::LoadOlder(const std::string& conv, size_t pages) {
  ReloadIfStale();
  ConversationStatus& st = Load(conv);
  TIDINGS_ASSIGN_OR_RETURN(auto gap, ReadGap(*store_, backend_->name(), conv));
  HistoryFill fill;
  if (!Open(gap)) {
    // An end-to-end conversation upgraded from plaintext may still fill its
    // plaintext history (above); a sealed log is read in log order only.
    TIDINGS_ASSIGN_OR_RETURN(bool sealed, Sealed(conv));
    if (sealed) {
      return FailedPrecondition(
          "end-to-end conversations fill oldest-first: their history arrives as sync pulls it");
    }
    return fill;
  }
  tidings::Status failed;
  TIDINGS_RETURN_IF_ERROR(FillHistory(st, std::max<size_t>(pages, 1), &fill.merged, &failed));
  TIDINGS_RETURN_IF_ERROR(failed);
  fill.more = st.filling_history;
  return fill;
}

int64_t Reconciler::NextPollMs(const std::string& conv) {
  ConversationStatus& st = Load(conv);
  const int64_t now = clock_();
  const int64_t next_attempt = Waiting(st.next_attempt_ms, now) ? st.next_attempt_ms : 0;
  if (HasMore(conv)) return next_attempt;
  const int64_t idle_for = now - std::max(st.last_activity_ms, int64_t{0});
  int64_t interval = config_.active_poll_ms;
  if (st.last_activity_ms == 0 || idle_for > config_.active_window_ms) {
    // Back off from active to idle as the silence grows.
    interval = std::min(config_.idle_poll_ms, std::max(config_.active_poll_ms, idle_for / 10));
  }
  return std::max(next_attempt, std::min(st.last_success_ms, now) + interval);
}

ConversationStatus Reconciler::GetStatus(const std::string& conv) { return Load(conv); }

void Reconciler::RetryNow() {
  for (auto& [conv, st] : status_) {
    if (st.stopped) continue;
    st.next_attempt_ms = 0;  // persisted with the next save
    retry_now_.insert(conv);
  }
}

tidings::Status Reconciler::Resume(const std::string& conv) {
  ConversationStatus& st = Load(conv);
  st.stopped = false;
  st.next_attempt_ms = 0;
  st.consecutive_failures = 0;
  st.last_error.clear();
  return Save(st);
}

tidings::Status Reconciler::RetryFailed(uint64_t seq) {
  TIDINGS_ASSIGN_OR_RETURN(auto entry, store_->GetOutboxEntry(seq));
  TIDINGS_RETURN_IF_ERROR(store_->RetryFailed(seq));
  return Resume(entry.op.conversation_id);
}

tidings::Status Reconciler::DiscardFailed(uint64_t seq) {
  TIDINGS_ASSIGN_OR_RETURN(auto entry, store_->GetOutboxEntry(seq));
  TIDINGS_RETURN_IF_ERROR(store_->DiscardFailed(seq));
  ConversationStatus& st = Load(entry.op.conversation_id);
  TIDINGS_RETURN_IF_ERROR(CountOutbox(st));
  return Save(st);
}

Result<std::vector<ConversationStatus>> ReadSyncStatus(engine::SyncLog& store,
                                                       std::string_view backend) {
  TIDINGS_ASSIGN_OR_RETURN(std::string index, store.GetSyncState(IndexKey(backend)));
  std::vector<ConversationStatus> out;
  for (const std::string& conv : SplitLines(index)) {
    TIDINGS_ASSIGN_OR_RETURN(ConversationStatus st, ReadOne(store, backend, conv));
    // The status record lags the cursor by design (see Save); the store's
    // cursor is exact.
    TIDINGS_ASSIGN_OR_RETURN(st.cursor, store.GetCursor(backend, conv));
    TIDINGS_ASSIGN_OR_RETURN(auto gap, ReadGap(store, backend, conv));
    st.filling_history = Open(gap) || Rereading(store, backend, conv);
    TIDINGS_ASSIGN_OR_RETURN(auto outbox, store.CountOutbox(conv, backend));
    st.outbox_depth = outbox.total();
    st.outbox_failed = outbox.failed;
    out.push_back(std::move(st));
  }
  return out;
}

Result<std::vector<std::string>> SyncedBackends(engine::SyncLog& store) {
  TIDINGS_ASSIGN_OR_RETURN(std::string raw, store.GetSyncState(kBackendsKey));
  return SplitLines(raw);
}

tidings::Status RetryFailedOperation(engine::SyncLog& store, uint64_t seq) {
  TIDINGS_ASSIGN_OR_RETURN(auto entry, store.GetOutboxEntry(seq));
  TIDINGS_RETURN_IF_ERROR(store.RetryFailed(seq));
  TIDINGS_ASSIGN_OR_RETURN(auto backends, SyncedBackends(store));
  for (const auto& backend : backends) {
    TIDINGS_ASSIGN_OR_RETURN(auto st, ReadOne(store, backend, entry.op.conversation_id));
    if (!st.stopped && st.next_attempt_ms == 0) continue;
    st.stopped = false;
    st.next_attempt_ms = 0;
    st.consecutive_failures = 0;
    st.last_error.clear();
    TIDINGS_RETURN_IF_ERROR(
        store.PutSyncState(StatusKey(backend, entry.op.conversation_id), EncodeStatus(st)));
  }
  return tidings::Status::Ok();
}

tidings::Status DiscardFailedOperation(engine::SyncLog& store, uint64_t seq) {
  return store.DiscardFailed(seq);
}

}  // namespace tidings::sync
