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
//   react/read    application/vnd.tidings.op+json: a line of text in Content
//                 ("reacted 👍"), the operation in Metadata (JSON Content
//                 when it does not fit); plus (best effort) the
//                 native UpdateChannelMessage (the edit operation in the
//                 target's Metadata) / RedactChannelMessage /
//                 UpdateChannelReadMarker for other Chime clients. The
//                 target's MessageId comes from this process or from the
//                 operation's remote_id (the reconciler fills in the one the
//                 store kept), so mirroring survives restarts.
//   pull          ListChannelMessages ASCENDING from the point known
//                 complete (server time) minus kOverlapMs, 50 per page,
//                 deduplicated by MessageId.
//   others' edits an edited or redacted message yields deterministic edit /
//                 delete operations (chime_mirror.cc); events remember them
//                 for the next pull (chime_events.cc), and a pull rescans the
//                 newest kRescanMessages every kRescanIntervalMs.
//   typing        a NON_PERSISTENT CONTROL message kTypingMarker.
//   squatting     a conversation whose member list this device knows refuses
//                 a channel made by, or holding, a user outside it, and skips
//                 messages from non-members (PullPage::skipped).
//
// Sealed logs (end-to-end encrypted conversations, chime_sealed.cc):
//   log           channel "tidings-" + log id, Name "tidings", Metadata
//                 {"tidings":"e2e1"}: no conversation id, no title.
//   frame         one STANDARD message: Content base64(frame bytes), Metadata
//                 {"tidings":"f1","id":"<frame id>"}, ClientRequestToken
//                 derived from the frame id (retries store one message).
//                 Chime's Sender is the frame's authenticated sender.
//
// Errors: 403 ForbiddenException on a channel (removed from it) is
// PermissionDenied, 404 NotFound; throttling and 5xx are Unavailable after
// the client's own standard-mode retries; a body over Chime's 4 KB is
// TooLarge naming the limit. docs/chime.md has the details and the IAM
// actions needed.
//
// Thread safety: one thread at a time (like every sync::Backend).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sync/aws/aws_client.h"
#include "sync/backend.h"
#include "sync/chime/chime_json.h"
#include "sync/chime/messaging_session.h"

namespace tidings::chime {

struct ChimeConfig {
  std::string app_instance_arn;  // arn:aws:chime:<region>:<account>:app-instance/<id>
  std::string user_arn;          // the AppInstanceUser every call is made as (bearer)
  std::string region;            // empty: AWS_REGION / AWS_DEFAULT_REGION / profile
  std::string endpoint;  // empty: AWS_ENDPOINT_URL_CHIME_SDK_MESSAGING / AWS_ENDPOINT_URL / AWS
  // This device's wall clock (Unix ms) for signing; empty: the system's.
  // Tests set one that is off (the client corrects skew from the server).
  std::function<int64_t()> wall_clock_ms;
  // The days a conversation's time-based retention policy keeps messages (0:
  // none). Its channel gets ExpirationSettings (that many days after the
  // last message) when this device creates or next ensures it; Chime then
  // deletes an idle channel with its messages (docs/chime.md). Unset: none.
  std::function<uint32_t(const std::string& conversation_id)> keep_days;
};

// Limits of the service (and of this backend's use of it).
inline constexpr size_t kMaxContentBytes = 4096;   // Content of a STANDARD message
inline constexpr size_t kMaxMetadataBytes = 1024;  // Metadata of a message or channel
inline constexpr int64_t kOverlapMs = 5'000;       // a listing re-reads this much (server time)
inline constexpr size_t kPageSize = 50;            // ListChannelMessages MaxResults cap
inline constexpr size_t kMaxCreateMembers = 10;    // CreateChannel MemberArns cap
inline constexpr char kOpContentType[] = "application/vnd.tidings.op+json";
inline constexpr char kBase64ContentType[] = "application/vnd.tidings.base64";
inline constexpr char kFrameContentType[] = "application/vnd.tidings.frame";
// Rescan of recent history for edits and redactions made by other clients
// while no event could tell (docs/chime.md has the cost).
inline constexpr size_t kRescanMessages = 50;         // one DESCENDING page
inline constexpr int64_t kRescanIntervalMs = 60'000;  // per conversation, while polling
// The Content of a typing indicator (NON_PERSISTENT CONTROL: never stored).
inline constexpr char kTypingMarker[] = "tidings:typing";
// A frame's bytes travel base64-encoded in a message's Content.
inline constexpr size_t kMaxFrameBytes = kMaxContentBytes / 4 * 3;  // 3072

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
  // ListChannelMessages newest first (SortOrder=DESCENDING); positions are
  // the listing's NextToken with the oldest time it returned, to list again
  // from when the token has expired (docs/chime.md, "Newest first").
  Result<sync::HistoryPage> PullHistory(const std::string& conversation_id, std::string_view before,
                                        size_t limit) override;
  Result<std::vector<std::string>> ListConversations() override;
  std::optional<int64_t> last_retry_after_ms() const override { return last_retry_after_ms_; }

