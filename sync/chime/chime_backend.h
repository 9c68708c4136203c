// The Amazon Chime SDK Messaging backend: spoken directly over HTTPS
// (rest-json, SigV4 signing name "chime", endpoint prefix "messaging-chime"),
// every call made as the user's AppInstanceUser (header x-amz-chime-bearer).
//
//   conversation  <-> channel. Tidings makes channels with ChannelId
//                     "tidings-" + 40 hex digits of SHA-256(conversation id)
//                     and Metadata {"tidings":1,"conversation":"<id>"}, so two
//                     devices creating the same conversation meet on the same
//                     channel (the second CreateChannel is a Conflict). Other
//                     channels the user belongs to appear as conversations
//                     "chime:<channel id>".
//   send          SendChannelMessage, ClientRequestToken = message id,
//                 Metadata = Tidings envelope (id, hlc, replica, author, ...),
//                 Content = body (base64 when it is not UTF-8).
//   edit/delete/  a message of its own, ContentType
//   react/read    application/vnd.tidings.op+json, plus (best effort) the
//                 native UpdateChannelMessage / RedactChannelMessage /
//                 UpdateChannelReadMarker for other Chime clients.
//   pull          ListChannelMessages ASCENDING from the cursor's time minus
//                 kOverlapMs, 50 per page, deduplicated by MessageId.
//
// Errors: 403 ForbiddenException on a channel (removed from it) is
// PermissionDenied, 404 NotFound; throttling and 5xx are Unavailable after
// the client's own standard-mode retries; a body over Chime's 4 KB is
// TooLarge naming the limit. docs/chime.md has the details and the IAM
// actions needed.
//
// Thread safety: one thread at a time (like every sync::Backend).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "sync/aws/aws_client.h"
#include "sync/backend.h"

namespace tidings::chime {

struct ChimeConfig {
  std::string app_instance_arn;  // arn:aws:chime:<region>:<account>:app-instance/<id>
  std::string user_arn;          // the AppInstanceUser every call is made as (bearer)
  std::string region;            // empty: AWS_REGION / AWS_DEFAULT_REGION / profile
  std::string endpoint;  // empty: AWS_ENDPOINT_URL_CHIME_SDK_MESSAGING / AWS_ENDPOINT_URL / AWS
};

// Limits of the service (and of this backend's use of it).
inline constexpr size_t kMaxContentBytes = 4096;   // Content of a STANDARD message
inline constexpr size_t kMaxMetadataBytes = 1024;  // Metadata of a message or channel
inline constexpr int64_t kOverlapMs = 5'000;       // pull re-reads this much before the cursor
inline constexpr size_t kPageSize = 50;            // ListChannelMessages MaxResults cap
inline constexpr size_t kMaxCreateMembers = 10;    // CreateChannel MemberArns cap
inline constexpr char kOpContentType[] = "application/vnd.tidings.op+json";
inline constexpr char kBase64ContentType[] = "application/vnd.tidings.base64";

class ChimeBackend final : public sync::Backend {
 public:
  // InvalidArgument if app_instance_arn or user_arn is missing or not an ARN.
  // credentials empty: the default chain; http empty: libcurl.
  static Result<std::unique_ptr<ChimeBackend>> Create(
      ChimeConfig config, std::shared_ptr<aws::CredentialsProvider> credentials = nullptr,
      std::unique_ptr<http::HttpClient> http = nullptr);

  std::string_view name() const override { return "chime"; }
  // Chime has no batch send: each operation is one request.
  size_t max_batch() const override { return 20; }
  Result<std::string> EnsureConversation(const engine::Conversation& conversation) override;
  Status AddMembers(const engine::Conversation& conversation,
                    const std::string& channel_arn) override;
  Result<std::vector<sync::PushAck>> Push(const std::string& conversation_id,
                                          std::span<const engine::Operation> ops) override;
  Result<sync::PullPage> Pull(const std::string& conversation_id, std::string_view cursor,
                              size_t limit) override;
  Result<std::vector<std::string>> ListConversations() override;
  std::optional<int64_t> last_retry_after_ms() const override { return last_retry_after_ms_; }

  // The channel ARN Tidings uses for a conversation it creates (deterministic).
  std::string DefaultChannelArn(const std::string& conversation_id) const;
  // The AppInstanceUser ARN of a conversation member: "arn:..." as is,
  // otherwise <app_instance_arn>/user/<member>.
  std::string MemberArn(const std::string& member) const;

  aws::AwsRestClient& client() { return *client_; }
  // Native mirror calls (UpdateChannelMessage, ...) that failed or were
  // skipped because the target's Chime MessageId was not known. The
  // operation itself was delivered as a message either way.
  uint64_t mirror_failures() const { return mirror_failures_; }

 private:
  struct Known {  // a Tidings message this process has sent or pulled
    std::string chime_message_id;
    std::string envelope;  // its Metadata as written ("" for other clients' messages)
  };
  ChimeBackend(ChimeConfig config, std::unique_ptr<aws::AwsRestClient> client);

  Result<std::string> Call(std::string_view method, const std::string& path,
                           const std::string& body = "");
  // The channel for a conversation: cached, "chime:" ids, the listing
  // (refreshed at most every 30 s), else the default ARN (*guessed = true).
  Result<std::string> ResolveChannel(const std::string& conversation_id, bool* guessed);
  Status AddMember(const std::string& channel_arn, const std::string& member_arn);
  // The members' ARNs other than this device's user, sorted and unique.
  std::vector<std::string> OtherMemberArns(const engine::Conversation& c) const;
  Result<sync::PushAck> PushOne(const std::string& channel_arn, const engine::Operation& op);
  void Mirror(const std::string& channel_arn, const engine::Operation& op);
  void Remember(const std::string& message_id, Known known);
  std::optional<std::string> ChannelIdOf(const std::string& arn) const;
  std::string ConversationIdFor(const std::string& arn, const std::string& metadata) const;

  ChimeConfig config_;
  std::unique_ptr<aws::AwsRestClient> client_;
  std::map<std::string, std::string> channels_;  // conversation id -> channel ARN
  int64_t listed_at_ms_ = -1;                    // last full listing (steady ms)
  std::map<std::string, Known> known_;           // message id -> Chime ids (bounded)
  std::deque<std::string> known_order_;          // eviction order of known_
  std::optional<int64_t> last_retry_after_ms_;
  uint64_t mirror_failures_ = 0;
};

}  // namespace tidings::chime
