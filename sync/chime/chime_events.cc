// ChimeBackend's real-time side that needs no socket: what a messaging-session
// event means (AcceptEvent), typing indicators, and finding the changes
// behind a conversation's cursor - edits and redactions that an ascending
// listing from the cursor never returns again - from remembered events and
// a bounded rescan of recent history.
#include <atomic>
#include <string>

#include "common/clock.h"
#include "common/json_string.h"
#include "sync/chime/chime_backend.h"
#include "sync/chime/chime_internal.h"

namespace tidings::chime {
namespace {

using internal::Enc;
using internal::StartsWith;
using internal::Token;

constexpr size_t kMaxBehind = 1000;      // remembered changed messages per conversation
constexpr int64_t kRelistMinMs = 1'000;  // listings for unknown channels, at most

bool IsMessageEvent(const std::string& type) {
  return type == "CREATE_CHANNEL_MESSAGE" || type == "UPDATE_CHANNEL_MESSAGE" ||
         type == "REDACT_CHANNEL_MESSAGE" || type == "DELETE_CHANNEL_MESSAGE";
}

bool IsChannelEvent(const std::string& type) {
  return type == "CREATE_CHANNEL" || type == "UPDATE_CHANNEL" || type == "DELETE_CHANNEL" ||
         type == "CREATE_CHANNEL_MEMBERSHIP" || type == "DELETE_CHANNEL_MEMBERSHIP" ||
         type == "UPDATE_CHANNEL_MEMBERSHIP";
}

}  // namespace

Result<std::optional<std::string>> ChimeBackend::ConversationOfChannel(
    const std::string& channel_arn) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    for (const auto& [conversation, arn] : channels_) {
      if (arn == channel_arn) return std::optional<std::string>(conversation);
    }
    // A burst of events from a channel not (yet) listed costs one listing
    // a second at most, failed ones included (throttling is not amplified);
    // a failed listing leaves the channel unknown: the engine relists.
    const int64_t now = MonotonicMs();
    if (attempt > 0 || (event_listed_at_ms_ >= 0 && now - event_listed_at_ms_ < kRelistMinMs)) {
      break;
    }
    event_listed_at_ms_ = now;
    if (!ListConversations().ok()) break;
  }
  return std::optional<std::string>();
}

Result<sync::EventEffect> ChimeBackend::AcceptEvent(const sync::RealtimeEvent& event) {
  sync::EventEffect effect;
  if (event.kind != sync::RealtimeEvent::Kind::kEvent) return effect;
  if (IsChannelEvent(event.type)) {
    effect.relist = true;
    return effect;
  }
  if (!IsMessageEvent(event.type)) return effect;  // not ours to understand
  auto parsed = ParseChannelMessage(event.payload, /*wrapped=*/false);
  if (!parsed.ok() || parsed->channel_arn.empty()) return effect;
  ChimeMessage& m = *parsed;
  const bool mine = m.sender_arn == config_.user_arn;
  if (m.persistence == "NON_PERSISTENT") {
    if (m.content != kTypingMarker || mine || event.type != "CREATE_CHANNEL_MESSAGE") {
      return effect;  // never stored: nothing to pull
    }
    ChannelInfo as_log{m.channel_arn, "", kSealedChannelMetadata};
    if (auto log = LogIdOf(as_log)) {
      effect.typing_conversation = *log;  // the sync engine maps a log to its conversation
    } else {
      TIDINGS_ASSIGN_OR_RETURN(auto conversation, ConversationOfChannel(m.channel_arn));
      if (!conversation) return effect;
      effect.typing_conversation = *conversation;
    }
    effect.typing_user = UserOf(m.sender_arn);
    return effect;
  }
  if (auto log = LogIdOf({m.channel_arn, "", kSealedChannelMetadata})) {
    effect.pull_logs.push_back(*log);  // frames never change: a pull reads new ones
    return effect;
  }
  TIDINGS_ASSIGN_OR_RETURN(auto conversation, ConversationOfChannel(m.channel_arn));
  if (!conversation) {
    effect.relist = true;  // a channel this device does not know yet
    return effect;
  }
  if (event.type != "CREATE_CHANNEL_MESSAGE") {
    // Behind the cursor: the next pull yields its operation. A deletion
    // (an administrator's) leaves a tombstone here, like a redaction.
    if (event.type == "DELETE_CHANNEL_MESSAGE") m.redacted = true;
    auto& changed = behind_[*conversation];
    if (changed.size() < kMaxBehind || changed.count(m.message_id)) {
      changed[m.message_id] = std::move(m);
    }
  }
  effect.pull_conversations.push_back(*conversation);
  return effect;
}