  // ---- Sealed logs (chime_sealed.cc) ----
  size_t max_frame_bytes() const override { return kMaxFrameBytes; }
  // Chime authenticates every message's Sender.
  bool authenticates_senders() const override { return true; }
  // Creates the log's channel with the members (a Conflict: it exists, and
  // the members it lacks are added). Returns its ARN. InvalidArgument for a
  // log id that is not "e" + 32 lowercase hex digits.
  Result<std::string> EnsureLog(const sync::SealedLog& log) override;
  Result<std::vector<sync::PushAck>> PushFrames(const std::string& log_id,
                                                std::span<const sync::Frame> frames) override;
  // Messages that are not frames (another client's text, a malformed frame)
  // are skipped and counted. From the empty cursor, also the channel's
  // creator and members (DescribeChannel, ListChannelMemberships).
  Result<sync::FramePage> PullFrames(const std::string& log_id, std::string_view cursor,
                                     size_t limit) override;
  // Newest first: ListChannelMessages DESCENDING, positions as PullHistory's.
  Result<sync::FramePage> PullFrameHistory(const std::string& log_id, std::string_view before,
                                           size_t limit) override;
  Result<std::vector<std::string>> ListLogs() override;
  // Device records travel as announcement frames, which Chime's Sender
  // authenticates: there is no directory to publish to or fetch from.
  Status PublishDevice(std::string_view /*record*/) override { return Status::Ok(); }
  Result<std::vector<std::string>> FetchDevices(const std::string& /*user*/) override {
    return Unimplemented(
        "Chime has no device directory: device records are announcement frames in each log");
  }

  // ---- Real-time delivery (chime_realtime.cc): the messaging WebSocket
  // (messaging_session.h) on its own thread. Unlike the rest of a Backend,
  // these three may be called from any thread. ----
  Status StartRealtime(sync::RealtimeListener listener) override;
  void StopRealtime() override;
  void PokeRealtime() override;
  // The session's settings, as Create made them; change them before
  // StartRealtime (tests shorten the timeouts).
  MessagingSessionConfig& realtime_config() { return realtime_config_; }
  // ---- Real-time (chime_events.cc) ----
  // A messaging-session event: message events name their conversation (or
  // sealed log) to pull; an edit, redaction or deletion is remembered so
  // that pull yields its operation although the message is behind the
  // cursor; channel and membership events ask for a relist; another user's
  // typing marker is a typing effect.
  Result<sync::EventEffect> AcceptEvent(const sync::RealtimeEvent& event) override;
  // kTypingMarker as a NON_PERSISTENT CONTROL message to the conversation's
  // channel (a sealed log's, when `conversation_id` is a log id).
  Status SendTyping(const std::string& conversation_id) override;
  // Events may have been missed (a messaging session was established
  // again): the next pull of every conversation rescans recent history for
  // edits and redactions. Safe from any thread (the session's listener).
  void RequestRescan() { rescan_all_.store(true); }

  // The channel ARN of a sealed log.
  std::string LogChannelArn(const std::string& log_id) const;

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
  // Messages ListChannelMessages returned to this backend, re-reads of the
  // overlap included (what a pull costs; tests and benchmarks).
  uint64_t messages_listed() const { return messages_listed_; }

 private:
  struct Known {  // a Tidings message this process has sent or pulled
    std::string chime_message_id;
    std::string envelope;    // its Metadata as written ("" for other clients' messages)
    int64_t created_ms = 0;  // its CreatedTimestamp, 0 if not read (a send's)
  };
  // Messages of a channel after a cursor that no earlier page returned.
  struct NewMessages {
    std::vector<ChimeMessage> messages;
    std::string next_cursor;
    bool has_more = false;
  };
  // A newest-first page: its messages, the position of the next older page
  // ("" at the beginning) and, for the newest page, the forward cursor.
  struct OlderMessages {
    std::vector<ChimeMessage> messages;
    std::string before;
    std::string forward_cursor;
  };
  // Who made a channel and who is in it (DEFAULT and HIDDEN), as ARNs.
  struct ChannelPeople {
    std::string creator;
    std::vector<std::string> members;
  };
  ChimeBackend(ChimeConfig config, std::unique_ptr<aws::AwsRestClient> client);

