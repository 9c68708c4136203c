// StoreReader: what an app and sync both read from a store - messages,
// conversations, the outbox - and the change notifications both follow.
// Store (engine/store.h, the app's interface) and SyncLog
// (engine/sync_log.h, sync's) extend it; one StoreImpl implements all three.
//
// Thread safety: as Store (engine/store.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/attachments.h"
#include "engine/retention.h"
#include "engine/types.h"

namespace tidings::engine {

struct ChangeEvent {
  enum class Kind {
    kMessageAdded,
    kMessageChanged,
    kMessageStateChanged,
    kConversationChanged,
    kOutboxChanged
  };
  Kind kind;
  std::string conversation_id;
  std::string message_id;  // empty for conversation/outbox events
};

class StoreReader {
 public:
  virtual ~StoreReader() = default;

  // The local user (sender of local messages), as stored.
  virtual const std::string& user_id() const = 0;

  // NotFound if absent; DataLoss if the record fails authentication.
  virtual Result<Message> Get(const std::string& message_id) = 0;
  virtual Result<Conversation> GetConversation(const std::string& id) = 0;
  // Most recently active first.
  virtual Result<std::vector<Conversation>> Conversations(size_t limit) = 0;
  // Outbox in order; `conversation_id` empty means all conversations.
  // `unacked_by` non-empty: only entries that backend has not accepted yet
  // (what its reconciler still has to push).
  virtual Result<std::vector<OutboxEntry>> Outbox(size_t limit,
                                                  const std::string& conversation_id = "",
                                                  std::string_view unacked_by = "") = 0;
  // What Outbox(0, conversation_id, unacked_by) returns, counted, without
  // reading the message bodies entries refer to or holding the entries: for
  // gauges and status lines. limit != 0: stops counting at limit entries.
  virtual Result<OutboxCounts> CountOutbox(const std::string& conversation_id = "",
                                           std::string_view unacked_by = "",
                                           uint64_t limit = 0) = 0;
  // One entry, as Outbox() returns it; NotFound once it left the outbox.
  virtual Result<OutboxEntry> GetOutboxEntry(uint64_t seq) = 0;
  // The retention policy that applies to `conversation_id`: its own, else
  // the store-wide one (backends set remote expiry from it).
  virtual Result<RetentionPolicy> EffectiveRetention(const std::string& conversation_id) = 0;

  // Attachments' objects (engine/attachments.h): every one this store
  // knows, by id; one by its 32-byte id (NotFound if none).
  virtual Result<std::vector<AttachmentObject>> Attachments() = 0;
  virtual Result<AttachmentObject> GetAttachment(std::string_view object) = 0;

  // Listeners run on the writing thread after the commit, outside internal
  // locks; they must not call back into a write of the same store
  // synchronously for long. The token unsubscribes.
  using Listener = std::function<void(const ChangeEvent&)>;
  virtual uint64_t Subscribe(Listener listener) = 0;
  virtual void Unsubscribe(uint64_t token) = 0;
};

}  // namespace tidings::engine
