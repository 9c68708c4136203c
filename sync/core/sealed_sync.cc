// The reconciler's end-to-end path: conversations whose operations travel
// sealed, as frames of an opaque log (sync/e2e/session.h does the
// cryptography; this file moves frames and records outcomes, as
// reconciler.cc does for plaintext operations).
#include <algorithm>

#include "common/lines.h"
#include "crypto/hash.h"
#include "crypto/secret_key.h"
#include "sync/core/read_ahead.h"
#include "sync/core/reconciler.h"

namespace tidings::sync {
namespace {

// The store cursor key of a sealed log's pages (SyncLog::Merge needs one;
// the log state holds the authoritative cursor), apart from the plaintext
// cursor an upgraded conversation keeps pulling.
std::string SealedCursorName(std::string_view backend) { return std::string(backend) + "#e2e"; }

void WipeWrites(std::vector<engine::SyncStateWrite>* writes) {
  for (auto& w : *writes) crypto::Wipe(&w.value);
}

std::string MemberList(const engine::Conversation& c, const std::string& me) {
  std::vector<std::string> members = c.members;
  members.push_back(me);
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  std::string out;
  for (const auto& m : members) out += m + "\n";
  return out;
}

}  // namespace

void Reconciler::ReloadIfStale() {
  if (!session_stale_) return;
  session_.reset();
  saved_state_.clear();
  session_stale_ = false;
}

Result<e2e::Session*> Reconciler::Session() {
  if (session_) return session_.get();
  if (backend_->max_frame_bytes() == 0) return static_cast<e2e::Session*>(nullptr);
  e2e::SessionOptions options;
  options.backend = std::string(backend_->name());
  options.user = store_->user_id();
  options.max_frame_bytes = backend_->max_frame_bytes();
  options.now_ms = [this] { return static_cast<uint64_t>(clock_()); };
  options.newest_operation_version = config_.newest_operation_version;
  options.max_pending_frames = config_.max_pending_frames;
  TIDINGS_ASSIGN_OR_RETURN(session_, e2e::Session::Open(store_, std::move(options)));
  return session_.get();
}

Result<std::string> Reconciler::ConversationOfLog(const std::string& log_id) {
  TIDINGS_ASSIGN_OR_RETURN(e2e::Session * session, Session());
  if (session == nullptr) return std::string();
  // Only a log this device knows: LogById would start a state for any id.
  TIDINGS_ASSIGN_OR_RETURN(auto known, session->KnownLogs());
  if (std::find(known.begin(), known.end(), log_id) == known.end()) return std::string();
  TIDINGS_ASSIGN_OR_RETURN(e2e::LogState * log, session->LogById(log_id));
  return log->conversation_id;
}

Result<std::string> Reconciler::TypingAddress(const std::string& conv) {
  TIDINGS_ASSIGN_OR_RETURN(e2e::Session * session, Session());
  if (session == nullptr) return conv;
  TIDINGS_ASSIGN_OR_RETURN(auto mode, session->GetMode(conv));
  return mode.first == e2e::Mode::kSealed && !mode.second.empty() ? mode.second : conv;
}

e2e::FetchDevices Reconciler::Fetcher() {
  if (backend_->authenticates_senders()) return {};
  return [this](const std::string& user) { return backend_->FetchDevices(user); };
}

Result<bool> Reconciler::Sealed(const std::string& conv) {
  TIDINGS_ASSIGN_OR_RETURN(e2e::Session * session, Session());
  if (!session) return false;
  TIDINGS_ASSIGN_OR_RETURN(auto mode, session->GetMode(conv));
  if (mode.first == e2e::Mode::kSealed) return true;
  if (mode.first == e2e::Mode::kPlain) return false;
  // Never decided: a conversation with plaintext history stays plaintext
  // (upgrade it explicitly); a new one follows the default.
  TIDINGS_ASSIGN_OR_RETURN(std::string cursor, store_->GetCursor(backend_->name(), conv));
  auto c = store_->GetConversation(conv);
  const bool has_history =
      !cursor.empty() || (c.ok() && c->remote_ids.count(std::string(backend_->name())) > 0);
  const bool sealed = config_.end_to_end_default && !has_history;
  TIDINGS_RETURN_IF_ERROR(session->SetMode(conv, sealed ? e2e::Mode::kSealed : e2e::Mode::kPlain));
  return sealed;
}

void Reconciler::NoteLog(ConversationStatus& st, const e2e::LogState& log) {
  st.rejected_frames = log.rejected;
  st.pending_frames = log.pending.size() - log.too_new();
  st.waiting_for_upgrade = HeldPlain(st.conversation_id) + log.too_new();
  st.last_rejection = log.last_rejection;
}

tidings::Status Reconciler::SaveLog(e2e::LogState& log) {
  auto writes = session_->StateWrites(log);
  // A poll that changed nothing writes nothing (a durable write per poll per
  // conversation would cost more than the poll).
  std::erase_if(writes, [this](engine::SyncStateWrite& w) {
    const std::string digest = crypto::Sha256Hex(w.value);
    const bool unchanged = saved_state_[w.key] == digest;
    if (unchanged) crypto::Wipe(&w.value);
    return unchanged;
  });
  tidings::Status st = writes.empty() ? tidings::Status::Ok() : store_->PutSyncStates(writes);
  if (st.ok()) {
    for (const auto& w : writes) saved_state_[w.key] = crypto::Sha256Hex(w.value);
  } else {
    session_stale_ = true;  // memory is ahead of the store: reload it
  }
  WipeWrites(&writes);
  return st;
}

tidings::Status Reconciler::Failed(ConversationStatus& st, const tidings::Status& error,
                                   bool park_not_found) {
  switch (Classify(error)) {
    case ErrorClass::kAuth:
      return RecordAuthError(st, error);
    case ErrorClass::kTransient:
      RecordFailure(st, error, backend_->last_retry_after_ms());
      return Save(st);
    case ErrorClass::kPermanent:
      if (error.code() == Code::kPermissionDenied ||
          (park_not_found && error.code() == Code::kNotFound)) {
        return ParkConversation(st, error);
      }
      RecordFailure(st, error, std::nullopt);
      return Save(st);
  }
  return error;
}

tidings::Status Reconciler::CarryLongBodies(std::vector<engine::OutboxEntry>* due) {
  // Without an object store the send is parked as too large when sealed.
  const size_t frame_bytes = backend_->max_frame_bytes();
  if (uploader_ == nullptr || frame_bytes == 0) return tidings::Status::Ok();
  // With several backends, each pushing the entry on its own thread, one
  // could push the text while another rewrites it into a file: two
  // operations under one id. Only a store that syncs one backend carries at
  // push; with several, the door carries (their limits are recorded then).
  if (store_->OutboxBackends().size() > 1) return tidings::Status::Ok();
  for (auto& e : *due) {
    if (e.op.kind != engine::OpKind::kSend || !e.acked_by.empty() ||
        e.op.body.size() <= e2e::MaxSealedBody(frame_bytes, e.op)) {
      continue;
    }
    auto carried = store_->CarryBodyAsAttachment(e.seq);
    if (carried.ok()) {
      e = std::move(carried).value();
    } else if (carried.status().code() != Code::kFailedPrecondition) {
      return carried.status();  // the store's own error
    }
  }
  return tidings::Status::Ok();
}

tidings::Status Reconciler::PushSealed(ConversationStatus& st) {
  const std::string& conv = st.conversation_id;
  auto conversation = store_->GetConversation(conv);
  if (!conversation.ok()) return tidings::Status::Ok();  // nothing local to push yet
  TIDINGS_ASSIGN_OR_RETURN(e2e::LogState * log, session_->LogForConversation(conv));
  NoteLog(st, *log);
  const int64_t now = clock_();
  bool read_full = false;
  TIDINGS_ASSIGN_OR_RETURN(std::vector<engine::OutboxEntry> due, DueEntries(conv, now, &read_full));
  TIDINGS_RETURN_IF_ERROR(CarryLongBodies(&due));
  Hold hold = Hold::kNone;
  TIDINGS_RETURN_IF_ERROR(UploadAttachments(st, &due, &hold));

  // The log exists remotely with every member able to read it.
  const std::string members = MemberList(*conversation, store_->user_id());
  if (log->ensured_members != members) {
    auto made = backend_->EnsureLog({log->log_id, SplitLines(members)});
    if (ShouldStop()) return Cancelled("sync stopped");
    if (!made.ok()) return Failed(st, made.status());
    log->ensured_members = members;
    log->on_server = true;
  }
  if (!published_ && !backend_->authenticates_senders()) {
    tidings::Status published = backend_->PublishDevice(session_->keys().record().Encode());
    if (ShouldStop()) return Cancelled("sync stopped");
    if (!published.ok()) return Failed(st, published);
    published_ = true;
  }
  // The conversation's other logs (made apart by another device) take no
  // operations, but their keys must still reach every member's devices.
  TIDINGS_ASSIGN_OR_RETURN(auto others, session_->BoundLogs(conv));
  for (const auto& id : others) {
    if (id == log->log_id) continue;
    TIDINGS_ASSIGN_OR_RETURN(e2e::LogState * other, session_->LogById(id));
    // Made here and never made remotely (another log became the one to push
    // to first): nothing to share there.
    if (!other->on_server) continue;
    TIDINGS_ASSIGN_OR_RETURN(auto frames,
                             session_->ControlFrames(*other, *conversation, Fetcher()));
    TIDINGS_RETURN_IF_ERROR(SaveLog(*other));
    if (frames.empty()) continue;
    auto acks = backend_->PushFrames(other->log_id, frames);
    if (ShouldStop()) return Cancelled("sync stopped");
    if (!acks.ok() && Classify(acks.status()) == ErrorClass::kAuth) {
      return RecordAuthError(st, acks.status());
    }
    if (!acks.ok() || acks->size() != frames.size()) continue;  // again next round
    for (size_t i = 0; i < frames.size(); ++i) {
      if ((*acks)[i].status.ok()) session_->ControlAcked(*other, frames[i]);
    }
    TIDINGS_RETURN_IF_ERROR(SaveLog(*other));
  }
  TIDINGS_ASSIGN_OR_RETURN(auto control, session_->ControlFrames(*log, *conversation, Fetcher()));
  // A new epoch's key is durable before anything sealed under it leaves.
  TIDINGS_RETURN_IF_ERROR(SaveLog(*log));
  if (control.empty() && due.empty()) {
    TIDINGS_RETURN_IF_ERROR(CountOutbox(st));
    return Save(st);
  }

  // Frames in order: control first, then one per due operation.
  std::vector<Frame> frames = std::move(control);
  const size_t n_control = frames.size();
  std::vector<engine::OutboxEntry> sealed_entries;
  for (auto& e : due) {
    auto frame = session_->Seal(*log, e.op);
    if (frame.status().code() == Code::kTooLarge) {
      TIDINGS_RETURN_IF_ERROR(
          store_->FailOutbox(e.seq, frame.status().ToString(), /*permanent=*/true, 0));
      continue;
    }
    TIDINGS_RETURN_IF_ERROR(frame.status());
    frames.push_back(std::move(frame).value());
    sealed_entries.push_back(std::move(e));
  }

  const size_t max_batch = std::max<size_t>(1, backend_->max_batch());
  for (size_t start = 0; start < frames.size();) {
    const size_t n = std::min(max_batch, frames.size() - start);
    if (ShouldStop()) return Cancelled("sync stopped");
    auto acks = backend_->PushFrames(log->log_id, std::span(frames).subspan(start, n));
    if (ShouldStop()) return Cancelled("sync stopped");
    if (!acks.ok() || acks->size() != n) {
      tidings::Status error =
          acks.ok() ? Internal("backend returned a wrong number of acks") : acks.status();
      if (Classify(error) == ErrorClass::kTransient) {
        RecordFailure(st, error, backend_->last_retry_after_ms());
        for (size_t i = std::max(start, n_control); i < start + n; ++i) {
          TIDINGS_RETURN_IF_ERROR(store_->FailOutbox(sealed_entries[i - n_control].seq,
                                                     error.ToString(), false, st.next_attempt_ms));
        }
        TIDINGS_RETURN_IF_ERROR(SaveLog(*log));
        TIDINGS_RETURN_IF_ERROR(CountOutbox(st));
        return Save(st);
      }
      TIDINGS_RETURN_IF_ERROR(SaveLog(*log));
      return Failed(st, error);
    }
    // Control frames: remember what the backend took; operations: as acks.
    std::vector<engine::OutboxEntry> batch_entries;
    std::vector<PushAck> op_acks;
    for (size_t i = 0; i < n; ++i) {
      const size_t at = start + i;
      if (at < n_control) {
        if ((*acks)[i].status.ok()) session_->ControlAcked(*log, frames[at]);
        continue;
      }
      batch_entries.push_back(sealed_entries[at - n_control]);
      op_acks.push_back((*acks)[i]);
    }
    TIDINGS_RETURN_IF_ERROR(SaveLog(*log));
    tidings::Status stopped;
    if (!batch_entries.empty() && !RecordAcks(st, batch_entries, op_acks, &stopped)) {
      return stopped;
    }
    start += n;
  }
  TIDINGS_RETURN_IF_ERROR(CountOutbox(st));
  NoteLog(st, *log);
  if (hold == Hold::kBackingOff) return Save(st);
  if (read_full && hold == Hold::kNone) push_behind_.insert(conv);
  return RecordSuccess(st, /*activity=*/true);
}

tidings::Status Reconciler::CommitPage(e2e::LogState& log, const e2e::OpenResult& opened,
                                       const std::string& cursor, ConversationStatus* st) {
  std::vector<engine::SyncStateWrite> writes = opened.writes;
  auto state = session_->StateWrites(log);
  writes.insert(writes.end(), std::make_move_iterator(state.begin()),
                std::make_move_iterator(state.end()));
  tidings::Status result;
  if (!log.bound()) {
    result = store_->PutSyncStates(writes);
  } else {
    const std::string name = SealedCursorName(backend_->name());
    result = store_->Merge(name, log.conversation_id, opened.ops, cursor, writes);
    if (result.code() == Code::kInvalidArgument || result.code() == Code::kTooLarge) {
      // An authentic operation the store refuses (over a limit): merge the
      // rest one by one and skip it, as the plaintext path does.
      for (const auto& op : opened.ops) {
        tidings::Status one = store_->Merge(name, log.conversation_id, std::span(&op, 1), cursor);
        if (one.code() == Code::kInvalidArgument || one.code() == Code::kTooLarge) {
          if (st) st->skipped_ops++;
          continue;
        }
        if (!one.ok()) {
          WipeWrites(&writes);
          session_stale_ = true;
          return one;
        }
      }
      result = store_->PutSyncStates(writes);
    }
  }
  if (result.ok()) {
    for (const auto& w : writes) saved_state_[w.key] = crypto::Sha256Hex(w.value);
  }
  WipeWrites(&writes);
  // The page opened into the session's state (its cursor, the frames it
  // took out of pending): with the write failed, that state is reloaded from
  // the store before the next round, which pulls the page again.
  if (!result.ok()) session_stale_ = true;
  TIDINGS_RETURN_IF_ERROR(result);
  if (log.bound() && uploader_ != nullptr) uploader_->AfterMerge(opened.ops);
  if (log.bound() && opened.conversation_info) {
    TIDINGS_RETURN_IF_ERROR(store_->SetConversationInfo(
        log.conversation_id, opened.conversation_info->title, opened.conversation_info->members));
  }
  return tidings::Status::Ok();
}

tidings::Status Reconciler::PullLog(e2e::LogState& log, ConversationStatus* st) {
  ReadAhead<FramePage> ahead(
      [this, log_id = log.log_id](std::string_view from) {
        return backend_->PullFrames(log_id, from, config_.pull_page_size);
      },
      config_.read_ahead);
  bool preview = config_.newest_first;  // once per call, when due
  for (size_t page = 0;; ++page) {
    if (page == config_.max_pull_pages_per_round) {
      if (st) behind_.insert(st->conversation_id);
      return tidings::Status::Ok();
    }
    if (ShouldStop()) return Cancelled("sync stopped");
    if (preview && e2e::Session::PreviewDue(log)) {
      preview = false;
      // Once per re-read in this process, even if its first page keeps
      // failing (a restart may show it again: merges are idempotent).
      if (previewed_.insert(log.log_id + "/" + log.replay_until).second) {
        ahead.Drop();
        TIDINGS_RETURN_IF_ERROR(PreviewLog(log, st));
      }
    }
    const std::string at = log.cursor;
    auto result = ahead.Take(at);
    if (ShouldStop()) return Cancelled("sync stopped");
    if (!result.ok()) return result.status();
    // (a re-read's were counted when first read)
    if (st && !log.rereading) st->skipped_ops += result->skipped;
    // The next page is read while this one opens and commits; where opening
    // asks the backend for senders' devices (one that does not authenticate
    // them: Fetcher), only while it commits. Opening may move the cursor
    // (a re-read): a page started before it is then dropped by Take.
    const e2e::FetchDevices fetch = Fetcher();
    const bool page_left = page + 1 < config_.max_pull_pages_per_round;
    if (!fetch && result->has_more && page_left) ahead.Start(result->next_cursor);
    TIDINGS_ASSIGN_OR_RETURN(auto opened, session_->OpenPage(log, *result, fetch));
    // (not the re-read's first page while a preview is due: the preview
    // reads first)
    if ((result->has_more || opened.read_on) && page_left &&
        !(preview && e2e::Session::PreviewDue(log))) {
      ahead.Start(log.cursor);
    }
    // (ops on an empty page: frames kept for an upgrade opened at last)
    if (!result->frames.empty() || result->next_cursor != at || opened.rejected > 0 ||
        !opened.ops.empty() || opened.read_on) {
      TIDINGS_RETURN_IF_ERROR(CommitPage(log, opened, log.cursor, st));
    }
    // Messages make the conversation active; discovery's first messages
    // too, or a new member would poll it at the idle rate.
    if (!opened.ops.empty() && (st || log.bound())) {
      (st ? *st : Load(log.conversation_id)).last_activity_ms = clock_();
    }
    // A device that just announced itself may need keys: push again now
    // rather than at the next poll.
    if (st && opened.devices_learned) push_behind_.insert(st->conversation_id);
    if (!result->has_more && !opened.read_on) return tidings::Status::Ok();
  }
}

tidings::Status Reconciler::PreviewLog(e2e::LogState& log, ConversationStatus* st) {
  // A screen of operations, from at most a few pages: the share the re-read
  // stops at is normally in the newest page (it came for this device).
  constexpr size_t kPreviewPages = 4;
  const e2e::FetchDevices fetch = Fetcher();
  bool past_share = false;
  size_t merged = 0;
  std::string before;
  for (size_t page = 0; page < kPreviewPages && merged < config_.pull_page_size; ++page) {
    if (ShouldStop()) return Cancelled("sync stopped");
    auto read = backend_->PullFrameHistory(log.log_id, before, config_.pull_page_size);
    if (ShouldStop()) return Cancelled("sync stopped");
    if (!read.ok()) return tidings::Status::Ok();  // the re-read reads it all
    TIDINGS_ASSIGN_OR_RETURN(
        auto opened,
        session_->PreviewPage(log, *read, &past_share, config_.pull_page_size - merged, fetch));
    if (!opened.ops.empty() || !opened.writes.empty()) {
      // No status: what the store refuses is counted by the re-read.
      TIDINGS_RETURN_IF_ERROR(CommitPage(log, opened, log.cursor, nullptr));
      merged += opened.ops.size();
      if (st && !opened.ops.empty()) st->last_activity_ms = clock_();
    }
    // A device pinned here may need keys: push again now.
    if (st && opened.devices_learned) push_behind_.insert(st->conversation_id);
    if (!read->has_more || read->next_cursor.empty()) break;
    before = std::move(read->next_cursor);
  }
  return tidings::Status::Ok();
}

tidings::Status Reconciler::PullSealed(ConversationStatus& st) {
  behind_.erase(st.conversation_id);
  TIDINGS_ASSIGN_OR_RETURN(e2e::LogState * primary,
                           session_->LogForConversation(st.conversation_id));
  TIDINGS_ASSIGN_OR_RETURN(auto ids, session_->BoundLogs(st.conversation_id));
  if (ids.empty()) ids.push_back(primary->log_id);
  const int64_t activity_before = st.last_activity_ms;
  uint64_t rejected = 0, pending = 0, too_new = HeldPlain(st.conversation_id);
  bool asked = false, rereading = false;
  for (const auto& id : ids) {
    TIDINGS_ASSIGN_OR_RETURN(e2e::LogState * log, session_->LogById(id));
    if (!log->on_server) continue;  // nothing pushed yet: nothing to pull
    asked = true;
    tidings::Status pulled = PullLog(*log, &st);
    NoteLog(st, *log);
    rejected += log->rejected;
    // Kept, or read and counted until a key comes (LogState::unopened).
    pending += log->pending.size() - log->too_new() + log->unopened;
    too_new += log->too_new();
    rereading = rereading || log->rereading;
    if (!pulled.ok()) {
      if (pulled.code() == Code::kCancelled) return pulled;
      return Failed(st, pulled);
    }
  }
  // No request went out: nothing succeeded either (a push that failed to
  // make the log keeps its error and backoff).
  if (!asked) return tidings::Status::Ok();
  st.rejected_frames = rejected;
  st.pending_frames = pending;
  st.waiting_for_upgrade = too_new;
  st.cursor = primary->cursor;
  st.filling_history = rereading || GapOpen(st.conversation_id);
  return RecordSuccess(st, st.last_activity_ms != activity_before);
}

Result<std::vector<std::string>> Reconciler::DiscoverLogs() {
  std::vector<std::string> bound;
  if (!session_) return bound;
  auto listed = backend_->ListLogs();
  if (!listed.ok()) {
    if (listed.status().code() == Code::kUnimplemented) return bound;
    return listed.status();
  }
  const std::set<std::string> from_server(listed->begin(), listed->end());
  TIDINGS_ASSIGN_OR_RETURN(auto known, session_->KnownLogs());
  for (const auto& id : known) {
    if (std::find(listed->begin(), listed->end(), id) == listed->end()) listed->push_back(id);
  }
  for (const auto& id : *listed) {
    TIDINGS_ASSIGN_OR_RETURN(e2e::LogState * log, session_->LogById(id));
    if (from_server.count(id)) log->on_server = true;
    if (log->bound()) {
      bound.push_back(log->conversation_id);
      continue;
    }
    // Say who we are, so a member gives this device the keys.
    if (!log->announced) {
      if (!published_ && !backend_->authenticates_senders()) {
        if (backend_->PublishDevice(session_->keys().record().Encode()).ok()) published_ = true;
      }
      engine::Conversation none;
      TIDINGS_ASSIGN_OR_RETURN(auto frames, session_->ControlFrames(*log, none, Fetcher()));
      auto acks = backend_->PushFrames(log->log_id, frames);
      if (acks.ok() && acks->size() == frames.size()) {
        for (size_t i = 0; i < frames.size(); ++i) {
          if ((*acks)[i].status.ok()) session_->ControlAcked(*log, frames[i]);
        }
      } else if (!acks.ok() && Classify(acks.status()) == ErrorClass::kAuth) {
        return acks.status();
      }
    }
    tidings::Status pulled = PullLog(*log, nullptr);
    if (!pulled.ok() && Classify(pulled) == ErrorClass::kAuth) return pulled;
    if (pulled.code() == Code::kCancelled) return pulled;
    // A page whose commit failed moved the state in memory only: it is
    // reloaded from the store (session_stale_), not saved over it.
    if (pulled.ok()) TIDINGS_RETURN_IF_ERROR(SaveLog(*log));
    if (log->bound()) bound.push_back(log->conversation_id);
  }
  return bound;
}

}  // namespace tidings::sync
