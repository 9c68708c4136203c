// The DynamoDB backend: one table, one gapless log per conversation.
//
//   messages    pk = "c#" + conversation id, sk = 1, 2, 3, ... (gapless)
//               o  = operations (binary: varint length + wire::EncodeOperation each)
//               t  = acceptance time (ms, the server's clock from its Date header)
//               v  = item format: 1; absent on items written before the wire
//                    codec (format 0, read as legacy operations)
//   membership  pk = "m#" + user id, sk = 53-bit hash of the conversation id,
//               c  = conversation id
//
// Append = conditional PutItem at head+1 (attribute_not_exists(sk)); a lost
// race re-reads the tail and retries; before every append the tail after the
// known head is read and operations already there are acknowledged instead of
// re-sent, which makes a retry after an ambiguous outcome exactly-once.
// Several operations travel in one item (up to ~300 KB) so an offline backlog
// goes up in few requests. Pull = Query sk > cursor, ConsistentRead, paged.
// See docs/dynamodb.md for the IAM policy.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "sync/aws/aws_client.h"
#include "sync/aws/json.h"
#include "sync/backend.h"

namespace tidings::dynamodb {

struct DynamoConfig {
  std::string table = "tidings";
  std::string user_id;   // whose conversations ListConversations returns
  std::string region;    // empty: AWS_REGION / profile
  std::string endpoint;  // empty: AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL / AWS
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
  Result<std::vector<std::string>> ListConversations() override;

  // Creates the table (on-demand capacity) if it does not exist and waits
  // until it is ACTIVE. Idempotent.
  Status CreateTable();
  aws::AwsJsonClient& client() { return *client_; }

 private:
  DynamoBackend(DynamoConfig config, std::unique_ptr<aws::AwsJsonClient> client)
      : config_(std::move(config)), client_(std::move(client)) {}
  Result<aws::DynamoQueryResult> Query(const std::string& pk, std::optional<uint64_t> after,
                                       bool descending, size_t limit);

  DynamoConfig config_;
  std::unique_ptr<aws::AwsJsonClient> client_;
  std::map<std::string, uint64_t> known_head_;  // conversation -> highest sk seen
};

}  // namespace tidings::dynamodb
