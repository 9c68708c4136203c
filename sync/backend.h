// Backend: what a remote (DynamoDB, Chime SDK Messaging, the simulator's
// in-memory server) must do. Backends only move bytes; every decision - what
// to push, when to retry, how to merge - lives in the reconciler.
//
// Errors are classified by Status code (see Classify below):
//   transient  kUnavailable, kDeadlineExceeded, kResourceExhausted, kAborted,
//              kCancelled (shutdown): retry with backoff
//   auth       kUnauthenticated: stop syncing and surface it
//   permanent  everything else (kPermissionDenied, kInvalidArgument,
//              kTooLarge, ...): park the operation as failed with the reason
//
// Thread safety: a Backend is used by one sync thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/types.h"

namespace tidings::sync {

enum class ErrorClass { kTransient, kPermanent, kAuth };
ErrorClass Classify(const Status& status);

// The backend's answer for one pushed operation.
struct PushAck {
  Status status;                          // OK: accepted (or already there: idempotent)
  std::string remote_id;                  // the backend's id, when it has one
  uint64_t server_time_ms = 0;            // acceptance time
  std::optional<int64_t> retry_after_ms;  // the server asked to wait
};

// A pulled operation a newer Tidings wrote (its wire version is newer than
// this build reads), as the backend stored it.
struct HeldOperation {
  std::string bytes;  // the wire encoding (sync/wire/operation_codec.h)
  uint64_t server_time_ms = 0;
  std::string remote_id;
};

struct PullPage {
  // Remote operations, each with server_time_ms set. May repeat operations
  // already merged (the merge is idempotent).
  std::vector<engine::Operation> ops;
  std::string next_cursor;  // resume point after this page
  bool has_more = false;    // another page is ready now
  uint64_t skipped = 0;     // items the backend could not decode, skipped
  // Operations this build cannot read yet: the reconciler keeps them until
  // an upgrade does (sync/core/held_operations.h).
  std::vector<HeldOperation> too_new;
};

// A page of a conversation's log read newest-first (Backend::PullHistory).
struct HistoryPage {
  // Remote operations, each with server_time_ms set, in any order. All of
  // them lie before the position the page was asked for (the newest page:
  // the end of the log). May repeat operations already merged.
  std::vector<engine::Operation> ops;
  // Where the next older page starts: pass it as `before`. Empty when this
  // page reached the beginning of the log.
  std::string before;
  // The newest page only: the forward cursor (as Pull takes it) that
  // continues right after the newest operation of this page, so forward
  // pulls go on from there and nothing between the two is skipped. Non-empty
  // whenever `ops` or `too_new` is.
  std::string forward_cursor;
  uint64_t skipped = 0;                // items the backend could not decode, skipped
  std::vector<HeldOperation> too_new;  // as PullPage::too_new
};

// ---- Sealed logs: end-to-end encrypted conversations (docs/security.md) ----
//
// A sealed conversation's remote log is named by an opaque log id and holds
// opaque frames (sync/e2e/frame.h): the backend stores them, returns them in
// one order every reader sees, deduplicates them by id, and says who wrote
// each one when it can authenticate that. It never sees a conversation id, a
// title or a message.

// One opaque unit of a sealed log.
struct Frame {
  // Idempotency key: pushing a frame whose id the log already holds stores
  // nothing new and acks OK. At most 64 characters of [A-Za-z0-9._-].
  std::string id;
  std::string bytes;  // at most Backend::max_frame_bytes()
  // Set on pull:
  // The user the backend authenticated as this frame's writer (Chime: the
  // message's sender AppInstanceUser); empty on a backend that cannot
  // authenticate writers (DynamoDB: any member may write any item).
  std::string sender;
  uint64_t server_time_ms = 0;  // acceptance time
  std::string remote_id;        // the backend's id for it, when it has one
};

struct FramePage {
  std::vector<Frame> frames;  // in log order; may repeat frames already seen
  std::string next_cursor;    // resume point after this page
  bool has_more = false;      // another page is ready now
  uint64_t skipped = 0;       // items the backend could not decode, skipped
  // Who made the remote log and who may read it, when the backend has such a
  // notion (Chime: the channel's CreatedBy and its members' users), so the
  // reader can refuse a log made or joined by someone outside the
  // conversation. Empty otherwise (DynamoDB, the simulator). Set at least on
  // a pull from the start (empty cursor).
  std::string log_creator;
  std::vector<std::string> log_members;
};

// A sealed log as the reconciler asks a backend to make it.
struct SealedLog {
  std::string log_id;                // "e" + 32 lowercase hex digits (opaque)
  std::vector<std::string> members;  // users who must be able to list and read it
};

// ---- Real-time delivery (optional; see Backend::StartRealtime) ----

// One raw event from a backend's push channel (Chime's messaging WebSocket),
// delivered on the backend's own I/O thread and interpreted later, on the
// sync thread, by Backend::AcceptEvent.
struct RealtimeEvent {
  enum class Kind {
    kEstablished,  // a session is up; every event after this one is delivered
                   // while it stays up (Chime's SESSION_ESTABLISHED): gap-fill
                   // every conversation from its durable cursor now
    kLost,         // the session dropped (reconnecting with backoff, or
                   // refused for good: `detail` says why); poll meanwhile
    kEvent,        // anything else: `type` and `payload` as the server sent them
  };
  Kind kind = Kind::kEvent;
  std::string type;     // the server's event type ("CREATE_CHANNEL_MESSAGE", ...)
  std::string payload;  // the server's payload (Chime: the JSON of the object)
  std::string detail;   // kLost: why, for status and logs (never message text)
};
using RealtimeListener = std::function<void(RealtimeEvent)>;

// What an accepted event asks the sync thread to do.
struct EventEffect {
  std::vector<std::string> pull_conversations;  // pull these now, from their cursors
  std::vector<std::string> pull_logs;           // sealed logs to pull now
  bool relist = false;                          // conversations or memberships changed
  std::string typing_conversation;              // non-empty: `typing_user` is typing there
  std::string typing_user;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Stable name; part of cursor keys ("dynamodb", "chime", "sim").
  virtual std::string_view name() const = 0;
  // Most operations one Push may carry.
  virtual size_t max_batch() const = 0;

