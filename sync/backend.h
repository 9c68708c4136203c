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
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/types.h"
#include "common/status.h"

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

struct PullPage {
  // Remote operations, each with server_time_ms set. May repeat operations
  // already merged (the merge is idempotent).
  std::vector<engine::Operation> ops;
  std::string next_cursor;  // resume point after this page
  bool has_more = false;    // another page is ready now
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

  // Ids of the conversations the user belongs to.
  virtual Result<std::vector<std::string>> ListConversations() = 0;

  // The server's retry-after hint (ms) that came with the last failed call's
  // error (a throttled or 503 response to a whole request), if any. Per
  // operation hints travel in PushAck::retry_after_ms instead. The reconciler
  // never retries sooner than this. Default: no hint.
  virtual std::optional<int64_t> last_retry_after_ms() const { return std::nullopt; }
};

}  // namespace tidings::sync
