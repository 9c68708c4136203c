// ChimeBackend's sealed logs: an end-to-end encrypted conversation's frames
// as messages of a channel whose name says nothing (docs/chime.md).
#include <cctype>
#include <set>

#include "sync/aws/base64.h"
#include "sync/chime/chime_backend.h"
#include "sync/chime/chime_internal.h"

namespace tidings::chime {
namespace {

constexpr char kLogChannelPrefix[] = "tidings-";
constexpr char kLogChannelName[] = "tidings";

// "e" + 32 lowercase hex digits (sync::SealedLog::log_id).
bool IsLogId(std::string_view id) {
  if (id.size() != 33 || id[0] != 'e') return false;
  for (char c : id.substr(1)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status BadLogId(std::string_view id) {
  return InvalidArgument("a sealed log id is \"e\" and 32 lowercase hex digits; got '" +
                         std::string(id.substr(0, 80)) + "'");
}

// sync::Frame::id: 1-64 of [A-Za-z0-9._-].
bool IsFrameId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

Status LogRefused(const std::string& log_id, const Status& error) {
  if (error.code() != Code::kPermissionDenied && error.code() != Code::kNotFound) return error;
  return Status(error.code(), "Chime refused access to the channel of sealed log " + log_id +
                                  " (not a member, removed from it, or it was deleted): " +
                                  std::string(error.message()));
}

}  // namespace

std::string ChimeBackend::LogChannelArn(const std::string& log_id) const {
  return config_.app_instance_arn + "/channel/" + kLogChannelPrefix + log_id;
}

std::optional<std::string> ChimeBackend::LogIdOf(const ChannelInfo& channel) const {
  auto id = ChannelIdOf(channel.arn);
  if (!id || !internal::StartsWith(*id, kLogChannelPrefix)) return std::nullopt;
  std::string log_id = id->substr(sizeof(kLogChannelPrefix) - 1);
  if (!IsLogId(log_id) || !IsSealedChannelMetadata(channel.metadata)) return std::nullopt;
  return log_id;
}

Result<std::string> ChimeBackend::EnsureLog(const sync::SealedLog& log) {
  if (!IsLogId(log.log_id)) return BadLogId(log.log_id);
  std::set<std::string> wanted;
  for (const auto& m : log.members) wanted.insert(MemberArn(m));
  wanted.erase(config_.user_arn);
  const std::string arn = LogChannelArn(log.log_id);
  auto ensured = logs_.find(log.log_id);
  if (ensured == logs_.end()) {
    const std::vector<std::string> members(wanted.begin(), wanted.end());
    size_t joined = 0;
    bool made = false;
    // Its ARN is LogChannelArn's: the ChannelId is ours to choose.
    TIDINGS_RETURN_IF_ERROR(CreateChannel(kLogChannelPrefix + log.log_id, kLogChannelName,
                                          kSealedChannelMetadata, members, &joined, &made)
                                .status());
    std::set<std::string> in_it(members.begin(), members.begin() + static_cast<long>(joined));
    ensured = logs_.emplace(log.log_id, std::move(in_it)).first;
  }
  // The members it lacks (all of them after a Conflict: an existing member
  // is a Conflict, ignored by AddMember).
  for (const auto& member : wanted) {
    if (ensured->second.count(member)) continue;
    TIDINGS_RETURN_IF_ERROR(AddMember(arn, member));
    ensured->second.insert(member);
  }
  return arn;
}

Result<sync::PushAck> ChimeBackend::PushFrame(const std::string& channel_arn,
                                              const sync::Frame& frame) {
  if (!IsFrameId(frame.id)) {
    return InvalidArgument("a frame id is 1 to 64 of [A-Za-z0-9._-]; got '" +
                           frame.id.substr(0, 80) + "'");
  }
  if (frame.bytes.empty()) return InvalidArgument("an empty frame (frame " + frame.id + ")");
  if (frame.bytes.size() > kMaxFrameBytes) {
    return TooLarge("Chime SDK Messaging carries at most " + std::to_string(kMaxFrameBytes) +
                    " bytes per sealed frame (4096 bytes of message content after base64); "
                    "frame " +
                    frame.id + " has " + std::to_string(frame.bytes.size()));
  }
  return SendMessage(channel_arn, aws::Base64Encode(frame.bytes), WriteFrameMetadata(frame.id),
                     kFrameContentType, frame.id);
}

Result<std::vector<sync::PushAck>> ChimeBackend::PushFrames(const std::string& log_id,
                                                            std::span<const sync::Frame> frames) {
  if (!IsLogId(log_id)) return BadLogId(log_id);
  const std::string arn = LogChannelArn(log_id);
  return PushEach(
      frames.size(), [&](size_t i) { return PushFrame(arn, frames[i]); },
      [&](const Status& error) {
        return Status(error.code(),
                      "Chime refused access to the channel of sealed log " + log_id +
                          " (removed from it, or it was deleted): " + std::string(error.message()));
      });
}

void ChimeBackend::TakeFrames(const std::vector<ChimeMessage>& messages,
                              sync::FramePage* out) const {
  for (const ChimeMessage& m : messages) {
    auto id = ParseFrameMetadata(m.metadata);
    sync::Frame frame;
    // Tidings never edits a frame: an edited one is not what was first
    // read there (a removed member could back-date a frame that way).
    if (!id || !IsFrameId(*id) || m.redacted || m.edited_ms > 0 || m.type != "STANDARD" ||
        m.status == "DENIED" || m.status == "FAILED" || m.sender_arn.empty() ||
        !aws::Base64Decode(m.content, &frame.bytes) || frame.bytes.empty()) {
      ++out->skipped;
      continue;
    }
    frame.id = std::move(*id);
    frame.sender = UserOf(m.sender_arn);
    frame.server_time_ms = static_cast<uint64_t>(m.created_ms);
    frame.remote_id = m.message_id;
    out->frames.push_back(std::move(frame));
  }
}

Result<sync::FramePage> ChimeBackend::PullFrames(const std::string& log_id, std::string_view cursor,
                                                 size_t limit) {
  if (!IsLogId(log_id)) return BadLogId(log_id);
  const std::string arn = LogChannelArn(log_id);
  sync::FramePage out;
  if (cursor.empty()) {
    // Who made it and who is in it, so the reader can refuse a log made or
    // joined by someone outside the conversation.
    auto people = DescribePeople(arn);
    if (!people.ok()) return LogRefused(log_id, people.status());
    out.log_creator = UserOf(people->creator);
    for (const auto& m : people->members) out.log_members.push_back(UserOf(m));
  }
  auto listed = ListNewMessages(arn, cursor, limit);
  if (!listed.ok()) return LogRefused(log_id, listed.status());
  TakeFrames(listed->messages, &out);
  out.next_cursor = std::move(listed->next_cursor);
  out.has_more = listed->has_more;
  return out;
}

Result<sync::FramePage> ChimeBackend::PullFrameHistory(const std::string& log_id,
                                                       std::string_view before, size_t limit) {
  if (!IsLogId(log_id)) return BadLogId(log_id);
  auto listed = ListOlderMessages(LogChannelArn(log_id), before, limit, /*split=*/false);
  if (!listed.ok()) return LogRefused(log_id, listed.status());
  sync::FramePage out;
  TakeFrames(listed->messages, &out);
  out.has_more = !listed->before.empty();
  out.next_cursor = std::move(listed->before);
  return out;
}

Result<std::vector<std::string>> ChimeBackend::ListLogs() {
  TIDINGS_ASSIGN_OR_RETURN(std::vector<ChannelInfo> channels, ListMyChannels());
  std::vector<std::string> out;
  for (const auto& c : channels) {
    if (auto id = LogIdOf(c)) out.push_back(*id);
  }
  return out;
}

}  // namespace tidings::chime