  // Makes sure the conversation exists remotely (e.g. a Chime channel with
  // its members). Returns the remote id to remember (may be empty).
  virtual Result<std::string> EnsureConversation(const engine::Conversation& conversation) = 0;
  // The conversation's member list changed after EnsureConversation made it
  // remotely (`remote_id` is what that returned): adds the members the remote
  // side lacks. Members are never removed here. Default: nothing to do (a
  // backend without membership, such as the simulator's).
  virtual Status AddMembers(const engine::Conversation& /*conversation*/,
                            const std::string& /*remote_id*/) {
    return Status::Ok();
  }

  // Pushes operations of one conversation, in outbox order. Returns one ack
  // per operation, in order; a non-OK Result means none is known to have been
  // applied (the reconciler retries with the same ids, which is safe: the op
  // id is the idempotency key).
  virtual Result<std::vector<PushAck>> Push(const std::string& conversation_id,
                                            std::span<const engine::Operation> ops) = 0;

  // The next page after `cursor` ("" = from the beginning), at most `limit`.
  virtual Result<PullPage> Pull(const std::string& conversation_id, std::string_view cursor,
                                size_t limit) = 0;

  // The conversation's log newest-first: with `before` empty, the newest
  // page (at most `limit` operations) and the forward cursor after it; with
  // `before` a HistoryPage::before this backend returned, the page of at most
  // `limit` operations just older than it. Together with the forward
  // cursor, the pages cover the log with no hole: every operation is at or
  // after the forward cursor, or in a page older than a `before` still to
  // fetch. Unimplemented (the default): the backend reads only oldest-first,
  // and the reconciler pulls forward from the beginning.
  virtual Result<HistoryPage> PullHistory(const std::string& /*conversation_id*/,
                                          std::string_view /*before*/, size_t /*limit*/) {
    return Unimplemented("this backend reads conversations oldest-first only");
  }

  // Ids of the conversations the user belongs to.
  virtual Result<std::vector<std::string>> ListConversations() = 0;

  // The server's retry-after hint (ms) that came with the last failed call's
  // error (a throttled or 503 response to a whole request), if any. Per
  // operation hints travel in PushAck::retry_after_ms instead. The reconciler
  // never retries sooner than this. Default: no hint.
  virtual std::optional<int64_t> last_retry_after_ms() const { return std::nullopt; }