  Result<std::string> Call(std::string_view method, const std::string& path,
                           const std::string& body = "");
  // The channel for a conversation: cached, "chime:" ids, the listing
  // (refreshed at most every 30 s), else the default ARN (*guessed = true).
  Result<std::string> ResolveChannel(const std::string& conversation_id, bool* guessed);
  // Every channel the user is a member of.
  Result<std::vector<ChannelInfo>> ListMyChannels();
  // CreateChannel with ChannelId (and ClientRequestToken) `channel_id`; the
  // first members (at most kMaxCreateMembers) join with it, atomically, and
  // *joined says how many; *made: this call made it. A Conflict (it exists)
  // returns its ARN, *joined 0, *made false.
  // keep_days != 0: with ExpirationSettings (ChimeConfig::keep_days).
  Result<std::string> CreateChannel(const std::string& channel_id, const std::string& name,
                                    const std::string& metadata,
                                    const std::vector<std::string>& members, size_t* joined,
                                    bool* made, uint32_t keep_days = 0);
  // PutChannelExpirationSettings from the conversation's policy, once per
  // process and policy; only moderators may, so a refusal is not an error.
  Status SyncExpiration(const std::string& conversation_id, const std::string& channel_arn);
  std::map<std::string, uint32_t> expiration_days_;  // conversation -> days last set
  Status AddMember(const std::string& channel_arn, const std::string& member_arn);
  Result<ChannelPeople> DescribePeople(const std::string& channel_arn);
  // Keeps the conversation's member list for VerifyChannel and Pull.
  void LearnMembers(const engine::Conversation& c);
  // Squatting: refuses (PermissionDenied, remembered) the conversation's
  // channel if its creator or a member is outside the member list this
  // device was given (EnsureConversation, AddMembers). OK when no list is
  // known (an invitation found in the listing) or it passed in the last 30 s.
  Status VerifyChannel(const std::string& conversation_id, const std::string& channel_arn);
  // The member id of an AppInstanceUser ARN of this app instance (the ARN
  // itself otherwise).
  std::string UserOf(const std::string& arn) const;
  // The frames among a listing's messages, into `out`; anything but an
  // intact frame from an authenticated sender (another client's text, a
  // redacted, edited or malformed frame) is skipped and counted.
  void TakeFrames(const std::vector<ChimeMessage>& messages, sync::FramePage* out) const;
  // The log id of a sealed log's channel, nullopt for any other channel.
  std::optional<std::string> LogIdOf(const ChannelInfo& channel) const;
  Result<NewMessages> ListNewMessages(const std::string& channel_arn, std::string_view cursor,
                                      size_t limit);
  // The channel of a conversation to read: a refused one fails as it did;
  // *guessed when it is not among the user's channels (then not verified),
  // else verified (VerifyChannel; a refusal through ChannelRefused).
  Result<std::string> ReadableChannel(const std::string& conversation_id, bool* guessed);
  // Newest first. split: the newest page splits the channel for a forward
  // cursor (PullHistory); without it older pages simply follow the listing
  // (PullFrameHistory, which keeps no forward cursor).
  Result<OlderMessages> ListOlderMessages(const std::string& channel_arn, std::string_view before,
                                          size_t limit, bool split = true);
  // The operations of listed messages: members' only where this device
  // knows the members; CONTROL, denied and failed messages are not.
  void TakeMessages(const std::string& conversation_id, const std::vector<ChimeMessage>& messages,
                    std::vector<engine::Operation>* ops, uint64_t* skipped);
  // SendChannelMessage (STANDARD, PERSISTENT); `token_of` is the idempotency
  // key the ClientRequestToken is made from.
  Result<sync::PushAck> SendMessage(const std::string& channel_arn, const std::string& content,
                                    const std::string& metadata, const std::string& content_type,
                                    std::string_view token_of);
  // A 403/404 on the conversation's channel as the reconciler shows it
  // (removed from it); other errors as they are.
  Status ChannelRefused(const std::string& conversation_id, const Status& error) const;
  // Pushes `n` items with `push_one`, one ack each: after a transient
  // failure the rest waits; a channel-wide refusal of the first item fails
  // the call with `refused(error)`.
  Result<std::vector<sync::PushAck>> PushEach(
      size_t n, const std::function<Result<sync::PushAck>(size_t)>& push_one,
      const std::function<Status(const Status&)>& refused);
  // The members' ARNs other than this device's user, sorted and unique.
  std::vector<std::string> OtherMemberArns(const engine::Conversation& c) const;
  Result<sync::PushAck> PushOne(const std::string& channel_arn, const engine::Operation& op);
  // A delete's envelope names its target: order key, content type, Chime
  // MessageId and CreatedTimestamp (TargetOf), when they are known.
  void AddDeleteTarget(const std::string& channel_arn, const engine::Operation& op, Envelope* e);
  Result<sync::PushAck> PushFrame(const std::string& channel_arn, const sync::Frame& frame);
  // The operations one message of a Tidings channel carries; false if it
  // carries none it could decode (counted as skipped).
  bool AppendOperations(const std::string& conversation_id, const ChimeMessage& m,
                        std::vector<engine::Operation>* ops);
  // The operation of a Tidings operation message (`op` has its conversation,
  // times, remote id and authenticated author set).
  bool AppendOperationMessage(engine::Operation op, const ChimeMessage& m,
                              std::vector<engine::Operation>* ops);
  // The operations the state of an edited or redacted message carries:
  // the Tidings edit written into its Metadata, or another client's edit
  // (op id "chime-edit:<MessageId>:<ms>", at LastEditedTimestamp), or a
  // tombstone of "chime:<MessageId>" (redacted; with `placeholder` its
  // place first, for a device that never had it). Deterministic: every
  // device derives the same ones.
  void AppendStateOperations(const std::string& conversation_id, const ChimeMessage& m,
                             bool placeholder, std::vector<engine::Operation>* ops);
  // The operations of messages behind the cursor that changed: remembered
  // events, then (when due) a rescan of the newest kRescanMessages.
  Status AppendChangesBehind(const std::string& conversation_id, const std::string& channel_arn,
                             sync::PullPage* page);
  // The conversation a channel ARN belongs to (the listing is refreshed once
  // if it is unknown); nullopt if none of this user's.
  Result<std::optional<std::string>> ConversationOfChannel(const std::string& channel_arn);
  // The target of an edit or delete: its MessageId and Metadata (and with
  // `need_created` its CreatedTimestamp), from this process, or from
  // `op.remote_id` (the reconciler's) and GetChannelMessage.
  std::optional<Known> TargetOf(const std::string& channel_arn, const engine::Operation& op,
                                bool need_created);
  void Mirror(const std::string& channel_arn, const engine::Operation& op);
  void Remember(const std::string& message_id, Known known);
  std::optional<std::string> ChannelIdOf(const std::string& arn) const;
  std::string ConversationIdFor(const std::string& arn, const std::string& metadata) const;

