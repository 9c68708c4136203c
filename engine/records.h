// The three record codecs of the store's column families: messages (with
// their merge state), conversations and outbox entries. Values are these
// bytes, sealed or authenticated by crypto::RecordSealer; see docs/engine.md
// for the layouts. Every Decode returns false on bytes it does not
// understand, never a partial record.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "engine/attachments.h"
#include "engine/types.h"

namespace tidings::engine {

// Version byte of message, conversation and plain outbox records.
inline constexpr uint8_t kRecordVersion = 1;
// Version byte of an outbox record whose send refers to its message's body.
inline constexpr uint8_t kOutboxBodyByRef = 2;

struct ReactionState {
  OrderKey at;
  bool present = false;
};

// A message plus the merge state the public struct does not show.
struct MessageRecord {
  Message m;
  std::map<std::pair<std::string, std::string>, ReactionState> reactions;  // (user, reaction)
  // The outbox entry of this local send while it may still refer to the body
  // here instead of carrying a copy (see OutboxRecord); 0 if none. May name an
  // entry already gone: readers check.
  uint64_t send_seq = 0;

  void RefreshVisibleReactions() {
    m.reactions.clear();
    for (const auto& [k, v] : reactions) {
      if (v.present) m.reactions.push_back(Reaction{k.first, k.second});
    }
    std::sort(m.reactions.begin(), m.reactions.end());
  }
};

// An outbox entry as stored. A local send's entry normally does not copy the
// message body (half of a pending message's bytes): it refers to the body of
// the message record, which Apply keeps unchanged until the entry is gone or
// has been given its own copy (MaterializeOutboxBody, before any edit or
// delete of that message). Record version 2 marks such entries; the operation
// inside has an empty body, filled in by readers that hand the entry out.
struct OutboxRecord {
  OutboxEntry e;
  bool body_by_ref = false;
};

// An attachment's object (family "attachments", key kObjectPrefix + the 32
// bytes of its id); see engine/attachments.h for the states.
struct AttachmentRecord {
  AttachmentObject info;        // info.object is also the key's
  std::string content_key;      // 32 bytes
  std::string upload_progress;  // sync's saved upload state, opaque here
  std::string fingerprint;      // imported here: keyed hash of the plaintext
};
// The family's key prefixes: objects, and a sent file's fingerprint (the
// object it became, so a file sent again is stored once).
inline constexpr char kObjectPrefix = 'o';
inline constexpr char kFingerprintPrefix = 'f';

std::string EncodeMessage(const MessageRecord& r);
bool DecodeMessage(std::string_view in, MessageRecord* r);
std::string EncodeConversation(const Conversation& c);
// *has_unread: whether the record carries its unread count (schema v6 and
// later); without it unread_count is 0 and must be counted from the messages.
bool DecodeConversation(std::string_view in, Conversation* c, bool* has_unread = nullptr);
std::string EncodeOutbox(const OutboxRecord& r);
bool DecodeOutbox(std::string_view in, OutboxRecord* out);
std::string EncodeAttachment(const AttachmentRecord& r);
bool DecodeAttachment(std::string_view in, AttachmentRecord* r);

}  // namespace tidings::engine