  // ---- Sealed logs (see Frame). A backend without them returns
  // Unimplemented, and its conversations stay in plaintext mode. ----

  // Largest Frame::bytes this backend carries (Chime: what fits in a
  // message's 4 KB Content after base64). 0: no sealed logs.
  virtual size_t max_frame_bytes() const { return 0; }
  // True if Frame::sender is authenticated by the backend (Chime); false if
  // the reader must check writers another way (DynamoDB: FetchDevices).
  virtual bool authenticates_senders() const { return false; }
  // Makes the log exist remotely with these members able to list and read
  // it, adding members it lacks (never removing any). Idempotent. Returns the
  // remote id to remember (may be empty).
  virtual Result<std::string> EnsureLog(const SealedLog& /*log*/) { return NoSealedLogs(); }
  // Appends frames in order; one ack per frame, as Push.
  virtual Result<std::vector<PushAck>> PushFrames(const std::string& /*log_id*/,
                                                  std::span<const Frame> /*frames*/) {
    return NoSealedLogs();
  }
  // The next page after `cursor` ("" = from the beginning), at most `limit`.
  virtual Result<FramePage> PullFrames(const std::string& /*log_id*/, std::string_view /*cursor*/,
                                       size_t /*limit*/) {
    return NoSealedLogs();
  }
  // Ids of the sealed logs the user was made a member of.
  virtual Result<std::vector<std::string>> ListLogs() { return NoSealedLogs(); }
  // The log newest-first: with `before` empty, its newest page of at most
  // `limit` frames; with `before` a next_cursor this call returned, the page
  // just older than it. A page's frames are in log order; has_more says an
  // older page remains, starting at next_cursor. Pages may repeat frames.
  // Unimplemented (the default): the reconciler reads the log oldest-first
  // only (docs/sync.md, "Newest first, end to end").
  virtual Result<FramePage> PullFrameHistory(const std::string& /*log_id*/,
                                             std::string_view /*before*/, size_t /*limit*/) {
    return Unimplemented("this backend reads sealed logs oldest-first only");
  }

  // ---- The device directory: device records (sync/e2e/identity.h), each
  // signed by its device, published where only their user can write. ----

  // Publishes this user's device record (idempotent). A backend that
  // authenticates frame senders returns OK and does nothing: records travel
  // as frames in each log instead.
  virtual Status PublishDevice(std::string_view /*record*/) { return NoSealedLogs(); }
  // The records `user` published, as only `user` could have written them
  // (DynamoDB: the user's own partition, which IAM's dynamodb:LeadingKeys
  // restricts to that user). Unimplemented where authenticates_senders().
  virtual Result<std::vector<std::string>> FetchDevices(const std::string& /*user*/) {
    return NoSealedLogs();
  }

  // ---- Real-time delivery. A backend without it returns Unimplemented from
  // StartRealtime and the sync engine keeps polling. ----

  // Starts the backend's push channel on its own thread; `listener` gets
  // every RealtimeEvent there and must only queue it (it may not call the
  // backend). The channel reconnects by itself (full-jitter backoff,
  // re-resolving endpoint and credentials) until StopRealtime().
  virtual Status StartRealtime(RealtimeListener /*listener*/) {
    return Unimplemented("this backend has no real-time channel; polling instead");
  }
  // Stops and joins the push channel. Idempotent; safe without a Start.
  virtual void StopRealtime() {}
  // The network came back or the app came to the foreground: reconnect now,
  // skipping the backoff. A no-op without a push channel.
  virtual void PokeRealtime() {}
  // On the sync thread: what a kEvent means. Events the backend does not
  // understand, or that concern no conversation of this device, are an empty
  // effect, never an error; an error is a transient failure to interpret it
  // (the engine then pulls everything).
  virtual Result<EventEffect> AcceptEvent(const RealtimeEvent& /*event*/) { return EventEffect{}; }
  // Tells the conversation's other members this user is typing. Never
  // stored; a no-op (OK) on a backend without typing indicators.
  virtual Status SendTyping(const std::string& /*conversation_id*/) { return Status::Ok(); }

 protected:
  static Status NoSealedLogs() {
    return Unimplemented("this backend does not carry end-to-end encrypted conversations");
  }
};

}  // namespace tidings::sync