  ChimeConfig config_;
  std::unique_ptr<aws::AwsRestClient> client_;
  std::map<std::string, std::string> channels_;  // conversation id -> channel ARN
  int64_t listed_at_ms_ = -1;                    // last full listing (steady ms)
  int64_t event_listed_at_ms_ = -1;              // last listing an event asked for, even failed
  std::map<std::string, Known> known_;           // message id -> Chime ids (bounded)
  // Changed messages behind the cursor, from events: conversation ->
  // MessageId -> its newest state (bounded).
  std::map<std::string, std::map<std::string, ChimeMessage>> behind_;
  std::map<std::string, int64_t> rescanned_at_;  // conversation -> steady ms
  std::atomic<bool> rescan_all_{false};          // RequestRescan()
  std::deque<std::string> known_order_;          // eviction order of known_
  std::optional<int64_t> last_retry_after_ms_;
  uint64_t mirror_failures_ = 0;
  uint64_t messages_listed_ = 0;
  // Squatting checks (VerifyChannel): conversation -> its members' ARNs
  // (and this user's); channels that passed; refusals.
  std::map<std::string, std::set<std::string>> allowed_;
  std::map<std::string, int64_t> verified_;  // "<conversation>\n<channel ARN>" -> steady ms
  std::map<std::string, Status> refused_;
  // Sealed logs ensured by this process: log id -> member ARNs in it.
  std::map<std::string, std::set<std::string>> logs_;

  MessagingSessionConfig realtime_config_;
  std::mutex realtime_mu_;
  std::unique_ptr<MessagingSession> session_;  // REQUIRES: realtime_mu_; destroyed first
};

}  // namespace tidings::chime
