// The DynamoDB backend: one table, one gapless log per conversation.
//
//   plaintext log   pk = "c#" + conversation id, sk = 1, 2, 3, ... (gapless)
//                   o  = operations (binary: varint length + wire::EncodeOperation each)
//                   t  = acceptance time (ms, the server's clock from its Date header)
//                   v  = item format: 1; absent on items written before the wire
//                        codec (format 0, read as legacy operations)
//                   ttl = epoch seconds after which DynamoDB's TTL may delete the
//                        item, while the conversation has a time-based retention
//                        policy; a log whose items all expired restarts at sk =
//                        the server's time in ms, above every sk before it
//   membership      pk = "m#" + user id, sk = 53-bit hash of the conversation id,
//                   c  = conversation id
//   sealed log      pk = "l#" + log id, sk = 1, 2, 3, ... (gapless)
//                   f  = frames (binary: varint length + id, varint length + bytes each)
//                   t  = acceptance time, v = 2
//   invitation      pk = "i#" + T(member), sk = 53-bit hash of the log id, l = log id
//   device record   pk = "d#" + T(user), sk = 53-bit hash of the record, r = record
//
// T(user) = UserTag(user), an opaque name for a user id that the IAM policy's
// principal tag matches, so only the user's own identity writes its "d#"
// partition and reads its "i#" partition.
//
// Append (both logs) = conditional PutItem at head+1 (attribute_not_exists(sk));
// a lost race re-reads the tail and retries; before every append the tail
// after the known head is read and entries already there are acknowledged
// instead of re-sent, which makes a retry after an ambiguous outcome
// exactly-once. Several entries travel in one item (up to ~300 KB) so an
// offline backlog goes up in few requests. Pull = Query sk > cursor,
// ConsistentRead, paged; an item that does not decode is skipped and counted.
// See docs/dynamodb.md for the IAM policy.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "sync/aws/aws_client.h"
#include "sync/aws/json.h"
#include "sync/backend.h"
#include "sync/dynamodb/log_items.h"

namespace tidings::dynamodb {

struct DynamoConfig {
  std::string table = "tidings";
  std::string user_id;   // whose conversations ListConversations returns
  std::string region;    // empty: AWS_REGION / profile
  std::string endpoint;  // empty: AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL / AWS
  // The days a conversation's time-based retention policy keeps messages (0:
  // none); items of its log are written with a "ttl" attribute that long
  // after their acceptance, so DynamoDB's TTL deletes them (docs/dynamodb.md).
  // Unset: no TTL.
  std::function<uint32_t(const std::string& conversation_id)> keep_days;
};

class DynamoBackend final : public sync::Backend {
 public:
  // credentials empty: the default chain (environment, shared files).
  static std::unique_ptr<DynamoBackend> Create(
      DynamoConfig config, std::shared_ptr<aws::CredentialsProvider> credentials = nullptr,
      std::unique_ptr<http::HttpClient> http = nullptr);

  std::string_view name() const override { return "dynamodb"; }
  size_t max_batch() const override { return 100; }
  Result<std::string> EnsureConversation(const engine::Conversation& conversation) override;
  // Writes the membership items again (idempotent), so members added later
  // list the conversation.
  Status AddMembers(const engine::Conversation& conversation,
                    const std::string& remote_id) override;
  Result<std::vector<sync::PushAck>> Push(const std::string& conversation_id,
                                          std::span<const engine::Operation> ops) override;
  Result<sync::PullPage> Pull(const std::string& conversation_id, std::string_view cursor,
                              size_t limit) override;
  // Newest first: Query ScanIndexForward=false, sk < before (docs/sync.md,
  // "Newest first"); positions are item sks, as cursors are.
  Result<sync::HistoryPage> PullHistory(const std::string& conversation_id, std::string_view before,
                                        size_t limit) override;
  Result<std::vector<std::string>> ListConversations() override;

