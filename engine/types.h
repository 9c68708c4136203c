// The vocabulary of the message log: order keys, messages, conversations and
// the operations that travel through the outbox and the sync engine.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tidings::engine {

inline constexpr size_t kMaxBodyBytes = 64 * 1024;  // larger is TooLarge
inline constexpr size_t kMaxMetadataEntries = 16;
inline constexpr size_t kMaxMetadataBytes = 1024;  // keys + values
inline constexpr size_t kMaxIdBytes = 128;         // ids of any kind
inline constexpr uint64_t kDefaultMaxDriftMs = 5 * 60 * 1000;
inline constexpr size_t kMaxAttachments = 16;           // per message
inline constexpr size_t kMaxAttachmentNameBytes = 255;  // a file name
inline constexpr size_t kMaxPreviewBytes = 2048;        // an inline thumbnail

// Position of an event in the total order every replica agrees on.
// hlc = 48-bit Unix milliseconds << 16 | 16-bit logical counter.
struct OrderKey {
  uint64_t hlc = 0;
  uint64_t replica = 0;

  auto operator<=>(const OrderKey&) const = default;
  bool IsZero() const { return hlc == 0 && replica == 0; }
  uint64_t millis() const { return hlc >> 16; }

  // 16 bytes, big-endian, so byte order is time order.
  std::string Encode() const;
  static bool Decode(std::string_view bytes, OrderKey* out);
  // "hlc-replica" in hex, for logs and the CLI.
  std::string ToString() const;
};

// Message ids are strings: UUIDv7 text for messages made by Tidings, and the
// backend's own id (prefixed, e.g. "chime:...") for messages from other
// clients. They are the idempotency key everywhere.
// Where ids take their random bits. Empty: the OS CSPRNG, through a
// per-thread pool. Deterministic simulation passes a seeded generator.
using RandomBytes = std::function<void(uint8_t* out, size_t n)>;
// UUIDv7, lowercase text form.
std::string NewMessageId(uint64_t unix_ms, const RandomBytes& random = {});
// The Unix milliseconds of a UUIDv7 in text form; 0 for any other id.
uint64_t UuidV7Millis(std::string_view id);

enum class MessageState : uint8_t {
  kPending = 0,  // written locally, not yet acknowledged by a backend
  kSent = 1,     // acknowledged by a backend (or received from one)
  kFailed = 2,   // a backend refused it permanently; see failure_reason
};
const char* MessageStateName(MessageState s);  // "pending", "sent", "failed"

struct Reaction {
  std::string user;
  std::string reaction;
  auto operator<=>(const Reaction&) const = default;
};

// A file sent with a message: its description and the reference to its
// encrypted object (docs/attachments.md). The reference travels inside the
// send operation - end-to-end encrypted when the conversation is - and the
// object's bytes travel apart, to and from an object store (S3).
struct Attachment {
  std::string name;          // as the sender gave it
  std::string content_type;  // e.g. "image/jpeg"
  uint64_t size = 0;         // plaintext bytes
  std::string object;        // SHA-256 of the encrypted object: 32 bytes
  uint64_t object_size = 0;  // the object's bytes
  std::string content_key;   // 32 bytes that open the object; never shown to apps
  std::string location;      // the bucket holding it; empty until uploaded
  std::string preview;       // a small thumbnail the app made, up to kMaxPreviewBytes

  bool operator==(const Attachment&) const = default;
};

struct Message {
  std::string id;
  std::string conversation_id;
  std::string sender;
  OrderKey order;
  std::string body;  // empty once deleted
  std::string content_type = "text/plain";
  std::map<std::string, std::string> metadata;
  MessageState state = MessageState::kPending;
  std::string failure_reason;                     // when state == kFailed
  std::map<std::string, std::string> remote_ids;  // backend name -> remote id
  uint64_t server_time_ms = 0;                    // when a backend accepted it
  OrderKey edited_at;                             // zero if never edited
  bool deleted = false;
  std::vector<Reaction> reactions;      // present reactions, sorted
  std::vector<Attachment> attachments;  // in the sender's order; none once deleted
};

struct Conversation {
  std::string id;
  std::string title;
  std::vector<std::string> members;
  OrderKey last_order;  // order key of the newest message
  std::string last_message_id;
  uint64_t message_count = 0;                     // visible (not deleted) messages
  uint64_t unread_count = 0;                      // from others, after the local user's marker
  std::map<std::string, OrderKey> read_markers;   // user -> newest read
  std::map<std::string, std::string> remote_ids;  // backend -> e.g. channel ARN
};

// One change to the log. Local calls create operations (and queue them in the
// outbox); backends deliver remote ones to SyncLog::Merge. Merging an operation
// is idempotent and commutative (DESIGN section 4).
enum class OpKind : uint8_t {
  kSend = 1,
  kEdit = 2,
  kDelete = 3,
  kReact = 4,
  kUnreact = 5,
  kReadMarker = 6,
};
const char* OpKindName(OpKind k);  // "send", "edit", ...

struct Operation {
  OpKind kind = OpKind::kSend;
  std::string op_id;  // unique; equals message_id for kSend
  std::string conversation_id;
  std::string author;                           // the user who made the change
  OrderKey at;                                  // when it happened; for kSend the message's key
  std::string message_id;                       // the message created or targeted
  std::string body;                             // kSend, kEdit
  std::string content_type;                     // kSend, kEdit
  std::map<std::string, std::string> metadata;  // kSend
  std::string reaction;                         // kReact, kUnreact
  OrderKey read_up_to;                          // kReadMarker
  uint64_t server_time_ms = 0;                  // set by the backend on remote operations
  std::string remote_id;                        // the backend's id for it, when known
  std::vector<Attachment> attachments;          // kSend

  bool operator==(const Operation&) const = default;
};

// Stable binary encoding (versioned), used by the outbox and by backends that
// store operations as opaque bytes.
std::string EncodeOperation(const Operation& op);
// False on malformed input (never crashes, never reads out of bounds).
bool DecodeOperation(std::string_view bytes, Operation* out);

struct OutboxEntry {
  uint64_t seq = 0;  // outbox order
  Operation op;
  uint32_t attempts = 0;
  int64_t next_attempt_ms = 0;  // not before this wall-clock time
  std::string last_error;       // no message text, keys or credentials
  bool failed = false;          // parked: needs RetryFailed or DiscardFailed
  // Backends that already accepted it, when the store fans out to several
  // (SyncLog::SetOutboxBackends); sorted. Empty otherwise.
  std::vector<std::string> acked_by;
};

// Outbox entries by state (Store::CountOutbox).
struct OutboxCounts {
  uint64_t pending = 0;  // waiting for their first or next attempt
  uint64_t failed = 0;   // parked
  uint64_t total() const { return pending + failed; }
};

}  // namespace tidings::engine