Status ChimeBackend::SendTyping(const std::string& conversation_id) {
  static std::atomic<uint64_t> counter{0};
  std::string arn;
  if (!channels_.count(conversation_id) &&
      LogIdOf({LogChannelArn(conversation_id), "", kSealedChannelMetadata})) {
    arn = LogChannelArn(conversation_id);  // a sealed log: the marker says nothing more
  } else {
    bool guessed = false;
    TIDINGS_ASSIGN_OR_RETURN(arn, ResolveChannel(conversation_id, &guessed));
    if (guessed) return Status::Ok();  // no channel yet: nobody to tell
  }
  // NON_PERSISTENT: delivered to connected members, never stored or listed.
  const std::string token = Token("typing-" + std::to_string(WallMs()) + "-" +
                                  std::to_string(counter.fetch_add(1)) + "-" + config_.user_arn);
  auto sent = Call("POST", "/channels/" + Enc(arn) + "/messages",
                   "{\"Content\":" + JsonString(kTypingMarker) +
                       ",\"Type\":\"CONTROL\",\"Persistence\":\"NON_PERSISTENT\","
                       "\"ClientRequestToken\":" +
                       JsonString(token) + "}");
  return sent.status();
}

Status ChimeBackend::AppendChangesBehind(const std::string& conversation_id,
                                         const std::string& channel_arn, sync::PullPage* page) {
  auto allowed = allowed_.find(conversation_id);
  auto from_member = [&](const ChimeMessage& m) {
    return allowed == allowed_.end() || allowed->second.count(m.sender_arn) > 0;
  };
  if (auto it = behind_.find(conversation_id); it != behind_.end()) {
    for (const auto& [id, m] : it->second) {
      if (from_member(m)) AppendStateOperations(conversation_id, m, false, &page->ops);
    }
    behind_.erase(it);
  }
  // The rescan: edits and redactions of recent messages made while no event
  // could tell (no socket, or a reconnect). Once per conversation per
  // process (or RequestRescan), then at most every kRescanIntervalMs, after
  // the listing caught up.
  const int64_t now = MonotonicMs();
  if (rescan_all_.exchange(false)) rescanned_at_.clear();
  auto last = rescanned_at_.find(conversation_id);
  if (page->has_more || (last != rescanned_at_.end() && now - last->second < kRescanIntervalMs)) {
    return Status::Ok();
  }
  auto body = Call(
      "GET", "/channels/" + Enc(channel_arn) +
                 "/messages?sort-order=DESCENDING&max-results=" + std::to_string(kRescanMessages));
  if (!body.ok()) {
    last_retry_after_ms_.reset();
    return Status::Ok();  // the listing stands; the next pull rescans
  }
  auto recent = ParseListChannelMessages(*body);
  if (!recent.ok()) return Status::Ok();
  messages_listed_ += recent->messages.size();
  for (const ChimeMessage& m : recent->messages) {
    if ((m.edited_ms > 0 || m.redacted) && from_member(m) && m.status != "DENIED" &&
        m.status != "FAILED") {
      AppendStateOperations(conversation_id, m, false, &page->ops);
    }
  }
  rescanned_at_[conversation_id] = now;
  return Status::Ok();
}

}  // namespace tidings::chime