  // Sealed logs. Frames are up to 64 KiB; the backend cannot say who wrote
  // one (any identity the policy lets write "l#" items may), so readers check
  // writers against FetchDevices.
  size_t max_frame_bytes() const override { return kMaxFrameBytes; }
  bool authenticates_senders() const override { return false; }
  // Writes an invitation item for every member (and this user).
  Result<std::string> EnsureLog(const sync::SealedLog& log) override;
  Result<std::vector<sync::PushAck>> PushFrames(const std::string& log_id,
                                                std::span<const sync::Frame> frames) override;
  Result<sync::FramePage> PullFrames(const std::string& log_id, std::string_view cursor,
                                     size_t limit) override;
  // Newest first, as PullHistory: positions are "<sk>/<items>".
  Result<sync::FramePage> PullFrameHistory(const std::string& log_id, std::string_view before,
                                           size_t limit) override;
  // The log ids of this user's invitations (well-formed ones only).
  Result<std::vector<std::string>> ListLogs() override;
  Status PublishDevice(std::string_view record) override;
  Result<std::vector<std::string>> FetchDevices(const std::string& user) override;

  // T(user): hex of BLAKE2b-128("tidings-user-v1" || user). The IAM policy's
  // principal tag tidings-user-tag holds it (docs/dynamodb.md).
  static std::string UserTag(std::string_view user);

  // Creates the table (on-demand capacity) if it does not exist, waits until
  // it is ACTIVE and turns TTL on for the "ttl" attribute. Idempotent.
  Status CreateTable();
  // Turns TTL on for the "ttl" attribute unless it is on already.
  Status EnableTimeToLive();
  aws::AwsJsonClient& client() { return *client_; }

 private:
  DynamoBackend(DynamoConfig config, std::unique_ptr<aws::AwsJsonClient> client)
      : config_(std::move(config)), client_(std::move(client)) {}
  // `after`: a DynamoDB number (a cursor), or empty for the whole partition;
  // the items after it in the scan's direction (descending: sk < after).
  Result<aws::DynamoQueryResult> Query(const std::string& pk, std::string_view after,
                                       bool descending, size_t limit);
  Status PutItem(const std::string& item_json, bool if_new = false);
  // Every item of a small partition ("m#", "i#", "d#").
  Result<std::vector<aws::DynamoItem>> QueryAll(const std::string& pk);

  // One log kind for the shared append and pull: the attribute its entries
  // travel in, its item format, and how to read an item's entries back as
  // (id, remote id) pairs.
  struct LogKind {
    const char* attribute;
    uint64_t format;
    std::function<Result<std::vector<std::pair<std::string, std::string>>>(const aws::DynamoItem&)>
        ids;
  };
  // Appends entries in order to the gapless log `pk`, exactly once; one ack
  // per entry, as Push.
  // keep_days != 0: the items get a "ttl" attribute (DynamoConfig::keep_days).
  Result<std::vector<sync::PushAck>> Append(const std::string& pk, const LogKind& kind,
                                            std::span<const PackedEntry> entries,
                                            uint32_t keep_days = 0);
  // The page of log `pk` older than `before` ("" = the newest), items
  // newest first to `take`, which returns how many entries an item held;
  // the page ends at the item that brings it to `limit`.
  struct Backward {
    std::string before;          // the next older page's position; empty: none
    std::string forward_cursor;  // the newest page's: its highest sk
  };
  Result<Backward> PullBackward(const std::string& pk, std::string_view before, size_t limit,
                                const std::function<Result<size_t>(const aws::DynamoItem&)>& take);
  // Reads the page of log `pk` after `cursor` ("" = the start), handing each
  // item to `take` (whose error ends the pull). Returns the cursor after it.
  Result<std::string> PullLog(const std::string& pk, std::string_view cursor, size_t limit,
                              const std::function<Status(const aws::DynamoItem&)>& take,
                              bool* has_more);

  DynamoConfig config_;
  std::unique_ptr<aws::AwsJsonClient> client_;
  std::map<std::string, uint64_t> known_head_;  // log pk -> highest sk seen
};

}  // namespace tidings::dynamodb
